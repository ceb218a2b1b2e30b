//! From a provider's event to Switchboard's: find the stored message it concerns, record it
//! (a status moves the message forward, never back), drop redeliveries, publish the event.

use crate::clock;
use crate::config::Settings;
use crate::events::{self, Event, EventType};
use crate::state::AppState;
use switchboard_core::event::{
    CallEvent, CallEventKind, InboundMessage, MessageStatus, ProviderEvent, StatusUpdate,
};
use switchboard_store::{Applied, MessageRecord, StatusChange, StoreError};

/// Handles one event; true when it was new and published, false for a redelivery.
pub async fn handle(
    state: &AppState,
    settings: &Settings,
    instance: &str,
    event: ProviderEvent,
) -> Result<bool, StoreError> {
    let dedup_key = format!("{instance}:{}", event.dedup_key());
    let published = match event {
        ProviderEvent::Status(update) => {
            status(state, settings, instance, update, dedup_key).await?
        }
        ProviderEvent::Inbound(inbound) => {
            message_inbound(state, settings, instance, inbound, dedup_key).await?
        }
        ProviderEvent::Call(call) => call_event(state, settings, instance, call, dedup_key).await?,
    };
    Ok(published)
}

async fn status(
    state: &AppState,
    settings: &Settings,
    instance: &str,
    update: StatusUpdate,
    dedup_key: String,
) -> Result<bool, StoreError> {
    let message = find_message(
        state,
        update.message_ref.as_deref(),
        &update.provider_message_ids,
    )
    .await?;
    let at_ms = occurred_ms(update.occurred_at);
    let error = update
        .error
        .as_ref()
        .and_then(|e| serde_json::to_value(e).ok());
    let new = match &message {
        Some(message) => {
            let change = StatusChange {
                status: update.status.as_str().to_string(),
                at_ms,
                error: error.clone(),
                dedup_key,
            };
            let applied = state
                .store
                .apply_status(&message.id, &change, advances)
                .await?;
            matches!(applied, Applied::Recorded { .. })
        }
        // Not a message Switchboard sent (or not yet recorded): still an event for subscribers.
        None => state.store.first_sighting(&dedup_key, at_ms).await?,
    };
    if !new {
        return Ok(false);
    }
    state
        .metrics
        .webhook_event(instance, EventType::MessageStatus.as_str());
    let event = Event {
        event_type: EventType::MessageStatus,
        provider: Some(instance.to_string()),
        occurred_at_ms: at_ms,
        provider_message_id: update.provider_message_ids.first().cloned(),
        status: Some(update.status.as_str()),
        error,
        from: None,
        to: update.recipient.clone(),
        detail: None,
        message,
    };
    events::publish(state, settings, &event).await?;
    Ok(true)
}

async fn message_inbound(
    state: &AppState,
    settings: &Settings,
    instance: &str,
    inbound: InboundMessage,
    dedup_key: String,
) -> Result<bool, StoreError> {
    let at_ms = occurred_ms(inbound.occurred_at);
    if !state.store.first_sighting(&dedup_key, at_ms).await? {
        return Ok(false);
    }
    state
        .metrics
        .webhook_event(instance, EventType::MessageInbound.as_str());
    // A reply to a message Switchboard sent is tied to it (client, refs, callback_url).
    let replied_to = match &inbound.context_id {
        Some(id) => state.store.message_by_provider_id(id).await?,
        None => None,
    };
    let mut detail = inbound.inbound.clone();
    if let (Some(name), Some(object)) = (&inbound.profile_name, detail.as_object_mut()) {
        object
            .entry("profile_name")
            .or_insert_with(|| name.clone().into());
    }
    let event = Event {
        event_type: EventType::MessageInbound,
        provider: Some(instance.to_string()),
        occurred_at_ms: at_ms,
        provider_message_id: Some(inbound.provider_message_id.clone()),
        status: None,
        error: None,
        from: Some(inbound.from.clone()),
        to: inbound.to.clone(),
        detail: Some(("inbound", detail)),
        message: replied_to,
    };
    events::publish(state, settings, &event).await?;
    Ok(true)
}

async fn call_event(
    state: &AppState,
    settings: &Settings,
    instance: &str,
    call: CallEvent,
    dedup_key: String,
) -> Result<bool, StoreError> {
    let at_ms = occurred_ms(call.occurred_at);
    if !state.store.first_sighting(&dedup_key, at_ms).await? {
        return Ok(false);
    }
    let event_type = match call.event {
        CallEventKind::Connect => EventType::CallConnect,
        CallEventKind::Terminate => EventType::CallTerminate,
    };
    state.metrics.webhook_event(instance, event_type.as_str());
    let message = find_message(state, call.message_ref.as_deref(), &[]).await?;
    let event = Event {
        event_type,
        provider: Some(instance.to_string()),
        occurred_at_ms: at_ms,
        provider_message_id: None,
        status: None,
        error: None,
        from: call.from.clone(),
        to: call.to.clone(),
        detail: Some(("call", call.call.clone())),
        message,
    };
    events::publish(state, settings, &event).await?;
    Ok(true)
}

/// The longest a webhook waits for a send in flight to be recorded. A provider reports on a
/// message only once it has taken it, when the send is about to end; this bounds the odd case.
const WAIT_FOR_RECORD: std::time::Duration = std::time::Duration::from_secs(10);

/// By Switchboard's own id when the provider echoed it, else by the provider's ids.
async fn find_message(
    state: &AppState,
    message_ref: Option<&str>,
    provider_ids: &[String],
) -> Result<Option<MessageRecord>, StoreError> {
    if let Some(id) = message_ref {
        if let Some(message) = state.store.message(id).await? {
            return Ok(Some(message));
        }
        // The webhook overtook the provider's answer to a send still in flight here: the
        // message is on record once its send ends (`recording.rs`).
        if state
            .sends_in_flight
            .wait_recorded(id, WAIT_FOR_RECORD)
            .await
        {
            if let Some(message) = state.store.message(id).await? {
                return Ok(Some(message));
            }
        }
    }
    for id in provider_ids {
        if let Some(message) = state.store.message_by_provider_id(id).await? {
            return Ok(Some(message));
        }
    }
    Ok(None)
}

/// The status rule the store applies ("never moves backwards"); unknown names never advance.
fn advances(current: &str, new: &str) -> bool {
    match (MessageStatus::parse(current), MessageStatus::parse(new)) {
        (Some(current), Some(new)) => new.may_follow(current),
        _ => false,
    }
}

fn occurred_ms(unix_secs: Option<i64>) -> i64 {
    unix_secs
        .and_then(|s| s.checked_mul(1000))
        .unwrap_or_else(clock::now_ms)
}
