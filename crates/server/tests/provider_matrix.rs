mod common;

// The provider matrix over real HTTP against the simulator: every message type through every
// provider that can carry it (the exact request each provider received), every documented
// provider error through the API (docs/errors.md), failover per code (docs/failover.md), provider bodies of
// every shape (never a 500), and timeouts.

use common::{Gateway, Reply};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};
use switchboard_sim::{Behaviour, RecordedRequest};

const TO: &str = "+14085551234";
const TO_DIGITS: &str = "14085551234";
const META_PATH: &str = "/meta/v24.0/106540352242922/messages";
const KALEYRA_IN_PATH: &str = "/kaleyra/in/v2/HXAP16XXXXXX97IN/whatsapp/+15550783881/messages";
const GENERIC_PATH: &str = "/generic/whatsapp/messages";
const KALEYRA_PODS: [&str; 3] = ["kaleyra/in", "kaleyra/sg", "kaleyra/eu"];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A gateway whose circuits cannot open during a table: rows that fail the same endpoint many
/// times in a row must each see the provider, not a skipped endpoint.
async fn gateway() -> Gateway {
    Gateway::start_with(|s| s.resilience.failure_threshold = 1_000_000).await
}

fn header<'a>(request: &'a RecordedRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `message` with `key` set to `value`.
fn with(message: &Value, key: &str, value: Value) -> Value {
    let mut message = message.clone();
    message[key] = value;
    message
}

fn object(value: &Value) -> Map<String, Value> {
    value.as_object().expect("a JSON object").clone()
}

/// The one error shape of docs/errors.md, whatever the code.
fn assert_error_shape(reply: &Reply, context: &str) {
    let error = &reply.body["error"];
    assert!(
        error.is_object(),
        "{context}: no error object: {}",
        reply.body
    );
    assert!(error["code"].is_string(), "{context}: {}", reply.body);
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{context}: {}",
        reply.body
    );
    assert!(error["retryable"].is_boolean(), "{context}: {}", reply.body);
    let request_id = reply.headers["x-request-id"].to_str().unwrap();
    assert_eq!(error["request_id"], request_id, "{context}");
}

/// `(endpoint, outcome)` of every attempt.
/// Asserts that the simulator received exactly one JSON POST, at `endpoint` and `path`, with
/// the credential header `auth` and the exact `body`.
fn assert_one_request(
    gw: &Gateway,
    name: &str,
    endpoint: &str,
    path: &str,
    auth: (&str, &str),
    body: &Value,
) {
    let received = gw.sim.requests();
    assert_eq!(received.len(), 1, "{name}: exactly one provider request");
    let request = &received[0];
    assert_eq!(request.endpoint, endpoint, "{name}");
    assert_eq!(request.method, "POST", "{name}");
    assert_eq!(request.path, path, "{name}");
    assert_eq!(header(request, auth.0), Some(auth.1), "{name}");
    assert_eq!(
        header(request, "content-type"),
        Some("application/json"),
        "{name}"
    );
    assert_eq!(&request.body, body, "{name}");
}

fn attempt_summary(attempts: &Value) -> Vec<(String, String)> {
    attempts
        .as_array()
        .unwrap_or_else(|| panic!("attempts is a list: {attempts}"))
        .iter()
        .map(|a| {
            (
                a["endpoint"].as_str().unwrap_or_default().to_string(),
                a["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn retryable(code: &str) -> bool {
    matches!(
        code,
        "rate_limited" | "provider_unavailable" | "provider_timeout" | "idempotency_key_in_use"
    )
}

fn http_status(code: &str) -> u16 {
    match code {
        "invalid_request" => 400,
        "insufficient_funds" => 402,
        "sender_not_permitted" | "account_restricted" => 403,
        "recipient_unreachable"
        | "outside_service_window"
        | "template_rejected"
        | "unsupported_by_provider" => 422,
        "rate_limited" => 429,
        "provider_auth_failed" | "provider_error" => 502,
        "provider_unavailable" => 503,
        "provider_timeout" => 504,
        other => panic!("no HTTP status in the table for {other}"),
    }
}

/// Whether the sandbox's `resilience.failover_on` lets the next endpoint be tried.
fn fails_over(code: &str) -> bool {
    matches!(
        code,
        "provider_unavailable" | "rate_limited" | "provider_auth_failed" | "insufficient_funds"
    )
}

fn assert_retry_after(reply: &Reply, expected_code: &str, context: &str) {
    if expected_code == "rate_limited" {
        let value = reply
            .headers
            .get("retry-after")
            .unwrap_or_else(|| panic!("{context}: a 429 needs Retry-After"))
            .to_str()
            .unwrap();
        let secs: u64 = value
            .parse()
            .unwrap_or_else(|_| panic!("{context}: Retry-After {value:?} is not seconds"));
        assert!(secs > 0, "{context}: Retry-After {secs}");
    } else {
        assert!(
            !reply.headers.contains_key("retry-after"),
            "{context}: Retry-After on a {}",
            reply.status
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Every message type through every provider that can carry it
// ---------------------------------------------------------------------------------------------

/// The contacts example of provider-docs/generic-regular-message.txt (which is Meta's shape).
fn doc_contacts() -> Value {
    json!([{
        "addresses": [{"city": "Menlo Park", "country": "United States", "country_code": "us",
                       "state": "CA", "street": "1 Hacker Way", "type": "HOME", "zip": "94025"}],
        "birthday": "2012-08-18",
        "emails": [{"email": "[email protected]", "type": "WORK"}],
        "name": {"first_name": "John", "formatted_name": "John Smith", "last_name": "Smith"},
        "org": {"company": "WhatsApp", "department": "Design", "title": "Manager"},
        "phones": [{"phone": "+1 (940) 555-1234", "type": "HOME"}],
        "urls": [{"url": "https://www.facebook.com", "type": "WORK"}]
    }])
}

/// The location example of provider-docs/generic-regular-message.txt.
fn doc_location() -> Value {
    json!({"longitude": -122.425332, "latitude": 37.758056, "name": "Facebook HQ",
           "address": "1 Hacker Way, Menlo Park, CA 94025"})
}

/// The reply-button example of provider-docs/generic-regular-message.txt.
fn doc_reply_buttons() -> Value {
    json!({"type": "button", "body": {"text": "your-text-body-content"},
           "action": {"buttons": [
               {"type": "reply", "reply": {"id": "0", "title": "First"}},
               {"type": "reply", "reply": {"id": "1", "title": "Second"}},
               {"type": "reply", "reply": {"id": "2", "title": "three"}}]}})
}

/// The cta_url example of provider-docs/kaleyra-cta-url-messages.txt.
fn doc_cta_url() -> Value {
    json!({"type": "cta_url",
           "header": {"type": "text", "text": "Available Dates"},
           "body": {"text": "Tap the button below to see available dates."},
           "footer": {"text": "Dates subject to change."},
           "action": {"name": "cta_url", "parameters": {"display_text": "See Dates",
               "url": "https://www.luckyshrub.com?clickID=kqDGWd24Q5TRwoEQTICY7W1JKoXvaZOXWAS7h1P76s0R7Paec4"}}})
}

/// The voice_call interactive example of provider-docs/meta-voice-call-buttons.txt.
fn doc_voice_call() -> Value {
    json!({"type": "voice_call",
           "body": {"text": "You can call us on WhatsApp now for faster service!"},
           "action": {"name": "voice_call", "parameters": {"display_text": "Call on WhatsApp",
               "ttl_minutes": 100, "payload": "payload data"}}})
}

/// The template with a voice_call button of provider-docs/meta-voice-call-buttons.txt.
fn doc_voice_call_template() -> Value {
    json!({"name": "wa_voice_call", "language": {"code": "en"},
           "components": [{"type": "button", "sub_type": "voice_call", "parameters": [
               {"type": "ttl_minutes", "ttl_minutes": 100},
               {"type": "payload", "payload": "payload data"}]}]})
}

fn doc_list() -> Value {
    json!({"type": "list",
           "header": {"type": "text", "text": "Choose Shipping Option"},
           "body": {"text": "Which shipping option do you prefer?"},
           "footer": {"text": "Lucky Shrub: Your gateway to succulents™"},
           "action": {"button": "Shipping Options", "sections": [
               {"title": "I want it ASAP!", "rows": [
                   {"id": "priority_express", "title": "Express Shipping", "description": "Next Day to 2 Days"},
                   {"id": "priority_mail", "title": "Priority Mail", "description": "1–3 Days"}]},
               {"title": "I can wait a bit", "rows": [
                   {"id": "usps_ground_advantage", "title": "USPS Ground Advantage", "description": "2–5 Days"}]}]}})
}

const WAMID: &str = "wamid.HBgLMTY0NjcwNDM1OTUVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";

/// Every message type (as the caller sends it, without Switchboard's own fields) that Meta and
/// Kaleyra carry unchanged inside their message object.
fn full_set() -> Vec<(&'static str, Value)> {
    let m = |kind: &str, content: Value| json!({"to": TO, "type": kind, kind: content});
    vec![
        (
            "text with preview_url",
            m(
                "text",
                json!({"body": "Visit https://www.luckyshrub.com", "preview_url": true}),
            ),
        ),
        (
            "image by id with caption",
            m(
                "image",
                json!({"id": "1479537139650973", "caption": "The best succulent ever?"}),
            ),
        ),
        (
            "audio by link",
            m(
                "audio",
                json!({"link": "https://www.luckyshrub.com/media/ringtone.ogg"}),
            ),
        ),
        (
            "video by link with caption",
            m(
                "video",
                json!({"link": "https://www.luckyshrub.com/media/potting.mp4", "caption": "Potting 101"}),
            ),
        ),
        (
            "document with filename",
            m(
                "document",
                json!({"link": "https://www.luckyshrub.com/invoices/FmOzfD9cKf.pdf",
                       "caption": "Your invoice", "filename": "lucky-shrub-invoice.pdf"}),
            ),
        ),
        ("sticker", m("sticker", json!({"id": "798882015472548"}))),
        ("location", m("location", doc_location())),
        ("contacts", m("contacts", doc_contacts())),
        (
            "reaction",
            m(
                "reaction",
                json!({"message_id": WAMID, "emoji": "\u{1F600}"}),
            ),
        ),
        (
            "reply with context",
            with(
                &m("text", json!({"body": "Thanks for your order!"})),
                "context",
                json!({"message_id": WAMID}),
            ),
        ),
        ("reply buttons", m("interactive", doc_reply_buttons())),
        ("list", m("interactive", doc_list())),
        ("cta_url", m("interactive", doc_cta_url())),
        ("voice_call", m("interactive", doc_voice_call())),
        (
            "template with voice_call button",
            m("template", doc_voice_call_template()),
        ),
        (
            "unknown nested fields",
            with(
                &m(
                    "interactive",
                    json!({"type": "button",
                           "body": {"text": "Pick one", "future_style": {"bold": true}},
                           "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A",
                                          "future_icon": {"set": "emoji", "codes": [1, 2.5, null, "x"]}}}],
                                      "future_action_flag": true},
                           "future_interactive": {"nested": {"deeper": [{"k": "v"}, [], {}]}}}),
                ),
                "future_top_level",
                json!({"a": {"b": [true, null, -0.5]}}),
            ),
        ),
    ]
}

/// Refs rotate over none, one and all three, so extra_info is checked in each shape.
fn refs_for(row: usize) -> Option<Value> {
    match row % 3 {
        0 => None,
        1 => Some(json!({"ref": "customer1"})),
        _ => Some(json!({"ref": "customer1", "ref1": "marketing", "ref2": "dictionary"})),
    }
}

/// Meta's body: the caller's message object (Switchboard's own fields removed) plus
/// `messaging_product`, `recipient_type` individual, `to` without `+`, and the callback id.
fn expected_meta_body(message: &Value, id: &Value) -> Value {
    let mut body = object(message);
    body.insert("messaging_product".into(), json!("whatsapp"));
    body.insert("recipient_type".into(), json!("individual"));
    body.insert("to".into(), json!(TO_DIGITS));
    body.insert("biz_opaque_callback_data".into(), id.clone());
    Value::Object(body)
}

/// Kaleyra's body: the same message object with `to` keeping its `+`, and extra_info.
fn expected_kaleyra_body(message: &Value, refs: Option<&Value>) -> Value {
    let mut messaging_object = object(message);
    messaging_object.insert("messaging_product".into(), json!("whatsapp"));
    messaging_object.insert("recipient_type".into(), json!("individual"));
    messaging_object.insert("to".into(), json!(TO));
    let mut extra_info = refs.map(object).unwrap_or_default();
    extra_info.insert("wa_source".into(), json!("api"));
    json!({"messaging_object": messaging_object, "extra_info": extra_info})
}

#[actix_web::test]
async fn every_message_type_reaches_meta_exactly() {
    let gw = gateway().await;
    let cases = full_set();
    for (row, (name, message)) in cases.iter().enumerate() {
        gw.sim.reset();
        let mut sent = with(message, "provider", json!("meta"));
        if let Some(refs) = refs_for(row) {
            sent["refs"] = refs;
        }
        let reply = gw.send(&sent).await;
        assert_eq!(reply.status, 202, "{name}: {}", reply.body);
        assert_eq!(reply.body["provider"], "meta", "{name}");
        assert_eq!(reply.body["endpoint"], "meta", "{name}");
        assert!(
            reply.body["provider_message_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("wamid.")),
            "{name}: {}",
            reply.body
        );
        let expected = expected_meta_body(message, &reply.body["id"]);
        let auth = ("authorization", "Bearer sim-meta-token");
        assert_one_request(&gw, name, "meta", META_PATH, auth, &expected);
    }
    assert_eq!(cases.len(), 16);
    gw.stop().await;
}

#[actix_web::test]
async fn every_message_type_reaches_the_first_kaleyra_pod_exactly() {
    let gw = gateway().await;
    for (row, (name, message)) in full_set().iter().enumerate() {
        gw.sim.reset();
        let refs = refs_for(row);
        let mut sent = message.clone();
        if let Some(refs) = &refs {
            sent["refs"] = refs.clone();
        }
        let reply = gw.send(&sent).await;
        assert_eq!(reply.status, 202, "{name}: {}", reply.body);
        assert_eq!(reply.body["provider"], "kaleyra", "{name}");
        assert_eq!(reply.body["endpoint"], "kaleyra/in", "{name}");
        assert!(
            reply.body["provider_message_id"]
                .as_str()
                .is_some_and(|id| id.starts_with('A')),
            "{name}: {}",
            reply.body
        );
        assert_eq!(
            attempt_summary(&reply.body["attempts"]),
            pairs(&[("kaleyra/in", "accepted")]),
            "{name}"
        );
        let expected = expected_kaleyra_body(message, refs.as_ref());
        let auth = ("api-key", "sim-kaleyra-key-in");
        assert_one_request(&gw, name, "kaleyra/in", KALEYRA_IN_PATH, auth, &expected);
    }
    gw.stop().await;
}

#[actix_web::test]
async fn what_the_generic_api_can_carry_reaches_it_exactly() {
    let gw = gateway().await;
    // (name, the caller's message, the field of the generic body that carries the content)
    let cases: Vec<(&str, Value, (&str, Value))> = vec![
        (
            "text",
            json!({"to": TO, "type": "text", "text": {"body": "Hello from Switchboard"}}),
            ("body", json!("Hello from Switchboard")),
        ),
        (
            "image by link",
            json!({"to": TO, "type": "image", "image": {"link": "http://domain.com/image"}}),
            ("body", json!("http://domain.com/image")),
        ),
        (
            "audio by link",
            json!({"to": TO, "type": "audio", "audio": {"link": "https://domain.com/audio.ogg"}}),
            ("body", json!("https://domain.com/audio.ogg")),
        ),
        (
            "video by link",
            json!({"to": TO, "type": "video", "video": {"link": "https://domain.com/video.mp4"}}),
            ("body", json!("https://domain.com/video.mp4")),
        ),
        (
            "document by link",
            json!({"to": TO, "type": "document", "document": {"link": "https://domain.com/invoice.pdf"}}),
            ("body", json!("https://domain.com/invoice.pdf")),
        ),
        (
            "contacts",
            json!({"to": TO, "type": "contacts", "contacts": doc_contacts()}),
            ("contacts", doc_contacts()),
        ),
        (
            "location",
            json!({"to": TO, "type": "location", "location": doc_location()}),
            ("location", doc_location()),
        ),
        (
            "reply buttons",
            json!({"to": TO, "type": "interactive", "interactive": doc_reply_buttons()}),
            ("interactive", doc_reply_buttons()),
        ),
    ];
    let callbacks = format!("{}/webhooks/legacy", gw.url);
    for (name, message, (key, content)) in &cases {
        gw.sim.reset();
        let reply = gw.send(&with(message, "provider", json!("legacy"))).await;
        assert_eq!(reply.status, 202, "{name}: {}", reply.body);
        assert_eq!(reply.body["provider"], "legacy", "{name}");
        assert_eq!(reply.body["endpoint"], "legacy", "{name}");
        let mut expected = json!({
            "from": "15550783881", "to": TO, "type": message["type"],
            "externalId": reply.body["id"], "callbacks": callbacks,
        });
        expected[*key] = content.clone();
        let auth = ("x-api-key", "sim-generic-key");
        assert_one_request(&gw, name, "generic", GENERIC_PATH, auth, &expected);
    }
    assert_eq!(cases.len(), 8);
    gw.stop().await;
}

#[actix_web::test]
async fn what_the_generic_api_cannot_carry_is_refused_and_nothing_is_sent() {
    let gw = gateway().await;
    let text = json!({"to": TO, "type": "text", "text": {"body": "Thanks!"}});
    // (name, the caller's message, the field the refusal must name)
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "template",
            json!({"to": TO, "type": "template", "template": doc_voice_call_template()}),
            "template",
        ),
        (
            "list",
            json!({"to": TO, "type": "interactive", "interactive": doc_list()}),
            "interactive",
        ),
        (
            "cta_url",
            json!({"to": TO, "type": "interactive", "interactive": doc_cta_url()}),
            "interactive",
        ),
        (
            "voice_call",
            json!({"to": TO, "type": "interactive", "interactive": doc_voice_call()}),
            "interactive",
        ),
        (
            "sticker",
            json!({"to": TO, "type": "sticker", "sticker": {"link": "https://domain.com/s.webp"}}),
            "sticker",
        ),
        (
            "reaction",
            json!({"to": TO, "type": "reaction", "reaction": {"message_id": WAMID, "emoji": "\u{1F600}"}}),
            "reaction",
        ),
        (
            "reply via context",
            with(&text, "context", json!({"message_id": WAMID})),
            "context",
        ),
        (
            "media caption",
            json!({"to": TO, "type": "image", "image": {"link": "https://domain.com/i.png", "caption": "Look"}}),
            "image.caption",
        ),
        (
            "media id",
            json!({"to": TO, "type": "image", "image": {"id": "1479537139650973"}}),
            "image.id",
        ),
        (
            "document filename",
            json!({"to": TO, "type": "document", "document": {"link": "https://domain.com/i.pdf", "filename": "i.pdf"}}),
            "document.filename",
        ),
        (
            "text preview_url",
            json!({"to": TO, "type": "text", "text": {"body": "https://x.example", "preview_url": true}}),
            "text.preview_url",
        ),
        (
            "group recipient",
            json!({"to": "120363025246125486@g.us", "recipient_type": "group", "type": "text", "text": {"body": "x"}}),
            "recipient_type",
        ),
        (
            "reply buttons with a header",
            json!({"to": TO, "type": "interactive", "interactive": with(&doc_reply_buttons(), "header", json!({"type": "text", "text": "Hi"}))}),
            "interactive.header",
        ),
        (
            "unknown top-level field",
            with(&text, "future_top_level", json!({"a": 1})),
            "future_top_level",
        ),
    ];
    for (name, message, field) in &cases {
        let reply = gw.send(&with(message, "provider", json!("legacy"))).await;
        assert_eq!(reply.status, 422, "{name}: {}", reply.body);
        assert_eq!(reply.error_code(), "unsupported_by_provider", "{name}");
        assert_error_shape(&reply, name);
        assert_eq!(reply.body["error"]["retryable"], false, "{name}");
        let message_text = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message_text.contains("legacy") && message_text.contains(field),
            "{name}: the refusal must name the endpoint and {field}: {message_text}"
        );
        let attempts = &reply.body["error"]["attempts"];
        assert_eq!(
            attempt_summary(attempts),
            pairs(&[("legacy", "skipped")]),
            "{name}"
        );
        assert_eq!(attempts[0]["reason"], "unsupported", "{name}");
        assert!(
            gw.sim.requests().is_empty(),
            "{name}: the simulator must receive nothing"
        );
    }
    assert_eq!(cases.len(), 14);
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Every provider error row of docs/errors.md through the HTTP API
// ---------------------------------------------------------------------------------------------

fn text_via(provider: &str) -> Value {
    json!({"to": TO, "type": "text", "text": {"body": "Hello"}, "provider": provider})
}

/// Meta's documented codes (docs/errors.md) with the unified code each must become.
const META_CODES: &[(&str, &[u32])] = &[
    ("invalid_request", &[100, 131008, 131009, 135000]),
    (
        "recipient_unreachable",
        &[131026, 131021, 130472, 131050, 130403],
    ),
    ("outside_service_window", &[131047]),
    (
        "template_rejected",
        &[
            132000, 132001, 132005, 132007, 132012, 132015, 132016, 132068,
        ],
    ),
    ("insufficient_funds", &[131042]),
    (
        "sender_not_permitted",
        &[10, 200, 250, 299, 131005, 33, 133010],
    ),
    ("account_restricted", &[368, 131031, 130497]),
    (
        "rate_limited",
        &[4, 80007, 130429, 131048, 131056, 132069, 133016],
    ),
    ("provider_auth_failed", &[0, 190]),
    ("provider_unavailable", &[2, 131000, 131016, 131057, 133004]),
    // Not in the table: the provider's code is kept and the HTTP status decides
    // (code 3 comes with HTTP 500, the others with 400).
    ("provider_error", &[1, 131049, 131051, 131053]),
    ("provider_unavailable", &[3]),
];

#[actix_web::test]
async fn every_documented_meta_error_maps_as_the_contract_says() {
    let gw = gateway().await;
    let mut rows = 0;
    for (expected, codes) in META_CODES {
        for code in *codes {
            let context = format!("Meta {code}");
            gw.sim.reset();
            gw.sim
                .set_behaviour("meta", Behaviour::Error(code.to_string()));
            let reply = gw.send(&text_via("meta")).await;
            let received = gw.sim.requests_to("meta");
            assert_eq!(received.len(), 1, "{context}: exactly one request");
            assert_eq!(gw.sim.requests().len(), 1, "{context}: nothing elsewhere");
            let answered = received[0].answered_status.expect("the simulator answered");

            assert_eq!(
                reply.status,
                http_status(expected),
                "{context}: {}",
                reply.body
            );
            assert_error_shape(&reply, &context);
            let error = &reply.body["error"];
            assert_eq!(error["code"], *expected, "{context}: {}", reply.body);
            assert_eq!(error["retryable"], retryable(expected), "{context}");
            assert_eq!(error["provider"], "meta", "{context}");
            assert_eq!(error["endpoint"], "meta", "{context}");
            assert_eq!(error["provider_code"], code.to_string(), "{context}");
            assert_eq!(error["provider_status"], answered, "{context}");
            let provider_message = error["provider_message"].as_str().unwrap_or_default();
            assert!(!provider_message.is_empty(), "{context}: {}", reply.body);
            if *code != 190 {
                // Graph's own title, verbatim: "(#<code>) <title>".
                assert!(
                    provider_message.starts_with(&format!("(#{code}) ")),
                    "{context}: {provider_message}"
                );
            }
            assert_eq!(
                attempt_summary(&error["attempts"]),
                pairs(&[("meta", "failed")]),
                "{context}"
            );
            assert_eq!(
                error["attempts"][0]["error"]["code"], *expected,
                "{context}"
            );
            assert_retry_after(&reply, expected, &context);
            rows += 1;
        }
    }
    assert_eq!(
        rows, 48,
        "42 documented codes, 250 from the 200–299 range, 5 unmapped"
    );
    gw.stop().await;
}

/// Kaleyra's documented send failures: code, unified code, the `message` of the documented body.
const KALEYRA_CODES: &[(&str, &str, &str)] = &[
    (
        "RBC001",
        "provider_auth_failed",
        "Incorrect SID or API key.",
    ),
    (
        "WA401",
        "sender_not_permitted",
        "Phone number is not present or does not belong to the account.",
    ),
    (
        "WA-401",
        "sender_not_permitted",
        "API is not available for given customer.Please contact support for more info",
    ),
    (
        "WA400",
        "invalid_request",
        "Refer to correct payload format",
    ),
    (
        "E110",
        "insufficient_funds",
        "Please check your balance, You have a low balance!",
    ),
    (
        "WAV2101",
        "insufficient_funds",
        "Account daily limit reached. Please try again tomorrow or contact support.",
    ),
    ("WA500", "provider_unavailable", "Please try again later"),
];

#[actix_web::test]
async fn every_documented_kaleyra_error_maps_as_the_contract_says() {
    let gw = gateway().await;
    for (code, expected, doc_message) in KALEYRA_CODES {
        let context = format!("Kaleyra {code}");
        gw.sim.reset();
        for pod in KALEYRA_PODS {
            gw.sim
                .set_behaviour(pod, Behaviour::Error(code.to_string()));
        }
        let reply = gw.send(&text_via("kaleyra")).await;
        assert_eq!(
            reply.status,
            http_status(expected),
            "{context}: {}",
            reply.body
        );
        assert_error_shape(&reply, &context);
        let error = &reply.body["error"];
        assert_eq!(error["code"], *expected, "{context}: {}", reply.body);
        assert_eq!(error["retryable"], retryable(expected), "{context}");
        assert_eq!(error["provider"], "kaleyra", "{context}");
        assert_eq!(error["provider_code"], *code, "{context}");
        assert_eq!(error["provider_message"], *doc_message, "{context}");

        // Codes in failover_on walk every pod (each answering the same); others stop at once.
        let tried: &[&str] = if fails_over(expected) {
            &KALEYRA_PODS
        } else {
            &KALEYRA_PODS[..1]
        };
        let received: Vec<String> = gw.sim.requests().into_iter().map(|r| r.endpoint).collect();
        assert_eq!(received, tried, "{context}");
        let last = gw.sim.requests_to(tried[tried.len() - 1]);
        assert_eq!(
            error["provider_status"],
            last[0].answered_status.expect("answered"),
            "{context}"
        );
        assert_eq!(error["endpoint"], tried[tried.len() - 1], "{context}");
        let expected_attempts: Vec<(&str, &str)> = tried.iter().map(|e| (*e, "failed")).collect();
        assert_eq!(
            attempt_summary(&error["attempts"]),
            pairs(&expected_attempts),
            "{context}"
        );
        assert_retry_after(&reply, expected, &context);
    }
    gw.stop().await;
}

#[actix_web::test]
async fn every_generic_error_status_maps_as_the_contract_says() {
    let gw = gateway().await;
    let cases: &[(u16, &str, &str)] = &[
        (400, "invalid_request", "bad request"),
        (401, "provider_auth_failed", "unauthorized"),
        (403, "provider_auth_failed", "forbidden"),
        (422, "invalid_request", "unprocessable entity"),
        (429, "rate_limited", "too many requests"),
        (500, "provider_unavailable", "internal server error"),
    ];
    for (status, expected, sim_message) in cases {
        let context = format!("generic {status}");
        gw.sim.reset();
        gw.sim
            .set_behaviour("generic", Behaviour::Error(status.to_string()));
        let reply = gw.send(&text_via("legacy")).await;
        assert_eq!(
            reply.status,
            http_status(expected),
            "{context}: {}",
            reply.body
        );
        assert_error_shape(&reply, &context);
        let error = &reply.body["error"];
        assert_eq!(error["code"], *expected, "{context}: {}", reply.body);
        assert_eq!(error["retryable"], retryable(expected), "{context}");
        assert_eq!(error["provider"], "legacy", "{context}");
        assert_eq!(error["endpoint"], "legacy", "{context}");
        assert_eq!(error["provider_status"], *status, "{context}");
        assert_eq!(error["provider_code"], status.to_string(), "{context}");
        assert_eq!(error["provider_message"], *sim_message, "{context}");
        assert_eq!(gw.sim.requests_to("generic").len(), 1, "{context}");
        assert_eq!(gw.sim.requests().len(), 1, "{context}");
        assert_retry_after(&reply, expected, &context);
    }
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 3. Failover per code
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn kaleyra_codes_in_failover_on_move_to_the_next_pod() {
    let gw = gateway().await;
    let cases: &[(&str, &str, u16, &str)] = &[
        (
            "WA500",
            "provider_unavailable",
            500,
            "Please try again later",
        ),
        (
            "RBC001",
            "provider_auth_failed",
            401,
            "Incorrect SID or API key.",
        ),
        (
            "E110",
            "insufficient_funds",
            400,
            "Please check your balance, You have a low balance!",
        ),
        (
            "WAV2101",
            "insufficient_funds",
            400,
            "Account daily limit reached. Please try again tomorrow or contact support.",
        ),
    ];
    for (code, expected, status, doc_message) in cases {
        gw.sim.reset();
        gw.sim
            .set_behaviour("kaleyra/in", Behaviour::Error(code.to_string()));
        let reply = gw
            .send(&json!({"to": TO, "type": "text", "text": {"body": "x"}}))
            .await;
        assert_eq!(reply.status, 202, "{code}: {}", reply.body);
        assert_eq!(reply.body["endpoint"], "kaleyra/sg", "{code}");
        assert_eq!(reply.body["provider"], "kaleyra", "{code}");
        let attempts = &reply.body["attempts"];
        assert_eq!(
            attempt_summary(attempts),
            pairs(&[("kaleyra/in", "failed"), ("kaleyra/sg", "accepted")]),
            "{code}"
        );
        assert_eq!(attempts[0]["error"]["code"], *expected, "{code}");
        assert_eq!(attempts[0]["error"]["provider_code"], *code, "{code}");
        assert_eq!(attempts[0]["error"]["provider_status"], *status, "{code}");
        assert_eq!(
            attempts[0]["error"]["provider_message"], *doc_message,
            "{code}"
        );
        assert!(attempts[1].get("error").is_none(), "{code}");
        assert_eq!(gw.sim.requests_to("kaleyra/in").len(), 1, "{code}");
        assert_eq!(gw.sim.requests_to("kaleyra/sg").len(), 1, "{code}");
        assert_eq!(gw.sim.requests().len(), 2, "{code}: nothing after sg");
    }
    gw.stop().await;
}

#[actix_web::test]
async fn final_kaleyra_codes_are_not_failed_over() {
    let gw = gateway().await;
    let cases: &[(&str, &str)] = &[
        ("WA400", "invalid_request"),
        ("WA401", "sender_not_permitted"),
        ("WA-401", "sender_not_permitted"),
    ];
    for (code, expected) in cases {
        gw.sim.reset();
        gw.sim
            .set_behaviour("kaleyra/in", Behaviour::Error(code.to_string()));
        let reply = gw
            .send(&json!({"to": TO, "type": "text", "text": {"body": "x"}}))
            .await;
        assert_eq!(
            reply.status,
            http_status(expected),
            "{code}: {}",
            reply.body
        );
        assert_eq!(reply.error_code(), *expected, "{code}");
        assert_eq!(reply.body["error"]["endpoint"], "kaleyra/in", "{code}");
        assert_eq!(
            attempt_summary(&reply.body["error"]["attempts"]),
            pairs(&[("kaleyra/in", "failed")]),
            "{code}"
        );
        assert_eq!(
            gw.sim.requests().len(),
            1,
            "{code}: exactly one provider request in total"
        );
    }
    gw.stop().await;
}

#[actix_web::test]
async fn final_meta_codes_are_not_failed_over_to_legacy() {
    let gw = gateway().await;
    let cases: &[(&str, &str)] = &[
        ("131026", "recipient_unreachable"),
        ("131047", "outside_service_window"),
    ];
    for (code, expected) in cases {
        gw.sim.reset();
        for pod in KALEYRA_PODS {
            gw.sim.set_behaviour(pod, Behaviour::Down);
        }
        gw.sim
            .set_behaviour("meta", Behaviour::Error(code.to_string()));
        let reply = gw
            .send(&json!({"to": TO, "type": "text", "text": {"body": "x"}}))
            .await;
        assert_eq!(reply.status, 422, "{code}: {}", reply.body);
        assert_eq!(reply.error_code(), *expected, "{code}");
        let error = &reply.body["error"];
        assert_eq!(error["endpoint"], "meta", "{code}");
        assert_eq!(error["provider_code"], *code, "{code}");
        assert_eq!(
            attempt_summary(&error["attempts"]),
            pairs(&[
                ("kaleyra/in", "failed"),
                ("kaleyra/sg", "failed"),
                ("kaleyra/eu", "failed"),
                ("meta", "failed"),
            ]),
            "{code}"
        );
        for i in 0..3 {
            assert_eq!(
                error["attempts"][i]["error"]["code"], "provider_unavailable",
                "{code}"
            );
            assert_eq!(error["attempts"][i]["error"]["provider_status"], 503);
        }
        assert_eq!(error["attempts"][3]["error"]["code"], *expected, "{code}");
        assert_eq!(gw.sim.requests_to("meta").len(), 1, "{code}: one attempt");
        assert!(
            gw.sim.requests_to("generic").is_empty(),
            "{code}: legacy must receive nothing"
        );
    }
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 4. Provider bodies of every shape never produce a 500
// ---------------------------------------------------------------------------------------------

/// A body that is neither JSON nor text anyone would write (still UTF-8, as `Raw` takes text).
const GARBAGE: &str = "\u{0}\u{1}\u{2}\u{7f}\u{fffd}\u{1b}[31m\u{ff}\u{feff}garbage{[\"\u{10ffff}";

struct Shape {
    name: &'static str,
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    /// Unified code per provider (`"accepted"` = 202): meta, kaleyra, generic.
    expected: [&'static str; 3],
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "HTML 500",
        status: 500,
        headers: &[("content-type", "text/html")],
        body: "<html><head><title>500 Internal Server Error</title></head><body><h1>Oops</h1></body></html>",
        expected: ["provider_unavailable"; 3],
    },
    Shape {
        name: "empty 502",
        status: 502,
        headers: &[],
        body: "",
        expected: ["provider_unavailable"; 3],
    },
    Shape {
        name: "truncated JSON at 400",
        status: 400,
        headers: &[("content-type", "application/json")],
        body: r#"{"error": {"code": 13"#,
        expected: ["provider_error", "provider_error", "invalid_request"],
    },
    Shape {
        name: "null at 200",
        status: 200,
        headers: &[("content-type", "application/json")],
        body: "null",
        expected: ["provider_error", "provider_error", "accepted"],
    },
    Shape {
        name: "[] at 202",
        status: 202,
        headers: &[("content-type", "application/json")],
        body: "[]",
        expected: ["provider_error", "provider_error", "accepted"],
    },
    Shape {
        name: "200 {\"messages\": []}",
        status: 200,
        headers: &[("content-type", "application/json")],
        body: r#"{"messages": []}"#,
        expected: ["provider_error", "provider_error", "accepted"],
    },
    Shape {
        name: "202 WA202 without message_id",
        status: 202,
        headers: &[("content-type", "application/json")],
        body: r#"{"code":"WA202","data":{}}"#,
        expected: ["provider_error", "provider_error", "accepted"],
    },
    Shape {
        name: "random bytes at 200",
        status: 200,
        headers: &[],
        body: GARBAGE,
        expected: ["provider_error", "provider_error", "accepted"],
    },
    Shape {
        name: "random bytes at 400",
        status: 400,
        headers: &[],
        body: GARBAGE,
        expected: ["provider_error", "provider_error", "invalid_request"],
    },
    Shape {
        name: "random bytes at 503",
        status: 503,
        headers: &[],
        body: GARBAGE,
        expected: ["provider_unavailable"; 3],
    },
    Shape {
        name: "HTML 429 with Retry-After",
        status: 429,
        headers: &[("retry-after", "7"), ("content-type", "text/html")],
        body: "<html><body>Too Many Requests</body></html>",
        expected: ["rate_limited"; 3],
    },
];

fn raw(shape: &Shape) -> Behaviour {
    Behaviour::Raw {
        status: shape.status,
        headers: shape
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: shape.body.to_string(),
    }
}

#[actix_web::test]
async fn provider_bodies_of_every_shape_never_produce_a_500() {
    let gw = gateway().await;
    // (restrict to, simulator endpoints answering the shape, index into `expected`)
    let providers: [(&str, &[&str], usize); 3] = [
        ("meta", &["meta"], 0),
        ("kaleyra", &KALEYRA_PODS, 1),
        ("legacy", &["generic"], 2),
    ];
    let mut rows = 0;
    for shape in SHAPES {
        for (provider, endpoints, column) in providers {
            let expected = shape.expected[column];
            let context = format!("{} from {provider}", shape.name);
            gw.sim.reset();
            for endpoint in endpoints {
                gw.sim.set_behaviour(endpoint, raw(shape));
            }
            let reply = gw.send(&text_via(provider)).await;
            assert_ne!(reply.status, 500, "{context}: {}", reply.body);
            rows += 1;
            if expected == "accepted" {
                assert_eq!(reply.status, 202, "{context}: {}", reply.body);
                assert_eq!(gw.sim.requests().len(), 1, "{context}");
                continue;
            }
            assert_eq!(
                reply.status,
                http_status(expected),
                "{context}: {}",
                reply.body
            );
            assert_error_shape(&reply, &context);
            let error = &reply.body["error"];
            assert_eq!(error["code"], expected, "{context}: {}", reply.body);
            assert_eq!(error["retryable"], retryable(expected), "{context}");
            assert_eq!(error["provider_status"], shape.status, "{context}");
            // The raw text is kept when nothing in it could be read.
            let raw_text = shape.body.trim();
            if raw_text.is_empty() {
                assert!(
                    error["provider_message"].as_str().is_none_or(str::is_empty),
                    "{context}: {}",
                    reply.body
                );
            } else {
                assert_eq!(error["provider_message"], raw_text, "{context}");
            }
            assert_retry_after(&reply, expected, &context);
            if expected == "rate_limited" {
                assert_eq!(reply.headers["retry-after"], "7", "{context}");
            }
            // 2xx without an id may have been taken: never failed over. Failover codes walk
            // every pod of the restricted Kaleyra route.
            let expected_requests = if fails_over(expected) {
                endpoints.len()
            } else {
                1
            };
            assert_eq!(
                gw.sim.requests().len(),
                expected_requests,
                "{context}: {}",
                reply.body
            );
        }
    }
    assert_eq!(rows, SHAPES.len() * 3);
    gw.stop().await;
}

#[actix_web::test]
async fn success_without_an_id_is_a_final_provider_error_on_the_full_route() {
    let gw = gateway().await;
    let text = json!({"to": TO, "type": "text", "text": {"body": "x"}});
    let no_id: Vec<&Shape> = SHAPES
        .iter()
        .filter(|s| (200..300).contains(&s.status))
        .collect();
    assert_eq!(no_id.len(), 5);
    for shape in &no_id {
        // Kaleyra pod "in" says success without an id: sg, eu, meta and legacy stay untouched.
        let context = format!("{} from kaleyra/in", shape.name);
        gw.sim.reset();
        gw.sim.set_behaviour("kaleyra/in", raw(shape));
        let reply = gw.send(&text).await;
        assert_eq!(reply.status, 502, "{context}: {}", reply.body);
        assert_eq!(reply.error_code(), "provider_error", "{context}");
        assert_eq!(reply.body["error"]["retryable"], false, "{context}");
        assert_eq!(reply.body["error"]["endpoint"], "kaleyra/in", "{context}");
        assert_eq!(gw.sim.requests().len(), 1, "{context}: no failover");

        // Meta says success without an id after the Kaleyra pods are down: legacy untouched.
        let context = format!("{} from meta", shape.name);
        gw.sim.reset();
        for pod in KALEYRA_PODS {
            gw.sim.set_behaviour(pod, Behaviour::Down);
        }
        gw.sim.set_behaviour("meta", raw(shape));
        let reply = gw.send(&text).await;
        assert_eq!(reply.status, 502, "{context}: {}", reply.body);
        assert_eq!(reply.error_code(), "provider_error", "{context}");
        assert_eq!(reply.body["error"]["endpoint"], "meta", "{context}");
        assert_eq!(
            attempt_summary(&reply.body["error"]["attempts"]),
            pairs(&[
                ("kaleyra/in", "failed"),
                ("kaleyra/sg", "failed"),
                ("kaleyra/eu", "failed"),
                ("meta", "failed"),
            ]),
            "{context}"
        );
        assert_eq!(gw.sim.requests_to("meta").len(), 1, "{context}");
        assert!(
            gw.sim.requests_to("generic").is_empty(),
            "{context}: no failover to legacy"
        );
    }
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Timeout
// ---------------------------------------------------------------------------------------------

const SHORT_TIMEOUT: Duration = Duration::from_millis(300);

async fn gateway_with_short_timeouts(retry_on_timeout: bool) -> Gateway {
    Gateway::start_with(|s| {
        s.resilience.failure_threshold = 1_000_000;
        s.resilience.retry_on_timeout = retry_on_timeout;
        common::shorten_timeouts(s, SHORT_TIMEOUT);
    })
    .await
}

#[actix_web::test]
async fn a_provider_that_never_answers_is_a_final_timeout() {
    let gw = gateway_with_short_timeouts(false).await;
    gw.sim.set_behaviour("kaleyra/in", Behaviour::BlackHole);
    let started = Instant::now();
    let reply = gw
        .send(&json!({"to": TO, "type": "text", "text": {"body": "x"}}))
        .await;
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 504, "{}", reply.body);
    assert_eq!(reply.error_code(), "provider_timeout");
    assert_error_shape(&reply, "timeout");
    let error = &reply.body["error"];
    assert_eq!(error["retryable"], true);
    assert_eq!(error["provider"], "kaleyra");
    assert_eq!(error["endpoint"], "kaleyra/in");
    assert!(
        error.get("provider_status").is_none(),
        "no response, so no provider_status: {}",
        reply.body
    );
    assert_eq!(
        attempt_summary(&error["attempts"]),
        pairs(&[("kaleyra/in", "failed")])
    );
    assert_eq!(error["attempts"][0]["error"]["code"], "provider_timeout");
    assert!(
        elapsed >= SHORT_TIMEOUT && elapsed < Duration::from_secs(3),
        "answered after {elapsed:?}"
    );
    let received = gw.sim.requests();
    assert_eq!(
        received.len(),
        1,
        "exactly one provider request: no failover"
    );
    assert_eq!(received[0].endpoint, "kaleyra/in");
    assert_eq!(
        received[0].answered_status, None,
        "the black hole never answered"
    );
    gw.stop().await;
}

#[actix_web::test]
async fn a_timeout_is_failed_over_only_when_retry_on_timeout_is_set() {
    let gw = gateway_with_short_timeouts(true).await;
    gw.sim.set_behaviour("kaleyra/in", Behaviour::BlackHole);
    let started = Instant::now();
    let reply = gw
        .send(&json!({"to": TO, "type": "text", "text": {"body": "x"}}))
        .await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["endpoint"], "kaleyra/sg");
    assert_eq!(
        attempt_summary(&reply.body["attempts"]),
        pairs(&[("kaleyra/in", "failed"), ("kaleyra/sg", "accepted")])
    );
    assert_eq!(
        reply.body["attempts"][0]["error"]["code"],
        "provider_timeout"
    );
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Beyond the brief's rows: the other documented success shapes, numbers per provider, unknown
// provider codes, the second documented WA-401 body, bounded raw text.
// ---------------------------------------------------------------------------------------------

/// (restrict to, simulator endpoint, status, body, provider_message_id, provider_status)
type SuccessShape = (
    &'static str,
    &'static str,
    u16,
    &'static str,
    Option<&'static str>,
    &'static str,
);

#[actix_web::test]
async fn every_documented_success_shape_is_accepted() {
    let gw = gateway().await;
    let cases: &[SuccessShape] = &[
        (
            "meta",
            "meta",
            200,
            r#"{"messaging_product":"whatsapp","contacts":[{"input":"14085551234","wa_id":"14085551234"}],"messages":[{"id":"wamid.HELD","message_status":"held_for_quality_assessment"}]}"#,
            Some("wamid.HELD"),
            "held_for_quality_assessment",
        ),
        (
            "meta",
            "meta",
            200,
            r#"{"messages":[{"id":"wamid.PAUSED","message_status":"paused"}]}"#,
            Some("wamid.PAUSED"),
            "paused",
        ),
        (
            "meta",
            "meta",
            200,
            r#"{"messages":[{"id":"wamid.OK","message_status":"accepted"}]}"#,
            Some("wamid.OK"),
            "accepted",
        ),
        (
            "kaleyra",
            "kaleyra/in",
            200,
            r#"{"code":"WA200","message":"Request Accepted","data":{"message_id":"A200"},"error":{}}"#,
            Some("A200"),
            "accepted",
        ),
        ("legacy", "generic", 200, "", None, "accepted"),
        ("legacy", "generic", 204, "", None, "accepted"),
    ];
    for (provider, endpoint, status, body, message_id, provider_status) in cases {
        let context = format!("{status} {body:?} from {endpoint}");
        gw.sim.reset();
        gw.sim.set_behaviour(
            endpoint,
            Behaviour::Raw {
                status: *status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.to_string(),
            },
        );
        let reply = gw.send(&text_via(provider)).await;
        assert_eq!(reply.status, 202, "{context}: {}", reply.body);
        assert_eq!(reply.body["endpoint"], *endpoint_id(endpoint), "{context}");
        assert_eq!(
            reply.body["provider_message_id"].as_str(),
            *message_id,
            "{context}"
        );
        assert_eq!(reply.body["provider_status"], *provider_status, "{context}");
        assert_eq!(gw.sim.requests().len(), 1, "{context}");
    }
    gw.stop().await;
}

/// The gateway's endpoint id for a simulator endpoint.
fn endpoint_id(sim_endpoint: &str) -> &str {
    match sim_endpoint {
        "generic" => "legacy",
        other => other,
    }
}

#[actix_web::test]
async fn numbers_are_written_the_way_each_provider_wants_them() {
    let gw = gateway().await;
    // `to` and `from` without "+" from the caller.
    let message =
        json!({"to": TO_DIGITS, "from": "15550783881", "type": "text", "text": {"body": "x"}});

    let reply = gw.send(&with(&message, "provider", json!("meta"))).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let request = &gw.sim.requests_to("meta")[0];
    assert_eq!(request.path, META_PATH);
    assert_eq!(request.body["to"], TO_DIGITS);

    let reply = gw.send(&with(&message, "provider", json!("kaleyra"))).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let request = &gw.sim.requests_to("kaleyra/in")[0];
    assert_eq!(request.path, KALEYRA_IN_PATH);
    assert_eq!(request.body["messaging_object"]["to"], TO);

    let reply = gw.send(&with(&message, "provider", json!("legacy"))).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let request = &gw.sim.requests_to("generic")[0];
    assert_eq!(request.body["to"], TO);
    assert_eq!(request.body["from"], "15550783881");

    // A group id travels to Meta exactly as given, with recipient_type group.
    let group = json!({"to": "120363025246125486@g.us", "recipient_type": "group",
                       "type": "text", "text": {"body": "x"}, "provider": "meta"});
    gw.sim.reset();
    let reply = gw.send(&group).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(
        gw.sim.requests_to("meta")[0].body,
        json!({"messaging_product": "whatsapp", "recipient_type": "group",
               "to": "120363025246125486@g.us", "type": "text", "text": {"body": "x"},
               "biz_opaque_callback_data": reply.body["id"]})
    );

    // Refs at the 255-character limit reach Kaleyra whole, multi-byte characters included.
    gw.sim.reset();
    let long = "é".repeat(255);
    let refs = json!({"ref": long, "ref1": "ü".repeat(255), "ref2": "x"});
    let reply = gw.send(&with(&message, "refs", refs.clone())).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let mut expected_extra = object(&refs);
    expected_extra.insert("wa_source".into(), json!("api"));
    assert_eq!(
        gw.sim.requests_to("kaleyra/in")[0].body["extra_info"],
        Value::Object(expected_extra)
    );
    gw.stop().await;
}

#[actix_web::test]
async fn undocumented_kaleyra_answers_keep_their_words() {
    let gw = gateway().await;
    let second_wa_401 = r#"{"code": "WA-401", "message": "The phone number you're using is associated with different Version of our WA API. Please use the appropriate endpoint.", "data": {}, "error": {"phone_number": "The phone number you're using is associated with different Version of our WA API. Please use the appropriate endpoint."}}"#;
    // (status, body, unified code, provider_code, provider_message)
    let cases: &[(u16, &str, &str, &str, &str)] = &[
        (
            401,
            second_wa_401,
            "sender_not_permitted",
            "WA-401",
            "The phone number you're using is associated with different Version of our WA API. Please use the appropriate endpoint.",
        ),
        (
            400,
            r#"{"code":"WA999","message":"Something new went wrong","data":{},"error":{"x":"y"}}"#,
            "provider_error",
            "WA999",
            "Something new went wrong",
        ),
        (
            500,
            r#"{"code":"WA599","message":"Down for a bit","data":{},"error":{}}"#,
            "provider_unavailable",
            "WA599",
            "Down for a bit",
        ),
    ];
    for (status, body, expected, provider_code, provider_message) in cases {
        let context = format!("{status} {provider_code}");
        gw.sim.reset();
        for pod in KALEYRA_PODS {
            gw.sim.set_behaviour(
                pod,
                Behaviour::Raw {
                    status: *status,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: body.to_string(),
                },
            );
        }
        let reply = gw.send(&text_via("kaleyra")).await;
        assert_eq!(
            reply.status,
            http_status(expected),
            "{context}: {}",
            reply.body
        );
        assert_error_shape(&reply, &context);
        let error = &reply.body["error"];
        assert_eq!(error["code"], *expected, "{context}");
        assert_eq!(error["provider_status"], *status, "{context}");
        assert_eq!(error["provider_code"], *provider_code, "{context}");
        assert_eq!(error["provider_message"], *provider_message, "{context}");
        let requests = if fails_over(expected) { 3 } else { 1 };
        assert_eq!(gw.sim.requests().len(), requests, "{context}");
    }
    gw.stop().await;
}

#[actix_web::test]
async fn meta_errors_are_keyed_on_the_code_not_the_status() {
    let gw = gateway().await;
    // (status, body, unified code, provider_code)
    let cases: &[(u16, &str, &str, &str)] = &[
        // Inside a 2xx, Meta may have taken the message: final, never failed over.
        (
            200,
            r#"{"error":{"message":"(#131026) Message Undeliverable","type":"OAuthException","code":131026,"fbtrace_id":"A1"}}"#,
            "provider_error",
            "131026",
        ),
        (
            200,
            r#"{"error":{"message":"(#131000) Something went wrong","type":"OAuthException","code":131000,"fbtrace_id":"A0"}}"#,
            "provider_error",
            "131000",
        ),
        (
            400,
            r#"{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":"131047","fbtrace_id":"A2"}}"#,
            "outside_service_window",
            "131047",
        ),
        (
            403,
            r#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"error_data":{"messaging_product":"whatsapp","details":"Cloud API message throughput has been reached."},"fbtrace_id":"A3"}}"#,
            "rate_limited",
            "130429",
        ),
    ];
    for (status, body, expected, provider_code) in cases {
        let context = format!("{status} {provider_code}");
        gw.sim.reset();
        gw.sim.set_behaviour(
            "meta",
            Behaviour::Raw {
                status: *status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.to_string(),
            },
        );
        let reply = gw.send(&text_via("meta")).await;
        assert_eq!(
            reply.status,
            http_status(expected),
            "{context}: {}",
            reply.body
        );
        assert_eq!(reply.error_code(), *expected, "{context}");
        assert_eq!(reply.body["error"]["provider_code"], *provider_code);
        assert_eq!(reply.body["error"]["provider_status"], *status);
        assert_retry_after(&reply, expected, &context);
    }
    // The last row (still set) carries error_data.details: it is kept as provider_details.
    let details = gw.send(&text_via("meta")).await;
    assert_eq!(
        details.body["error"]["provider_details"],
        "Cloud API message throughput has been reached."
    );
    gw.stop().await;
}

#[actix_web::test]
async fn a_huge_error_page_is_kept_bounded() {
    let gw = gateway().await;
    let page = format!("<html><body>{}</body></html>", "x".repeat(1024 * 1024));
    gw.sim.set_behaviour(
        "meta",
        Behaviour::Raw {
            status: 503,
            headers: vec![("content-type".into(), "text/html".into())],
            body: page,
        },
    );
    let reply = gw.send(&text_via("meta")).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.error_code(), "provider_unavailable");
    let kept = reply.body["error"]["provider_message"].as_str().unwrap();
    assert!(kept.starts_with("<html><body>xxx"), "{kept:.40}");
    assert!(
        kept.len() < 8 * 1024,
        "provider_message is {} bytes",
        kept.len()
    );
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Redirects: a provider's 3xx is an answer to classify, not a place to send the message again.
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn a_redirect_is_not_taken_as_success() {
    let gw = gateway().await;
    // The generic API redirects to a page that answers 200 to a GET (here the simulator's own
    // control API, which records nothing).
    gw.sim.set_behaviour(
        "generic",
        Behaviour::Raw {
            status: 302,
            headers: vec![(
                "location".into(),
                format!("{}/_sim/behaviour", gw.sim.base_url()),
            )],
            body: String::new(),
        },
    );
    let reply = gw.send(&text_via("legacy")).await;
    assert_ne!(
        reply.status, 202,
        "the provider never took the message: {}",
        reply.body
    );
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert_eq!(reply.error_code(), "provider_error");
    assert_eq!(reply.body["error"]["provider_status"], 302);
    assert_eq!(gw.sim.requests().len(), 1);
    gw.stop().await;
}

#[actix_web::test]
async fn a_redirect_never_carries_the_message_or_the_api_key_elsewhere() {
    let gw = gateway().await;
    // Pod "in" redirects to another host name (localhost, not the configured 127.0.0.1).
    let elsewhere = format!(
        "http://localhost:{}/kaleyra/sg/v2/HXAP16XXXXXX97IN/whatsapp/+15550783881/messages",
        gw.sim.addr().port()
    );
    gw.sim.set_behaviour(
        "kaleyra/in",
        Behaviour::Raw {
            status: 307,
            headers: vec![("location".into(), elsewhere)],
            body: String::new(),
        },
    );
    let reply = gw
        .send(&json!({"to": TO, "type": "text", "text": {"body": "x"}}))
        .await;
    let leaked: Vec<String> = gw
        .sim
        .requests()
        .iter()
        .filter(|r| {
            r.endpoint != "kaleyra/in" && header(r, "api-key") == Some("sim-kaleyra-key-in")
        })
        .map(|r| format!("{} (host {:?})", r.endpoint, header(r, "host")))
        .collect();
    assert!(leaked.is_empty(), "pod in's api-key was sent to {leaked:?}");
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert_eq!(reply.error_code(), "provider_error");
    assert_eq!(reply.body["error"]["endpoint"], "kaleyra/in");
    assert_eq!(reply.body["error"]["provider_status"], 307);
    assert_eq!(gw.sim.requests().len(), 1, "one request, to pod in only");
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// No answer at all: connection refused
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn connection_refused_everywhere_is_provider_unavailable_after_every_endpoint() {
    let gw = gateway().await;
    // Stopping a clone stops the one simulator: every provider port now refuses connections.
    gw.sim.clone().stop().await;
    let started = Instant::now();
    let reply = gw
        .send(&json!({"to": TO, "type": "text", "text": {"body": "x"}}))
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.error_code(), "provider_unavailable");
    assert_error_shape(&reply, "connection refused");
    let error = &reply.body["error"];
    assert_eq!(error["retryable"], true);
    assert_eq!(error["endpoint"], "legacy");
    assert!(error.get("provider_status").is_none(), "{}", reply.body);
    assert_eq!(
        attempt_summary(&error["attempts"]),
        pairs(&[
            ("kaleyra/in", "failed"),
            ("kaleyra/sg", "failed"),
            ("kaleyra/eu", "failed"),
            ("meta", "failed"),
            ("legacy", "failed"),
        ])
    );
    for attempt in error["attempts"].as_array().unwrap() {
        assert_eq!(
            attempt["error"]["code"], "provider_unavailable",
            "{attempt}"
        );
    }
    gw.stop().await;
}
