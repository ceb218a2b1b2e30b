//! PostgreSQL: one database shared by several replicas. Row locks keep them from stepping on
//! each other; the migrator's advisory lock keeps them from migrating twice.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::Connection;
use sqlx::{AnyConnection, AnyPool};

use crate::sql_store::Dialect;
use crate::StoreError;

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
const MAX_CONNECTIONS: u32 = 10;

pub(crate) async fn connect(url: &str) -> Result<AnyPool, StoreError> {
    let fail = |e: String| StoreError::open(DIALECT.backend, e, url);
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
