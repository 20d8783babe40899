-- When each version was published, by the DatasetPublished event at valid_from. A version is published at
-- most once (only a draft newer than the published version can be), and a publication is never undone:
-- a later one supersedes it. With the dataset's published_version at a position this gives every
-- version's status there: the published one, superseded (published before), discarded (a draft older
-- than the published one), or draft.
CREATE TABLE version_publications (
    dataset_id uuid    NOT NULL,
    version    integer NOT NULL,
    valid_from bigint  NOT NULL,
    PRIMARY KEY (dataset_id, version)
);
