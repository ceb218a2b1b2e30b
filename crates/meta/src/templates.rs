//! `POST /v1/templates` through Meta (docs/api.md): the body is Meta's template-creation object,
//! checked for the rules Switchboard owns and otherwise passed through unchanged.

use serde::Serialize;
use serde_json::{Map, Value};
use switchboard_core::parse::ROOT;
use switchboard_core::validate::{DISPLAY_TEXT_MAX, TTL_MINUTES_MAX};
use switchboard_core::ValidationError;

/// A template's `voice_call` button lives at least a day (a message's may be a minute).
pub const TEMPLATE_TTL_MINUTES_MIN: i64 = 1440;
pub const TEMPLATE_TTL_MINUTES_MAX: i64 = TTL_MINUTES_MAX;
pub const BUTTON_TEXT_MAX: usize = DISPLAY_TEXT_MAX;

/// Meta's answer to a template creation: `201 {id, status, category}` for the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateCreated {
    pub id: String,
    /// `PENDING`, `APPROVED`, `REJECTED`, …; `PENDING` if Meta did not say (a new template
    /// always starts in review).
    pub status: String,
    /// As Meta (re)categorised it; empty if Meta did not say.
    pub category: String,
}

type Check = Result<(), ValidationError>;

fn fail(field: impl Into<String>, message: impl Into<String>) -> Check {
    Err(ValidationError::new(field, message))
}

/// Checks a template-creation body: `name`, `language`, `category` non-empty strings,
/// `components` an array, and every `voice_call` button of a `BUTTONS` component with `text`
/// 1–20 characters and `ttl_minutes` an integer 1440–43200 when given. Anything else is Meta's
/// to judge.
pub fn validate_template_creation(body: &Value) -> Check {
    let Some(object) = body.as_object() else {
        return fail(
            ROOT,
            "the body must be a JSON object (Meta's message template)",
        );
    };
    for field in ["name", "language", "category"] {
        match object.get(field) {
            Some(Value::String(value)) if !value.is_empty() => {}
            Some(Value::String(_)) => fail(field, "must not be empty")?,
            Some(_) => fail(field, "must be a string")?,
            None => fail(field, "is required")?,
        }
    }
    let components = match object.get("components") {
        Some(Value::Array(components)) => components,
        Some(_) => return fail("components", "must be an array of components"),
        None => return fail("components", "is required"),
    };
    for (c, component) in components.iter().enumerate() {
        if !has_type(component, "BUTTONS") {
            continue;
        }
        let Some(Value::Array(buttons)) = component.get("buttons") else {
            continue;
        };
        for (b, button) in buttons.iter().enumerate() {
            if let Some(button) = button
                .as_object()
                .filter(|_| has_type(button, "voice_call"))
            {
                validate_voice_call_button(&format!("components[{c}].buttons[{b}]"), button)?;
            }
        }
    }
    Ok(())
}

fn has_type(value: &Value, kind: &str) -> bool {
    value
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case(kind))
}

fn validate_voice_call_button(at: &str, button: &Map<String, Value>) -> Check {
    if let Some(text) = button.get("text") {
        let field = format!("{at}.text");
        let allowed = format!("1 to {BUTTON_TEXT_MAX} characters");
        match text.as_str().map(|t| t.chars().count()) {
            None => fail(field, format!("must be a string of {allowed}"))?,
            Some(0) => fail(field, format!("must not be empty ({allowed})"))?,
            Some(n) if n > BUTTON_TEXT_MAX => fail(
                field,
                format!("must be at most {BUTTON_TEXT_MAX} characters (got {n})"),
            )?,
            Some(_) => {}
        }
    }
    if let Some(ttl) = button.get("ttl_minutes") {
        let range = TEMPLATE_TTL_MINUTES_MIN..=TEMPLATE_TTL_MINUTES_MAX;
        if !ttl.as_i64().is_some_and(|ttl| range.contains(&ttl)) {
            fail(
                format!("{at}.ttl_minutes"),
                format!(
                    "must be an integer from {TEMPLATE_TTL_MINUTES_MIN} to {TEMPLATE_TTL_MINUTES_MAX} \
                     (1 to 30 days) for a template's voice_call button (got {ttl})"
                ),
            )?;
        }
    }
    Ok(())
}

/// `{"id","status"?,"category"?}` → [`TemplateCreated`].
pub(crate) fn template_created(body: &Value) -> Option<TemplateCreated> {
    let text = |field: &str| body.get(field).and_then(Value::as_str).map(str::to_string);
    Some(TemplateCreated {
        id: text("id").filter(|id| !id.is_empty())?,
        status: text("status").unwrap_or_else(|| "PENDING".into()),
        category: text("category").unwrap_or_default(),
    })
}
