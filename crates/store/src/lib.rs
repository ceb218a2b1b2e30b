//! Persistence for the gateway: messages and their status history, webhook redelivery guards,
//! idempotency keys and the outbox of events out.
//!
//! SQLite (one process, `sqlite.rs`) and PostgreSQL (several replicas sharing one database,
//! `postgres.rs`). Each store has one writer that commits the writes of many callers together
//! (group commit, `batch.rs`); a caller is answered only once its write is committed.
//! Timestamps are unix milliseconds; the caller formats them.

mod batch;
mod error;
mod open;
mod postgres;
mod queue;
mod rows;
mod sql_queue;
mod sql_store;
mod sqlite;
mod sqlite_checkpoint;
mod sqlite_queue;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
mod writes;

use async_trait::async_trait;
use serde_json::Value;

pub use batch::{Histogram, WriteStats, DEFAULT_BATCH_MAX, DEFAULT_LINGER};
pub use error::StoreError;
pub use open::open;
pub use queue::{
    Canceled, Claimed, NewQueued, QueueClaim, QueueFinish, QueueStats, QueuedMessage, Slotted,
};

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers when the database does (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Waits for running queries, then closes the connections (SQLite folds its write-ahead log
    /// back into the database file). Calls after this fail.
    async fn close(&self);

    // --- messages ---

    async fn insert_message(&self, m: &NewMessage) -> Result<(), StoreError>;
    /// The send finished: accepted (provider, endpoint, provider_message_id) or failed (error).
    /// Appends an event `{status, at, error}`. The status only changes while the message is still
    /// `queued`: a status webhook that overtook the provider's answer is not undone.
    async fn record_outcome(&self, id: &str, outcome: &SendOutcome) -> Result<(), StoreError>;
    /// A message whose send has finished, recorded in one write: the message with the outcome
    /// (its status is the outcome's) and the outcome's event. What `insert_message` and then
    /// `record_outcome` would leave, for half the writes. With `key`, the same write completes
    /// that idempotency key as `complete_key` would (a key no longer there is left alone): the
    /// record and the answer kept for retries are committed together, or neither is.
    async fn record_sent(
        &self,
        m: &NewMessage,
        outcome: &SendOutcome,
        key: Option<KeyAnswer<'_>>,
    ) -> Result<(), StoreError>;
    /// The message with its events, oldest first.
    async fn message(&self, id: &str) -> Result<Option<MessageRecord>, StoreError>;
    async fn message_by_provider_id(
        &self,
        provider_message_id: &str,
    ) -> Result<Option<MessageRecord>, StoreError>;
    /// A status from a webhook, in one transaction: a `dedup_key` seen before → `Duplicate` and
    /// nothing is written; otherwise the event is appended and the message's status moves only if
    /// `advances(current, new)`. The rule is the caller's: the store owns no status order.
    async fn apply_status(
        &self,
        id: &str,
        change: &StatusChange,
        advances: StatusRule,
    ) -> Result<Applied, StoreError>;
    /// Redelivery guard for webhook events not tied to a stored message (inbound, calls):
    /// true the first time `dedup_key` is seen.
    async fn first_sighting(&self, dedup_key: &str, at_ms: i64) -> Result<bool, StoreError>;

    // --- idempotency, per client and key ---

    /// `Fresh` (the key is now in flight), `Replay` when done with the same fingerprint, `InFlight`
    /// when in flight with the same fingerprint, `BodyMismatch` for another fingerprint. A row
    /// older than `ttl_ms` counts as absent and is taken over. Of concurrent claims of one key,
    /// across processes sharing the database, exactly one gets `Fresh`. `message_id` names the
    /// message the request will record with `record_sent`, if it is one that sends: a store may
    /// then keep the key's answer in that record (SQLite does) instead of in a row of its own.
    async fn claim_key(
        &self,
        client: &str,
        key: &str,
        fingerprint: &str,
        now_ms: i64,
        ttl_ms: i64,
        message_id: Option<&str>,
    ) -> Result<KeyClaim, StoreError>;
    async fn complete_key(
        &self,
        client: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError>;
    /// The request was abandoned before anything was sent: free the key (if still in flight).
    async fn release_key(&self, client: &str, key: &str) -> Result<(), StoreError>;

    // --- outbox for events out ---

    async fn enqueue(&self, deliveries: &[NewDelivery]) -> Result<(), StoreError>;
    /// Up to `limit` pending deliveries that are due and not leased, oldest due first, leased
    /// until `now_ms + lease_ms` so that no other worker or replica takes them meanwhile.
    async fn claim_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;
    async fn mark_delivered(&self, id: i64, at_ms: i64) -> Result<(), StoreError>;
    /// Back to pending, due at `next_attempt_at_ms`; the lease is dropped.
    async fn reschedule(
        &self,
        id: i64,
        attempts: u32,
        next_attempt_at_ms: i64,
        last_error: &str,
    ) -> Result<(), StoreError>;
    /// No more attempts: the delivery is kept, marked dead, for inspection.
    async fn give_up(&self, id: i64, attempts: u32, last_error: &str) -> Result<(), StoreError>;

    // --- the queue of messages to send (`queue.rs`) ---

    /// Stores each message with its queue entry, all in one transaction.
    async fn enqueue_messages(&self, messages: &[NewQueued]) -> Result<(), StoreError>;
    /// The sender's next messages, up to `limit`, each with a pacing slot within the claim's
    /// horizon: normal before bulk, then the longest due; none whose `expires_at` comes before
    /// its slot, and none to a recipient still inside `recipient_gap_ms` of the slot of the last
    /// hand-over to it. Of concurrent claims across replicas, each message goes to one, and each
    /// slot to one.
    async fn claim_queued(&self, claim: &QueueClaim) -> Result<Claimed, StoreError>;
    /// Ends the hand-over `owner` holds: the message leaves the queue with its outcome (and
    /// event), or waits for a retry. False, and nothing written, when the hand-over is no
    /// longer `owner`'s (its lease ran out and another replica took it over).
    async fn finish_queued(
        &self,
        id: &str,
        owner: &str,
        finish: &QueueFinish,
    ) -> Result<bool, StoreError>;
    /// Extends the leases of every hand-over `owner` holds; how many it holds.
    async fn renew_leases(&self, owner: &str, until_ms: i64) -> Result<u64, StoreError>;
    /// Hand-overs whose lease ran out before `now_ms` (their replica died mid-send): up to
    /// `limit`, now `owner`'s, for it to end; their outcome is unknown.
    async fn take_over_lost(
        &self,
        now_ms: i64,
        owner: &str,
        lease_until_ms: i64,
        limit: u32,
    ) -> Result<Vec<QueuedMessage>, StoreError>;
    /// Queued messages (not being handed over) whose `expires_at` is at or before `now_ms`, up
    /// to `limit`: failed with `error`, out of the queue. Their ids.
    async fn expire_queued(
        &self,
        now_ms: i64,
        error: &Value,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;
    /// Cancels `client`'s message `id` if it is still queued and not being handed over.
    async fn cancel_queued(
        &self,
        id: &str,
        client: &str,
        at_ms: i64,
    ) -> Result<Canceled, StoreError>;
    /// A hand-over of `sender` started late (its replica was slow): no slot of the sender comes
    /// before `not_before_us`, so the next hand-over keeps its distance from this one.
    async fn push_pacing(&self, sender: &str, not_before_us: i64) -> Result<(), StoreError>;
    /// Counts `hand_overs` made outside the queue (synchronous sends) against the sender's
    /// pacing: its next slot moves on by that many intervals, but never more than one second
    /// past `now_us`.
    async fn advance_pacing(
        &self,
        sender: &str,
        hand_overs: u32,
        interval_us: i64,
        now_us: i64,
    ) -> Result<(), StoreError>;
    /// Forgets per-recipient gaps that ended before `before_ms`.
    async fn forget_recipient_gaps(&self, before_ms: i64) -> Result<(), StoreError>;
    async fn queue_stats(&self, now_ms: i64) -> Result<QueueStats, StoreError>;

    /// What the store's writer has done so far (batches, their sizes, commit latency), for
    /// metrics; None for a store without one.
    fn write_stats(&self) -> Option<WriteStats> {
        None
    }
}

/// `advances(current, new)`: whether a message in status `current` moves to `new`.
/// (An alias, because `#[async_trait]` would otherwise rewrite the elided lifetimes.)
pub type StatusRule = fn(&str, &str) -> bool;

#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub id: String,
    pub client: String,
    pub to: String,
    pub from: String,
    pub message_type: String,
    pub refs: Option<Value>,
    pub callback_url: Option<String>,
    /// The endpoints the message may go to, in failover order.
    pub route: Vec<String>,
    /// Normally `queued`.
    pub status: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SendOutcome {
    /// `accepted` or `failed`.
    pub status: String,
    pub provider: Option<String>,
    pub endpoint: Option<String>,
    pub provider_message_id: Option<String>,
    pub error: Option<Value>,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessageRecord {
    pub id: String,
    pub client: String,
    pub to: String,
    pub from: String,
    pub message_type: String,
    pub refs: Option<Value>,
    pub callback_url: Option<String>,
    pub route: Vec<String>,
    pub provider: Option<String>,
    pub endpoint: Option<String>,
    pub provider_message_id: Option<String>,
    pub status: String,
    pub error: Option<Value>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// In the order Switchboard recorded them; each keeps the time its source gave.
    pub events: Vec<StoredEvent>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub status: String,
    pub at_ms: i64,
    pub error: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub status: String,
    pub at_ms: i64,
    pub error: Option<Value>,
    /// Identifies the provider event (e.g. provider message id + status) to drop redeliveries.
    pub dedup_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Duplicate,
    Recorded {
        /// The message's status after the change.
        status: String,
        advanced: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub retry_after_secs: Option<u64>,
}

/// The answer to keep under a client's idempotency key (`complete_key`'s arguments), written
/// along with another write.
#[derive(Debug, Clone, Copy)]
pub struct KeyAnswer<'a> {
    pub client: &'a str,
    pub key: &'a str,
    pub response: &'a StoredResponse,
    /// The message `claim_key` named for this key, if any.
    pub message_id: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    Fresh,
    Replay(StoredResponse),
    InFlight,
    BodyMismatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub event_id: String,
    pub event_type: String,
    pub target_url: String,
    /// Names the signing secret (e.g. "subscriber:0" or "client:orders"); the secret itself is
    /// never stored.
    pub signer: String,
    pub body: String,
    pub next_attempt_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub target_url: String,
    pub signer: String,
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
}
