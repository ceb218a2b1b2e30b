//! Asynchronous sending (docs/async.md): a validated message is stored with its queue entry and
//! answered `queued`; the [`worker`] hands it to a provider when its sender's pacing allows,
//! with the same routing, failover and circuits as a synchronous send, and retries what is
//! worth retrying.

mod local_pacing;
mod sync_pacing;
pub mod worker;

pub use sync_pacing::SyncPacing;

use crate::clock;
use crate::events::{self, Event, EventType};
use crate::state::AppState;
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchboard_core::event::MessageStatus;
use switchboard_core::message::Priority;
use switchboard_core::Schedule;
use switchboard_store::{MessageRecord, NewMessage, NewQueued, StoreError};
use tokio::sync::{Notify, Semaphore};

/// This replica's part of the queue: who it is, its workers, and the signals between the API,
/// the worker and shutdown.
pub struct QueueRuntime {
    /// Names this replica's hand-overs in the store (a fresh id per process).
    pub owner: String,
    /// One permit per send in flight (`queue.workers`).
    pub in_flight: Arc<Semaphore>,
    /// Hand-overs claimed and not yet recorded (waiting for their slot, sending, or recording).
    unfinished: AtomicUsize,
    /// Told when `unfinished` drops to zero.
    all_finished: Notify,
    /// Wakes the worker: something was queued, or queued again.
    pub ready: Notify,
    /// Set on shutdown: no new hand-overs.
    pub stopping: AtomicBool,
    pub local_pacing: local_pacing::LocalPacing,
    /// The same for each sender and recipient, when `per_recipient_gap_ms` is set.
    pub recipient_pacing: local_pacing::LocalPacing,
}

impl QueueRuntime {
    pub fn new(workers: usize) -> Self {
        let workers = workers.min(Semaphore::MAX_PERMITS);
        QueueRuntime {
            owner: ulid::Ulid::new().to_string(),
            in_flight: Arc::new(Semaphore::new(workers)),
            unfinished: AtomicUsize::new(0),
            all_finished: Notify::new(),
            ready: Notify::new(),
            stopping: AtomicBool::new(false),
            local_pacing: Default::default(),
            recipient_pacing: Default::default(),
        }
    }

    /// Counts a claimed hand-over until the returned guard is dropped (once it is recorded).
    pub fn begin(self: &Arc<Self>) -> Unfinished {
        self.unfinished.fetch_add(1, Ordering::AcqRel);
        Unfinished(self.clone())
    }

    /// Stops taking messages and waits (up to `timeout`) for the hand-overs claimed to be sent
    /// and recorded, so that none is left for a lease to run out on. True when none is left.
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.stopping.store(true, Ordering::Release);
        self.ready.notify_one();
        let all_done = async {
            loop {
                let finished = self.all_finished.notified();
                if self.unfinished.load(Ordering::Acquire) == 0 {
                    return;
                }
                finished.await;
            }
        };
        tokio::time::timeout(timeout, all_done).await.is_ok()
    }
}

/// A hand-over not yet recorded; see [`QueueRuntime::begin`].
pub struct Unfinished(Arc<QueueRuntime>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if self.0.unfinished.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.all_finished.notify_waiters();
        }
    }
}

/// The 202 body of a queued message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Queued {
    pub id: String,
    /// Always `queued`.
    #[schema(pattern = "^queued$")]
    pub status: &'static str,
    /// When the message may be handed over, when the caller set `send_at` (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_at: Option<String>,
}

/// A message's queue entry: `message` is its row (status `queued`), `body` the request as
/// validated.
pub fn entry(message: NewMessage, body: &[u8], schedule: &Schedule) -> NewQueued {
    NewQueued {
        due_at_ms: schedule.send_at_ms.unwrap_or(message.created_at_ms),
        expires_at_ms: schedule.expires_at_ms,
        bulk: schedule.priority == Priority::Bulk,
        body: String::from_utf8_lossy(body).into_owned(),
        message,
    }
}

/// Stores the messages with their queue entries (one transaction) and wakes the worker.
pub async fn enqueue(state: &AppState, entries: &[NewQueued]) -> Result<(), StoreError> {
    state.store.enqueue_messages(entries).await?;
    state.queue.ready.notify_one();
    Ok(())
}

/// The 202 body for an entry.
pub fn queued(entry: &NewQueued, schedule: &Schedule) -> Queued {
    Queued {
        id: entry.message.id.clone(),
        status: MessageStatus::Queued.as_str(),
        send_at: schedule.send_at_ms.map(clock::rfc3339),
    }
}

/// A pacing interval: 1 s / `max_per_second`, in microseconds.
pub fn interval_us(max_per_second: u32) -> i64 {
    1_000_000 / i64::from(max_per_second.max(1))
}

/// Publishes the `message.status` event of a queued message's new status, as stored.
pub async fn publish_status(state: &AppState, message: MessageRecord, error: Option<Value>) {
    let Some(status) = MessageStatus::parse(&message.status) else {
        return;
    };
    let event = Event {
        event_type: EventType::MessageStatus,
        provider: message.provider.clone(),
        occurred_at_ms: message.updated_at_ms,
        provider_message_id: message.provider_message_id.clone(),
        status: Some(status.as_str()),
        error,
        from: None,
        to: None,
        message: Some(message),
        detail: None,
    };
    if let Err(error) = events::publish(state, &state.settings(), &event).await {
        tracing::error!(%error, "queued message's status event not published");
    }
}

/// Loads the stored message `id` and publishes its status event.
pub async fn publish_stored(state: &AppState, id: &str) {
    match state.store.message(id).await {
        Ok(Some(message)) => {
            let error = message.error.clone();
            publish_status(state, message, error).await;
        }
        Ok(None) => tracing::error!(message_id = id, "queued message vanished"),
        Err(error) => tracing::error!(%error, message_id = id, "status event not published"),
    }
}
