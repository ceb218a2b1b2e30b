//! What a provider adapter is: pure translation between the neutral model and one provider's
//! wire format. No network, no clock, no store — the server's executor does the I/O.

use crate::error::{ErrorCode, ProviderFailure, ProviderWords};
use crate::message::OutboundMessage;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use std::fmt;

/// Everything an adapter needs besides the message and its own endpoint settings.
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    /// Switchboard's message id (a ULID): correlates provider callbacks.
    pub message_id: &'a str,
    /// The sender's number, E.164 with `+`.
    pub sender_number: &'a str,
    /// Meta's id for the sender's number, when configured.
    pub phone_number_id: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

/// A header value; secrets print as `****` and are exposed only to the executor.
#[derive(Clone)]
pub enum HeaderValue {
    Plain(String),
    Secret(SecretString),
}

pub const MASK: &str = "****";

impl HeaderValue {
    /// The value to put on the wire. Only the executor should call this.
    pub fn expose(&self) -> &str {
        match self {
            HeaderValue::Plain(v) => v,
            HeaderValue::Secret(v) => v.expose_secret(),
        }
    }

    /// The value safe to show: secrets are masked.
    pub fn masked(&self) -> &str {
        match self {
            HeaderValue::Plain(v) => v,
            HeaderValue::Secret(_) => MASK,
        }
    }
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.masked())
    }
}

/// The exact HTTP request a provider should receive.
#[derive(Debug, Clone)]
pub struct ProviderRequest {
    pub method: HttpMethod,
    pub url: String,
    /// Header names in lower case.
    pub headers: Vec<(String, HeaderValue)>,
    pub body: Value,
}

impl ProviderRequest {
    pub fn post_json(url: String, body: Value) -> Self {
        ProviderRequest {
            method: HttpMethod::Post,
            url,
            headers: vec![(
                "content-type".into(),
                HeaderValue::Plain("application/json".into()),
            )],
            body,
        }
    }

    pub fn header(mut self, name: &str, value: HeaderValue) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value));
        self
    }

    /// Headers as a JSON object with secrets masked: what dry runs and logs may show.
    pub fn masked_headers(&self) -> Map<String, Value> {
        self.headers
            .iter()
            .map(|(name, value)| (name.clone(), Value::from(value.masked())))
            .collect()
    }
}

/// The response headers any classification reads. The executor copies only these out of a
/// provider's answer; a classification that needs another header adds it here.
pub const CLASSIFIED_HEADERS: &[&str] = &["retry-after"];

/// A provider's HTTP answer, as received.
#[derive(Debug, Clone, Copy)]
pub struct ProviderResponse<'a> {
    pub status: u16,
    /// Header names in lower case: those of [`CLASSIFIED_HEADERS`] the answer had.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl ProviderResponse<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Retry-After` in seconds, when given as a number of seconds.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.header("retry-after")?.trim().parse().ok()
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(self.body).ok()
    }

    /// The body as text (lossy), cut to a bounded length so a huge error page cannot bloat
    /// responses and logs.
    pub fn body_text(&self) -> String {
        const LIMIT: usize = 2048;
        let text = String::from_utf8_lossy(self.body);
        let text = text.trim();
        if text.len() <= LIMIT {
            return text.to_string();
        }
        let mut end = LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes in all)", &text[..end], self.body.len())
    }

    /// A failure with the provider's status, raw body and `Retry-After` filled in.
    pub fn failure(&self, code: ErrorCode) -> ProviderFailure {
        let body = self.body_text();
        ProviderFailure {
            words: ProviderWords {
                status: Some(self.status),
                message: (!body.is_empty()).then_some(body),
                ..ProviderWords::default()
            },
            retry_after_secs: self.retry_after_secs(),
            ..ProviderFailure::new(code)
        }
    }

    /// The classification every adapter falls back to when the body says nothing it
    /// understands: 429 → `rate_limited`, 5xx → `provider_unavailable`, anything else →
    /// `provider_error`. The raw text is kept.
    pub fn classify_by_status(&self) -> ProviderFailure {
        self.failure(code_for_status(self.status))
    }
}

/// The code an HTTP status alone implies: 429 → `rate_limited`, 5xx →
/// `provider_unavailable`, otherwise `provider_error`.
pub fn code_for_status(status: u16) -> ErrorCode {
    match status {
        429 => ErrorCode::RateLimited,
        500..=599 => ErrorCode::ProviderUnavailable,
        _ => ErrorCode::ProviderError,
    }
}

/// The unified code of a provider error: the HTTP-level rules of docs/errors.md come first — 429 is
/// `rate_limited` and any 5xx is `provider_unavailable`, whatever the body says — then the
/// provider's own code as the adapter mapped it, then the status alone.
pub fn unified_code(status: u16, mapped: Option<ErrorCode>) -> ErrorCode {
    match status {
        429 | 500..=599 => code_for_status(status),
        _ => mapped.unwrap_or_else(|| code_for_status(status)),
    }
}

/// The provider took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub provider_message_id: Option<String>,
    /// `accepted`, or what the provider said beyond it (Meta's `held_for_quality_assessment`,
    /// `paused`).
    pub provider_status: String,
}

/// This endpoint cannot express the message: `field` names what it cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Unsupported {
    pub field: String,
    pub message: String,
}

impl Unsupported {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Unsupported {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One endpoint's adapter (a Meta instance, one Kaleyra pod, a generic instance).
pub trait Adapter: Send + Sync + fmt::Debug {
    /// The provider kind: `meta`, `kaleyra`, `generic`.
    fn kind(&self) -> &'static str;

    /// Renders the exact provider request, or says what the endpoint cannot carry.
    fn render(
        &self,
        message: &OutboundMessage,
        context: &RenderContext<'_>,
    ) -> Result<ProviderRequest, Unsupported>;

    /// Classifies any response — whatever its status or body — as accepted or a failure.
    /// Must be total: never panics, never fails to decide.
    fn classify(&self, response: &ProviderResponse<'_>) -> Result<Accepted, ProviderFailure>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_in_debug_and_masked_headers() {
        let request = ProviderRequest::post_json("https://x".into(), Value::Null).header(
            "api-key",
            HeaderValue::Secret("s3cr3t-value".to_string().into()),
        );
        assert!(!format!("{request:?}").contains("s3cr3t-value"));
        assert_eq!(request.masked_headers()["api-key"], "****");
        assert_eq!(request.masked_headers()["content-type"], "application/json");
        assert_eq!(request.headers[1].1.expose(), "s3cr3t-value");
    }

    #[test]
    fn fallback_classification_by_status_keeps_raw_text() {
        let headers = vec![("Retry-After".to_string(), "17".to_string())];
        let response = ProviderResponse {
            status: 429,
            headers: &headers,
            body: b"<html>slow down</html>",
        };
        let failure = response.classify_by_status();
        assert_eq!(failure.code, ErrorCode::RateLimited);
        assert_eq!(failure.retry_after_secs, Some(17));
        assert_eq!(
            failure.words.message.as_deref(),
            Some("<html>slow down</html>")
        );
        for (status, code) in [
            (500, ErrorCode::ProviderUnavailable),
            (503, ErrorCode::ProviderUnavailable),
            (404, ErrorCode::ProviderError),
        ] {
            let r = ProviderResponse {
                status,
                headers: &[],
                body: b"",
            };
            let f = r.classify_by_status();
            assert_eq!(f.code, code);
            assert_eq!(f.words.message, None);
            assert_eq!(f.words.status, Some(status));
        }
    }

    #[test]
    fn http_429_and_5xx_decide_before_the_providers_code() {
        use ErrorCode::*;
        assert_eq!(unified_code(500, Some(InvalidRequest)), ProviderUnavailable);
        assert_eq!(
            unified_code(503, Some(RecipientUnreachable)),
            ProviderUnavailable
        );
        assert_eq!(unified_code(429, Some(ProviderAuthFailed)), RateLimited);
        assert_eq!(
            unified_code(400, Some(ProviderUnavailable)),
            ProviderUnavailable
        );
        assert_eq!(unified_code(200, Some(TemplateRejected)), TemplateRejected);
        assert_eq!(unified_code(400, None), ProviderError);
        assert_eq!(unified_code(502, None), ProviderUnavailable);
    }

    #[test]
    fn body_text_is_bounded_and_utf8_safe() {
        let body = "é".repeat(5000);
        let response = ProviderResponse {
            status: 500,
            headers: &[],
            body: body.as_bytes(),
        };
        let text = response.body_text();
        assert!(text.len() < 2200);
        assert!(text.ends_with("(10000 bytes in all)"));
    }
}
