//! `messages[]` items: what a user sent, as the `inbound` object of docs/webhooks-and-events.md.

use serde_json::{json, Map, Value};
use switchboard_core::event::{text_field, whole_seconds};
use switchboard_core::phone::with_plus;
use switchboard_core::InboundMessage;

/// Fields kept beside any message type: why Meta could not show it, and the ad that led to it.
const SIDE_FIELDS: [&str; 2] = ["errors", "referral"];

/// One `messages[]` item; `None` without an id or a sender. `business_number` is the value's
/// `metadata.display_phone_number`; `contacts` the value's `contacts[]`.
pub(super) fn inbound_message(
    item: &Value,
    business_number: Option<&str>,
    contacts: &[Value],
) -> Option<InboundMessage> {
    let provider_message_id = text_field(item, "id")?;
    let sender = text_field(item, "from")?;
    Some(InboundMessage {
        provider_message_id,
        from: with_plus(&sender),
        to: business_number.map(str::to_string),
        occurred_at: item.get("timestamp").and_then(whole_seconds),
        context_id: item
            .get("context")
            .and_then(|context| text_field(context, "id")),
        inbound: inbound_object(item),
        profile_name: profile_name(contacts, &sender),
    })
}

/// `{type, text?, reply?, …}`: text as a string; interactive replies as `type` `button_reply`
/// or `list_reply` with Meta's `reply` object; every other type (template `button`, media,
/// location, …) with Meta's object under its type name.
fn inbound_object(item: &Value) -> Value {
    let kind = text_field(item, "type").unwrap_or_else(|| "unknown".into());
    let mut inbound = match kind.as_str() {
        "text" => text_object(item),
        "interactive" => interactive_object(item),
        _ => typed_object(&kind, item.get(&kind)),
    };
    for field in SIDE_FIELDS {
        if let Some(value) = item.get(field) {
            inbound.insert(field.into(), value.clone());
        }
    }
    Value::Object(inbound)
}

fn text_object(item: &Value) -> Map<String, Value> {
    let mut inbound = typed_object("text", None);
    if let Some(body) = item.get("text").and_then(|text| text.get("body")) {
        inbound.insert("text".into(), body.clone());
    }
    inbound
}

fn interactive_object(item: &Value) -> Map<String, Value> {
    let interactive = item.get("interactive");
    let reply_kind = interactive
        .and_then(|interactive| text_field(interactive, "type"))
        .filter(|kind| kind == "button_reply" || kind == "list_reply");
    match (reply_kind, interactive) {
        (Some(kind), Some(interactive)) => {
            let mut inbound = typed_object(&kind, None);
            inbound.insert(
                "reply".into(),
                interactive.get(&kind).cloned().unwrap_or(json!({})),
            );
            inbound
        }
        _ => typed_object("interactive", interactive),
    }
}

/// `{"type": kind}` plus, when given, the provider's object under `kind`.
fn typed_object(kind: &str, object: Option<&Value>) -> Map<String, Value> {
    let mut inbound = Map::new();
    inbound.insert("type".into(), kind.into());
    if let Some(object) = object {
        inbound.insert(kind.into(), object.clone());
    }
    inbound
}

/// The sender's profile name: the contact whose `wa_id` is the sender, else the only contact.
fn profile_name(contacts: &[Value], sender: &str) -> Option<String> {
    let contact = contacts
        .iter()
        .find(|contact| text_field(contact, "wa_id").as_deref() == Some(sender))
        .or(match contacts {
            [only] => Some(only),
            _ => None,
        })?;
    text_field(contact.get("profile")?, "name")
}
