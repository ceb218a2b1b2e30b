-- A key's kept answer moves to a table of its own, written once when the key completes. The
-- key's row stays small (a completion used to grow it in place, splitting the pages that hold
-- the newest keys), and answers are appended in about the order their keys were claimed.
-- A key is done exactly when it has an answer. The key's id is an INTEGER PRIMARY KEY so that
-- VACUUM keeps it: the answers refer to it.

CREATE TABLE idempotency_keys_with_id (
    id INTEGER PRIMARY KEY NOT NULL,
    client TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (client, idempotency_key)
);

CREATE TABLE idempotency_answers (
    key_id INTEGER PRIMARY KEY NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    retry_after_secs INTEGER
);

INSERT INTO idempotency_keys_with_id (id, client, idempotency_key, fingerprint, created_at)
    SELECT rowid, client, idempotency_key, fingerprint, created_at FROM idempotency_keys;
INSERT INTO idempotency_answers (key_id, status, body, retry_after_secs)
    SELECT rowid, response_status, response_body, retry_after_secs FROM idempotency_keys
    WHERE state = 'done' AND response_status IS NOT NULL AND response_body IS NOT NULL;

DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_with_id RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- A key's id may be given again once its row is gone: its answer goes with it.
CREATE TRIGGER idempotency_answers_go_with_their_key AFTER DELETE ON idempotency_keys
BEGIN
    DELETE FROM idempotency_answers WHERE key_id = OLD.id;
END;
