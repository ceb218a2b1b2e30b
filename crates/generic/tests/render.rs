//! Golden requests for every example of the generic API's documentation, and one test per
//! thing the generic API cannot carry.

use secrecy::SecretString;
use serde_json::{json, Value};
use switchboard_core::parse::message_from_value;
use switchboard_core::{
    validate, Adapter, HttpMethod, OutboundMessage, ProviderRequest, RenderContext, Unsupported,
    ValidationPolicy,
};
use switchboard_generic::{GenericAdapter, GenericSettings, DEFAULT_PATH};

const MESSAGE_ID: &str = "01JD3W6Q8S3M1V2H7KX2F5N9ZC";
/// The doc's sender, "1000000001": 10 digits, a valid E.164 number for Switchboard.
const SENDER: &str = "+1000000001";
const SECRET: &str = "Bearer s3cr3t-token";
const CALLBACKS: &str = "https://switchboard.example.com/webhooks/legacy";

fn settings() -> GenericSettings {
    GenericSettings {
        // A trailing slash on purpose: the URL must not get a double `/`.
        base_url: "https://bsp.example.com/".into(),
        path: DEFAULT_PATH.into(),
        auth: Some(("Authorization".into(), SecretString::from(SECRET))),
        callbacks_url: Some(CALLBACKS.into()),
    }
}

fn context() -> RenderContext<'static> {
    RenderContext {
        message_id: MESSAGE_ID,
        sender_number: SENDER,
        phone_number_id: None,
    }
}

/// Parsed and validated as the server would, so every input here is a valid message.
fn message(value: Value) -> OutboundMessage {
    let message = message_from_value(value).expect("parses");
    let policy = ValidationPolicy {
        callback_hosts_allow: vec!["127.0.0.1".into()],
    };
    validate(&message, &policy).expect("valid");
    message
}

fn render_with(adapter: &GenericAdapter, value: Value) -> Result<ProviderRequest, Unsupported> {
    adapter.render(&message(value), &context())
}

fn render(value: Value) -> Result<ProviderRequest, Unsupported> {
    render_with(&GenericAdapter::new(settings()), value)
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The whole request: method, URL, headers (exposed and masked) and body.
fn assert_golden(input: Value, fixture_name: &str) {
    let request = render(input).expect("the generic API can carry this");
    assert_eq!(request.method, HttpMethod::Post);
    assert_eq!(request.url, "https://bsp.example.com/whatsapp/messages");
    let exposed: Vec<(&str, &str)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.expose()))
        .collect();
    assert_eq!(
        exposed,
        [
            ("content-type", "application/json"),
            ("authorization", SECRET)
        ]
    );
    assert_eq!(
        Value::Object(request.masked_headers()),
        json!({"content-type": "application/json", "authorization": "****"})
    );
    assert_eq!(request.body, fixture(fixture_name));
}

// Each fixture is the documented example exactly, plus `externalId` and `callbacks` (which Switchboard
// adds), and with `to` as "+<digits>": Switchboard requires the `+`, and the doc's
// parameter table says E.164 with '+', although its image and contacts examples omit it.

#[test]
fn text_from_the_parameter_table() {
    assert_golden(
        json!({"to": "1000000002", "type": "text",
               "text": {"body": "Your order has shipped: https://domain.com/track"}}),
        "text.json",
    );
}

#[test]
fn image_example() {
    // The doc's image example has "to": "1000000002" (no '+'); the fixture carries the '+'.
    assert_golden(
        json!({"to": "1000000002", "type": "image", "image": {"link": "http://domain.com/image"}}),
        "image.json",
    );
}

#[test]
fn contacts_example() {
    // The email is "[email protected]" in the doc as published (an e-mail obfuscation artefact
    // of the page); it is kept verbatim, as any caller string would be.
    let expected = fixture("contacts.json");
    assert_golden(
        json!({"to": "1000000002", "type": "contacts", "contacts": expected["contacts"].clone()}),
        "contacts.json",
    );
}

#[test]
fn location_example() {
    assert_golden(
        json!({"to": "+1000000002", "type": "location", "location": {
            "longitude": -122.425332, "latitude": 37.758056,
            "name": "Facebook HQ", "address": "1 Hacker Way, Menlo Park, CA 94025"}}),
        "location.json",
    );
}

#[test]
fn interactive_reply_buttons_example() {
    assert_golden(
        json!({"to": "+1000000002", "type": "interactive", "interactive": {
            "type": "button",
            "body": {"text": "your-text-body-content"},
            "action": {"buttons": [
                {"type": "reply", "reply": {"id": "0", "title": "First"}},
                {"type": "reply", "reply": {"id": "1", "title": "Second"}},
                {"type": "reply", "reply": {"id": "2", "title": "three"}}]}}}),
        "interactive_reply_buttons.json",
    );
}

#[test]
fn every_media_type_by_link_goes_in_body() {
    for kind in ["image", "audio", "video", "document"] {
        let request = render(json!({"to": "+14085551234", "type": kind,
            kind: {"link": "https://cdn.example.com/file"}}))
        .unwrap();
        assert_eq!(request.body["type"], kind);
        assert_eq!(request.body["body"], "https://cdn.example.com/file");
        assert_eq!(
            request.body.get(kind),
            None,
            "{kind}: no Meta-shaped media object"
        );
    }
}

#[test]
fn without_auth_or_callbacks_neither_is_sent() {
    let adapter = GenericAdapter::new(GenericSettings {
        base_url: "http://127.0.0.1:9000".into(),
        path: "custom/send".into(),
        auth: None,
        callbacks_url: None,
    });
    let request = render_with(
        &adapter,
        json!({"to": "14085551234", "type": "text", "text": {"body": "hi"}}),
    )
    .unwrap();
    assert_eq!(request.url, "http://127.0.0.1:9000/custom/send");
    assert_eq!(
        Value::Object(request.masked_headers()),
        json!({"content-type": "application/json"})
    );
    assert_eq!(
        request.body,
        json!({"from": "1000000001", "to": "+14085551234", "type": "text", "body": "hi",
               "externalId": MESSAGE_ID})
    );
}

#[test]
fn switchboard_fields_and_defaults_are_not_content() {
    // from/refs/callback_url/provider are Switchboard's own (resolved, stored, echoed by it);
    // preview_url false and recipient_type individual are the API's default behaviour.
    let request = render(
        json!({"to": "+14085551234", "from": "+1000000001", "type": "text",
        "recipient_type": "individual", "refs": {"ref": "r"}, "provider": "legacy",
        "callback_url": "http://127.0.0.1/cb", "text": {"body": "hi", "preview_url": false}}),
    )
    .unwrap();
    assert_eq!(
        request.body,
        json!({"from": "1000000001", "to": "+14085551234", "type": "text", "body": "hi",
               "externalId": MESSAGE_ID, "callbacks": CALLBACKS})
    );
}

#[test]
fn debug_never_shows_the_auth_value() {
    let adapter = GenericAdapter::new(settings());
    let debug = format!("{adapter:?} {:?}", settings());
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(debug.contains("bsp.example.com"), "{debug}");
    assert_eq!(adapter.kind(), "generic");
}

/// Renders a message the generic API cannot carry and returns the field it names.
fn unsupported_field(value: Value) -> String {
    let error = render(value).expect_err("the generic API cannot carry this");
    assert!(error.message.contains(&error.field), "{error:?}");
    error.field
}

#[test]
fn text_preview_url_true() {
    assert_eq!(
        unsupported_field(json!({"to": "+14085551234", "type": "text",
            "text": {"body": "https://x.example", "preview_url": true}})),
        "text.preview_url"
    );
}

#[test]
fn media_caption_filename_and_id() {
    let cases = [
        (
            "image",
            json!({"link": "https://x.example/a.png", "caption": "look"}),
            "image.caption",
        ),
        (
            "video",
            json!({"link": "https://x.example/a.mp4", "caption": ""}),
            "video.caption",
        ),
        (
            "document",
            json!({"link": "https://x.example/a.pdf", "filename": "a.pdf"}),
            "document.filename",
        ),
        ("image", json!({"id": "1234567890"}), "image.id"),
        ("audio", json!({"id": "1234567890"}), "audio.id"),
    ];
    for (kind, media, field) in cases {
        assert_eq!(
            unsupported_field(json!({"to": "+14085551234", "type": kind, kind: media})),
            field
        );
    }
}

#[test]
fn sticker_reaction_and_template() {
    let cases = [
        ("sticker", json!({"link": "https://x.example/s.webp"})),
        ("reaction", json!({"message_id": "wamid.X", "emoji": "👍"})),
        (
            "template",
            json!({"name": "hello_world", "language": {"code": "en_US"}}),
        ),
    ];
    for (kind, content) in cases {
        assert_eq!(
            unsupported_field(json!({"to": "+14085551234", "type": kind, kind: content})),
            kind
        );
    }
}

#[test]
fn interactive_other_than_reply_buttons() {
    let cases = [
        json!({"type": "list", "body": {"text": "b"}, "action": {"button": "Pick",
            "sections": [{"title": "s", "rows": [{"id": "1", "title": "One"}]}]}}),
        json!({"type": "cta_url", "body": {"text": "b"}, "action": {"name": "cta_url",
            "parameters": {"display_text": "Open", "url": "https://x.example"}}}),
        json!({"type": "voice_call", "body": {"text": "b"}, "action": {"name": "voice_call"}}),
        json!({"type": "flow", "body": {"text": "b"}, "action": {"name": "flow",
            "parameters": {"flow_id": "1"}}}),
    ];
    for interactive in cases {
        assert_eq!(
            unsupported_field(json!({"to": "+14085551234", "type": "interactive",
                "interactive": interactive})),
            "interactive.type"
        );
    }
}

fn buttons_with(extra: (&str, Value)) -> Value {
    let mut interactive = json!({"type": "button", "body": {"text": "b"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "1", "title": "Yes"}}]}});
    interactive[extra.0] = extra.1;
    json!({"to": "+14085551234", "type": "interactive", "interactive": interactive})
}

#[test]
fn reply_buttons_header_and_footer() {
    assert_eq!(
        unsupported_field(buttons_with((
            "header",
            json!({"type": "text", "text": "H"})
        ))),
        "interactive.header"
    );
    assert_eq!(
        unsupported_field(buttons_with(("footer", json!({"text": "F"})))),
        "interactive.footer"
    );
}

#[test]
fn reply_buttons_action_beyond_buttons() {
    let mut value = buttons_with(("body", json!({"text": "b"})));
    value["interactive"]["action"]["name"] = json!("send");
    assert_eq!(unsupported_field(value), "interactive.action.name");
}

#[test]
fn reply_context() {
    assert_eq!(
        unsupported_field(
            json!({"to": "+14085551234", "type": "text", "text": {"body": "hi"},
            "context": {"message_id": "wamid.X"}})
        ),
        "context"
    );
}

#[test]
fn group_recipient() {
    assert_eq!(
        unsupported_field(
            json!({"to": "120363025246125486@g.us", "recipient_type": "group",
            "type": "text", "text": {"body": "hi"}})
        ),
        "recipient_type"
    );
}

#[test]
fn unknown_fields_anywhere_are_never_dropped() {
    let text = |v: Value| json!({"to": "+14085551234", "type": "text", "text": v});
    let mut top = text(json!({"body": "hi"}));
    top["future_field"] = json!(null);
    let contact = |c: Value| json!({"to": "+14085551234", "type": "contacts", "contacts": [c]});
    let mut button_reply = buttons_with(("body", json!({"text": "b"})));
    button_reply["interactive"]["action"]["buttons"][0]["reply"]["future_field"] = json!(1);
    let mut button = buttons_with(("body", json!({"text": "b"})));
    button["interactive"]["action"]["buttons"][0]["future_field"] = json!(1);
    let mut action = buttons_with(("body", json!({"text": "b"})));
    action["interactive"]["action"]["future_field"] = json!(1);
    let cases = [
        (top, "future_field"),
        (
            text(json!({"body": "hi", "future_field": "x"})),
            "text.future_field",
        ),
        (
            json!({"to": "+14085551234", "type": "image",
                   "image": {"link": "https://x.example/a.png", "future_field": true}}),
            "image.future_field",
        ),
        (
            json!({"to": "+14085551234", "type": "location",
                   "location": {"latitude": 1, "longitude": 2, "future_field": 3}}),
            "location.future_field",
        ),
        (
            contact(json!({"name": {"formatted_name": "A"}, "future_field": 1})),
            "contacts[0].future_field",
        ),
        (
            contact(json!({"name": {"formatted_name": "A", "future_field": 1}})),
            "contacts[0].name.future_field",
        ),
        (
            contact(
                json!({"name": {"formatted_name": "A"}, "phones": [{"phone": "1"}, {"future_field": 1}]}),
            ),
            "contacts[0].phones[1].future_field",
        ),
        (
            contact(json!({"org": {"future_field": 1}})),
            "contacts[0].org.future_field",
        ),
        (
            contact(json!({"addresses": [{"future_field": 1}]})),
            "contacts[0].addresses[0].future_field",
        ),
        (
            contact(json!({"emails": [{"future_field": 1}]})),
            "contacts[0].emails[0].future_field",
        ),
        (
            contact(json!({"urls": [{"future_field": 1}]})),
            "contacts[0].urls[0].future_field",
        ),
        (
            buttons_with(("future_field", json!(1))),
            "interactive.future_field",
        ),
        (
            buttons_with(("body", json!({"text": "b", "future_field": 1}))),
            "interactive.body.future_field",
        ),
        (action, "interactive.action.future_field"),
        (button, "interactive.action.buttons[0].future_field"),
        (
            button_reply,
            "interactive.action.buttons[0].reply.future_field",
        ),
    ];
    for (value, field) in cases {
        assert_eq!(unsupported_field(value), field);
    }
}

#[test]
fn a_recipient_that_is_not_a_phone_number_is_refused_even_unvalidated() {
    // Validation refuses it first; render still never sends `to` without '+'.
    let message =
        message_from_value(json!({"to": "someone", "type": "text", "text": {"body": "hi"}}))
            .unwrap();
    let error = GenericAdapter::new(settings())
        .render(&message, &context())
        .unwrap_err();
    assert_eq!(error.field, "to");
}
