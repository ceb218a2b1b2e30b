//! `kind = "generic"`: one endpoint named after the instance, an optional auth header, and
//! callbacks (to `{server.public_url}/webhooks/NAME`, sent as `callbacks`) proven by the
//! `X-Callback-Token` header.

use crate::{webhook, GenericAdapter, GenericSettings, DEFAULT_PATH};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use switchboard_core::provider::{
    http_url, CallbackToken, ConfigError, EndpointSpec, InstanceContext, ProviderInstance,
    ProviderKind,
};

/// The `[providers.NAME]` section of a generic instance.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericSection {
    #[allow(dead_code)]
    kind: String,
    base_url: String,
    path: Option<String>,
    auth_header: Option<String>,
    auth_value: Option<String>,
    auth_value_env: Option<String>,
    callback_token: Option<String>,
    callback_token_env: Option<String>,
    timeout_ms: Option<u64>,
}

/// The generic provider kind, for the server's registry.
pub struct Generic;

impl ProviderKind for Generic {
    fn name(&self) -> &'static str {
        "generic"
    }

    fn build(
        &self,
        section: Value,
        instance: &InstanceContext<'_>,
    ) -> Result<ProviderInstance, ConfigError> {
        let raw: GenericSection = instance.parse(section)?;
        let secrets = instance.secrets;
        let base_url = http_url(&instance.key("base_url"), &raw.base_url)?;
        let path = raw.path.unwrap_or_else(|| DEFAULT_PATH.to_string());
        if !path.starts_with('/') {
            return Err(ConfigError::new(
                instance.key("path"),
                "must start with '/'",
            ));
        }
        let auth_value_given = raw.auth_value.is_some() || raw.auth_value_env.is_some();
        let auth = match (raw.auth_header, auth_value_given) {
            (Some(header), true) => {
                let value = secrets.required(
                    &instance.key("auth_value"),
                    raw.auth_value.as_deref(),
                    raw.auth_value_env.as_deref(),
                );
                Some((header, value))
            }
            (None, false) => None,
            (Some(_), false) => {
                return Err(ConfigError::new(
                    instance.key("auth_value"),
                    "is required when auth_header is set",
                ))
            }
            (None, true) => {
                return Err(ConfigError::new(
                    instance.key("auth_header"),
                    "is required when auth_value is set",
                ))
            }
        };
        let callback_token = secrets.optional(
            &instance.key("callback_token"),
            raw.callback_token.as_deref(),
            raw.callback_token_env.as_deref(),
        );
        let adapter = GenericAdapter::new(GenericSettings {
            base_url: base_url.clone(),
            path,
            auth,
            callbacks_url: Some(instance.webhook_url()),
        });
        Ok(ProviderInstance {
            endpoints: vec![EndpointSpec {
                id: instance.name.to_string(),
                adapter: Arc::new(adapter),
                timeout: instance.timeout(raw.timeout_ms)?,
                base_url,
            }],
            webhooks: Arc::new(CallbackToken {
                header: "x-callback-token",
                token: callback_token,
                parse: webhook::parse,
            }),
            templates: None,
            needs_phone_number_id: false,
        })
    }
}
