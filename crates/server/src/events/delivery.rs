//! The outbox worker: POSTs due deliveries, signed, and retries what does not get a 2xx with
//! a doubling delay from `webhooks.retry_base_ms`, up to `webhooks.max_attempts`. The outbox
//! is in the store, so undelivered events survive a restart; leases keep two replicas from
//! sending the same delivery at once.

use crate::clock;
use crate::config::Settings;
use crate::state::AppState;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;
use std::sync::{Arc, Weak};
use std::time::Duration;
use switchboard_store::Delivery;
use tokio::sync::Semaphore;

/// How long one delivery may take before it counts as failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// A claimed delivery is not handed to another worker for this long.
const LEASE_MS: i64 = 30_000;
const MAX_IN_FLIGHT: usize = 64;
/// With nothing due, the outbox is looked at again after at most this long (deliveries
/// scheduled for later, or enqueued by another replica).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Runs until the gateway's state is dropped. Each delivery runs on its own, up to
/// `MAX_IN_FLIGHT` at once, so one slow or dead target never holds up the others.
pub async fn run(state: Weak<AppState>) {
    let http = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(DELIVERY_TIMEOUT)
        .build()
    {
        Ok(http) => http,
        Err(error) => {
            tracing::error!(%error, "event delivery cannot start: no HTTP client");
            return;
        }
    };
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        // Wait for room before claiming, so nothing claimed sits leased while it waits.
        let Ok(room) = in_flight.clone().acquire_owned().await else {
            return;
        };
        drop(room);
        let Some(state) = state.upgrade() else { return };
        let limit = in_flight.available_permits() as u32;
        let due = match state
            .store
            .claim_due(clock::now_ms(), LEASE_MS, limit)
            .await
        {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "outbox unavailable");
                Vec::new()
            }
        };
        if due.is_empty() {
            let wakeup = state.outbox_ready.clone();
            drop(state);
            let _ = tokio::time::timeout(IDLE_POLL, wakeup.notified()).await;
            continue;
        }
        for delivery in due {
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                return;
            };
            let (state, http) = (state.clone(), http.clone());
            actix_web::rt::spawn(async move {
                deliver(&state, &state.settings(), &http, &delivery).await;
                drop(permit);
            });
        }
    }
}

async fn deliver(state: &AppState, settings: &Settings, http: &reqwest::Client, d: &Delivery) {
    let attempt = d.attempts + 1;
    let result = match signing_secret(settings, &d.signer) {
        Some(secret) => post(http, d, &secret).await,
        None => Err(format!(
            "no signing secret for {} in the running configuration",
            d.signer
        )),
    };
    let store = &state.store;
    let recorded = match result {
        Ok(()) => {
            state.metrics.delivery("delivered");
            store.mark_delivered(d.id, clock::now_ms()).await
        }
        Err(error) if attempt >= settings.webhooks.max_attempts => {
            state.metrics.delivery("gave_up");
            tracing::warn!(event_id = %d.event_id, target = %without_credentials(&d.target_url), attempt, %error, "event delivery given up");
            store.give_up(d.id, attempt, &error).await
        }
        Err(error) => {
            state.metrics.delivery("retry");
            let delay = backoff_ms(settings.webhooks.retry_base_ms, attempt);
            tracing::info!(event_id = %d.event_id, target = %without_credentials(&d.target_url), attempt, %error, delay_ms = delay, "event delivery failed; will retry");
            store
                .reschedule(d.id, attempt, clock::now_ms() + delay, &error)
                .await
        }
    };
    if let Err(error) = recorded {
        // The lease runs out and the delivery is tried again: at least once, never lost.
        tracing::warn!(%error, event_id = %d.event_id, "delivery outcome not recorded");
    }
}

/// A target URL fit for logs: any `user:password@` is dropped.
fn without_credentials(target: &str) -> String {
    match url::Url::parse(target) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Err(_) => "(unparsable URL)".to_string(),
    }
}

/// `retry_base_ms`, doubling after each failed attempt (attempt 1 failed → base).
fn backoff_ms(base_ms: u64, failed_attempts: u32) -> i64 {
    let factor = 1u64 << failed_attempts.saturating_sub(1).min(20);
    base_ms.saturating_mul(factor).min(i64::MAX as u64) as i64
}

fn signing_secret(settings: &Settings, signer: &str) -> Option<Vec<u8>> {
    if let Some(url) = signer.strip_prefix("subscriber:") {
        let subscriber = settings
            .webhooks
            .subscribers
            .iter()
            .find(|s| s.url == url)?;
        return Some(subscriber.secret.expose_secret().as_bytes().to_vec());
    }
    let name = signer.strip_prefix("client:")?;
    let client = settings.clients.iter().find(|c| c.name == name)?;
    Some(client.token.expose_secret().as_bytes().to_vec())
}

/// `sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
pub fn signature(secret: &[u8], timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post(http: &reqwest::Client, d: &Delivery, secret: &[u8]) -> Result<(), String> {
    let timestamp = (clock::now_ms() / 1000).to_string();
    let response = http
        .post(&d.target_url)
        .header("content-type", "application/json")
        .header("x-switchboard-event", &d.event_type)
        .header("x-switchboard-event-id", &d.event_id)
        .header("x-switchboard-timestamp", &timestamp)
        .header(
            "x-switchboard-signature",
            signature(secret, &timestamp, &d.body),
        )
        .body(d.body.clone())
        .send()
        .await
        // The URL may carry credentials: never in an error that is logged or stored.
        .map_err(|e| e.without_url().to_string())?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered HTTP {}", status.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_targets_carry_no_credentials() {
        assert_eq!(
            without_credentials("https://user:s3cret@events.internal/hook?x=1"),
            "https://events.internal/hook?x=1"
        );
        assert_eq!(
            without_credentials("http://127.0.0.1:9000/h"),
            "http://127.0.0.1:9000/h"
        );
    }

    #[test]
    fn backoff_doubles_from_the_base() {
        let delays: Vec<i64> = (1..=5).map(|a| backoff_ms(1000, a)).collect();
        assert_eq!(delays, [1000, 2000, 4000, 8000, 16000]);
        assert!(backoff_ms(u64::MAX, 40) > 0, "no overflow");
    }

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        // echo -n '1795255200.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature(b"secret", "1795255200", r#"{"a":1}"#),
            "sha256=7e845be3eeb9678990053bf8835d430b263001de1b60a0bcd04cc3c71b47d72a"
        );
    }
}
