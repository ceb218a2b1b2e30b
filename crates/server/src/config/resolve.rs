//! Raw configuration tree → [`Settings`].

use super::raw::*;
use super::secrets::{optional_secret, required_secret, EnvLookup};
use super::*;
use switchboard_core::deserialize_at;
use switchboard_core::phone::e164_digits;
use switchboard_generic::{GenericAdapter, GenericSettings};
use switchboard_kaleyra::{KaleyraAdapter, KaleyraSettings};
use switchboard_meta::MetaSettings;

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_MAX_BODY_BYTES: usize = 65_536;
const DEFAULT_SHUTDOWN_SECS: u64 = 30;
const DEFAULT_STORE_URL: &str = "sqlite://./data/switchboard.db";
const DEFAULT_META_BASE_URL: &str = "https://graph.facebook.com";
const DEFAULT_META_API_VERSION: &str = "v24.0";
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_FAILOVER_ON: [ErrorCode; 4] = [
    ErrorCode::ProviderUnavailable,
    ErrorCode::RateLimited,
    ErrorCode::ProviderAuthFailed,
    ErrorCode::InsufficientFunds,
];

type Result<T> = std::result::Result<T, ConfigError>;

/// Resolves a configuration tree, reading `*_env` secrets through `env`.
pub fn resolve(tree: config::Config, env: EnvLookup<'_>) -> Result<Settings> {
    let raw: RawConfig = deserialize_at("", tree)?;
    let server = resolve_server(&raw.server)?;
    let store_url = resolve_store(&raw.store)?;
    let clients = resolve_clients(&raw.clients, env)?;

    let mut providers = BTreeMap::new();
    let mut endpoints = BTreeMap::new();
    for (name, value) in &raw.providers {
        let (provider, provider_endpoints) = resolve_provider(name, value.clone(), &server, env)?;
        for endpoint in provider_endpoints {
            endpoints.insert(endpoint.id.clone(), Arc::new(endpoint));
        }
        providers.insert(name.clone(), provider);
    }

    let senders = resolve_senders(&raw.senders, &providers)?;
    let default_sender = match &raw.routing.default_sender {
        None => None,
        Some(number) => {
            let key = "routing.default_sender";
            let number = normalize_number(key, number)?;
            if !senders.contains_key(&number) {
                return Err(ConfigError::new(
                    key,
                    format!("{number} is not one of [[senders]]"),
                ));
            }
            Some(number)
        }
    };

    Ok(Settings {
        server,
        store_url,
        clients,
        providers,
        endpoints,
        senders,
        default_sender,
        resilience: resolve_resilience(&raw.resilience)?,
        webhooks: resolve_webhooks(&raw.webhooks, env)?,
    })
}

fn resolve_server(raw: &RawServer) -> Result<ServerSettings> {
    let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen: SocketAddr = listen_text
        .parse()
        .map_err(|_| ConfigError::new("server.listen", "must be an address like 127.0.0.1:8080"))?;
    let public_url = match &raw.public_url {
        Some(url) => http_url("server.public_url", url)?,
        None => format!("http://{listen}"),
    };
    let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
    if max_body_bytes == 0 {
        return Err(ConfigError::new(
            "server.max_body_bytes",
            "must be greater than 0",
        ));
    }
    Ok(ServerSettings {
        listen,
        public_url: public_url.trim_end_matches('/').to_string(),
        max_body_bytes,
        shutdown_timeout_secs: raw.shutdown_timeout_secs.unwrap_or(DEFAULT_SHUTDOWN_SECS),
    })
}

fn resolve_store(raw: &RawStore) -> Result<String> {
    let url = raw.url.as_deref().unwrap_or(DEFAULT_STORE_URL);
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        return Err(ConfigError::new(
            "store.url",
            "must be a sqlite:// or postgres:// URL",
        ));
    }
    Ok(url.to_string())
}

fn resolve_clients(raw: &[RawClient], env: EnvLookup<'_>) -> Result<Vec<Client>> {
    let mut clients: Vec<Client> = Vec::new();
    for (i, client) in raw.iter().enumerate() {
        let key = format!("clients[{i}]");
        if client.name.trim().is_empty() {
            return Err(ConfigError::new(format!("{key}.name"), "must not be empty"));
        }
        if clients.iter().any(|c| c.name == client.name) {
            return Err(ConfigError::new(
                format!("{key}.name"),
                format!("duplicate client {}", client.name),
            ));
        }
        let token = required_secret(
            &format!("{key}.token"),
            client.token.as_deref(),
            client.token_env.as_deref(),
            env,
        )?;
        clients.push(Client {
            name: client.name.clone(),
            token,
        });
    }
    Ok(clients)
}

fn resolve_provider(
    name: &str,
    value: config::Value,
    server: &ServerSettings,
    env: EnvLookup<'_>,
) -> Result<(Provider, Vec<Endpoint>)> {
    let key = format!("providers.{name}");
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ConfigError::new(
            &key,
            "provider names use letters, digits, '_' and '-'",
        ));
    }
    let kind = value
        .clone()
        .into_table()
        .ok()
        .and_then(|table| table.get("kind").cloned())
        .and_then(|kind| kind.into_string().ok());
    match kind.as_deref() {
        Some("meta") => resolve_meta(name, &key, deserialize_at(&key, value)?, env),
        Some("kaleyra") => resolve_kaleyra(name, &key, deserialize_at(&key, value)?, env),
        Some("generic") => resolve_generic(name, &key, deserialize_at(&key, value)?, server, env),
        _ => Err(ConfigError::new(
            format!("{key}.kind"),
            "is required: one of meta, kaleyra, generic",
        )),
    }
}

fn timeout(key: &str, timeout_ms: Option<u64>) -> Result<Duration> {
    match timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS) {
        0 => Err(ConfigError::new(
            format!("{key}.timeout_ms"),
            "must be greater than 0",
        )),
        ms => Ok(Duration::from_millis(ms)),
    }
}

fn resolve_meta(
    name: &str,
    key: &str,
    raw: RawMeta,
    env: EnvLookup<'_>,
) -> Result<(Provider, Vec<Endpoint>)> {
    let base_url = http_url(
        &format!("{key}.base_url"),
        raw.base_url.as_deref().unwrap_or(DEFAULT_META_BASE_URL),
    )?;
    let access_token = required_secret(
        &format!("{key}.access_token"),
        raw.access_token.as_deref(),
        raw.access_token_env.as_deref(),
        env,
    )?;
    let app_secret = optional_secret(
        &format!("{key}.app_secret"),
        raw.app_secret.as_deref(),
        raw.app_secret_env.as_deref(),
        env,
    )?;
    let verify_token = optional_secret(
        &format!("{key}.verify_token"),
        raw.verify_token.as_deref(),
        raw.verify_token_env.as_deref(),
        env,
    )?;
    let timeout = timeout(key, raw.timeout_ms)?;
    let adapter = Arc::new(MetaAdapter::new(MetaSettings {
        base_url: base_url.clone(),
        api_version: raw
            .api_version
            .unwrap_or_else(|| DEFAULT_META_API_VERSION.to_string()),
        access_token,
    }));
    let endpoint = Endpoint {
        id: name.to_string(),
        provider: name.to_string(),
        kind: ProviderKind::Meta,
        adapter: adapter.clone(),
        timeout,
        base_url,
    };
    let provider = Provider {
        name: name.to_string(),
        kind: ProviderKind::Meta,
        endpoint_ids: vec![endpoint.id.clone()],
        templates: Some(TemplateTarget {
            adapter,
            waba_id: raw.waba_id,
            timeout,
        }),
        webhook_proof: WebhookProof::Meta {
            app_secret,
            verify_token,
        },
    };
    Ok((provider, vec![endpoint]))
}

fn resolve_kaleyra(
    name: &str,
    key: &str,
    raw: RawKaleyra,
    env: EnvLookup<'_>,
) -> Result<(Provider, Vec<Endpoint>)> {
    let wa_source = raw.wa_source.unwrap_or_else(|| "api".to_string());
    if !switchboard_kaleyra::WA_SOURCES.contains(&wa_source.as_str()) {
        return Err(ConfigError::new(
            format!("{key}.wa_source"),
            format!(
                "must be one of {}",
                switchboard_kaleyra::WA_SOURCES.join(", ")
            ),
        ));
    }
    let instance_key = optional_secret(
        &format!("{key}.api_key"),
        raw.api_key.as_deref(),
        raw.api_key_env.as_deref(),
        env,
    )?;
    let callback_token = optional_secret(
        &format!("{key}.callback_token"),
        raw.callback_token.as_deref(),
        raw.callback_token_env.as_deref(),
        env,
    )?;
    let timeout = timeout(key, raw.timeout_ms)?;
    if raw.pods.is_empty() {
        return Err(ConfigError::new(
            format!("{key}.pods"),
            "needs at least one [[pods]] entry (name = \"in\", \"sg\" or \"eu\")",
        ));
    }
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for (i, pod) in raw.pods.iter().enumerate() {
        let pod_key = format!("{key}.pods[{i}]");
        let base_url = switchboard_kaleyra::resolve_pod(&pod.name, pod.base_url.as_deref())
            .map_err(|message| ConfigError::new(format!("{pod_key}.name"), message))?;
        let base_url = http_url(&format!("{pod_key}.base_url"), &base_url)?;
        let id = format!("{name}/{}", pod.name);
        if endpoints.iter().any(|e| e.id == id) {
            return Err(ConfigError::new(
                format!("{pod_key}.name"),
                format!("pod {} is listed twice", pod.name),
            ));
        }
        let sid = pod.sid.clone().or_else(|| raw.sid.clone()).ok_or_else(|| {
            ConfigError::new(
                format!("{key}.sid"),
                "is required (on the instance or on every pod)",
            )
        })?;
        let api_key = match optional_secret(
            &format!("{pod_key}.api_key"),
            pod.api_key.as_deref(),
            pod.api_key_env.as_deref(),
            env,
        )? {
            Some(pod_key) => pod_key,
            None => instance_key.clone().ok_or_else(|| {
                ConfigError::new(
                    format!("{key}.api_key"),
                    "is required: give api_key or api_key_env (on the instance or on every pod)",
                )
            })?,
        };
        let adapter = KaleyraAdapter::new(KaleyraSettings {
            base_url: base_url.clone(),
            sid,
            api_key,
            wa_source: wa_source.clone(),
        });
        endpoints.push(Endpoint {
            id,
            provider: name.to_string(),
            kind: ProviderKind::Kaleyra,
            adapter: Arc::new(adapter),
            timeout,
            base_url,
        });
    }
    let provider = Provider {
        name: name.to_string(),
        kind: ProviderKind::Kaleyra,
        endpoint_ids: endpoints.iter().map(|e| e.id.clone()).collect(),
        templates: None,
        webhook_proof: WebhookProof::CallbackToken(callback_token),
    };
    Ok((provider, endpoints))
}

fn resolve_generic(
    name: &str,
    key: &str,
    raw: RawGeneric,
    server: &ServerSettings,
    env: EnvLookup<'_>,
) -> Result<(Provider, Vec<Endpoint>)> {
    let base_url = http_url(&format!("{key}.base_url"), &raw.base_url)?;
    let path = raw
        .path
        .unwrap_or_else(|| switchboard_generic::DEFAULT_PATH.to_string());
    if !path.starts_with('/') {
        return Err(ConfigError::new(
            format!("{key}.path"),
            "must start with '/'",
        ));
    }
    let auth_value = optional_secret(
        &format!("{key}.auth_value"),
        raw.auth_value.as_deref(),
        raw.auth_value_env.as_deref(),
        env,
    )?;
    let auth = match (raw.auth_header, auth_value) {
        (Some(header), Some(value)) => Some((header, value)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::new(
                format!("{key}.auth_value"),
                "is required when auth_header is set",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                format!("{key}.auth_header"),
                "is required when auth_value is set",
            ))
        }
    };
    let callback_token = optional_secret(
        &format!("{key}.callback_token"),
        raw.callback_token.as_deref(),
        raw.callback_token_env.as_deref(),
        env,
    )?;
    let adapter = GenericAdapter::new(GenericSettings {
        base_url: base_url.clone(),
        path,
        auth,
        callbacks_url: Some(format!("{}/webhooks/{name}", server.public_url)),
    });
    let endpoint = Endpoint {
        id: name.to_string(),
        provider: name.to_string(),
        kind: ProviderKind::Generic,
        adapter: Arc::new(adapter),
        timeout: timeout(key, raw.timeout_ms)?,
        base_url,
    };
    let provider = Provider {
        name: name.to_string(),
        kind: ProviderKind::Generic,
        endpoint_ids: vec![endpoint.id.clone()],
        templates: None,
        webhook_proof: WebhookProof::CallbackToken(callback_token),
    };
    Ok((provider, vec![endpoint]))
}

fn resolve_senders(
    raw: &[RawSender],
    providers: &BTreeMap<String, Provider>,
) -> Result<BTreeMap<String, Sender>> {
    let mut senders = BTreeMap::new();
    for (i, sender) in raw.iter().enumerate() {
        let key = format!("senders[{i}]");
        let number = normalize_number(&format!("{key}.number"), &sender.number)?;
        if sender.route.is_empty() {
            return Err(ConfigError::new(
                format!("{key}.route"),
                "needs at least one provider",
            ));
        }
        for (r, name) in sender.route.iter().enumerate() {
            let Some(provider) = providers.get(name) else {
                return Err(ConfigError::new(
                    format!("{key}.route[{r}]"),
                    format!(
                        "{name} is not a configured provider (known: {})",
                        providers.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            };
            if sender.route[..r].contains(name) {
                return Err(ConfigError::new(
                    format!("{key}.route[{r}]"),
                    format!("{name} is listed twice"),
                ));
            }
            if provider.kind == ProviderKind::Meta && sender.phone_number_id.is_none() {
                return Err(ConfigError::new(
                    format!("{key}.phone_number_id"),
                    format!("is required because the route has the Meta provider {name}"),
                ));
            }
        }
        let resolved = Sender {
            number: number.clone(),
            route: sender.route.clone(),
            phone_number_id: sender.phone_number_id.clone(),
        };
        if senders.insert(number.clone(), resolved).is_some() {
            return Err(ConfigError::new(
                format!("{key}.number"),
                format!("{number} is listed twice"),
            ));
        }
    }
    Ok(senders)
}

fn resolve_resilience(raw: &RawResilience) -> Result<Resilience> {
    let failover_on = match &raw.failover_on {
        None => DEFAULT_FAILOVER_ON.to_vec(),
        Some(names) => names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                ErrorCode::ALL
                    .into_iter()
                    .find(|c| c.as_str() == name)
                    .ok_or_else(|| {
                        ConfigError::new(
                            format!("resilience.failover_on[{i}]"),
                            format!("{name} is not an error code"),
                        )
                    })
            })
            .collect::<Result<_>>()?,
    };
    let failure_threshold = raw.failure_threshold.unwrap_or(5);
    if failure_threshold == 0 {
        return Err(ConfigError::new(
            "resilience.failure_threshold",
            "must be at least 1",
        ));
    }
    Ok(Resilience {
        failure_threshold,
        open_secs: raw.open_secs.unwrap_or(30),
        retry_on_timeout: raw.retry_on_timeout.unwrap_or(false),
        failover_on,
    })
}

fn resolve_webhooks(raw: &RawWebhooks, env: EnvLookup<'_>) -> Result<Webhooks> {
    let subscribers = raw
        .subscribers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let key = format!("webhooks.subscribers[{i}]");
            Ok(Subscriber {
                url: http_url(&format!("{key}.url"), &s.url)?,
                secret: required_secret(
                    &format!("{key}.secret"),
                    s.secret.as_deref(),
                    s.secret_env.as_deref(),
                    env,
                )?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Webhooks {
        callback_hosts_allow: raw.callback_hosts_allow.clone(),
        retry_base_ms: raw.retry_base_ms.unwrap_or(1000),
        max_attempts: raw.max_attempts.unwrap_or(8),
        subscribers,
    })
}

fn normalize_number(key: &str, number: &str) -> Result<String> {
    e164_digits(number)
        .map(|digits| format!("+{digits}"))
        .ok_or_else(|| ConfigError::new(key, "must be an E.164 phone number like +15550783881"))
}

fn http_url(key: &str, value: &str) -> Result<String> {
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

#[cfg(test)]
mod tests;
