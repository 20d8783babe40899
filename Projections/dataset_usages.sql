-- Usage pins: which consumer used which version of a dataset. A pin is never withdrawn, so rows are
-- only ever opened; valid_from is the position of the DatasetVersionUsed event.
CREATE TABLE dataset_usages (
    dataset_id uuid    NOT NULL,
    valid_from bigint  NOT NULL,
    valid_to   bigint,
    version    integer NOT NULL,
    consumer   text    NOT NULL,
    document   text    NOT NULL,
    PRIMARY KEY (dataset_id, valid_from)
);
