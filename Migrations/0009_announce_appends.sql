-- Every statement that appends to the log announces the log's new end on the channel `strata_log`.
-- PostgreSQL delivers a notification when its transaction commits, and appends commit in position
-- order (the append lock), so a listener hears positions in order and only ever committed ones. Live
-- feeds wait for this instead of asking the database again and again: a subscriber reads only when
-- the log has grown past its position. One notification per statement, however many events it
-- appends, from every path that appends (the write pipeline, import, any process on the database).
CREATE FUNCTION strata_announce_append() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    last_position bigint := (SELECT max(global_position) FROM appended);
BEGIN
    IF last_position IS NOT NULL THEN
        PERFORM pg_notify('strata_log', last_position::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_announce_append AFTER INSERT ON events
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION strata_announce_append();
