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
    #[serde(default)]
    pub queue: RawQueue,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub max_batch_bytes: Option<usize>,
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
pub struct RawSender {
    pub number: String,
    pub route: Vec<String>,
    pub phone_number_id: Option<String>,
    pub max_per_second: Option<u32>,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    pub workers: Option<usize>,
    pub retry_base_ms: Option<u64>,
    pub max_attempts: Option<u32>,
    pub per_recipient_gap_ms: Option<u64>,
    pub lease_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubscriber {
    pub url: String,
    pub secret: Option<String>,
    pub secret_env: Option<String>,
}
