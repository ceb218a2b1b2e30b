//! The [`Store`] on a connection pool, one statement or transaction per call: PostgreSQL's reads
//! and the writes its batch writer leaves to it (see `postgres.rs`). The SQL is written in the
//! subset SQLite and PostgreSQL agree on (`$n` parameters, `ON CONFLICT`, `RETURNING`); what is
//! said in one database's own way is in the [`Dialect`].

use async_trait::async_trait;
use sqlx::any::AnyQueryResult;
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Transaction};

use crate::queue::{
    Canceled, Claimed, NewQueued, QueueClaim, QueueFinish, QueueStats, QueuedMessage,
};
use crate::rows::{
    json_text, DeliveryRow, EventRow, IdempotencyRow, MessageRow, KEY_DONE, KEY_IN_FLIGHT,
    MESSAGE_COLUMNS,
};
use crate::writes::KeySweep;
use crate::{
    Applied, Delivery, KeyAnswer, KeyClaim, MessageRecord, NewDelivery, NewMessage, SendOutcome,
    StatusChange, StatusRule, Store, StoreError, StoredEvent, StoredResponse,
};
use serde_json::Value;

/// What one database needs said its own way.
pub(crate) struct Dialect {
    /// For error messages.
    pub(crate) backend: &'static str,
    pub(crate) migrator: Migrator,
    /// Starts a transaction that will write.
    pub(crate) begin_write: &'static str,
    /// `$1` = message id → its status, locked against other writers until the transaction ends.
    pub(crate) select_status_for_update: &'static str,
    /// `$1` = now, `$2` = lease length, `$3` = limit → the leased deliveries, as
    /// [`DeliveryRow`]s. Never hands one row to two concurrent callers.
    pub(crate) claim_due: &'static str,
}

/// A claim races with releases and sweeps deleting the row it just saw; it tries this often.
const CLAIM_ATTEMPTS: usize = 3;

pub(crate) struct SqlStore {
    pool: AnyPool,
    dialect: &'static Dialect,
    key_sweep: KeySweep,
}

/// Runs the migrations on a connection of its own. A failed run can leave the migrator's
/// session-level advisory lock (PostgreSQL) held on that connection, so it is closed instead of
/// going back to the pool, where it would block every later migration forever.
async fn migrate(pool: &AnyPool, dialect: &Dialect) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let result = dialect.migrator.run(&mut *conn).await;
    if result.is_err() {
        let _ = conn.detach().close().await;
    }
    result.map_err(Into::into)
}

impl SqlStore {
    pub(crate) async fn migrated(
        pool: AnyPool,
        dialect: &'static Dialect,
        url: &str,
    ) -> Result<Self, StoreError> {
        // Processes starting together apply each migration once: the migrator holds
        // PostgreSQL's advisory lock.
        migrate(&pool, dialect)
            .await
            .map_err(|e| StoreError::open(dialect.backend, format!("migration: {e}"), url))?;
        Ok(SqlStore {
            pool,
            dialect,
            key_sweep: KeySweep::new(),
        })
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(self.pool.begin_with(self.dialect.begin_write).await?)
    }

    async fn load_message(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE {column} = $1 LIMIT 1");
        let Some(row) = sqlx::query_as::<_, MessageRow>(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let later_events = sqlx::query_as::<_, EventRow>(
            "SELECT status, occurred_at, error FROM message_events \
             WHERE message_id = $1 ORDER BY seq",
        )
        .bind(row.id())
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(StoredEvent::try_from)
        .collect::<Result<_, _>>()?;
        row.into_record(later_events).map(Some)
    }

    /// Deletes idempotency keys past their TTL, at most once a minute.
    pub(crate) async fn sweep_expired_keys(
        &self,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<(), StoreError> {
        if !self.key_sweep.due(now_ms) {
            return Ok(());
        }
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(now_ms.saturating_sub(ttl_ms))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn update_delivery<'q>(
        &self,
        id: i64,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<(), StoreError> {
        expect_found(query.execute(&self.pool).await?, "delivery", id)
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn insert_message(&self, m: &NewMessage) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_message(&mut conn, m).await
    }

    async fn record_outcome(&self, id: &str, outcome: &SendOutcome) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        write_outcome(&mut tx, id, outcome).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_sent(
        &self,
        m: &NewMessage,
        outcome: &SendOutcome,
        key: Option<KeyAnswer<'_>>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        insert_sent(&mut tx, m, outcome).await?;
        if let Some(key) = key {
            complete_key(&mut tx, key).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn message(&self, id: &str) -> Result<Option<MessageRecord>, StoreError> {
        self.load_message("id", id).await
    }

    async fn message_by_provider_id(
        &self,
        provider_message_id: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        self.load_message("provider_message_id", provider_message_id)
            .await
    }

    async fn apply_status(
        &self,
        id: &str,
        change: &StatusChange,
        advances: StatusRule,
    ) -> Result<Applied, StoreError> {
        let mut tx = self.begin_write().await?;
        // Returning before commit rolls back: a duplicate or an unknown message writes nothing.
        if !note_dedup_key(&mut tx, &change.dedup_key, change.at_ms).await? {
            return Ok(Applied::Duplicate);
        }
        let current: Option<String> = sqlx::query_scalar(self.dialect.select_status_for_update)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = current else {
            return Err(not_found("message", id));
        };
        let event = StoredEvent {
            status: change.status.clone(),
            at_ms: change.at_ms,
            error: change.error.clone(),
        };
        append_event(&mut tx, id, &event).await?;
        let advanced = advances(&current, &change.status);
        if advanced {
            sqlx::query(
                "UPDATE messages SET status = $2, error = COALESCE($3, error), updated_at = $4 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(&change.status)
            .bind(json_text(change.error.as_ref()))
            .bind(change.at_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Applied::Recorded {
            status: if advanced { event.status } else { current },
            advanced,
        })
    }

    async fn first_sighting(&self, dedup_key: &str, at_ms: i64) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        note_dedup_key(&mut conn, dedup_key, at_ms).await
    }

    async fn claim_key(
        &self,
        client: &str,
        key: &str,
        fingerprint: &str,
        now_ms: i64,
        ttl_ms: i64,
        // Answers keep a table of their own here.
        _message_id: Option<&str>,
    ) -> Result<KeyClaim, StoreError> {
        self.sweep_expired_keys(now_ms, ttl_ms).await?;
        // Each step is one atomic statement, so concurrent claims (from any process) serialize on
        // the row: one insert or one takeover wins, the others read what it wrote.
        for _ in 0..CLAIM_ATTEMPTS {
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (client, idempotency_key, fingerprint, state, \
                 created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (client, idempotency_key) DO NOTHING",
            )
            .bind(client)
            .bind(key)
            .bind(fingerprint)
            .bind(KEY_IN_FLIGHT)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
            if inserted.rows_affected() == 1 {
                return Ok(KeyClaim::Fresh);
            }
            let taken_over = sqlx::query(
                "UPDATE idempotency_keys SET fingerprint = $3, state = $4, created_at = $5, \
                 response_status = NULL, response_body = NULL, retry_after_secs = NULL \
                 WHERE client = $1 AND idempotency_key = $2 AND created_at < $6",
            )
            .bind(client)
            .bind(key)
            .bind(fingerprint)
            .bind(KEY_IN_FLIGHT)
            .bind(now_ms)
            .bind(now_ms.saturating_sub(ttl_ms))
            .execute(&self.pool)
            .await?;
            if taken_over.rows_affected() == 1 {
                return Ok(KeyClaim::Fresh);
            }
            let live = sqlx::query_as::<_, IdempotencyRow>(
                "SELECT fingerprint, state, response_status, response_body, retry_after_secs \
                 FROM idempotency_keys WHERE client = $1 AND idempotency_key = $2",
            )
            .bind(client)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = live {
                return row.claim_for(fingerprint);
            }
        }
        // The key keeps vanishing and reappearing: someone else is working on it right now.
        Ok(KeyClaim::InFlight)
    }

    async fn complete_key(
        &self,
        client: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let answer = KeyAnswer {
            client,
            key,
            response,
            message_id: None,
        };
        match complete_key(&mut conn, answer).await? {
            0 => Err(not_found("idempotency key", key)),
            _ => Ok(()),
        }
    }

    async fn release_key(&self, client: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_keys \
             WHERE client = $1 AND idempotency_key = $2 AND state = $3",
        )
        .bind(client)
        .bind(key)
        .bind(KEY_IN_FLIGHT)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn enqueue(&self, deliveries: &[NewDelivery]) -> Result<(), StoreError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for d in deliveries {
            sqlx::query(
                "INSERT INTO outbox (event_id, event_type, target_url, signer, body, \
                 next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&d.event_id)
            .bind(&d.event_type)
            .bind(&d.target_url)
            .bind(&d.signer)
            .bind(&d.body)
            .bind(d.next_attempt_at_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut rows = sqlx::query_as::<_, DeliveryRow>(self.dialect.claim_due)
            .bind(now_ms)
            .bind(lease_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(Delivery::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING comes in no particular order; ids grow with enqueue time.
        rows.sort_by_key(|d| d.id);
        Ok(rows)
    }

    async fn mark_delivered(&self, id: i64, at_ms: i64) -> Result<(), StoreError> {
        let query = sqlx::query(
            "UPDATE outbox SET state = 'delivered', delivered_at = $2, leased_until = 0 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(at_ms);
        self.update_delivery(id, query).await
    }

    async fn reschedule(
        &self,
        id: i64,
        attempts: u32,
        next_attempt_at_ms: i64,
        last_error: &str,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(
            "UPDATE outbox SET state = 'pending', attempts = $2, next_attempt_at = $3, \
             last_error = $4, leased_until = 0 WHERE id = $1",
        )
        .bind(id)
        .bind(i64::from(attempts))
        .bind(next_attempt_at_ms)
        .bind(last_error);
        self.update_delivery(id, query).await
    }

    async fn give_up(&self, id: i64, attempts: u32, last_error: &str) -> Result<(), StoreError> {
        let query = sqlx::query(
            "UPDATE outbox SET state = 'dead', attempts = $2, last_error = $3, leased_until = 0 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(i64::from(attempts))
        .bind(last_error);
        self.update_delivery(id, query).await
    }

    async fn enqueue_messages(&self, messages: &[NewQueued]) -> Result<(), StoreError> {
        self.q_enqueue(messages).await
    }

    async fn claim_queued(&self, claim: &QueueClaim) -> Result<Claimed, StoreError> {
        self.q_claim(claim).await
    }

    async fn finish_queued(
        &self,
        id: &str,
        owner: &str,
        finish: &QueueFinish,
    ) -> Result<bool, StoreError> {
        self.q_finish(id, owner, finish).await
    }

    async fn renew_leases(&self, owner: &str, until_ms: i64) -> Result<u64, StoreError> {
        self.q_renew(owner, until_ms).await
    }

    async fn take_over_lost(
        &self,
        now_ms: i64,
        owner: &str,
        lease_until_ms: i64,
        limit: u32,
    ) -> Result<Vec<QueuedMessage>, StoreError> {
        self.q_take_over_lost(now_ms, owner, lease_until_ms, limit)
            .await
    }

    async fn expire_queued(
        &self,
        now_ms: i64,
        error: &Value,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.q_expire(now_ms, error, limit).await
    }

    async fn cancel_queued(
        &self,
        id: &str,
        client: &str,
        at_ms: i64,
    ) -> Result<Canceled, StoreError> {
        self.q_cancel(id, client, at_ms).await
    }

    async fn advance_pacing(
        &self,
        sender: &str,
        hand_overs: u32,
        interval_us: i64,
        now_us: i64,
    ) -> Result<(), StoreError> {
        self.q_advance_pacing(sender, hand_overs, interval_us, now_us)
            .await
    }

    async fn push_pacing(&self, sender: &str, not_before_us: i64) -> Result<(), StoreError> {
        self.q_push_pacing(sender, not_before_us).await
    }

    async fn forget_recipient_gaps(&self, before_ms: i64) -> Result<(), StoreError> {
        self.q_forget_gaps(before_ms).await
    }

    async fn queue_stats(&self, now_ms: i64) -> Result<QueueStats, StoreError> {
        self.q_stats(now_ms).await
    }
}

pub(crate) async fn insert_message(
    conn: &mut AnyConnection,
    m: &NewMessage,
) -> Result<(), StoreError> {
    insert_row(conn, m, None).await
}

/// A message with its send's outcome: the same row the writer's batch writes.
async fn insert_sent(
    conn: &mut AnyConnection,
    m: &NewMessage,
    outcome: &SendOutcome,
) -> Result<(), StoreError> {
    insert_row(conn, m, Some(outcome)).await
}

/// The message's row: `queued` (or what `m` says) until an outcome is given; an outcome given
/// is also the first event, kept in the row.
async fn insert_row(
    conn: &mut AnyConnection,
    m: &NewMessage,
    outcome: Option<&SendOutcome>,
) -> Result<(), StoreError> {
    let route =
        serde_json::to_string(&m.route).map_err(|e| StoreError::corrupt("message route", e))?;
    let status = outcome.map_or(&m.status, |o| &o.status);
    sqlx::query(
        "INSERT INTO messages (id, client, recipient, sender, message_type, refs, \
         callback_url, route, status, provider, endpoint, provider_message_id, error, \
         created_at, updated_at, first_event_status, first_event_at, first_event_error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $13)",
    )
    .bind(&m.id)
    .bind(&m.client)
    .bind(&m.to)
    .bind(&m.from)
    .bind(&m.message_type)
    .bind(json_text(m.refs.as_ref()))
    .bind(&m.callback_url)
    .bind(route)
    .bind(status)
    .bind(outcome.and_then(|o| o.provider.as_deref()))
    .bind(outcome.and_then(|o| o.endpoint.as_deref()))
    .bind(outcome.and_then(|o| o.provider_message_id.as_deref()))
    .bind(outcome.and_then(|o| json_text(o.error.as_ref())))
    .bind(m.created_at_ms)
    .bind(outcome.map_or(m.created_at_ms, |o| o.at_ms))
    .bind(outcome.map(|o| o.status.as_str()))
    .bind(outcome.map(|o| o.at_ms))
    .execute(conn)
    .await?;
    Ok(())
}

/// Keeps the answer under its key: how many keys that was (0 or 1).
async fn complete_key(conn: &mut AnyConnection, answer: KeyAnswer<'_>) -> Result<u64, StoreError> {
    let updated = sqlx::query(
        "UPDATE idempotency_keys SET state = $3, response_status = $4, response_body = $5, \
         retry_after_secs = $6 WHERE client = $1 AND idempotency_key = $2",
    )
    .bind(answer.client)
    .bind(answer.key)
    .bind(KEY_DONE)
    .bind(i64::from(answer.response.status))
    .bind(answer.response.body.as_slice())
    .bind(
        answer
            .response
            .retry_after_secs
            .map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
    )
    .execute(&mut *conn)
    .await?;
    Ok(updated.rows_affected())
}

/// The send's outcome and its event; the status only moves while the message is `queued`.
pub(crate) async fn write_outcome(
    conn: &mut AnyConnection,
    id: &str,
    outcome: &SendOutcome,
) -> Result<(), StoreError> {
    let updated = sqlx::query(
        "UPDATE messages SET \
         status = CASE WHEN status = 'queued' THEN $2 ELSE status END, \
         provider = $3, endpoint = $4, provider_message_id = $5, \
         error = COALESCE($6, error), updated_at = $7 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(&outcome.status)
    .bind(&outcome.provider)
    .bind(&outcome.endpoint)
    .bind(&outcome.provider_message_id)
    .bind(json_text(outcome.error.as_ref()))
    .bind(outcome.at_ms)
    .execute(&mut *conn)
    .await?;
    expect_found(updated, "message", id)?;
    let event = StoredEvent {
        status: outcome.status.clone(),
        at_ms: outcome.at_ms,
        error: outcome.error.clone(),
    };
    append_event(conn, id, &event).await
}

/// Records `key` as seen; false if it was seen before.
async fn note_dedup_key(
    conn: &mut AnyConnection,
    key: &str,
    at_ms: i64,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO webhook_dedup (dedup_key, seen_at) VALUES ($1, $2) \
         ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(key)
    .bind(at_ms)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

async fn append_event(
    conn: &mut AnyConnection,
    message_id: &str,
    event: &StoredEvent,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO message_events (message_id, status, occurred_at, error) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(message_id)
    .bind(&event.status)
    .bind(event.at_ms)
    .bind(json_text(event.error.as_ref()))
    .execute(conn)
    .await?;
    Ok(())
}

fn expect_found(
    result: AnyQueryResult,
    what: &'static str,
    id: impl ToString,
) -> Result<(), StoreError> {
    if result.rows_affected() == 0 {
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
