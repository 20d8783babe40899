-- Every version of every dataset, written once, by the DatasetVersionDrafted event at valid_from: a
-- version's content never changes, so its row is never closed.
--
-- Its status does change (draft, then published, later superseded; or discarded), and follows from the
-- dataset's published_version in dataset_states and from version_publications. So the API document is
-- stored without it, in the two halves around it, and the status is put in when the version is read.
-- owner, description and tags are the document's, kept as columns for the dataset list's filters.
CREATE TABLE version_documents (
    dataset_id    uuid    NOT NULL,
    version       integer NOT NULL,
    valid_from    bigint  NOT NULL,
    owner         text,
    description   text,
    tags          text[]  NOT NULL,
    before_status text    NOT NULL,  -- {"change_note":…,"size_bytes":…,"status":
    after_status  text    NOT NULL,  -- ,"tags":[…],"version":…}
    PRIMARY KEY (dataset_id, version)
);
