-- Usage pins: which consumer used which version of a dataset. A pin is never withdrawn, so rows are
-- only ever opened; valid_from is the position of the DatasetVersionUsed event, which holds the rest of
-- the pin (its kind and properties, who recorded it and when): the usage's document is rendered from
-- that event when it is read.
CREATE TABLE dataset_usages (
    dataset_id uuid    NOT NULL,
    valid_from bigint  NOT NULL,
    valid_to   bigint,
    version    integer NOT NULL,
    consumer   text    NOT NULL,
    PRIMARY KEY (dataset_id, valid_from)
);
