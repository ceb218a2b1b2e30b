//! Asynchronous sending (docs/async.md): a validated message is stored with its queue entry and
//! answered `queued`; the [`worker`] hands it to a provider when its sender's pacing allows,
//! with the same routing, failover and circuits as a synchronous send, and retries what is
//! worth retrying.

mod sync_pacing;
pub mod worker;

pub use sync_pacing::SyncPacing;

use crate::clock;
use crate::events::{self, Event, EventType};
use crate::state::AppState;
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// One permit per hand-over in flight (`queue.workers`).
    pub in_flight: Arc<Semaphore>,
    workers: u32,
    /// Wakes the worker: something was queued, or queued again.
    pub ready: Notify,
    /// Set on shutdown: no new hand-overs.
    pub stopping: AtomicBool,
}

impl QueueRuntime {
    pub fn new(workers: usize) -> Self {
        let workers = u32::try_from(workers)
            .unwrap_or(u32::MAX)
            .min(Semaphore::MAX_PERMITS as u32);
        QueueRuntime {
            owner: ulid::Ulid::new().to_string(),
            in_flight: Arc::new(Semaphore::new(workers as usize)),
            workers,
            ready: Notify::new(),
            stopping: AtomicBool::new(false),
        }
    }

    /// Stops taking messages and waits (up to `timeout`) for the hand-overs in flight to end,
    /// so that none is left for a lease to run out on. True when none is left.
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.stopping.store(true, Ordering::Release);
        self.ready.notify_one();
        tokio::time::timeout(timeout, self.in_flight.acquire_many(self.workers))
            .await
            .is_ok_and(|permits| permits.is_ok())
    }
}

/// The 202 body of a queued message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Queued {
    pub id: String,
    /// Always `queued`.
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
