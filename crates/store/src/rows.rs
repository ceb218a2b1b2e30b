//! Rows as the database returns them, and their conversion to the public types. JSON is kept as
//! text so that both dialects read and write it the same way.

use serde_json::Value;

use crate::{Delivery, KeyClaim, MessageRecord, StoreError, StoredEvent, StoredResponse};

/// Column list matching [`MessageRow`].
pub(crate) const MESSAGE_COLUMNS: &str = "id, client, recipient, sender, message_type, refs, \
     callback_url, route, provider, endpoint, provider_message_id, status, error, created_at, \
     updated_at, first_event_status, first_event_at, first_event_error";

#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    id: String,
    client: String,
    recipient: String,
    sender: String,
    message_type: String,
    refs: Option<String>,
    callback_url: Option<String>,
    route: String,
    provider: Option<String>,
    endpoint: Option<String>,
    provider_message_id: Option<String>,
    status: String,
    error: Option<String>,
    created_at: i64,
    updated_at: i64,
    // A message recorded with its send's outcome keeps that first event in its row; its other
    // events are rows of `message_events`.
    first_event_status: Option<String>,
    first_event_at: Option<i64>,
    first_event_error: Option<String>,
}

impl MessageRow {
    /// A row of `SELECT {MESSAGE_COLUMNS}` read by SQLite.
    pub(crate) fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(MessageRow {
            id: row.get(0)?,
            client: row.get(1)?,
            recipient: row.get(2)?,
            sender: row.get(3)?,
            message_type: row.get(4)?,
            refs: row.get(5)?,
            callback_url: row.get(6)?,
            route: row.get(7)?,
            provider: row.get(8)?,
            endpoint: row.get(9)?,
            provider_message_id: row.get(10)?,
            status: row.get(11)?,
            error: row.get(12)?,
            created_at: row.get(13)?,
            updated_at: row.get(14)?,
            first_event_status: row.get(15)?,
            first_event_at: row.get(16)?,
            first_event_error: row.get(17)?,
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The record, with `later_events` (from `message_events`, in order) after the first event
    /// kept in the row.
    pub(crate) fn into_record(
        self,
        later_events: Vec<StoredEvent>,
    ) -> Result<MessageRecord, StoreError> {
        let events = match (self.first_event_status, self.first_event_at) {
            (Some(status), Some(at_ms)) => {
                let first = StoredEvent {
                    status,
                    at_ms,
                    error: parse_optional_json(self.first_event_error)?,
                };
                std::iter::once(first).chain(later_events).collect()
            }
            (None, None) => later_events,
            _ => {
                return Err(StoreError::corrupt(
                    "message's first event",
                    "a status without a time or a time without a status",
                ))
            }
        };
        Ok(MessageRecord {
            refs: parse_optional_json(self.refs)?,
            route: serde_json::from_str(&self.route)
                .map_err(|e| StoreError::corrupt("message route", e))?,
            error: parse_optional_json(self.error)?,
            id: self.id,
            client: self.client,
            to: self.recipient,
            from: self.sender,
            message_type: self.message_type,
            callback_url: self.callback_url,
            provider: self.provider,
            endpoint: self.endpoint,
            provider_message_id: self.provider_message_id,
            status: self.status,
            created_at_ms: self.created_at,
            updated_at_ms: self.updated_at,
            events,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    status: String,
    occurred_at: i64,
    error: Option<String>,
}

impl EventRow {
    /// A row of `SELECT status, occurred_at, error` read by SQLite.
    pub(crate) fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(EventRow {
            status: row.get(0)?,
            occurred_at: row.get(1)?,
            error: row.get(2)?,
        })
    }
}

impl TryFrom<EventRow> for StoredEvent {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<Self, StoreError> {
        Ok(StoredEvent {
            error: parse_optional_json(row.error)?,
            status: row.status,
            at_ms: row.occurred_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct IdempotencyRow {
    fingerprint: String,
    state: String,
    response_status: Option<i64>,
    response_body: Option<Vec<u8>>,
    retry_after_secs: Option<i64>,
}

impl IdempotencyRow {
    /// A row of `SELECT fingerprint, state, response_status, response_body, retry_after_secs`
    /// read by SQLite.
    pub(crate) fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(IdempotencyRow {
            fingerprint: row.get(0)?,
            state: row.get(1)?,
            response_status: row.get(2)?,
            response_body: row.get(3)?,
            retry_after_secs: row.get(4)?,
        })
    }

    /// What a claim with `fingerprint` gets from this live (not expired) row.
    pub(crate) fn claim_for(self, fingerprint: &str) -> Result<KeyClaim, StoreError> {
        if self.fingerprint != fingerprint {
            return Ok(KeyClaim::BodyMismatch);
        }
        if self.state != KEY_DONE {
            return Ok(KeyClaim::InFlight);
        }
        let (Some(status), Some(body)) = (self.response_status, self.response_body) else {
            return Err(StoreError::corrupt(
                "idempotent response",
                "done without a response",
            ));
        };
        Ok(KeyClaim::Replay(StoredResponse {
            status: u16::try_from(status)
                .map_err(|e| StoreError::corrupt("idempotent response status", e))?,
            body,
            retry_after_secs: self
                .retry_after_secs
                .map(u64::try_from)
                .transpose()
                .map_err(|e| StoreError::corrupt("idempotent response retry-after", e))?,
        }))
    }
}

/// Idempotency key states.
pub(crate) const KEY_IN_FLIGHT: &str = "in_flight";
pub(crate) const KEY_DONE: &str = "done";

#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    id: i64,
    event_id: String,
    event_type: String,
    target_url: String,
    signer: String,
    body: String,
    attempts: i64,
}

impl DeliveryRow {
    /// A row of `RETURNING id, event_id, event_type, target_url, signer, body, attempts` read by
    /// SQLite.
    pub(crate) fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(DeliveryRow {
            id: row.get(0)?,
            event_id: row.get(1)?,
            event_type: row.get(2)?,
            target_url: row.get(3)?,
            signer: row.get(4)?,
            body: row.get(5)?,
            attempts: row.get(6)?,
        })
    }
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;

    fn try_from(row: DeliveryRow) -> Result<Self, StoreError> {
        Ok(Delivery {
            attempts: u32::try_from(row.attempts)
                .map_err(|e| StoreError::corrupt("delivery attempts", e))?,
            id: row.id,
            event_id: row.event_id,
            event_type: row.event_type,
            target_url: row.target_url,
            signer: row.signer,
            body: row.body,
        })
    }
}

pub(crate) fn json_text(value: Option<&Value>) -> Option<String> {
    value.map(Value::to_string)
}

fn parse_optional_json(text: Option<String>) -> Result<Option<Value>, StoreError> {
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| StoreError::corrupt("JSON column", e))
}
