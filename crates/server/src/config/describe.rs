//! The resolved configuration as `config check` prints it. Secrets never appear: only where
//! they are set.

use super::Settings;
use std::fmt::Write;

pub fn describe(settings: &Settings) -> String {
    let mut out = String::new();
    let s = &settings.server;
    let _ = writeln!(
        out,
        "server: listen {} public_url {} max_body_bytes {} max_batch_bytes {}",
        s.listen, s.public_url, s.max_body_bytes, s.max_batch_bytes
    );
    let _ = writeln!(out, "store: {}", mask_url_password(&settings.store_url));
    let names: Vec<&str> = settings.clients.iter().map(|c| c.name.as_str()).collect();
    let _ = writeln!(out, "clients: {} (tokens ****)", names.join(", "));
    let _ = writeln!(out, "endpoints:");
    for endpoint in settings.endpoints.values() {
        let _ = writeln!(
            out,
            "  {:<16} {:<8} {}  timeout {}ms  credentials ****",
            endpoint.id,
            endpoint.kind,
            endpoint.base_url,
            endpoint.timeout.as_millis()
        );
    }
    let _ = writeln!(out, "senders:");
    for sender in settings.senders.values() {
        let endpoints: Vec<String> = settings
            .route_endpoints(&sender.route)
            .iter()
            .map(|e| e.id.clone())
            .collect();
        let default = if settings.default_sender.as_deref() == Some(sender.number.as_str()) {
            " (default)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {}{default}: route {} → endpoints {}; max_per_second {}",
            sender.number,
            sender.route.join(" → "),
            endpoints.join(", "),
            sender.max_per_second
        );
    }
    let r = &settings.resilience;
    let failover: Vec<&str> = r.failover_on.iter().map(|c| c.as_str()).collect();
    let _ = writeln!(
        out,
        "resilience: failure_threshold {} open_secs {} retry_on_timeout {} failover_on [{}]",
        r.failure_threshold,
        r.open_secs,
        r.retry_on_timeout,
        failover.join(", ")
    );
    let w = &settings.webhooks;
    let _ = writeln!(
        out,
        "webhooks: callback_hosts_allow [{}], {} subscriber(s) (secrets ****)",
        w.callback_hosts_allow.join(", "),
        w.subscribers.len()
    );
    let q = &settings.queue;
    let _ = writeln!(
        out,
        "queue: workers {} retry_base_ms {} max_attempts {} per_recipient_gap_ms {} lease_secs {}",
        q.workers, q.retry_base_ms, q.max_attempts, q.per_recipient_gap_ms, q.lease_secs
    );
    out
}

/// `postgres://user:pass@host/db` → `postgres://user:****@host/db`.
fn mask_url_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}
