//! The store goes away and comes back (docs/api.md, "What is stored when"), on PostgreSQL, whose
//! database can be closed to connections under a running gateway:
//! - the send already under way when the store goes gets the provider's answer; the record
//!   that could not be written is logged with the request id and the message id, kept, and
//!   written once the store is back, with the answer its idempotency key keeps;
//! - from then on a message is recorded before its send: a store that cannot take it answers
//!   503 and nothing reaches the provider; the readiness probe answers 503 too;
//! - once the store is back, the gateway is ready again and messages are sent and recorded.

#[path = "support/mod.rs"]
mod support;

use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{
    free_port, postgres_database, send_signal, tempdir, wait_for_200, wait_for_exit, Running,
    BINARY,
};
use switchboard_sim::{Behaviour, SimCredentials, Simulator};
use switchboard_store::testing::{set_connections_allowed, CLOSING_LIMIT, POSTGRES_URL_VAR};

const TOKEN: &str = "outage-token";

struct Reply {
    status: u16,
    body: Value,
    request_id: String,
    /// `Idempotent-Replayed: true`: the answer kept under the request's key.
    replayed: bool,
}

async fn send(client: &reqwest::Client, gateway: &str, text: &str) -> Reply {
    send_with_key(client, gateway, text, None).await
}

async fn send_with_key(
    client: &reqwest::Client,
    gateway: &str,
    text: &str,
    key: Option<&str>,
) -> Reply {
    let mut request = client
        .post(format!("{gateway}/v1/messages"))
        .bearer_auth(TOKEN)
        .json(&json!({"to": "+14085551234", "type": "text", "text": {"body": text}}));
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    reply(request.send().await.unwrap()).await
}

async fn get(client: &reqwest::Client, url: &str) -> Reply {
    reply(client.get(url).bearer_auth(TOKEN).send().await.unwrap()).await
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let body = response.json().await.unwrap_or(Value::Null);
    Reply {
        status,
        body,
        request_id,
        replayed,
    }
}

/// `switchboard_late_records` in `GET /metrics`.
async fn late_records(client: &reqwest::Client, gateway: &str) -> u64 {
    let text = client
        .get(format!("{gateway}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("switchboard_late_records "))
        .unwrap_or_else(|| panic!("no switchboard_late_records in {text}"))
        .trim()
        .parse()
        .unwrap()
}

/// The log lines that contain every one of `words`.
fn lines_with<'a>(logs: &'a str, words: &[&str]) -> Vec<&'a str> {
    logs.lines()
        .filter(|line| words.iter().all(|word| line.contains(word)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_refuses_new_sends_and_the_gateway_recovers_when_it_returns() {
    let Some(store_url) = postgres_database("store_outage").await else {
        return;
    };
    let admin_url = std::env::var(POSTGRES_URL_VAR).unwrap();
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), SimCredentials::sandbox())
        .await
        .unwrap();
    let dir = tempdir("store-outage");
    let port = free_port();
    let path = dir.join("switchboard.toml");
    std::fs::write(
        &path,
        support::meta_gateway_config(port, &store_url, &sim.meta_base_url(), "OUTAGE"),
    )
    .unwrap();
    let log_path = dir.join("gateway.log");
    let running = Running(
        Command::new(BINARY)
            .current_dir(&dir)
            .args(["serve", "--config"])
            .arg(&path)
            .env("OUTAGE_ORDERS_TOKEN", TOKEN)
            .env("OUTAGE_META_TOKEN", "sim-meta-token")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let gateway = format!("http://127.0.0.1:{port}");
    wait_for_200(&gateway, "/readyz").await;
    let client = reqwest::Client::new();

    let before = send(&client, &gateway, "before the outage").await;
    assert_eq!(before.status, 202, "{}", before.body);
    assert_eq!(sim.requests().len(), 1);

    // Under way when the store goes: the provider holds its answer while the store closes,
    // after the request's idempotency key was claimed. It holds it longer than closing may
    // take (within the provider's 10 s timeout), so the record cannot be written before.
    sim.set_behaviour(
        "meta",
        Behaviour::Slow(CLOSING_LIMIT + Duration::from_secs(1)),
    );
    let under_way = {
        let (client, gateway) = (client.clone(), gateway.clone());
        tokio::spawn(async move {
            send_with_key(&client, &gateway, "the store just went", Some("k-outage")).await
        })
    };
    for _ in 0..500 {
        if sim.requests().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sim.requests().len(), 2, "the send reached the provider");
    set_connections_allowed(&admin_url, &store_url, false)
        .await
        .unwrap();
    sim.set_behaviour("meta", Behaviour::Normal);
    let unrecorded = under_way.await.unwrap();
    assert_eq!(unrecorded.status, 202, "{}", unrecorded.body);
    assert!(unrecorded.body["provider_message_id"].is_string());
    assert_eq!(sim.requests().len(), 2);
    let unrecorded_id = unrecorded.body["id"].as_str().unwrap().to_string();
    assert_eq!(late_records(&client, &gateway).await, 1);

    // From now on recorded first: refused, and nothing reaches the provider.
    let refused = send(&client, &gateway, "while the store is away").await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    let error = &refused.body["error"];
    assert_eq!(error["code"], "provider_unavailable", "{}", refused.body);
    assert_eq!(
        error["message"],
        "Switchboard's message store is unavailable; retry later."
    );
    assert_eq!(error["retryable"], true, "{}", refused.body);
    assert_eq!(error["request_id"], refused.request_id.as_str());
    assert_eq!(sim.requests().len(), 2, "nothing is sent without a record");

    let not_ready = get(&client, &format!("{gateway}/readyz")).await;
    assert_eq!(not_ready.status, 503);
    assert_eq!(not_ready.body["status"], "store unavailable");

    set_connections_allowed(&admin_url, &store_url, true)
        .await
        .unwrap();
    wait_for_200(&gateway, "/readyz").await;

    let after = send(&client, &gateway, "after the outage").await;
    assert_eq!(after.status, 202, "{}", after.body);
    assert_eq!(sim.requests().len(), 3);
    let after_id = after.body["id"].as_str().unwrap();
    let stored = get(&client, &format!("{gateway}/v1/messages/{after_id}")).await;
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert_eq!(stored.body["status"], "accepted", "{}", stored.body);
    assert_eq!(
        stored.body["provider_message_id"], after.body["provider_message_id"],
        "{}",
        stored.body
    );
    // The send whose record failed was kept, and is written now that the store is back.
    let late_url = format!("{gateway}/v1/messages/{unrecorded_id}");
    let mut late = get(&client, &late_url).await;
    for _ in 0..100 {
        if late.status == 200 {
            break;
        }
        assert_eq!(late.status, 404, "{}", late.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
        late = get(&client, &late_url).await;
    }
    assert_eq!(late.status, 200, "not recorded late: {}", late.body);
    assert_eq!(late_records(&client, &gateway).await, 0);
    // Its key kept its answer with it: a repeat replays it and sends nothing.
    let repeat = send_with_key(&client, &gateway, "the store just went", Some("k-outage")).await;
    assert_eq!(repeat.status, 202, "{}", repeat.body);
    assert!(repeat.replayed, "{}", repeat.body);
    assert_eq!(repeat.body["id"], unrecorded.body["id"]);
    assert_eq!(sim.requests().len(), 3, "a replay sends nothing");
    assert_eq!(late.body["status"], "accepted", "{}", late.body);
    assert_eq!(
        late.body["provider_message_id"], unrecorded.body["provider_message_id"],
        "{}",
        late.body
    );

    // Back to one write per message: the next send is recorded after it, and found.
    let next = send(&client, &gateway, "one write again").await;
    assert_eq!(next.status, 202, "{}", next.body);
    let next_id = next.body["id"].as_str().unwrap();
    let found = get(&client, &format!("{gateway}/v1/messages/{next_id}")).await;
    assert_eq!(found.body["status"], "accepted", "{}", found.body);

    // Stopped as an operator would (SIGTERM): the log's last lines are written out at exit,
    // where a kill would lose those of its last 50 ms (docs/configuration.md).
    let mut running = running;
    send_signal(&running.0, "TERM");
    assert!(wait_for_exit(&mut running.0, Duration::from_secs(20)).success());
    drop(running);
    let logs = std::fs::read_to_string(&log_path).unwrap();
    let not_recorded_line = format!("message_id={unrecorded_id}");
    let unrecorded_request = format!("request_id={}", unrecorded.request_id);
    assert_eq!(
        lines_with(
            &logs,
            &[
                "send outcome not recorded",
                &unrecorded_request,
                &not_recorded_line,
                "kept_for_later=true"
            ]
        )
        .len(),
        1,
        "{logs}"
    );
    assert_eq!(
        lines_with(&logs, &["send outcome recorded late", &not_recorded_line]).len(),
        1,
        "{logs}"
    );
    let refused_request = format!("request_id={}", refused.request_id);
    assert_eq!(
        lines_with(&logs, &["store unavailable", &refused_request]).len(),
        1,
        "{logs}"
    );
    let not_ready_request = format!("request_id={}", not_ready.request_id);
    assert_eq!(
        lines_with(&logs, &["not ready: store unavailable", &not_ready_request]).len(),
        1,
        "{logs}"
    );
    // The store's URL carries the role's password: no line shows the URL's credentials.
    let store = url::Url::parse(&store_url).unwrap();
    let credentials = format!("{}:{}@", store.username(), store.password().unwrap_or(""));
    assert!(!logs.contains(&credentials), "{logs}");
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
