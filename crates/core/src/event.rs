//! What provider webhooks report, in provider-neutral terms (docs/webhooks-and-events.md): the adapters parse
//! their providers' bodies into these values, and the server correlates them to stored messages.

use crate::error::{ErrorCode, ProviderWords};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// A message's status as Switchboard reports it (docs/api.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Queued,
    Accepted,
    Sent,
    Delivered,
    Read,
    Failed,
    /// Taken back by its caller while queued; final.
    Canceled,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 7] = [
        MessageStatus::Queued,
        MessageStatus::Accepted,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Read,
        MessageStatus::Failed,
        MessageStatus::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Accepted => "accepted",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
            MessageStatus::Canceled => "canceled",
        }
    }

    /// The status named by its snake_case name, exactly as [`MessageStatus::as_str`] writes it.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// The status a provider's webhook word names: `sent`, `delivered`, `read` or `failed`, in
    /// any case. Anything else is `None`, `queued` and `accepted` included: those are
    /// Switchboard's own steps, which no webhook reports.
    pub fn from_provider_word(word: &str) -> Option<Self> {
        Self::parse(&word.to_ascii_lowercase()).filter(|status| {
            matches!(
                status,
                MessageStatus::Sent
                    | MessageStatus::Delivered
                    | MessageStatus::Read
                    | MessageStatus::Failed
            )
        })
    }

    /// Whether a message whose status is `current` may move to `self` ("status never moves
    /// backwards"): queued < accepted < sent < delivered < read; `failed` may follow queued,
    /// accepted or sent only (a delivered message did not fail); `canceled` follows `queued`
    /// only; nothing follows `failed` or `canceled`, and the same status never advances.
    pub fn may_follow(self, current: MessageStatus) -> bool {
        use MessageStatus::*;
        match (current, self) {
            (Failed | Canceled, _) => false,
            (Queued, Canceled) => true,
            (_, Canceled) => false,
            (Queued | Accepted | Sent, Failed) => true,
            (Delivered | Read, Failed) => false,
            // The declaration order is the order of progress.
            _ => self as u8 > current as u8,
        }
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a provider webhook reported, before Switchboard correlates it to a stored message.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderEvent {
    Status(StatusUpdate),
    Inbound(InboundMessage),
    Call(CallEvent),
}

impl ProviderEvent {
    /// Stable key for dropping redelivered webhooks: status → `status:{first provider id}:{status}`
    /// (Switchboard's own id when the provider gave none, as the generic API does), inbound →
    /// `inbound:{provider message id}`, call → `call:{call id}:{connect|terminate}`.
    pub fn dedup_key(&self) -> String {
        match self {
            ProviderEvent::Status(update) => {
                let id = update
                    .provider_message_ids
                    .first()
                    .or(update.message_ref.as_ref())
                    .map_or("", String::as_str);
                format!("status:{id}:{}", update.status)
            }
            ProviderEvent::Inbound(message) => format!("inbound:{}", message.provider_message_id),
            ProviderEvent::Call(call) => format!("call:{}:{}", call.call_id, call.event),
        }
    }
}

/// A provider's word on how far an outbound message got.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// Provider message ids that may identify the message, best first (Meta: the wamid;
    /// Kaleyra: top-level `message_id`, `extra_info.message_id`, `statuses[].id`, deduplicated).
    pub provider_message_ids: Vec<String>,
    /// Switchboard's own message id when the provider echoes it (Meta
    /// `biz_opaque_callback_data`, generic `externalId`).
    pub message_ref: Option<String>,
    /// Only `Sent`, `Delivered`, `Read` and `Failed` come from webhooks.
    pub status: MessageStatus,
    /// Unix seconds.
    pub occurred_at: Option<i64>,
    /// `+<digits>` (a group id stays as the provider wrote it).
    pub recipient: Option<String>,
    /// Set for `Failed` only.
    pub error: Option<EventError>,
}

/// The error of a failed status, in the same shape as an attempt error (docs/errors.md): the
/// unified code beside the provider's own words, carried verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(flatten)]
    pub words: ProviderWords,
}

impl EventError {
    /// An error with the code's default message and no provider words.
    pub fn new(code: ErrorCode) -> Self {
        EventError {
            code,
            message: code.default_message().to_string(),
            words: ProviderWords::default(),
        }
    }
}

/// A message a WhatsApp user sent to a business number.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    pub provider_message_id: String,
    /// The user, `+<digits>`.
    pub from: String,
    /// The business number, `+<digits>` (Meta `metadata.display_phone_number`).
    pub to: Option<String>,
    /// Unix seconds.
    pub occurred_at: Option<i64>,
    /// Provider id of the message this one replies to (`context.id`, Kaleyra `reply_to`).
    pub context_id: Option<String>,
    /// the `inbound` object of docs/webhooks-and-events.md, ready to serialize: `{type, text?, reply?{id,title},
    /// button?{payload,text}, …}`; media and other types keep the provider's object under
    /// their type name.
    pub inbound: Value,
    /// The user's WhatsApp profile name (`contacts[].profile.name`).
    pub profile_name: Option<String>,
}

/// A WhatsApp call starting or ending.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEvent {
    pub call_id: String,
    pub event: CallEventKind,
    /// `+<digits>`.
    pub from: Option<String>,
    /// `+<digits>`.
    pub to: Option<String>,
    /// Unix seconds.
    pub occurred_at: Option<i64>,
    /// the `call` object of docs/webhooks-and-events.md: `{id, direction, cta_payload?, deeplink_payload?, status?,
    /// duration_secs?}`, values as the provider sent them.
    pub call: Value,
    /// Switchboard's id when the provider echoes `biz_opaque_callback_data`.
    pub message_ref: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEventKind {
    Connect,
    Terminate,
}

impl CallEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallEventKind::Connect => "connect",
            CallEventKind::Terminate => "terminate",
        }
    }

    /// The kind named by its snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        [CallEventKind::Connect, CallEventKind::Terminate]
            .into_iter()
            .find(|kind| kind.as_str() == s)
    }
}

impl fmt::Display for CallEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body is not something this provider sends (not JSON, or not its envelope); the server
/// answers 400. A body in the right envelope is never this, whatever parts of it are ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed webhook: {0}")]
pub struct MalformedWebhook(pub String);

/// A non-empty string at `key`, or a number there written out (relays sometimes turn ids and
/// phone numbers into numbers).
pub fn text_field(object: &Value, key: &str) -> Option<String> {
    match object.get(key)? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Whole seconds from a JSON number or a string of digits, as providers send unix timestamps
/// and durations.
pub fn whole_seconds(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
