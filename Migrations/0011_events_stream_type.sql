-- The events that shape a stream's state, by stream and type: everything but a dataset's usage pins and
-- lineage records. The append pipeline reads, for each stream a batch touches, the last event of each
-- lifecycle type, its latest draft and the draft its published version names. By (stream, type) each
-- of those is one descent into this index; by (stream, version), which 0007 indexed, each meant
-- reading all of the stream's lifecycle events and their rows, so a dataset edited a thousand times
-- was a thousand times slower to edit than a new one, inside the append lock.
--
-- It replaces 0007's index, which nothing else reads. Built once over an existing log, holding writes
-- meanwhile.
CREATE INDEX events_stream_type ON events (stream_id, event_type, stream_version)
    WHERE event_type NOT IN ('DatasetVersionUsed', 'LineageRecorded');

DROP INDEX events_stream_lifecycle;
