-- A synchronous send's answer, kept under its Idempotency-Key, rides in the message's own row:
-- the record is written anyway, and a row of its own cost the writer a statement more (with a
-- lookup of the key) and more pages in the log. The key's row names the message its claim was
-- made for; a key is done when it has an answer in either place (other answers, and those
-- written before this migration, stay in `idempotency_answers`).
ALTER TABLE idempotency_keys ADD COLUMN message_id TEXT;
ALTER TABLE messages ADD COLUMN key_answer_status INTEGER;
ALTER TABLE messages ADD COLUMN key_answer_body BLOB;
ALTER TABLE messages ADD COLUMN key_answer_retry_after_secs INTEGER;

-- A key's answer goes with the key, wherever it is kept.
CREATE TRIGGER idempotency_answers_in_records_go_with_their_key AFTER DELETE ON idempotency_keys
WHEN OLD.message_id IS NOT NULL
BEGIN
    UPDATE messages
    SET key_answer_status = NULL, key_answer_body = NULL, key_answer_retry_after_secs = NULL
    WHERE id = OLD.message_id AND key_answer_body IS NOT NULL;
END;
