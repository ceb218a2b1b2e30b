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
//!
//! A send that ended just as the store's writes began to fail has reached the provider, but its
//! record could not be written: [`LateRecords`] keeps it in memory and writes it once the store
//! takes writes again.

use foldhash::HashSet;
use std::collections::VecDeque;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use switchboard_store::{KeyAnswer, NewMessage, SendOutcome, Store, StoredResponse};
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

/// Records of sent messages that the store could not take when their send ended, oldest
/// first, written again every [`LATE_RETRY_EVERY`] until the store takes them. At most
/// [`LATE_RECORDS_MAX`] wait; beyond that, and at the process's end, a record is lost (logged).
#[derive(Default)]
pub struct LateRecords {
    waiting: Mutex<VecDeque<LateRecord>>,
    /// Records out of `waiting` while a write tries them: they still wait, for the gauge and
    /// the bound. Changed under `waiting`'s lock, but for each one done.
    in_hand: AtomicUsize,
    /// One write at a time (the retries' and the last one at shutdown), so that what is left
    /// after a write is what the store did not take.
    writing: tokio::sync::Mutex<()>,
}

struct LateRecord {
    message: NewMessage,
    outcome: SendOutcome,
    /// The answer to keep under the request's idempotency key, written with the record.
    key: Option<LateKeyAnswer>,
    /// Writes of it that failed while the store answered.
    refused: u32,
}

/// The answer a request's idempotency key keeps, owned, to be written with a late record.
pub struct LateKeyAnswer {
    pub client: String,
    pub key: String,
    pub response: StoredResponse,
    /// The message the key was claimed for, if any.
    pub message_id: Option<String>,
}

impl LateKeyAnswer {
    fn for_store(&self) -> KeyAnswer<'_> {
        KeyAnswer {
            client: &self.client,
            key: &self.key,
            response: &self.response,
            message_id: self.message_id.as_deref(),
        }
    }
}

/// Records waiting at most: about 10 MiB of memory.
pub const LATE_RECORDS_MAX: usize = 10_000;
const LATE_RETRY_EVERY: Duration = Duration::from_secs(1);
/// A record whose write fails this many times while the store answers is given up (logged),
/// so that one record the store refuses cannot hold back the others for ever.
const LATE_REFUSALS_MAX: u32 = 60;

impl LateRecords {
    /// Keeps `message`'s record, and the answer its idempotency key keeps if it had one, to
    /// write later; false when too many wait already (it is lost).
    pub fn keep(
        &self,
        message: NewMessage,
        outcome: SendOutcome,
        key: Option<LateKeyAnswer>,
    ) -> bool {
        let mut waiting = self.lock();
        if waiting.len() + self.in_hand.load(Ordering::Relaxed) >= LATE_RECORDS_MAX {
            return false;
        }
        waiting.push_back(LateRecord {
            message,
            outcome,
            key,
            refused: 0,
        });
        true
    }

    /// How many records wait, those a write is trying included.
    pub fn waiting(&self) -> usize {
        let waiting = self.lock();
        waiting.len() + self.in_hand.load(Ordering::Relaxed)
    }

    /// Writes the waiting records, oldest first, until one fails (the rest wait for the next
    /// try). A record the store already holds is done: a write that failed on the way may have
    /// been committed all the same.
    pub async fn write(&self, store: &dyn Store) {
        let _writing = self.writing.lock().await;
        let mut taken = {
            let mut waiting = self.lock();
            self.in_hand.store(waiting.len(), Ordering::Relaxed);
            std::mem::take(&mut *waiting)
        };
        while let Some(mut record) = taken.pop_front() {
            let (message, outcome) = (&record.message, &record.outcome);
            let key = record.key.as_ref().map(LateKeyAnswer::for_store);
            // The record and the key's answer were one write: with the record, the answer is
            // there too.
            let written = match store.message(&message.id).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => store.record_sent(message, outcome, key).await,
                Err(error) => Err(error),
            };
            match written {
                Ok(()) => {
                    self.in_hand.fetch_sub(1, Ordering::Relaxed);
                    tracing::info!(message_id = %message.id, "send outcome recorded late");
                }
                // The store answers, but not to this record.
                Err(error) if store.ping().await.is_ok() => {
                    record.refused += 1;
                    if record.refused >= LATE_REFUSALS_MAX {
                        self.in_hand.fetch_sub(1, Ordering::Relaxed);
                        tracing::error!(%error, message_id = %message.id, "sent message not on record: the store refuses its record");
                        continue;
                    }
                    taken.push_front(record);
                    break;
                }
                Err(_) => {
                    taken.push_front(record);
                    break;
                }
            }
        }
        // Back in front of any kept meanwhile, in their order.
        let mut waiting = self.lock();
        while let Some(record) = taken.pop_back() {
            waiting.push_front(record);
        }
        self.in_hand.store(0, Ordering::Relaxed);
    }

    /// Until the store is dropped: writes what waits every [`LATE_RETRY_EVERY`].
    pub async fn run(self: Arc<Self>, store: Weak<dyn Store>) {
        loop {
            tokio::time::sleep(LATE_RETRY_EVERY).await;
            let Some(store) = store.upgrade() else { return };
            if self.waiting() > 0 {
                self.write(store.as_ref()).await;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<LateRecord>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
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

    fn message(id: &str) -> NewMessage {
        NewMessage {
            id: id.to_owned(),
            client: "orders".to_owned(),
            to: "+14085551234".to_owned(),
            from: "+15550783881".to_owned(),
            message_type: "text".to_owned(),
            refs: None,
            callback_url: None,
            route: vec!["meta".to_owned()],
            status: "queued".to_owned(),
            created_at_ms: 1_000,
        }
    }

    fn accepted(provider_message_id: &str) -> SendOutcome {
        SendOutcome {
            status: "accepted".to_owned(),
            provider: Some("meta".to_owned()),
            endpoint: Some("meta".to_owned()),
            provider_message_id: Some(provider_message_id.to_owned()),
            error: None,
            at_ms: 2_000,
        }
    }

    /// A new SQLite store in the file at `path`.
    async fn sqlite_store(path: &std::path::Path) -> Arc<dyn switchboard_store::Store> {
        switchboard_store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn late_records_are_written_once_and_a_record_already_held_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir.path().join("late.db")).await;
        // Committed although its writer heard of a failure: already on record.
        store
            .record_sent(&message("m1"), &accepted("wamid.1"), None)
            .await
            .unwrap();
        let late = LateRecords::default();
        assert!(late.keep(message("m1"), accepted("wamid.1"), None));
        assert!(late.keep(message("m2"), accepted("wamid.2"), None));
        assert_eq!(late.waiting(), 2);
        late.write(store.as_ref()).await;
        assert_eq!(late.waiting(), 0);
        for (id, provider_id) in [("m1", "wamid.1"), ("m2", "wamid.2")] {
            let record = store.message(id).await.unwrap().expect("on record");
            assert_eq!(record.status, "accepted");
            assert_eq!(record.provider_message_id.as_deref(), Some(provider_id));
        }
        store.close().await;
    }

    #[tokio::test]
    async fn a_late_record_keeps_its_idempotency_keys_answer() {
        use switchboard_store::KeyClaim;
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir.path().join("late.db")).await;
        let day_ms = 24 * 60 * 60 * 1000;
        let claim = store
            .claim_key("orders", "k1", "fingerprint", 1_000, day_ms, Some("m1"))
            .await
            .unwrap();
        assert_eq!(claim, KeyClaim::Fresh);
        let answer = StoredResponse {
            status: 202,
            body: br#"{"id":"m1"}"#.to_vec(),
            retry_after_secs: None,
        };
        let late = LateRecords::default();
        let key = LateKeyAnswer {
            client: "orders".to_owned(),
            key: "k1".to_owned(),
            response: answer.clone(),
            message_id: Some("m1".to_owned()),
        };
        late.keep(message("m1"), accepted("wamid.1"), Some(key));
        late.write(store.as_ref()).await;
        assert_eq!(late.waiting(), 0);
        assert!(store.message("m1").await.unwrap().is_some());
        // A repeat of the request now replays the answer instead of finding the key in flight.
        let repeat = store
            .claim_key("orders", "k1", "fingerprint", 2_000, day_ms, None)
            .await
            .unwrap();
        assert_eq!(repeat, KeyClaim::Replay(answer));
        store.close().await;
    }

    #[tokio::test]
    async fn late_records_wait_while_the_store_fails_and_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir.path().join("late.db")).await;
        store.close().await;
        let late = LateRecords::default();
        late.keep(message("m1"), accepted("wamid.1"), None);
        late.keep(message("m2"), accepted("wamid.2"), None);
        // A closed store takes no write: both wait, in their order.
        late.write(store.as_ref()).await;
        assert_eq!(late.waiting(), 2);
        late.keep(message("m3"), accepted("wamid.3"), None);
        let order: Vec<String> = late.lock().iter().map(|r| r.message.id.clone()).collect();
        assert_eq!(order, ["m1", "m2", "m3"]);
    }

    #[tokio::test]
    async fn a_record_the_store_refuses_is_given_up_and_no_longer_holds_back_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.db");
        let store = sqlite_store(&path).await;
        switchboard_store::testing::execute_on_sqlite(
            &path,
            "CREATE TRIGGER refuse_m1 BEFORE INSERT ON messages WHEN NEW.id = 'm1' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
        let late = LateRecords::default();
        late.keep(message("m1"), accepted("wamid.1"), None);
        late.keep(message("m2"), accepted("wamid.2"), None);
        for _ in 1..LATE_REFUSALS_MAX {
            late.write(store.as_ref()).await;
        }
        // Refused while the store answers, but not yet given up: m2 still waits behind it.
        assert_eq!(late.waiting(), 2);
        assert!(store.message("m2").await.unwrap().is_none());
        late.write(store.as_ref()).await;
        assert_eq!(late.waiting(), 0);
        assert!(store.message("m1").await.unwrap().is_none());
        assert!(store.message("m2").await.unwrap().is_some());
        store.close().await;
    }

    #[tokio::test]
    async fn records_a_write_is_trying_still_count_as_waiting() {
        use futures_util::FutureExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.db");
        let store = sqlite_store(&path).await;
        let late = LateRecords::default();
        late.keep(message("m1"), accepted("wamid.1"), None);
        late.keep(message("m2"), accepted("wamid.2"), None);
        // The write takes both and waits for the store: a scrape of the gauge then, or a bound
        // check, still sees them. The lock keeps the store's writer from committing m1 until
        // the count is read, however fast the machine.
        let lock = switchboard_store::testing::hold_sqlite_write_lock(&path).unwrap();
        let mut write = std::pin::pin!(late.write(store.as_ref()));
        assert!(
            write.as_mut().now_or_never().is_none(),
            "the store answers later"
        );
        assert_eq!(late.waiting(), 2);
        drop(lock);
        write.await;
        assert_eq!(late.waiting(), 0);
        store.close().await;
    }

    #[test]
    fn late_records_are_bounded() {
        let late = LateRecords::default();
        for n in 0..LATE_RECORDS_MAX {
            assert!(late.keep(message(&format!("m{n}")), accepted("wamid"), None));
        }
        assert!(!late.keep(message("one more"), accepted("wamid"), None));
        assert_eq!(late.waiting(), LATE_RECORDS_MAX);
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
