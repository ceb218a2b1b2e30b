//! PostgreSQL: one database shared by several replicas. Row locks keep them from stepping on
//! each other; the migrator's advisory lock keeps them from migrating twice.
//!
//! The writes every message makes (`record_sent`, or `insert_message` and `record_outcome`;
//! with an `Idempotency-Key` also `claim_key` and `complete_key`) go to one writer per store,
//! which writes whatever has accumulated in one statement (so one round trip and one
//! transaction: see [`write_batch`]) and then answers each caller. The other calls run on the pool as they are,
//! one transaction each. A write the batch could not do alone (a conflicting key or message id)
//! runs again on the pool, where it meets the conflict the way it always did; if PostgreSQL
//! refuses the batch (a deadlock with another replica, say), nothing of it was written and every
//! write in it runs again on the pool, one by one.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::any::AnyPoolOptions;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use crate::batch::{self, BatchConfig, StatsRecorder, WriteStats};
use crate::queue::{
    Canceled, Claimed, NewQueued, QueueClaim, QueueFinish, QueueStats, QueuedMessage,
};
use crate::rows::KEY_IN_FLIGHT;
use crate::sql_store::{Dialect, SqlStore};
use crate::writes::{KeyCompletion, MessageInsert, OutcomeUpdate};
use crate::{
    Applied, Delivery, KeyAnswer, KeyClaim, MessageRecord, NewDelivery, NewMessage, SendOutcome,
    StatusChange, StatusRule, Store, StoreError, StoredResponse,
};
use serde_json::Value;

pub(crate) static DIALECT: Dialect = Dialect {
    backend: "PostgreSQL",
    migrator: sqlx::migrate!("./migrations/postgres"),
    begin_write: "BEGIN",
    // Concurrent webhooks for one message wait for each other, so none decides on a stale status.
    select_status_for_update: "SELECT status FROM messages WHERE id = $1 FOR UPDATE",
    // Rows another replica is leasing right now are skipped, not waited for.
    claim_due: "WITH due AS (SELECT id FROM outbox \
            WHERE state = 'pending' AND next_attempt_at <= $1 AND leased_until <= $1 \
            ORDER BY next_attempt_at, id LIMIT $3 \
            FOR UPDATE SKIP LOCKED) \
        UPDATE outbox SET leased_until = $1 + $2 FROM due WHERE outbox.id = due.id \
        RETURNING outbox.id, outbox.event_id, outbox.event_type, outbox.target_url, \
            outbox.signer, outbox.body, outbox.attempts",
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The writer's connection runs one statement, whose every part finds its rows by key: a few
/// array elements joined to a table through its primary key. Its plan is made once (planning
/// it took longer than running it) and must not depend on how big the tables were then: a plan
/// made while they were nearly empty scanned them whole, at every batch, as they grew. So the
/// planner is left nested loops over index lookups only.
const WRITER_SETTINGS: &str = "SET plan_cache_mode = force_generic_plan; \
    SET enable_seqscan = off; SET enable_hashjoin = off; SET enable_mergejoin = off";
const MAX_CONNECTIONS: u32 = 10;

pub(crate) struct PgStore {
    /// Reads and the less frequent writes, and every write the batch sent back.
    sql: SqlStore,
    writer: mpsc::UnboundedSender<Message>,
    stats: Arc<StatsRecorder>,
}

impl PgStore {
    pub(crate) async fn open(url: &str) -> Result<PgStore, StoreError> {
        let (config, db_url) = BatchConfig::from_url(url, DIALECT.backend)?;
        let pool = connect(&db_url, url).await?;
        let sql = SqlStore::migrated(pool, &DIALECT, url).await?;
        let writer_pool = PgPoolOptions::new()
            .max_connections(1)
            // A ping before each batch would be one more round trip per commit; a connection
            // that broke fails the batch, whose writes then run on the main pool.
            .test_before_acquire(false)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(conn, WRITER_SETTINGS)
                        .await
                        .map(drop)
                })
            })
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect(&db_url)
            .await
            .map_err(|e| StoreError::open(DIALECT.backend, e, url))?;
        let stats = Arc::new(StatsRecorder::default());
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(Writer::new(writer_pool, config, Arc::clone(&stats)).run(receiver));
        Ok(PgStore {
            sql,
            writer: sender,
            stats,
        })
    }

    /// Hands `write` to the writer; answers once its batch is committed.
    async fn submit(&self, write: Write) -> Result<Done, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Message::Write(Request { write, reply }))
            .map_err(|_| StoreError::closed())?;
        answer.await.map_err(|_| StoreError::closed())?
    }
}

async fn connect(url: &str, url_as_given: &str) -> Result<AnyPool, StoreError> {
    let fail = |e: String| StoreError::open(DIALECT.backend, e, url_as_given);
    // One connection first, because a pool retries until its timeout and then reports only that
    // it timed out, not why (refused, unknown host, bad password).
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect(url))
        .await
        .map_err(|_| fail(format!("no answer within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| fail(e.to_string()))?;
    conn.close().await.map_err(|e| fail(e.to_string()))?;
    AnyPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect(url)
        .await
        .map_err(|e| fail(e.to_string()))
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.sql.ping().await
    }

    async fn close(&self) {
        let (reply, closed) = oneshot::channel();
        if self.writer.send(Message::Close(reply)).is_ok() {
            let _ = closed.await;
        }
        self.sql.close().await;
    }

    async fn insert_message(&self, m: &NewMessage) -> Result<(), StoreError> {
        match self
            .submit(Write::InsertMessage(MessageInsert::new(m)?))
            .await?
        {
            Done::Written => Ok(()),
            // The id exists: the insert on its own reports it as it always did.
            _ => self.sql.insert_message(m).await,
        }
    }

    async fn record_sent(
        &self,
        m: &NewMessage,
        outcome: &SendOutcome,
        key: Option<KeyAnswer<'_>>,
    ) -> Result<(), StoreError> {
        let write = Write::InsertSent(
            MessageInsert::new(m)?,
            OutcomeUpdate::new(&m.id, outcome),
            // Answers keep a table of their own here (`message_id` is not needed).
            key.map(|key| Box::new(KeyCompletion::new(key.client, key.key, key.response))),
        );
        match self.submit(write).await? {
            Done::Written => Ok(()),
            // The id exists: the insert on its own reports it as it always did.
            _ => self.sql.record_sent(m, outcome, key).await,
        }
    }

    async fn record_outcome(&self, id: &str, outcome: &SendOutcome) -> Result<(), StoreError> {
        let write = Write::RecordOutcome(OutcomeUpdate::new(id, outcome));
        match self.submit(write).await? {
            Done::Written => Ok(()),
            Done::NotFound => Err(not_found("message", id)),
            _ => self.sql.record_outcome(id, outcome).await,
        }
    }

    async fn message(&self, id: &str) -> Result<Option<MessageRecord>, StoreError> {
        self.sql.message(id).await
    }

    async fn message_by_provider_id(
        &self,
        provider_message_id: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        self.sql.message_by_provider_id(provider_message_id).await
    }

    async fn apply_status(
        &self,
        id: &str,
        change: &StatusChange,
        advances: StatusRule,
    ) -> Result<Applied, StoreError> {
        self.sql.apply_status(id, change, advances).await
    }

    async fn first_sighting(&self, dedup_key: &str, at_ms: i64) -> Result<bool, StoreError> {
        self.sql.first_sighting(dedup_key, at_ms).await
    }

    async fn claim_key(
        &self,
        client: &str,
        key: &str,
        fingerprint: &str,
        now_ms: i64,
        ttl_ms: i64,
        message_id: Option<&str>,
    ) -> Result<KeyClaim, StoreError> {
        self.sql.sweep_expired_keys(now_ms, ttl_ms).await?;
        let write = Write::ClaimKey {
            client: client.to_owned(),
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            now_ms,
        };
        match self.submit(write).await? {
            Done::Written => Ok(KeyClaim::Fresh),
            // The key exists (live, expired, or claimed in the same batch): decided on the pool.
            _ => {
                self.sql
                    .claim_key(client, key, fingerprint, now_ms, ttl_ms, message_id)
                    .await
            }
        }
    }

    async fn complete_key(
        &self,
        client: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let write = Write::CompleteKey(KeyCompletion::new(client, key, response));
        match self.submit(write).await? {
            Done::Written => Ok(()),
            Done::NotFound => Err(not_found("idempotency key", key)),
            _ => self.sql.complete_key(client, key, response).await,
        }
    }

    async fn release_key(&self, client: &str, key: &str) -> Result<(), StoreError> {
        self.sql.release_key(client, key).await
    }

    async fn enqueue(&self, deliveries: &[NewDelivery]) -> Result<(), StoreError> {
        self.sql.enqueue(deliveries).await
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.sql.claim_due(now_ms, lease_ms, limit).await
    }

    async fn mark_delivered(&self, id: i64, at_ms: i64) -> Result<(), StoreError> {
        self.sql.mark_delivered(id, at_ms).await
    }

    async fn reschedule(
        &self,
        id: i64,
        attempts: u32,
        next_attempt_at_ms: i64,
        last_error: &str,
    ) -> Result<(), StoreError> {
        self.sql
            .reschedule(id, attempts, next_attempt_at_ms, last_error)
            .await
    }

    async fn give_up(&self, id: i64, attempts: u32, last_error: &str) -> Result<(), StoreError> {
        self.sql.give_up(id, attempts, last_error).await
    }

    async fn enqueue_messages(&self, messages: &[NewQueued]) -> Result<(), StoreError> {
        self.sql.q_enqueue(messages).await
    }

    async fn claim_queued(&self, claim: &QueueClaim) -> Result<Claimed, StoreError> {
        self.sql.q_claim(claim).await
    }

    async fn finish_queued(
        &self,
        id: &str,
        owner: &str,
        finish: &QueueFinish,
    ) -> Result<bool, StoreError> {
        self.sql.q_finish(id, owner, finish).await
    }

    async fn renew_leases(&self, owner: &str, until_ms: i64) -> Result<u64, StoreError> {
        self.sql.q_renew(owner, until_ms).await
    }

    async fn take_over_lost(
        &self,
        now_ms: i64,
        owner: &str,
        lease_until_ms: i64,
        limit: u32,
    ) -> Result<Vec<QueuedMessage>, StoreError> {
        self.sql
            .q_take_over_lost(now_ms, owner, lease_until_ms, limit)
            .await
    }

    async fn expire_queued(
        &self,
        now_ms: i64,
        error: &Value,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.sql.q_expire(now_ms, error, limit).await
    }

    async fn cancel_queued(
        &self,
        id: &str,
        client: &str,
        at_ms: i64,
    ) -> Result<Canceled, StoreError> {
        self.sql.q_cancel(id, client, at_ms).await
    }

    async fn advance_pacing(
        &self,
        sender: &str,
        hand_overs: u32,
        interval_us: i64,
        now_us: i64,
    ) -> Result<(), StoreError> {
        self.sql
            .q_advance_pacing(sender, hand_overs, interval_us, now_us)
            .await
    }

    async fn push_pacing(&self, sender: &str, not_before_us: i64) -> Result<(), StoreError> {
        self.sql.q_push_pacing(sender, not_before_us).await
    }

    async fn forget_recipient_gaps(&self, before_ms: i64) -> Result<(), StoreError> {
        self.sql.q_forget_gaps(before_ms).await
    }

    async fn queue_stats(&self, now_ms: i64) -> Result<QueueStats, StoreError> {
        self.sql.q_stats(now_ms).await
    }

    fn write_stats(&self) -> Option<WriteStats> {
        Some(self.stats.snapshot())
    }
}

fn not_found(what: &'static str, id: &str) -> StoreError {
    StoreError::NotFound {
        what,
        id: id.to_owned(),
    }
}

// --- the writer ---

type Message = batch::Message<Write, Done>;
type Request = batch::Request<Write, Done>;

enum Write {
    InsertMessage(MessageInsert),
    RecordOutcome(OutcomeUpdate),
    /// A message with its outcome, and the idempotency key to complete with it (`record_sent`).
    InsertSent(MessageInsert, OutcomeUpdate, Option<Box<KeyCompletion>>),
    /// Only the insert of a key not there yet; the rest of a claim is the caller's.
    ClaimKey {
        client: String,
        key: String,
        fingerprint: String,
        now_ms: i64,
    },
    CompleteKey(KeyCompletion),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Done {
    /// Committed.
    Written,
    /// Nothing to update: committed, with nothing written for this one.
    NotFound,
    /// The row exists (an insert) or the batch failed before its commit: run it on the pool.
    RunAlone,
}

struct Writer {
    pool: PgPool,
    config: BatchConfig,
    stats: Arc<StatsRecorder>,
}

impl Writer {
    fn new(pool: PgPool, config: BatchConfig, stats: Arc<StatsRecorder>) -> Self {
        Writer {
            pool,
            config,
            stats,
        }
    }

    async fn run(self, mut receiver: mpsc::UnboundedReceiver<Message>) {
        let mut batch = Vec::with_capacity(self.config.batch_max);
        let mut closing = None;
        while closing.is_none() {
            match receiver.recv().await {
                Some(Message::Write(request)) => batch.push(request),
                Some(Message::Close(reply)) => closing = Some(reply),
                None => break,
            }
            let deadline = tokio::time::Instant::now() + self.config.linger;
            while closing.is_none() && batch.len() < self.config.batch_max {
                let next = match receiver.try_recv() {
                    Ok(message) => Some(message),
                    Err(mpsc::error::TryRecvError::Empty) if !self.config.linger.is_zero() => {
                        tokio::time::timeout_at(deadline, receiver.recv())
                            .await
                            .ok()
                            .flatten()
                    }
                    Err(_) => None,
                };
                match next {
                    Some(Message::Write(request)) => batch.push(request),
                    Some(Message::Close(reply)) => closing = Some(reply),
                    None => break,
                }
            }
            if !batch.is_empty() {
                self.commit(&mut batch).await;
            }
        }
        self.pool.close().await;
        if let Some(reply) = closing {
            let _ = reply.send(());
        }
    }

    async fn commit(&self, batch: &mut Vec<Request>) {
        let started = Instant::now();
        let written = match self.pool.acquire().await {
            Ok(mut conn) => write_batch(&mut conn, batch).await,
            Err(e) => Err(e),
        };
        match written {
            Ok(done) => {
                self.stats.committed(batch.len(), started.elapsed());
                for (request, done) in batch.drain(..).zip(done) {
                    let _ = request.reply.send(Ok(done));
                }
            }
            // PostgreSQL refused the statement (a deadlock with another replica, say): nothing
            // of it was written, and each write runs on its own instead. So it is when there
            // was no connection to send it on.
            Err(sqlx::Error::Database(_) | sqlx::Error::PoolTimedOut) => {
                self.stats.failed();
                for request in batch.drain(..) {
                    let _ = request.reply.send(Ok(Done::RunAlone));
                }
            }
            // The connection broke on the way: committed or not, nobody knows, and each caller
            // hears of it.
            Err(e) => {
                self.stats.failed();
                let error = StoreError::Query(e);
                for request in batch.drain(..) {
                    let _ = request.reply.send(Err(StoreError::batch_failed(&error)));
                }
            }
        }
    }
}

/// The batch in one statement, so one round trip and one transaction: a data-modifying CTE per
/// kind of write, each fed by arrays (empty for a kind the batch has none of), each returning
/// the rows it wrote. The statement's text never changes, so it is prepared once. What each
/// request gets once it is committed:
/// - a claim: `Written` when its key was inserted, else `RunAlone` (the key exists: live,
///   expired or mismatched, decided on the pool);
/// - an insert: `Written`, else `RunAlone` (the id exists, which the insert on its own reports);
/// - an outcome or a completion: `Written`, else `NotFound`.
///
/// A row that two requests of one batch write (the same key claimed twice, say) is written by
/// the first only; the others run on the pool, after the batch, as they would have without it.
/// Parts of one statement see the same snapshot, never each other's writes; the requests of a
/// batch are concurrent (none is answered before all are written), so that is an order they
/// could have run in.
async fn write_batch(conn: &mut PgConnection, batch: &[Request]) -> Result<Vec<Done>, sqlx::Error> {
    let mut done = vec![Done::RunAlone; batch.len()];
    let mut claims = Vec::new();
    let mut inserts = Vec::new();
    let mut outcomes = Vec::new();
    let mut completions = Vec::new();
    let (mut claimed, mut inserted, mut updated, mut completed) = (
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
    );
    for (i, request) in batch.iter().enumerate() {
        match &request.write {
            Write::ClaimKey { client, key, .. } => {
                if claimed.insert((client.as_str(), key.as_str())) {
                    claims.push(i);
                }
            }
            Write::InsertMessage(m) | Write::InsertSent(m, ..) => {
                if inserted.insert(m.id.as_str()) {
                    inserts.push(i);
                }
            }
            Write::RecordOutcome(o) => {
                if updated.insert(o.id.as_str()) {
                    outcomes.push(i);
                }
            }
            Write::CompleteKey(k) => {
                if completed.insert((k.client.as_str(), k.key.as_str())) {
                    completions.push(i);
                }
            }
        }
    }
    // Replicas claiming the same keys lock them in the same order.
    claims.sort_by_key(|&i| match &batch[i].write {
        Write::ClaimKey { client, key, .. } => (client.as_str(), key.as_str()),
        _ => ("", ""),
    });
    let claim = |i: &usize| match &batch[*i].write {
        Write::ClaimKey {
            client,
            key,
            fingerprint,
            now_ms,
        } => Some((client.as_str(), key.as_str(), fingerprint.as_str(), *now_ms)),
        _ => None,
    };
    let claim_rows: Vec<_> = claims.iter().filter_map(claim).collect();
    let message = |i: &usize| match &batch[*i].write {
        Write::InsertMessage(m) => Some((m, None)),
        Write::InsertSent(m, o, _) => Some((m, Some(o))),
        _ => None,
    };
    let (messages, sent): (Vec<&MessageInsert>, Vec<Option<&OutcomeUpdate>>) =
        inserts.iter().filter_map(message).unzip();
    let outcome = |i: &usize| match &batch[*i].write {
        Write::RecordOutcome(o) => Some(o),
        _ => None,
    };
    let outcome_rows: Vec<&OutcomeUpdate> = outcomes.iter().filter_map(outcome).collect();
    let completion = |i: &usize| match &batch[*i].write {
        Write::CompleteKey(k) => Some((k, None)),
        _ => None,
    };
    // A completion that goes with a message's record (`record_sent`) is written only if that
    // message is inserted; the request's answer is the insert's.
    let completion_with_record = |i: &usize| match &batch[*i].write {
        Write::InsertSent(m, _, Some(k)) => Some((&**k, Some(m.id.as_str()))),
        _ => None,
    };
    let keys: Vec<(&KeyCompletion, Option<&str>)> = completions
        .iter()
        .filter_map(completion)
        .chain(inserts.iter().filter_map(completion_with_record))
        .collect();

    let rows: Vec<(i32, String, Option<String>)> = sqlx::query_as(BATCH)
        .bind(claim_rows.iter().map(|c| c.0).collect::<Vec<_>>())
        .bind(claim_rows.iter().map(|c| c.1).collect::<Vec<_>>())
        .bind(claim_rows.iter().map(|c| c.2).collect::<Vec<_>>())
        .bind(claim_rows.iter().map(|c| c.3).collect::<Vec<_>>())
        .bind(KEY_IN_FLIGHT)
        .bind(messages.iter().map(|m| m.id.as_str()).collect::<Vec<_>>())
        .bind(
            messages
                .iter()
                .map(|m| m.client.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(messages.iter().map(|m| m.to.as_str()).collect::<Vec<_>>())
        .bind(messages.iter().map(|m| m.from.as_str()).collect::<Vec<_>>())
        .bind(
            messages
                .iter()
                .map(|m| m.message_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            messages
                .iter()
                .map(|m| m.refs.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            messages
                .iter()
                .map(|m| m.callback_url.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            messages
                .iter()
                .map(|m| m.route.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            sent.iter()
                .zip(&messages)
                .map(|(o, m)| o.map_or(m.status.as_str(), |o| o.status.as_str()))
                .collect::<Vec<_>>(),
        )
        .bind(messages.iter().map(|m| m.created_at_ms).collect::<Vec<_>>())
        .bind(
            outcome_rows
                .iter()
                .map(|o| o.id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            outcome_rows
                .iter()
                .map(|o| o.status.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            outcome_rows
                .iter()
                .map(|o| o.provider.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            outcome_rows
                .iter()
                .map(|o| o.endpoint.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            outcome_rows
                .iter()
                .map(|o| o.provider_message_id.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            outcome_rows
                .iter()
                .map(|o| o.error.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(outcome_rows.iter().map(|o| o.at_ms).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.0.client.as_str()).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.0.key.as_str()).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.0.status).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.0.body.as_slice()).collect::<Vec<_>>())
        .bind(
            keys.iter()
                .map(|k| k.0.retry_after_secs)
                .collect::<Vec<_>>(),
        )
        .bind(
            sent.iter()
                .map(|o| o.and_then(|o| o.provider.as_deref()))
                .collect::<Vec<_>>(),
        )
        .bind(
            sent.iter()
                .map(|o| o.and_then(|o| o.endpoint.as_deref()))
                .collect::<Vec<_>>(),
        )
        .bind(
            sent.iter()
                .map(|o| o.and_then(|o| o.provider_message_id.as_deref()))
                .collect::<Vec<_>>(),
        )
        .bind(
            sent.iter()
                .map(|o| o.and_then(|o| o.error.as_deref()))
                .collect::<Vec<_>>(),
        )
        .bind(
            sent.iter()
                .zip(&messages)
                .map(|(o, m)| o.map_or(m.created_at_ms, |o| o.at_ms))
                .collect::<Vec<_>>(),
        )
        .bind(sent.iter().map(|o| o.is_some()).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await?;

    let mut written: [HashSet<(String, Option<String>)>; 4] = Default::default();
    for (kind, a, b) in rows {
        if let Some(set) = usize::try_from(kind).ok().and_then(|k| written.get_mut(k)) {
            set.insert((a, b));
        }
    }
    let [claimed, inserted, updated, completed] = written;
    for (&i, (client, key, _, _)) in claims.iter().zip(&claim_rows) {
        if claimed.contains(&(client.to_string(), Some(key.to_string()))) {
            done[i] = Done::Written;
        }
    }
    for (&i, m) in inserts.iter().zip(&messages) {
        if inserted.contains(&(m.id.clone(), None)) {
            done[i] = Done::Written;
        }
    }
    for (&i, o) in outcomes.iter().zip(&outcome_rows) {
        done[i] = if updated.contains(&(o.id.clone(), None)) {
            Done::Written
        } else {
            Done::NotFound
        };
    }
    // The completions with a record come after these, and are not answered here.
    for (&i, (k, _)) in completions.iter().zip(&keys) {
        done[i] = if completed.contains(&(k.client.clone(), Some(k.key.clone()))) {
            Done::Written
        } else {
            Done::NotFound
        };
    }
    Ok(done)
}

/// One batch, one statement: see [`write_batch`].
const BATCH: &str = "\
WITH claimed AS (
    INSERT INTO idempotency_keys (client, idempotency_key, fingerprint, state, created_at)
    SELECT client, idempotency_key, fingerprint, $5, created_at
    FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[])
        AS t(client, idempotency_key, fingerprint, created_at)
    ON CONFLICT (client, idempotency_key) DO NOTHING
    RETURNING client, idempotency_key
), new_messages AS (
    -- `sent`: a message recorded with its send's outcome (`record_sent`), kept in its row as
    -- its first event.
    SELECT * FROM UNNEST($6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
        $11::text[], $12::text[], $13::text[], $14::text[], $15::int8[], $28::text[],
        $29::text[], $30::text[], $31::text[], $32::int8[], $33::bool[]) WITH ORDINALITY
        AS t(id, client, recipient, sender, message_type, refs, callback_url, route, status,
            created_at, provider, endpoint, provider_message_id, error, updated_at, sent, n)
), inserted AS (
    INSERT INTO messages (id, client, recipient, sender, message_type, refs, callback_url, route,
        status, provider, endpoint, provider_message_id, error, created_at, updated_at,
        first_event_status, first_event_at, first_event_error)
    SELECT id, client, recipient, sender, message_type, refs, callback_url, route, status,
        provider, endpoint, provider_message_id, error, created_at, updated_at,
        CASE WHEN sent THEN status END, CASE WHEN sent THEN updated_at END,
        CASE WHEN sent THEN error END
    FROM new_messages
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), outcome AS (
    SELECT * FROM UNNEST($16::text[], $17::text[], $18::text[], $19::text[], $20::text[],
        $21::text[], $22::int8[]) WITH ORDINALITY
        AS t(id, status, provider, endpoint, provider_message_id, error, at_ms, n)
), updated AS (
    -- The status only moves while `queued`: a webhook that overtook the provider's answer is
    -- not undone.
    UPDATE messages AS m SET
        status = CASE WHEN m.status = 'queued' THEN o.status ELSE m.status END,
        provider = o.provider, endpoint = o.endpoint,
        provider_message_id = o.provider_message_id,
        error = COALESCE(o.error, m.error), updated_at = o.at_ms
    FROM outcome AS o WHERE m.id = o.id
    RETURNING m.id
), appended AS (
    INSERT INTO message_events (message_id, status, occurred_at, error)
    SELECT o.id, o.status, o.at_ms, o.error FROM outcome AS o JOIN updated ON updated.id = o.id
    ORDER BY o.n
    RETURNING message_id
), completed AS (
    UPDATE idempotency_keys AS k SET state = 'done', response_status = c.status,
        response_body = c.body, retry_after_secs = c.retry_after_secs
    FROM UNNEST($23::text[], $24::text[], $25::int8[], $26::bytea[], $27::int8[], $34::text[])
        AS c(client, idempotency_key, status, body, retry_after_secs, message_id)
    WHERE k.client = c.client AND k.idempotency_key = c.idempotency_key
        -- With a message's record: only if that message was inserted.
        AND (c.message_id IS NULL OR c.message_id IN (SELECT id FROM inserted))
    RETURNING k.client, k.idempotency_key
)
SELECT 0::int4, client, idempotency_key FROM claimed
UNION ALL SELECT 1, id, NULL FROM inserted
UNION ALL SELECT 2, message_id, NULL FROM appended
UNION ALL SELECT 3, client, idempotency_key FROM completed";
