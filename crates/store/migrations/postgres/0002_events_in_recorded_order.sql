-- A message's events are listed in the order they were recorded (their `seq`), not by the
-- time their source gave: a provider's clock may be behind the gateway's.
DROP INDEX message_events_by_message;
CREATE INDEX message_events_by_message ON message_events (message_id, seq);
