-- Each dataset's lifecycle state as it stood over the log: one row per span of positions in which it was
-- unchanged (valid_from inclusive, valid_to exclusive, NULL while still true). The current state is
-- valid_to IS NULL; the state as of position P is valid_from <= P AND (valid_to IS NULL OR valid_to > P).
--
-- Every event of a dataset opens a new row, so the event at valid_from (events.global_position =
-- valid_from) says who changed the dataset last, when, and its stream version: those are read from the
-- log rather than copied here. What the dataset is (its name, where it was cloned from) is in
-- dataset_identities; what its versions say is in dataset_versions.
CREATE TABLE dataset_states (
    dataset_id        uuid    NOT NULL,
    valid_from        bigint  NOT NULL,
    valid_to          bigint,
    status            text    NOT NULL,
    latest_version    integer NOT NULL,  -- 0 until the first version is drafted
    published_version integer,
    retired_reason    text,
    PRIMARY KEY (dataset_id, valid_from)
);

CREATE UNIQUE INDEX dataset_states_current ON dataset_states (dataset_id) WHERE valid_to IS NULL;
