//! Rendering: exact bodies, URLs and headers for Kaleyra v2.

use serde_json::{json, Value};
use switchboard_core::parse::message_from_value;
use switchboard_core::{
    validate, Adapter, HttpMethod, OutboundMessage, ProviderRequest, RenderContext,
    ValidationPolicy,
};
use switchboard_kaleyra::{resolve_pod, KaleyraAdapter, KaleyraSettings};

const SID: &str = "HXAP16XXXXXX97IN";
const API_KEY: &str = "Axxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx3";
const SENDER: &str = "+919000000001";

fn adapter_at(base_url: String, wa_source: &str) -> KaleyraAdapter {
    KaleyraAdapter::new(KaleyraSettings {
        base_url,
        sid: SID.into(),
        api_key: API_KEY.into(),
        wa_source: wa_source.into(),
    })
}

fn adapter(pod: &str) -> KaleyraAdapter {
    adapter_at(resolve_pod(pod, None).unwrap(), "api")
}

/// Parses and validates like the server does, so every input here is one a caller may send.
fn message(value: Value) -> OutboundMessage {
    let message = message_from_value(value).expect("parses");
    let policy = ValidationPolicy {
        callback_hosts_allow: vec!["127.0.0.1".into()],
    };
    validate(&message, &policy).expect("valid");
    message
}

fn render_with(adapter: &KaleyraAdapter, sender: &str, value: Value) -> ProviderRequest {
    let context = RenderContext {
        message_id: "01JD3W6Q8S3M1V2H7KX2F5N9ZC",
        sender_number: sender,
        phone_number_id: None,
    };
    adapter.render(&message(value), &context).expect("renders")
}

fn render(value: Value) -> ProviderRequest {
    render_with(&adapter("in"), SENDER, value)
}

#[test]
fn cta_url_matches_the_documented_sample_request() {
    // The fixture is Kaleyra's sample request body verbatim, except that the doc's placeholder
    // recipient "+91XXXXXXXXX " (sic, with a trailing space) is the concrete "+919876543210".
    let expected: Value =
        serde_json::from_str(include_str!("fixtures/cta_url_request.json")).unwrap();
    let request = render(json!({
        "to": "+919876543210",
        "recipient_type": "individual",
        "type": "interactive",
        "interactive": {
            "type": "cta_url",
            "header": {"type": "text", "text": "Available Dates"},
            "body": {"text": "Tap the button below to see available dates."},
            "footer": {"text": "Dates subject to change."},
            "action": {"name": "cta_url", "parameters": {
                "display_text": "See Dates",
                "url": "https://www.luckyshrub.com?clickID=kqDGWd24Q5TRwoEQTICY7W1JKoXvaZOXWAS7h1P76s0R7Paec4"
            }}
        },
        "refs": {"ref": "customer1", "ref1": "marketing", "ref2": "dictionary"}
    }));

    assert_eq!(request.body, expected);
    assert_eq!(request.method, HttpMethod::Post);
    assert_eq!(
        request.url,
        "https://api.in.kaleyra.io/v2/HXAP16XXXXXX97IN/whatsapp/+919000000001/messages"
    );
    let headers: Vec<(&str, &str, &str)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.expose(), value.masked()))
        .collect();
    assert_eq!(
        headers,
        [
            ("content-type", "application/json", "application/json"),
            ("api-key", API_KEY, "****"),
        ]
    );
    assert_eq!(
        Value::Object(request.masked_headers()),
        json!({"content-type": "application/json", "api-key": "****"})
    );
    assert!(!format!("{request:?}").contains(API_KEY));
}

#[test]
fn voice_call_interactive_from_metas_doc() {
    let request = render(json!({
        "recipient_type": "individual",
        "to": "14085551234",
        "type": "interactive",
        "interactive": {
            "type": "voice_call",
            "body": {"text": "You can call us on WhatsApp now for faster service!"},
            "action": {"name": "voice_call", "parameters": {
                "display_text": "Call on WhatsApp", "ttl_minutes": 100, "payload": "payload data"
            }}
        }
    }));
    assert_eq!(
        request.body,
        json!({
            "messaging_object": {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "+14085551234",
                "type": "interactive",
                "interactive": {
                    "type": "voice_call",
                    "body": {"text": "You can call us on WhatsApp now for faster service!"},
                    "action": {"name": "voice_call", "parameters": {
                        "display_text": "Call on WhatsApp", "ttl_minutes": 100, "payload": "payload data"
                    }}
                }
            },
            "extra_info": {"wa_source": "api"}
        })
    );
}

#[test]
fn voice_call_template_from_metas_doc() {
    let template = json!({
        "name": "wa_voice_call",
        "language": {"code": "en"},
        "components": [{
            "type": "button",
            "sub_type": "voice_call",
            "parameters": [
                {"type": "ttl_minutes", "ttl_minutes": 100},
                {"type": "payload", "payload": "payload data"}
            ]
        }]
    });
    let request = render(json!({
        "to": "14085551234", "type": "template", "recipient_type": "individual",
        "template": template
    }));
    assert_eq!(
        request.body,
        json!({
            "messaging_object": {
                "messaging_product": "whatsapp", "recipient_type": "individual",
                "to": "+14085551234", "type": "template", "template": template
            },
            "extra_info": {"wa_source": "api"}
        })
    );
}

#[test]
fn text_message() {
    let request = render(json!({
        "to": "+14085551234", "type": "text",
        "text": {"body": "Hello ✓", "preview_url": false}
    }));
    assert_eq!(
        request.body,
        json!({
            "messaging_object": {
                "messaging_product": "whatsapp", "recipient_type": "individual",
                "to": "+14085551234", "type": "text",
                "text": {"body": "Hello ✓", "preview_url": false}
            },
            "extra_info": {"wa_source": "api"}
        })
    );
}

#[test]
fn image_with_caption() {
    let request = render(json!({
        "to": "+14085551234", "type": "image",
        "image": {"link": "https://example.com/a.png", "caption": "Your receipt"}
    }));
    assert_eq!(
        request.body,
        json!({
            "messaging_object": {
                "messaging_product": "whatsapp", "recipient_type": "individual",
                "to": "+14085551234", "type": "image",
                "image": {"link": "https://example.com/a.png", "caption": "Your receipt"}
            },
            "extra_info": {"wa_source": "api"}
        })
    );
}

#[test]
fn recipient_without_plus_gets_one() {
    let request = render(json!({"to": "919876543210", "type": "text", "text": {"body": "x"}}));
    assert_eq!(request.body["messaging_object"]["to"], "+919876543210");
}

#[test]
fn only_the_refs_that_are_set_are_sent() {
    let request = render(json!({
        "to": "+14085551234", "type": "text", "text": {"body": "x"},
        "refs": {"ref1": "campaign-7"}
    }));
    assert_eq!(
        request.body["extra_info"],
        json!({"ref1": "campaign-7", "wa_source": "api"})
    );

    let request = render(json!({
        "to": "+14085551234", "type": "text", "text": {"body": "x"},
        "refs": {"ref": "a", "ref2": "c"}
    }));
    assert_eq!(
        request.body["extra_info"],
        json!({"ref": "a", "ref2": "c", "wa_source": "api"})
    );
}

#[test]
fn refs_at_the_limit_travel_whole() {
    // 255 characters, multi-byte: a byte-based cut would show here.
    let long = "é".repeat(255);
    let request = render(json!({
        "to": "+14085551234", "type": "text", "text": {"body": "x"},
        "refs": {"ref": long}
    }));
    assert_eq!(request.body["extra_info"]["ref"], json!(long));
}

#[test]
fn wa_source_comes_from_the_settings() {
    let adapter = adapter_at(resolve_pod("in", None).unwrap(), "clevertap");
    let request = render_with(
        &adapter,
        SENDER,
        json!({"to": "+14085551234", "type": "text", "text": {"body": "x"}}),
    );
    assert_eq!(
        request.body["extra_info"],
        json!({"wa_source": "clevertap"})
    );
}

#[test]
fn unknown_fields_travel_unchanged_inside_messaging_object() {
    let request = render(json!({
        "to": "+14085551234", "type": "interactive",
        "future_top": {"nested": [1, {"deep": true}]},
        "context": {"message_id": "wamid.ABC", "future_ctx": "y"},
        "interactive": {
            "type": "cta_url",
            "future_interactive": "x",
            "body": {"text": "Tap"},
            "action": {"name": "cta_url", "parameters": {
                "display_text": "Open", "url": "https://example.com",
                "future_param": {"a": [null, 2.5, "s"]}
            }}
        }
    }));
    let object = &request.body["messaging_object"];
    assert_eq!(object["future_top"], json!({"nested": [1, {"deep": true}]}));
    assert_eq!(
        object["context"],
        json!({"message_id": "wamid.ABC", "future_ctx": "y"})
    );
    assert_eq!(object["interactive"]["future_interactive"], "x");
    assert_eq!(
        object["interactive"]["action"]["parameters"]["future_param"],
        json!({"a": [null, 2.5, "s"]})
    );
    // Switchboard's own fields stay out, and Kaleyra does not document biz_opaque_callback_data.
    for absent in [
        "refs",
        "callback_url",
        "from",
        "provider",
        "biz_opaque_callback_data",
    ] {
        assert!(object.get(absent).is_none(), "{absent}");
    }
    assert!(request.body["extra_info"]
        .get("biz_opaque_callback_data")
        .is_none());
}

#[test]
fn switchboard_fields_are_not_forwarded() {
    let request = render(json!({
        "to": "+14085551234", "from": SENDER, "provider": "kaleyra",
        "callback_url": "http://127.0.0.1/x", "type": "text", "text": {"body": "x"}
    }));
    let keys: Vec<&String> = request.body["messaging_object"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        keys,
        ["messaging_product", "recipient_type", "text", "to", "type"]
    );
}

#[test]
fn groups_are_unsupported() {
    let message = message(json!({
        "to": "120363025246125486@g.us", "recipient_type": "group",
        "type": "text", "text": {"body": "x"}
    }));
    let context = RenderContext {
        message_id: "m",
        sender_number: SENDER,
        phone_number_id: None,
    };
    let unsupported = adapter("in").render(&message, &context).unwrap_err();
    assert_eq!(unsupported.field, "recipient_type");
    assert!(
        unsupported.message.contains("individual"),
        "{}",
        unsupported.message
    );
}

#[test]
fn each_pod_has_its_own_url() {
    let text = || json!({"to": "+14085551234", "type": "text", "text": {"body": "x"}});
    assert_eq!(
        render_with(&adapter("sg"), SENDER, text()).url,
        "https://api.ap.kaleyra.io/v2/HXAP16XXXXXX97IN/whatsapp/+919000000001/messages"
    );
    assert_eq!(
        render_with(&adapter("eu"), SENDER, text()).url,
        "https://api.eu.kaleyra.io/v2/HXAP16XXXXXX97IN/whatsapp/+919000000001/messages"
    );
}

#[test]
fn a_pod_base_url_override_wins_and_the_sender_gets_a_plus() {
    let base = resolve_pod("eu", Some("http://127.0.0.1:9000/kaleyra/")).unwrap();
    let request = render_with(
        &adapter_at(base, "api"),
        "919000000001",
        json!({"to": "+14085551234", "type": "text", "text": {"body": "x"}}),
    );
    assert_eq!(
        request.url,
        "http://127.0.0.1:9000/kaleyra/v2/HXAP16XXXXXX97IN/whatsapp/+919000000001/messages"
    );
}
