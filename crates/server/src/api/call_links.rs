//! `POST /v1/call-links`: a `wa.me/call` deep link with an optional tracking payload.

use super::parse_json;
use crate::http::body::read_limited;
use crate::http::{ApiError, ClientName, RequestId};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use switchboard_core::validate::CALL_PAYLOAD_MAX;
use switchboard_core::ValidationError;

/// RFC 3986 unreserved characters stay as they are; everything else is percent-encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallLinkRequest {
    number: String,
    #[serde(default)]
    payload: Option<String>,
}

#[utoipa::path(post, path = "/v1/call-links", tag = "providers", security(("client_token" = [])),
    request_body(content = crate::api::openapi::CallLinkRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The wa.me/call link", body = crate::api::openapi::CallLink),
        (status = 400, description = "Invalid number or payload (`invalid_request`)", body = crate::api::openapi::ErrorResponse),
        (status = 401, description = "No or wrong client token (`unauthenticated`)", body = crate::api::openapi::ErrorResponse),
        (status = 413, description = "Body over `server.max_body_bytes` (`payload_too_large`)", body = crate::api::openapi::ErrorResponse),
    ))]
pub async fn create_call_link(
    request: HttpRequest,
    payload: web::Payload,
    _client: ClientName,
    request_id: RequestId,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request_id = request_id.0;
    let limit = state.settings().server.max_body_bytes;
    let body = read_limited(&request, payload, limit, &request_id).await?;
    let link: CallLinkRequest = parse_json(&body, &request_id)?;
    let url = call_link_url(&link.number, link.payload.as_deref())
        .map_err(|e| ApiError::invalid(e, &request_id))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "url": url })))
}

pub fn call_link_url(number: &str, payload: Option<&str>) -> Result<String, ValidationError> {
    let digits = switchboard_core::phone::e164_digits(number).ok_or_else(|| {
        ValidationError::new(
            "number",
            "must be an E.164 business phone number like +15550783881",
        )
    })?;
    let mut url = format!("https://wa.me/call/{digits}");
    if let Some(payload) = payload {
        let n = payload.chars().count();
        if n > CALL_PAYLOAD_MAX {
            return Err(ValidationError::new(
                "payload",
                format!("must be at most {CALL_PAYLOAD_MAX} characters (got {n})"),
            ));
        }
        if !payload.is_empty() {
            url.push_str("?biz_payload=");
            url.extend(utf8_percent_encode(payload, QUERY_VALUE));
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_documented_link() {
        assert_eq!(
            call_link_url("+15550783881", Some("campaign_winter_2026")).unwrap(),
            "https://wa.me/call/15550783881?biz_payload=campaign_winter_2026"
        );
        assert_eq!(
            call_link_url("15550783881", None).unwrap(),
            "https://wa.me/call/15550783881"
        );
    }

    #[test]
    fn encodes_the_payload() {
        assert_eq!(
            call_link_url("+15550783881", Some("a b&c=d/é")).unwrap(),
            "https://wa.me/call/15550783881?biz_payload=a%20b%26c%3Dd%2F%C3%A9"
        );
    }

    #[test]
    fn refuses_bad_numbers_and_long_payloads() {
        assert_eq!(call_link_url("wa.me", None).unwrap_err().field, "number");
        assert_eq!(
            call_link_url("+15550783881", Some(&"p".repeat(513)))
                .unwrap_err()
                .field,
            "payload"
        );
        assert!(call_link_url("+15550783881", Some(&"p".repeat(512))).is_ok());
    }
}
