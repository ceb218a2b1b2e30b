//! Shared by the integration tests (each test file uses a part of it).
#![allow(dead_code)]

use serde_json::Value;
use switchboard_core::{ErrorCode, ProviderRequest, RenderContext};
use switchboard_meta::{MetaAdapter, MetaSettings};

pub const TOKEN: &str = "EAAGm0PX4ZCpsBA-test-token-1234";
pub const BASE_URL: &str = "https://graph.facebook.com/";
pub const API_VERSION: &str = "v21.0";
pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const WABA_ID: &str = "102290129340398";
pub const MESSAGE_ID: &str = "01JD3W6Q8S3M1V2H7KX2F5N9ZC";

pub fn adapter() -> MetaAdapter {
    MetaAdapter::new(MetaSettings {
        base_url: BASE_URL.into(),
        api_version: API_VERSION.into(),
        access_token: TOKEN.to_string().into(),
    })
}

pub fn context() -> RenderContext<'static> {
    RenderContext {
        message_id: MESSAGE_ID,
        sender_number: "+15550783881",
        phone_number_id: Some(PHONE_NUMBER_ID),
    }
}

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Exactly two headers: JSON content type and the bearer token, secret as a whole.
pub fn assert_meta_headers(request: &ProviderRequest) {
    let names: Vec<&str> = request.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["content-type", "authorization"]);
    assert_eq!(request.headers[0].1.expose(), "application/json");
    assert_eq!(request.headers[1].1.expose(), format!("Bearer {TOKEN}"));
    assert_eq!(request.headers[1].1.masked(), "****");
    let masked = request.masked_headers();
    assert_eq!(masked["authorization"], "****");
    assert_eq!(masked["content-type"], "application/json");
    assert!(!format!("{request:?}").contains(TOKEN));
}

/// The Meta column of docs/errors.md, written out independently of the adapter: the oracle for the
/// classification tests.
pub const DOCUMENTED_META_CODES: &[(ErrorCode, &[i64])] = &[
    (ErrorCode::InvalidRequest, &[100, 131008, 131009, 135000]),
    (
        ErrorCode::RecipientUnreachable,
        &[131026, 131021, 130472, 131050, 130403],
    ),
    (ErrorCode::OutsideServiceWindow, &[131047]),
    (
        ErrorCode::TemplateRejected,
        &[
            132000, 132001, 132005, 132007, 132012, 132015, 132016, 132068,
        ],
    ),
    (ErrorCode::InsufficientFunds, &[131042]),
    (ErrorCode::SenderNotPermitted, &[10, 131005, 33, 133010]), // and 200–299
    (ErrorCode::AccountRestricted, &[368, 131031, 130497]),
    (
        ErrorCode::RateLimited,
        &[4, 80007, 130429, 131048, 131056, 132069, 133016],
    ),
    (ErrorCode::ProviderAuthFailed, &[0, 190]),
    (
        ErrorCode::ProviderUnavailable,
        &[2, 131000, 131016, 131057, 133004],
    ),
];

pub fn contract_code(code: i64) -> Option<ErrorCode> {
    if (200..=299).contains(&code) {
        return Some(ErrorCode::SenderNotPermitted);
    }
    DOCUMENTED_META_CODES
        .iter()
        .find(|(_, codes)| codes.contains(&code))
        .map(|(unified, _)| *unified)
}
