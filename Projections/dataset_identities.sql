-- What each dataset is, from the DatasetCreated event at valid_from on: its natural key, and the version
-- it was cloned from. None of it ever changes, so there is one row per dataset, never closed; who created
-- it and when is the envelope of that event (events.global_position = valid_from).
CREATE TABLE dataset_identities (
    dataset_id          uuid    PRIMARY KEY,
    valid_from          bigint  NOT NULL,
    namespace           text    NOT NULL,
    name                text    NOT NULL,
    name_key            bytea   NOT NULL,  -- SHA-256 of namespace NUL name: long names overflow a btree
    cloned_from_dataset uuid,
    cloned_from_version integer
);

CREATE INDEX dataset_identities_by_name ON dataset_identities (name_key);
CREATE INDEX dataset_identities_by_namespace ON dataset_identities (namespace, dataset_id);
