//! The queue (`queue.rs`) on SQLite: every operation runs on the writer's connection, inside
//! the batch's transaction, so each sees and changes the queue atomically (the writer is the
//! only one writing the file).

use rusqlite::{params, Connection, OptionalExtension};

use crate::queue::{
    Canceled, Claimed, NewQueued, QueueClaim, QueueFinish, QueueStats, QueuedMessage, Slotted,
};
use crate::writes::{MessageInsert, OutcomeUpdate};
use crate::StoreError;

/// The lanes (`queue.priority`) in the order they are served: normal, then bulk.
pub(crate) const LANES: [i64; 2] = [0, 1];

/// Most a burst of synchronous sends may push a sender's next slot past now.
pub(crate) const PACING_DEBT_MAX_US: i64 = 1_000_000;

pub(crate) enum QueueOp {
    Enqueue(Vec<(MessageInsert, NewQueued)>),
    Claim(QueueClaim),
    Finish {
        id: String,
        owner: String,
        finish: Finish,
    },
    Renew {
        owner: String,
        until_ms: i64,
    },
    TakeOverLost {
        now_ms: i64,
        owner: String,
        lease_until_ms: i64,
        limit: u32,
    },
    Expire {
        now_ms: i64,
        error: String,
        limit: u32,
    },
    Cancel {
        id: String,
        client: String,
        at_ms: i64,
    },
    PushPacing {
        sender: String,
        not_before_us: i64,
    },
    AdvancePacing {
        sender: String,
        hand_overs: u32,
        interval_us: i64,
        now_us: i64,
    },
    ForgetGaps {
        before_ms: i64,
    },
}

/// [`QueueFinish`] with its JSON already text.
pub(crate) enum Finish {
    Final(OutcomeUpdate),
    Retry { due_at_ms: i64 },
}

impl Finish {
    pub(crate) fn new(id: &str, finish: &QueueFinish) -> Self {
        match finish {
            QueueFinish::Final(outcome) => Finish::Final(OutcomeUpdate::new(id, outcome)),
            QueueFinish::Retry { due_at_ms } => Finish::Retry {
                due_at_ms: *due_at_ms,
            },
        }
    }
}

#[derive(Debug)]
pub(crate) enum QueueDone {
    Unit,
    Claimed(Claimed),
    Finished(bool),
    Count(u64),
    Messages(Vec<QueuedMessage>),
    Ids(Vec<String>),
    /// The message is loaded by the caller after the commit.
    Canceled(CancelDone),
    Stats(QueueStats),
}

#[derive(Debug)]
pub(crate) enum CancelDone {
    Canceled,
    NotCancelable { status: String },
    NotFound,
}

impl CancelDone {
    pub(crate) fn with_record(
        self,
        record: Option<crate::MessageRecord>,
    ) -> Result<Canceled, StoreError> {
        Ok(match self {
            CancelDone::Canceled => {
                Canceled::Canceled(Box::new(record.ok_or_else(|| StoreError::NotFound {
                    what: "message",
                    id: "canceled message".to_owned(),
                })?))
            }
            CancelDone::NotCancelable { status } => Canceled::NotCancelable { status },
            CancelDone::NotFound => Canceled::NotFound,
        })
    }
}

const QUEUED_COLUMNS: &str = "q.message_id, m.client, q.sender, q.recipient, q.body, q.priority, \
     m.created_at, q.expires_at, q.attempts";

fn queued_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<QueuedMessage> {
    Ok(QueuedMessage {
        id: row.get(0)?,
        client: row.get(1)?,
        sender: row.get(2)?,
        recipient: row.get(3)?,
        body: row.get(4)?,
        bulk: row.get::<_, i64>(5)? != 0,
        created_at_ms: row.get(6)?,
        expires_at_ms: row.get(7)?,
        attempts: row.get::<_, i64>(8)?.try_into().unwrap_or(u32::MAX),
    })
}

/// Runs one queue operation on the writer's connection (inside its transaction).
pub(crate) fn apply(
    conn: &Connection,
    op: &QueueOp,
    insert_message: impl Fn(&Connection, &MessageInsert) -> Result<(), StoreError>,
    record_outcome: impl Fn(&Connection, &OutcomeUpdate) -> Result<(), StoreError>,
) -> Result<QueueDone, StoreError> {
    match op {
        QueueOp::Enqueue(items) => {
            for (message, queued) in items {
                insert_message(conn, message)?;
                conn.prepare_cached(
                    "INSERT INTO queue (message_id, sender, recipient, body, priority, due_at, \
                     expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    message.id,
                    message.from,
                    message.to,
                    queued.body,
                    i64::from(queued.bulk),
                    queued.due_at_ms,
                    queued.expires_at_ms
                ])?;
            }
            Ok(QueueDone::Unit)
        }
        QueueOp::Claim(claim) => claim_next(conn, claim).map(QueueDone::Claimed),
        QueueOp::Finish { id, owner, finish } => {
            let ours: Option<i64> = conn
                .prepare_cached(
                    "SELECT 1 FROM queue WHERE message_id = ?1 AND owner = ?2 \
                     AND state = 'handing_over'",
                )?
                .query_row(params![id, owner], |row| row.get(0))
                .optional()?;
            if ours.is_none() {
                return Ok(QueueDone::Finished(false));
            }
            match finish {
                Finish::Final(outcome) => {
                    conn.prepare_cached("DELETE FROM queue WHERE message_id = ?1")?
                        .execute([id])?;
                    record_outcome(conn, outcome)?;
                }
                Finish::Retry { due_at_ms } => {
                    conn.prepare_cached(
                        "UPDATE queue SET state = 'queued', owner = NULL, leased_until = 0, \
                         due_at = ?2 WHERE message_id = ?1",
                    )?
                    .execute(params![id, due_at_ms])?;
                }
            }
            Ok(QueueDone::Finished(true))
        }
        QueueOp::Renew { owner, until_ms } => {
            let renewed = conn
                .prepare_cached(
                    "UPDATE queue SET leased_until = ?2 \
                     WHERE owner = ?1 AND state = 'handing_over'",
                )?
                .execute(params![owner, until_ms])?;
            Ok(QueueDone::Count(renewed as u64))
        }
        QueueOp::TakeOverLost {
            now_ms,
            owner,
            lease_until_ms,
            limit,
        } => {
            let lost: Vec<QueuedMessage> = conn
                .prepare_cached(&format!(
                    "SELECT {QUEUED_COLUMNS} FROM queue q JOIN messages m ON m.id = q.message_id \
                     WHERE q.state = 'handing_over' AND q.leased_until < ?1 LIMIT ?2"
                ))?
                .query_map(params![now_ms, limit], queued_row)?
                .collect::<Result<_, _>>()?;
            for message in &lost {
                conn.prepare_cached(
                    "UPDATE queue SET owner = ?2, leased_until = ?3 WHERE message_id = ?1",
                )?
                .execute(params![message.id, owner, lease_until_ms])?;
            }
            Ok(QueueDone::Messages(lost))
        }
        QueueOp::Expire {
            now_ms,
            error,
            limit,
        } => {
            let ids: Vec<String> = conn
                .prepare_cached(
                    "SELECT message_id FROM queue WHERE state = 'queued' \
                     AND expires_at <= ?1 LIMIT ?2",
                )?
                .query_map(params![now_ms, limit], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            for id in &ids {
                conn.prepare_cached("DELETE FROM queue WHERE message_id = ?1")?
                    .execute([id])?;
                record_outcome(
                    conn,
                    &OutcomeUpdate {
                        id: id.clone(),
                        status: "failed".to_owned(),
                        provider: None,
                        endpoint: None,
                        provider_message_id: None,
                        error: Some(error.clone()),
                        at_ms: *now_ms,
                    },
                )?;
            }
            Ok(QueueDone::Ids(ids))
        }
        QueueOp::Cancel { id, client, at_ms } => {
            let status: Option<String> = conn
                .prepare_cached("SELECT status FROM messages WHERE id = ?1 AND client = ?2")?
                .query_row(params![id, client], |row| row.get(0))
                .optional()?;
            let Some(status) = status else {
                return Ok(QueueDone::Canceled(CancelDone::NotFound));
            };
            let removed = conn
                .prepare_cached("DELETE FROM queue WHERE message_id = ?1 AND state = 'queued'")?
                .execute([id])?;
            if removed == 0 {
                return Ok(QueueDone::Canceled(CancelDone::NotCancelable { status }));
            }
            conn.prepare_cached(
                "UPDATE messages SET status = 'canceled', updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![id, at_ms])?;
            conn.prepare_cached(
                "INSERT INTO message_events (message_id, status, occurred_at) \
                 VALUES (?1, 'canceled', ?2)",
            )?
            .execute(params![id, at_ms])?;
            Ok(QueueDone::Canceled(CancelDone::Canceled))
        }
        QueueOp::AdvancePacing {
            sender,
            hand_overs,
            interval_us,
            now_us,
        } => {
            conn.prepare_cached(
                "INSERT INTO sender_pacing (sender, next_slot_us) VALUES (?1, MIN(?2 + ?3, ?2 + ?4)) \
                 ON CONFLICT (sender) DO UPDATE SET next_slot_us = \
                 MIN(MAX(next_slot_us, ?2) + ?3, ?2 + ?4)",
            )?
            .execute(params![
                sender,
                now_us,
                i64::from(*hand_overs).saturating_mul(*interval_us),
                PACING_DEBT_MAX_US
            ])?;
            Ok(QueueDone::Unit)
        }
        QueueOp::PushPacing {
            sender,
            not_before_us,
        } => {
            conn.prepare_cached(
                "INSERT INTO sender_pacing (sender, next_slot_us) VALUES (?1, ?2) \
                 ON CONFLICT (sender) DO UPDATE SET next_slot_us = MAX(next_slot_us, ?2)",
            )?
            .execute(params![sender, not_before_us])?;
            Ok(QueueDone::Unit)
        }
        QueueOp::ForgetGaps { before_ms } => {
            conn.prepare_cached("DELETE FROM recipient_pacing WHERE next_at < ?1")?
                .execute([before_ms])?;
            Ok(QueueDone::Unit)
        }
    }
}

/// The queue as metrics show it (a read: on a file database it runs beside the writer).
pub(crate) fn stats(conn: &Connection, now_ms: i64) -> Result<QueueStats, StoreError> {
    let queued_by_sender = conn
        .prepare_cached(
            "SELECT sender, COUNT(*) FROM queue WHERE state = 'queued' GROUP BY sender",
        )?
        .query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?
        .collect::<Result<_, _>>()?;
    let oldest_due_ms = conn
        .prepare_cached("SELECT MIN(due_at) FROM queue WHERE state = 'queued' AND due_at <= ?1")?
        .query_row([now_ms], |row| row.get(0))?;
    Ok(QueueStats {
        queued_by_sender,
        oldest_due_ms,
    })
}

/// See [`crate::Store::claim_queued`]. The writer holds the database's write lock for the
/// whole transaction, so nothing changes between these statements.
fn claim_next(conn: &Connection, claim: &QueueClaim) -> Result<Claimed, StoreError> {
    let now_ms = claim.now_ms();
    let next_slot: Option<i64> = conn
        .prepare_cached("SELECT next_slot_us FROM sender_pacing WHERE sender = ?1")?
        .query_row([&claim.sender], |row| row.get(0))
        .optional()?;
    let horizon_end = claim.now_us + claim.horizon_us;
    if let Some(until_us) = next_slot.filter(|slot| *slot > horizon_end) {
        return Ok(Claimed::Paced { until_us });
    }
    let mut slot = next_slot.unwrap_or(claim.now_us).max(claim.now_us);
    let mut taken = Vec::new();
    while taken.len() < claim.limit as usize && slot <= horizon_end {
        let Some(mut message) = next_message(conn, claim, now_ms, slot.div_euclid(1000))? else {
            break;
        };
        conn.prepare_cached(
            "UPDATE queue SET state = 'handing_over', owner = ?2, leased_until = ?3, \
             attempts = attempts + 1 WHERE message_id = ?1",
        )?
        .execute(params![message.id, claim.owner, claim.lease_until_ms])?;
        message.attempts += 1;
        if claim.recipient_gap_ms > 0 {
            conn.prepare_cached(
                "INSERT INTO recipient_pacing (sender, recipient, next_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (sender, recipient) DO UPDATE SET next_at = excluded.next_at",
            )?
            .execute(params![
                claim.sender,
                message.recipient,
                slot.div_euclid(1000) + claim.recipient_gap_ms
            ])?;
        }
        taken.push(Slotted {
            message,
            slot_us: slot,
        });
        slot += claim.interval_us;
    }
    if taken.is_empty() {
        return Ok(Claimed::Idle {
            next_due_ms: next_due(conn, &claim.sender, now_ms)?,
        });
    }
    conn.prepare_cached(
        "INSERT INTO sender_pacing (sender, next_slot_us) VALUES (?1, ?2) \
         ON CONFLICT (sender) DO UPDATE SET next_slot_us = excluded.next_slot_us",
    )?
    .execute(params![claim.sender, slot])?;
    Ok(Claimed::Messages(taken))
}

/// The message to hand over at `slot_ms`: due by now, not expired by its slot, its recipient's
/// gap over by then. One lane after the other, so each lookup is an index range (sender, state,
/// lane, due_at).
fn next_message(
    conn: &Connection,
    claim: &QueueClaim,
    now_ms: i64,
    slot_ms: i64,
) -> Result<Option<QueuedMessage>, StoreError> {
    for lane in LANES {
        let message = conn
            .prepare_cached(&format!(
                "SELECT {QUEUED_COLUMNS} FROM queue q JOIN messages m ON m.id = q.message_id \
                 WHERE q.sender = ?1 AND q.state = 'queued' AND q.priority = ?4 AND q.due_at <= ?2 \
                 AND (q.expires_at IS NULL OR q.expires_at > ?5) \
                 AND (?3 = 0 OR NOT EXISTS (SELECT 1 FROM recipient_pacing r \
                      WHERE r.sender = q.sender AND r.recipient = q.recipient AND r.next_at > ?5)) \
                 ORDER BY q.due_at, q.message_id LIMIT 1"
            ))?
            .query_row(
                params![claim.sender, now_ms, claim.recipient_gap_ms, lane, slot_ms],
                queued_row,
            )
            .optional()?;
        if message.is_some() {
            return Ok(message);
        }
    }
    Ok(None)
}

/// When something of `sender` may next be claimable: its earliest future due time, or the end
/// of the earliest recipient gap that holds a due message back.
fn next_due(conn: &Connection, sender: &str, now_ms: i64) -> Result<Option<i64>, StoreError> {
    let future: Option<i64> = conn
        .prepare_cached(
            "SELECT MIN(due_at) FROM queue WHERE sender = ?1 AND state = 'queued' AND due_at > ?2",
        )?
        .query_row(params![sender, now_ms], |row| row.get(0))?;
    let gap_ends: Option<i64> = conn
        .prepare_cached(
            "SELECT MIN(r.next_at) FROM recipient_pacing r WHERE r.sender = ?1 AND r.next_at > ?2 \
             AND EXISTS (SELECT 1 FROM queue q WHERE q.sender = r.sender \
                 AND q.recipient = r.recipient AND q.state = 'queued' AND q.due_at <= ?2)",
        )?
        .query_row(params![sender, now_ms], |row| row.get(0))?;
    Ok([future, gap_ends].into_iter().flatten().min())
}
