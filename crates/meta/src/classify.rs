//! Graph's answers → accepted or a classified failure (docs/errors.md). Total: any status and any
//! bytes get an answer; what cannot be parsed is classified by HTTP status with the raw text kept.

use serde_json::Value;
use switchboard_core::adapter::unified_code;
use switchboard_core::{Accepted, ErrorCode, ProviderFailure, ProviderResponse};

/// The unified code for one of Meta's error `code`s (docs/errors.md), or `None` when Switchboard
/// does not map it (then the HTTP status decides). Also fits the `errors[].code` of status
/// webhooks.
pub fn meta_error_code(code: i64) -> Option<ErrorCode> {
    use ErrorCode::*;
    Some(match code {
        100 | 131008 | 131009 | 135000 => InvalidRequest,
        131026 | 131021 | 130472 | 131050 | 130403 => RecipientUnreachable,
        131047 => OutsideServiceWindow,
        132000 | 132001 | 132005 | 132007 | 132012 | 132015 | 132016 | 132068 => TemplateRejected,
        131042 => InsufficientFunds,
        10 | 200..=299 | 131005 | 33 | 133010 => SenderNotPermitted,
        368 | 131031 | 130497 => AccountRestricted,
        4 | 80007 | 130429 | 131048 | 131056 | 132069 | 133016 => RateLimited,
        0 | 190 => ProviderAuthFailed,
        2 | 131000 | 131016 | 131057 | 133004 => ProviderUnavailable,
        _ => return None,
    })
}

/// What a 2xx without a readable id means for a message.
pub(crate) const MESSAGE_UNCONFIRMED: &str =
    "Meta answered with success but without a message id: \
the message may or may not have been sent; check before sending it again.";
/// … and for a template creation.
pub(crate) const TEMPLATE_UNCONFIRMED: &str =
    "Meta answered with success but without a template id: \
the template may or may not have been created; check in WhatsApp Manager before creating it again.";

/// Classifies any response: `accept` reads a success body; `unconfirmed` is the message for a
/// 2xx whose body `accept` cannot read. Shared by messages and template creation so both map
/// errors identically.
pub(crate) fn classify_with<T>(
    response: &ProviderResponse<'_>,
    accept: impl FnOnce(&Value) -> Option<T>,
    unconfirmed: &str,
) -> Result<T, ProviderFailure> {
    let json = response.json();
    if response.is_success() {
        if let Some(accepted) = json.as_ref().and_then(accept) {
            return Ok(accepted);
        }
    }
    // Meta says to key on `code`, not on the HTTP status; the HTTP-level rules of docs/errors.md
    // (429, 5xx) still come first, see `unified_code`.
    if let Some(mut failure) = json.as_ref().and_then(|body| graph_error(response, body)) {
        if response.is_success() {
            // An error inside a 2xx: Meta may have taken the message anyway, so whatever the
            // code says it must not be failed over or retried (Meta's code is kept).
            failure.code = ErrorCode::ProviderError;
        }
        return Err(failure);
    }
    if response.is_success() {
        // Not `provider_unavailable`: Meta may have taken it, so it must not be failed over.
        return Err(response
            .failure(ErrorCode::ProviderError)
            .with_message(unconfirmed));
    }
    Err(response.classify_by_status())
}

/// `{"messages":[{"id":"wamid…","message_status"?}]}` → accepted.
pub(crate) fn message_accepted(body: &Value) -> Option<Accepted> {
    let message = body.get("messages")?.get(0)?;
    let id = non_empty_str(message.get("id"))?;
    let status = non_empty_str(message.get("message_status")).unwrap_or("accepted");
    Some(Accepted {
        provider_message_id: Some(id.to_string()),
        provider_status: status.to_string(),
    })
}

/// Graph's `{"error":{"message","type","code","error_data":{"details"}?,…}}`; `None` when the
/// body has no usable `error.code` (a number, or a string as some proxies send it).
fn graph_error(response: &ProviderResponse<'_>, body: &Value) -> Option<ProviderFailure> {
    let error = body.get("error")?;
    let provider_code = match error.get("code")? {
        Value::Number(number) => number.to_string(),
        Value::String(code) if !code.trim().is_empty() => code.clone(),
        _ => return None,
    };
    let mapped = provider_code.trim().parse().ok().and_then(meta_error_code);
    let code = unified_code(response.status, mapped);
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_string);
    let mut failure = response.failure(code);
    failure.words.code = Some(provider_code);
    // Meta's own words verbatim; the raw body (already there) if it gave none.
    if let Some(message) = text(error.get("message")) {
        failure.words.message = Some(message);
    }
    failure.words.details = text(error.get("error_data").and_then(|data| data.get("details")));
    Some(failure)
}

fn non_empty_str(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}
