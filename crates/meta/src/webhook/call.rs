//! `calls[]` items: a WhatsApp call connecting or ending, with the payloads of the button or
//! deep link that started it.

use super::value::phone;
use serde_json::{Map, Value};
use switchboard_core::event::{text_field, whole_seconds};
use switchboard_core::{CallEvent, CallEventKind};

/// Fields copied verbatim into the event's `call` object.
const VERBATIM_FIELDS: [&str; 4] = ["direction", "cta_payload", "deeplink_payload", "status"];

/// One `calls[]` item; `None` without an id or with an event other than connect/terminate.
pub(super) fn call_event(item: &Value) -> Option<CallEvent> {
    let call_id = text_field(item, "id")?;
    let event = CallEventKind::parse(&item.get("event")?.as_str()?.to_ascii_lowercase())?;
    let mut call = Map::new();
    call.insert("id".into(), call_id.clone().into());
    for field in VERBATIM_FIELDS {
        if let Some(value) = item.get(field).filter(|value| !value.is_null()) {
            call.insert(field.into(), value.clone());
        }
    }
    if let Some(duration) = item.get("duration").and_then(whole_seconds) {
        call.insert("duration_secs".into(), duration.into());
    }
    Some(CallEvent {
        call_id,
        event,
        from: phone(item, "from"),
        to: phone(item, "to"),
        occurred_at: item.get("timestamp").and_then(whole_seconds),
        call: Value::Object(call),
        message_ref: text_field(item, "biz_opaque_callback_data"),
    })
}
