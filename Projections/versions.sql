-- Every version of every dataset, by the DatasetVersionDrafted event at valid_from: a version's content
-- never changes, so its row is never closed.
--
-- The version's document is rendered when it is read, from that event (events.global_position =
-- valid_from), which holds the whole snapshot and who drafted it when. Its status changes (draft, then
-- published, later superseded; or discarded), and follows from the dataset's published_version in
-- dataset_states and from version_publications. What the dataset list filters on and search finds the
-- version by is its row of dataset_words, under words_key: most new versions refresh a row count or a
-- location, not those words, and share the row of the version before them.
CREATE TABLE versions (
    dataset_id uuid    NOT NULL,
    version    integer NOT NULL,
    valid_from bigint  NOT NULL,
    words_key  bytea   NOT NULL,
    PRIMARY KEY (dataset_id, version)
);
