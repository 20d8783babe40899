-- Each dataset's lifecycle state as it stood over the log: one row per span of positions in which it was
-- unchanged (valid_from inclusive, valid_to exclusive, NULL while still true). The current state is
-- valid_to IS NULL; the state as of position P is valid_from <= P AND (valid_to IS NULL OR valid_to > P).
--
-- Every event of a dataset opens a new row, so the event at valid_from (events.global_position =
-- valid_from) says who changed the dataset last, when, and its stream version: those are read from the
-- log rather than copied here. What the dataset is (its name, where it was cloned from) is in
-- dataset_identities; what its versions say is in dataset_versions.
--
-- usage_count and last_used sum up the dataset's usage pins up to the row (a pin opens a row too): the
-- list shows them and sorts by last use without aggregating every dataset's pins. last_used is the
-- position of the latest DatasetVersionUsed, whose recorded_at is the last use's time: recorded_at
-- never decreases along the log, so the order of positions is the order of those times.
CREATE TABLE dataset_states (
    dataset_id        uuid    NOT NULL,
    valid_from        bigint  NOT NULL,
    valid_to          bigint,
    status            text    NOT NULL,
    latest_version    integer NOT NULL,  -- 0 until the first version is drafted
    published_version integer,
    retired_reason    text,
    usage_count       integer NOT NULL,
    last_used         bigint,
    PRIMARY KEY (dataset_id, valid_from)
);

CREATE UNIQUE INDEX dataset_states_current ON dataset_states (dataset_id) WHERE valid_to IS NULL;
-- The list sorted by last use (most recent first, never used last; read backwards for the opposite).
CREATE INDEX dataset_states_current_by_last_use ON dataset_states (last_used DESC NULLS LAST, dataset_id DESC)
    WHERE valid_to IS NULL;
