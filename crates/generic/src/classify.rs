//! The generic API's answers → accepted or a failure. Its documentation describes no response
//! body, so the status decides; a JSON `{"code","message"}` (the shape of its webhook error
//! objects) is kept when present. Total: any status, any bytes.

use serde_json::Value;
use switchboard_core::adapter::code_for_status;
use switchboard_core::{Accepted, ErrorCode, ProviderFailure, ProviderResponse};

/// Longest `message` taken verbatim; anything longer stays in the bounded raw text.
const MESSAGE_MAX: usize = 2048;

pub(crate) fn classify(response: &ProviderResponse<'_>) -> Result<Accepted, ProviderFailure> {
    if response.is_success() {
        // No documented response id: callbacks correlate by externalId (Switchboard's id).
        return Ok(Accepted {
            provider_message_id: None,
            provider_status: "accepted".into(),
        });
    }
    let code = match response.status {
        400 | 422 => ErrorCode::InvalidRequest,
        401 | 403 => ErrorCode::ProviderAuthFailed,
        status => code_for_status(status),
    };
    let mut failure = response.failure(code);
    if let Some(Value::Object(object)) = response.json() {
        failure.words.code = match object.get("code") {
            Some(Value::String(code)) => Some(code.clone()),
            Some(Value::Number(code)) => Some(code.to_string()),
            _ => None,
        };
        if let Some(Value::String(message)) = object.get("message") {
            if !message.is_empty() && message.len() <= MESSAGE_MAX {
                failure.words.message = Some(message.clone());
            }
        }
    }
    Err(failure)
}
