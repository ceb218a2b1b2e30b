//! Meta WhatsApp Cloud API adapter (docs/providers.md): pure rendering of
//! `POST {base_url}/{api_version}/{phone_number_id}/messages` and classification of Graph's
//! answers. Meta's message object *is* the neutral model, so rendering only adds what the
//! contract adds and never drops a field. [`webhook`] proves and parses Meta's webhooks.

mod classify;
mod provider;
mod templates;
pub mod webhook;

pub use classify::meta_error_code;
pub use provider::{Meta, DEFAULT_API_VERSION, DEFAULT_BASE_URL};
pub use templates::{validate_template_creation, TemplateCreated};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use switchboard_core::message::RecipientType;
use switchboard_core::phone::without_plus;
use switchboard_core::{
    Accepted, Adapter, HeaderValue, OutboundMessage, ProviderFailure, ProviderRequest,
    ProviderResponse, RenderContext, Unsupported,
};

/// One Meta endpoint's settings. `Debug` masks the token (secrecy).
#[derive(Debug, Clone)]
pub struct MetaSettings {
    /// e.g. `https://graph.facebook.com`; a trailing `/` is ignored.
    pub base_url: String,
    /// e.g. `v21.0`.
    pub api_version: String,
    pub access_token: SecretString,
}

/// The adapter for one Meta endpoint. Its `Debug` never shows the token.
#[derive(Debug, Clone)]
pub struct MetaAdapter {
    base_url: String,
    api_version: String,
    access_token: SecretString,
}

impl MetaAdapter {
    pub fn new(settings: MetaSettings) -> Self {
        MetaAdapter {
            base_url: settings.base_url.trim_end_matches('/').to_string(),
            api_version: settings.api_version,
            access_token: settings.access_token,
        }
    }

    /// `POST {base}/{version}/{node}/{edge}` with the JSON body and the bearer token; the whole
    /// authorization value is secret so dry runs and logs show `****`.
    fn post(&self, node: &str, edge: &str, body: Value) -> ProviderRequest {
        let url = format!("{}/{}/{node}/{edge}", self.base_url, self.api_version);
        let bearer = format!("Bearer {}", self.access_token.expose_secret());
        ProviderRequest::post_json(url, body)
            .header("authorization", HeaderValue::Secret(bearer.into()))
    }

    /// `POST /{api_version}/{waba_id}/message_templates` with the caller's body unchanged.
    /// Call [`validate_template_creation`] first.
    pub fn render_template_creation(&self, waba_id: &str, body: &Value) -> ProviderRequest {
        self.post(waba_id, "message_templates", body.clone())
    }

    /// Meta's answer to a template creation: `{id, status, category}` or a classified failure
    /// (the same mapping as for messages).
    pub fn classify_template_creation(
        &self,
        response: &ProviderResponse<'_>,
    ) -> Result<TemplateCreated, ProviderFailure> {
        classify::classify_with(
            response,
            templates::template_created,
            classify::TEMPLATE_UNCONFIRMED,
        )
    }
}

impl Adapter for MetaAdapter {
    fn kind(&self) -> &'static str {
        "meta"
    }

    fn render(
        &self,
        message: &OutboundMessage,
        context: &RenderContext<'_>,
    ) -> Result<ProviderRequest, Unsupported> {
        let phone_number_id = context
            .phone_number_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                Unsupported::new("from", "sender has no phone_number_id configured for Meta")
            })?;
        let mut body = message.whatsapp_object();
        body.insert("messaging_product".into(), "whatsapp".into());
        if message.recipient_type() == RecipientType::Individual {
            body.insert("to".into(), without_plus(&message.envelope.to).into());
        }
        // Comes back on every status webhook: how callbacks find Switchboard's message.
        body.insert("biz_opaque_callback_data".into(), context.message_id.into());
        Ok(self.post(phone_number_id, "messages", Value::Object(body)))
    }

    fn classify(&self, response: &ProviderResponse<'_>) -> Result<Accepted, ProviderFailure> {
        classify::classify_with(
            response,
            classify::message_accepted,
            classify::MESSAGE_UNCONFIRMED,
        )
    }
}
