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

/// Mostly well-formed content (with random values where the rules bite), sometimes anything.
fn content_for(kind: &'static str) -> BoxedStrategy<Value> {
    let well_formed: BoxedStrategy<Value> = match kind {
        "text" => ("\\PC{0,40}", prop::option::of(any::<bool>()))
            .prop_map(|(body, preview)| match preview {
                Some(p) => json!({"body": body, "preview_url": p}),
                None => json!({"body": body}),
            })
            .boxed(),
        "image" | "audio" | "video" | "document" | "sticker" => prop_oneof![
            plausible_string().prop_map(|link| json!({"link": link, "caption": "c"})),
            Just(json!({"link": "https://example.com/a.png"})),
            "[0-9]{1,12}".prop_map(|id| json!({"id": id, "filename": "f.pdf"})),
        ]
        .boxed(),
        "location" => (-90.0f64..90.0, -180.0f64..180.0)
            .prop_map(|(lat, lng)| json!({"latitude": lat, "longitude": lng, "name": "HQ"}))
            .boxed(),
        "reaction" => Just(json!({"message_id": "wamid.X", "emoji": "👍"})).boxed(),
        "contacts" => Just(json!([{"name": {"formatted_name": "A B", "first_name": "A"},
            "phones": [{"phone": "+1 (940) 555-1234", "type": "HOME"}]}]))
        .boxed(),
        "interactive" => prop_oneof![
            (plausible_string(), -5i64..50_000, plausible_string()).prop_map(|(text, ttl, payload)| json!({
                "type": "voice_call", "body": {"text": "Call us"},
                "action": {"name": "voice_call", "parameters": {"display_text": text, "ttl_minutes": ttl, "payload": payload}}})),
            (plausible_string(), plausible_string()).prop_map(|(text, url)| json!({
                "type": "cta_url", "body": {"text": "See"},
                "action": {"name": "cta_url", "parameters": {"display_text": text, "url": url}}})),
            prop::collection::vec(("[a-z0-9]{0,8}", "\\PC{0,24}"), 0..5).prop_map(|buttons| json!({
                "type": "button", "body": {"text": "Pick"},
                "action": {"buttons": buttons.into_iter().map(|(id, title)|
                    json!({"type": "reply", "reply": {"id": id, "title": title}})).collect::<Vec<_>>()}})),
        ]
        .boxed(),
        "template" => (-5i64..50_000, plausible_string())
            .prop_map(|(ttl, payload)| json!({"name": "wa_voice_call", "language": {"code": "en"},
                "components": [{"type": "button", "sub_type": "voice_call", "parameters": [
                    {"type": "ttl_minutes", "ttl_minutes": ttl}, {"type": "payload", "payload": payload}]}]}))
            .boxed(),
        _ => plausible_value().boxed(),
    };
    prop_oneof![3 => well_formed, 1 => anything_for(kind)].boxed()
}

/// Objects with the type's keys set to arbitrary values.
fn anything_for(kind: &'static str) -> BoxedStrategy<Value> {
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

/// Envelope fields with values that are valid most of the time, so generated messages get
/// past parsing into validation and rendering.
fn envelope() -> impl Strategy<Value = Map<String, Value>> {
    (
        prop_oneof![4 => Just(json!("+14085551234")), 1 => plausible_string()],
        prop::option::of(prop_oneof![
            Just(json!("individual")),
            Just(json!("group")),
            plausible_value()
        ]),
        prop::option::of(prop_oneof![3 => Just(json!({"message_id": "wamid.X"})), 1 => nested()]),
        prop::option::of(prop_oneof![
            3 => ("[a-z]{0,8}", "\\PC{0,300}").prop_map(|(a, b)| json!({"ref": a, "ref2": b})),
            1 => nested(),
        ]),
        prop::option::of(prop_oneof![
            Just(json!("http://127.0.0.1:9/cb")),
            plausible_string()
        ]),
        prop::option::of(("[a-z_]{1,12}", plausible_value())),
    )
        .prop_map(
            |(to, recipient_type, context, refs, callback_url, unknown)| {
                let mut object = Map::new();
                object.insert("to".into(), to);
                let optional = [
                    ("recipient_type", recipient_type),
                    ("context", context),
                    ("refs", refs),
                    ("callback_url", callback_url),
                ];
                for (key, value) in optional {
                    if let Some(value) = value {
                        object.insert(key.into(), value);
                    }
                }
                if let Some((key, value)) = unknown {
                    object.insert(format!("x_{key}"), value);
                }
                object
            },
        )
}

/// JSON shaped like a `POST /v1/messages` body: valid and invalid in every part.
pub fn message_json() -> impl Strategy<Value = Value> {
    prop::sample::select(TYPES).prop_flat_map(|kind| {
        (content_for(kind), envelope(), prop::bool::weighted(0.1)).prop_map(
            move |(content, mut object, drop_to)| {
                if drop_to {
                    object.remove("to");
                }
                object.insert("type".into(), json!(kind));
                object.insert(kind.into(), content);
                Value::Object(object)
            },
        )
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    /// The generator is only useful if many of its messages get past parsing and validation.
    #[test]
    fn generated_messages_reach_validation_and_rendering() {
        let mut runner = TestRunner::deterministic();
        let strategy = message_json();
        let (mut parsed, mut valid) = (0, 0);
        for _ in 0..2000 {
            let value = strategy.new_tree(&mut runner).unwrap().current();
            if let Ok(message) = crate::parse::message_from_value(value) {
                parsed += 1;
                let policy = crate::ValidationPolicy {
                    callback_hosts_allow: vec!["127.0.0.1".into()],
                };
                valid += usize::from(crate::validate(&message, &policy).is_ok());
            }
        }
        assert!(parsed >= 600, "only {parsed} of 2000 parsed");
        assert!(valid >= 300, "only {valid} of 2000 were valid");
    }
}
