//! Kaleyra v2 callbacks (docs/webhooks-and-events.md): `{"meta_object": {"value": {…}, "field"}, "extra_info":
//! {…}, "status"?, "message_id"?}`. The `value` is Meta's, so Meta's parser reads it; this module
//! adds what Kaleyra puts around it: its status words, the ids to correlate on, `reply_to` and
//! `media_url`. Proof (a shared token header) is the server's business.

use serde_json::Value;
use switchboard_core::event::text_field;
use switchboard_core::{
    ErrorCode, EventError, InboundMessage, MalformedWebhook, MessageStatus, ProviderEvent,
    StatusUpdate,
};
use switchboard_meta::webhook::parse_value_with;

/// Kaleyra's status words (any case): Meta's, plus `NOT-SENT`, a failure before Meta had it.
pub fn kaleyra_status(word: &str) -> Option<MessageStatus> {
    if word.eq_ignore_ascii_case("not-sent") || word.eq_ignore_ascii_case("not_sent") {
        return Some(MessageStatus::Failed);
    }
    MessageStatus::from_provider_word(word)
}

/// Every event in a Kaleyra v2 callback. A JSON object with `meta_object`, or with a top-level
/// `status` and `message_id`, is a callback; anything else is [`MalformedWebhook`].
pub fn parse(body: &[u8]) -> Result<Vec<ProviderEvent>, MalformedWebhook> {
    let callback: Value = serde_json::from_slice(body)
        .map_err(|error| MalformedWebhook(format!("not JSON: {error}")))?;
    let top_level = TopLevel::of(&callback);
    let meta_object = callback
        .get("meta_object")
        .filter(|value| value.is_object());
    if meta_object.is_none() && (top_level.status.is_none() || top_level.ids.is_empty()) {
        return Err(MalformedWebhook(
            "not a Kaleyra callback: no meta_object, nor a status with a message_id".into(),
        ));
    }
    let mut events = meta_object
        .and_then(|meta_object| meta_object.get("value"))
        .map(|value| parse_value_with(value, kaleyra_status))
        .unwrap_or_default();
    correlate_status(&mut events, &top_level);
    complete_inbound(&mut events, callback.get("extra_info"));
    Ok(events)
}

/// What Kaleyra says around Meta's value.
struct TopLevel {
    /// Top-level `message_id`, then `extra_info.message_id`, without repeats.
    ids: Vec<String>,
    status: Option<MessageStatus>,
}

impl TopLevel {
    fn of(callback: &Value) -> Self {
        let extra_info_id = callback
            .get("extra_info")
            .and_then(|extra_info| text_field(extra_info, "message_id"));
        TopLevel {
            ids: unique(
                [text_field(callback, "message_id"), extra_info_id]
                    .into_iter()
                    .flatten(),
            ),
            status: callback
                .get("status")
                .and_then(Value::as_str)
                .and_then(kaleyra_status),
        }
    }
}

/// A callback is about one message: its single status gets the top-level ids first (the
/// `statuses[].id` inside may not be the wamid). With no status inside, the top-level status
/// stands alone. Several statuses inside are left as Meta wrote them, since the top-level ids
/// could belong to any of them.
fn correlate_status(events: &mut Vec<ProviderEvent>, top_level: &TopLevel) {
    let mut statuses = events.iter_mut().filter_map(|event| match event {
        ProviderEvent::Status(update) => Some(update),
        _ => None,
    });
    match (statuses.next(), statuses.next()) {
        (Some(update), None) => {
            let inner = std::mem::take(&mut update.provider_message_ids);
            update.provider_message_ids = unique(top_level.ids.iter().cloned().chain(inner));
        }
        (None, _) => events.extend(top_level_status(top_level).map(ProviderEvent::Status)),
        (Some(_), Some(_)) => {}
    }
}

fn top_level_status(top_level: &TopLevel) -> Option<StatusUpdate> {
    let status = top_level.status?;
    if top_level.ids.is_empty() {
        return None;
    }
    Some(StatusUpdate {
        provider_message_ids: top_level.ids.clone(),
        message_ref: None,
        status,
        occurred_at: None,
        recipient: None,
        error: (status == MessageStatus::Failed).then(|| EventError::new(ErrorCode::ProviderError)),
    })
}

/// The single inbound message of a callback gets `extra_info.reply_to` as the message it
/// replies to (when Meta's `context` is absent) and `extra_info.media_url` (a link the caller
/// can fetch, unlike Meta's media id) in its `inbound` object.
fn complete_inbound(events: &mut [ProviderEvent], extra_info: Option<&Value>) {
    let Some(extra_info) = extra_info else {
        return;
    };
    let mut messages = events.iter_mut().filter_map(|event| match event {
        ProviderEvent::Inbound(message) => Some(message),
        _ => None,
    });
    let (Some(message), None) = (messages.next(), messages.next()) else {
        return;
    };
    add_extra_info(message, extra_info);
}

fn add_extra_info(message: &mut InboundMessage, extra_info: &Value) {
    if message.context_id.is_none() {
        message.context_id = text_field(extra_info, "reply_to");
    }
    if let (Some(media_url), Value::Object(inbound)) =
        (text_field(extra_info, "media_url"), &mut message.inbound)
    {
        inbound.insert("media_url".into(), media_url.into());
    }
}

/// `ids` in order, each once.
fn unique(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut unique: Vec<String> = Vec::new();
    for id in ids {
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    unique
}
