//! Properties of callback parsing over arbitrary input: it never panics, and a callback with an
//! `externalId` and a `status` is never refused.

use proptest::prelude::*;
use serde_json::Value;
use switchboard_core::arbitrary_webhook::{assert_parser_is_total, generic_callback};
use switchboard_core::ProviderEvent;
use switchboard_generic::webhook::parse;

#[test]
fn arbitrary_bytes_and_json_never_panic() {
    assert_parser_is_total(parse);
}

proptest! {
    #[test]
    fn callback_shaped_json_is_refused_only_without_its_two_fields(json in generic_callback()) {
        let has_reference = json.get("externalId").is_some_and(|id| match id {
            Value::String(id) => !id.is_empty(),
            other => other.is_number(),
        });
        let has_status = json.get("status").is_some_and(Value::is_string);
        match parse(json.to_string().as_bytes()) {
            Err(_) => prop_assert!(!(has_reference && has_status)),
            Ok(events) => {
                prop_assert!(events.len() <= 1);
                for event in events {
                    let ProviderEvent::Status(update) = event else {
                        panic!("a generic callback only reports statuses");
                    };
                    prop_assert!(update.message_ref.is_some());
                }
            }
        }
    }
}
