//! One test per validation rule of docs/api.md: the failing field's path, and the message says what is
//! allowed.

use super::*;
use crate::parse::message_from_value;
use serde_json::{json, Value};

fn policy() -> ValidationPolicy {
    ValidationPolicy {
        callback_hosts_allow: vec!["127.0.0.1".into(), "*.internal".into()],
    }
}

fn check(value: Value) -> Result<(), ValidationError> {
    let message = message_from_value(value)?;
    validate(&message, &policy())
}

#[track_caller]
fn assert_field(value: Value, field: &str) -> ValidationError {
    let error = check(value).expect_err("should be invalid");
    assert_eq!(error.field, field, "message: {}", error.message);
    error
}

fn text(body: &str) -> Value {
    json!({"to": "+14085551234", "type": "text", "text": {"body": body}})
}

fn interactive(interactive: Value) -> Value {
    json!({"to": "+14085551234", "type": "interactive", "interactive": interactive})
}

fn voice_call(parameters: Value) -> Value {
    interactive(json!({"type": "voice_call", "body": {"text": "Call us"},
        "action": {"name": "voice_call", "parameters": parameters}}))
}

fn cta_url(parameters: Value) -> Value {
    interactive(json!({"type": "cta_url", "body": {"text": "See"},
        "action": {"name": "cta_url", "parameters": parameters}}))
}

fn buttons(buttons: Value) -> Value {
    interactive(json!({"type": "button", "body": {"text": "Pick"}, "action": {"buttons": buttons}}))
}

fn reply(id: &str, title: &str) -> Value {
    json!({"type": "reply", "reply": {"id": id, "title": title}})
}

fn template_voice_call(parameters: Value) -> Value {
    json!({"to": "14085551234", "type": "template", "template": {"name": "wa_voice_call",
        "language": {"code": "en"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "x"}]},
            {"type": "button", "sub_type": "voice_call", "parameters": parameters}]}})
}

#[test]
fn a_valid_message_of_every_kind_passes() {
    let valid = [
        text("hello"),
        json!({"to": "14085551234", "type": "image", "image": {"link": "https://x.example/a.png", "caption": "c"}}),
        json!({"to": "14085551234", "type": "document", "document": {"id": "123", "filename": "a.pdf"}}),
        json!({"to": "14085551234", "type": "sticker", "sticker": {"id": "s1"}}),
        json!({"to": "14085551234", "type": "location", "location": {"latitude": 37.7, "longitude": "-122.4"}}),
        json!({"to": "14085551234", "type": "contacts", "contacts": [{"name": {"formatted_name": "A B"}}]}),
        json!({"to": "14085551234", "type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": ""}}),
        voice_call(json!({"display_text": "Call on WhatsApp", "ttl_minutes": 100, "payload": "p"})),
        voice_call(json!({})),
        cta_url(json!({"display_text": "See Dates", "url": "https://www.luckyshrub.com?x=1"})),
        buttons(json!([
            reply("0", "First"),
            reply("1", "Second"),
            reply("2", "three")
        ])),
        template_voice_call(
            json!([{"type": "ttl_minutes", "ttl_minutes": 43200}, {"type": "payload", "payload": "p"}]),
        ),
        json!({"to": "120363025246125486@g.us", "recipient_type": "group", "type": "text", "text": {"body": "x"}}),
        json!({"to": "+14085551234", "type": "text", "text": {"body": "x"},
               "refs": {"ref": "a".repeat(255)}, "callback_url": "http://events.internal/x"}),
    ];
    for value in valid {
        check(value.clone()).unwrap_or_else(|e| panic!("{value}: {e}"));
    }
}

#[test]
fn to_must_be_a_phone_number_for_individuals() {
    for bad in ["", "abc", "+1 408 555 1234", "12345", "0014085551234"] {
        let mut value = text("x");
        value["to"] = json!(bad);
        let error = assert_field(value, "to");
        assert!(error.message.contains("E.164"), "{}", error.message);
    }
}

#[test]
fn refs_over_255_chars_are_refused_not_truncated() {
    for name in ["ref", "ref1", "ref2"] {
        let mut value = text("x");
        value["refs"] = json!({ name: "r".repeat(256) });
        let error = assert_field(value, &format!("refs.{name}"));
        assert!(error.message.contains("255"), "{}", error.message);
    }
}

#[test]
fn text_body_empty_or_too_long() {
    assert_field(text(""), "text.body");
    assert!(
        check(text(&"é".repeat(4096))).is_ok(),
        "4096 characters, not bytes"
    );
    let error = assert_field(text(&"a".repeat(4097)), "text.body");
    assert!(error.message.contains("4096"), "{}", error.message);
}

#[test]
fn media_needs_exactly_one_of_id_and_link() {
    for kind in ["image", "audio", "video", "document", "sticker"] {
        assert_field(json!({"to": "14085551234", "type": kind, kind: {}}), kind);
        assert_field(
            json!({"to": "14085551234", "type": kind, kind: {"id": "1", "link": "https://x.example"}}),
            kind,
        );
    }
    assert_field(
        json!({"to": "14085551234", "type": "image", "image": {"link": "ftp://x.example/a"}}),
        "image.link",
    );
}

#[test]
fn interactive_body_text_at_most_1024() {
    let value = interactive(json!({"type": "button", "body": {"text": "a".repeat(1025)},
        "action": {"buttons": [reply("1", "x")]}}));
    let error = assert_field(value, "interactive.body.text");
    assert!(error.message.contains("1024"));
}

#[test]
fn interactive_needs_an_action() {
    assert_field(
        interactive(json!({"type": "list", "body": {"text": "x"}})),
        "interactive.action",
    );
}

#[test]
fn reply_buttons_rules() {
    assert_field(buttons(json!([])), "interactive.action.buttons");
    assert_field(
        buttons(json!([
            reply("1", "a"),
            reply("2", "b"),
            reply("3", "c"),
            reply("4", "d")
        ])),
        "interactive.action.buttons",
    );
    assert_field(
        buttons(json!([{"type": "url", "reply": {"id": "1", "title": "a"}}])),
        "interactive.action.buttons[0].type",
    );
    assert_field(
        buttons(json!([reply("1", "")])),
        "interactive.action.buttons[0].reply.title",
    );
    assert_field(
        buttons(json!([reply("1", &"t".repeat(21))])),
        "interactive.action.buttons[0].reply.title",
    );
    let error = assert_field(
        buttons(json!([reply("1", "Same"), reply("2", "Same")])),
        "interactive.action.buttons[1].reply.title",
    );
    assert!(error.message.contains("unique"));
    assert_field(
        buttons(json!([reply(&"i".repeat(257), "ok")])),
        "interactive.action.buttons[0].reply.id",
    );
    assert_field(
        buttons(json!([{"type": "reply"}])),
        "interactive.action.buttons[0].reply",
    );
}

#[test]
fn voice_call_rules() {
    let wrong_name = interactive(json!({"type": "voice_call", "action": {"name": "call"}}));
    let error = assert_field(wrong_name, "interactive.action.name");
    assert!(error.message.contains("voice_call"));
    assert_field(
        voice_call(json!({"display_text": "x".repeat(21)})),
        "interactive.action.parameters.display_text",
    );
    for ttl in [0, 43201, -5] {
        let error = assert_field(
            voice_call(json!({"ttl_minutes": ttl})),
            "interactive.action.parameters.ttl_minutes",
        );
        assert!(error.message.contains("1 to 43200"), "{}", error.message);
    }
    for not_integer in [json!(10.5), json!("100")] {
        assert_field(
            voice_call(json!({"ttl_minutes": not_integer})),
            "interactive.action.parameters.ttl_minutes",
        );
    }
    assert!(check(voice_call(json!({"ttl_minutes": 1}))).is_ok());
    assert_field(
        voice_call(json!({"payload": "p".repeat(513)})),
        "interactive.action.parameters.payload",
    );
    assert!(check(voice_call(json!({"payload": "p".repeat(512)}))).is_ok());
}

#[test]
fn cta_url_rules() {
    let wrong_name = interactive(json!({"type": "cta_url", "action": {"name": "voice_call",
        "parameters": {"display_text": "x", "url": "https://x.example"}}}));
    assert_field(wrong_name, "interactive.action.name");
    assert_field(
        cta_url(json!({"url": "https://x.example"})),
        "interactive.action.parameters.display_text",
    );
    assert_field(
        cta_url(json!({"display_text": "x".repeat(21), "url": "https://x.example"})),
        "interactive.action.parameters.display_text",
    );
    assert_field(
        cta_url(json!({"display_text": "See"})),
        "interactive.action.parameters.url",
    );
    assert_field(
        cta_url(json!({"display_text": "See", "url": "javascript:alert(1)"})),
        "interactive.action.parameters.url",
    );
    let no_parameters = interactive(json!({"type": "cta_url", "action": {"name": "cta_url"}}));
    assert_field(no_parameters, "interactive.action.parameters");
}

#[test]
fn template_voice_call_button_rules() {
    let at = "template.components[1].parameters[0]";
    for ttl in [0, 43201] {
        assert_field(
            template_voice_call(json!([{"type": "ttl_minutes", "ttl_minutes": ttl}])),
            &format!("{at}.ttl_minutes"),
        );
    }
    assert_field(
        template_voice_call(json!([{"type": "ttl_minutes"}])),
        &format!("{at}.ttl_minutes"),
    );
    assert_field(
        template_voice_call(json!([{"type": "payload", "payload": "p".repeat(513)}])),
        &format!("{at}.payload"),
    );
    // The same parameters on a component that is not a voice_call button are not ours to judge.
    let other = json!({"to": "14085551234", "type": "template", "template": {"name": "t",
        "language": {"code": "en"}, "components": [{"type": "button", "sub_type": "quick_reply",
        "index": "0", "parameters": [{"type": "payload", "payload": "p".repeat(600)}]}]}});
    assert!(check(other).is_ok());
}

#[test]
fn callback_url_scheme_and_host_allowlist() {
    let with_callback = |url: &str| {
        let mut value = text("x");
        value["callback_url"] = json!(url);
        value
    };
    assert!(check(with_callback("http://127.0.0.1:9000/events")).is_ok());
    assert!(check(with_callback("https://orders.internal/events")).is_ok());
    assert_field(with_callback("ftp://127.0.0.1/x"), "callback_url");
    assert_field(with_callback("not a url"), "callback_url");
    let error = assert_field(
        with_callback("http://169.254.169.254/latest"),
        "callback_url",
    );
    assert!(error.message.contains("callback_hosts_allow"));
    assert_field(with_callback("http://internal/x"), "callback_url");
    assert_field(
        with_callback("http://evil.internal.example.com/x"),
        "callback_url",
    );
}

#[test]
fn host_patterns() {
    let allow = vec!["*.internal".to_string(), "Api.Example.com".to_string()];
    assert!(host_allowed("a.internal", &allow));
    assert!(host_allowed("a.b.internal", &allow));
    assert!(!host_allowed("internal", &allow));
    assert!(!host_allowed("xinternal", &allow));
    assert!(host_allowed("api.example.com", &allow));
    assert!(!host_allowed("x.api.example.com", &allow));
}
