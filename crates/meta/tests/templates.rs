//! `validate_template_creation` (docs/api.md): one test per rule, each on the field path.

mod common;

use common::fixture;
use serde_json::{json, Value};
use switchboard_core::ValidationError;
use switchboard_meta::validate_template_creation;

/// The documented body with the voice_call button replaced by `button`.
fn with_voice_button(button: Value) -> Value {
    let mut body = fixture("template_creation_voice_call");
    body["components"][1]["buttons"][0] = button;
    body
}

fn error(body: &Value) -> ValidationError {
    validate_template_creation(body).expect_err("should be refused")
}

#[test]
fn the_documented_bodies_are_valid() {
    for name in [
        "template_creation_voice_call",
        "template_creation_voice_call_call_buttons_page",
    ] {
        assert_eq!(validate_template_creation(&fixture(name)), Ok(()), "{name}");
    }
}

#[test]
fn the_body_must_be_an_object() {
    for body in [json!([]), json!("x"), json!(null), json!(1)] {
        let e = error(&body);
        assert_eq!(e.field, "$");
        assert!(e.message.contains("JSON object"), "{}", e.message);
    }
}

#[test]
fn name_language_and_category_are_required_non_empty_strings() {
    for field in ["name", "language", "category"] {
        let mut body = fixture("template_creation_voice_call");
        body.as_object_mut().unwrap().remove(field);
        assert_eq!(error(&body), ValidationError::new(field, "is required"));
        body[field] = json!(7);
        assert_eq!(
            error(&body),
            ValidationError::new(field, "must be a string")
        );
        body[field] = json!("");
        assert_eq!(
            error(&body),
            ValidationError::new(field, "must not be empty")
        );
    }
}

#[test]
fn components_must_be_an_array() {
    let mut body = fixture("template_creation_voice_call");
    body["components"] = json!({"type": "BODY"});
    assert_eq!(error(&body).field, "components");
    body.as_object_mut().unwrap().remove("components");
    assert_eq!(
        error(&body),
        ValidationError::new("components", "is required")
    );
    body["components"] = json!([]);
    assert_eq!(validate_template_creation(&body), Ok(()));
}

#[test]
fn voice_call_text_is_1_to_20_characters() {
    let ok = |text: &str| json!({"type": "voice_call", "text": text, "ttl_minutes": 1440});
    assert_eq!(
        validate_template_creation(&with_voice_button(ok(&"x".repeat(20)))),
        Ok(())
    );
    // Characters, not bytes.
    assert_eq!(
        validate_template_creation(&with_voice_button(ok(&"é".repeat(20)))),
        Ok(())
    );

    let e = error(&with_voice_button(ok(&"x".repeat(21))));
    assert_eq!(
        e,
        ValidationError::new(
            "components[1].buttons[0].text",
            "must be at most 20 characters (got 21)"
        )
    );
    let e = error(&with_voice_button(ok("")));
    assert_eq!(
        e,
        ValidationError::new(
            "components[1].buttons[0].text",
            "must not be empty (1 to 20 characters)"
        )
    );
    let e = error(&with_voice_button(json!({"type": "voice_call", "text": 5})));
    assert_eq!(
        e,
        ValidationError::new(
            "components[1].buttons[0].text",
            "must be a string of 1 to 20 characters"
        )
    );
}

#[test]
fn voice_call_ttl_minutes_is_an_integer_from_1440_to_43200() {
    let button = |ttl: Value| {
        with_voice_button(json!({"type": "voice_call", "text": "Call Now", "ttl_minutes": ttl}))
    };
    for ttl in [1440, 10_080, 43_200] {
        assert_eq!(
            validate_template_creation(&button(json!(ttl))),
            Ok(()),
            "{ttl}"
        );
    }
    // 100 is fine in a message, not in a template.
    for ttl in [
        json!(1439),
        json!(43_201),
        json!(100),
        json!(0),
        json!(-1440),
        json!(1440.5),
        json!("1440"),
        json!(null),
    ] {
        let e = error(&button(ttl.clone()));
        assert_eq!(e.field, "components[1].buttons[0].ttl_minutes", "{ttl}");
        assert!(
            e.message.contains("integer from 1440 to 43200"),
            "{}",
            e.message
        );
        assert!(e.message.contains(&format!("(got {ttl})")), "{}", e.message);
    }
}

#[test]
fn text_and_ttl_are_optional() {
    let body = with_voice_button(json!({"type": "voice_call"}));
    assert_eq!(validate_template_creation(&body), Ok(()));
}

#[test]
fn types_match_case_insensitively_and_paths_name_the_exact_button() {
    let body = json!({"name": "n", "language": "en", "category": "MARKETING", "components": [
        {"type": "BODY", "text": "hi"},
        {"type": "HEADER", "format": "TEXT", "text": "x"},
        {"type": "buttons", "buttons": [
            {"type": "URL", "text": "Contact Support", "url": "https://example.com"},
            {"type": "Voice_Call", "ttl_minutes": 50}
        ]}
    ]});
    assert_eq!(
        error(&body),
        ValidationError::new(
            "components[2].buttons[1].ttl_minutes",
            "must be an integer from 1440 to 43200 (1 to 30 days) for a template's voice_call button (got 50)"
        )
    );
}

#[test]
fn other_buttons_and_components_are_left_to_meta() {
    let body = json!({"name": "n", "language": "en", "category": "MARKETING", "components": [
        {"type": "BODY", "buttons": [{"type": "voice_call", "ttl_minutes": 1}]},
        {"type": "BUTTONS", "buttons": [
            {"type": "URL", "text": "a label far longer than twenty characters", "url": "https://example.com"},
            {"type": "QUICK_REPLY", "text": "Stop promotions", "ttl_minutes": 1},
            "not an object",
            {"no_type": true}
        ]},
        {"type": "BUTTONS", "buttons": "not an array"},
        "not an object",
        {"type": "FOOTER", "text": "future_field", "future": {"x": 1}}
    ]});
    assert_eq!(validate_template_creation(&body), Ok(()));
}
