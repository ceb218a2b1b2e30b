//! Neutral message → Kaleyra v2 request. `messaging_object` is Meta's message object, so
//! everything Meta defines (and every field Switchboard does not know) travels unchanged.

use crate::KaleyraSettings;
use serde_json::{Map, Value};
use switchboard_core::message::RecipientType;
use switchboard_core::phone::with_plus;
use switchboard_core::{HeaderValue, OutboundMessage, ProviderRequest, RenderContext, Unsupported};

pub(crate) fn render(
    settings: &KaleyraSettings,
    message: &OutboundMessage,
    context: &RenderContext<'_>,
) -> Result<ProviderRequest, Unsupported> {
    if message.recipient_type() == RecipientType::Group {
        return Err(Unsupported::new(
            "recipient_type",
            "Kaleyra can only send to individuals (recipient_type \"group\" is not supported)",
        ));
    }

    let mut messaging_object = message.whatsapp_object();
    messaging_object.insert("messaging_product".into(), "whatsapp".into());
    messaging_object.insert("to".into(), with_plus(&message.envelope.to).into());

    // Refs go over whole: core validation already refused any over 255 chars, and Kaleyra
    // would truncate silently, so nothing here may shorten them either.
    let mut extra_info = Map::new();
    if let Some(refs) = &message.envelope.refs {
        for (name, value) in refs.entries() {
            extra_info.insert(name.into(), value.into());
        }
    }
    extra_info.insert("wa_source".into(), settings.wa_source.clone().into());

    let mut body = Map::new();
    body.insert("messaging_object".into(), Value::Object(messaging_object));
    body.insert("extra_info".into(), Value::Object(extra_info));

    let url = format!(
        "{}/v2/{}/whatsapp/{}/messages",
        settings.base_url.trim_end_matches('/'),
        settings.sid,
        with_plus(context.sender_number),
    );
    Ok(ProviderRequest::post_json(url, Value::Object(body))
        .header("api-key", HeaderValue::Secret(settings.api_key.clone())))
}
