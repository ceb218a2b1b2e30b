//! Events out (docs/webhooks-and-events.md): what a provider webhook reported, normalized, and put in the
//! store's outbox once per target — every subscriber, and the message's `callback_url`. The
//! [`delivery`] worker sends them; nothing here waits for a subscriber.

pub mod delivery;

use crate::clock;
use crate::config::Settings;
use crate::state::AppState;
use serde_json::{json, Value};
use switchboard_store::{MessageRecord, NewDelivery, StoreError};

/// The event types of docs/webhooks-and-events.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    MessageStatus,
    MessageInbound,
    CallConnect,
    CallTerminate,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::MessageStatus => "message.status",
            EventType::MessageInbound => "message.inbound",
            EventType::CallConnect => "call.connect",
            EventType::CallTerminate => "call.terminate",
        }
    }
}

/// One normalized event, before it is addressed.
#[derive(Debug, Clone)]
pub struct Event {
    pub event_type: EventType,
    /// The provider instance whose webhook reported it; none for Switchboard's own steps of a
    /// message no provider has had (canceled, expired).
    pub provider: Option<String>,
    pub occurred_at_ms: i64,
    /// The stored message it concerns, when Switchboard knows it.
    pub message: Option<MessageRecord>,
    pub provider_message_id: Option<String>,
    pub status: Option<&'static str>,
    pub error: Option<Value>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// `inbound` or `call`, with its object.
    pub detail: Option<(&'static str, Value)>,
}

impl Event {
    /// The JSON body every target receives. Every common key is present (null when unknown)
    /// so consumers can rely on one shape.
    pub fn body(&self, event_id: &str) -> Value {
        let message = self.message.as_ref();
        let mut body = json!({
            "event_id": event_id,
            "type": self.event_type.as_str(),
            "occurred_at": clock::rfc3339(self.occurred_at_ms),
            "client": message.map(|m| m.client.clone()),
            "provider": message.and_then(|m| m.provider.clone()).or_else(|| self.provider.clone()),
            "endpoint": message.and_then(|m| m.endpoint.clone()),
            "message_id": message.map(|m| m.id.clone()),
            "provider_message_id": self.provider_message_id.clone()
                .or_else(|| message.and_then(|m| m.provider_message_id.clone())),
            "status": self.status,
            "error": self.error,
            "refs": message.and_then(|m| m.refs.clone()),
            "from": self.from.clone().or_else(|| message.map(|m| m.from.clone())),
            "to": self.to.clone().or_else(|| message.map(|m| m.to.clone())),
        });
        if let (Some((key, value)), Value::Object(map)) = (&self.detail, &mut body) {
            map.insert((*key).to_string(), value.clone());
        }
        body
    }
}

/// The signing secret of a delivery, named (never stored): a subscriber by its URL, or the
/// client whose message carried the `callback_url` — its API token signs what it receives.
pub fn subscriber_signer(url: &str) -> String {
    format!("subscriber:{url}")
}

pub fn client_signer(client: &str) -> String {
    format!("client:{client}")
}

/// Puts the event in the outbox for every subscriber and the message's `callback_url`, then
/// wakes the delivery worker.
pub async fn publish(
    state: &AppState,
    settings: &Settings,
    event: &Event,
) -> Result<(), StoreError> {
    let event_id = ulid::Ulid::new().to_string();
    let body = event.body(&event_id).to_string();
    let now = clock::now_ms();
    let delivery = |target_url: &str, signer: String| NewDelivery {
        event_id: event_id.clone(),
        event_type: event.event_type.as_str().to_string(),
        target_url: target_url.to_string(),
        signer,
        body: body.clone(),
        next_attempt_at_ms: now,
    };
    let mut deliveries: Vec<NewDelivery> = settings
        .webhooks
        .subscribers
        .iter()
        .map(|s| delivery(&s.url, subscriber_signer(&s.url)))
        .collect();
    if let Some(message) = &event.message {
        if let Some(url) = &message.callback_url {
            deliveries.push(delivery(url, client_signer(&message.client)));
        }
    }
    if deliveries.is_empty() {
        return Ok(());
    }
    state.store.enqueue(&deliveries).await?;
    state.outbox_ready.notify_one();
    Ok(())
}
