//! Synchronous sends count against their sender's pacing budget (docs/async.md) without
//! waiting for it and without a store write each: they are counted here, and the counts are
//! written to the store in one go by [`SyncPacing::run`] at most every [`FLUSH_EVERY`], and by
//! the queue's worker before it claims (so this replica's own queued messages always see them).

use crate::clock;
use crate::state::AppState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// How long counts wait to be written with the ones after them. Writing them as soon as the
/// writer was free made one store write for every two synchronous sends under load.
const FLUSH_EVERY: Duration = Duration::from_millis(10);

#[derive(Default)]
pub struct SyncPacing {
    /// Hand-overs not yet written, by sender, with the sender's interval (µs).
    pending: Mutex<HashMap<String, (u32, i64)>>,
    ready: Notify,
}

impl SyncPacing {
    /// One synchronous hand-over by `sender`, whose pacing interval is `interval_us`.
    pub fn count(&self, sender: &str, interval_us: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let first = pending.is_empty();
        match pending.get_mut(sender) {
            Some((count, interval)) => {
                *count = count.saturating_add(1);
                *interval = interval_us;
            }
            None => {
                pending.insert(sender.to_owned(), (1, interval_us));
            }
        }
        drop(pending);
        // One wake-up per flush, not per send.
        if first {
            self.ready.notify_one();
        }
    }

    fn take(&self) -> HashMap<String, (u32, i64)> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Writes whatever has been counted since the last write. A failed write is logged and
    /// dropped (pacing is a budget, not a record).
    pub async fn flush(&self, state: &AppState) {
        for (sender, (hand_overs, interval_us)) in self.take() {
            if let Err(error) = state
                .store
                .advance_pacing(&sender, hand_overs, interval_us, clock::now_us())
                .await
            {
                tracing::warn!(%error, sender, "synchronous sends not counted against pacing");
            }
        }
    }

    /// Until the gateway's state is dropped: a flush [`FLUSH_EVERY`] after the first count that
    /// found nothing waiting.
    pub async fn run(self: Arc<Self>, state: Weak<AppState>) {
        loop {
            // Checked again at least every second, so that a dropped state ends the loop.
            let _ = tokio::time::timeout(Duration::from_secs(1), self.ready.notified()).await;
            tokio::time::sleep(FLUSH_EVERY).await;
            let Some(state) = state.upgrade() else { return };
            self.flush(&state).await;
        }
    }
}
