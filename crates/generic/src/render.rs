//! Neutral message → the generic API's request. Nothing is invented and nothing is lost: what
//! the generic API cannot carry makes the message unsupported here, naming the field, so the
//! server can fail over to an endpoint that can.

use crate::GenericAdapter;
use serde_json::{Map, Value};
use switchboard_core::message::{
    Contact, Content, Extra, Interactive, InteractiveType, Media, RecipientType,
};
use switchboard_core::phone::{e164_digits, with_plus, without_plus};
use switchboard_core::{HeaderValue, OutboundMessage, ProviderRequest, RenderContext, Unsupported};

pub(crate) fn render(
    adapter: &GenericAdapter,
    message: &OutboundMessage,
    context: &RenderContext<'_>,
) -> Result<ProviderRequest, Unsupported> {
    let (key, value) = carried_content(message)?;
    let mut body = Map::new();
    body.insert("from".into(), without_plus(context.sender_number).into());
    body.insert("to".into(), with_plus(&message.envelope.to).into());
    body.insert("type".into(), message.message_type().as_str().into());
    body.insert(key.into(), value);
    // Callbacks come back with externalId: Switchboard's id is the correlation key.
    body.insert("externalId".into(), context.message_id.into());
    if let Some(url) = &adapter.callbacks_url {
        body.insert("callbacks".into(), url.clone().into());
    }
    let mut request = ProviderRequest::post_json(adapter.url.clone(), Value::Object(body));
    if let Some((name, value)) = &adapter.auth {
        request = request.header(name, HeaderValue::Secret(value.clone()));
    }
    Ok(request)
}

type Carried = Result<(&'static str, Value), Unsupported>;

/// Walks everything the message carries against what the generic API can express, and returns
/// the body field that carries the content (`body`, `location`, `contacts` or `interactive`)
/// with its value, or the first thing the generic API cannot carry.
///
/// Switchboard's own envelope fields (`from`, `refs`, `callback_url`, `provider`) are not
/// content: Switchboard resolves, stores and echoes them itself.
fn carried_content(message: &OutboundMessage) -> Carried {
    let envelope = &message.envelope;
    if message.recipient_type() == RecipientType::Group {
        return cannot(
            "recipient_type",
            "sends to phone numbers only, not to groups",
        );
    }
    if envelope.context.is_some() {
        return cannot("context", "has no replies to a previous message");
    }
    no_extra("", &envelope.extra)?;
    if e164_digits(&envelope.to).is_none() {
        return cannot("to", "needs an E.164 phone number");
    }
    let kind = message.message_type().as_str();
    match &message.content {
        Content::Text(text) => {
            // `false` is the API's own behaviour; only asking for a preview is lost.
            if text.preview_url == Some(true) {
                return cannot("text.preview_url", "has no link previews");
            }
            no_extra("text", &text.extra)?;
            Ok(("body", text.body.clone().into()))
        }
        Content::Image(media)
        | Content::Audio(media)
        | Content::Video(media)
        | Content::Document(media) => Ok(("body", media_link(kind, media)?.into())),
        Content::Location(location) => {
            no_extra("location", &location.extra)?;
            Ok(("location", message.content.to_json()))
        }
        Content::Contacts(contacts) => {
            for (i, contact) in contacts.iter().enumerate() {
                contact_fields(&format!("contacts[{i}]"), contact)?;
            }
            Ok(("contacts", message.content.to_json()))
        }
        Content::Interactive(interactive) => {
            reply_buttons(interactive)?;
            Ok(("interactive", message.content.to_json()))
        }
        Content::Sticker(_) | Content::Template(_) | Content::Reaction(_) => {
            cannot(kind, &format!("has no {kind} messages"))
        }
    }
}

/// Media travels as its URL in `body`: nothing else of the media object has a place.
fn media_link(kind: &str, media: &Media) -> Result<String, Unsupported> {
    if media.id.is_some() {
        return cannot(
            &format!("{kind}.id"),
            "takes media by link only, not by uploaded id",
        );
    }
    if media.caption.is_some() {
        return cannot(&format!("{kind}.caption"), "has no media captions");
    }
    if media.filename.is_some() {
        return cannot(&format!("{kind}.filename"), "has no document file names");
    }
    no_extra(kind, &media.extra)?;
    match &media.link {
        Some(link) => Ok(link.clone()),
        None => cannot(&format!("{kind}.link"), "needs the media's link"),
    }
}

/// Contacts keep Meta's shape; only fields Switchboard does not model are refused.
fn contact_fields(at: &str, contact: &Contact) -> Result<(), Unsupported> {
    no_extra(at, &contact.extra)?;
    let lists: [(&str, Vec<&Extra>); 4] = [
        (
            "addresses",
            contact
                .addresses
                .iter()
                .flatten()
                .map(|a| &a.extra)
                .collect(),
        ),
        (
            "emails",
            contact.emails.iter().flatten().map(|e| &e.extra).collect(),
        ),
        (
            "phones",
            contact.phones.iter().flatten().map(|p| &p.extra).collect(),
        ),
        (
            "urls",
            contact.urls.iter().flatten().map(|u| &u.extra).collect(),
        ),
    ];
    for (name, extras) in lists {
        for (j, extra) in extras.into_iter().enumerate() {
            no_extra(&format!("{at}.{name}[{j}]"), extra)?;
        }
    }
    if let Some(name) = &contact.name {
        no_extra(&format!("{at}.name"), &name.extra)?;
    }
    if let Some(org) = &contact.org {
        no_extra(&format!("{at}.org"), &org.extra)?;
    }
    Ok(())
}

/// The generic API documents reply buttons only: `type`, `body` and `action.buttons`.
fn reply_buttons(interactive: &Interactive) -> Result<(), Unsupported> {
    if interactive.kind != InteractiveType::Button {
        let kind = interactive.kind.as_str();
        return cannot(
            "interactive.type",
            &format!("has reply buttons (\"button\") only, not \"{kind}\""),
        );
    }
    if interactive.header.is_some() {
        return cannot("interactive.header", "has no interactive header");
    }
    if interactive.footer.is_some() {
        return cannot("interactive.footer", "has no interactive footer");
    }
    no_extra("interactive", &interactive.extra)?;
    if let Some(body) = &interactive.body {
        no_extra("interactive.body", &body.extra)?;
    }
    let Some(action) = &interactive.action else {
        return Ok(());
    };
    let at = "interactive.action";
    let undocumented = [
        ("name", action.name.is_some()),
        ("button", action.button.is_some()),
        ("sections", action.sections.is_some()),
        ("parameters", action.parameters.is_some()),
    ];
    if let Some((name, _)) = undocumented.into_iter().find(|(_, present)| *present) {
        return cannot(
            &format!("{at}.{name}"),
            "has only buttons in a reply-button action",
        );
    }
    no_extra(at, &action.extra)?;
    for (i, button) in action.buttons.iter().flatten().enumerate() {
        let at = format!("{at}.buttons[{i}]");
        if button.kind != "reply" {
            return cannot(&format!("{at}.type"), "has only \"reply\" buttons");
        }
        no_extra(&at, &button.extra)?;
        if let Some(reply) = &button.reply {
            no_extra(&format!("{at}.reply"), &reply.extra)?;
        }
    }
    Ok(())
}

/// A field Switchboard keeps without knowing it has no place in the generic API.
fn no_extra(at: &str, extra: &Extra) -> Result<(), Unsupported> {
    match extra.keys().next() {
        None => Ok(()),
        Some(key) if at.is_empty() => cannot(key, "has no place for this field"),
        Some(key) => cannot(&format!("{at}.{key}"), "has no place for this field"),
    }
}

fn cannot<T>(field: &str, what: &str) -> Result<T, Unsupported> {
    Err(Unsupported::new(
        field,
        format!("{field}: the generic WhatsApp API {what}"),
    ))
}
