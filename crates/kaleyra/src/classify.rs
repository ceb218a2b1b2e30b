//! Kaleyra's answer → accepted or a unified failure (docs/errors.md). Total: any status, any
//! bytes; whatever cannot be read falls back to the HTTP status with the raw text kept.

use serde_json::Value;
use switchboard_core::adapter::unified_code;
use switchboard_core::{Accepted, ErrorCode, ProviderFailure, ProviderResponse};

/// Kaleyra's send codes that say the message was taken.
const SUCCESS_CODES: &[&str] = &["WA202", "WA200"];

/// Kaleyra's documented error codes with their unified code; others go by HTTP status.
fn mapped_code(code: &str) -> Option<ErrorCode> {
    Some(match code {
        "RBC001" => ErrorCode::ProviderAuthFailed,
        "WA401" | "WA-401" => ErrorCode::SenderNotPermitted,
        "WA400" => ErrorCode::InvalidRequest,
        "E110" | "WAV2101" => ErrorCode::InsufficientFunds,
        "WA500" => ErrorCode::ProviderUnavailable,
        _ => return None,
    })
}

pub(crate) fn classify(response: &ProviderResponse<'_>) -> Result<Accepted, ProviderFailure> {
    let json = response.json();
    let code = json
        .as_ref()
        .and_then(|v| v.get("code"))
        .and_then(Value::as_str);

    if response.is_success() {
        let message_id = json
            .as_ref()
            // Not `pointer("/data/message_id")`: it allocates an unescaped copy of each step.
            .and_then(|v| v.get("data")?.get("message_id"))
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty());
        let code_says_accepted = code.is_none_or(|c| SUCCESS_CODES.contains(&c));
        if let (Some(id), true) = (message_id, code_says_accepted) {
            return Ok(Accepted {
                provider_message_id: Some(id.to_string()),
                provider_status: "accepted".into(),
            });
        }
        // A 2xx may mean Kaleyra took the message even though we cannot read an id: this must
        // be provider_error (final, never failed over), whatever code the body names.
        let mut failure = response
            .failure(ErrorCode::ProviderError)
            .with_message(format!(
                "Kaleyra answered {} without a readable message id: the message may have been \
             accepted, so it was not sent elsewhere; check before sending it again.",
                response.status
            ));
        failure.words.code = code.map(str::to_string);
        return Err(failure);
    }

    let (Some(json), Some(code)) = (json.as_ref(), code) else {
        return Err(response.classify_by_status());
    };
    let unified = unified_code(response.status, mapped_code(code));
    let mut failure = response.failure(unified);
    failure.words.code = Some(code.to_string());
    // `message` verbatim; without one, the raw text `failure()` put there stays.
    if let Some(message) = json.get("message").and_then(Value::as_str) {
        failure.words.message = Some(message.to_string());
    }
    failure.words.details = json
        .get("error")
        .filter(|e| e.as_object().is_some_and(|o| !o.is_empty()))
        .map(Value::to_string);
    Err(failure)
}
