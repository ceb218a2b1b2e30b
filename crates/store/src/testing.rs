//! For the tests of crates that use the store: a fresh PostgreSQL database per test, on the
//! server named by [`POSTGRES_URL_VAR`], owned by the role that test connects as.

use sqlx::{Connection, Executor, PgConnection};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Names the PostgreSQL server the tests may use (`postgres://user:password@host:port/db`, a
/// role allowed to create databases).
pub const POSTGRES_URL_VAR: &str = "SWITCHBOARD_TEST_POSTGRES_URL";

/// Creates an empty database with a name no other test uses and returns its URL.
pub async fn fresh_postgres_database(admin_url: &str) -> Result<String, sqlx::Error> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "switchboard_it_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = PgConnection::connect(admin_url).await?;
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await?;
    admin.close().await?;
    let mut url = url::Url::parse(admin_url).map_err(|e| sqlx::Error::Configuration(e.into()))?;
    url.set_path(&name);
    Ok(url.to_string())
}

/// How long [`set_connections_allowed`] waits at most for closed connections to be gone.
pub const CLOSING_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);
const CLOSING_POLL: std::time::Duration = std::time::Duration::from_millis(50);
const CLOSING_POLLS: u32 = (CLOSING_LIMIT.as_millis() / CLOSING_POLL.as_millis()) as u32;

/// Keeps every connection out of the database of `db_url` (closing those open) or lets them in
/// again: a store that goes away and comes back, for the tests of what the gateway does then.
/// `admin_url` is the role that created the database (its owner).
pub async fn set_connections_allowed(
    admin_url: &str,
    db_url: &str,
    allowed: bool,
) -> Result<(), sqlx::Error> {
    let url = url::Url::parse(db_url).map_err(|e| sqlx::Error::Configuration(e.into()))?;
    let name = url.path().trim_start_matches('/').to_string();
    let mut admin = PgConnection::connect(admin_url).await?;
    admin
        .execute(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {allowed}").as_str())
        .await?;
    if !allowed {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&name)
        .execute(&mut admin)
        .await?;
        // A terminated backend may still finish what it was doing: wait until none is left.
        let mut left: i64 = 0;
        for _ in 0..CLOSING_POLLS {
            left = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
                .bind(&name)
                .fetch_one(&mut admin)
                .await?;
            if left == 0 {
                break;
            }
            tokio::time::sleep(CLOSING_POLL).await;
        }
        if left > 0 {
            return Err(sqlx::Error::Protocol(format!(
                "{left} connections to {name} still open {CLOSING_LIMIT:?} after they were terminated"
            )));
        }
    }
    admin.close().await
}

/// Runs `sql` on the SQLite database file at `path` beside an open store: for tests that make
/// the store refuse some writes (with a trigger, say).
pub fn execute_on_sqlite(path: &std::path::Path, sql: &str) -> rusqlite::Result<()> {
    rusqlite::Connection::open(path)?.execute_batch(sql)
}

/// SQLite's write lock on a database file, held from a connection of its own until dropped:
/// the store's writer waits for it (its busy timeout is 10 s), so a test decides when a write
/// can commit. Reads go on (WAL).
pub struct SqliteWriteLock(rusqlite::Connection);

/// Takes the write lock of the SQLite database at `path`, beside an open store.
pub fn hold_sqlite_write_lock(path: &std::path::Path) -> rusqlite::Result<SqliteWriteLock> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    Ok(SqliteWriteLock(conn))
}

impl Drop for SqliteWriteLock {
    fn drop(&mut self) {
        let _ = self.0.execute_batch("ROLLBACK");
    }
}
