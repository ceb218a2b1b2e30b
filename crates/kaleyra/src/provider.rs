//! `kind = "kaleyra"`: one endpoint per `[[pods]]` entry (`NAME/in`, `NAME/sg`, …) in the order
//! listed, each with the instance's `sid`/`api_key` unless it gives its own; callbacks proven
//! by the `X-Callback-Token` header.

use crate::{resolve_pod, webhook, KaleyraAdapter, KaleyraSettings, WA_SOURCES};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use switchboard_core::provider::{
    http_url, CallbackToken, ConfigError, EndpointSpec, InstanceContext, ProviderInstance,
    ProviderKind,
};

/// The `[providers.NAME]` section of a Kaleyra instance.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KaleyraSection {
    #[allow(dead_code)]
    kind: String,
    sid: Option<String>,
    api_key: Option<String>,
    api_key_env: Option<String>,
    wa_source: Option<String>,
    callback_token: Option<String>,
    callback_token_env: Option<String>,
    timeout_ms: Option<u64>,
    #[serde(default)]
    pods: Vec<PodSection>,
}

/// A `[[providers.NAME.pods]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PodSection {
    name: String,
    base_url: Option<String>,
    sid: Option<String>,
    api_key: Option<String>,
    api_key_env: Option<String>,
}

/// The Kaleyra provider kind, for the server's registry.
pub struct Kaleyra;

impl ProviderKind for Kaleyra {
    fn name(&self) -> &'static str {
        "kaleyra"
    }

    fn build(
        &self,
        section: Value,
        instance: &InstanceContext<'_>,
    ) -> Result<ProviderInstance, ConfigError> {
        let raw: KaleyraSection = instance.parse(section)?;
        let secrets = instance.secrets;
        let wa_source = raw.wa_source.clone().unwrap_or_else(|| "api".to_string());
        if !WA_SOURCES.contains(&wa_source.as_str()) {
            return Err(ConfigError::new(
                instance.key("wa_source"),
                format!("must be one of {}", WA_SOURCES.join(", ")),
            ));
        }
        let instance_key = secrets.optional(
            &instance.key("api_key"),
            raw.api_key.as_deref(),
            raw.api_key_env.as_deref(),
        );
        let callback_token = secrets.optional(
            &instance.key("callback_token"),
            raw.callback_token.as_deref(),
            raw.callback_token_env.as_deref(),
        );
        let timeout = instance.timeout(raw.timeout_ms)?;
        if raw.pods.is_empty() {
            return Err(ConfigError::new(
                instance.key("pods"),
                "needs at least one [[pods]] entry (name = \"in\", \"sg\" or \"eu\")",
            ));
        }
        let mut endpoints: Vec<EndpointSpec> = Vec::new();
        for (i, pod) in raw.pods.iter().enumerate() {
            let pod_key = instance.key(&format!("pods[{i}]"));
            let base_url = resolve_pod(&pod.name, pod.base_url.as_deref())
                .map_err(|message| ConfigError::new(format!("{pod_key}.name"), message))?;
            let base_url = http_url(&format!("{pod_key}.base_url"), &base_url)?;
            let id = format!("{}/{}", instance.name, pod.name);
            if endpoints.iter().any(|e| e.id == id) {
                return Err(ConfigError::new(
                    format!("{pod_key}.name"),
                    format!("pod {} is listed twice", pod.name),
                ));
            }
            let sid = pod.sid.clone().or_else(|| raw.sid.clone()).ok_or_else(|| {
                ConfigError::new(
                    instance.key("sid"),
                    "is required (on the instance or on every pod)",
                )
            })?;
            let api_key = pod_api_key(instance, &raw, pod, &pod_key, instance_key.as_ref());
            let adapter = KaleyraAdapter::new(KaleyraSettings {
                base_url: base_url.clone(),
                sid,
                api_key,
                wa_source: wa_source.clone(),
            });
            endpoints.push(EndpointSpec {
                id,
                adapter: Arc::new(adapter),
                timeout,
                base_url,
            });
        }
        Ok(ProviderInstance {
            endpoints,
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

/// The pod's own key if it names one, else the instance's. A missing variable is reported
/// by the secret reader once; the empty placeholder then never reaches a provider.
fn pod_api_key(
    instance: &InstanceContext<'_>,
    raw: &KaleyraSection,
    pod: &PodSection,
    pod_key: &str,
    instance_key: Option<&SecretString>,
) -> SecretString {
    let placeholder = || SecretString::from(String::new());
    if pod.api_key.is_some() || pod.api_key_env.is_some() {
        return instance.secrets.required(
            &format!("{pod_key}.api_key"),
            pod.api_key.as_deref(),
            pod.api_key_env.as_deref(),
        );
    }
    match instance_key {
        Some(key) => key.clone(),
        None if raw.api_key.is_some() || raw.api_key_env.is_some() => placeholder(),
        None => {
            instance.secrets.report(ConfigError::new(
                format!("{pod_key}.api_key"),
                "is required: give api_key or api_key_env (on the instance or on every pod)",
            ));
            placeholder()
        }
    }
}
