//! Properties over arbitrary input: classification is total and honours the documented
//! fallbacks; rendering never panics and always adds what Switchboard adds.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{json, Value};
use switchboard_core::adapter::code_for_status;
use switchboard_core::arbitrary::{any_json, message_json, provider_body};
use switchboard_core::message::RecipientType;
use switchboard_core::parse::message_from_value;
use switchboard_core::{validate, Adapter, ErrorCode, ProviderResponse, ValidationPolicy};

/// `error.code` of a Graph error body, read independently of the adapter.
fn graph_code(body: &Value) -> Option<String> {
    match body.get("error")?.get("code")? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Graph error bodies (which the shared `provider_body()` rarely produces): every mapped code,
/// arbitrary numbers, codes as strings, odd JSON in every field, sometimes beside `messages`.
fn graph_error_body() -> impl Strategy<Value = Vec<u8>> {
    let mapped: Vec<i64> = DOCUMENTED_META_CODES
        .iter()
        .flat_map(|(_, codes)| codes.iter().copied())
        .chain(200..=299)
        .collect();
    let code = prop_oneof![
        4 => prop::sample::select(mapped.clone()).prop_map(Value::from),
        1 => prop::sample::select(mapped).prop_map(|c| Value::from(c.to_string())),
        1 => any::<i64>().prop_map(Value::from),
        1 => any_json(),
    ];
    let text = prop_oneof![".{0,40}".prop_map(Value::from), any_json()];
    (code, text.clone(), text, any::<bool>()).prop_map(|(code, message, details, with_messages)| {
        let mut body = json!({"error": {"message": message, "type": "OAuthException", "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details},
            "fbtrace_id": "AZ7Dq2gRhEiJ8mXYpcGVt1K"}});
        if with_messages {
            body["messages"] = json!([{"id": "wamid.X"}]);
        }
        serde_json::to_vec(&body).unwrap_or_default()
    })
}

fn message_id(body: &Value) -> Option<&str> {
    body.get("messages")?
        .get(0)?
        .get("id")?
        .as_str()
        .filter(|id| !id.is_empty())
}

proptest! {
    // The shared strategies rarely produce a parseable message: run many cases.
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn classify_is_total_and_falls_back_on_the_status(
        status in 100u16..600,
        body in prop_oneof![provider_body(), graph_error_body()],
        retry_after in proptest::option::of("[0-9]{1,4}|[a-zA-Z ,:0-9]{0,30}"),
    ) {
        let headers: Vec<(String, String)> =
            retry_after.iter().map(|v| ("retry-after".to_string(), v.clone())).collect();
        let response = ProviderResponse { status, headers: &headers, body: &body };
        let adapter = adapter();
        let result = adapter.classify(&response);
        let _ = adapter.classify_template_creation(&response);

        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let success = (200..300).contains(&status);
        if let Some(id) = json.as_ref().and_then(message_id).filter(|_| success) {
            let accepted = result.expect("a 2xx with a message id is accepted");
            prop_assert_eq!(accepted.provider_message_id.as_deref(), Some(id));
            return Ok(());
        }
        let failure = result.expect_err("anything else is a failure");
        prop_assert_eq!(failure.words.status, Some(status));
        prop_assert_eq!(failure.retry_after_secs, response.retry_after_secs());
        let code = json.as_ref().and_then(graph_code);
        prop_assert_eq!(&failure.words.code, &code);
        if code.is_some() {
            let error = &json.as_ref().expect("a code came from JSON")["error"];
            let raw = Some(response.body_text()).filter(|t| !t.is_empty());
            let message = error["message"].as_str().map(str::to_string).or(raw);
            prop_assert_eq!(&failure.words.message, &message);
            let details = error["error_data"]["details"].as_str().map(str::to_string);
            prop_assert_eq!(&failure.words.details, &details);
        }
        let mapped = code.and_then(|c| c.trim().parse().ok()).and_then(contract_code);
        // 429 and any 5xx decide by status; an error inside a 2xx is provider_error (Meta may
        // have taken the message); otherwise Meta's code, then the status.
        match mapped {
            _ if status == 429 || status >= 500 => prop_assert_eq!(failure.code, code_for_status(status)),
            _ if success => prop_assert_eq!(failure.code, ErrorCode::ProviderError),
            Some(unified) => prop_assert_eq!(failure.code, unified),
            None => prop_assert_eq!(failure.code, code_for_status(status)),
        }
    }

    #[test]
    fn render_never_panics_and_adds_what_the_contract_adds(value in message_json()) {
        let Ok(message) = message_from_value(value) else { return Ok(()) };
        let valid = validate(&message, &ValidationPolicy::default()).is_ok();
        let request = adapter().render(&message, &context());
        // Meta can carry every message: only a missing phone_number_id is unsupported.
        let request = request.expect("Meta renders every parsed message");
        let Value::Object(mut body) = request.body else {
            return Err(TestCaseError::fail("body is not an object"));
        };
        prop_assert_eq!(body.remove("messaging_product"), Some(Value::from("whatsapp")));
        prop_assert_eq!(body.remove("biz_opaque_callback_data"), Some(Value::from(MESSAGE_ID)));
        let to = body.remove("to");
        if valid && message.recipient_type() == RecipientType::Individual {
            let digits = message.envelope.to.trim_start_matches('+');
            prop_assert_eq!(to, Some(Value::from(digits)));
        }
        // Nothing else changes: unknown fields included, the rest is the caller's object.
        let mut object = message.whatsapp_object();
        object.remove("to");
        prop_assert_eq!(body, object);
        prop_assert_eq!(request.url, "https://graph.facebook.com/v21.0/106540352242922/messages");
    }
}

/// The message fixtures of golden.rs.
const MESSAGE_FIXTURES: &[&str] = &[
    "voice_call_interactive",
    "voice_call_interactive_call_buttons_page",
    "voice_call_template_send",
    "voice_call_template_send_call_buttons_page",
    "audio_by_id",
    "text_preview_url",
    "image_link_caption",
    "video_link_caption",
    "document_id_filename",
    "sticker_by_id",
    "location",
    "contacts",
    "reaction",
    "reply_with_context",
    "reply_buttons",
    "list",
    "cta_url",
    "template_body_parameters",
    "group_text",
];

fn unknown_fields() -> impl Strategy<Value = Vec<(String, Value)>> {
    prop::collection::vec(("future_[a-z_]{1,8}", any_json()), 0..4)
}

proptest! {
    /// Any unknown field, at the top or in the content object, reaches Meta unchanged.
    #[test]
    fn unknown_fields_travel_with_every_documented_message(
        name in prop::sample::select(MESSAGE_FIXTURES),
        top in unknown_fields(),
        inner in unknown_fields(),
        with_plus in any::<bool>(),
    ) {
        let mut expected = fixture(name);
        let kind = expected["type"].as_str().expect("fixture has a type").to_string();
        for (key, value) in top {
            expected[key] = value;
        }
        let content = match kind.as_str() {
            "contacts" => &mut expected["contacts"][0],
            _ => &mut expected[&kind],
        };
        for (key, value) in inner {
            content[key] = value;
        }
        let mut input = expected.clone();
        let object = input.as_object_mut().expect("fixture is an object");
        object.remove("messaging_product");
        object.remove("biz_opaque_callback_data");
        if with_plus && object["recipient_type"] == "individual" {
            let to = format!("+{}", object["to"].as_str().expect("to is a string"));
            object.insert("to".into(), to.into());
        }
        let message = message_from_value(input).expect("parses");
        let request = adapter().render(&message, &context()).expect("renders");
        prop_assert_eq!(request.body, expected);
    }
}
