//! The queue of messages to send (docs/async.md): what a queued message is, how a replica claims
//! the next one a sender may hand over, and how a hand-over ends.
//!
//! A queued message is a row in `messages` (its status, `queued` until final) plus a row in
//! `queue` (when it is due, its lane, its attempts, who is handing it over). The queue row is
//! deleted when the message becomes final; the two change together, in one transaction.
//!
//! Pacing lives in the database so that it holds summed over every replica: a sender's
//! `next_slot_us` is the earliest time its next hand-over may happen, and a claim takes a
//! message only when that time has come, moving it one interval on, in the same transaction.

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// Hand it over now; the sender's next slot has moved on.
    Message(QueuedMessage),
    /// The sender's pacing allows its next hand-over at this time (unix µs).
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
