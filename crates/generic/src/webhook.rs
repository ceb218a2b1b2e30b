//! The generic API's status callbacks (docs/webhooks-and-events.md): `{"externalId", "status", "timestamp"?,
//! "error"?: {"code", "message"}}`. `externalId` is Switchboard's own id, sent with the message,
//! so it is the only correlation there is. Proof (a shared token header) is the server's business.

mod rfc3339;

use serde_json::Value;
use switchboard_core::event::{text_field, whole_seconds};
use switchboard_core::{
    ErrorCode, EventError, MalformedWebhook, MessageStatus, ProviderEvent, StatusUpdate,
};

/// Whole numbers this large are milliseconds: as seconds they would be past the year 5000.
const MILLISECONDS_FROM: i64 = 100_000_000_000;

/// The event in a status callback: none when its status is not one Switchboard reports
/// (`sent`, `delivered`, `read`, `failed`, any case). A body without `externalId` and `status`
/// is not a callback: [`MalformedWebhook`].
pub fn parse(body: &[u8]) -> Result<Vec<ProviderEvent>, MalformedWebhook> {
    let callback: Value = serde_json::from_slice(body)
        .map_err(|error| MalformedWebhook(format!("not JSON: {error}")))?;
    let (Some(external_id), Some(word)) = (
        text_field(&callback, "externalId"),
        callback.get("status").and_then(Value::as_str),
    ) else {
        return Err(MalformedWebhook(
            "not a generic status callback: externalId and status are required".into(),
        ));
    };
    let Some(status) = MessageStatus::from_provider_word(word) else {
        return Ok(Vec::new());
    };
    Ok(vec![ProviderEvent::Status(StatusUpdate {
        provider_message_ids: Vec::new(),
        message_ref: Some(external_id),
        status,
        occurred_at: callback.get("timestamp").and_then(timestamp),
        recipient: None,
        error: (status == MessageStatus::Failed).then(|| failure(callback.get("error"))),
    })])
}

/// Unix seconds from seconds or milliseconds (a number or a string of digits) or RFC 3339 text;
/// `None` for anything else, which is then simply not known.
fn timestamp(value: &Value) -> Option<i64> {
    let whole = whole_seconds(value).map(|number| {
        if number
            .checked_abs()
            .is_none_or(|size| size >= MILLISECONDS_FROM)
        {
            number / 1000
        } else {
            number
        }
    });
    whole.or_else(|| rfc3339::unix_seconds(value.as_str()?))
}

/// The API's `{code, message}`, kept verbatim beside `provider_error`: the generic API's codes
/// are not documented, so none is mapped.
fn failure(error: Option<&Value>) -> EventError {
    let mut failure = EventError::new(ErrorCode::ProviderError);
    if let Some(error) = error {
        failure.words.code = text_field(error, "code");
        failure.words.message = text_field(error, "message");
    }
    failure
}
