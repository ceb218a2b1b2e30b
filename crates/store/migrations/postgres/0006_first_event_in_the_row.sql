-- A message recorded with its send's outcome keeps that first event in its own row instead of
-- a row of `message_events`: one row per message sent instead of two (with the event's index).
-- Later events are appended to `message_events` as before; a message's events are its first
-- event, if any, then those. Rows written before this migration have no first event here and
-- all their events there. Adding columns without a default rewrites no row.
ALTER TABLE messages
    ADD COLUMN first_event_status TEXT,
    ADD COLUMN first_event_at BIGINT,
    ADD COLUMN first_event_error TEXT;
