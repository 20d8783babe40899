-- The lineage graph, version to version: a job read from_dataset at from_version to make to_dataset at
-- to_version. Edges come from LineageRecorded events and from the parents of each new version. An edge
-- is never withdrawn, so valid_to stays NULL; valid_from is the position that recorded it, so the graph
-- as of P is every edge with valid_from <= P.
CREATE TABLE lineage_edges (
    to_dataset    uuid    NOT NULL,
    to_version    integer NOT NULL,
    from_dataset  uuid    NOT NULL,
    from_version  integer NOT NULL,
    valid_from    bigint  NOT NULL,
    valid_to      bigint,
    job_namespace text,
    job_name      text,
    run_id        text,
    ordinal       integer NOT NULL,  -- the input's place in its event, which keeps rows unique
    PRIMARY KEY (valid_from, ordinal)
);

-- Both directions of the traversal: an index lookup per frontier, whatever the size of the graph.
CREATE INDEX lineage_edges_upstream ON lineage_edges (to_dataset, to_version, valid_from);
CREATE INDEX lineage_edges_downstream ON lineage_edges (from_dataset, from_version, valid_from);
