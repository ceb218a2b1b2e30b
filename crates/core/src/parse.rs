//! Request bytes → [`OutboundMessage`], with the JSON path of whatever is wrong.

use crate::error::ValidationError;
use crate::message::{Content, Envelope, MessageType, OutboundMessage};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The path used when the whole document is at fault (not JSON, not an object).
pub const ROOT: &str = "$";

/// Parses the body of `POST /v1/messages`. Checks shapes and JSON types only; the validation
/// rules are [`crate::validate::validate`]'s job.
pub fn parse_message(body: &[u8]) -> Result<OutboundMessage, ValidationError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ValidationError::new(ROOT, format!("the body is not valid JSON: {e}")))?;
    message_from_value(value)
}

/// Like [`parse_message`], from an already parsed JSON value.
pub fn message_from_value(value: Value) -> Result<OutboundMessage, ValidationError> {
    let Value::Object(mut object) = value else {
        return Err(ValidationError::new(
            ROOT,
            "the body must be a JSON object (a WhatsApp message)",
        ));
    };
    let message_type = take_type(&mut object)?;
    let key = message_type.as_str();
    let content_value = object
        .remove(key)
        .ok_or_else(|| ValidationError::new(key, format!("is required when type is \"{key}\"")))?;
    reject_reserved_fields(&mut object, message_type)?;
    let content = parse_content(message_type, content_value)?;
    let envelope: Envelope = from_value_at("", Value::Object(object))?;
    Ok(OutboundMessage { envelope, content })
}

fn take_type(object: &mut Map<String, Value>) -> Result<MessageType, ValidationError> {
    let allowed = || {
        MessageType::ALL
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match object.remove("type") {
        None => Err(ValidationError::new(
            "type",
            format!("is required: one of {}", allowed()),
        )),
        Some(Value::String(name)) => MessageType::from_name(&name).ok_or_else(|| {
            ValidationError::new(
                "type",
                format!("unknown type \"{name}\": expected one of {}", allowed()),
            )
        }),
        Some(_) => Err(ValidationError::new(
            "type",
            format!("must be a string: one of {}", allowed()),
        )),
    }
}

/// Fields Switchboard sets itself, and content objects of another type, are refused rather
/// than silently overwritten or forwarded.
fn reject_reserved_fields(
    object: &mut Map<String, Value>,
    message_type: MessageType,
) -> Result<(), ValidationError> {
    match object.remove("messaging_product") {
        None => {}
        Some(Value::String(product)) if product == "whatsapp" => {}
        Some(_) => {
            return Err(ValidationError::new(
                "messaging_product",
                "may be omitted; if present it must be \"whatsapp\"",
            ))
        }
    }
    if object.contains_key("biz_opaque_callback_data") {
        return Err(ValidationError::new(
            "biz_opaque_callback_data",
            "is set by Switchboard (to its message id); use refs for your own tracking data",
        ));
    }
    for other in MessageType::ALL {
        if other != message_type && object.contains_key(other.as_str()) {
            return Err(ValidationError::new(
                other.as_str(),
                format!(
                    "only the object named by type (\"{}\") may be present",
                    message_type.as_str()
                ),
            ));
        }
    }
    Ok(())
}

fn parse_content(message_type: MessageType, value: Value) -> Result<Content, ValidationError> {
    let at = message_type.as_str();
    Ok(match message_type {
        MessageType::Text => Content::Text(from_value_at(at, value)?),
        MessageType::Image => Content::Image(from_value_at(at, value)?),
        MessageType::Audio => Content::Audio(from_value_at(at, value)?),
        MessageType::Video => Content::Video(from_value_at(at, value)?),
        MessageType::Document => Content::Document(from_value_at(at, value)?),
        MessageType::Sticker => Content::Sticker(from_value_at(at, value)?),
        MessageType::Location => Content::Location(from_value_at(at, value)?),
        MessageType::Contacts => Content::Contacts(from_value_at(at, value)?),
        MessageType::Interactive => Content::Interactive(from_value_at(at, value)?),
        MessageType::Template => Content::Template(from_value_at(at, value)?),
        MessageType::Reaction => Content::Reaction(from_value_at(at, value)?),
    })
}

/// Deserializes `value`, reporting errors with their JSON path below `prefix`.
pub fn from_value_at<T: DeserializeOwned>(
    prefix: &str,
    value: Value,
) -> Result<T, ValidationError> {
    deserialize_at(prefix, value)
}

/// Deserializes from any deserializer (a JSON value, a configuration tree), reporting errors
/// with the path of the offending field below `prefix`.
pub fn deserialize_at<'de, D, T>(prefix: &str, deserializer: D) -> Result<T, ValidationError>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let inner = error.inner().to_string();
        let path = error.path().to_string();
        // serde names a missing field in its message; point at the field itself.
        if let Some(missing) = missing_field_name(&inner) {
            let container = if path == "." {
                prefix.to_string()
            } else {
                join_path(prefix, &path)
            };
            return ValidationError::new(join_path(&container, missing), "is required");
        }
        ValidationError::new(join_path(prefix, &path), inner)
    })
}

fn missing_field_name(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

fn join_path(prefix: &str, path: &str) -> String {
    let path = if path == "." { "" } else { path };
    match (prefix.is_empty(), path.is_empty()) {
        (true, true) => ROOT.to_string(),
        (true, false) => path.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, false) => format!("{prefix}.{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error_of(value: Value) -> ValidationError {
        message_from_value(value).expect_err("should not parse")
    }

    #[test]
    fn parses_text_and_keeps_unknown_fields_everywhere() {
        let message = message_from_value(json!({
            "to": "+14085551234", "type": "text", "future_top": 1,
            "text": {"body": "hi", "preview_url": true, "future_inner": {"a": [1]}}
        }))
        .unwrap();
        let object = message.whatsapp_object();
        assert_eq!(object["future_top"], json!(1));
        assert_eq!(object["text"]["future_inner"], json!({"a": [1]}));
        assert_eq!(object["text"]["preview_url"], json!(true));
    }

    #[test]
    fn not_json_and_not_an_object_are_root_errors() {
        let e = parse_message(b"{not json").unwrap_err();
        assert_eq!(e.field, "$");
        assert!(e.message.contains("not valid JSON"), "{}", e.message);
        assert_eq!(error_of(json!([1])).field, "$");
    }

    #[test]
    fn unknown_or_missing_type() {
        let e = error_of(json!({"to": "1", "type": "fax"}));
        assert_eq!(e.field, "type");
        assert!(e.message.contains("text, image"), "{}", e.message);
        assert_eq!(error_of(json!({"to": "1"})).field, "type");
        assert_eq!(error_of(json!({"to": "1", "type": 3})).field, "type");
    }

    #[test]
    fn missing_object_for_type_names_it() {
        let e = error_of(json!({"to": "1", "type": "image"}));
        assert_eq!(e.field, "image");
    }

    #[test]
    fn wrong_json_types_name_the_nested_path() {
        let e = error_of(json!({"to": "1", "type": "interactive", "interactive": {
            "type": "voice_call", "action": {"name": "voice_call",
            "parameters": {"display_text": 5}}}}));
        assert_eq!(e.field, "interactive.action.parameters.display_text");
        let e = error_of(json!({"to": "1", "type": "template", "template": {
            "name": "t", "language": {"code": "en"}, "components": [
            {"type": "button", "sub_type": "voice_call", "parameters": [
              {"type": "ttl_minutes", "ttl_minutes": "100"}]}]}}));
        assert_eq!(e.field, "template.components[0].parameters[0].ttl_minutes");
        let e = error_of(json!({"to": "1", "type": "contacts", "contacts": [{"name": 1}]}));
        assert_eq!(e.field, "contacts[0].name");
    }

    #[test]
    fn missing_required_field_is_named() {
        let e = error_of(json!({"to": "1", "type": "text", "text": {}}));
        assert_eq!(e.field, "text.body");
        assert_eq!(e.message, "is required");
        let e = error_of(json!({"type": "text", "text": {"body": "x"}}));
        assert_eq!(e.field, "to");
    }

    #[test]
    fn unknown_interactive_type_lists_the_allowed_ones() {
        let e = error_of(json!({"to": "1", "type": "interactive",
            "interactive": {"type": "hologram"}}));
        assert_eq!(e.field, "interactive.type");
        assert!(e.message.contains("cta_url"), "{}", e.message);
    }

    #[test]
    fn reserved_and_foreign_fields_are_refused() {
        let base = |extra: (&str, Value)| {
            let mut v = json!({"to": "1", "type": "text", "text": {"body": "x"}});
            v[extra.0] = extra.1;
            error_of(v)
        };
        assert_eq!(
            base(("messaging_product", json!("sms"))).field,
            "messaging_product"
        );
        assert_eq!(
            base(("biz_opaque_callback_data", json!("x"))).field,
            "biz_opaque_callback_data"
        );
        assert_eq!(base(("image", json!({"link": "https://x"}))).field, "image");
        assert_eq!(base(("refs", json!({"ref3": "x"}))).field, "refs.ref3");
    }

    #[test]
    fn messaging_product_whatsapp_is_accepted_and_not_duplicated() {
        let m = message_from_value(json!({"messaging_product": "whatsapp", "to": "1",
            "type": "text", "text": {"body": "x"}}))
        .unwrap();
        assert!(!m.envelope.extra.contains_key("messaging_product"));
    }
}
