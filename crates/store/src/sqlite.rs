//! SQLite: one file, one process. WAL mode lets readers run beside the single writer.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode};
use sqlx::AnyPool;
use sqlx::{Connection, Executor};

use crate::sql_store::Dialect;
use crate::StoreError;

pub(crate) static DIALECT: Dialect = Dialect {
    backend: "SQLite",
    migrator: sqlx::migrate!("./migrations/sqlite"),
    // Take the write lock up front: a transaction that reads first and writes later fails with
    // SQLITE_BUSY when another writer got in between, instead of waiting for it.
    begin_write: "BEGIN IMMEDIATE",
    // The write lock taken by `begin_write` already keeps other writers out.
    select_status_for_update: "SELECT status FROM messages WHERE id = $1",
    // One statement, so one write lock: no second caller can lease the same rows.
    claim_due: "UPDATE outbox SET leased_until = $1 + $2 \
        WHERE id IN (SELECT id FROM outbox \
            WHERE state = 'pending' AND next_attempt_at <= $1 AND leased_until <= $1 \
            ORDER BY next_attempt_at, id LIMIT $3) \
        RETURNING id, event_id, event_type, target_url, signer, body, attempts",
};

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// SQLite lets one writer in at a time, and a connection that finds the write lock taken
/// sleeps in its busy handler. Under load, several connections spent most of their time
/// asleep there (the load benchmark measured it); one connection makes callers wait in the
/// pool's queue instead, woken as soon as it is free. Several processes on one database is
/// PostgreSQL's job.
const MAX_CONNECTIONS: u32 = 1;
/// In WAL mode, `NORMAL` syncs at checkpoints instead of at every commit: a commit survives a
/// crash of the process, and only a crash of the machine can lose the last ones. Syncing each
/// commit cost two `fsync`s per message sent.
const SYNCHRONOUS: &str = "PRAGMA synchronous = NORMAL";

pub(crate) async fn connect(url: &str) -> Result<AnyPool, StoreError> {
    let fail = |e: sqlx::Error| StoreError::open(DIALECT.backend, e, url);
    let in_memory = is_in_memory(url);
    if !in_memory {
        create_database_file(url).await?;
    }
    let options = AnyPoolOptions::new().after_connect(|conn, _| {
        Box::pin(async move {
            let pragma = format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis());
            conn.execute(pragma.as_str()).await?;
            conn.execute(SYNCHRONOUS).await.map(drop)
        })
    });
    // Keep the one connection for good: for `:memory:` it *is* the database.
    let options = options
        // A check before each use is a round trip to the connection's thread per statement;
        // a file on local disk does not go away between statements.
        .test_before_acquire(false)
        .max_connections(MAX_CONNECTIONS)
        .min_connections(MAX_CONNECTIONS)
        .idle_timeout(None)
        .max_lifetime(None);
    options.connect(url).await.map_err(fail)
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
        let fail = |e: String| StoreError::open(DIALECT.backend, e, url);
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

/// Creates the file (and its directories) if missing, in WAL mode (which the file remembers).
async fn create_database_file(url: &str) -> Result<(), StoreError> {
    let fail = |e: String| StoreError::open(DIALECT.backend, e, url);
    let options = SqliteConnectOptions::from_str(url).map_err(|e| fail(e.to_string()))?;
    if let Some(dir) = options
        .get_filename()
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
    {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    }
    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(BUSY_TIMEOUT);
    let conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| fail(e.to_string()))?;
    conn.close().await.map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::is_in_memory;

    #[test]
    fn recognizes_in_memory_urls() {
        assert!(is_in_memory("sqlite::memory:"));
        assert!(is_in_memory("sqlite://db?mode=memory&cache=shared"));
        assert!(!is_in_memory("sqlite://./data/switchboard.db"));
        assert!(!is_in_memory("sqlite:///var/lib/switchboard/memory.db"));
    }
}
