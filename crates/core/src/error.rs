//! The closed set of error codes (docs/errors.md) and the values that carry them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Every error Switchboard answers with has exactly one of these codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    Unauthenticated,
    NotFound,
    PayloadTooLarge,
    UnknownSender,
    UnsupportedByProvider,
    RecipientUnreachable,
    OutsideServiceWindow,
    TemplateRejected,
    IdempotencyKeyReused,
    IdempotencyKeyInUse,
    InsufficientFunds,
    NotCancelable,
    Expired,
    SenderNotPermitted,
    AccountRestricted,
    RateLimited,
    ProviderAuthFailed,
    ProviderError,
    ProviderUnavailable,
    ProviderTimeout,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthenticated,
        ErrorCode::NotFound,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnknownSender,
        ErrorCode::UnsupportedByProvider,
        ErrorCode::RecipientUnreachable,
        ErrorCode::OutsideServiceWindow,
        ErrorCode::TemplateRejected,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::IdempotencyKeyInUse,
        ErrorCode::InsufficientFunds,
        ErrorCode::NotCancelable,
        ErrorCode::Expired,
        ErrorCode::SenderNotPermitted,
        ErrorCode::AccountRestricted,
        ErrorCode::RateLimited,
        ErrorCode::ProviderAuthFailed,
        ErrorCode::ProviderError,
        ErrorCode::ProviderUnavailable,
        ErrorCode::ProviderTimeout,
    ];

    /// The HTTP status Switchboard answers with for this code.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidRequest => 400,
            Unauthenticated => 401,
            NotFound => 404,
            PayloadTooLarge => 413,
            UnknownSender
            | UnsupportedByProvider
            | RecipientUnreachable
            | OutsideServiceWindow
            | TemplateRejected
            | IdempotencyKeyReused => 422,
            IdempotencyKeyInUse | NotCancelable => 409,
            // Never an answer, only a queued message's `error`; 410 if it ever were one.
            Expired => 410,
            InsufficientFunds => 402,
            SenderNotPermitted | AccountRestricted => 403,
            RateLimited => 429,
            ProviderAuthFailed | ProviderError => 502,
            ProviderUnavailable => 503,
            ProviderTimeout => 504,
        }
    }

    /// Whether the caller may send the same request again later (with the same Idempotency-Key).
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::IdempotencyKeyInUse
                | ErrorCode::RateLimited
                | ErrorCode::ProviderUnavailable
                | ErrorCode::ProviderTimeout
        )
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidRequest => "invalid_request",
            Unauthenticated => "unauthenticated",
            NotFound => "not_found",
            PayloadTooLarge => "payload_too_large",
            UnknownSender => "unknown_sender",
            UnsupportedByProvider => "unsupported_by_provider",
            RecipientUnreachable => "recipient_unreachable",
            OutsideServiceWindow => "outside_service_window",
            TemplateRejected => "template_rejected",
            IdempotencyKeyReused => "idempotency_key_reused",
            IdempotencyKeyInUse => "idempotency_key_in_use",
            InsufficientFunds => "insufficient_funds",
            NotCancelable => "not_cancelable",
            Expired => "expired",
            SenderNotPermitted => "sender_not_permitted",
            AccountRestricted => "account_restricted",
            RateLimited => "rate_limited",
            ProviderAuthFailed => "provider_auth_failed",
            ProviderError => "provider_error",
            ProviderUnavailable => "provider_unavailable",
            ProviderTimeout => "provider_timeout",
        }
    }

    /// A human-readable explanation that says what the caller should do.
    pub fn default_message(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidRequest => "The request is invalid; fix the named field and send again.",
            Unauthenticated => "Missing or wrong client token; send Authorization: Bearer <token>.",
            NotFound => "No such resource for this client.",
            PayloadTooLarge => "The request body is larger than the server accepts.",
            UnknownSender => "The sender (or provider) is not configured for this gateway.",
            UnsupportedByProvider => {
                "No endpoint of the route can carry this message; change the message or the route."
            }
            RecipientUnreachable => {
                "The recipient cannot receive this message (not on WhatsApp, blocked, opted out or an outdated client); do not retry, use another channel."
            }
            OutsideServiceWindow => {
                "More than 24 hours since the user last wrote: only an approved template can be sent; send a template."
            }
            TemplateRejected => {
                "The provider rejected the template (name, language, parameters or status); fix the template or its parameters."
            }
            IdempotencyKeyReused => {
                "This Idempotency-Key was used with a different body; use a new key for a new message."
            }
            IdempotencyKeyInUse => {
                "A request with this Idempotency-Key is still in flight; retry later with the same key."
            }
            InsufficientFunds => "The provider account lacks balance or eligibility; top up or contact the provider.",
            NotCancelable => "The message is no longer queued (a provider has it, or it is final); it cannot be canceled.",
            Expired => "The message was not accepted by a provider within its validity_secs; it was not sent.",
            SenderNotPermitted => "The sender is not permitted to send through this provider account.",
            AccountRestricted => "The business account is restricted or blocked by the provider.",
            RateLimited => "The provider is rate limiting; retry after the Retry-After delay.",
            ProviderAuthFailed => "The gateway's provider credentials were rejected; an operator must fix them.",
            ProviderError => "The provider refused the message for a reason Switchboard does not map; see provider_code.",
            ProviderUnavailable => "The provider is unavailable; retry later with the same Idempotency-Key.",
            ProviderTimeout => {
                "The provider did not answer in time; the message may or may not have been sent. Check its status before sending it again (a retry with the same Idempotency-Key gets this answer again)."
            }
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request that breaks a validation rule: the JSON path of the field and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// JSON path, e.g. `interactive.action.parameters.display_text` or `template.components[0]`.
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What a provider said, verbatim, beside Switchboard's unified code: one type wherever a
/// provider's answer is shown (an error, an attempt, a failed status), flattened into it so its
/// keys read `provider_status`, `provider_code`, `provider_message`, `provider_details`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderWords {
    /// HTTP status the provider answered with; `None` when no response arrived (or for a
    /// webhook).
    #[serde(
        rename = "provider_status",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<u16>,
    #[serde(
        rename = "provider_code",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub code: Option<String>,
    #[serde(
        rename = "provider_message",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub message: Option<String>,
    #[serde(
        rename = "provider_details",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub details: Option<String>,
}

/// A provider (or the way to it) said no: the unified code beside the provider's own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderFailure {
    pub code: ErrorCode,
    pub message: String,
    #[serde(flatten)]
    pub words: ProviderWords,
    /// Seconds the provider asked us to wait (`Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl ProviderFailure {
    /// A failure with the code's default message and no provider data.
    pub fn new(code: ErrorCode) -> Self {
        ProviderFailure {
            code,
            message: code.default_message().to_string(),
            words: ProviderWords::default(),
            retry_after_secs: None,
        }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_contract_status_and_retryability() {
        let table: &[(&str, u16, bool)] = &[
            ("invalid_request", 400, false),
            ("unauthenticated", 401, false),
            ("not_found", 404, false),
            ("payload_too_large", 413, false),
            ("unknown_sender", 422, false),
            ("unsupported_by_provider", 422, false),
            ("recipient_unreachable", 422, false),
            ("outside_service_window", 422, false),
            ("template_rejected", 422, false),
            ("idempotency_key_reused", 422, false),
            ("idempotency_key_in_use", 409, true),
            ("insufficient_funds", 402, false),
            ("not_cancelable", 409, false),
            // Only ever a stored message's error, never an answer.
            ("expired", 410, false),
            ("sender_not_permitted", 403, false),
            ("account_restricted", 403, false),
            ("rate_limited", 429, true),
            ("provider_auth_failed", 502, false),
            ("provider_error", 502, false),
            ("provider_unavailable", 503, true),
            ("provider_timeout", 504, true),
        ];
        assert_eq!(table.len(), ErrorCode::ALL.len());
        for (code, (name, status, retryable)) in ErrorCode::ALL.iter().zip(table) {
            assert_eq!(code.as_str(), *name);
            assert_eq!(serde_json::to_value(code).unwrap(), *name);
            assert_eq!(code.http_status(), *status, "{name}");
            assert_eq!(code.retryable(), *retryable, "{name}");
        }
    }
}
