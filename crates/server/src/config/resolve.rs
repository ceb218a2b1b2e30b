//! Raw configuration tree → [`Settings`].

use super::raw::*;
use super::*;
use crate::providers;
use std::collections::BTreeSet;
use switchboard_core::deserialize_at;
use switchboard_core::phone::e164_digits;
use switchboard_core::provider::{http_url, EnvLookup, InstanceContext, Secrets};

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_MAX_BODY_BYTES: usize = 65_536;
const DEFAULT_MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
const DEFAULT_SHUTDOWN_SECS: u64 = 30;
/// Meta's default throughput per business number.
const DEFAULT_MAX_PER_SECOND: u32 = 80;
/// Meta's highest throughput tier per business number.
const MAX_PER_SECOND_LIMIT: u32 = 1000;
const DEFAULT_STORE_URL: &str = "sqlite://./data/switchboard.db";
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
    let queue = resolve_queue(&raw.queue, &mut problems);

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
            queue,
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
    let max_batch_bytes = raw.max_batch_bytes.unwrap_or(DEFAULT_MAX_BATCH_BYTES);
    if max_batch_bytes == 0 {
        return Err(ConfigError::new(
            "server.max_batch_bytes",
            "must be greater than 0",
        ));
    }
    Ok(ServerSettings {
        listen,
        public_url: public_url.trim_end_matches('/').to_string(),
        max_body_bytes,
        max_batch_bytes,
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

/// One `[providers.NAME]` section, built by the crate of its `kind`.
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
    let section: serde_json::Value = deserialize_at(&key, value)?;
    let kind = section
        .get("kind")
        .and_then(serde_json::Value::as_str)
        .and_then(providers::kind)
        .ok_or_else(|| {
            ConfigError::new(
                format!("{key}.kind"),
                format!("is required: one of {}", providers::kind_names().join(", ")),
            )
        })?;
    let instance = InstanceContext {
        name,
        key: &key,
        public_url,
        secrets,
    };
    let built = kind.build(section, &instance)?;
    let endpoints: Vec<Endpoint> = built
        .endpoints
        .into_iter()
        .map(|spec| Endpoint {
            id: spec.id,
            provider: name.to_string(),
            kind: kind.name(),
            adapter: spec.adapter,
            timeout: spec.timeout,
            base_url: spec.base_url,
        })
        .collect();
    let provider = Provider {
        name: name.to_string(),
        kind: kind.name(),
        endpoint_ids: endpoints.iter().map(|e| e.id.clone()).collect(),
        templates: built.templates,
        webhooks: built.webhooks,
        needs_phone_number_id: built.needs_phone_number_id,
    };
    Ok((provider, endpoints))
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
        if provider.needs_phone_number_id && sender.phone_number_id.is_none() {
            return Err(ConfigError::new(
                format!("{key}.phone_number_id"),
                format!(
                    "is required because the route has the {} provider {name}",
                    provider.kind
                ),
            ));
        }
    }
    let max_per_second = sender.max_per_second.unwrap_or(DEFAULT_MAX_PER_SECOND);
    if !(1..=MAX_PER_SECOND_LIMIT).contains(&max_per_second) {
        return Err(ConfigError::new(
            format!("{key}.max_per_second"),
            format!("must be 1 to {MAX_PER_SECOND_LIMIT}"),
        ));
    }
    Ok(Sender {
        number,
        route: sender.route.clone(),
        phone_number_id: sender.phone_number_id.clone(),
        max_per_second,
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

/// `[queue]`; each value out of range is one problem.
fn resolve_queue(raw: &RawQueue, problems: &mut Vec<ConfigError>) -> QueueSettings {
    let defaults = QueueSettings::default();
    let mut at_least_one = |key: &str, value: u64| {
        if value == 0 {
            problems.push(ConfigError::new(key, "must be at least 1"));
        }
    };
    let queue = QueueSettings {
        workers: raw.workers.unwrap_or(defaults.workers),
        retry_base_ms: raw.retry_base_ms.unwrap_or(defaults.retry_base_ms),
        max_attempts: raw.max_attempts.unwrap_or(defaults.max_attempts),
        per_recipient_gap_ms: raw
            .per_recipient_gap_ms
            .unwrap_or(defaults.per_recipient_gap_ms),
        lease_secs: raw.lease_secs.unwrap_or(defaults.lease_secs),
    };
    at_least_one("queue.workers", queue.workers as u64);
    at_least_one("queue.retry_base_ms", queue.retry_base_ms);
    at_least_one("queue.max_attempts", u64::from(queue.max_attempts));
    at_least_one("queue.lease_secs", queue.lease_secs);
    queue
}

fn normalize_number(key: &str, number: &str) -> Result<String> {
    e164_digits(number)
        .map(|digits| format!("+{digits}"))
        .ok_or_else(|| ConfigError::new(key, "must be an E.164 phone number like +15550783881"))
}
