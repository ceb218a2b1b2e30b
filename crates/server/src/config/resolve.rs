//! Raw configuration tree → [`Settings`].

use super::raw::*;
use super::secrets::{EnvLookup, Secrets};
use super::*;
use std::collections::BTreeSet;
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

/// Resolves a configuration tree, reading `*_env` secrets through `env`. Every problem found
/// is reported, not just the first (a key the file gets wrong in its structure — an unknown
/// key, a wrong type — stops the reading of that tree at once, though).
pub fn resolve(
    tree: config::Config,
    env: EnvLookup<'_>,
) -> std::result::Result<Settings, ConfigErrors> {
    let raw: RawConfig =
        deserialize_at("", tree).map_err(|e| ConfigErrors::from(ConfigError::from(e)))?;
    let secrets = Secrets::new(env);
    let mut problems = Vec::new();
    let server = resolve_server(&raw.server)
        .map_err(|e| problems.push(e))
        .ok();
    let store_url = resolve_store(&raw.store).map_err(|e| problems.push(e)).ok();
    let clients = resolve_clients(&raw.clients, &secrets, &mut problems);
    let public_url = server.as_ref().map_or_else(
        || format!("http://{DEFAULT_LISTEN}"),
        |s| s.public_url.clone(),
    );

    let mut providers = BTreeMap::new();
    let mut endpoints = BTreeMap::new();
    let mut unusable = BTreeSet::new();
    for (name, value) in &raw.providers {
        match resolve_provider(name, value.clone(), &public_url, &secrets) {
            Ok((provider, provider_endpoints)) => {
                for endpoint in provider_endpoints {
                    endpoints.insert(endpoint.id.clone(), Arc::new(endpoint));
                }
                providers.insert(name.clone(), provider);
            }
            Err(error) => {
                problems.push(error);
                unusable.insert(name.clone());
            }
        }
    }

    let senders = resolve_senders(&raw.senders, &providers, &unusable, &mut problems);
    let default_sender = match &raw.routing.default_sender {
        None => None,
        Some(number) => {
            let key = "routing.default_sender";
            // A sender whose entry has a problem is not in `senders`: that problem is reported.
            let every_sender_resolved = senders.len() == raw.senders.len();
            match normalize_number(key, number) {
                Ok(number) if senders.contains_key(&number) || !every_sender_resolved => {
                    Some(number)
                }
                Ok(number) => {
                    problems.push(ConfigError::new(
                        key,
                        format!("{number} is not one of [[senders]]"),
                    ));
                    None
                }
                Err(error) => {
                    problems.push(error);
                    None
                }
            }
        }
    };
    let resilience = resolve_resilience(&raw.resilience)
        .map_err(|e| problems.push(e))
        .ok();
    let webhooks = resolve_webhooks(&raw.webhooks, &secrets, &mut problems);

    problems.extend(secrets.into_problems());
    match (server, store_url, resilience) {
        (Some(server), Some(store_url), Some(resilience)) if problems.is_empty() => Ok(Settings {
            server,
            store_url,
            clients,
            providers,
            endpoints,
            senders,
            default_sender,
            resilience,
            webhooks,
        }),
        _ => Err(ConfigErrors(problems)),
    }
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

fn resolve_clients(
    raw: &[RawClient],
    secrets: &Secrets<'_>,
    problems: &mut Vec<ConfigError>,
) -> Vec<Client> {
    let mut clients: Vec<Client> = Vec::new();
    for (i, client) in raw.iter().enumerate() {
        let key = format!("clients[{i}]");
        if client.name.trim().is_empty() {
            problems.push(ConfigError::new(format!("{key}.name"), "must not be empty"));
        } else if clients.iter().any(|c| c.name == client.name) {
            problems.push(ConfigError::new(
                format!("{key}.name"),
                format!("duplicate client {}", client.name),
            ));
        }
        let token = secrets.required(
            &format!("{key}.token"),
            client.token.as_deref(),
            client.token_env.as_deref(),
        );
        clients.push(Client {
            name: client.name.clone(),
            token,
        });
    }
    clients
}

fn resolve_provider(
    name: &str,
    value: config::Value,
    public_url: &str,
    secrets: &Secrets<'_>,
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
        Some("meta") => resolve_meta(name, &key, deserialize_at(&key, value)?, secrets),
        Some("kaleyra") => resolve_kaleyra(name, &key, deserialize_at(&key, value)?, secrets),
        Some("generic") => resolve_generic(
            name,
            &key,
            deserialize_at(&key, value)?,
            public_url,
            secrets,
        ),
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
    secrets: &Secrets<'_>,
) -> Result<(Provider, Vec<Endpoint>)> {
    let base_url = http_url(
        &format!("{key}.base_url"),
        raw.base_url.as_deref().unwrap_or(DEFAULT_META_BASE_URL),
    )?;
    let access_token = secrets.required(
        &format!("{key}.access_token"),
        raw.access_token.as_deref(),
        raw.access_token_env.as_deref(),
    );
    let app_secret = secrets.optional(
        &format!("{key}.app_secret"),
        raw.app_secret.as_deref(),
        raw.app_secret_env.as_deref(),
    );
    let verify_token = secrets.optional(
        &format!("{key}.verify_token"),
        raw.verify_token.as_deref(),
        raw.verify_token_env.as_deref(),
    );
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
    secrets: &Secrets<'_>,
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
    let instance_key = secrets.optional(
        &format!("{key}.api_key"),
        raw.api_key.as_deref(),
        raw.api_key_env.as_deref(),
    );
    let callback_token = secrets.optional(
        &format!("{key}.callback_token"),
        raw.callback_token.as_deref(),
        raw.callback_token_env.as_deref(),
    );
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
        let pod_names_a_key = pod.api_key.is_some() || pod.api_key_env.is_some();
        let instance_names_a_key = raw.api_key.is_some() || raw.api_key_env.is_some();
        let api_key = match &instance_key {
            _ if pod_names_a_key => secrets.required(
                &format!("{pod_key}.api_key"),
                pod.api_key.as_deref(),
                pod.api_key_env.as_deref(),
            ),
            Some(instance_key) => instance_key.clone(),
            // Its variable is missing: already reported.
            None if instance_names_a_key => SecretString::from(String::new()),
            None => {
                secrets.report(ConfigError::new(
                    format!("{pod_key}.api_key"),
                    "is required: give api_key or api_key_env (on the instance or on every pod)",
                ));
                SecretString::from(String::new())
            }
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
    public_url: &str,
    secrets: &Secrets<'_>,
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
    let auth_value_given = raw.auth_value.is_some() || raw.auth_value_env.is_some();
    let auth = match (raw.auth_header, auth_value_given) {
        (Some(header), true) => {
            let value = secrets.required(
                &format!("{key}.auth_value"),
                raw.auth_value.as_deref(),
                raw.auth_value_env.as_deref(),
            );
            Some((header, value))
        }
        (None, false) => None,
        (Some(_), false) => {
            return Err(ConfigError::new(
                format!("{key}.auth_value"),
                "is required when auth_header is set",
            ))
        }
        (None, true) => {
            return Err(ConfigError::new(
                format!("{key}.auth_header"),
                "is required when auth_value is set",
            ))
        }
    };
    let callback_token = secrets.optional(
        &format!("{key}.callback_token"),
        raw.callback_token.as_deref(),
        raw.callback_token_env.as_deref(),
    );
    let adapter = GenericAdapter::new(GenericSettings {
        base_url: base_url.clone(),
        path,
        auth,
        callbacks_url: Some(format!("{public_url}/webhooks/{name}")),
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
    unusable: &BTreeSet<String>,
    problems: &mut Vec<ConfigError>,
) -> BTreeMap<String, Sender> {
    let mut senders = BTreeMap::new();
    for (i, sender) in raw.iter().enumerate() {
        match resolve_sender(&format!("senders[{i}]"), sender, providers, unusable) {
            Ok(resolved) if senders.contains_key(&resolved.number) => {
                problems.push(ConfigError::new(
                    format!("senders[{i}].number"),
                    format!("{} is listed twice", resolved.number),
                ));
            }
            Ok(resolved) => {
                senders.insert(resolved.number.clone(), resolved);
            }
            Err(error) => problems.push(error),
        }
    }
    senders
}

/// One `[[senders]]` entry. A route naming a provider whose own section has a problem is not
/// checked further (that problem is reported already).
fn resolve_sender(
    key: &str,
    sender: &RawSender,
    providers: &BTreeMap<String, Provider>,
    unusable: &BTreeSet<String>,
) -> Result<Sender> {
    let number = normalize_number(&format!("{key}.number"), &sender.number)?;
    if sender.route.is_empty() {
        return Err(ConfigError::new(
            format!("{key}.route"),
            "needs at least one provider",
        ));
    }
    for (r, name) in sender.route.iter().enumerate() {
        if sender.route[..r].contains(name) {
            return Err(ConfigError::new(
                format!("{key}.route[{r}]"),
                format!("{name} is listed twice"),
            ));
        }
        if unusable.contains(name) {
            continue;
        }
        let Some(provider) = providers.get(name) else {
            return Err(ConfigError::new(
                format!("{key}.route[{r}]"),
                format!(
                    "{name} is not a configured provider (known: {})",
                    providers.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        if provider.kind == ProviderKind::Meta && sender.phone_number_id.is_none() {
            return Err(ConfigError::new(
                format!("{key}.phone_number_id"),
                format!("is required because the route has the Meta provider {name}"),
            ));
        }
    }
    Ok(Sender {
        number,
        route: sender.route.clone(),
        phone_number_id: sender.phone_number_id.clone(),
    })
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

fn resolve_webhooks(
    raw: &RawWebhooks,
    secrets: &Secrets<'_>,
    problems: &mut Vec<ConfigError>,
) -> Webhooks {
    let mut subscribers = Vec::new();
    for (i, s) in raw.subscribers.iter().enumerate() {
        let key = format!("webhooks.subscribers[{i}]");
        let secret = secrets.required(
            &format!("{key}.secret"),
            s.secret.as_deref(),
            s.secret_env.as_deref(),
        );
        match http_url(&format!("{key}.url"), &s.url) {
            Ok(url) => subscribers.push(Subscriber { url, secret }),
            Err(error) => problems.push(error),
        }
    }
    Webhooks {
        callback_hosts_allow: raw.callback_hosts_allow.clone(),
        retry_base_ms: raw.retry_base_ms.unwrap_or(1000),
        max_attempts: raw.max_attempts.unwrap_or(8),
        subscribers,
    }
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
