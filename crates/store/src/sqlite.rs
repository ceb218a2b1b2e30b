//! SQLite: one file, one process. WAL mode lets readers run beside the single writer.
//!
//! Every write goes to one thread that owns the only writing connection. It takes whatever
//! writes have accumulated, runs them in one transaction (each write in a savepoint of its own,
//! so that one write's failure leaves the others be), commits, and then answers each caller:
//! a caller hears back only once what it wrote is in the write-ahead log. Reads run at the same
//! time on a few read-only connections of their own, on tokio's blocking threads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde_json::Value;
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use tokio::sync::oneshot;

use crate::batch::{self, BatchConfig, StatsRecorder, WriteStats};
use crate::queue::{
    Canceled, Claimed, NewQueued, QueueClaim, QueueFinish, QueueStats, QueuedMessage,
};
use crate::rows::{
    json_text, DeliveryRow, EventRow, IdempotencyRow, MessageRow, KEY_DONE, KEY_IN_FLIGHT,
    MESSAGE_COLUMNS,
};
use crate::sqlite_checkpoint::{self as checkpoint, LogLimits, RestartSignal};
use crate::sqlite_queue::{self, Finish, QueueDone, QueueOp};
use crate::writes::{KeyCompletion, KeySweep, MessageInsert, OutcomeUpdate};
use crate::{
    Applied, Delivery, KeyAnswer, KeyClaim, MessageRecord, NewDelivery, NewMessage, SendOutcome,
    StatusChange, StatusRule, Store, StoreError, StoredEvent, StoredResponse,
};

pub(crate) const BACKEND: &str = "SQLite";

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another connection's write lock (another process on the same
/// file) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// In WAL mode, `NORMAL` syncs at checkpoints instead of at every commit: a commit survives a
/// crash of the process, and only a crash of the machine can lose the last ones. Syncing each
/// commit cost two `fsync`s per message sent.
const SYNCHRONOUS: &str = "PRAGMA synchronous = NORMAL";
/// A new database file is made of 1 KiB pages, not SQLite's default 4 KiB: a commit writes
/// every page it changed to the log whole, and most of a message's pages are index pages it
/// changes a few bytes of (the provider's message id lands anywhere in its index). The bytes
/// written and synced behind the commits pushed up the slowest answers under load (p99
/// 7.6–9 ms with 4 KiB pages, 5.7–6.4 ms with 2 KiB, 5.1–5.5 ms with 1 KiB).
const NEW_DATABASE_PAGE_SIZE: &str = "PRAGMA page_size = 1024";
/// Read connections kept open between reads; more are opened while more reads run at once.
const READERS_KEPT: usize = 4;
/// Prepared statements each connection keeps.
const STATEMENT_CACHE: usize = 64;

pub(crate) struct SqliteStore {
    writer: mpsc::Sender<Message>,
    /// None for an in-memory database: it lives in the writer's connection, which also reads.
    readers: Option<Arc<Readers>>,
    /// None for an in-memory database.
    checkpointer: Option<mpsc::Sender<oneshot::Sender<()>>>,
    stats: Arc<StatsRecorder>,
    key_sweep: KeySweep,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database `url` names.
    pub(crate) async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let (config, db_url) = BatchConfig::from_url(url, BACKEND)?;
        let fail = |e: String| StoreError::open(BACKEND, e, url);
        let path = if is_in_memory(&db_url) {
            None
        } else {
            let options =
                SqliteConnectOptions::from_str(&db_url).map_err(|e| fail(e.to_string()))?;
            Some(options.get_filename().to_path_buf())
        };
        // Held until the schema is up to date.
        let _setup = SetupLock::acquire(&db_url).await?;
        let writer_path = path.clone();
        let conn = tokio::task::spawn_blocking(move || open_writer(writer_path.as_ref()))
            .await
            .map_err(|e| fail(e.to_string()))?
            .map_err(fail)?;
        let stats = Arc::new(StatsRecorder::default());
        let (sender, receiver) = mpsc::channel();
        let thread_stats = Arc::clone(&stats);
        let restart = RestartSignal::default();
        let writer_restart = restart.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || Writer::new(conn, config, thread_stats, writer_restart).run(receiver))
            .map_err(|e| fail(format!("cannot start the writer thread: {e}")))?;
        let checkpointer = match &path {
            Some(path) => {
                let conn = open_checkpointer(path).map_err(fail)?;
                let limits = log_limits(&conn).map_err(|e| fail(e.to_string()))?;
                Some(checkpoint::start(conn, limits, restart).map_err(fail)?)
            }
            None => None,
        };
        Ok(SqliteStore {
            writer: sender,
            readers: path.map(Readers::new),
            checkpointer,
            stats,
            key_sweep: KeySweep::new(),
        })
    }

    /// Hands `write` to the writer; answers once its transaction is committed.
    async fn submit(&self, write: Write) -> Result<Done, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Message::Write(Request { write, reply }))
            .map_err(|_| StoreError::closed())?;
        answer.await.map_err(|_| StoreError::closed())?
    }

    async fn read(&self, read: Read) -> Result<Done, StoreError> {
        let Some(readers) = &self.readers else {
            return self.submit(Write::Read(read)).await;
        };
        let readers = Arc::clone(readers);
        match tokio::task::spawn_blocking(move || readers.run(|conn| read.run(conn))).await {
            Ok(result) => result,
            // A read that panicked panics its caller, as it would have without the thread hop.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::closed()),
        }
    }
}

fn unexpected(done: Done) -> StoreError {
    StoreError::Query(sqlx::Error::Protocol(format!(
        "the SQLite writer answered {done:?}"
    )))
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        match self.read(Read::Ping).await? {
            Done::Unit => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn close(&self) {
        if let Some(readers) = &self.readers {
            readers.close();
        }
        if let Some(checkpointer) = &self.checkpointer {
            let (reply, stopped) = oneshot::channel();
            if checkpointer.send(reply).is_ok() {
                let _ = stopped.await;
            }
        }
        // The writer's connection is the last: closing it folds the log into the file.
        let (reply, closed) = oneshot::channel();
        if self.writer.send(Message::Close(reply)).is_ok() {
            let _ = closed.await;
        }
    }

    async fn insert_message(&self, m: &NewMessage) -> Result<(), StoreError> {
        let write = Write::InsertMessage(MessageInsert::new(m)?);
        match self.submit(write).await? {
            Done::Unit => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn record_outcome(&self, id: &str, outcome: &SendOutcome) -> Result<(), StoreError> {
        let write = Write::RecordOutcome(OutcomeUpdate::new(id, outcome));
        match self.submit(write).await? {
            Done::Unit => Ok(()),
            other => Err(unexpected(other)),
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
            key.map(|key| Box::new(KeyCompletion::with_record(key, &m.id))),
        );
        match self.submit(write).await? {
            Done::Unit => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn message(&self, id: &str) -> Result<Option<MessageRecord>, StoreError> {
        let read = Read::Message {
            column: MessageColumn::Id,
            value: id.to_owned(),
        };
        match self.read(read).await? {
            Done::Message(message) => Ok(*message),
            other => Err(unexpected(other)),
        }
    }

    async fn message_by_provider_id(
        &self,
        provider_message_id: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        let read = Read::Message {
            column: MessageColumn::ProviderMessageId,
            value: provider_message_id.to_owned(),
        };
        match self.read(read).await? {
            Done::Message(message) => Ok(*message),
            other => Err(unexpected(other)),
        }
    }

    async fn apply_status(
        &self,
        id: &str,
        change: &StatusChange,
        advances: StatusRule,
    ) -> Result<Applied, StoreError> {
        let write = Write::ApplyStatus {
            id: id.to_owned(),
            status: change.status.clone(),
            at_ms: change.at_ms,
            error: json_text(change.error.as_ref()),
            dedup_key: change.dedup_key.clone(),
            advances,
        };
        match self.submit(write).await? {
            Done::Applied(applied) => Ok(applied),
            other => Err(unexpected(other)),
        }
    }

    async fn first_sighting(&self, dedup_key: &str, at_ms: i64) -> Result<bool, StoreError> {
        let write = Write::FirstSighting {
            dedup_key: dedup_key.to_owned(),
            at_ms,
        };
        match self.submit(write).await? {
            Done::Bool(first) => Ok(first),
            other => Err(unexpected(other)),
        }
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
        let write = Write::ClaimKey {
            client: client.to_owned(),
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            message_id: message_id.map(str::to_owned),
            now_ms,
            expired_before_ms: now_ms.saturating_sub(ttl_ms),
            sweep: self.key_sweep.due(now_ms),
        };
        match self.submit(write).await? {
            Done::Claim(claim) => Ok(claim),
            other => Err(unexpected(other)),
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
            Done::Unit => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn release_key(&self, client: &str, key: &str) -> Result<(), StoreError> {
        let write = Write::ReleaseKey {
            client: client.to_owned(),
            key: key.to_owned(),
        };
        match self.submit(write).await? {
            Done::Unit => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn enqueue(&self, deliveries: &[NewDelivery]) -> Result<(), StoreError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        match self.submit(Write::Enqueue(deliveries.to_vec())).await? {
            Done::Unit => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let write = Write::ClaimDue {
            now_ms,
            lease_ms,
            limit,
        };
        match self.submit(write).await? {
            Done::Deliveries(deliveries) => Ok(deliveries),
            other => Err(unexpected(other)),
        }
    }

    async fn mark_delivered(&self, id: i64, at_ms: i64) -> Result<(), StoreError> {
        self.update_delivery(id, DeliveryUpdate::Delivered { at_ms })
            .await
    }

    async fn reschedule(
        &self,
        id: i64,
        attempts: u32,
        next_attempt_at_ms: i64,
        last_error: &str,
    ) -> Result<(), StoreError> {
        let update = DeliveryUpdate::Rescheduled {
            attempts,
            next_attempt_at_ms,
            last_error: last_error.to_owned(),
        };
        self.update_delivery(id, update).await
    }

    async fn give_up(&self, id: i64, attempts: u32, last_error: &str) -> Result<(), StoreError> {
        let update = DeliveryUpdate::Dead {
            attempts,
            last_error: last_error.to_owned(),
        };
        self.update_delivery(id, update).await
    }

    async fn enqueue_messages(&self, messages: &[NewQueued]) -> Result<(), StoreError> {
        let items = messages
            .iter()
            .map(|q| Ok((MessageInsert::new(&q.message)?, q.clone())))
            .collect::<Result<_, StoreError>>()?;
        match self.queue(QueueOp::Enqueue(items)).await? {
            QueueDone::Unit => Ok(()),
            other => Err(unexpected(Done::Queue(other))),
        }
    }

    async fn claim_queued(&self, claim: &QueueClaim) -> Result<Claimed, StoreError> {
        match self.queue(QueueOp::Claim(claim.clone())).await? {
            QueueDone::Claimed(claimed) => Ok(claimed),
            other => Err(unexpected(Done::Queue(other))),
        }
    }

    async fn finish_queued(
        &self,
        id: &str,
        owner: &str,
        finish: &QueueFinish,
    ) -> Result<bool, StoreError> {
        let op = QueueOp::Finish {
            id: id.to_owned(),
            owner: owner.to_owned(),
            finish: Finish::new(id, finish),
        };
        match self.queue(op).await? {
            QueueDone::Finished(done) => Ok(done),
            other => Err(unexpected(Done::Queue(other))),
        }
    }

    async fn renew_leases(&self, owner: &str, until_ms: i64) -> Result<u64, StoreError> {
        let op = QueueOp::Renew {
            owner: owner.to_owned(),
            until_ms,
        };
        match self.queue(op).await? {
            QueueDone::Count(n) => Ok(n),
            other => Err(unexpected(Done::Queue(other))),
        }
    }

    async fn take_over_lost(
        &self,
        now_ms: i64,
        owner: &str,
        lease_until_ms: i64,
        limit: u32,
    ) -> Result<Vec<QueuedMessage>, StoreError> {
        let op = QueueOp::TakeOverLost {
            now_ms,
            owner: owner.to_owned(),
            lease_until_ms,
            limit,
        };
        match self.queue(op).await? {
            QueueDone::Messages(lost) => Ok(lost),
            other => Err(unexpected(Done::Queue(other))),
        }
    }

    async fn expire_queued(
        &self,
        now_ms: i64,
        error: &Value,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let op = QueueOp::Expire {
            now_ms,
            error: error.to_string(),
            limit,
        };
        match self.queue(op).await? {
            QueueDone::Ids(ids) => Ok(ids),
            other => Err(unexpected(Done::Queue(other))),
        }
    }

    async fn cancel_queued(
        &self,
        id: &str,
        client: &str,
        at_ms: i64,
    ) -> Result<Canceled, StoreError> {
        let op = QueueOp::Cancel {
            id: id.to_owned(),
            client: client.to_owned(),
            at_ms,
        };
        match self.queue(op).await? {
            QueueDone::Canceled(done) => {
                let record = match done {
                    sqlite_queue::CancelDone::Canceled => self.message(id).await?,
                    _ => None,
                };
                done.with_record(record)
            }
            other => Err(unexpected(Done::Queue(other))),
        }
    }

    async fn advance_pacing(
        &self,
        sender: &str,
        hand_overs: u32,
        interval_us: i64,
        now_us: i64,
    ) -> Result<(), StoreError> {
        let op = QueueOp::AdvancePacing {
            sender: sender.to_owned(),
            hand_overs,
            interval_us,
            now_us,
        };
        match self.queue(op).await? {
            QueueDone::Unit => Ok(()),
            other => Err(unexpected(Done::Queue(other))),
        }
    }

    async fn push_pacing(&self, sender: &str, not_before_us: i64) -> Result<(), StoreError> {
        let op = QueueOp::PushPacing {
            sender: sender.to_owned(),
            not_before_us,
        };
        match self.queue(op).await? {
            QueueDone::Unit => Ok(()),
            other => Err(unexpected(Done::Queue(other))),
        }
    }

    async fn forget_recipient_gaps(&self, before_ms: i64) -> Result<(), StoreError> {
        match self.queue(QueueOp::ForgetGaps { before_ms }).await? {
            QueueDone::Unit => Ok(()),
            other => Err(unexpected(Done::Queue(other))),
        }
    }

    async fn queue_stats(&self, now_ms: i64) -> Result<QueueStats, StoreError> {
        match self.read(Read::QueueStats { now_ms }).await? {
            Done::Queue(QueueDone::Stats(stats)) => Ok(stats),
            other => Err(unexpected(other)),
        }
    }

    fn write_stats(&self) -> Option<WriteStats> {
        Some(self.stats.snapshot())
    }
}

impl SqliteStore {
    async fn queue(&self, op: QueueOp) -> Result<QueueDone, StoreError> {
        match self.submit(Write::Queue(op)).await? {
            Done::Queue(done) => Ok(done),
            other => Err(unexpected(other)),
        }
    }

    async fn update_delivery(&self, id: i64, update: DeliveryUpdate) -> Result<(), StoreError> {
        match self.submit(Write::UpdateDelivery { id, update }).await? {
            Done::Unit => Ok(()),
            other => Err(unexpected(other)),
        }
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
    ApplyStatus {
        id: String,
        status: String,
        at_ms: i64,
        error: Option<String>,
        dedup_key: String,
        advances: StatusRule,
    },
    FirstSighting {
        dedup_key: String,
        at_ms: i64,
    },
    ClaimKey {
        client: String,
        key: String,
        fingerprint: String,
        /// The message whose record may keep the answer.
        message_id: Option<String>,
        now_ms: i64,
        /// Rows created before this count as absent.
        expired_before_ms: i64,
        /// Delete every expired key first.
        sweep: bool,
    },
    CompleteKey(KeyCompletion),
    ReleaseKey {
        client: String,
        key: String,
    },
    Enqueue(Vec<NewDelivery>),
    ClaimDue {
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    },
    UpdateDelivery {
        id: i64,
        update: DeliveryUpdate,
    },
    Queue(QueueOp),
    /// A read of an in-memory database, which only the writer's connection sees.
    Read(Read),
}

enum DeliveryUpdate {
    Delivered {
        at_ms: i64,
    },
    Rescheduled {
        attempts: u32,
        next_attempt_at_ms: i64,
        last_error: String,
    },
    Dead {
        attempts: u32,
        last_error: String,
    },
}

#[derive(Debug)]
enum Done {
    Unit,
    Bool(bool),
    Applied(Applied),
    Claim(KeyClaim),
    Deliveries(Vec<Delivery>),
    Message(Box<Option<MessageRecord>>),
    Queue(QueueDone),
}

struct Writer {
    conn: Connection,
    config: BatchConfig,
    stats: Arc<StatsRecorder>,
    /// Raised by the checkpoint thread when the writer should finish a checkpoint.
    restart: RestartSignal,
}

impl Writer {
    fn new(
        conn: Connection,
        config: BatchConfig,
        stats: Arc<StatsRecorder>,
        restart: RestartSignal,
    ) -> Self {
        Writer {
            conn,
            config,
            stats,
            restart,
        }
    }

    /// Until the store is closed or dropped: takes the writes that are waiting (waiting up to
    /// the linger for more while there are fewer than `batch_max`), commits them together.
    fn run(self, receiver: mpsc::Receiver<Message>) {
        let mut batch = Vec::with_capacity(self.config.batch_max);
        let mut closing = None;
        while closing.is_none() {
            match receiver.recv() {
                Ok(Message::Write(request)) => batch.push(request),
                Ok(Message::Close(reply)) => closing = Some(reply),
                Err(mpsc::RecvError) => break,
            }
            let deadline = Instant::now() + self.config.linger;
            while closing.is_none() && batch.len() < self.config.batch_max {
                let next = match receiver.try_recv() {
                    Ok(message) => Ok(message),
                    Err(mpsc::TryRecvError::Empty) if !self.config.linger.is_zero() => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        receiver.recv_timeout(left).map_err(|_| ())
                    }
                    Err(_) => Err(()),
                };
                match next {
                    Ok(Message::Write(request)) => batch.push(request),
                    Ok(Message::Close(reply)) => closing = Some(reply),
                    Err(()) => break,
                }
            }
            if !batch.is_empty() {
                self.commit(&mut batch);
            }
            if self.restart.take() {
                checkpoint::finish_on_writer(&self.conn);
            }
        }
        // Closing the last connection checkpoints the write-ahead log into the database file.
        let _ = self.conn.close();
        if let Some(reply) = closing {
            let _ = reply.send(());
        }
    }

    /// Runs `batch` in one transaction; answers every request once it is committed (or failed).
    fn commit(&self, batch: &mut Vec<Request>) {
        let started = Instant::now();
        let mut ran = self.apply_all(batch, Savepoints::WhereNeeded);
        if let Ok(Ran::Unguarded) = ran {
            // A write run without its savepoint failed, and may have left part of itself: the
            // batch is undone and run again, every write in its savepoint. Rare: those writes
            // fail only on an id that exists or a database in trouble.
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                return self.fail(batch, &e.into());
            }
            ran = self.apply_all(batch, Savepoints::Every);
        }
        let results = match ran {
            Ok(Ran::Committed(results)) => results,
            Ok(Ran::Unguarded) => unreachable!("every write ran in its savepoint"),
            Err(error) => return self.fail(batch, &error),
        };
        self.stats.committed(batch.len(), started.elapsed());
        for (request, result) in batch.drain(..).zip(results) {
            let _ = request.reply.send(result);
        }
    }

    /// Applies `batch` in one transaction and commits it, unless a write without a savepoint
    /// fails (then the transaction is left open, for the caller to roll back).
    fn apply_all(&self, batch: &[Request], savepoints: Savepoints) -> Result<Ran, StoreError> {
        let conn = &self.conn;
        cached(conn, "BEGIN IMMEDIATE")?;
        let mut results = Vec::with_capacity(batch.len());
        for request in batch {
            let result = apply(conn, &request.write, savepoints);
            if conn.is_autocommit() {
                // SQLite rolled the whole transaction back (disk full, I/O error): every write
                // in it is lost, not just this one.
                return Err(result.err().unwrap_or_else(|| {
                    StoreError::Query(sqlx::Error::Protocol(
                        "the transaction ended early".to_owned(),
                    ))
                }));
            }
            if result.is_err() && savepoints.skipped_for(&request.write) {
                return Ok(Ran::Unguarded);
            }
            results.push(result);
        }
        if let Err(e) = cached(conn, "COMMIT") {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        Ok(Ran::Committed(results))
    }

    fn fail(&self, batch: &mut Vec<Request>, error: &StoreError) {
        self.stats.failed();
        for request in batch.drain(..) {
            let _ = request.reply.send(Err(StoreError::batch_failed(error)));
        }
    }
}

/// Which writes of a batch run in a savepoint of their own, so that a failure undoes only its
/// own write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Savepoints {
    /// All but the writes that fail only exceptionally (the message of a synchronous send, an
    /// idempotency key's claim): a savepoint costs two statements and a copy of every page the
    /// write touches, a good part of what those writes cost.
    WhereNeeded,
    Every,
}

impl Savepoints {
    fn skipped_for(self, write: &Write) -> bool {
        self == Savepoints::WhereNeeded
            && matches!(write, Write::InsertSent(..) | Write::ClaimKey { .. })
    }
}

enum Ran {
    Committed(Vec<Result<Done, StoreError>>),
    /// A write without a savepoint failed; the transaction is still open.
    Unguarded,
}

/// Runs a statement without parameters through the statement cache.
fn cached(conn: &Connection, sql: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute([])
}

/// Runs `f` in a savepoint: if it fails, whatever it wrote is undone and the transaction goes on.
fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    cached(conn, "SAVEPOINT write")?;
    let result = f(conn);
    if !conn.is_autocommit() {
        if result.is_err() {
            cached(conn, "ROLLBACK TO write")?;
        }
        cached(conn, "RELEASE write")?;
    }
    result
}

/// One write, inside the batch's transaction.
fn apply(conn: &Connection, write: &Write, savepoints: Savepoints) -> Result<Done, StoreError> {
    let guarded = |f: &dyn Fn(&Connection) -> Result<Done, StoreError>| {
        if savepoints.skipped_for(write) {
            f(conn)
        } else {
            in_savepoint(conn, f)
        }
    };
    match write {
        Write::InsertMessage(m) => {
            insert_message(conn, m)?;
            Ok(Done::Unit)
        }
        Write::RecordOutcome(o) => in_savepoint(conn, |conn| {
            record_outcome(conn, o)?;
            Ok(Done::Unit)
        }),
        Write::InsertSent(m, o, key) => guarded(&|conn| {
            match key {
                // The key was claimed for this message: its answer rides in the row.
                Some(k) if k.for_record => insert_sent(conn, m, o, Some(k))?,
                Some(k) => {
                    insert_sent(conn, m, o, None)?;
                    complete_key(conn, k)?;
                }
                None => insert_sent(conn, m, o, None)?,
            }
            Ok(Done::Unit)
        }),
        Write::Queue(op) => in_savepoint(conn, |conn| {
            sqlite_queue::apply(conn, op, insert_message, record_outcome).map(Done::Queue)
        }),
        Write::ApplyStatus {
            id,
            status,
            at_ms,
            error,
            dedup_key,
            advances,
        } => in_savepoint(conn, |conn| {
            // A duplicate or an unknown message writes nothing (the savepoint is rolled back).
            if !note_dedup_key(conn, dedup_key, *at_ms)? {
                return Ok(Done::Applied(Applied::Duplicate));
            }
            let current: Option<String> = conn
                .prepare_cached("SELECT status FROM messages WHERE id = ?1")?
                .query_row([id], |row| row.get(0))
                .optional()?;
            let Some(current) = current else {
                return Err(not_found("message", id));
            };
            append_event(conn, id, status, *at_ms, error.as_deref())?;
            let advanced = advances(&current, status);
            if advanced {
                conn.prepare_cached(
                    "UPDATE messages SET status = ?2, error = COALESCE(?3, error), \
                     updated_at = ?4 WHERE id = ?1",
                )?
                .execute(params![id, status, error, at_ms])?;
            }
            Ok(Done::Applied(Applied::Recorded {
                status: if advanced { status.clone() } else { current },
                advanced,
            }))
        }),
        Write::FirstSighting { dedup_key, at_ms } => {
            Ok(Done::Bool(note_dedup_key(conn, dedup_key, *at_ms)?))
        }
        Write::ClaimKey {
            client,
            key,
            fingerprint,
            message_id,
            now_ms,
            expired_before_ms,
            sweep,
        } => guarded(&|conn| {
            if *sweep {
                conn.prepare_cached(SWEEP_EXPIRED_KEYS)?
                    .execute([expired_before_ms])?;
            }
            // This connection holds the write lock: the row cannot change between statements.
            let claim = KeyRow {
                client,
                key,
                fingerprint,
                message_id: message_id.as_deref(),
                now_ms: *now_ms,
            };
            if insert_key(conn, &claim)? {
                return Ok(Done::Claim(KeyClaim::Fresh));
            }
            // An expired key is claimed anew: its row (and with it its answer) goes, and the
            // key gets a fresh row.
            let expired = conn
                .prepare_cached(
                    "DELETE FROM idempotency_keys \
                     WHERE client = ?1 AND idempotency_key = ?2 AND created_at < ?3",
                )?
                .execute(params![client, key, expired_before_ms])?;
            if expired == 1 && insert_key(conn, &claim)? {
                return Ok(Done::Claim(KeyClaim::Fresh));
            }
            let live = conn
                .prepare_cached(
                    "SELECT k.fingerprint, \
                     CASE WHEN a.key_id IS NOT NULL OR m.key_answer_body IS NOT NULL \
                     THEN ?4 ELSE ?3 END, \
                     CASE WHEN a.key_id IS NULL THEN m.key_answer_status ELSE a.status END, \
                     CASE WHEN a.key_id IS NULL THEN m.key_answer_body ELSE a.body END, \
                     CASE WHEN a.key_id IS NULL THEN m.key_answer_retry_after_secs \
                     ELSE a.retry_after_secs END \
                     FROM idempotency_keys AS k \
                     LEFT JOIN idempotency_answers AS a ON a.key_id = k.id \
                     LEFT JOIN messages AS m ON m.id = k.message_id \
                     WHERE k.client = ?1 AND k.idempotency_key = ?2",
                )?
                .query_row(
                    params![client, key, KEY_IN_FLIGHT, KEY_DONE],
                    IdempotencyRow::from_sqlite,
                )
                .optional()?;
            match live {
                Some(row) => row.claim_for(fingerprint).map(Done::Claim),
                None => Ok(Done::Claim(KeyClaim::InFlight)),
            }
        }),
        Write::CompleteKey(k) => {
            expect_found(complete_key(conn, k)?, "idempotency key", &k.key)?;
            Ok(Done::Unit)
        }
        Write::ReleaseKey { client, key } => {
            conn.prepare_cached(
                "DELETE FROM idempotency_keys AS k \
                 WHERE client = ?1 AND idempotency_key = ?2 \
                 AND NOT EXISTS (SELECT 1 FROM idempotency_answers WHERE key_id = k.id) \
                 AND NOT EXISTS (SELECT 1 FROM messages \
                    WHERE id = k.message_id AND key_answer_body IS NOT NULL)",
            )?
            .execute(params![client, key])?;
            Ok(Done::Unit)
        }
        Write::Enqueue(deliveries) => in_savepoint(conn, |conn| {
            let mut insert = conn.prepare_cached(
                "INSERT INTO outbox (event_id, event_type, target_url, signer, body, \
                 next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for d in deliveries {
                insert.execute(params![
                    d.event_id,
                    d.event_type,
                    d.target_url,
                    d.signer,
                    d.body,
                    d.next_attempt_at_ms
                ])?;
            }
            Ok(Done::Unit)
        }),
        Write::ClaimDue {
            now_ms,
            lease_ms,
            limit,
        } => {
            // One statement under the write lock: no second caller can lease the same rows.
            let mut rows = conn
                .prepare_cached(
                    "UPDATE outbox SET leased_until = ?1 + ?2 \
                     WHERE id IN (SELECT id FROM outbox \
                        WHERE state = 'pending' AND next_attempt_at <= ?1 \
                        AND leased_until <= ?1 \
                        ORDER BY next_attempt_at, id LIMIT ?3) \
                     RETURNING id, event_id, event_type, target_url, signer, body, attempts",
                )?
                .query_map(params![now_ms, lease_ms, i64::from(*limit)], |row| {
                    DeliveryRow::from_sqlite(row)
                })?
                .map(|row| Delivery::try_from(row?))
                .collect::<Result<Vec<_>, _>>()?;
            // RETURNING comes in no particular order; ids grow with enqueue time.
            rows.sort_by_key(|d| d.id);
            Ok(Done::Deliveries(rows))
        }
        Write::UpdateDelivery { id, update } => {
            let updated = match update {
                DeliveryUpdate::Delivered { at_ms } => conn
                    .prepare_cached(
                        "UPDATE outbox SET state = 'delivered', delivered_at = ?2, \
                         leased_until = 0 WHERE id = ?1",
                    )?
                    .execute(params![id, at_ms])?,
                DeliveryUpdate::Rescheduled {
                    attempts,
                    next_attempt_at_ms,
                    last_error,
                } => conn
                    .prepare_cached(
                        "UPDATE outbox SET state = 'pending', attempts = ?2, \
                         next_attempt_at = ?3, last_error = ?4, leased_until = 0 WHERE id = ?1",
                    )?
                    .execute(params![id, attempts, next_attempt_at_ms, last_error])?,
                DeliveryUpdate::Dead {
                    attempts,
                    last_error,
                } => conn
                    .prepare_cached(
                        "UPDATE outbox SET state = 'dead', attempts = ?2, last_error = ?3, \
                         leased_until = 0 WHERE id = ?1",
                    )?
                    .execute(params![id, attempts, last_error])?,
            };
            expect_found(updated, "delivery", id)?;
            Ok(Done::Unit)
        }
        Write::Read(read) => read.run(conn),
    }
}

fn insert_message(conn: &Connection, m: &MessageInsert) -> Result<(), StoreError> {
    insert_row(conn, m, None, None)
}

/// Deletes the keys claimed before the first one created at or after `?1`, the time before which
/// a key has expired (migration 0007): the rows before it are expired, and an expired row claimed
/// after a live one (a clock set back) waits for the next sweep. The scan walks the ids in order
/// and stops at the first live row, so a sweep reads about as many rows as it deletes.
const SWEEP_EXPIRED_KEYS: &str = "DELETE FROM idempotency_keys WHERE id < coalesce(\
     (SELECT id FROM idempotency_keys WHERE created_at >= ?1 ORDER BY id LIMIT 1), \
     (SELECT max(id) FROM idempotency_keys) + 1)";

/// A key's row as a claim writes it.
struct KeyRow<'a> {
    client: &'a str,
    key: &'a str,
    fingerprint: &'a str,
    message_id: Option<&'a str>,
    now_ms: i64,
}

/// Claims the key if no row holds it: whether it did.
fn insert_key(conn: &Connection, row: &KeyRow<'_>) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO idempotency_keys \
             (client, idempotency_key, fingerprint, created_at, message_id) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (client, idempotency_key) DO NOTHING",
        )?
        .execute(params![
            row.client,
            row.key,
            row.fingerprint,
            row.now_ms,
            row.message_id
        ])?;
    Ok(inserted == 1)
}

/// Keeps the answer under its key (replacing one kept before, as a completion always did):
/// how many keys that was (0 or 1). The answer has a row of its own, appended: the key's row
/// is left as the claim wrote it.
fn complete_key(conn: &Connection, k: &KeyCompletion) -> Result<usize, StoreError> {
    let kept = conn
        .prepare_cached(
            "INSERT INTO idempotency_answers (key_id, status, body, retry_after_secs) \
             SELECT id, ?3, ?4, ?5 FROM idempotency_keys \
             WHERE client = ?1 AND idempotency_key = ?2 \
             ON CONFLICT (key_id) DO UPDATE SET status = excluded.status, \
             body = excluded.body, retry_after_secs = excluded.retry_after_secs",
        )?
        .execute(params![
            k.client,
            k.key,
            k.status,
            k.body,
            k.retry_after_secs
        ])?;
    Ok(kept)
}

/// A message with its send's outcome already known: one insert instead of an insert, an update
/// and an event's row. The outcome is the message's first event, kept in its row; so is `key`'s
/// answer, given when the key was claimed for this message.
fn insert_sent(
    conn: &Connection,
    m: &MessageInsert,
    o: &OutcomeUpdate,
    key: Option<&KeyCompletion>,
) -> Result<(), StoreError> {
    insert_row(conn, m, Some(o), key)
}

/// The message's row: `queued` (or what `m` says) until an outcome is given; an outcome given
/// is also the first event.
fn insert_row(
    conn: &Connection,
    m: &MessageInsert,
    o: Option<&OutcomeUpdate>,
    key: Option<&KeyCompletion>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO messages (id, client, recipient, sender, message_type, refs, \
         callback_url, route, status, provider, endpoint, provider_message_id, error, \
         created_at, updated_at, first_event_status, first_event_at, first_event_error, \
         key_answer_status, key_answer_body, key_answer_retry_after_secs) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
         ?16, ?17, ?13, ?18, ?19, ?20)",
    )?
    .execute(params![
        m.id,
        m.client,
        m.to,
        m.from,
        m.message_type,
        m.refs,
        m.callback_url,
        m.route,
        o.map_or(&m.status, |o| &o.status),
        o.and_then(|o| o.provider.as_deref()),
        o.and_then(|o| o.endpoint.as_deref()),
        o.and_then(|o| o.provider_message_id.as_deref()),
        o.and_then(|o| o.error.as_deref()),
        m.created_at_ms,
        o.map_or(m.created_at_ms, |o| o.at_ms),
        o.map(|o| &o.status),
        o.map(|o| o.at_ms),
        key.map(|k| k.status),
        key.map(|k| &k.body),
        key.and_then(|k| k.retry_after_secs)
    ])?;
    Ok(())
}

/// The send's outcome; the status only moves while the message is `queued`.
fn record_outcome(conn: &Connection, o: &OutcomeUpdate) -> Result<(), StoreError> {
    let updated = conn
        .prepare_cached(
            "UPDATE messages SET \
             status = CASE WHEN status = 'queued' THEN ?2 ELSE status END, \
             provider = ?3, endpoint = ?4, provider_message_id = ?5, \
             error = COALESCE(?6, error), updated_at = ?7 \
             WHERE id = ?1",
        )?
        .execute(params![
            o.id,
            o.status,
            o.provider,
            o.endpoint,
            o.provider_message_id,
            o.error,
            o.at_ms
        ])?;
    expect_found(updated, "message", &o.id)?;
    append_event(conn, &o.id, &o.status, o.at_ms, o.error.as_deref())
}

/// Records `key` as seen; false if it was seen before.
fn note_dedup_key(conn: &Connection, key: &str, at_ms: i64) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO webhook_dedup (dedup_key, seen_at) VALUES (?1, ?2) \
             ON CONFLICT (dedup_key) DO NOTHING",
        )?
        .execute(params![key, at_ms])?;
    Ok(inserted == 1)
}

fn append_event(
    conn: &Connection,
    message_id: &str,
    status: &str,
    at_ms: i64,
    error: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO message_events (message_id, status, occurred_at, error) \
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![message_id, status, at_ms, error])?;
    Ok(())
}

fn expect_found(rows: usize, what: &'static str, id: impl ToString) -> Result<(), StoreError> {
    if rows == 0 {
        return Err(not_found(what, id));
    }
    Ok(())
}

fn not_found(what: &'static str, id: impl ToString) -> StoreError {
    StoreError::NotFound {
        what,
        id: id.to_string(),
    }
}

// --- reads ---

enum Read {
    Ping,
    QueueStats {
        now_ms: i64,
    },
    Message {
        column: MessageColumn,
        value: String,
    },
}

#[derive(Clone, Copy)]
enum MessageColumn {
    Id,
    ProviderMessageId,
}

impl Read {
    fn run(&self, conn: &Connection) -> Result<Done, StoreError> {
        match self {
            Read::Ping => {
                conn.prepare_cached("SELECT 1")?
                    .query_row([], |row| row.get::<_, i64>(0))?;
                Ok(Done::Unit)
            }
            Read::QueueStats { now_ms } => {
                sqlite_queue::stats(conn, *now_ms).map(|s| Done::Queue(QueueDone::Stats(s)))
            }
            Read::Message { column, value } => {
                let sql = match column {
                    MessageColumn::Id => MESSAGE_BY_ID.as_str(),
                    MessageColumn::ProviderMessageId => MESSAGE_BY_PROVIDER_ID.as_str(),
                };
                // The message and its events as of one moment.
                let own_transaction = conn.is_autocommit();
                if own_transaction {
                    cached(conn, "BEGIN")?;
                }
                let message = load_message(conn, sql, value);
                if own_transaction {
                    cached(conn, "COMMIT")?;
                }
                message.map(|m| Done::Message(Box::new(m)))
            }
        }
    }
}

static MESSAGE_BY_ID: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1 LIMIT 1")
});
static MESSAGE_BY_PROVIDER_ID: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE provider_message_id = ?1 LIMIT 1")
});

fn load_message(
    conn: &Connection,
    sql: &str,
    value: &str,
) -> Result<Option<MessageRecord>, StoreError> {
    let Some(row) = conn
        .prepare_cached(sql)?
        .query_row([value], MessageRow::from_sqlite)
        .optional()?
    else {
        return Ok(None);
    };
    let later_events = conn
        .prepare_cached(
            "SELECT status, occurred_at, error FROM message_events \
             WHERE message_id = ?1 ORDER BY seq",
        )?
        .query_map([row.id()], EventRow::from_sqlite)?
        .map(|event| StoredEvent::try_from(event?))
        .collect::<Result<_, _>>()?;
    row.into_record(later_events).map(Some)
}

/// Read-only connections to the database file, opened as needed, a few kept.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    closed: AtomicBool,
}

impl Readers {
    fn new(path: PathBuf) -> Arc<Readers> {
        Arc::new(Readers {
            path,
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        })
    }

    /// Runs `f` on a read connection (blocking).
    fn run<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::closed());
        }
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let result = f(&conn);
        if !self.closed.load(Ordering::Acquire) {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < READERS_KEPT {
                idle.push(conn);
            }
        }
        result
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch("PRAGMA query_only = ON")?;
    Ok(conn)
}

// --- checkpoints ---

/// The write-ahead log's limits for the database `conn` is open on, by its page size.
fn log_limits(conn: &Connection) -> rusqlite::Result<LogLimits> {
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    Ok(LogLimits::for_page_size(page_size))
}

/// The checkpoint thread's connection to the file at `path`: a reader's, allowed to write.
fn open_checkpointer(path: &Path) -> Result<Connection, String> {
    let conn = open_reader(path).map_err(|e| e.to_string())?;
    conn.execute_batch("PRAGMA query_only = OFF")
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

// --- opening ---

/// The writer's connection, to the file at `path` (created if missing, in WAL mode) or to a new
/// in-memory database, with the schema migrated.
fn open_writer(path: Option<&PathBuf>) -> Result<Connection, String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = match path {
        Some(path) => Connection::open_with_flags(path, flags),
        None => Connection::open_in_memory_with_flags(flags),
    }
    .map_err(|e| e.to_string())?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Takes effect only on a new database (an existing one keeps its page size).
    conn.execute_batch(NEW_DATABASE_PAGE_SIZE)
        .map_err(|e| e.to_string())?;
    if path.is_some() {
        // The file remembers WAL mode.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|e| e.to_string())?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!(
                "cannot switch the database to WAL mode (it is in {mode} mode)"
            ));
        }
        let limits = log_limits(&conn).map_err(|e| e.to_string())?;
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = {}",
            limits.writer_pages
        ))
        .map_err(|e| e.to_string())?;
    }
    conn.execute_batch(SYNCHRONOUS)
        .and_then(|()| conn.execute_batch("PRAGMA foreign_keys = ON"))
        .map_err(|e| e.to_string())?;
    migrate(&mut conn).map_err(|e| format!("migration: {e}"))?;
    Ok(conn)
}

/// Brings the schema up to date with `migrations/sqlite`, keeping the book in the table
/// `_sqlx_migrations` the way `sqlx migrate` does (so databases it migrated are read as they
/// are): each migration in a transaction with its row; a migration changed since it was
/// applied, or applied but no longer known, is an error.
fn migrate(conn: &mut Connection) -> Result<(), String> {
    let text = |e: rusqlite::Error| e.to_string();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        );",
    )
    .map_err(text)?;
    let dirty: Option<i64> = conn
        .query_row(
            "SELECT version FROM _sqlx_migrations WHERE success = false ORDER BY version LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(text)?;
    if let Some(version) = dirty {
        return Err(format!(
            "migration {version} is partially applied; fix and remove it from _sqlx_migrations"
        ));
    }
    let applied: HashMap<i64, Vec<u8>> = conn
        .prepare("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .map_err(text)?;
    let known: Vec<_> = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .collect();
    if let Some(version) = applied
        .keys()
        .find(|v| !known.iter().any(|m| m.version == **v))
    {
        return Err(format!(
            "migration {version} was previously applied but is missing in the resolved migrations"
        ));
    }
    for migration in known {
        match applied.get(&migration.version) {
            Some(checksum) if *checksum == *migration.checksum => {}
            Some(_) => {
                return Err(format!(
                    "migration {} was previously applied but has been modified",
                    migration.version
                ))
            }
            None => {
                let started = Instant::now();
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(text)?;
                tx.execute_batch(&migration.sql)
                    .map_err(|e| format!("while executing migration {}: {e}", migration.version))?;
                tx.execute(
                    "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                     execution_time) VALUES (?1, ?2, TRUE, ?3, -1)",
                    params![
                        migration.version,
                        migration.description.as_ref(),
                        migration.checksum.as_ref()
                    ],
                )
                .map_err(text)?;
                tx.commit().map_err(text)?;
                let nanos = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
                conn.execute(
                    "UPDATE _sqlx_migrations SET execution_time = ?1 WHERE version = ?2",
                    params![nanos, migration.version],
                )
                .map_err(text)?;
            }
        }
    }
    Ok(())
}

/// Held while a process creates and migrates a database file, so that processes opening a new
/// file together neither race to switch it to WAL (`database is locked`) nor to apply the same
/// migration (SQLite has no advisory lock). It is an `flock` on the file's directory: SQLite's
/// own locks are `fcntl` locks on the file, which it would lose if this process opened and
/// closed the file itself.
pub(crate) struct SetupLock(#[allow(dead_code)] Option<std::fs::File>);

impl SetupLock {
    pub(crate) async fn acquire(url: &str) -> Result<SetupLock, StoreError> {
        if is_in_memory(url) {
            return Ok(SetupLock(None));
        }
        let fail = |e: String| StoreError::open(BACKEND, e, url);
        let options = SqliteConnectOptions::from_str(url).map_err(|e| fail(e.to_string()))?;
        let dir = match options.get_filename().parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
        let locked = tokio::task::spawn_blocking(move || {
            let handle = std::fs::File::open(&dir)?;
            handle.lock()?;
            Ok::<_, std::io::Error>(handle)
        })
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(|e| fail(format!("cannot lock the database directory: {e}")))?;
        Ok(SetupLock(Some(locked)))
    }
}

fn is_in_memory(url: &str) -> bool {
    let database = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, params) = database.split_once('?').unwrap_or((database, ""));
    path == ":memory:" || params.split('&').any(|p| p == "mode=memory")
}

#[cfg(test)]
mod tests {
    use super::{is_in_memory, SWEEP_EXPIRED_KEYS};
    use rusqlite::Connection;

    /// Key, fingerprint, created_at; the answer's status, body and Retry-After.
    type KeyWithAnswer = (
        String,
        String,
        i64,
        Option<i64>,
        Option<Vec<u8>>,
        Option<i64>,
    );

    /// A database made before the answers had a table of their own keeps every kept answer,
    /// and its keys in flight stay in flight.
    #[test]
    fn kept_answers_move_to_their_own_table() {
        let conn = Connection::open_in_memory().unwrap();
        for schema in [
            include_str!("../migrations/sqlite/0001_schema.sql"),
            include_str!("../migrations/sqlite/0002_events_in_recorded_order.sql"),
            include_str!("../migrations/sqlite/0003_queue.sql"),
        ] {
            conn.execute_batch(schema).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO idempotency_keys (client, idempotency_key, fingerprint, state, \
             created_at, response_status, response_body, retry_after_secs) VALUES \
             ('orders', 'done', 'fp-1', 'done', 10, 503, X'7B7D', 30), \
             ('orders', 'flying', 'fp-2', 'in_flight', 20, NULL, NULL, NULL);",
        )
        .unwrap();
        conn.execute_batch(include_str!(
            "../migrations/sqlite/0004_idempotency_answers.sql"
        ))
        .unwrap();

        let keys: Vec<KeyWithAnswer> = conn
            .prepare(
                "SELECT k.idempotency_key, k.fingerprint, k.created_at, a.status, a.body, \
                 a.retry_after_secs FROM idempotency_keys AS k \
                 LEFT JOIN idempotency_answers AS a ON a.key_id = k.id ORDER BY k.id",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            keys,
            [
                (
                    "done".into(),
                    "fp-1".into(),
                    10,
                    Some(503),
                    Some(b"{}".to_vec()),
                    Some(30)
                ),
                ("flying".into(), "fp-2".into(), 20, None, None, None),
            ]
        );
        // The age index is back, and a key's answer goes with its row.
        conn.execute_batch("DELETE FROM idempotency_keys WHERE created_at < 15")
            .unwrap();
        let answers: i64 = conn
            .query_row("SELECT COUNT(*) FROM idempotency_answers", [], |r| r.get(0))
            .unwrap();
        assert_eq!(answers, 0);
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM idempotency_keys WHERE created_at < 1",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("idempotency_keys_by_age"), "{plan}");
    }

    /// The sweep deletes the keys claimed before the first live one, their answers with them,
    /// walking the ids in order (no index on the keys' age).
    #[test]
    fn the_sweep_deletes_the_expired_keys_in_claim_order() {
        let conn = super::open_writer(None).unwrap();
        let ages = |conn: &Connection| -> Vec<i64> {
            conn.prepare("SELECT created_at FROM idempotency_keys ORDER BY id")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        // Claimed in this order; the third with a clock set back.
        for (key, created_at) in [("a", 10), ("b", 20), ("c", 5), ("d", 30)] {
            conn.execute(
                "INSERT INTO idempotency_keys (client, idempotency_key, fingerprint, created_at) \
                 VALUES ('orders', ?1, 'fp', ?2)",
                rusqlite::params![key, created_at],
            )
            .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO idempotency_answers (key_id, status, body) \
             SELECT id, 202, X'7B7D' FROM idempotency_keys",
        )
        .unwrap();
        let sweep =
            |expired_before: i64| conn.execute(SWEEP_EXPIRED_KEYS, [expired_before]).unwrap();

        // Only `a` is before the first live key (`b`): `c` waits for a later sweep.
        assert_eq!(sweep(15), 1);
        assert_eq!(ages(&conn), [20, 5, 30]);
        assert_eq!(sweep(25), 2);
        assert_eq!(ages(&conn), [30]);
        // All expired: all go.
        assert_eq!(sweep(31), 1);
        assert!(ages(&conn).is_empty());
        assert_eq!(sweep(31), 0);
        let answers: i64 = conn
            .query_row("SELECT COUNT(*) FROM idempotency_answers", [], |r| r.get(0))
            .unwrap();
        assert_eq!(answers, 0);

        // The lookup of the first live key walks the table in id order: no sort, no index.
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {SWEEP_EXPIRED_KEYS}"))
            .unwrap()
            .query_map([0], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|step| step.contains("INDEX")), "{plan:?}");
    }

    #[test]
    fn recognizes_in_memory_urls() {
        assert!(is_in_memory("sqlite::memory:"));
        assert!(is_in_memory("sqlite://db?mode=memory&cache=shared"));
        assert!(!is_in_memory("sqlite://./data/switchboard.db"));
        assert!(!is_in_memory("sqlite:///var/lib/switchboard/memory.db"));
    }
}
