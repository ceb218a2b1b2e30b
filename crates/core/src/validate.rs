//! The validation rules (docs/api.md), run before any adapter. Each failure names
//! the JSON path of the offending field and says what is allowed.

use crate::error::ValidationError;
use crate::message::*;
use crate::phone::e164_digits;

pub const TEXT_BODY_MAX: usize = 4096;
pub const INTERACTIVE_BODY_MAX: usize = 1024;
pub const REF_MAX: usize = 255;
pub const REPLY_BUTTONS_MAX: usize = 3;
pub const BUTTON_TITLE_MAX: usize = 20;
pub const BUTTON_ID_MAX: usize = 256;
pub const DISPLAY_TEXT_MAX: usize = 20;
pub const TTL_MINUTES_MIN: i64 = 1;
pub const TTL_MINUTES_MAX: i64 = 43_200;
pub const CALL_PAYLOAD_MAX: usize = 512;

/// What validation needs to know from the configuration.
#[derive(Debug, Clone, Default)]
pub struct ValidationPolicy {
    /// Hosts a per-message `callback_url` may point at: exact names, or `*.suffix` for any
    /// subdomain of `suffix`.
    pub callback_hosts_allow: Vec<String>,
}

type Check = Result<(), ValidationError>;

fn fail(field: impl Into<String>, message: impl Into<String>) -> Check {
    Err(ValidationError::new(field, message))
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn max_chars(field: &str, value: &str, max: usize) -> Check {
    let n = chars(value);
    if n > max {
        return fail(field, format!("must be at most {max} characters (got {n})"));
    }
    Ok(())
}

fn non_empty_max_chars(field: &str, value: &str, max: usize) -> Check {
    if value.is_empty() {
        return fail(field, format!("must not be empty (1 to {max} characters)"));
    }
    max_chars(field, value, max)
}

fn ttl_minutes(field: &str, ttl: i64, min: i64, max: i64) -> Check {
    if !(min..=max).contains(&ttl) {
        return fail(
            field,
            format!("must be an integer from {min} to {max} (got {ttl})"),
        );
    }
    Ok(())
}

fn http_url(field: &str, value: &str) -> Result<url::Url, ValidationError> {
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(url),
        _ => Err(ValidationError::new(
            field,
            "must be an absolute http or https URL",
        )),
    }
}

/// Checks every validation rule of docs/api.md on a parsed message.
pub fn validate(message: &OutboundMessage, policy: &ValidationPolicy) -> Check {
    validate_envelope(&message.envelope, policy)?;
    match &message.content {
        Content::Text(text) => validate_text(text),
        Content::Image(m)
        | Content::Audio(m)
        | Content::Video(m)
        | Content::Document(m)
        | Content::Sticker(m) => validate_media(message.message_type().as_str(), m),
        Content::Interactive(interactive) => validate_interactive(interactive),
        Content::Template(template) => validate_template(template),
        Content::Location(_) | Content::Contacts(_) | Content::Reaction(_) => Ok(()),
    }
}

fn validate_envelope(envelope: &Envelope, policy: &ValidationPolicy) -> Check {
    match envelope.recipient_type.unwrap_or(RecipientType::Individual) {
        RecipientType::Individual if e164_digits(&envelope.to).is_none() => fail(
            "to",
            "must be a phone number in E.164 form, with or without '+': 7 to 15 digits, no spaces",
        )?,
        RecipientType::Group if envelope.to.trim().is_empty() => fail(
            "to",
            "must be the group id when recipient_type is \"group\"",
        )?,
        _ => {}
    }
    if let Some(refs) = &envelope.refs {
        for (name, value) in refs.entries() {
            max_chars(&format!("refs.{name}"), value, REF_MAX)?;
        }
    }
    if let Some(callback_url) = &envelope.callback_url {
        let url = http_url("callback_url", callback_url)?;
        let host = url.host_str().unwrap_or_default();
        if !host_allowed(host, &policy.callback_hosts_allow) {
            fail(
                "callback_url",
                format!(
                    "host \"{host}\" is not in webhooks.callback_hosts_allow ({})",
                    policy.callback_hosts_allow.join(", ")
                ),
            )?;
        }
    }
    Ok(())
}

/// Exact host names, or `*.suffix` matching any subdomain of `suffix` (not `suffix` itself).
pub fn host_allowed(host: &str, allow: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    allow.iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        match pattern.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            None => host == pattern,
        }
    })
}

fn validate_text(text: &Text) -> Check {
    non_empty_max_chars("text.body", &text.body, TEXT_BODY_MAX)
}

fn validate_media(at: &str, media: &Media) -> Check {
    match (&media.id, &media.link) {
        (Some(_), Some(_)) => fail(at, "give either id or link, not both"),
        (None, None) => fail(
            at,
            "needs either id (an uploaded media id) or link (an http(s) URL)",
        ),
        (None, Some(link)) => http_url(&format!("{at}.link"), link).map(|_| ()),
        (Some(id), None) if id.is_empty() => fail(format!("{at}.id"), "must not be empty"),
        (Some(_), None) => Ok(()),
    }
}

fn validate_interactive(interactive: &Interactive) -> Check {
    if let Some(body) = &interactive.body {
        max_chars("interactive.body.text", &body.text, INTERACTIVE_BODY_MAX)?;
    }
    let Some(action) = &interactive.action else {
        return fail("interactive.action", "is required");
    };
    match interactive.kind {
        InteractiveType::Button => validate_reply_buttons(action),
        InteractiveType::VoiceCall => validate_voice_call(action),
        InteractiveType::CtaUrl => validate_cta_url(action),
        _ => Ok(()),
    }
}

fn validate_reply_buttons(action: &Action) -> Check {
    let at = "interactive.action.buttons";
    let buttons = action.buttons.as_deref().unwrap_or_default();
    if buttons.is_empty() || buttons.len() > REPLY_BUTTONS_MAX {
        return fail(
            at,
            format!(
                "reply-button messages need 1 to {REPLY_BUTTONS_MAX} buttons (got {})",
                buttons.len()
            ),
        );
    }
    let mut titles: Vec<&str> = Vec::new();
    for (i, button) in buttons.iter().enumerate() {
        if button.kind != "reply" {
            fail(format!("{at}[{i}].type"), "must be \"reply\"")?;
        }
        let Some(reply) = &button.reply else {
            return fail(format!("{at}[{i}].reply"), "is required ({id, title})");
        };
        let title_at = format!("{at}[{i}].reply.title");
        non_empty_max_chars(&title_at, &reply.title, BUTTON_TITLE_MAX)?;
        if titles.contains(&reply.title.as_str()) {
            fail(title_at, "must be unique within the message")?;
        }
        titles.push(&reply.title);
        max_chars(&format!("{at}[{i}].reply.id"), &reply.id, BUTTON_ID_MAX)?;
    }
    Ok(())
}

fn require_action_name(action: &Action, expected: &str) -> Check {
    if action.name.as_deref() != Some(expected) {
        return fail("interactive.action.name", format!("must be \"{expected}\""));
    }
    Ok(())
}

fn validate_voice_call(action: &Action) -> Check {
    require_action_name(action, "voice_call")?;
    let Some(p) = &action.parameters else {
        return Ok(()); // every parameter is optional; WhatsApp applies its defaults
    };
    let at = "interactive.action.parameters";
    if let Some(text) = &p.display_text {
        non_empty_max_chars(&format!("{at}.display_text"), text, DISPLAY_TEXT_MAX)?;
    }
    if let Some(ttl) = p.ttl_minutes {
        ttl_minutes(
            &format!("{at}.ttl_minutes"),
            ttl,
            TTL_MINUTES_MIN,
            TTL_MINUTES_MAX,
        )?;
    }
    if let Some(payload) = &p.payload {
        max_chars(&format!("{at}.payload"), payload, CALL_PAYLOAD_MAX)?;
    }
    Ok(())
}

fn validate_cta_url(action: &Action) -> Check {
    require_action_name(action, "cta_url")?;
    let at = "interactive.action.parameters";
    let Some(p) = &action.parameters else {
        return fail(at, "is required ({display_text, url})");
    };
    match &p.display_text {
        None => fail(format!("{at}.display_text"), "is required")?,
        Some(text) => non_empty_max_chars(&format!("{at}.display_text"), text, DISPLAY_TEXT_MAX)?,
    }
    match &p.url {
        None => fail(format!("{at}.url"), "is required"),
        Some(url) => http_url(&format!("{at}.url"), url).map(|_| ()),
    }
}

fn validate_template(template: &Template) -> Check {
    for (c, component) in template.components.iter().flatten().enumerate() {
        let is_voice_call_button = component.kind.eq_ignore_ascii_case("button")
            && component.sub_type.as_deref() == Some("voice_call");
        if !is_voice_call_button {
            continue;
        }
        for (p, parameter) in component.parameters.iter().flatten().enumerate() {
            let at = format!("template.components[{c}].parameters[{p}]");
            match parameter.kind.as_str() {
                "ttl_minutes" => match parameter.ttl_minutes {
                    None => fail(
                        format!("{at}.ttl_minutes"),
                        "is required for a ttl_minutes parameter",
                    )?,
                    Some(ttl) => ttl_minutes(
                        &format!("{at}.ttl_minutes"),
                        ttl,
                        TTL_MINUTES_MIN,
                        TTL_MINUTES_MAX,
                    )?,
                },
                "payload" => match &parameter.payload {
                    None => fail(
                        format!("{at}.payload"),
                        "is required for a payload parameter",
                    )?,
                    Some(payload) => {
                        max_chars(&format!("{at}.payload"), payload, CALL_PAYLOAD_MAX)?
                    }
                },
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
