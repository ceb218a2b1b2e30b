//! Proptest strategies for webhook-shaped JSON: provider envelopes whose items have the keys
//! the parsers look for, holding plausible, odd or arbitrary values, so property tests reach
//! every branch of webhook parsing instead of stopping at the envelope.

use crate::arbitrary::any_json;
use crate::ProviderEvent;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{json, Map, Value};

/// Words, ids, numbers and timestamps as webhooks carry them, plus oddities.
fn webhook_scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => one_of(&[
            "sent", "delivered", "read", "failed", "played", "SENT", "NOT-SENT", "accepted",
            "connect", "terminate", "text", "interactive", "button_reply", "call", "messages",
            "USER_INITIATED", "COMPLETED", "14085551234", "wamid.A", "", " ",
        ]),
        2 => timestamp(),
        1 => "\\PC{0,12}".prop_map(Value::from),
        1 => any_json(),
    ]
    .boxed()
}

fn one_of(words: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop::sample::select(words).prop_map(Value::from).boxed()
}

/// Unix seconds and milliseconds as numbers and strings, RFC 3339 text, and impossible dates.
fn timestamp() -> BoxedStrategy<Value> {
    prop_oneof![
        (-5i64..2_000_000_000_000).prop_map(Value::from),
        (0i64..2_000_000_000).prop_map(|seconds| Value::from(seconds.to_string())),
        prop_oneof![Just(i64::MIN), Just(i64::MAX)].prop_map(Value::from),
        one_of(&[
            "2026-11-21T10:00:00Z",
            "2026-11-21t10:00:00.123456+05:30",
            "2026-11-21 10:00:00-08:00",
            "1970-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59-23:59",
            "2026-02-30T25:61:61Z",
            "2026-11-21T10:00:00",
            "2026-11-21",
            "2026-11-21T10:00:00+99:99",
            "-1",
            "1e3",
            "17637192000000000000000",
        ]),
        (
            0u32..10_000,
            0u32..14,
            0u32..33,
            0u32..25,
            0u32..61,
            0u32..61
        )
            .prop_map(|(year, month, day, hour, minute, second)| {
                Value::from(format!(
                    "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z"
                ))
            }),
    ]
    .boxed()
}

/// A plausible value for `key`, sometimes an odd one. `depth` bounds the nesting.
fn value_for(key: &'static str, depth: u8) -> BoxedStrategy<Value> {
    let plausible = match key {
        "status" => one_of(&[
            "sent",
            "delivered",
            "read",
            "failed",
            "played",
            "deleted",
            "SENT",
            "Delivered",
            "NOT-SENT",
            "not-sent",
            "accepted",
            "queued",
            "RINGING",
            "COMPLETED",
            "FAILED",
        ]),
        "event" => one_of(&["connect", "terminate", "CONNECT", "Terminate", "ringing"]),
        "type" => one_of(&[
            "text",
            "interactive",
            "button",
            "image",
            "location",
            "unsupported",
            "call",
            "button_reply",
            "list_reply",
            "nfm_reply",
        ]),
        "id"
        | "message_id"
        | "externalId"
        | "biz_opaque_callback_data"
        | "reply_to"
        | "payload"
        | "title" => one_of(&[
            "wamid.HBgLMTQwODU1NTEyMzQVAgARGBI3QjQ1RkE0NzI1RjYwMkE1NjkA",
            "wamid.B",
            "wacid.C",
            "01JD3W6Q8S3M1V2H7KX2F5N9ZC",
            "A2f7c9",
            "",
        ]),
        "from" | "to" | "recipient_id" | "wa_id" | "display_phone_number" => one_of(&[
            "14085551234",
            "+14085551234",
            "15550783881",
            "120363025246125486@g.us",
            "0",
        ]),
        "timestamp" | "duration" => timestamp(),
        "errors" => prop::collection::vec(value_for("error", depth), 0..2)
            .prop_map(Value::from)
            .boxed(),
        "code" => prop_oneof![
            prop::sample::select(&[131026i64, 131047, 131049, 130429, 0, -1][..])
                .prop_map(Value::from),
            one_of(&["131026", "WA500", "E110", ""]),
        ]
        .boxed(),
        _ if depth > 0 && NESTED.contains(&key) => item(NESTED_KEYS, depth - 1),
        _ => webhook_scalar(),
    };
    prop_oneof![8 => plausible, 1 => webhook_scalar()].boxed()
}

/// An object in which each of `keys` is present most of the time, with a value for that key.
fn item(keys: &'static [&'static str], depth: u8) -> BoxedStrategy<Value> {
    let fields: Vec<_> = keys
        .iter()
        .map(|key| prop::option::weighted(0.8, value_for(key, depth)).prop_map(move |v| (*key, v)))
        .collect();
    fields
        .prop_map(|fields| {
            let object: Map<String, Value> = fields
                .into_iter()
                .filter_map(|(key, value)| Some((key.to_string(), value?)))
                .collect();
            Value::Object(object)
        })
        .boxed()
}

/// Keys whose values are objects.
const NESTED: &[&str] = &[
    "text",
    "interactive",
    "button",
    "image",
    "context",
    "profile",
    "error",
    "error_data",
    "button_reply",
    "list_reply",
    "metadata",
    "extra_info",
];

const NESTED_KEYS: &[&str] = &[
    "id",
    "body",
    "type",
    "title",
    "payload",
    "text",
    "code",
    "message",
    "details",
    "name",
    "button_reply",
    "list_reply",
    "error_data",
];

const STATUS_KEYS: &[&str] = &[
    "id",
    "status",
    "timestamp",
    "recipient_id",
    "biz_opaque_callback_data",
    "errors",
    "type",
];
const MESSAGE_KEYS: &[&str] = &[
    "id",
    "from",
    "timestamp",
    "type",
    "context",
    "text",
    "interactive",
    "button",
    "image",
    "errors",
];
const CALL_KEYS: &[&str] = &[
    "id",
    "from",
    "to",
    "event",
    "timestamp",
    "direction",
    "cta_payload",
    "deeplink_payload",
    "status",
    "duration",
    "biz_opaque_callback_data",
];
const CONTACT_KEYS: &[&str] = &["wa_id", "profile"];

fn items_of(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => prop::collection::vec(item(keys, 2), 0..4).prop_map(Value::from),
        1 => any_json(),
    ]
}

/// A Meta change `value`: `metadata`, `statuses[]`, `messages[]`, `contacts[]`, `calls[]`.
pub fn meta_value() -> impl Strategy<Value = Value> {
    (
        item(&["display_phone_number", "phone_number_id"], 0),
        items_of(STATUS_KEYS),
        items_of(MESSAGE_KEYS),
        items_of(CONTACT_KEYS),
        items_of(CALL_KEYS),
        prop::array::uniform5(prop::bool::weighted(0.8)),
    )
        .prop_map(|(metadata, statuses, messages, contacts, calls, present)| {
            let parts = [
                ("metadata", metadata),
                ("statuses", statuses),
                ("messages", messages),
                ("contacts", contacts),
                ("calls", calls),
            ];
            let value: Map<String, Value> = parts
                .into_iter()
                .zip(present)
                .filter(|(_, present)| *present)
                .map(|((key, part), _)| (key.to_string(), part))
                .collect();
            Value::Object(value)
        })
}

/// A Meta webhook envelope around a few changes, sometimes with odd entries or fields.
pub fn meta_envelope() -> impl Strategy<Value = Value> {
    let change = (
        prop_oneof![
            4 => Just(json!("messages")),
            4 => Just(json!("calls")),
            1 => Just(json!("account_update")),
            1 => webhook_scalar()
        ],
        prop_oneof![6 => meta_value(), 1 => any_json()],
    )
        .prop_map(|(field, value)| json!({"field": field, "value": value}));
    let entry = prop_oneof![
        6 => prop::collection::vec(change, 0..4).prop_map(|changes| json!({"id": "1", "changes": changes})),
        1 => any_json(),
    ];
    (
        prop_oneof![4 => Just(json!("whatsapp_business_account")), 1 => webhook_scalar()],
        prop::collection::vec(entry, 0..4),
    )
        .prop_map(|(object, entries)| json!({"object": object, "entry": entries}))
}

/// A Kaleyra v2 callback: `meta_object` around a Meta value, `extra_info`, and sometimes the
/// top-level `status` and `message_id`.
pub fn kaleyra_callback() -> impl Strategy<Value = Value> {
    (
        prop_oneof![6 => meta_value(), 1 => any_json()],
        item(
            &["message_id", "reply_to", "media_url", "ref", "trace_id"],
            0,
        ),
        item(&["status", "message_id"], 0),
    )
        .prop_map(|(value, extra_info, top_level)| {
            let mut callback = json!({
                "meta_object": {"value": value, "field": "messages"},
                "extra_info": extra_info,
            });
            if let (Value::Object(callback), Value::Object(top_level)) = (&mut callback, top_level)
            {
                callback.extend(top_level);
            }
            callback
        })
}

/// A generic status callback: `externalId`, `status`, `timestamp`, `error`, each sometimes odd.
pub fn generic_callback() -> BoxedStrategy<Value> {
    item(&["externalId", "status", "timestamp", "error"], 1)
}

/// Runs a webhook parser over arbitrary bytes and arbitrary JSON: it must never panic, whatever
/// it answers. Panics with the smallest failing input otherwise.
pub fn assert_parser_is_total<E>(parse: impl Fn(&[u8]) -> Result<Vec<ProviderEvent>, E>) {
    let mut runner = TestRunner::default();
    let bytes = prop::collection::vec(any::<u8>(), 0..256);
    if let Err(failure) = runner.run(&bytes, |body| {
        let _ = parse(&body);
        Ok(())
    }) {
        panic!("parsing bytes: {failure}");
    }
    if let Err(failure) = runner.run(&any_json(), |json| {
        let _ = parse(json.to_string().as_bytes());
        Ok(())
    }) {
        panic!("parsing JSON: {failure}");
    }
}
