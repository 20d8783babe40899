-- The append pipeline's first statement after BEGIN: strata_begin_append() (the append lock, and the
-- time to record the batch's events at), then where the log goes on: past its last event and past what
-- its sequence has handed out (a batch rolled back leaves the sequence where it moved it). That is where
-- the batch's first event lands, at a position the batch gives itself.
--
-- Read here rather than by a statement of its own, which would cost the batch a round trip while it
-- holds the lock. Each statement of a function sees what committed before that statement began, so
-- the read after the lock sees the batch that held it before.
CREATE FUNCTION strata_begin_batch(OUT recorded_at timestamptz, OUT next_position bigint)
LANGUAGE plpgsql AS $$
BEGIN
    recorded_at := strata_begin_append();
    SELECT greatest(CASE WHEN is_called THEN last_value + 1 ELSE last_value END,
                    (SELECT coalesce(max(global_position), 0) + 1 FROM events))
    INTO next_position
    FROM events_global_position_seq;
END
$$;
