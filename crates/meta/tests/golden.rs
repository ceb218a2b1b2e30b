//! Golden fixtures: each file under `fixtures/` is the exact body Meta must receive (the
//! documented example plus `biz_opaque_callback_data`). The neutral input is derived from it the
//! way a caller would write it: no `messaging_product`, `to` with `+`, and Switchboard's own
//! fields (which must not reach Meta).

mod common;

use common::*;
use serde_json::{json, Value};
use switchboard_core::{parse_message, validate, Adapter, HttpMethod, ValidationPolicy};

fn neutral_input(expected: &Value) -> Value {
    let mut input = expected.clone();
    let object = input.as_object_mut().expect("fixture is an object");
    assert_eq!(object.remove("messaging_product"), Some(json!("whatsapp")));
    assert_eq!(
        object.remove("biz_opaque_callback_data"),
        Some(json!(MESSAGE_ID))
    );
    if object["recipient_type"] == "individual" {
        let to = object["to"].as_str().expect("to is a string");
        assert!(!to.starts_with('+'), "fixture `to` is Meta's digits");
        object.insert("to".into(), format!("+{to}").into());
    }
    object.insert("from".into(), json!("+15550783881"));
    object.insert(
        "refs".into(),
        json!({"ref": "order-7", "ref1": "crm", "ref2": "x"}),
    );
    object.insert("callback_url".into(), json!("https://hooks.example.com/wa"));
    object.insert("provider".into(), json!("meta"));
    input
}

fn assert_golden(name: &str) {
    let expected = fixture(name);
    let input = neutral_input(&expected);
    let bytes = serde_json::to_vec(&input).expect("serializes");
    let message = parse_message(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let policy = ValidationPolicy {
        callback_hosts_allow: vec!["hooks.example.com".into()],
    };
    validate(&message, &policy).unwrap_or_else(|e| panic!("{name}: {e}"));

    let request = adapter()
        .render(&message, &context())
        .unwrap_or_else(|e| panic!("{name}: {e}"));

    assert_eq!(request.body, expected, "{name}");
    assert_eq!(request.method, HttpMethod::Post);
    assert_eq!(
        request.url,
        "https://graph.facebook.com/v21.0/106540352242922/messages"
    );
    assert_meta_headers(&request);
}

macro_rules! golden {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            assert_golden(stringify!($name));
        }
    )*};
}

// The examples in provider-docs/ (meta-voice-call-buttons.txt, meta-call-buttons-and-deep-links.txt,
// meta-cloud-api-messages.txt's audio example with its placeholders filled in).
golden!(
    voice_call_interactive,
    voice_call_interactive_call_buttons_page,
    voice_call_template_send,
    voice_call_template_send_call_buttons_page,
    audio_by_id,
);

// The other message types, built from the Message schema in meta-cloud-api-messages.txt.
golden!(
    text_preview_url,
    image_link_caption,
    video_link_caption,
    document_id_filename,
    sticker_by_id,
    location,
    contacts,
    reaction,
    reply_with_context,
    reply_buttons,
    list,
    cta_url,
    template_body_parameters,
    group_text,
);

fn assert_template_creation_golden(name: &str) {
    let body = fixture(name);
    switchboard_meta::validate_template_creation(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
    let request = adapter().render_template_creation(WABA_ID, &body);
    assert_eq!(request.body, body, "{name}");
    assert_eq!(request.method, HttpMethod::Post);
    assert_eq!(
        request.url,
        "https://graph.facebook.com/v21.0/102290129340398/message_templates"
    );
    assert_meta_headers(&request);
}

/// meta-voice-call-buttons.txt's body, with its `<NAME>`, `<CATEGORY>`, `<LANGUAGE>` filled in.
#[test]
fn template_creation_voice_call() {
    assert_template_creation_golden("template_creation_voice_call");
}

/// meta-call-buttons-and-deep-links.txt's body.
#[test]
fn template_creation_voice_call_call_buttons_page() {
    assert_template_creation_golden("template_creation_voice_call_call_buttons_page");
}
