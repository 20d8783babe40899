-- Every append transaction calls this first. It takes the log's one append lock, held until the
-- transaction ends, so appends draw positions one after another and commit in that same order.
-- It answers the time to record the appended events at: the server clock, but never earlier than the
-- newest event already in the log, so recorded_at never goes backwards along the log even if the clock
-- does (which keeps as_of=<time> a prefix of the log too).
CREATE FUNCTION strata_begin_append() RETURNS timestamptz
LANGUAGE plpgsql AS $$
BEGIN
    -- 0x5354524154414C47 spells "STRATALG": the key of the log's append lock.
    PERFORM pg_advisory_xact_lock(6004514643731631175);
    RETURN greatest(
        clock_timestamp(),
        coalesce((SELECT recorded_at FROM events ORDER BY global_position DESC LIMIT 1), '-infinity')
    );
END
$$;
