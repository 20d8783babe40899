-- The events that shape a stream's state, by stream: everything but a dataset's usage pins and lineage
-- records, which change nothing but its stream version. The append pipeline folds a stream's state from
-- these before it decides a command, so a dataset pinned ten thousand times is read as quickly as a new
-- one (its stream version comes from its last event, by the (stream_id, stream_version) key).
--
-- Built once over an existing log (about a second per million events), holding writes meanwhile.
CREATE INDEX events_stream_lifecycle ON events (stream_id, stream_version)
    WHERE event_type NOT IN ('DatasetVersionUsed', 'LineageRecorded');
