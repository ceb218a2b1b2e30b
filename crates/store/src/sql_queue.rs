//! The queue (`queue.rs`) on PostgreSQL, shared by replicas. A claim locks the sender's pacing
//! row, so claims for one sender take turns across replicas (each slot goes to one), and takes
//! its message with `FOR UPDATE SKIP LOCKED`, so a message a cancel or another claim holds is
//! passed over rather than waited for. A cancel deletes only a row still `queued`: once a claim
//! has committed `handing_over`, the cancel finds nothing to delete.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::queue::{
    Canceled, Claimed, NewQueued, QueueClaim, QueueFinish, QueueStats, QueuedMessage, Slotted,
};
use crate::sql_store::{write_outcome, SqlStore};
use crate::sqlite_queue::{LANES, PACING_DEBT_MAX_US};
use crate::writes::MessageInsert;
use crate::{SendOutcome, StoreError};

/// Messages per multi-row insert: 11 parameters each, well under PostgreSQL's 65,535.
const ENQUEUE_CHUNK: usize = 1000;

const QUEUED_COLUMNS: &str = "q.message_id, m.client, q.sender, q.recipient, q.body, q.priority, \
     m.created_at, q.expires_at, q.attempts";

fn queued_row(row: &AnyRow) -> Result<QueuedMessage, sqlx::Error> {
    Ok(QueuedMessage {
        id: row.try_get(0)?,
        client: row.try_get(1)?,
        sender: row.try_get(2)?,
        recipient: row.try_get(3)?,
        body: row.try_get(4)?,
        bulk: row.try_get::<i64, _>(5)? != 0,
        created_at_ms: row.try_get(6)?,
        expires_at_ms: row.try_get(7)?,
        attempts: row.try_get::<i64, _>(8)?.try_into().unwrap_or(u32::MAX),
    })
}

impl SqlStore {
    /// Two multi-row statements per [`ENQUEUE_CHUNK`] messages, all in one transaction.
    pub(crate) async fn q_enqueue(&self, messages: &[NewQueued]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for chunk in messages.chunks(ENQUEUE_CHUNK) {
            let rows = chunk
                .iter()
                .map(|q| Ok((MessageInsert::new(&q.message)?, q)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let sql = format!(
                "INSERT INTO messages (id, client, recipient, sender, message_type, refs, \
                 callback_url, route, status, created_at, updated_at) VALUES {}",
                placeholders(rows.len(), 11)
            );
            let mut insert = sqlx::query(&sql);
            for (m, _) in &rows {
                insert = insert
                    .bind(&m.id)
                    .bind(&m.client)
                    .bind(&m.to)
                    .bind(&m.from)
                    .bind(&m.message_type)
                    .bind(&m.refs)
                    .bind(&m.callback_url)
                    .bind(&m.route)
                    .bind(&m.status)
                    .bind(m.created_at_ms)
                    .bind(m.created_at_ms);
            }
            insert.execute(&mut *tx).await?;
            let sql = format!(
                "INSERT INTO queue (message_id, sender, recipient, body, priority, due_at, \
                 expires_at) VALUES {}",
                placeholders(rows.len(), 7)
            );
            let mut queue = sqlx::query(&sql);
            for (m, q) in &rows {
                queue = queue
                    .bind(&m.id)
                    .bind(&m.from)
                    .bind(&m.to)
                    .bind(&q.body)
                    .bind(i64::from(q.bulk))
                    .bind(q.due_at_ms)
                    .bind(q.expires_at_ms);
            }
            queue.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn q_claim(&self, claim: &QueueClaim) -> Result<Claimed, StoreError> {
        let now_ms = claim.now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sender_pacing (sender, next_slot_us) VALUES ($1, 0) \
             ON CONFLICT (sender) DO NOTHING",
        )
        .bind(&claim.sender)
        .execute(&mut *tx)
        .await?;
        // Held until commit: claims for this sender take turns, across replicas.
        let next_slot: i64 = sqlx::query_scalar(
            "SELECT next_slot_us FROM sender_pacing WHERE sender = $1 FOR UPDATE",
        )
        .bind(&claim.sender)
        .fetch_one(&mut *tx)
        .await?;
        let horizon_end = claim.now_us + claim.horizon_us;
        if next_slot > horizon_end {
            return Ok(Claimed::Paced {
                until_us: next_slot,
            });
        }
        let mut slot = next_slot.max(claim.now_us);
        let mut taken = Vec::new();
        while taken.len() < claim.limit as usize && slot <= horizon_end {
            let slot_ms = slot.div_euclid(1000);
            let Some(mut message) = next_message(&mut tx, claim, now_ms, slot_ms).await? else {
                break;
            };
            sqlx::query(
                "UPDATE queue SET state = 'handing_over', owner = $2, leased_until = $3, \
                 attempts = attempts + 1 WHERE message_id = $1",
            )
            .bind(&message.id)
            .bind(&claim.owner)
            .bind(claim.lease_until_ms)
            .execute(&mut *tx)
            .await?;
            message.attempts += 1;
            if claim.recipient_gap_ms > 0 {
                sqlx::query(
                    "INSERT INTO recipient_pacing (sender, recipient, next_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (sender, recipient) DO UPDATE SET next_at = excluded.next_at",
                )
                .bind(&claim.sender)
                .bind(&message.recipient)
                .bind(slot_ms + claim.recipient_gap_ms)
                .execute(&mut *tx)
                .await?;
            }
            taken.push(Slotted {
                message,
                slot_us: slot,
            });
            slot += claim.interval_us;
        }
        if taken.is_empty() {
            let next_due_ms = next_due(&mut tx, &claim.sender, now_ms).await?;
            return Ok(Claimed::Idle { next_due_ms });
        }
        sqlx::query("UPDATE sender_pacing SET next_slot_us = $2 WHERE sender = $1")
            .bind(&claim.sender)
            .bind(slot)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Claimed::Messages(taken))
    }

    pub(crate) async fn q_finish(
        &self,
        id: &str,
        owner: &str,
        finish: &QueueFinish,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let ours: Option<i64> = sqlx::query_scalar(
            "SELECT 1::BIGINT FROM queue WHERE message_id = $1 AND owner = $2 \
             AND state = 'handing_over' FOR UPDATE",
        )
        .bind(id)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        if ours.is_none() {
            return Ok(false);
        }
        match finish {
            QueueFinish::Final(outcome) => {
                sqlx::query("DELETE FROM queue WHERE message_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                write_outcome(&mut tx, id, outcome).await?;
            }
            QueueFinish::Retry { due_at_ms } => {
                sqlx::query(
                    "UPDATE queue SET state = 'queued', owner = NULL, leased_until = 0, \
                     due_at = $2 WHERE message_id = $1",
                )
                .bind(id)
                .bind(due_at_ms)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn q_renew(&self, owner: &str, until_ms: i64) -> Result<u64, StoreError> {
        let renewed = sqlx::query(
            "UPDATE queue SET leased_until = $2 WHERE owner = $1 AND state = 'handing_over'",
        )
        .bind(owner)
        .bind(until_ms)
        .execute(self.pool())
        .await?;
        Ok(renewed.rows_affected())
    }

    pub(crate) async fn q_take_over_lost(
        &self,
        now_ms: i64,
        owner: &str,
        lease_until_ms: i64,
        limit: u32,
    ) -> Result<Vec<QueuedMessage>, StoreError> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(&format!(
            "SELECT {QUEUED_COLUMNS} FROM queue q JOIN messages m ON m.id = q.message_id \
             WHERE q.state = 'handing_over' AND q.leased_until < $1 LIMIT $2 \
             FOR UPDATE OF q SKIP LOCKED"
        ))
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let lost = rows.iter().map(queued_row).collect::<Result<Vec<_>, _>>()?;
        for message in &lost {
            sqlx::query("UPDATE queue SET owner = $2, leased_until = $3 WHERE message_id = $1")
                .bind(&message.id)
                .bind(owner)
                .bind(lease_until_ms)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(lost)
    }

    pub(crate) async fn q_expire(
        &self,
        now_ms: i64,
        error: &Value,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "DELETE FROM queue WHERE message_id IN (SELECT message_id FROM queue \
             WHERE state = 'queued' AND expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING message_id",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let outcome = SendOutcome {
            status: "failed".to_owned(),
            provider: None,
            endpoint: None,
            provider_message_id: None,
            error: Some(error.clone()),
            at_ms: now_ms,
        };
        for id in &ids {
            write_outcome(&mut tx, id, &outcome).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    pub(crate) async fn q_cancel(
        &self,
        id: &str,
        client: &str,
        at_ms: i64,
    ) -> Result<Canceled, StoreError> {
        let mut tx = self.begin_write().await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM messages WHERE id = $1 AND client = $2")
                .bind(id)
                .bind(client)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(status) = status else {
            return Ok(Canceled::NotFound);
        };
        let removed = sqlx::query("DELETE FROM queue WHERE message_id = $1 AND state = 'queued'")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if removed.rows_affected() == 0 {
            return Ok(Canceled::NotCancelable { status });
        }
        sqlx::query("UPDATE messages SET status = 'canceled', updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(at_ms)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO message_events (message_id, status, occurred_at) \
             VALUES ($1, 'canceled', $2)",
        )
        .bind(id)
        .bind(at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        match crate::Store::message(self, id).await? {
            Some(record) => Ok(Canceled::Canceled(Box::new(record))),
            None => Ok(Canceled::NotFound),
        }
    }

    pub(crate) async fn q_advance_pacing(
        &self,
        sender: &str,
        hand_overs: u32,
        interval_us: i64,
        now_us: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sender_pacing (sender, next_slot_us) VALUES ($1, LEAST($2 + $3, $2 + $4)) \
             ON CONFLICT (sender) DO UPDATE SET next_slot_us = \
             LEAST(GREATEST(sender_pacing.next_slot_us, $2) + $3, $2 + $4)",
        )
        .bind(sender)
        .bind(now_us)
        .bind(i64::from(hand_overs).saturating_mul(interval_us))
        .bind(PACING_DEBT_MAX_US)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub(crate) async fn q_push_pacing(
        &self,
        sender: &str,
        not_before_us: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sender_pacing (sender, next_slot_us) VALUES ($1, $2) \
             ON CONFLICT (sender) DO UPDATE SET \
             next_slot_us = GREATEST(sender_pacing.next_slot_us, $2)",
        )
        .bind(sender)
        .bind(not_before_us)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub(crate) async fn q_forget_gaps(&self, before_ms: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM recipient_pacing WHERE next_at < $1")
            .bind(before_ms)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub(crate) async fn q_stats(&self, now_ms: i64) -> Result<QueueStats, StoreError> {
        let rows = sqlx::query(
            "SELECT sender, COUNT(*) FROM queue WHERE state = 'queued' GROUP BY sender",
        )
        .fetch_all(self.pool())
        .await?;
        let queued_by_sender = rows
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get::<i64, _>(1)? as u64)))
            .collect::<Result<_, sqlx::Error>>()?;
        let oldest_due_ms: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(due_at) FROM queue WHERE state = 'queued' AND due_at <= $1",
        )
        .bind(now_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(QueueStats {
            queued_by_sender,
            oldest_due_ms,
        })
    }
}

/// `($1, …, $cols), ($cols+1, …), …` for `rows` rows.
fn placeholders(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// See the SQLite version in `sqlite_queue.rs`. A message another transaction holds (a cancel,
/// another replica's claim) is passed over.
async fn next_message(
    conn: &mut AnyConnection,
    claim: &QueueClaim,
    now_ms: i64,
    slot_ms: i64,
) -> Result<Option<QueuedMessage>, StoreError> {
    let sql = next_message_sql();
    for lane in LANES {
        let row = sqlx::query(&sql)
            .bind(&claim.sender)
            .bind(now_ms)
            .bind(claim.recipient_gap_ms)
            .bind(lane)
            .bind(slot_ms)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = row {
            return Ok(Some(queued_row(&row)?));
        }
    }
    Ok(None)
}

/// A sender's next due message in one lane ($4), for `next_message`: in the order of the index
/// `queue_next` (migration 0005), so that no plan sorts the queue.
fn next_message_sql() -> String {
    format!(
        "SELECT {QUEUED_COLUMNS} FROM queue q JOIN messages m ON m.id = q.message_id \
         WHERE q.sender = $1 AND q.state = 'queued' AND q.priority = $4 AND q.due_at <= $2 \
         AND (q.expires_at IS NULL OR q.expires_at > $5) \
         AND ($3 = 0 OR NOT EXISTS (SELECT 1 FROM recipient_pacing r \
              WHERE r.sender = q.sender AND r.recipient = q.recipient AND r.next_at > $5)) \
         ORDER BY q.due_at, q.message_id LIMIT 1 \
         FOR UPDATE OF q SKIP LOCKED"
    )
}

/// See the SQLite version in `sqlite_queue.rs`.
async fn next_due(
    conn: &mut AnyConnection,
    sender: &str,
    now_ms: i64,
) -> Result<Option<i64>, StoreError> {
    let future: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(due_at) FROM queue WHERE sender = $1 AND state = 'queued' AND due_at > $2",
    )
    .bind(sender)
    .bind(now_ms)
    .fetch_one(&mut *conn)
    .await?;
    let gap_ends: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(r.next_at) FROM recipient_pacing r WHERE r.sender = $1 AND r.next_at > $2 \
         AND EXISTS (SELECT 1 FROM queue q WHERE q.sender = r.sender \
             AND q.recipient = r.recipient AND q.state = 'queued' AND q.due_at <= $2)",
    )
    .bind(sender)
    .bind(now_ms)
    .fetch_one(&mut *conn)
    .await?;
    Ok([future, gap_ends].into_iter().flatten().min())
}

#[cfg(test)]
mod tests {
    use super::next_message_sql;
    use crate::testing::{fresh_postgres_database, POSTGRES_URL_VAR};
    use sqlx::{Connection, PgConnection};

    /// Thousands of due messages in a table never analyzed (the planner's view while a queue
    /// grows fast): the claim's plan, custom or generic, reads the index in order and sorts
    /// nothing. Skipped without a PostgreSQL server.
    #[tokio::test]
    async fn a_claim_reads_the_queue_in_order_without_sorting_it() {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
            return;
        };
        let url = fresh_postgres_database(&admin_url).await.unwrap();
        drop(crate::open(&url).await.unwrap());
        let mut conn = PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "ALTER TABLE queue SET (autovacuum_enabled = false);
             INSERT INTO messages (id, client, recipient, sender, message_type, route, status,
                 created_at, updated_at)
             SELECT 'm' || g, 'c', '+1408555' || g, '+1555', 'text', '[]', 'queued', g, g
             FROM generate_series(1, 20000) g;
             INSERT INTO queue (message_id, sender, recipient, body, priority, due_at)
             SELECT 'm' || g, '+1555', '+1408555' || g, '{}', 1, g / 10
             FROM generate_series(1, 20000) g;",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let prepare = format!(
            "PREPARE next_message(text, bigint, bigint, bigint, bigint) AS {}",
            next_message_sql()
        );
        sqlx::raw_sql(&prepare).execute(&mut conn).await.unwrap();
        for mode in ["force_custom_plan", "force_generic_plan"] {
            let set = format!("SET plan_cache_mode = {mode}");
            sqlx::raw_sql(&set).execute(&mut conn).await.unwrap();
            let plan: Vec<String> =
                sqlx::query_scalar("EXPLAIN EXECUTE next_message('+1555', 5000, 0, 1, 5000)")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            let plan = plan.join("\n");
            assert!(plan.contains("queue_next"), "{mode}:\n{plan}");
            assert!(!plan.contains("Sort"), "{mode}:\n{plan}");
        }
        conn.close().await.unwrap();
        let name = url.rsplit('/').next().unwrap_or_default();
        let mut admin = PgConnection::connect(&admin_url).await.unwrap();
        let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        // FORCE cannot end another role's process, such as an autovacuum worker that has just
        // started on the new tables: try again once it is done.
        for attempt in 1.. {
            match sqlx::raw_sql(&drop).execute(&mut admin).await {
                Ok(_) => break,
                Err(e) if attempt < 10 => {
                    eprintln!("DROP DATABASE {name} failed ({e}); trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(e) => panic!("DROP DATABASE {name}: {e}"),
            }
        }
    }
}
