//! Meta's webhooks (docs/webhooks-and-events.md): `X-Hub-Signature-256` proof, and the envelope
//! `{"object","entry":[{"changes":[{"field","value":{…}}]}]}` → provider-neutral events.
//!
//! Parsing is lenient by design: Meta redelivers anything not answered 200 for days, so what
//! this code does not know (a status, a field, a broken entry) is skipped, never an error. Only
//! a body that is not Meta's envelope at all is [`MalformedWebhook`].

mod call;
mod inbound;
mod signature;
mod status;
mod value;

pub use signature::{signature_header, verify_signature};
pub use value::{parse_value, parse_value_with, StatusWords};

use serde_json::Value;
use switchboard_core::{MalformedWebhook, ProviderEvent};

/// The `object` of WhatsApp Business Account webhooks; other Meta products' webhooks are ignored.
const WHATSAPP_OBJECT: &str = "whatsapp_business_account";

/// The change fields that carry messages, statuses and calls; other fields are ignored.
const EVENT_FIELDS: [&str; 2] = ["messages", "calls"];

/// Every event in a Meta webhook body, in the order Meta listed them.
pub fn parse(body: &[u8]) -> Result<Vec<ProviderEvent>, MalformedWebhook> {
    let envelope: Value = serde_json::from_slice(body)
        .map_err(|error| MalformedWebhook(format!("not JSON: {error}")))?;
    let entries = envelope
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| MalformedWebhook("not a Meta webhook: no entry array".into()))?;
    if envelope
        .get("object")
        .is_some_and(|object| object != WHATSAPP_OBJECT)
    {
        return Ok(Vec::new());
    }
    Ok(entries
        .iter()
        .filter_map(|entry| entry.get("changes")?.as_array())
        .flatten()
        .filter(|change| {
            change
                .get("field")
                .and_then(Value::as_str)
                .is_some_and(|field| EVENT_FIELDS.contains(&field))
        })
        .filter_map(|change| change.get("value"))
        .flat_map(parse_value)
        .collect())
}
