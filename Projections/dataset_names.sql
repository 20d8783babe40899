-- The (namespace, name) reservation: a dataset holds its name until it is retired. The unique index
-- makes two live datasets with one name impossible, whatever the application does.
CREATE TABLE dataset_names (
    name_key   bytea  NOT NULL,  -- SHA-256 of namespace NUL name
    dataset_id uuid   NOT NULL,
    valid_from bigint NOT NULL,
    valid_to   bigint,
    PRIMARY KEY (dataset_id, valid_from)
);

CREATE UNIQUE INDEX dataset_names_taken ON dataset_names (name_key) WHERE valid_to IS NULL;
