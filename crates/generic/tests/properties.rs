//! Properties over arbitrary answers and arbitrary message-shaped JSON.

use proptest::prelude::*;
use serde_json::{json, Value};
use switchboard_core::arbitrary::{message_json, provider_body};
use switchboard_core::parse::message_from_value;
use switchboard_core::phone::with_plus;
use switchboard_core::{
    validate, Adapter, ErrorCode, ProviderResponse, RenderContext, ValidationPolicy,
};
use switchboard_generic::{GenericAdapter, GenericSettings, DEFAULT_PATH};

const MESSAGE_ID: &str = "01JD3W6Q8S3M1V2H7KX2F5N9ZC";

fn adapter() -> GenericAdapter {
    GenericAdapter::new(GenericSettings {
        base_url: "https://bsp.example.com".into(),
        path: DEFAULT_PATH.into(),
        auth: Some(("x-api-key".into(), "k".into())),
        callbacks_url: Some("https://sb.example.com/webhooks/legacy".into()),
    })
}

/// Every non-null scalar of `value`, with its JSON pointer.
fn leaves(pointer: String, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Null => {}
        Value::Object(map) => {
            for (k, v) in map {
                leaves(format!("{pointer}/{k}"), v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                leaves(format!("{pointer}/{i}"), v, out);
            }
        }
        scalar => out.push((pointer, scalar.clone())),
    }
}

/// Where the generic body carries an input leaf, or `None` if it is not content (Switchboard's
/// own fields, and the API's defaults).
fn carried_at(pointer: &str, value: &Value) -> Option<String> {
    let top = pointer.split('/').nth(1).unwrap_or_default();
    match (top, pointer) {
        ("from" | "refs" | "callback_url" | "provider", _) => None,
        ("recipient_type", _) if value == "individual" => None,
        ("text", "/text/preview_url") if value == false => None,
        ("text", "/text/body") => Some("/body".into()),
        ("image" | "audio" | "video" | "document", p) if p.ends_with("/link") => {
            Some("/body".into())
        }
        _ => Some(pointer.into()),
    }
}

/// Checks that every content leaf of `input` is in the rendered `body` (see [`carried_at`]).
fn assert_all_carried(input: &Value, body: &Value) -> Result<(), TestCaseError> {
    let to = body["to"].as_str().unwrap_or_default();
    prop_assert!(
        to.starts_with('+') && to[1..].bytes().all(|b| b.is_ascii_digit()),
        "to {}",
        to
    );
    prop_assert_eq!(&body["externalId"], MESSAGE_ID);
    prop_assert_eq!(&body["from"], "15550783881");
    let mut input_leaves = Vec::new();
    leaves(String::new(), input, &mut input_leaves);
    for (pointer, value) in input_leaves {
        let Some(at) = carried_at(&pointer, &value) else {
            continue;
        };
        let expected = match pointer.as_str() {
            "/to" => Value::from(with_plus(value.as_str().unwrap_or_default())),
            _ => value,
        };
        prop_assert_eq!(
            body.pointer(&at),
            Some(&expected),
            "input {} lost in {}",
            pointer,
            body
        );
    }
    Ok(())
}

fn context() -> RenderContext<'static> {
    RenderContext {
        message_id: MESSAGE_ID,
        sender_number: "+15550783881",
        phone_number_id: None,
    }
}

fn words() -> impl Strategy<Value = String> {
    "[A-Za-z0-9 ]{1,15}"
}

/// Content the generic API can carry, as `(type, Meta-shaped object)`: valid by construction.
fn expressible_content() -> impl Strategy<Value = (String, Value)> {
    let text = (words(), any::<bool>()).prop_map(|(body, with_preview)| {
        let text = if with_preview {
            json!({"body": body, "preview_url": false})
        } else {
            json!({"body": body})
        };
        ("text".to_string(), text)
    });
    let media = (
        prop::sample::select(&["image", "audio", "video", "document"][..]),
        "[a-z0-9]{1,12}",
    )
        .prop_map(|(kind, file)| {
            (
                kind.to_string(),
                json!({"link": format!("https://cdn.example.com/{file}")}),
            )
        });
    let coordinate = prop_oneof![
        (-90.0f64..90.0).prop_map(Value::from),
        "-?[0-9]{1,2}\\.[0-9]{1,6}".prop_map(Value::from)
    ];
    let location = (coordinate.clone(), coordinate, proptest::option::of(words()), proptest::option::of(words()))
        .prop_map(|(latitude, longitude, name, address)| {
            ("location".to_string(), json!({"latitude": latitude, "longitude": longitude, "name": name, "address": address}))
        });
    let contact = (
        words(),
        proptest::option::of("[1-9][0-9]{6,12}"),
        proptest::option::of(words()),
    )
        .prop_map(|(name, phone, company)| {
            json!({"name": {"formatted_name": name, "first_name": name},
                   "phones": phone.map(|p| vec![json!({"phone": p, "wa_id": p, "type": "HOME"})]),
                   "org": company.map(|c| json!({"company": c})),
                   "birthday": "2012-08-18"})
        });
    let contacts =
        prop::collection::vec(contact, 1..3).prop_map(|c| ("contacts".to_string(), Value::from(c)));
    // Titles get their index appended so they stay unique and within 20 characters.
    let buttons = (words(), prop::collection::vec(("[A-Za-z]{1,15}", "[a-z0-9_]{1,20}"), 1..=3)).prop_map(|(body, buttons)| {
        let buttons: Vec<Value> = buttons
            .into_iter()
            .enumerate()
            .map(|(i, (title, id))| json!({"type": "reply", "reply": {"id": id, "title": format!("{title}{i}")}}))
            .collect();
        ("interactive".to_string(), json!({"type": "button", "body": {"text": body}, "action": {"buttons": buttons}}))
    });
    prop_oneof![text, media, location, contacts, buttons]
}

/// One thing the generic API cannot carry, as `(JSON pointer of its parent, key, value, field)`.
fn injection(kind: &str) -> Vec<(String, &'static str, Value, String)> {
    let content = if kind == "contacts" {
        "/contacts/0".to_string()
    } else {
        format!("/{kind}")
    };
    let content_field = if kind == "contacts" {
        "contacts[0]".to_string()
    } else {
        kind.to_string()
    };
    let mut all = vec![
        (
            String::new(),
            "future_field",
            json!("x"),
            "future_field".to_string(),
        ),
        (
            String::new(),
            "context",
            json!({"message_id": "wamid.X"}),
            "context".to_string(),
        ),
        (
            content,
            "future_field",
            json!(1),
            format!("{content_field}.future_field"),
        ),
    ];
    let specific = match kind {
        "text" => Some(("preview_url", json!(true))),
        "image" | "audio" | "video" | "document" => Some(("caption", json!("c"))),
        "interactive" => Some(("footer", json!({"text": "f"}))),
        _ => None,
    };
    if let Some((key, value)) = specific {
        all.push((format!("/{kind}"), key, value, format!("{kind}.{key}")));
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn classify_is_total(status in 100u16..600, body in provider_body(), retry in proptest::option::of("[ -~]{0,8}")) {
        let headers: Vec<(String, String)> = retry.map(|v| ("retry-after".into(), v)).into_iter().collect();
        let response = ProviderResponse { status, headers: &headers, body: &body };
        match adapter().classify(&response) {
            Ok(accepted) => {
                prop_assert!((200..300).contains(&status));
                prop_assert_eq!(accepted.provider_message_id, None);
                prop_assert_eq!(accepted.provider_status, "accepted");
            }
            Err(failure) => {
                prop_assert!(!(200..300).contains(&status));
                prop_assert_eq!(failure.words.status, Some(status));
                if status >= 500 {
                    prop_assert_eq!(failure.code, ErrorCode::ProviderUnavailable);
                }
            }
        }
    }

    #[test]
    fn render_carries_everything_or_says_what_it_cannot(input in message_json()) {
        let Ok(message) = message_from_value(input.clone()) else { return Ok(()) };
        if validate(&message, &ValidationPolicy::default()).is_err() {
            return Ok(());
        }
        if let Ok(request) = adapter().render(&message, &context()) {
            assert_all_carried(&input, &request.body)?;
        }
    }

    /// The shared strategy rarely gets past parsing; this one always does, so the render is
    /// exercised in depth: everything is carried, or the one injected thing is named.
    #[test]
    fn expressible_messages_are_carried_whole(
        (kind, content) in expressible_content(),
        to in "\\+?[1-9][0-9]{6,14}",
        with_refs in any::<bool>(),
        pick in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut input = json!({"to": to, "type": kind, kind.as_str(): content});
        if with_refs {
            input["refs"] = json!({"ref": "order-1"});
        }
        let injected = pick.map(|index| {
            let all = injection(&kind);
            let (parent, key, value, field) = all[index.index(all.len())].clone();
            input.pointer_mut(&parent).expect("parent exists")[key] = value;
            field
        });
        let message = message_from_value(input.clone()).expect("parses");
        validate(&message, &ValidationPolicy::default()).expect("valid");
        match (adapter().render(&message, &context()), injected) {
            (Ok(request), None) => assert_all_carried(&input, &request.body)?,
            (Err(error), Some(field)) => prop_assert_eq!(error.field, field),
            (outcome, injected) => prop_assert!(false, "{:?} with {:?} injected", outcome, injected),
        }
    }
}
