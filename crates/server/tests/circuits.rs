//! Circuits per endpoint (docs/failover.md), `GET /v1/providers` and `GET /metrics`, over real
//! HTTP against the simulator.

mod common;

use common::{Gateway, Reply};
use serde_json::{json, Value};
use std::time::Duration;
use switchboard_sim::Behaviour;

const OPEN_SECS: u64 = 1;

fn text() -> Value {
    json!({"to": "+14085551234", "type": "text", "text": {"body": "hello"}})
}

/// Meta only, so one endpoint decides.
fn text_via_meta() -> Value {
    json!({"to": "+14085551234", "type": "text", "text": {"body": "hello"}, "provider": "meta"})
}

async fn gateway(failure_threshold: u32) -> Gateway {
    Gateway::start_with(|s| {
        s.resilience.failure_threshold = failure_threshold;
        s.resilience.open_secs = OPEN_SECS;
    })
    .await
}

fn summary(attempts: &Value) -> Vec<(String, String, String)> {
    attempts
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| {
            let field = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (field("endpoint"), field("outcome"), field("reason"))
        })
        .collect()
}

fn row(endpoint: &str, outcome: &str, reason: &str) -> (String, String, String) {
    (endpoint.into(), outcome.into(), reason.into())
}

fn requests_to(gw: &Gateway, endpoint: &str) -> usize {
    gw.sim.requests_to(endpoint).len()
}

async fn provider(gw: &Gateway, endpoint: &str) -> Value {
    let reply = gw.get("/v1/providers").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"] == endpoint)
        .cloned()
        .unwrap_or_else(|| panic!("{endpoint} not listed: {}", reply.body))
}

async fn wait_out_open_secs() {
    tokio::time::sleep(Duration::from_secs(OPEN_SECS) + Duration::from_millis(100)).await;
}

#[actix_web::test]
async fn an_open_circuit_skips_the_dead_pod_without_calling_it() {
    let gw = gateway(2).await;
    gw.sim.set_behaviour("kaleyra/in", Behaviour::Down);
    for _ in 0..2 {
        let reply = gw.send(&text()).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        assert_eq!(
            summary(&reply.body["attempts"]),
            [
                row("kaleyra/in", "failed", ""),
                row("kaleyra/sg", "accepted", "")
            ]
        );
    }
    let listed = provider(&gw, "kaleyra/in").await;
    assert_eq!(listed["circuit"], "open");
    assert_eq!(listed["consecutive_failures"], 2);
    assert_eq!(listed["last_error"]["code"], "provider_unavailable");
    assert_eq!(
        listed["attempts"],
        json!({"accepted": 0, "failed": 2, "skipped": 0})
    );

    gw.sim.reset();
    gw.sim.set_behaviour("kaleyra/in", Behaviour::Down);
    for _ in 0..3 {
        let reply = gw.send(&text()).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        assert_eq!(
            summary(&reply.body["attempts"]),
            [
                row("kaleyra/in", "skipped", "circuit_open"),
                row("kaleyra/sg", "accepted", "")
            ]
        );
    }
    assert_eq!(
        requests_to(&gw, "kaleyra/in"),
        0,
        "an open circuit makes no call"
    );
    assert_eq!(provider(&gw, "kaleyra/in").await["attempts"]["skipped"], 3);
    assert_eq!(provider(&gw, "kaleyra/sg").await["circuit"], "closed");
    gw.stop().await;
}

#[actix_web::test]
async fn a_timeout_counts_towards_opening_but_a_4xx_answer_resets_the_run() {
    let gw = Gateway::start_with(|s| {
        s.resilience.failure_threshold = 2;
        s.resilience.open_secs = 60;
        s.resilience.retry_on_timeout = true;
        common::shorten_timeouts(s, Duration::from_millis(300));
    })
    .await;
    gw.sim
        .set_behaviour("kaleyra/in", Behaviour::Error("WA500".into()));
    gw.send(&text()).await;
    gw.sim
        .set_behaviour("kaleyra/in", Behaviour::Error("WA400".into()));
    assert_eq!(gw.send(&text()).await.status, 400);
    assert_eq!(provider(&gw, "kaleyra/in").await["consecutive_failures"], 0);
    gw.sim.set_behaviour("kaleyra/in", Behaviour::BlackHole);
    gw.send(&text()).await;
    gw.sim
        .set_behaviour("kaleyra/in", Behaviour::Error("WA500".into()));
    gw.send(&text()).await;
    let listed = provider(&gw, "kaleyra/in").await;
    assert_eq!(listed["circuit"], "open", "{listed}");
    assert_eq!(listed["consecutive_failures"], 2);
    assert_eq!(listed["last_error"]["provider_code"], "WA500");
    gw.stop().await;
}

#[actix_web::test]
async fn after_open_secs_one_probe_closes_the_circuit_on_success() {
    let gw = gateway(1).await;
    gw.sim.set_behaviour("kaleyra/in", Behaviour::Down);
    gw.send(&text()).await;
    assert_eq!(provider(&gw, "kaleyra/in").await["circuit"], "open");
    gw.sim.set_behaviour("kaleyra/in", Behaviour::Normal);
    gw.sim.reset();
    let reply = gw.send(&text()).await;
    assert_eq!(
        summary(&reply.body["attempts"])[0],
        row("kaleyra/in", "skipped", "circuit_open")
    );
    assert_eq!(requests_to(&gw, "kaleyra/in"), 0);

    wait_out_open_secs().await;
    let reply = gw.send(&text()).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(
        summary(&reply.body["attempts"]),
        [row("kaleyra/in", "accepted", "")]
    );
    assert_eq!(requests_to(&gw, "kaleyra/in"), 1, "the probe");
    let listed = provider(&gw, "kaleyra/in").await;
    assert_eq!(listed["circuit"], "closed");
    assert_eq!(listed["consecutive_failures"], 0);
    gw.stop().await;
}

#[actix_web::test]
async fn a_failed_probe_reopens_the_circuit() {
    let gw = gateway(1).await;
    gw.sim.set_behaviour("kaleyra/in", Behaviour::Down);
    gw.send(&text()).await;
    wait_out_open_secs().await;
    gw.sim.reset();
    gw.sim
        .set_behaviour("kaleyra/in", Behaviour::Error("WA500".into()));
    let reply = gw.send(&text()).await;
    assert_eq!(
        summary(&reply.body["attempts"]),
        [
            row("kaleyra/in", "failed", ""),
            row("kaleyra/sg", "accepted", "")
        ]
    );
    assert_eq!(requests_to(&gw, "kaleyra/in"), 1, "exactly one probe");
    assert_eq!(provider(&gw, "kaleyra/in").await["circuit"], "open");
    let reply = gw.send(&text()).await;
    assert_eq!(
        summary(&reply.body["attempts"])[0],
        row("kaleyra/in", "skipped", "circuit_open")
    );
    assert_eq!(requests_to(&gw, "kaleyra/in"), 1);
    gw.stop().await;
}

#[actix_web::test]
async fn while_the_probe_is_out_other_requests_skip_the_endpoint() {
    let gw = gateway(1).await;
    gw.sim.set_behaviour("meta", Behaviour::Down);
    assert_eq!(gw.send(&text_via_meta()).await.status, 503);
    wait_out_open_secs().await;
    gw.sim.reset();
    gw.sim
        .set_behaviour("meta", Behaviour::Slow(Duration::from_millis(600)));
    let message = text_via_meta();
    let probe = gw.send(&message);
    let other = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        gw.send(&text_via_meta()).await
    };
    let (probe, other): (Reply, Reply) = tokio::join!(probe, other);
    assert_eq!(probe.status, 202, "{}", probe.body);
    assert_eq!(other.status, 503, "{}", other.body);
    assert_eq!(
        summary(&other.body["error"]["attempts"]),
        [row("meta", "skipped", "circuit_open")]
    );
    assert_eq!(requests_to(&gw, "meta"), 1, "only the probe reached Meta");
    assert_eq!(provider(&gw, "meta").await["circuit"], "closed");
    gw.stop().await;
}

#[actix_web::test]
async fn every_endpoint_skipped_answers_503_at_once_without_a_call() {
    let gw = gateway(1).await;
    for endpoint in ["kaleyra/in", "kaleyra/sg", "kaleyra/eu", "meta", "generic"] {
        gw.sim.set_behaviour(endpoint, Behaviour::Down);
    }
    let first = gw.send(&text()).await;
    assert_eq!(first.status, 503);
    assert_eq!(first.body["error"]["attempts"].as_array().unwrap().len(), 5);
    gw.sim.reset();
    let reply = gw.send(&text()).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    let error = &reply.body["error"];
    assert_eq!(error["code"], "provider_unavailable");
    assert_eq!(error["retryable"], true);
    assert!(
        error["message"].as_str().unwrap().contains("circuit"),
        "{error}"
    );
    assert_eq!(
        summary(&error["attempts"]),
        [
            row("kaleyra/in", "skipped", "circuit_open"),
            row("kaleyra/sg", "skipped", "circuit_open"),
            row("kaleyra/eu", "skipped", "circuit_open"),
            row("meta", "skipped", "circuit_open"),
            row("legacy", "skipped", "circuit_open"),
        ]
    );
    assert!(gw.sim.requests().is_empty(), "no provider was called");
    gw.stop().await;
}

#[actix_web::test]
async fn all_kaleyra_pods_down_fails_over_to_meta() {
    let gw = gateway(5).await;
    for pod in ["kaleyra/in", "kaleyra/sg", "kaleyra/eu"] {
        gw.sim.set_behaviour(pod, Behaviour::Down);
    }
    let reply = gw.send(&text()).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["provider"], "meta");
    assert_eq!(
        summary(&reply.body["attempts"]),
        [
            row("kaleyra/in", "failed", ""),
            row("kaleyra/sg", "failed", ""),
            row("kaleyra/eu", "failed", ""),
            row("meta", "accepted", ""),
        ]
    );
    assert_eq!(requests_to(&gw, "meta"), 1);
    gw.stop().await;
}

#[actix_web::test]
async fn providers_lists_every_endpoint_and_needs_a_token() {
    let gw = gateway(5).await;
    let reply = gw.get("/v1/providers").await;
    let ids: Vec<&str> = reply.body["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["kaleyra/eu", "kaleyra/in", "kaleyra/sg", "legacy", "meta"]
    );
    assert_eq!(
        provider(&gw, "kaleyra/sg").await,
        json!({"endpoint": "kaleyra/sg", "provider": "kaleyra", "kind": "kaleyra",
               "circuit": "closed", "consecutive_failures": 0, "last_error": null,
               "attempts": {"accepted": 0, "failed": 0, "skipped": 0}})
    );
    let anonymous = gw
        .http
        .get(format!("{}/v1/providers", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    gw.stop().await;
}

#[actix_web::test]
async fn metrics_count_requests_attempts_latency_and_circuits() {
    let gw = gateway(1).await;
    gw.sim
        .set_behaviour("kaleyra/in", Behaviour::Error("WA500".into()));
    assert_eq!(gw.send(&text()).await.status, 202);
    assert_eq!(gw.send(&text()).await.status, 202);
    let response = gw
        .http
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "no token needed");
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = response.text().await.unwrap();
    for line in [
        r#"switchboard_http_requests_total{route="/v1/messages",method="POST",status="202"} 2"#,
        r#"switchboard_provider_attempts_total{endpoint="kaleyra/in",outcome="failed",code="provider_unavailable"} 1"#,
        r#"switchboard_provider_attempts_total{endpoint="kaleyra/in",outcome="skipped",code="circuit_open"} 1"#,
        r#"switchboard_provider_attempts_total{endpoint="kaleyra/sg",outcome="accepted",code=""} 2"#,
        r#"switchboard_provider_latency_seconds_count{endpoint="kaleyra/sg"} 2"#,
        r#"switchboard_circuit_state{endpoint="kaleyra/in",state="open"} 1"#,
        r#"switchboard_circuit_state{endpoint="kaleyra/in",state="closed"} 0"#,
        r#"switchboard_circuit_state{endpoint="kaleyra/sg",state="closed"} 1"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line}\n---\n{text}"
        );
    }
    // The store's group commits: two messages, each inserted and then given its outcome, plus
    // the queue's housekeeping (the worker asking for due messages, lease renewals, counting the
    // synchronous sends against pacing), which goes through the same writer.
    let counter = |name: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.split(' ').next() == Some(name))
            .unwrap_or_else(|| panic!("missing {name}\n---\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let writes = counter("switchboard_store_writes_total");
    assert!(writes >= 4, "{writes} writes");
    let batches = counter("switchboard_store_batches_total");
    assert!((1..=writes).contains(&batches), "{batches} batches");
    assert_eq!(counter("switchboard_store_batch_size_count"), batches);
    assert_eq!(counter("switchboard_store_failed_batches_total"), 0);
    assert!(text.contains("switchboard_store_commit_seconds_bucket{le=\"+Inf\"}"));
    gw.stop().await;
}

/// A port nothing listens on: connections are refused.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[actix_web::test]
async fn a_refused_connection_fails_over_to_the_next_pod() {
    let gw = Gateway::start_with(|s| {
        let pod = s.endpoints["kaleyra/in"].clone();
        let adapter =
            switchboard_kaleyra::KaleyraAdapter::new(switchboard_kaleyra::KaleyraSettings {
                base_url: closed_port_url(),
                sid: "HXAP16XXXXXX97IN".into(),
                api_key: secrecy::SecretString::from("sim-kaleyra-key-in"),
                wa_source: "api".into(),
            });
        s.endpoints.insert(
            pod.id.clone(),
            std::sync::Arc::new(switchboard_server::config::Endpoint {
                id: pod.id.clone(),
                provider: pod.provider.clone(),
                kind: pod.kind,
                adapter: std::sync::Arc::new(adapter),
                timeout: pod.timeout,
                base_url: pod.base_url.clone(),
            }),
        );
    })
    .await;
    let reply = gw.send(&text()).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(
        summary(&reply.body["attempts"]),
        [
            row("kaleyra/in", "failed", ""),
            row("kaleyra/sg", "accepted", "")
        ]
    );
    let refused = &reply.body["attempts"][0]["error"];
    assert_eq!(refused["code"], "provider_unavailable");
    assert!(
        refused.get("provider_status").is_none(),
        "no response: {refused}"
    );
    gw.stop().await;
}
