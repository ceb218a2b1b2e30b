-- Timestamps are unix milliseconds; JSON is stored as text, as on SQLite, so that one code path reads both.

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
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
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX messages_by_provider_message_id ON messages (provider_message_id);

CREATE TABLE message_events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    error TEXT
);
CREATE INDEX message_events_by_message ON message_events (message_id, occurred_at, seq);

-- Provider events already handled, so that a redelivered webhook is not handled twice.
CREATE TABLE webhook_dedup (
    dedup_key TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);

CREATE TABLE idempotency_keys (
    client TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
    created_at BIGINT NOT NULL,
    response_status BIGINT,
    response_body BYTEA,
    retry_after_secs BIGINT,
    PRIMARY KEY (client, idempotency_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- Events out, one row per event and target; `signer` names the secret, never holds it.
CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    target_url TEXT NOT NULL,
    signer TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    leased_until BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    delivered_at BIGINT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
