-- A message recorded with its send's outcome keeps that first event in its own row instead of
-- a row of `message_events`: one insert per message sent instead of two (with the event's
-- index, its foreign key check and its sequence). Later events are appended to
-- `message_events` as before; a message's events are its first event, if any, then those.
-- Rows written before this migration have no first event here and all their events there.
ALTER TABLE messages ADD COLUMN first_event_status TEXT;
ALTER TABLE messages ADD COLUMN first_event_at INTEGER;
ALTER TABLE messages ADD COLUMN first_event_error TEXT;
