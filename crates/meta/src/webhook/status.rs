//! `statuses[]` items: how far an outbound message got, and why it failed.

use super::value::{phone, StatusWords};
use crate::meta_error_code;
use serde_json::Value;
use switchboard_core::event::{text_field, whole_seconds};
use switchboard_core::ProviderWords;
use switchboard_core::{ErrorCode, EventError, MessageStatus, StatusUpdate};

/// One `statuses[]` item; `None` for a status word Switchboard does not report, for the
/// statuses of calls (`"type": "call"`), and for an item with neither a message id nor
/// Switchboard's own id.
pub(super) fn status_update(item: &Value, status_words: StatusWords) -> Option<StatusUpdate> {
    if item.get("type").is_some_and(|kind| kind == "call") {
        return None;
    }
    let status = status_words(item.get("status")?.as_str()?)?;
    let provider_message_ids: Vec<String> = text_field(item, "id").into_iter().collect();
    let message_ref = text_field(item, "biz_opaque_callback_data");
    if provider_message_ids.is_empty() && message_ref.is_none() {
        return None;
    }
    let error = (status == MessageStatus::Failed)
        .then(|| failure(item.get("errors").and_then(|errors| errors.get(0))));
    Some(StatusUpdate {
        provider_message_ids,
        message_ref,
        status,
        occurred_at: item.get("timestamp").and_then(whole_seconds),
        recipient: phone(item, "recipient_id"),
        error,
    })
}

/// A failed status's first `errors[]` item `{code, title, message, error_data{details}}`, with
/// Meta's code mapped as for send answers. A failure without errors is still a failure.
fn failure(error: Option<&Value>) -> EventError {
    let Some(error) = error else {
        return EventError::new(ErrorCode::ProviderError);
    };
    let provider_code = text_field(error, "code");
    let code = provider_code
        .as_deref()
        .and_then(|code| code.trim().parse().ok())
        .and_then(meta_error_code)
        .unwrap_or(ErrorCode::ProviderError);
    EventError {
        words: ProviderWords {
            code: provider_code,
            // `message` says more than `title`; older API versions send only `title`.
            message: text_field(error, "message").or_else(|| text_field(error, "title")),
            details: error
                .get("error_data")
                .and_then(|data| text_field(data, "details")),
            status: None,
        },
        ..EventError::new(code)
    }
}
