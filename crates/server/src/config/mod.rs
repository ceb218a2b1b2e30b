//! Configuration: one TOML file plus `SWITCHBOARD__SECTION__KEY` environment overrides,
//! resolved into [`Settings`] — secrets read, each `[providers.NAME]` section built by the crate
//! of its kind (`crate::providers`), routes checked. Every error names the key at fault.

mod describe;
mod raw;
mod resolve;

pub use describe::describe;
pub use resolve::resolve;

use secrecy::SecretString;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use switchboard_core::provider::{TemplateApi, WebhookReceiver};
use switchboard_core::{Adapter, ErrorCode};

pub use switchboard_core::provider::ConfigError;

/// Every problem found in a configuration, in the order met; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

/// One problem on one line; several as a count followed by one indented line each.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} problems:", many.len())?;
                many.iter().try_for_each(|e| write!(f, "\n  {e}"))
            }
        }
    }
}

impl std::error::Error for ConfigErrors {}

/// The running configuration. Immutable; a reload builds a new one.
#[derive(Debug)]
pub struct Settings {
    pub server: ServerSettings,
    pub store_url: String,
    pub clients: Vec<Client>,
    pub providers: BTreeMap<String, Provider>,
    /// Every endpoint by id (`NAME`, or `NAME/POD` for a provider with several).
    pub endpoints: BTreeMap<String, Arc<Endpoint>>,
    /// Senders by number, `+<digits>`.
    pub senders: BTreeMap<String, Sender>,
    pub default_sender: Option<String>,
    pub resilience: Resilience,
    pub webhooks: Webhooks,
    pub queue: QueueSettings,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub public_url: String,
    pub max_body_bytes: usize,
    /// The body limit of `POST /v1/messages/batch`.
    pub max_batch_bytes: usize,
    pub shutdown_timeout_secs: u64,
}

pub struct Client {
    pub name: String,
    pub token: SecretString,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A provider instance (a table under `[providers]`), built by its kind's crate.
pub struct Provider {
    pub name: String,
    /// Its `kind`, as the registry names it (`crate::providers`).
    pub kind: &'static str,
    /// Its endpoints in failover order, as its kind built them.
    pub endpoint_ids: Vec<String>,
    /// Template creation, for the kinds that offer it (`POST /v1/templates`).
    pub templates: Option<Arc<dyn TemplateApi>>,
    /// How its webhooks are proven and parsed. Without its secret, it accepts none.
    pub webhooks: Arc<dyn WebhookReceiver>,
    /// Whether a sender routed through it needs `phone_number_id`.
    pub needs_phone_number_id: bool,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("endpoint_ids", &self.endpoint_ids)
            .finish_non_exhaustive()
    }
}

/// One place a message can be sent.
#[derive(Debug)]
pub struct Endpoint {
    pub id: String,
    pub provider: String,
    /// Its provider's `kind`.
    pub kind: &'static str,
    pub adapter: Arc<dyn Adapter>,
    pub timeout: Duration,
    /// Where it sends, for `config check` (no secrets in it).
    pub base_url: String,
}

#[derive(Debug, Clone)]
pub struct Sender {
    pub number: String,
    /// Provider instance names in failover order.
    pub route: Vec<String>,
    pub phone_number_id: Option<String>,
    /// Pacing budget: queued messages are handed over at no more than this rate, summed over
    /// every replica sharing the store; synchronous sends count against it.
    pub max_per_second: u32,
}

#[derive(Debug, Clone)]
pub struct Resilience {
    pub failure_threshold: u32,
    pub open_secs: u64,
    pub retry_on_timeout: bool,
    pub failover_on: Vec<ErrorCode>,
}

#[derive(Debug, Clone)]
pub struct Webhooks {
    pub callback_hosts_allow: Vec<String>,
    pub retry_base_ms: u64,
    pub max_attempts: u32,
    pub subscribers: Vec<Subscriber>,
}

/// `[queue]`: the workers that hand queued messages to providers (docs/async.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    /// Hand-overs in flight at once, per replica.
    pub workers: usize,
    /// First retry delay, doubling with each attempt.
    pub retry_base_ms: u64,
    /// Hand-overs of one message, the first included.
    pub max_attempts: u32,
    /// Least time between two queued messages of one sender to one recipient.
    pub per_recipient_gap_ms: u64,
    /// A hand-over whose replica has not renewed it for this long is taken for lost with the
    /// replica: its outcome is unknown.
    pub lease_secs: u64,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            workers: 64,
            retry_base_ms: 1000,
            max_attempts: 6,
            per_recipient_gap_ms: 0,
            lease_secs: 15,
        }
    }
}

#[derive(Clone)]
pub struct Subscriber {
    pub url: String,
    pub secret: SecretString,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// The endpoints a sender's route expands to, in failover order.
    pub fn route_endpoints(&self, route: &[String]) -> Vec<Arc<Endpoint>> {
        route
            .iter()
            .filter_map(|name| self.providers.get(name))
            .flat_map(|provider| provider.endpoint_ids.iter())
            .filter_map(|id| self.endpoints.get(id).cloned())
            .collect()
    }
}

/// Reads the file and the environment overrides into the raw configuration tree.
pub fn read_layers(path: &Path) -> Result<config::Config, ConfigError> {
    config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix("SWITCHBOARD")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        )
        .build()
        .map_err(|e| ConfigError::new("file", without_source_lines(&e.to_string())))
}

/// A TOML parse error quotes the offending source line, which may hold an inline secret: keep
/// the position and the parser's complaint, drop the quoted lines.
fn without_source_lines(message: &str) -> String {
    message
        .lines()
        .filter(|line| {
            let rest = line
                .trim_start()
                .trim_start_matches(|c: char| c.is_ascii_digit());
            !rest.trim_start().starts_with('|')
        })
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

/// Loads and resolves the configuration file, reading secrets from the process environment.
pub fn load(path: &Path) -> Result<Settings, ConfigErrors> {
    resolve(read_layers(path)?, &|name| std::env::var(name).ok())
}
