//! How a synchronous send is put on record (docs/api.md, "What is stored when").
//!
//! A message whose send went well is recorded once, after the send, with its outcome: one store
//! write per message instead of an insert before the send and an update after it. Two things
//! keep that as safe as recording first:
//! - [`StoreHealth`]: once a store write has failed, messages are recorded before their send
//!   again (a store that cannot take the record answers 503 and nothing is sent), until a write
//!   succeeds.
//! - [`SendsInFlight`]: a provider's status webhook that overtakes the provider's answer (the
//!   message is not on record yet) waits here until it is.

use std::collections::HashSet;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// Whether the store's writes have been going through.
#[derive(Debug, Default)]
pub struct StoreHealth {
    failing: AtomicBool,
}

impl StoreHealth {
    /// True while the last write failed: record before sending.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    pub fn wrote(&self, ok: bool) {
        if self.failing() == ok {
            self.failing.store(!ok, Ordering::Relaxed);
        }
    }
}

/// The synchronous sends of this process whose message is not on record yet.
#[derive(Debug, Default)]
pub struct SendsInFlight {
    ids: Mutex<HashSet<String>>,
    /// Wakes every waiter when a send is recorded (or given up); each checks for its own.
    recorded: Notify,
}

/// Holds a message id in [`SendsInFlight`] until dropped: recorded, failed or abandoned.
pub struct InFlight<'a> {
    sends: &'a SendsInFlight,
    id: String,
}

impl SendsInFlight {
    pub fn begin(&self, id: &str) -> InFlight<'_> {
        self.lock().insert(id.to_owned());
        InFlight {
            sends: self,
            id: id.to_owned(),
        }
    }

    /// Waits, up to `limit`, until `id` is not in flight here; true if it was.
    pub async fn wait_recorded(&self, id: &str, limit: Duration) -> bool {
        let wait = async {
            let mut waited = false;
            loop {
                // Registered before the check, so a send recorded in between still wakes it.
                let mut recorded = pin!(self.recorded.notified());
                recorded.as_mut().enable();
                if !self.lock().contains(id) {
                    return waited;
                }
                waited = true;
                recorded.await;
            }
        };
        tokio::time::timeout(limit, wait).await.unwrap_or(true)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.sends.lock().remove(&self.id);
        self.sends.recorded.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_wakes_when_its_send_is_recorded() {
        let sends = std::sync::Arc::new(SendsInFlight::default());
        let guard = sends.begin("m1");
        let other = sends.begin("m2");
        let waiter = {
            let sends = sends.clone();
            tokio::spawn(async move { sends.wait_recorded("m1", Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(other);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "woken by another message's record");
        drop(guard);
        assert!(waiter.await.unwrap(), "it waited");
        assert!(!sends.wait_recorded("m1", Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn a_waiter_gives_up_at_its_limit() {
        let sends = SendsInFlight::default();
        let _guard = sends.begin("m1");
        let started = std::time::Instant::now();
        assert!(sends.wait_recorded("m1", Duration::from_millis(50)).await);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn health_follows_the_last_write() {
        let health = StoreHealth::default();
        assert!(!health.failing());
        health.wrote(false);
        assert!(health.failing());
        health.wrote(true);
        assert!(!health.failing());
    }
}
