//! What a provider crate gives the server, so that a provider is one crate plus one line in
//! the server's registry: it reads its own `[providers.NAME]` section (defaults, secrets given
//! inline or as `*_env`), builds its endpoints, and proves and parses its own webhooks.
//! Nothing here does I/O; secrets come through the [`Secrets`] reader the server hands over.

use crate::adapter::{Adapter, ProviderRequest, ProviderResponse};
use crate::error::{ProviderFailure, ValidationError};
use crate::event::{MalformedWebhook, ProviderEvent};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// How long an endpoint waits for an answer unless its section says `timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// A provider kind: the value of `kind` in a `[providers.NAME]` section.
pub trait ProviderKind: Send + Sync {
    /// `meta`, `kaleyra`, …
    fn name(&self) -> &'static str;

    /// Builds the instance described by `section` (the whole table, `kind` included). A
    /// problem with a secret is recorded in `instance.secrets` and resolution goes on; any
    /// other problem is returned, naming its key.
    fn build(
        &self,
        section: Value,
        instance: &InstanceContext<'_>,
    ) -> Result<ProviderInstance, ConfigError>;
}

/// What a provider kind knows of the instance it builds.
pub struct InstanceContext<'a> {
    /// The instance name (the table key), which names its endpoints.
    pub name: &'a str,
    /// `providers.NAME`: the prefix of every key path in its errors.
    pub key: &'a str,
    /// How providers reach the gateway, without a trailing `/` (for callback URLs).
    pub public_url: &'a str,
    pub secrets: &'a Secrets<'a>,
}

impl InstanceContext<'_> {
    /// `providers.NAME.field`.
    pub fn key(&self, field: &str) -> String {
        format!("{}.{field}", self.key)
    }

    /// Deserializes the section, naming the offending key on failure.
    pub fn parse<T: DeserializeOwned>(&self, section: Value) -> Result<T, ConfigError> {
        crate::parse::deserialize_at(self.key, section).map_err(ConfigError::from)
    }

    /// `timeout_ms`, or the default; 0 is refused.
    pub fn timeout(&self, timeout_ms: Option<u64>) -> Result<Duration, ConfigError> {
        match timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS) {
            0 => Err(ConfigError::new(
                self.key("timeout_ms"),
                "must be greater than 0",
            )),
            ms => Ok(Duration::from_millis(ms)),
        }
    }

    /// The URL providers post this instance's webhooks to.
    pub fn webhook_url(&self) -> String {
        format!("{}/webhooks/{}", self.public_url, self.name)
    }
}

/// A provider instance, ready to send and to receive webhooks.
pub struct ProviderInstance {
    /// In failover order: one per Kaleyra pod, else just one named after the instance.
    pub endpoints: Vec<EndpointSpec>,
    pub webhooks: Arc<dyn WebhookReceiver>,
    /// Template creation (`POST /v1/templates`), for providers that offer it.
    pub templates: Option<Arc<dyn TemplateApi>>,
    /// Whether a sender routed through it needs `phone_number_id` (Meta's id of the number).
    pub needs_phone_number_id: bool,
}

/// One place a message can be sent.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    /// `kaleyra/in`, `meta`, …
    pub id: String,
    pub adapter: Arc<dyn Adapter>,
    pub timeout: Duration,
    /// Where it sends, for `config check` (no secret in it).
    pub base_url: String,
}

/// A provider's webhooks: the proof that a request comes from it, and its payloads parsed
/// into provider-neutral events.
pub trait WebhookReceiver: Send + Sync + fmt::Debug {
    /// The answer to a `GET` subscription handshake (`hub.challenge` for Meta), or `None` for
    /// 403. `query` holds the decoded query parameters.
    fn handshake(&self, _query: &[(String, String)]) -> Option<String> {
        None
    }

    /// Whether the request is proven to come from the provider. `header` looks a request
    /// header up by name (case-insensitive); `body` is the exact bytes received. An instance
    /// whose secret is not configured proves nothing.
    fn is_proven(&self, header: &dyn Fn(&str) -> Option<String>, body: &[u8]) -> bool;

    fn parse(&self, body: &[u8]) -> Result<Vec<ProviderEvent>, MalformedWebhook>;
}

/// Creating message templates through a provider.
pub trait TemplateApi: Send + Sync + fmt::Debug {
    /// Checks the caller's body before anything is sent.
    fn validate(&self, body: &Value) -> Result<(), ValidationError>;
    /// The request to send, or why this instance cannot create templates (e.g. no account id
    /// configured).
    fn render(&self, body: &Value) -> Result<ProviderRequest, String>;
    /// The provider's answer → the created template as the API shows it, or a failure.
    fn classify(&self, response: &ProviderResponse<'_>) -> Result<Value, ProviderFailure>;
    fn timeout(&self) -> Duration;
}

/// Compares a presented token with the expected secret in constant time.
pub fn same_secret(given: &str, expected: &SecretString) -> bool {
    given
        .as_bytes()
        .ct_eq(expected.expose_secret().as_bytes())
        .into()
}

/// The webhook proof shared by providers that send a fixed token in a header (Kaleyra's
/// callback profile, the generic API): that header must equal the configured token.
#[derive(Debug)]
pub struct CallbackToken {
    pub header: &'static str,
    pub token: Option<SecretString>,
    pub parse: fn(&[u8]) -> Result<Vec<ProviderEvent>, MalformedWebhook>,
}

impl WebhookReceiver for CallbackToken {
    fn is_proven(&self, header: &dyn Fn(&str) -> Option<String>, _body: &[u8]) -> bool {
        match (&self.token, header(self.header)) {
            (Some(token), Some(given)) => same_secret(&given, token),
            _ => false,
        }
    }

    fn parse(&self, body: &[u8]) -> Result<Vec<ProviderEvent>, MalformedWebhook> {
        (self.parse)(body)
    }
}

/// A configuration problem: the key path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl From<ValidationError> for ConfigError {
    fn from(e: ValidationError) -> Self {
        ConfigError::new(e.field, e.message)
    }
}

/// Looks up environment variables; injected so tests need not touch the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads secrets — a key `x` given either inline as `x` or as `x_env = "VAR"` naming an
/// environment variable, exactly one of the two — and keeps every problem it meets, so that
/// one run of `config check` names every missing variable instead of the first.
pub struct Secrets<'a> {
    env: EnvLookup<'a>,
    problems: RefCell<Vec<ConfigError>>,
}

impl<'a> Secrets<'a> {
    pub fn new(env: EnvLookup<'a>) -> Self {
        Secrets {
            env,
            problems: RefCell::new(Vec::new()),
        }
    }

    /// The secret at `key` (e.g. `providers.meta.access_token`); `None` when neither form is
    /// present, or when the one given is unusable (recorded as a problem).
    pub fn optional(
        &self,
        key: &str,
        inline: Option<&str>,
        env_name: Option<&str>,
    ) -> Option<SecretString> {
        match (inline, env_name) {
            (Some(_), Some(_)) => self.problem(ConfigError::new(
                key,
                format!("give either {} or {}_env, not both", last(key), last(key)),
            )),
            (Some(""), None) => self.problem(ConfigError::new(key, "must not be empty")),
            (Some(value), None) => Some(SecretString::from(value.to_string())),
            (None, Some(var)) => match (self.env)(var) {
                Some(value) if !value.is_empty() => Some(SecretString::from(value)),
                _ => self.problem(ConfigError::new(
                    format!("{key}_env"),
                    format!("environment variable {var} is not set (or empty)"),
                )),
            },
            (None, None) => None,
        }
    }

    /// Like [`Secrets::optional`], but one of the two forms must be present. On a problem the
    /// result is an empty placeholder: resolution goes on to find the other problems, and
    /// fails at the end.
    pub fn required(
        &self,
        key: &str,
        inline: Option<&str>,
        env_name: Option<&str>,
    ) -> SecretString {
        if inline.is_none() && env_name.is_none() {
            self.report(ConfigError::new(
                key,
                format!("is required: give {} or {}_env", last(key), last(key)),
            ));
        }
        self.optional(key, inline, env_name)
            .unwrap_or_else(|| SecretString::from(String::new()))
    }

    /// Records a problem met beside a secret (resolution goes on).
    pub fn report(&self, error: ConfigError) {
        self.problems.borrow_mut().push(error);
    }

    pub fn into_problems(self) -> Vec<ConfigError> {
        self.problems.into_inner()
    }

    fn problem<T>(&self, error: ConfigError) -> Option<T> {
        self.report(error);
        None
    }
}

fn last(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// An absolute http(s) URL with a host, without its trailing `/`.
pub fn http_url(key: &str, value: &str) -> Result<String, ConfigError> {
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            Ok(value.trim_end_matches('/').to_string())
        }
        _ => Err(ConfigError::new(
            key,
            format!("must be an http(s) URL (got {value:?})"),
        )),
    }
}
