//! Properties of webhook parsing over arbitrary input: it never panics, refuses only what is
//! not the envelope, and every event it yields is one Switchboard can act on.

use proptest::prelude::*;
use serde_json::Value;
use switchboard_core::arbitrary::any_json;
use switchboard_core::arbitrary_webhook::{assert_parser_is_total, meta_envelope};
use switchboard_core::{MessageStatus, ProviderEvent};
use switchboard_meta::webhook::{parse, verify_signature};

/// What every parsed event must hold, whatever the input.
fn assert_actionable(event: &ProviderEvent) {
    match event {
        ProviderEvent::Status(update) => {
            assert!(!update.provider_message_ids.is_empty() || update.message_ref.is_some());
            assert_ne!(update.status, MessageStatus::Queued);
            assert_ne!(update.status, MessageStatus::Accepted);
            assert_eq!(
                update.error.is_some(),
                update.status == MessageStatus::Failed
            );
        }
        ProviderEvent::Inbound(message) => {
            assert!(!message.provider_message_id.is_empty() && !message.from.is_empty());
            assert!(message.inbound.get("type").is_some_and(Value::is_string));
        }
        ProviderEvent::Call(call) => {
            assert_eq!(
                call.call.get("id"),
                Some(&Value::from(call.call_id.clone()))
            );
        }
    }
}

#[test]
fn arbitrary_bytes_and_json_never_panic() {
    assert_parser_is_total(parse);
}

proptest! {
    #[test]
    fn arbitrary_headers_never_verify(header in ".{0,80}", body in prop::collection::vec(any::<u8>(), 0..64)) {
        prop_assert!(!verify_signature(b"secret", &body, Some(&header)));
    }

    #[test]
    fn only_the_envelope_is_accepted(json in any_json()) {
        let parsed = parse(json.to_string().as_bytes());
        let is_envelope = json.get("entry").is_some_and(Value::is_array);
        prop_assert_eq!(parsed.is_ok(), is_envelope);
    }

    #[test]
    fn webhook_shaped_json_parses_into_actionable_events(json in meta_envelope()) {
        let events = parse(json.to_string().as_bytes()).expect("an envelope is never malformed");
        events.iter().for_each(assert_actionable);
    }
}
