-- Every version of every dataset, by the DatasetVersionDrafted event at valid_from: a version's content
-- never changes, so its row is never closed.
--
-- The version's document is rendered when it is read, from that event (events.global_position =
-- valid_from), which holds the whole snapshot and who drafted it when; keeping a rendered copy here
-- doubled what a rebuild wrote. Its status changes (draft, then published, later superseded; or
-- discarded), and follows from the dataset's published_version in dataset_states and from
-- version_publications. owner, description and tags are kept as columns for the dataset list's filters.
CREATE TABLE dataset_versions (
    dataset_id  uuid    NOT NULL,
    version     integer NOT NULL,
    valid_from  bigint  NOT NULL,
    owner       text,
    description text,
    tags        text[]  NOT NULL,
    PRIMARY KEY (dataset_id, version)
);
