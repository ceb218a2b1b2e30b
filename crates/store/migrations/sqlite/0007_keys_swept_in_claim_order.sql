-- Expired idempotency keys are swept in the order they were claimed, not through an index on
-- their age: the single writer gives each claim a larger id than the ones before it, so the
-- expired keys are the rows before the first one still alive. The index cost every claim an
-- insert into a third b-tree and its pages in the log, for a sweep that runs once a minute.
DROP INDEX idempotency_keys_by_age;
