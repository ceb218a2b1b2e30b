//! `GET /metrics` (docs/api.md): Prometheus text for requests by route and status, provider
//! attempts by endpoint/outcome/code, provider latency, circuit state, webhook events in and
//! event deliveries out.
//!
//! The queue adds messages waiting per sender, the age of the oldest due one, hand-overs,
//! retries and expirations (docs/async.md).
//!
//! The store's writer adds its group commits: batches, writes, writes per batch and commit time.
//! Sent messages whose record waits for the store (`recording.rs`) are counted at scrape time.
//!
//! Each gateway owns its registry (no process-wide recorder), so several gateways in one
//! process — as in the tests — keep separate counts.

use crate::recording::LateRecords;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use switchboard_store::Store;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: Cow<'static, str>,
    status: u16,
}

// Labels that are constants are borrowed: a request counts itself without copying them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    endpoint: String,
    outcome: Cow<'static, str>,
    code: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CircuitLabels {
    endpoint: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    provider: String,
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SenderLabels {
    sender: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    outcome: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    attempts: Family<AttemptLabels, Counter>,
    latency: Family<EndpointLabels, Histogram>,
    circuit_state: Family<CircuitLabels, Gauge>,
    webhook_events: Family<WebhookLabels, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    queued: Family<SenderLabels, Gauge>,
    oldest_due_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    hand_overs: Family<SenderLabels, Counter>,
    retries: Family<SenderLabels, Counter>,
    expirations: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let requests = Family::default();
        registry.register(
            "http_requests",
            "REST and webhook requests answered, by route pattern, method and status",
            requests.clone(),
        );
        let attempts = Family::default();
        registry.register(
            "provider_attempts",
            "Attempts at provider endpoints by outcome (accepted, failed, skipped) and error code",
            attempts.clone(),
        );
        // 1 ms … ~16 s: provider calls range from loopback fakes to a slow pod near timeout.
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        registry.register(
            "provider_latency_seconds",
            "Time from sending a request to a provider endpoint to its classified answer",
            latency.clone(),
        );
        let circuit_state = Family::default();
        registry.register(
            "circuit_state",
            "1 for each endpoint's current circuit state (closed, open, half_open), else 0",
            circuit_state.clone(),
        );
        let webhook_events = Family::default();
        registry.register(
            "webhook_events",
            "Events received on provider webhooks, by provider instance and event type",
            webhook_events.clone(),
        );
        let deliveries = Family::default();
        registry.register(
            "event_deliveries",
            "Deliveries of events to subscribers and callback URLs, by outcome",
            deliveries.clone(),
        );
        let queued = Family::default();
        registry.register(
            "queue_messages",
            "Queued messages waiting for their hand-over to a provider, by sender",
            queued.clone(),
        );
        let oldest_due_age = Gauge::default();
        registry.register(
            "queue_oldest_due_age_seconds",
            "How long the queued message that has been due the longest has waited (0 when none is due)",
            oldest_due_age.clone(),
        );
        let hand_overs = Family::default();
        registry.register(
            "queue_hand_overs",
            "Queued messages handed to providers (each attempt counts), by sender",
            hand_overs.clone(),
        );
        let retries = Family::default();
        registry.register(
            "queue_retries",
            "Hand-overs that failed in a retryable way and were queued again, by sender",
            retries.clone(),
        );
        let expirations = Counter::default();
        registry.register(
            "queue_expirations",
            "Queued messages that failed `expired`: not accepted within their validity_secs",
            expirations.clone(),
        );
        Metrics {
            registry,
            requests,
            attempts,
            latency,
            circuit_state,
            webhook_events,
            deliveries,
            queued,
            oldest_due_age,
            hand_overs,
            retries,
            expirations,
        }
    }

    /// One request answered; `route` is the matched route's pattern.
    pub fn request(&self, route: String, method: &str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method: method_label(method),
                status,
            })
            .inc();
    }

    /// One attempt; `code` is empty for an acceptance. Latency is observed for calls only.
    pub fn attempt(
        &self,
        endpoint: &str,
        outcome: &'static str,
        code: &'static str,
        took: Option<Duration>,
    ) {
        self.attempts
            .get_or_create(&AttemptLabels {
                endpoint: endpoint.to_string(),
                outcome: Cow::Borrowed(outcome),
                code: Cow::Borrowed(code),
            })
            .inc();
        if let Some(took) = took {
            self.latency
                .get_or_create(&EndpointLabels {
                    endpoint: endpoint.to_string(),
                })
                .observe(took.as_secs_f64());
        }
    }

    /// Sets the one-hot circuit gauges of `endpoint`.
    pub fn circuit(&self, endpoint: &str, current: &str, states: &[&str]) {
        for state in states {
            self.circuit_state
                .get_or_create(&CircuitLabels {
                    endpoint: endpoint.to_string(),
                    state: state.to_string(),
                })
                .set(i64::from(state == &current));
        }
    }

    pub fn webhook_event(&self, provider: &str, event_type: &str) {
        self.webhook_events
            .get_or_create(&WebhookLabels {
                provider: provider.to_string(),
                r#type: event_type.to_string(),
            })
            .inc();
    }

    pub fn delivery(&self, outcome: &str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// The queue as the store last counted it: every sender in `senders` gets a value (0 when
    /// none of its messages waits), and `oldest_due_age` is in seconds.
    pub fn queue_depth<'a>(
        &self,
        senders: impl Iterator<Item = &'a str>,
        queued: &[(String, u64)],
        oldest_due_age: f64,
    ) {
        for sender in senders {
            let count = queued
                .iter()
                .find(|(s, _)| s == sender)
                .map_or(0, |(_, n)| *n);
            self.queued
                .get_or_create(&SenderLabels {
                    sender: sender.to_string(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        self.oldest_due_age.set(oldest_due_age);
    }

    pub fn hand_over(&self, sender: &str) {
        self.hand_overs
            .get_or_create(&SenderLabels {
                sender: sender.to_string(),
            })
            .inc();
    }

    pub fn retry(&self, sender: &str) {
        self.retries
            .get_or_create(&SenderLabels {
                sender: sender.to_string(),
            })
            .inc();
    }

    pub fn expirations(&self, count: u64) {
        self.expirations.inc_by(count);
    }

    /// Adds the store's group-commit statistics (when the store keeps them) to the scrape.
    pub fn register_store(&mut self, store: Arc<dyn Store>) {
        self.registry
            .register_collector(Box::new(StoreWrites(store)));
    }

    /// Adds the sent messages whose record waits for the store to the scrape.
    pub fn register_late_records(&mut self, late: Arc<LateRecords>) {
        self.registry
            .register_collector(Box::new(LateRecordsWaiting(late)));
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// Reads the store's write statistics at scrape time.
struct StoreWrites(Arc<dyn Store>);

impl fmt::Debug for StoreWrites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreWrites")
    }
}

impl Collector for StoreWrites {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let Some(stats) = self.0.write_stats() else {
            return Ok(());
        };
        for (name, help, value) in [
            (
                "store_batches",
                "Transactions committed by the store's writer (group commits)",
                stats.batches,
            ),
            (
                "store_writes",
                "Writes committed by the store's writer",
                stats.writes,
            ),
            (
                "store_failed_batches",
                "Group commits that failed as a whole (their writes were answered with the error)",
                stats.failed_batches,
            ),
        ] {
            encoder
                .encode_descriptor(name, help, None, MetricType::Counter)?
                .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        for (name, help, histogram) in [
            (
                "store_batch_size",
                "Writes per group commit",
                &stats.batch_size,
            ),
            (
                "store_commit_seconds",
                "Time of a group commit, from the start of its transaction to the end of its commit",
                &stats.commit_seconds,
            ),
        ] {
            encoder
                .encode_descriptor(name, help, None, MetricType::Histogram)?
                .encode_histogram::<NoLabelSet>(
                    histogram.sum,
                    histogram.count,
                    &histogram.buckets,
                    None,
                )?;
        }
        Ok(())
    }
}

/// Reads how many records wait at scrape time.
struct LateRecordsWaiting(Arc<LateRecords>);

impl fmt::Debug for LateRecordsWaiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LateRecordsWaiting")
    }
}

impl Collector for LateRecordsWaiting {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let waiting = i64::try_from(self.0.waiting()).unwrap_or(i64::MAX);
        encoder
            .encode_descriptor(
                "late_records",
                "Sent messages whose record waits, in this process, for the store to take writes again",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&waiting)
    }
}

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The methods the API serves, without a copy; any other is copied.
fn method_label(method: &str) -> Cow<'static, str> {
    match method {
        "GET" => Cow::Borrowed("GET"),
        "POST" => Cow::Borrowed("POST"),
        "PUT" => Cow::Borrowed("PUT"),
        "PATCH" => Cow::Borrowed("PATCH"),
        "DELETE" => Cow::Borrowed("DELETE"),
        "HEAD" => Cow::Borrowed("HEAD"),
        "OPTIONS" => Cow::Borrowed("OPTIONS"),
        other => Cow::Owned(other.to_owned()),
    }
}
