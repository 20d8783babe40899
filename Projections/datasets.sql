-- Each dataset as it stood over the log: one row per span of positions in which it was unchanged
-- (valid_from inclusive, valid_to exclusive, NULL while still true). The current state is
-- valid_to IS NULL; the state as of position P is valid_from <= P AND (valid_to IS NULL OR valid_to > P).
CREATE TABLE datasets (
    dataset_id        uuid        NOT NULL,
    valid_from        bigint      NOT NULL,
    valid_to          bigint,
    namespace         text        NOT NULL,
    name              text        NOT NULL,
    name_key          bytea       NOT NULL,  -- SHA-256 of namespace NUL name: long names overflow a btree
    status            text        NOT NULL,
    stream_version    bigint      NOT NULL,
    latest_version    integer     NOT NULL,
    published_version integer,
    owner             text,
    description       text,
    tags              text[]      NOT NULL,
    created_by        text        NOT NULL,
    document          text        NOT NULL,  -- the API representation, rendered once by the projector
    PRIMARY KEY (dataset_id, valid_from)
);

CREATE UNIQUE INDEX datasets_current ON datasets (dataset_id) WHERE valid_to IS NULL;
CREATE INDEX datasets_current_by_name ON datasets (name_key) WHERE valid_to IS NULL;
CREATE INDEX datasets_by_name ON datasets (name_key, valid_from);
