//! Rendering beyond the golden fixtures: unknown fields, defaults, the missing phone number id,
//! the URL and the secrecy of the token.

mod common;

use common::*;
use serde_json::{json, Value};
use switchboard_core::parse::message_from_value;
use switchboard_core::{Adapter, OutboundMessage, RenderContext, Unsupported};
use switchboard_meta::{MetaAdapter, MetaSettings};

fn message(value: Value) -> OutboundMessage {
    message_from_value(value).expect("parses")
}

fn render_body(value: Value) -> Value {
    adapter()
        .render(&message(value), &context())
        .expect("renders")
        .body
}

#[test]
fn kind_is_meta() {
    assert_eq!(adapter().kind(), "meta");
}

#[test]
fn unknown_fields_travel_unchanged_at_every_depth() {
    let body = render_body(json!({
        "to": "+14085551234", "type": "interactive", "future_top": {"a": [1, {"b": null}]},
        "context": {"message_id": "wamid.A", "future_context": true},
        "interactive": {
            "type": "voice_call", "future_interactive": "x",
            "body": {"text": "Call us", "future_body": 1},
            "action": {"name": "voice_call", "future_action": [],
                       "parameters": {"display_text": "Call", "future_param": {"deep": {"er": 2}}}}
        }
    }));
    assert_eq!(
        body,
        json!({
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": "14085551234",
            "type": "interactive", "future_top": {"a": [1, {"b": null}]},
            "context": {"message_id": "wamid.A", "future_context": true},
            "interactive": {
                "type": "voice_call", "future_interactive": "x",
                "body": {"text": "Call us", "future_body": 1},
                "action": {"name": "voice_call", "future_action": [],
                           "parameters": {"display_text": "Call", "future_param": {"deep": {"er": 2}}}}
            },
            "biz_opaque_callback_data": MESSAGE_ID
        })
    );
}

#[test]
fn unknown_template_fields_travel_unchanged() {
    let template = json!({
        "name": "t", "language": {"code": "en", "future_lang": "x"}, "future_template": 1,
        "components": [{"type": "button", "sub_type": "voice_call", "future_component": [1],
            "parameters": [{"type": "ttl_minutes", "ttl_minutes": 60, "future_parameter": {"k": "v"}}]}]
    });
    let body = render_body(json!({"to": "14085551234", "type": "template", "template": template}));
    assert_eq!(body["template"], template);
}

#[test]
fn recipient_type_defaults_to_individual_and_digits_stay_digits() {
    let body = render_body(json!({"to": "14085551234", "type": "text", "text": {"body": "hi"}}));
    assert_eq!(
        body,
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "14085551234",
               "type": "text", "text": {"body": "hi"}, "biz_opaque_callback_data": MESSAGE_ID})
    );
}

#[test]
fn group_ids_are_not_touched_even_when_they_look_like_numbers() {
    let body = render_body(json!({"to": "+120363025246", "recipient_type": "group",
        "type": "text", "text": {"body": "hi"}}));
    assert_eq!(body["to"], "+120363025246");
    assert_eq!(body["recipient_type"], "group");
}

#[test]
fn switchboard_fields_do_not_reach_meta() {
    let body = render_body(
        json!({"to": "+14085551234", "from": "+15550783881", "provider": "meta",
        "refs": {"ref": "r"}, "callback_url": "https://hooks.example.com/x",
        "type": "text", "text": {"body": "hi"}}),
    );
    for field in ["from", "provider", "refs", "callback_url"] {
        assert!(body.get(field).is_none(), "{field} leaked: {body}");
    }
}

#[test]
fn biz_opaque_callback_data_is_the_switchboard_message_id() {
    let ctx = RenderContext {
        message_id: "01JD3W6Q8S3M1V2H7KX2F5N9ZD",
        ..context()
    };
    let m = message(json!({"to": "14085551234", "type": "text", "text": {"body": "hi"}}));
    let body = adapter().render(&m, &ctx).expect("renders").body;
    assert_eq!(
        body["biz_opaque_callback_data"],
        "01JD3W6Q8S3M1V2H7KX2F5N9ZD"
    );
}

#[test]
fn missing_or_empty_phone_number_id_is_unsupported() {
    let m = message(json!({"to": "14085551234", "type": "text", "text": {"body": "hi"}}));
    let expected = Unsupported::new("from", "sender has no phone_number_id configured for Meta");
    for phone_number_id in [None, Some("")] {
        let ctx = RenderContext {
            phone_number_id,
            ..context()
        };
        assert_eq!(
            adapter().render(&m, &ctx).unwrap_err(),
            expected,
            "{phone_number_id:?}"
        );
    }
}

#[test]
fn base_url_trailing_slashes_are_trimmed_and_absent_ones_fine() {
    let m = message(json!({"to": "14085551234", "type": "text", "text": {"body": "hi"}}));
    for base_url in [
        "http://127.0.0.1:9000",
        "http://127.0.0.1:9000/",
        "http://127.0.0.1:9000//",
    ] {
        let adapter = MetaAdapter::new(MetaSettings {
            base_url: base_url.into(),
            api_version: "v23.0".into(),
            access_token: TOKEN.to_string().into(),
        });
        let request = adapter.render(&m, &context()).expect("renders");
        assert_eq!(
            request.url,
            "http://127.0.0.1:9000/v23.0/106540352242922/messages"
        );
        assert_eq!(
            adapter.render_template_creation("waba-1", &json!({})).url,
            "http://127.0.0.1:9000/v23.0/waba-1/message_templates"
        );
    }
}

#[test]
fn debug_output_never_shows_the_token() {
    let settings = MetaSettings {
        base_url: BASE_URL.into(),
        api_version: API_VERSION.into(),
        access_token: TOKEN.to_string().into(),
    };
    let adapter = MetaAdapter::new(settings.clone());
    for debug in [
        format!("{settings:?}"),
        format!("{adapter:?}"),
        format!("{adapter:#?}"),
    ] {
        assert!(!debug.contains(TOKEN), "{debug}");
        assert!(!debug.contains("test-token"), "{debug}");
    }
    assert!(format!("{adapter:?}").contains("graph.facebook.com"));
    let m = message(json!({"to": "14085551234", "type": "text", "text": {"body": "hi"}}));
    let request = adapter.render(&m, &context()).expect("renders");
    assert!(!format!("{request:?}").contains(TOKEN));
    assert_meta_headers(&request);
}
