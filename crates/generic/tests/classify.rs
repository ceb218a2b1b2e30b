//! Every kind of answer the generic API (or something in front of it) may give.

use switchboard_core::ProviderResponse;
use switchboard_core::{Accepted, Adapter, ErrorCode};
use switchboard_generic::{GenericAdapter, GenericSettings, DEFAULT_PATH};

fn adapter() -> GenericAdapter {
    GenericAdapter::new(GenericSettings {
        base_url: "https://bsp.example.com".into(),
        path: DEFAULT_PATH.into(),
        auth: None,
        callbacks_url: None,
    })
}

const JSON_ERROR: &str = r#"{"code":"E42","message":"bad to"}"#;
const HTML: &str = "<html><body><h1>502 Bad Gateway</h1></body></html>";

#[test]
fn success_is_accepted_whatever_the_body() {
    for (status, body) in [
        (200, ""),
        (202, ""),
        (200, r#"{"id":"abc","status":"queued"}"#),
        (202, r#"{"code":"E42","message":"looks like an error"}"#),
        (200, HTML),
        (204, "\u{0}\u{ff}"),
    ] {
        let response = ProviderResponse {
            status,
            headers: &[],
            body: body.as_bytes(),
        };
        assert_eq!(
            adapter().classify(&response),
            // No documented response id: nothing is invented from the body.
            Ok(Accepted {
                provider_message_id: None,
                provider_status: "accepted".into()
            }),
            "{status} {body}"
        );
    }
}

#[test]
fn failures_by_status_keep_what_the_provider_said() {
    struct Case {
        status: u16,
        retry_after: Option<&'static str>,
        body: &'static str,
        code: ErrorCode,
        provider_code: Option<&'static str>,
        provider_message: Option<&'static str>,
        retry_after_secs: Option<u64>,
    }
    let case = |status, body, code, provider_code, provider_message| Case {
        status,
        retry_after: None,
        body,
        code,
        provider_code,
        provider_message,
        retry_after_secs: None,
    };
    use ErrorCode::*;
    let cases = [
        case(400, JSON_ERROR, InvalidRequest, Some("E42"), Some("bad to")),
        case(
            400,
            "to is missing",
            InvalidRequest,
            None,
            Some("to is missing"),
        ),
        case(422, JSON_ERROR, InvalidRequest, Some("E42"), Some("bad to")),
        case(
            422,
            r#"{"code":1042}"#,
            InvalidRequest,
            Some("1042"),
            Some(r#"{"code":1042}"#),
        ),
        case(401, "", ProviderAuthFailed, None, None),
        case(
            401,
            r#"{"message":"invalid token"}"#,
            ProviderAuthFailed,
            None,
            Some("invalid token"),
        ),
        case(
            403,
            "Forbidden",
            ProviderAuthFailed,
            None,
            Some("Forbidden"),
        ),
        case(
            404,
            "<html>Not Found</html>",
            ProviderError,
            None,
            Some("<html>Not Found</html>"),
        ),
        // `code` of an unusable JSON type, `message` empty: the raw text is kept instead.
        case(
            409,
            r#"{"code":{"x":1},"message":""}"#,
            ProviderError,
            None,
            Some(r#"{"code":{"x":1},"message":""}"#),
        ),
        case(418, "[1,2]", ProviderError, None, Some("[1,2]")),
        Case {
            retry_after: Some("9"),
            retry_after_secs: Some(9),
            ..case(
                429,
                r#"{"code":"E429","message":"slow down"}"#,
                RateLimited,
                Some("E429"),
                Some("slow down"),
            )
        },
        case(500, HTML, ProviderUnavailable, None, Some(HTML)),
        case(503, "", ProviderUnavailable, None, None),
        case(
            502,
            r#"{"code":"E5","mess"#,
            ProviderUnavailable,
            None,
            Some(r#"{"code":"E5","mess"#),
        ),
        case(
            503,
            JSON_ERROR,
            ProviderUnavailable,
            Some("E42"),
            Some("bad to"),
        ),
        case(302, "", ProviderError, None, None),
    ];
    for c in cases {
        let headers: Vec<(String, String)> = c
            .retry_after
            .map(|v| ("retry-after".to_string(), v.to_string()))
            .into_iter()
            .collect();
        let response = ProviderResponse {
            status: c.status,
            headers: &headers,
            body: c.body.as_bytes(),
        };
        let failure = adapter().classify(&response).expect_err("a failure");
        let at = format!("{} {}", c.status, c.body);
        assert_eq!(failure.code, c.code, "{at}");
        assert_eq!(failure.words.status, Some(c.status), "{at}");
        assert_eq!(failure.words.code.as_deref(), c.provider_code, "{at}");
        assert_eq!(failure.words.message.as_deref(), c.provider_message, "{at}");
        assert_eq!(failure.retry_after_secs, c.retry_after_secs, "{at}");
        assert_eq!(failure.words.details, None, "{at}");
        assert_eq!(failure.message, c.code.default_message(), "{at}");
    }
}

#[test]
fn a_huge_json_message_stays_bounded() {
    let body = format!(r#"{{"code":"E1","message":"{}"}}"#, "x".repeat(10_000));
    let response = ProviderResponse {
        status: 400,
        headers: &[],
        body: body.as_bytes(),
    };
    let failure = adapter().classify(&response).unwrap_err();
    assert_eq!(failure.words.code.as_deref(), Some("E1"));
    assert!(failure.words.message.unwrap().len() < 2200);
}
