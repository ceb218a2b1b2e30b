//! Nothing acknowledged is lost: `switchboard serve` is killed with SIGKILL while requests are
//! in flight, started again on the same store, and every message it answered 202 for is there,
//! with the provider's id — on SQLite (the default store) and on PostgreSQL.

#[path = "support/mod.rs"]
mod support;

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{free_port, postgres_database, tempdir, wait_for_200, Running};
use switchboard_sim::{SimCredentials, Simulator};

const TOKEN: &str = "durability-token";
/// Clients sending at once.
const CLIENTS: usize = 32;
/// The gateway is killed once it has answered this many messages (or after `LOAD_LIMIT`).
const ACKNOWLEDGED_BEFORE_KILL: usize = 400;
const LOAD_LIMIT: Duration = Duration::from_secs(20);

fn serve(dir: &std::path::Path, config: &std::path::Path) -> Running {
    support::serve(
        dir,
        config,
        &[
            ("DURABILITY_ORDERS_TOKEN", TOKEN),
            ("DURABILITY_META_TOKEN", "sim-meta-token"),
        ],
    )
}

/// (message id, provider message id) of every 202.
type Acknowledged = Arc<Mutex<Vec<(String, String)>>>;

/// `CLIENTS` loops sending messages until the gateway stops answering (or `LOAD_LIMIT`).
fn start_load(
    gateway: &str,
    acknowledged: &Acknowledged,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<usize>> {
    (0..CLIENTS)
        .map(|client_no| {
            let url = format!("{gateway}/v1/messages");
            let (acknowledged, stop) = (Arc::clone(acknowledged), Arc::clone(stop));
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let started = Instant::now();
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) && started.elapsed() < LOAD_LIMIT {
                    let body = json!({
                        "to": "+14085551234",
                        "type": "text",
                        "text": {"body": format!("durable {client_no}-{sent}")},
                    });
                    sent += 1;
                    let Ok(response) = client
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .json(&body)
                        .send()
                        .await
                    else {
                        break;
                    };
                    if response.status().as_u16() != 202 {
                        continue;
                    }
                    // A 202 whose body did not arrive in full is not an acknowledgement.
                    let Ok(body) = response.json::<Value>().await else {
                        break;
                    };
                    let id = body["id"]
                        .as_str()
                        .expect("a 202 names the message")
                        .to_owned();
                    let provider_id = body["provider_message_id"]
                        .as_str()
                        .expect("Meta gives an id")
                        .to_owned();
                    acknowledged.lock().unwrap().push((id, provider_id));
                }
                sent
            })
        })
        .collect()
}

async fn killed_under_load_loses_nothing(name: &str, store_url: &str) {
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), SimCredentials::sandbox())
        .await
        .unwrap();
    let dir = tempdir(name);
    let port = free_port();
    let path = dir.join("switchboard.toml");
    std::fs::write(
        &path,
        support::meta_gateway_config(port, store_url, &sim.meta_base_url(), "DURABILITY"),
    )
    .unwrap();
    let gateway = format!("http://127.0.0.1:{port}");

    let mut running = serve(&dir, &path);
    wait_for_200(&gateway, "/readyz").await;
    let acknowledged: Acknowledged = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(&gateway, &acknowledged, &stop);
    let started = Instant::now();
    while acknowledged.lock().unwrap().len() < ACKNOWLEDGED_BEFORE_KILL
        && started.elapsed() < LOAD_LIMIT
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // SIGKILL, in the middle of the load: no shutdown, no flush.
    running.0.kill().unwrap();
    let status = running.0.wait().unwrap();
    assert!(!status.success(), "killed, not exited: {status:?}");
    stop.store(true, Ordering::Relaxed);
    let mut sent = 0;
    for task in load {
        sent += task.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    eprintln!(
        "{name}: killed with {} of {sent} requests answered 202",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() >= ACKNOWLEDGED_BEFORE_KILL,
        "only {} messages answered before the kill",
        acknowledged.len()
    );
    assert!(
        sent > acknowledged.len(),
        "requests were in flight at the kill ({sent} sent, {} answered)",
        acknowledged.len()
    );

    // The same store, a new process.
    let restarted = serve(&dir, &path);
    wait_for_200(&gateway, "/readyz").await;
    let client = reqwest::Client::new();
    let mut lost = Vec::new();
    for (id, provider_id) in &acknowledged {
        let response = client
            .get(format!("{gateway}/v1/messages/{id}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        if response.status() != 200 {
            lost.push(format!("{id}: HTTP {}", response.status()));
            continue;
        }
        let message: Value = response.json().await.unwrap();
        if message["provider_message_id"].as_str() != Some(provider_id.as_str()) {
            lost.push(format!("{id}: {message}"));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost or changed after SIGKILL: {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(5)]
    );
    drop(restarted);
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_message_on_sqlite() {
    let dir = tempdir("sqlite-store");
    let url = format!("sqlite://{}", dir.join("switchboard.db").display());
    killed_under_load_loses_nothing("sqlite", &url).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_message_on_postgres() {
    let Some(url) =
        postgres_database("sigkill_under_load_loses_no_acknowledged_message_on_postgres").await
    else {
        return;
    };
    killed_under_load_loses_nothing("postgres", &url).await;
}
