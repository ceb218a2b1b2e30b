//! Classification of Meta's answers: one row per Meta code of docs/errors.md, then the bodies a
//! provider outage produces, then successes.

mod common;

use common::*;
use serde_json::{json, Value};
use switchboard_core::{
    Accepted, Adapter, ErrorCode, ProviderFailure, ProviderResponse, ProviderWords,
};
use switchboard_meta::{meta_error_code, TemplateCreated};

fn classify_with(
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Accepted, ProviderFailure> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    adapter().classify(&ProviderResponse {
        status,
        headers: &headers,
        body,
    })
}

fn classify(status: u16, body: &[u8]) -> Result<Accepted, ProviderFailure> {
    classify_with(status, &[], body)
}

fn failure(status: u16, body: &[u8]) -> ProviderFailure {
    classify(status, body).expect_err("should be a failure")
}

fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("serializes")
}

/// A Graph error body as Meta sends it.
fn graph_error(code: Value, message: &str, details: Option<&str>) -> Value {
    let mut error = json!({
        "message": message, "type": "OAuthException", "code": code,
        "fbtrace_id": "AZ7Dq2gRhEiJ8mXYpcGVt1K"
    });
    if let Some(details) = details {
        error["error_data"] = json!({"messaging_product": "whatsapp", "details": details});
    }
    json!({"error": error})
}

struct Row {
    code: i64,
    status: u16,
    message: &'static str,
    details: Option<&'static str>,
    expected: ErrorCode,
}

const fn row(
    code: i64,
    status: u16,
    message: &'static str,
    details: Option<&'static str>,
    expected: ErrorCode,
) -> Row {
    Row {
        code,
        status,
        message,
        details,
        expected,
    }
}

use ErrorCode::*;

#[rustfmt::skip]
const ROWS: &[Row] = &[
    row(100, 400, "(#100) Invalid parameter", Some("Param text['body'] must be at most 4096 characters long."), InvalidRequest),
    row(131008, 400, "(#131008) Required parameter is missing", Some("The parameter text['body'] is required."), InvalidRequest),
    row(131009, 400, "(#131009) Parameter value is not valid", Some("interactive.action.parameters.ttl_minutes must be between 1 and 43200."), InvalidRequest),
    row(135000, 400, "(#135000) Generic user error", Some("Message failed to send because of an unknown error with your request parameters."), InvalidRequest),
    row(131026, 400, "(#131026) Message Undeliverable", Some("Message Undeliverable."), RecipientUnreachable),
    row(131021, 400, "(#131021) Recipient cannot be sender", Some("Sender and recipient phone number is the same."), RecipientUnreachable),
    row(130472, 400, "(#130472) User's number is part of an experiment", Some("Failed to send message because this user's phone number is part of an experiment."), RecipientUnreachable),
    row(131050, 400, "(#131050) Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business", None, RecipientUnreachable),
    row(130403, 400, "(#130403) Recipient blocked", Some("The business has blocked this user."), RecipientUnreachable),
    row(131047, 400, "(#131047) Re-engagement message", Some("Message failed to send because more than 24 hours have passed since the customer last replied to this number."), OutsideServiceWindow),
    row(132000, 400, "(#132000) Number of parameters does not match the expected number of params", Some("body: number of localizable_params (1) does not match the expected number of params (2)"), TemplateRejected),
    row(132001, 404, "(#132001) Template name does not exist in the translation", Some("template name (wa_voice_call) does not exist in en"), TemplateRejected),
    row(132005, 400, "(#132005) Translated text too long", Some("Translated text is too long."), TemplateRejected),
    row(132007, 400, "(#132007) Template Format Character Policy Violated", Some("Template content violates a WhatsApp policy."), TemplateRejected),
    row(132012, 400, "(#132012) Parameter format does not match format in the created template", Some("header: Format mismatch, expected IMAGE, received UNKNOWN"), TemplateRejected),
    row(132015, 400, "(#132015) Template is Paused", Some("Template is paused due to low quality so it cannot be sent in a template message."), TemplateRejected),
    row(132016, 400, "(#132016) Template is Disabled", Some("Template has been paused too many times due to low quality and is now permanently disabled."), TemplateRejected),
    row(132068, 400, "(#132068) Flow is blocked", Some("Flow is in blocked state."), TemplateRejected),
    row(131042, 400, "(#131042) Business eligibility payment issue", Some("Message failed to send because there were one or more errors related to your payment method."), InsufficientFunds),
    row(10, 403, "(#10) Application does not have permission for this action", Some("Permission denied."), SenderNotPermitted),
    row(200, 403, "(#200) Permissions error", None, SenderNotPermitted),
    row(201, 403, "(#201) Permissions error", None, SenderNotPermitted),
    row(250, 403, "(#250) Permissions error", None, SenderNotPermitted),
    row(299, 403, "(#299) Permissions error", None, SenderNotPermitted),
    row(131005, 403, "(#131005) Access denied", Some("Permission is either not granted or has been removed."), SenderNotPermitted),
    row(33, 400, "(#33) This object does not exist or does not support this action", Some("The business phone number has been deleted."), SenderNotPermitted),
    row(133010, 400, "(#133010) Account not registered", Some("The phone number is not registered on the WhatsApp Business Platform."), SenderNotPermitted),
    row(368, 403, "(#368) Temporarily blocked for policies violations", None, AccountRestricted),
    row(131031, 403, "(#131031) Account has been locked", Some("Business Account locked."), AccountRestricted),
    row(130497, 403, "(#130497) Business account is restricted from messaging users in this country", None, AccountRestricted),
    row(4, 400, "(#4) Application request limit reached", None, RateLimited),
    row(80007, 400, "(#80007) There have been too many calls to this WhatsApp Business account.", None, RateLimited),
    row(130429, 400, "(#130429) Rate limit hit", Some("Cloud API message throughput has been reached."), RateLimited),
    row(131048, 400, "(#131048) Spam rate limit hit", Some("Message failed to send because there are restrictions on how many messages can be sent from this phone number."), RateLimited),
    row(131056, 400, "(#131056) (Business Account, Consumer Account) pair rate limit hit", Some("Too many messages sent from the sender phone number to the same recipient phone number in a short period of time."), RateLimited),
    row(132069, 400, "(#132069) Flow throttled", Some("Flow is in throttled state and 10 messages using this flow were already sent in the last hour."), RateLimited),
    row(133016, 400, "(#133016) Account register deregister rate limit exceeded", None, RateLimited),
    row(0, 401, "(#0) AuthException", Some("We were unable to authenticate the app user."), ProviderAuthFailed),
    row(190, 401, "Error validating access token: Session has expired on Friday, 01-Nov-24 10:00:00 PDT.", None, ProviderAuthFailed),
    row(2, 503, "(#2) Service temporarily unavailable", None, ProviderUnavailable),
    row(131000, 500, "(#131000) Something went wrong", Some("Message failed to send due to an unknown error."), ProviderUnavailable),
    row(131016, 500, "(#131016) Service unavailable", Some("A service is temporarily unavailable."), ProviderUnavailable),
    row(131057, 500, "(#131057) Account in maintenance mode", Some("Business Account is in maintenance mode."), ProviderUnavailable),
    row(133004, 503, "(#133004) Server temporarily unavailable", Some("Server is temporarily unavailable."), ProviderUnavailable),
];

#[test]
fn every_meta_code_of_the_contract_maps_to_its_unified_code() {
    for row in ROWS {
        let body = json_bytes(&graph_error(json!(row.code), row.message, row.details));
        let failure = failure(row.status, &body);
        let expected = ProviderFailure {
            code: row.expected,
            message: row.expected.default_message().to_string(),
            words: ProviderWords {
                status: Some(row.status),
                code: Some(row.code.to_string()),
                message: Some(row.message.to_string()),
                details: row.details.map(str::to_string),
            },
            retry_after_secs: None,
        };
        assert_eq!(failure, expected, "Meta code {}", row.code);
    }
}

#[test]
fn the_table_covers_every_code_of_the_contract() {
    for (unified, codes) in DOCUMENTED_META_CODES {
        for code in *codes {
            let row = ROWS.iter().find(|r| r.code == *code);
            assert!(
                row.is_some_and(|r| r.expected == *unified),
                "no row for {code}"
            );
        }
    }
    for code in [200, 201, 250, 299] {
        assert!(ROWS.iter().any(|r| r.code == code), "no row for {code}");
    }
    assert!(ROWS
        .iter()
        .all(|r| contract_code(r.code) == Some(r.expected)));
}

#[test]
fn the_mapping_is_exactly_the_contract_for_every_code_in_range() {
    for code in (-1_000..=200_000).chain([i64::MIN, i64::MAX, 2_494_055]) {
        assert_eq!(
            meta_error_code(code),
            contract_code(code),
            "Meta code {code}"
        );
    }
}

#[test]
fn outside_service_window_says_to_send_a_template() {
    let body = graph_error(json!(131047), "(#131047) Re-engagement message", None);
    let failure = failure(400, &json_bytes(&body));
    assert_eq!(failure.code, OutsideServiceWindow);
    assert!(
        failure.message.contains("send a template"),
        "{}",
        failure.message
    );
}

#[test]
fn code_as_a_string_is_accepted() {
    let body = graph_error(
        json!("131047"),
        "(#131047) Re-engagement message",
        Some("24 hours"),
    );
    let failure = failure(400, &json_bytes(&body));
    assert_eq!(failure.code, OutsideServiceWindow);
    assert_eq!(failure.words.code.as_deref(), Some("131047"));
    assert_eq!(failure.words.details.as_deref(), Some("24 hours"));
}

#[test]
fn http_429_and_5xx_decide_first_then_the_code_wins_over_the_status() {
    // docs/errors.md: HTTP 429 is rate_limited and a 5xx of any body is provider_unavailable;
    // otherwise Meta's code decides, whatever the status (Meta: don't key on the status).
    for (status, code, expected) in [
        (500, 131047, ProviderUnavailable),
        (503, 131026, ProviderUnavailable),
        (429, 190, RateLimited),
        (400, 2, ProviderUnavailable),
        (403, 131047, OutsideServiceWindow),
    ] {
        let failure = failure(status, &json_bytes(&graph_error(json!(code), "x", None)));
        assert_eq!(failure.code, expected, "{code} with HTTP {status}");
        assert_eq!(failure.words.status, Some(status));
    }
}

#[test]
fn an_error_inside_a_2xx_is_never_failed_over() {
    // Meta may have taken the message: provider_error (final), with Meta's code kept.
    for status in [200, 201] {
        for code in [131000, 132001, 130429, 190, 1] {
            let failure = failure(status, &json_bytes(&graph_error(json!(code), "x", None)));
            assert_eq!(failure.code, ProviderError, "{code} with HTTP {status}");
            assert_eq!(
                failure.words.code.as_deref(),
                Some(code.to_string().as_str())
            );
            assert_eq!(failure.words.status, Some(status));
        }
    }
}

#[test]
fn unmapped_codes_fall_back_to_the_http_status_and_keep_the_code() {
    for (status, expected) in [
        (400, ProviderError),
        (404, ProviderError),
        (500, ProviderUnavailable),
        (503, ProviderUnavailable),
        (429, RateLimited),
    ] {
        let body = graph_error(
            json!(131051),
            "(#131051) Unsupported message type",
            Some("Message type is not currently supported."),
        );
        let failure = failure(status, &json_bytes(&body));
        assert_eq!(failure.code, expected, "HTTP {status}");
        assert_eq!(failure.words.code.as_deref(), Some("131051"));
        assert_eq!(
            failure.words.message.as_deref(),
            Some("(#131051) Unsupported message type")
        );
        assert_eq!(
            failure.words.details.as_deref(),
            Some("Message type is not currently supported.")
        );
    }
    let failure = failure(400, &json_bytes(&graph_error(json!("WA-X"), "odd", None)));
    assert_eq!(
        (failure.code, failure.words.code.as_deref()),
        (ProviderError, Some("WA-X"))
    );
}

#[test]
fn rate_limit_with_retry_after_and_an_unknown_code() {
    let body = json_bytes(&graph_error(
        json!(999_999),
        "(#999999) Something new",
        None,
    ));
    let failure = classify_with(429, &[("Retry-After", "7")], &body).unwrap_err();
    assert_eq!(
        failure,
        ProviderFailure {
            code: RateLimited,
            message: RateLimited.default_message().into(),
            words: ProviderWords {
                status: Some(429),
                code: Some("999999".into()),
                message: Some("(#999999) Something new".into()),
                details: None,
            },
            retry_after_secs: Some(7),
        }
    );
    let mapped = json_bytes(&graph_error(
        json!(130429),
        "(#130429) Rate limit hit",
        None,
    ));
    let failure = classify_with(400, &[("retry-after", "30")], &mapped).unwrap_err();
    assert_eq!(
        (failure.code, failure.retry_after_secs),
        (RateLimited, Some(30))
    );
}

#[test]
fn error_subcode_and_non_string_details_do_not_disturb() {
    let mut body = graph_error(json!(100), "(#100) Invalid parameter", None);
    body["error"]["error_subcode"] = json!(2_494_010);
    body["error"]["error_data"] = json!({"details": {"nested": true}});
    let failure = failure(400, &json_bytes(&body));
    assert_eq!(failure.code, InvalidRequest);
    assert_eq!(failure.words.code.as_deref(), Some("100"));
    assert_eq!(failure.words.details, None);
}

#[test]
fn a_graph_error_without_a_message_keeps_the_raw_body() {
    let body = br#"{"error":{"code":131026}}"#;
    let failure = failure(400, body);
    assert_eq!(failure.code, RecipientUnreachable);
    assert_eq!(
        failure.words.message.as_deref(),
        Some(r#"{"error":{"code":131026}}"#)
    );
}

/// The answer when the body says nothing Meta-shaped: by HTTP status, raw text kept, no code.
fn by_status(
    code: ErrorCode,
    status: u16,
    raw: Option<&str>,
    retry_after_secs: Option<u64>,
) -> ProviderFailure {
    ProviderFailure {
        code,
        message: code.default_message().into(),
        words: ProviderWords {
            status: Some(status),
            code: None,
            message: raw.map(str::to_string),
            details: None,
        },
        retry_after_secs,
    }
}

#[test]
fn bodies_that_are_not_graph_errors_are_classified_by_status() {
    let html = "<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>";
    let truncated = r#"{"error":{"message":"(#131000) Something went wr"#;
    let cases: &[(u16, &str, ErrorCode, Option<&str>)] = &[
        (502, html, ProviderUnavailable, Some(html)),
        (503, "", ProviderUnavailable, None),
        (503, "  \n", ProviderUnavailable, None),
        (500, truncated, ProviderUnavailable, Some(truncated)),
        (
            400,
            r#"{"error":"string"}"#,
            ProviderError,
            Some(r#"{"error":"string"}"#),
        ),
        (
            403,
            r#"{"error":{"message":"no code","type":"OAuthException"}}"#,
            ProviderError,
            Some(r#"{"error":{"message":"no code","type":"OAuthException"}}"#),
        ),
        (
            400,
            r#"{"error":{"code":null}}"#,
            ProviderError,
            Some(r#"{"error":{"code":null}}"#),
        ),
        (
            400,
            r#"{"error":{"code":""}}"#,
            ProviderError,
            Some(r#"{"error":{"code":""}}"#),
        ),
        (404, "Not Found", ProviderError, Some("Not Found")),
        (301, "", ProviderError, None),
    ];
    for (status, body, code, raw) in cases {
        assert_eq!(
            failure(*status, body.as_bytes()),
            by_status(*code, *status, *raw, None),
            "{status} {body}"
        );
    }
    let failure = classify_with(
        429,
        &[("Retry-After", "7")],
        b"<html>Too Many Requests</html>",
    )
    .unwrap_err();
    assert_eq!(
        failure,
        by_status(
            RateLimited,
            429,
            Some("<html>Too Many Requests</html>"),
            Some(7)
        )
    );
}

#[test]
fn invalid_utf8_and_huge_bodies_are_kept_bounded() {
    let failure = failure(502, &[0xff, 0xfe, b'x']);
    assert_eq!(failure.code, ProviderUnavailable);
    assert_eq!(failure.words.message.as_deref(), Some("\u{fffd}\u{fffd}x"));
    let huge = "x".repeat(100_000);
    let failure = self::failure(500, huge.as_bytes());
    assert!(failure.words.message.is_some_and(|m| m.len() < 2200));
}

#[test]
fn success_with_a_message_id_is_accepted() {
    // The example response of meta-cloud-api-messages.txt.
    let documented = json!({
        "contacts": [{"input": "+16505551234", "wa_id": "16505551234"}],
        "messages": [{"id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA"}],
        "messaging_product": "whatsapp"
    });
    assert_eq!(
        classify(200, &json_bytes(&documented)),
        Ok(Accepted {
            provider_message_id: Some(
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA".into()
            ),
            provider_status: "accepted".into(),
        })
    );
    assert_eq!(
        classify(
            200,
            br#"{"messages":[{"id":"wamid.X","message_status":"held_for_quality_assessment"}]}"#
        ),
        Ok(Accepted {
            provider_message_id: Some("wamid.X".into()),
            provider_status: "held_for_quality_assessment".into()
        })
    );
    assert_eq!(
        classify(
            201,
            br#"{"messages":[{"id":"wamid.Y","message_status":"paused"}]}"#
        ),
        Ok(Accepted {
            provider_message_id: Some("wamid.Y".into()),
            provider_status: "paused".into()
        })
    );
}

#[test]
fn success_without_a_usable_id_is_a_provider_error_not_unavailable() {
    let bodies: &[&str] = &[
        r#"{"messaging_product":"whatsapp","contacts":[{"input":"+16505551234","wa_id":"16505551234"}]}"#,
        r#"{"messages":[]}"#,
        r#"{"messages":[{"id":""}]}"#,
        r#"{"messages":[{"id":42}]}"#,
        r#"{"messages":{"id":"wamid.X"}}"#,
        "<html>OK</html>",
        "",
    ];
    for body in bodies {
        let failure = failure(200, body.as_bytes());
        assert_eq!(failure.code, ProviderError, "{body}");
        assert_eq!(failure.words.status, Some(200));
        assert_eq!(failure.words.code, None);
        assert_eq!(
            failure.words.message.as_deref(),
            (!body.is_empty()).then_some(*body)
        );
        assert!(
            failure.message.contains("may or may not have been sent"),
            "{}",
            failure.message
        );
    }
}

#[test]
fn template_creation_success() {
    let response = |body: &'static [u8]| ProviderResponse {
        status: 200,
        headers: &[],
        body,
    };
    let adapter = adapter();
    assert_eq!(
        adapter.classify_template_creation(&response(
            br#"{"id":"594425479261596","status":"PENDING","category":"MARKETING"}"#
        )),
        Ok(TemplateCreated {
            id: "594425479261596".into(),
            status: "PENDING".into(),
            category: "MARKETING".into()
        })
    );
    assert_eq!(
        adapter.classify_template_creation(&response(br#"{"id":"594425479261597"}"#)),
        Ok(TemplateCreated {
            id: "594425479261597".into(),
            status: "PENDING".into(),
            category: String::new()
        })
    );
    let created = TemplateCreated {
        id: "1".into(),
        status: "APPROVED".into(),
        category: "UTILITY".into(),
    };
    assert_eq!(
        serde_json::to_value(&created).unwrap(),
        json!({"id": "1", "status": "APPROVED", "category": "UTILITY"})
    );
}

#[test]
fn template_creation_failures_are_classified_like_messages() {
    let adapter = adapter();
    let bodies = [
        (
            400,
            json_bytes(&graph_error(
                json!(100),
                "(#100) Invalid parameter",
                Some("Button at index 0 of type voice_call: ttl_minutes must be at least 1440."),
            )),
        ),
        (
            401,
            json_bytes(&graph_error(
                json!(190),
                "Error validating access token",
                None,
            )),
        ),
        (
            400,
            json_bytes(&graph_error(
                json!(132000),
                "(#132000) Number of parameters does not match",
                None,
            )),
        ),
        (502, b"<html>Bad Gateway</html>".to_vec()),
        (503, Vec::new()),
    ];
    for (status, body) in &bodies {
        let response = ProviderResponse {
            status: *status,
            headers: &[],
            body,
        };
        assert_eq!(
            adapter.classify_template_creation(&response),
            Err(adapter.classify(&response).unwrap_err()),
            "{status}"
        );
    }
    let response = ProviderResponse {
        status: 400,
        headers: &[],
        body: &bodies[0].1,
    };
    assert_eq!(
        adapter
            .classify_template_creation(&response)
            .unwrap_err()
            .code,
        InvalidRequest
    );

    for body in [
        &br#"{"status":"PENDING"}"#[..],
        br#"{"id":""}"#,
        b"",
        br#"{"messages":[{"id":"wamid.X"}]}"#,
    ] {
        let response = ProviderResponse {
            status: 200,
            headers: &[],
            body,
        };
        let failure = adapter.classify_template_creation(&response).unwrap_err();
        assert_eq!(failure.code, ProviderError);
        assert!(failure.message.contains("template"), "{}", failure.message);
    }
}
