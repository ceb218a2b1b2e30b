//! Writes as the writer takes them: owned, with JSON already turned into text by the caller, so
//! that the writer (one per store, the point every write passes through) does nothing else
//! than write.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::rows::json_text;
use crate::{KeyAnswer, NewMessage, SendOutcome, StoreError, StoredResponse};

pub(crate) struct MessageInsert {
    pub(crate) id: String,
    pub(crate) client: String,
    pub(crate) to: String,
    pub(crate) from: String,
    pub(crate) message_type: String,
    pub(crate) refs: Option<String>,
    pub(crate) callback_url: Option<String>,
    pub(crate) route: String,
    pub(crate) status: String,
    pub(crate) created_at_ms: i64,
}

impl MessageInsert {
    pub(crate) fn new(m: &NewMessage) -> Result<Self, StoreError> {
        Ok(MessageInsert {
            id: m.id.clone(),
            client: m.client.clone(),
            to: m.to.clone(),
            from: m.from.clone(),
            message_type: m.message_type.clone(),
            refs: json_text(m.refs.as_ref()),
            callback_url: m.callback_url.clone(),
            route: serde_json::to_string(&m.route)
                .map_err(|e| StoreError::corrupt("message route", e))?,
            status: m.status.clone(),
            created_at_ms: m.created_at_ms,
        })
    }
}

pub(crate) struct OutcomeUpdate {
    pub(crate) id: String,
    pub(crate) status: String,
    pub(crate) provider: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) provider_message_id: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) at_ms: i64,
}

impl OutcomeUpdate {
    pub(crate) fn new(id: &str, outcome: &SendOutcome) -> Self {
        OutcomeUpdate {
            id: id.to_owned(),
            status: outcome.status.clone(),
            provider: outcome.provider.clone(),
            endpoint: outcome.endpoint.clone(),
            provider_message_id: outcome.provider_message_id.clone(),
            error: json_text(outcome.error.as_ref()),
            at_ms: outcome.at_ms,
        }
    }
}

pub(crate) struct KeyCompletion {
    pub(crate) client: String,
    pub(crate) key: String,
    pub(crate) status: i64,
    pub(crate) body: Vec<u8>,
    pub(crate) retry_after_secs: Option<i64>,
    /// The key was claimed for the message recorded with this answer: the answer may be kept
    /// in that message's row.
    pub(crate) for_record: bool,
}

impl KeyCompletion {
    /// `answer`, written with the record of message `message_id`.
    pub(crate) fn with_record(answer: KeyAnswer<'_>, message_id: &str) -> Self {
        KeyCompletion {
            for_record: answer.message_id == Some(message_id),
            ..KeyCompletion::new(answer.client, answer.key, answer.response)
        }
    }

    pub(crate) fn new(client: &str, key: &str, response: &StoredResponse) -> Self {
        KeyCompletion {
            client: client.to_owned(),
            key: key.to_owned(),
            status: i64::from(response.status),
            body: response.body.clone(),
            retry_after_secs: response
                .retry_after_secs
                .map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
            for_record: false,
        }
    }
}

/// Expired idempotency keys are deleted at most this often (per process).
const KEY_SWEEP_INTERVAL_MS: i64 = 60_000;

/// When this process last deleted expired idempotency keys.
pub(crate) struct KeySweep {
    last_ms: AtomicI64,
}

impl KeySweep {
    pub(crate) fn new() -> Self {
        KeySweep {
            last_ms: AtomicI64::new(i64::MIN),
        }
    }

    /// True (for one caller) when the last sweep is at least [`KEY_SWEEP_INTERVAL_MS`] ago.
    pub(crate) fn due(&self, now_ms: i64) -> bool {
        let last = self.last_ms.load(Ordering::Relaxed);
        now_ms.saturating_sub(last) >= KEY_SWEEP_INTERVAL_MS
            && self
                .last_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}
