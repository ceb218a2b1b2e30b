//! The queue of messages to send (docs/async.md): what a queued message is, how a replica claims
//! the next one a sender may hand over, and how a hand-over ends.
//!
//! A queued message is a row in `messages` (its status, `queued` until final) plus a row in
//! `queue` (when it is due, its lane, its attempts, who is handing it over). The queue row is
//! deleted when the message becomes final; the two change together, in one transaction.
//!
//! Pacing lives in the database so that it holds summed over every replica: a sender's
//! `next_slot_us` is the earliest time its next hand-over may happen. A claim gives each message
//! it takes a slot — the next free one, then one interval later each — and moves `next_slot_us`
//! past the last, in the same transaction. It takes messages only for slots that come within
//! its horizon (a few milliseconds), so a claim serves a burst of slots in one transaction
//! while each hand-over still waits for its own slot.

use crate::NewMessage;

/// A message to queue: the message row, plus what the worker needs to send it later.
#[derive(Debug, Clone, PartialEq)]
pub struct NewQueued {
    pub message: NewMessage,
    /// The request body as the caller sent it (validated); the worker parses it again.
    pub body: String,
    pub bulk: bool,
    /// Not handed over before this (unix ms): `send_at`, or the time it was queued.
    pub due_at_ms: i64,
    /// Not handed over from this time on (unix ms): it fails `expired`.
    pub expires_at_ms: Option<i64>,
}

/// What a replica asks for: the next message of `sender` it may hand over now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueClaim {
    pub sender: String,
    pub now_us: i64,
    /// The sender's pacing interval: 1 s / `max_per_second`.
    pub interval_us: i64,
    /// Least time between two hand-overs from this sender to one recipient; 0 for none.
    pub recipient_gap_ms: i64,
    /// The replica taking the message; only it may end the hand-over.
    pub owner: String,
    /// Until when the hand-over is the owner's, unless it renews it.
    pub lease_until_ms: i64,
    /// Most messages to take.
    pub limit: u32,
    /// Take messages for slots up to this long after `now_us` (0: only a slot that has come).
    pub horizon_us: i64,
}

impl QueueClaim {
    pub fn now_ms(&self) -> i64 {
        self.now_us.div_euclid(1000)
    }
}

/// A message being handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub id: String,
    pub client: String,
    pub sender: String,
    pub recipient: String,
    pub body: String,
    pub bulk: bool,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    /// Hand-overs so far, this one included.
    pub attempts: u32,
}

/// A claimed message and its pacing slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slotted {
    pub message: QueuedMessage,
    /// Hand it over at this time (unix µs), not before.
    pub slot_us: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// Hand each over at its slot; the sender's next free slot is one interval after the last.
    Messages(Vec<Slotted>),
    /// The sender's next free slot (unix µs) is beyond the claim's horizon.
    Paced { until_us: i64 },
    /// Nothing of this sender can go now; something may at `next_due_ms` (unix ms).
    Idle { next_due_ms: Option<i64> },
}

/// How a hand-over ended.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueFinish {
    /// Accepted, or failed for good: the message leaves the queue with this outcome.
    Final(crate::SendOutcome),
    /// Failed in a way worth trying again, from `due_at_ms` on.
    Retry { due_at_ms: i64 },
}

/// What `cancel_queued` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Canceled {
    /// The message was still queued: it is `canceled` now, and will never be handed over.
    Canceled(Box<crate::MessageRecord>),
    /// The message exists for this client but is being handed over or is final.
    NotCancelable { status: String },
    /// No such message for this client.
    NotFound,
}

/// The queue as metrics show it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Messages waiting (not being handed over), by sender.
    pub queued_by_sender: Vec<(String, u64)>,
    /// When the message that has been due the longest became due (unix ms).
    pub oldest_due_ms: Option<i64>,
}
