//! One change's `value`: `metadata`, `statuses[]`, `messages[]` with `contacts[]`, and `calls[]`.
//! Kaleyra forwards this same object inside its callbacks, so it is public on its own.

use super::{call, inbound, status};
use serde_json::Value;
use switchboard_core::event::text_field;
use switchboard_core::phone::with_plus;
use switchboard_core::{MessageStatus, ProviderEvent};

/// How a provider names the statuses a webhook may report; unknown words yield `None` and the
/// status is ignored.
pub type StatusWords = fn(&str) -> Option<MessageStatus>;

/// The events in one change `value`, with Meta's status words: `sent`, `delivered`, `read`,
/// `failed`. Others, such as `played` (a voice message was played), have no Switchboard status
/// and are ignored.
pub fn parse_value(value: &Value) -> Vec<ProviderEvent> {
    parse_value_with(value, MessageStatus::from_provider_word)
}

/// The events in one change `value`: statuses, then inbound messages, then calls. An item that
/// lacks what identifies it (an id, a known status or call event) is skipped.
pub fn parse_value_with(value: &Value, status_words: StatusWords) -> Vec<ProviderEvent> {
    let business_number = value
        .get("metadata")
        .and_then(|metadata| phone(metadata, "display_phone_number"));
    let contacts = items(value, "contacts");
    let statuses = items(value, "statuses")
        .iter()
        .filter_map(|item| status::status_update(item, status_words))
        .map(ProviderEvent::Status);
    let messages = items(value, "messages")
        .iter()
        .filter_map(|item| inbound::inbound_message(item, business_number.as_deref(), contacts))
        .map(ProviderEvent::Inbound);
    let calls = items(value, "calls")
        .iter()
        .filter_map(call::call_event)
        .map(ProviderEvent::Call);
    statuses.chain(messages).chain(calls).collect()
}

/// The array at `key`, or nothing when it is absent or not an array.
fn items<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A phone number at `key` as `+<digits>`; what is not a number (a group id) stays as written.
pub(super) fn phone(object: &Value, key: &str) -> Option<String> {
    text_field(object, key).map(|raw| with_plus(&raw))
}
