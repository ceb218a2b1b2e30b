//! Properties of callback parsing over arbitrary input: it never panics, and what it yields
//! can be correlated.

use proptest::prelude::*;
use switchboard_core::arbitrary_webhook::{assert_parser_is_total, kaleyra_callback};
use switchboard_core::{MessageStatus, ProviderEvent};
use switchboard_kaleyra::webhook::parse;

#[test]
fn arbitrary_bytes_and_json_never_panic() {
    assert_parser_is_total(parse);
}

proptest! {
    #[test]
    fn callback_shaped_json_yields_correlatable_events(json in kaleyra_callback()) {
        let Ok(events) = parse(json.to_string().as_bytes()) else {
            // Only a callback whose meta_object is not an object may be refused.
            prop_assert!(!json["meta_object"].is_object());
            return Ok(());
        };
        for event in events {
            if let ProviderEvent::Status(update) = event {
                prop_assert!(!update.provider_message_ids.is_empty() || update.message_ref.is_some());
                let mut ids = update.provider_message_ids.clone();
                ids.sort();
                ids.dedup();
                prop_assert_eq!(ids.len(), update.provider_message_ids.len(), "ids repeat");
                prop_assert_eq!(update.error.is_some(), update.status == MessageStatus::Failed);
            }
        }
    }
}
