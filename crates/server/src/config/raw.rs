//! The configuration file's shape (docs/configuration.md). Unknown keys are errors, so a typo never
//! silently falls back to a default.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub clients: Vec<RawClient>,
    /// Provider instances by name; each is dispatched on its `kind` (see `RawProvider`).
    #[serde(default)]
    pub providers: BTreeMap<String, config::Value>,
    #[serde(default)]
    pub senders: Vec<RawSender>,
    #[serde(default)]
    pub routing: RawRouting,
    #[serde(default)]
    pub resilience: RawResilience,
    #[serde(default)]
    pub webhooks: RawWebhooks,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub shutdown_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    pub name: String,
    pub token: Option<String>,
    pub token_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMeta {
    /// Already read to pick this struct; kept so `deny_unknown_fields` accepts it.
    #[allow(dead_code)]
    pub kind: String,
    pub base_url: Option<String>,
    pub api_version: Option<String>,
    pub access_token: Option<String>,
    pub access_token_env: Option<String>,
    pub app_secret: Option<String>,
    pub app_secret_env: Option<String>,
    pub verify_token: Option<String>,
    pub verify_token_env: Option<String>,
    pub waba_id: Option<String>,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKaleyra {
    /// Already read to pick this struct; kept so `deny_unknown_fields` accepts it.
    #[allow(dead_code)]
    pub kind: String,
    pub sid: Option<String>,
    pub api_key: Option<String>,
    pub api_key_env: Option<String>,
    pub wa_source: Option<String>,
    pub callback_token: Option<String>,
    pub callback_token_env: Option<String>,
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub pods: Vec<RawPod>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPod {
    pub name: String,
    pub base_url: Option<String>,
    pub sid: Option<String>,
    pub api_key: Option<String>,
    pub api_key_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeneric {
    /// Already read to pick this struct; kept so `deny_unknown_fields` accepts it.
    #[allow(dead_code)]
    pub kind: String,
    pub base_url: String,
    pub path: Option<String>,
    pub auth_header: Option<String>,
    pub auth_value: Option<String>,
    pub auth_value_env: Option<String>,
    pub callback_token: Option<String>,
    pub callback_token_env: Option<String>,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSender {
    pub number: String,
    pub route: Vec<String>,
    pub phone_number_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    pub default_sender: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResilience {
    pub failure_threshold: Option<u32>,
    pub open_secs: Option<u64>,
    pub retry_on_timeout: Option<bool>,
    pub failover_on: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhooks {
    #[serde(default)]
    pub callback_hosts_allow: Vec<String>,
    pub retry_base_ms: Option<u64>,
    pub max_attempts: Option<u32>,
    #[serde(default)]
    pub subscribers: Vec<RawSubscriber>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubscriber {
    pub url: String,
    pub secret: Option<String>,
    pub secret_env: Option<String>,
}
