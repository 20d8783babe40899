-- The event log: the only source of truth of the catalog. Every projection is a function of it.
--
-- global_position is the total order of the log. Appends draw it while holding the log's append lock
-- (see 0002_begin_append.sql) until they commit, so positions are handed out in commit order: any
-- snapshot of this table is a prefix of the log. Positions may have holes (a rolled-back append),
-- never reorderings.
CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id       uuid        NOT NULL,
    stream_version  bigint      NOT NULL CHECK (stream_version > 0),
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL CHECK (schema_version > 0),
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    -- The optimistic-concurrency guard: two writers can never both append version N of a stream.
    CONSTRAINT events_stream_version_unique UNIQUE (stream_id, stream_version),
    -- A retried append carries the same event ids; this makes the retry detectable.
    CONSTRAINT events_event_id_unique UNIQUE (event_id)
);

-- The feed filters by type, and as_of=<time> finds the last position recorded at or before a time.
CREATE INDEX events_event_type_position ON events (event_type, global_position);
CREATE INDEX events_recorded_at ON events (recorded_at, global_position);
