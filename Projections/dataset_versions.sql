-- Every version of every dataset. A version's content never changes, but its status does (a draft is
-- published, later superseded), so each status is a row with the span of positions it held.
CREATE TABLE dataset_versions (
    dataset_id uuid    NOT NULL,
    version    integer NOT NULL,
    valid_from bigint  NOT NULL,
    valid_to   bigint,
    status     text    NOT NULL,
    document   text    NOT NULL,  -- the API representation, rendered once by the projector
    PRIMARY KEY (dataset_id, version, valid_from)
);

CREATE UNIQUE INDEX dataset_versions_current ON dataset_versions (dataset_id, version) WHERE valid_to IS NULL;
