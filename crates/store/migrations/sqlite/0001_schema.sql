-- Timestamps are unix milliseconds; JSON is stored as text.

CREATE TABLE messages (
    id TEXT PRIMARY KEY NOT NULL,
    client TEXT NOT NULL,
    recipient TEXT NOT NULL,
    sender TEXT NOT NULL,
    message_type TEXT NOT NULL,
    refs TEXT,
    callback_url TEXT,
    route TEXT NOT NULL,
    provider TEXT,
    endpoint TEXT,
    provider_message_id TEXT,
    status TEXT NOT NULL,
    error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX messages_by_provider_message_id ON messages (provider_message_id);

CREATE TABLE message_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX message_events_by_message ON message_events (message_id, occurred_at, seq);

-- Provider events already handled, so that a redelivered webhook is not handled twice.
CREATE TABLE webhook_dedup (
    dedup_key TEXT PRIMARY KEY NOT NULL,
    seen_at INTEGER NOT NULL
);

CREATE TABLE idempotency_keys (
    client TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
    created_at INTEGER NOT NULL,
    response_status INTEGER,
    response_body BLOB,
    retry_after_secs INTEGER,
    PRIMARY KEY (client, idempotency_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- Events out, one row per event and target; `signer` names the secret, never holds it.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    target_url TEXT NOT NULL,
    signer TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    leased_until INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    delivered_at INTEGER
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
