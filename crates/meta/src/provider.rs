//! `kind = "meta"`: one endpoint named after the instance, webhooks proven by
//! `X-Hub-Signature-256` (the app secret) with the `GET` handshake (the verify token), and
//! template creation when `waba_id` is set.

use crate::{validate_template_creation, webhook, MetaAdapter, MetaSettings};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use switchboard_core::event::{MalformedWebhook, ProviderEvent};
use switchboard_core::provider::{
    http_url, same_secret, ConfigError, EndpointSpec, InstanceContext, ProviderInstance,
    ProviderKind, TemplateApi, WebhookReceiver,
};
use switchboard_core::{ProviderFailure, ProviderRequest, ProviderResponse, ValidationError};

pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";
pub const DEFAULT_API_VERSION: &str = "v24.0";

/// The `[providers.NAME]` section of a Meta instance.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaSection {
    #[allow(dead_code)]
    kind: String,
    base_url: Option<String>,
    api_version: Option<String>,
    access_token: Option<String>,
    access_token_env: Option<String>,
    app_secret: Option<String>,
    app_secret_env: Option<String>,
    verify_token: Option<String>,
    verify_token_env: Option<String>,
    waba_id: Option<String>,
    timeout_ms: Option<u64>,
}

/// The Meta provider kind, for the server's registry.
pub struct Meta;

impl ProviderKind for Meta {
    fn name(&self) -> &'static str {
        "meta"
    }

    fn build(
        &self,
        section: Value,
        instance: &InstanceContext<'_>,
    ) -> Result<ProviderInstance, ConfigError> {
        let raw: MetaSection = instance.parse(section)?;
        let secrets = instance.secrets;
        let base_url = http_url(
            &instance.key("base_url"),
            raw.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
        )?;
        let access_token = secrets.required(
            &instance.key("access_token"),
            raw.access_token.as_deref(),
            raw.access_token_env.as_deref(),
        );
        let app_secret = secrets.optional(
            &instance.key("app_secret"),
            raw.app_secret.as_deref(),
            raw.app_secret_env.as_deref(),
        );
        let verify_token = secrets.optional(
            &instance.key("verify_token"),
            raw.verify_token.as_deref(),
            raw.verify_token_env.as_deref(),
        );
        let timeout = instance.timeout(raw.timeout_ms)?;
        let adapter = Arc::new(MetaAdapter::new(MetaSettings {
            base_url: base_url.clone(),
            api_version: raw
                .api_version
                .unwrap_or_else(|| DEFAULT_API_VERSION.to_string()),
            access_token,
        }));
        Ok(ProviderInstance {
            endpoints: vec![EndpointSpec {
                id: instance.name.to_string(),
                adapter: adapter.clone(),
                timeout,
                base_url,
            }],
            webhooks: Arc::new(MetaWebhooks {
                app_secret,
                verify_token,
            }),
            templates: Some(Arc::new(MetaTemplates {
                adapter,
                waba_id: raw.waba_id,
                timeout,
            })),
            needs_phone_number_id: true,
        })
    }
}

/// Webhooks are signed with the app secret; the subscription handshake presents the verify
/// token. Without the secret (or the token), none is accepted.
#[derive(Debug)]
struct MetaWebhooks {
    app_secret: Option<SecretString>,
    verify_token: Option<SecretString>,
}

impl WebhookReceiver for MetaWebhooks {
    fn handshake(&self, query: &[(String, String)]) -> Option<String> {
        let expected = self.verify_token.as_ref()?;
        let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let token = param("hub.verify_token")?;
        let subscribing = param("hub.mode").is_some_and(|mode| mode == "subscribe");
        (subscribing && same_secret(token, expected))
            .then(|| param("hub.challenge").cloned())
            .flatten()
    }

    fn is_proven(&self, header: &dyn Fn(&str) -> Option<String>, body: &[u8]) -> bool {
        self.app_secret.as_ref().is_some_and(|secret| {
            webhook::verify_signature(
                secret.expose_secret().as_bytes(),
                body,
                header("x-hub-signature-256").as_deref(),
            )
        })
    }

    fn parse(&self, body: &[u8]) -> Result<Vec<ProviderEvent>, MalformedWebhook> {
        webhook::parse(body)
    }
}

/// `POST /{api_version}/{waba_id}/message_templates`.
#[derive(Debug)]
struct MetaTemplates {
    adapter: Arc<MetaAdapter>,
    waba_id: Option<String>,
    timeout: Duration,
}

impl TemplateApi for MetaTemplates {
    fn validate(&self, body: &Value) -> Result<(), ValidationError> {
        validate_template_creation(body)
    }

    fn render(&self, body: &Value) -> Result<ProviderRequest, String> {
        let waba_id = self.waba_id.as_deref().ok_or("has no waba_id configured")?;
        Ok(self.adapter.render_template_creation(waba_id, body))
    }

    fn classify(&self, response: &ProviderResponse<'_>) -> Result<Value, ProviderFailure> {
        let created = self.adapter.classify_template_creation(response)?;
        Ok(serde_json::to_value(created).unwrap_or(Value::Null))
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }
}
