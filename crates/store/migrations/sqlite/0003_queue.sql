-- Messages waiting for their hand-over to a provider, or in it (docs/async.md). A row leaves
-- the table when its message becomes final; the message's status is in `messages`.
CREATE TABLE queue (
    message_id TEXT PRIMARY KEY NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    body TEXT NOT NULL,
    priority INTEGER NOT NULL,               -- 0 normal, 1 bulk
    due_at INTEGER NOT NULL,
    expires_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'handing_over')),
    owner TEXT,
    leased_until INTEGER NOT NULL DEFAULT 0
);
-- The next message of a sender in one lane, and the next time one of a sender's is due.
CREATE INDEX queue_next ON queue (sender, state, priority, due_at);
CREATE INDEX queue_due ON queue (sender, state, due_at);
CREATE INDEX queue_expiry ON queue (state, expires_at);
CREATE INDEX queue_leases ON queue (state, leased_until);
CREATE INDEX queue_owner ON queue (owner);

-- The earliest time (unix µs) each sender may hand its next message over.
CREATE TABLE sender_pacing (
    sender TEXT PRIMARY KEY NOT NULL,
    next_slot_us INTEGER NOT NULL
);

-- The earliest time (unix ms) a sender may hand over its next message to one recipient.
CREATE TABLE recipient_pacing (
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    next_at INTEGER NOT NULL,
    PRIMARY KEY (sender, recipient)
);
CREATE INDEX recipient_pacing_by_time ON recipient_pacing (next_at);
