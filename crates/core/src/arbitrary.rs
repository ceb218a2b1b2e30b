//! Proptest strategies for JSON that looks like a message, so property tests reach deep into
//! parsing, validation and rendering instead of stopping at the first missing field.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Any JSON value, a few levels deep.
pub fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1.0e6f64..1.0e6).prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn plausible_string() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("")),
        Just(json!("+14085551234")),
        Just(json!("14085551234")),
        Just(json!("https://example.com/a.png")),
        Just(json!("voice_call")),
        Just(json!("cta_url")),
        Just(json!("reply")),
        "[ -~]{0,30}".prop_map(Value::from),
        "\\PC{300,600}".prop_map(Value::from),
    ]
}

fn plausible_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => plausible_string(),
        1 => (-5i64..50_000).prop_map(Value::from),
        1 => any_json(),
    ]
}

/// An object with some of `keys` set to plausible values (and sometimes a nested object).
fn object_with(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            prop::sample::select(keys),
            prop_oneof![3 => plausible_value(), 1 => nested()],
        ),
        0..keys.len() + 2,
    )
    .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

const NESTED_KEYS: &[&str] = &[
    "type",
    "text",
    "id",
    "title",
    "name",
    "parameters",
    "display_text",
    "url",
    "ttl_minutes",
    "payload",
    "reply",
    "buttons",
    "body",
    "rows",
    "code",
    "link",
    "sub_type",
    "index",
];

fn nested() -> impl Strategy<Value = Value> {
    let leaf_object =
        prop::collection::btree_map(prop::sample::select(NESTED_KEYS), plausible_value(), 0..5)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
    leaf_object.prop_recursive(3, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(prop::sample::select(NESTED_KEYS), inner, 0..4).prop_map(
                |m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            ),
        ]
    })
}

fn content_for(kind: &'static str) -> BoxedStrategy<Value> {
    match kind {
        "text" => object_with(&["body", "preview_url"]).boxed(),
        "image" | "audio" | "video" | "document" | "sticker" => {
            object_with(&["id", "link", "caption", "filename"]).boxed()
        }
        "location" => object_with(&["latitude", "longitude", "name", "address"]).boxed(),
        "reaction" => object_with(&["message_id", "emoji"]).boxed(),
        "contacts" => prop::collection::vec(
            object_with(&[
                "name",
                "phones",
                "emails",
                "addresses",
                "org",
                "urls",
                "birthday",
            ]),
            0..3,
        )
        .prop_map(Value::from)
        .boxed(),
        "interactive" => (
            prop::sample::select(&["button", "list", "cta_url", "voice_call", "flow", "nope"][..]),
            object_with(&["header", "body", "footer", "action"]),
            object_with(&["name", "buttons", "parameters", "sections", "button"]),
        )
            .prop_map(|(t, mut o, action)| {
                o["type"] = json!(t);
                o["action"] = action;
                o
            })
            .boxed(),
        "template" => (object_with(&["name", "language", "components"]), nested())
            .prop_map(|(mut o, components)| {
                o["components"] = components;
                o
            })
            .boxed(),
        _ => plausible_value().boxed(),
    }
}

const TYPES: &[&str] = &[
    "text",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "template",
    "reaction",
    "fax",
];

/// JSON shaped like a `POST /v1/messages` body: valid and invalid in every part.
pub fn message_json() -> impl Strategy<Value = Value> {
    prop::sample::select(TYPES).prop_flat_map(|kind| {
        (
            content_for(kind),
            object_with(&[
                "to",
                "from",
                "recipient_type",
                "context",
                "refs",
                "callback_url",
                "future_field",
            ]),
            any::<bool>(),
        )
            .prop_map(move |(content, envelope, with_to)| {
                let mut object: Map<String, Value> =
                    envelope.as_object().cloned().unwrap_or_default();
                if with_to {
                    object.insert("to".into(), json!("+14085551234"));
                }
                object.insert("type".into(), json!(kind));
                object.insert(kind.into(), content);
                Value::Object(object)
            })
    })
}

/// Any response a provider (or something in front of it) might send back.
pub fn provider_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(b"<html><body>502 Bad Gateway</body></html>".to_vec()),
        any_json().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        nested().prop_map(|v| serde_json::to_vec(
            &json!({"error": v, "code": v, "messages": v, "data": v})
        )
        .unwrap_or_default()),
        any_json().prop_map(|v| {
            let bytes = serde_json::to_vec(&v).unwrap_or_default();
            bytes[..bytes.len() / 2].to_vec()
        }),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}
