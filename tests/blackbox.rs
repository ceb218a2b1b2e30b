//! Black-box tests of the `switchboard` binary: the sandbox a newcomer runs, `serve` with its
//! graceful shutdown, `config check` — and that nothing the binary logs, at debug level,
//! carries a secret.

#[path = "support/mod.rs"]
mod support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{
    free_port, postgres_database, send_signal, tempdir, wait_for_200, wait_for_exit, Running,
    BINARY,
};
use switchboard_sim::{Behaviour, SimCredentials, Simulator};

const SANDBOX_SECRETS: &[&str] = &[
    "sim-meta-token",
    "sim-kaleyra-key-in",
    "sim-kaleyra-key-sg",
    "sim-kaleyra-key-eu",
    "sim-generic-key",
    "sim-meta-app-secret",
    "sim-meta-verify-token",
    "sim-kaleyra-callback-token",
    "sim-generic-callback-token",
];

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

#[tokio::test]
async fn the_sandbox_sends_a_message_and_logs_no_secret_at_debug_level() {
    let port = free_port();
    let sim_port = free_port();
    let mut child = gateway_command("sandbox-1")
        .args(["sandbox", "--port", &port.to_string()])
        .args(["--sim-port", &sim_port.to_string()])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let running = Running(child);

    // The banner names the simulator, the token and a working curl line.
    let mut banner = String::new();
    let mut lines = BufReader::new(stdout).lines();
    while let Some(Ok(line)) = lines.next() {
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("Stop with Ctrl-C") {
            break;
        }
    }
    let gateway = format!("http://127.0.0.1:{port}");
    assert!(banner.contains(&gateway), "{banner}");
    assert!(
        banner.contains("Authorization: Bearer sandbox-token"),
        "{banner}"
    );
    assert!(banner.contains("curl"), "{banner}");
    let sim_url = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("simulator:"))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the banner names the simulator")
        .to_string();
    assert_eq!(sim_url, format!("http://127.0.0.1:{sim_port}"));
    wait_for_200(&gateway, "/healthz").await;

    let client = reqwest::Client::new();
    let send = |body: Value, query: &'static str| {
        let client = client.clone();
        let url = format!("{gateway}/v1/messages{query}");
        async move {
            let response = client
                .post(url)
                .bearer_auth("sandbox-token")
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, body) = send(
        json!({"to": "+14085551234", "type": "text", "text": {"body": "Hello from Switchboard"}}),
        "",
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["endpoint"], "kaleyra/in");
    let (status, _) = send(json!({"to": "+14085551234", "provider": "meta", "type": "text", "text": {"body": "to meta"}}), "").await;
    assert_eq!(status, 202);
    let (status, _) = send(json!({"to": "+14085551234", "provider": "legacy", "type": "text", "text": {"body": "to legacy"}}), "").await;
    assert_eq!(status, 202);
    let (status, _) = send(
        json!({"to": "+14085551234", "type": "text", "text": {"body": "dry"}}),
        "?dry_run=true",
    )
    .await;
    assert_eq!(status, 200);
    // A provider failure, so error paths are logged too.
    client
        .put(format!("{sim_url}/_sim/behaviour/kaleyra/in"))
        .json(&json!({"mode": "error", "code": "RBC001"}))
        .send()
        .await
        .unwrap();
    let (status, body) = send(
        json!({"to": "+14085551234", "type": "text", "text": {"body": "failover"}}),
        "",
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["endpoint"], "kaleyra/sg");

    // What the providers received is visible to the newcomer.
    let received: Value = client
        .get(format!("{sim_url}/_sim/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoints: Vec<&str> = received
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(
        endpoints,
        ["kaleyra/in", "meta", "generic", "kaleyra/in", "kaleyra/sg"]
    );
    assert_eq!(
        received[0]["body"]["messaging_object"]["text"]["body"],
        "Hello from Switchboard"
    );

    // Ctrl-C: a clean exit, and the whole debug log is free of secrets.
    let mut child = running;
    send_signal(&child.0, "INT");
    let status = wait_for_exit(&mut child.0, Duration::from_secs(30));
    assert!(status.success(), "exit status {status}");
    let mut logs = String::new();
    stderr.read_to_string(&mut logs).unwrap();
    assert!(logs.contains("DEBUG"), "debug logging was on");
    let failed_attempt = logs
        .lines()
        .find(|line| line.contains("provider attempt failed"))
        .expect("the failure was logged");
    assert!(
        failed_attempt.contains("message_id=") && failed_attempt.contains("endpoint=kaleyra/in"),
        "the failed attempt names its message and endpoint: {failed_attempt}"
    );
    for secret in SANDBOX_SECRETS.iter().chain(&["sandbox-token"]) {
        assert!(!logs.contains(secret), "{secret} appears in the logs");
    }
    assert_every_log_line_written(&logs);
}

/// The log writer outlives everything that logs: no line is lost at exit.
fn assert_every_log_line_written(logs: &str) {
    assert!(
        !logs.contains("Unable to write an event"),
        "log lines were lost at exit:\n{logs}"
    );
    assert!(
        logs.contains("stopping: finishing the requests in flight"),
        "{logs}"
    );
}

#[test]
fn a_busy_port_is_named_with_the_flag_that_changes_it() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    for (args, flag) in [
        (vec!["--port".to_string(), port.to_string()], "--port"),
        (
            vec![
                "--port".to_string(),
                free_port().to_string(),
                "--sim-port".to_string(),
                port.to_string(),
            ],
            "--sim-port",
        ),
    ] {
        let output = gateway_command("busy-port")
            .arg("sandbox")
            .args(&args)
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("cannot listen on 127.0.0.1:{port}"))
                && stderr.contains("Address already in use")
                && stderr.contains(&format!("choose another address with {flag}")),
            "{stderr}"
        );
    }
}

fn serve_config(sim: &Simulator, port: u16) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
shutdown_timeout_secs = 10

[[clients]]
name = "orders"
token_env = "BLACKBOX_ORDERS_TOKEN"

[providers.meta]
kind = "meta"
base_url = "{meta}"
access_token_env = "BLACKBOX_META_TOKEN"

[[senders]]
number = "+15550783881"
route = ["meta"]
phone_number_id = "106540352242922"

[routing]
default_sender = "+15550783881"
"#,
        meta = sim.meta_base_url()
    )
}

#[tokio::test]
async fn serve_finishes_in_flight_requests_on_sigterm() {
    serve_finishes_in_flight_requests_on("TERM").await;
}

/// Ctrl-C in a terminal.
#[tokio::test]
async fn serve_finishes_in_flight_requests_on_sigint() {
    serve_finishes_in_flight_requests_on("INT").await;
}

async fn serve_finishes_in_flight_requests_on(signal: &str) {
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), SimCredentials::sandbox())
        .await
        .unwrap();
    sim.set_behaviour("meta", Behaviour::Slow(Duration::from_millis(1500)));
    let port = free_port();
    let dir = tempdir(&format!("serve-config-{signal}"));
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, serve_config(&sim, port)).unwrap();
    let child = gateway_command(&format!("serve-{signal}"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .env("BLACKBOX_ORDERS_TOKEN", "orders-token-value")
        .env("BLACKBOX_META_TOKEN", "sim-meta-token")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let gateway = format!("http://127.0.0.1:{port}");
    wait_for_200(&gateway, "/healthz").await;

    let in_flight = tokio::spawn({
        let url = format!("{gateway}/v1/messages");
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth("orders-token-value")
                .json(&json!({"to": "+14085551234", "type": "text", "text": {"body": "slow"}}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    // Let the request reach the (slow) provider, then ask the gateway to stop.
    for _ in 0..100 {
        if !sim.requests().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim.requests().len(), 1);
    send_signal(&running.0, signal);
    assert_eq!(
        in_flight.await.unwrap().unwrap(),
        202,
        "the in-flight request finished"
    );
    let status = wait_for_exit(&mut running.0, Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
    let mut logs = String::new();
    running
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    for secret in ["orders-token-value", "sim-meta-token"] {
        assert!(!logs.contains(secret), "{secret} appears in the logs");
    }
    assert_every_log_line_written(&logs);
    sim.stop().await;
}

/// Log lines are gathered and written together, but none waits for more to come: a request's
/// line reaches stderr while the gateway runs on, idle.
#[tokio::test]
async fn a_request_is_logged_at_once_while_the_gateway_runs() {
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), SimCredentials::sandbox())
        .await
        .unwrap();
    let port = free_port();
    let dir = tempdir("serve-logs-at-once");
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, serve_config(&sim, port)).unwrap();
    let mut child = gateway_command("serve-logs-at-once")
        .args(["serve", "--config", path.to_str().unwrap()])
        .env("BLACKBOX_ORDERS_TOKEN", "orders-token-value")
        .env("BLACKBOX_META_TOKEN", "sim-meta-token")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut running = Running(child);
    let (lines, logged) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let gateway = format!("http://127.0.0.1:{port}");
    wait_for_200(&gateway, "/healthz").await;

    let response = reqwest::Client::new()
        .post(format!("{gateway}/v1/messages"))
        .bearer_auth("orders-token-value")
        .header("x-request-id", "logged-at-once")
        .json(&json!({"to": "+14085551234", "type": "text", "text": {"body": "hello"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match logged.recv_timeout(left) {
            Ok(line) if line.contains("logged-at-once") && line.contains("request done") => {
                break line
            }
            Ok(_) => {}
            Err(_) => panic!("the request's line did not reach stderr within 5 s"),
        }
    };
    for field in [
        "request_id=logged-at-once",
        "method=POST",
        "path=/v1/messages",
        "status=202",
        "elapsed_ms=",
    ] {
        assert!(line.contains(field), "{field} is not in {line}");
    }
    assert!(
        running.0.try_wait().unwrap().is_none(),
        "the gateway still runs"
    );
    sim.stop().await;
}

/// The binary, run in a directory of its own so that its default SQLite store lands there.
fn gateway_command(name: &str) -> Command {
    let mut command = Command::new(BINARY);
    command.current_dir(tempdir(name));
    command
}

/// `serve --config path` with the tokens `serve_config` names, output discarded.
fn serve_quietly(name: &str, path: &std::path::Path) -> Child {
    gateway_command(name)
        .args(["serve", "--config"])
        .arg(path)
        .env("BLACKBOX_ORDERS_TOKEN", "orders-token-value")
        .env("BLACKBOX_META_TOKEN", "sim-meta-token")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

const PRODUCTION_ENV: &[(&str, &str)] = &[
    ("ORDERS_TOKEN", "orders-secret-token"),
    ("SUPPORT_TOKEN", "support-secret-token"),
    ("META_ACCESS_TOKEN", "meta-secret-token"),
    ("META_APP_SECRET", "meta-app-secret"),
    ("META_VERIFY_TOKEN", "meta-verify-secret"),
    ("KALEYRA_API_KEY", "kaleyra-in-secret"),
    ("KALEYRA_SG_API_KEY", "kaleyra-sg-secret"),
    ("KALEYRA_EU_API_KEY", "kaleyra-eu-secret"),
    ("KALEYRA_CALLBACK_TOKEN", "kaleyra-callback-secret"),
    ("LEGACY_AUTH", "legacy-secret"),
    ("LEGACY_CALLBACK_TOKEN", "legacy-callback-secret"),
    ("EVENTS_SECRET", "events-secret"),
];

#[test]
fn config_check_prints_the_resolved_routes_with_secrets_masked() {
    let output = Command::new(BINARY)
        .args(["config", "check", "--config"])
        .arg(repo_file("config/production.example.toml"))
        .envs(PRODUCTION_ENV.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("+15550783881 (default): route kaleyra → meta → endpoints kaleyra/in, kaleyra/sg, kaleyra/eu, meta"), "{stdout}");
    assert!(stdout.contains("kaleyra/sg"), "{stdout}");
    assert!(stdout.contains("https://api.ap.kaleyra.io"), "{stdout}");
    assert!(stdout.contains("****"), "{stdout}");
    for (_, secret) in PRODUCTION_ENV {
        assert!(!stdout.contains(secret), "{secret} printed");
    }
}

#[test]
fn config_check_names_the_offending_key() {
    let missing_env: Vec<(&str, &str)> = PRODUCTION_ENV
        .iter()
        .copied()
        .filter(|(k, _)| *k != "KALEYRA_SG_API_KEY")
        .collect();
    let output = Command::new(BINARY)
        .args(["config", "check", "--config"])
        .arg(repo_file("config/production.example.toml"))
        .env_clear()
        .envs(missing_env)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("providers.kaleyra.pods[1].api_key_env"),
        "{stderr}"
    );
    assert!(stderr.contains("KALEYRA_SG_API_KEY"), "{stderr}");

    // With no variable set, one run names every one of them, each with its key.
    let output = Command::new(BINARY)
        .args(["config", "check", "--config"])
        .arg(repo_file("config/production.example.toml"))
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{} problems:", PRODUCTION_ENV.len())),
        "{stderr}"
    );
    for (variable, _) in PRODUCTION_ENV {
        assert!(
            stderr.contains(&format!("environment variable {variable} is not set")),
            "{variable} is not named:\n{stderr}"
        );
    }

    let dir = tempdir("check");
    let path = dir.join("bad.toml");
    let bad = std::fs::read_to_string(repo_file("config/production.example.toml"))
        .unwrap()
        .replace("open_secs = 30", "open_sec = 30");
    std::fs::write(&path, bad).unwrap();
    let output = Command::new(BINARY)
        .args(["config", "check", "--config"])
        .arg(&path)
        .envs(PRODUCTION_ENV.iter().copied())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("resilience.open_sec"));

    let output = gateway_command("serve-3")
        .args(["serve", "--config"])
        .arg(&path)
        .envs(PRODUCTION_ENV.iter().copied())
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "serve refuses an invalid config at startup"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("resilience.open_sec"));
}

#[tokio::test]
async fn sighup_reloads_a_valid_config_and_keeps_the_running_one_on_an_invalid_one() {
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), SimCredentials::sandbox())
        .await
        .unwrap();
    let port = free_port();
    let dir = tempdir("reload");
    let path = dir.join("switchboard.toml");
    let generic = format!(
        "\n[providers.legacy]\nkind = \"generic\"\nbase_url = \"{}\"\nauth_header = \"x-api-key\"\nauth_value = \"sim-generic-key\"\n",
        sim.generic_base_url()
    );
    let meta_config = format!("{}{generic}", serve_config(&sim, port));
    std::fs::write(&path, &meta_config).unwrap();
    let child = serve_quietly("serve-4", &path);
    let running = Running(child);
    let gateway = format!("http://127.0.0.1:{port}");
    wait_for_200(&gateway, "/healthz").await;
    let send = || async {
        let response = reqwest::Client::new()
            .post(format!("{gateway}/v1/messages"))
            .bearer_auth("orders-token-value")
            .json(&json!({"to": "+14085551234", "type": "text", "text": {"body": "x"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        response.json::<Value>().await.unwrap()["endpoint"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(send().await, "meta");

    // Switching the sender from Meta to the generic provider is a config edit.
    std::fs::write(
        &path,
        meta_config.replace("route = [\"meta\"]", "route = [\"legacy\"]"),
    )
    .unwrap();
    hangup(&running.0);
    assert_eq!(eventually(send, "legacy").await, "legacy");

    // An invalid file is refused; the running configuration keeps serving.
    std::fs::write(&path, "[server]\nlisten = 12\nnonsense = true\n").unwrap();
    hangup(&running.0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(send().await, "legacy");
    let mut running = running;
    assert!(
        running.0.try_wait().unwrap().is_none(),
        "the gateway is still running"
    );
    let received: Vec<String> = sim.requests().iter().map(|r| r.endpoint.clone()).collect();
    assert_eq!(received.first().map(String::as_str), Some("meta"));
    assert_eq!(received.last().map(String::as_str), Some("generic"));
    sim.stop().await;
}

fn hangup(child: &Child) {
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Sends until the answer is `expected` (a reload is asynchronous), at most ~5 s.
async fn eventually<F, Fut>(send: F, expected: &str) -> String
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let mut last = String::new();
    for _ in 0..100 {
        last = send().await;
        if last == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

#[tokio::test]
async fn a_reload_under_load_switches_the_route_and_fails_no_request() {
    const SENDERS: usize = 8;
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), SimCredentials::sandbox())
        .await
        .unwrap();
    // Slow answers keep requests in flight while the configuration is replaced.
    sim.set_behaviour("kaleyra/in", Behaviour::Slow(Duration::from_millis(150)));
    sim.set_behaviour("meta", Behaviour::Slow(Duration::from_millis(20)));
    let port = free_port();
    let dir = tempdir("reload-under-load");
    let path = dir.join("switchboard.toml");
    let kaleyra = format!(
        "\n[providers.kaleyra]\nkind = \"kaleyra\"\nsid = \"HXAP16XXXXXX97IN\"\nwa_source = \"api\"\n\
         [[providers.kaleyra.pods]]\nname = \"in\"\nbase_url = \"{}\"\napi_key = \"sim-kaleyra-key-in\"\n",
        sim.kaleyra_pod_base_url("in")
    );
    let kaleyra_config = format!("{}{kaleyra}", serve_config(&sim, port))
        .replace("route = [\"meta\"]", "route = [\"kaleyra\"]");
    std::fs::write(&path, &kaleyra_config).unwrap();
    let child = serve_quietly("serve-5", &path);
    let running = Running(child);
    let gateway = format!("http://127.0.0.1:{port}");
    wait_for_200(&gateway, "/healthz").await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (gateway, stop) = (gateway.clone(), stop.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let response = http
                        .post(format!("{gateway}/v1/messages"))
                        .bearer_auth("orders-token-value")
                        .json(&json!({"to": "+14085551234", "type": "text", "text": {"body": "x"}}))
                        .send()
                        .await
                        .unwrap();
                    let status = response.status().as_u16();
                    let body: Value = response.json().await.unwrap();
                    seen.push((status, body["endpoint"].as_str().unwrap_or("").to_string()));
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(
        &path,
        kaleyra_config.replace("route = [\"kaleyra\"]", "route = [\"meta\"]"),
    )
    .unwrap();
    hangup(&running.0);
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut before = 0;
    let mut after = 0;
    for sender in senders {
        let seen = sender.await.unwrap();
        for (status, endpoint) in &seen {
            assert_eq!(*status, 202, "a request failed during the reload: {seen:?}");
            assert!(endpoint == "kaleyra/in" || endpoint == "meta", "{seen:?}");
        }
        // A request that starts after the switch uses the new route: per sender, Kaleyra
        // answers come first, then only Meta.
        let switch = seen
            .iter()
            .position(|(_, e)| e == "meta")
            .unwrap_or(seen.len());
        assert!(seen[switch..].iter().all(|(_, e)| e == "meta"), "{seen:?}");
        assert!(switch < seen.len(), "every sender reached Meta: {seen:?}");
        before += switch;
        after += seen.len() - switch;
    }
    assert!(
        before >= SENDERS,
        "requests went to Kaleyra before the reload"
    );
    assert!(after >= SENDERS, "and to Meta after it");
    assert_eq!(sim.requests_to("kaleyra/in").len(), before);
    assert_eq!(sim.requests_to("meta").len(), after);
    sim.stop().await;
}

#[tokio::test]
async fn two_gateways_on_one_postgres_send_an_idempotent_request_once() {
    let Some(postgres) = postgres_database("two_gateways_on_one_postgres").await else {
        return;
    };
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), SimCredentials::sandbox())
        .await
        .unwrap();
    // Slow enough that every racing request arrives while the first is in flight.
    sim.set_behaviour("meta", Behaviour::Slow(Duration::from_millis(800)));
    let mut gateways = Vec::new();
    let mut running = Vec::new();
    for replica in 0..2 {
        let port = free_port();
        let dir = tempdir(&format!("replica-{replica}"));
        let path = dir.join("switchboard.toml");
        let config = format!(
            "{}\n[store]\nurl = \"{postgres}\"\n",
            serve_config(&sim, port)
        );
        std::fs::write(&path, config).unwrap();
        let child = serve_quietly(&format!("replica-{replica}"), &path);
        running.push(Running(child));
        gateways.push(format!("http://127.0.0.1:{port}"));
    }
    for gateway in &gateways {
        wait_for_200(gateway, "/healthz").await;
    }
    let key = format!("race-{}", ulid_like());
    let send = |gateway: String, key: String| async move {
        let response = reqwest::Client::new()
            .post(format!("{gateway}/v1/messages"))
            .bearer_auth("orders-token-value")
            .header("idempotency-key", key)
            .json(&json!({"to": "+14085551234", "type": "text", "text": {"body": "once"}}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let replayed = response.headers().contains_key("idempotent-replayed");
        let body: Value = response.json().await.unwrap();
        (status, replayed, body)
    };
    let racing: Vec<_> = (0..6)
        .map(|i| tokio::spawn(send(gateways[i % 2].clone(), key.clone())))
        .collect();
    let mut statuses = Vec::new();
    let mut accepted_id = None;
    for task in racing {
        let (status, _, body) = task.await.unwrap();
        if status == 202 {
            accepted_id = body["id"].as_str().map(str::to_string);
        } else {
            assert_eq!(body["error"]["code"], "idempotency_key_in_use", "{body}");
        }
        statuses.push(status);
    }
    statuses.sort();
    assert_eq!(statuses, [202, 409, 409, 409, 409, 409]);
    assert_eq!(sim.requests_to("meta").len(), 1, "only one gateway sent");
    for gateway in &gateways {
        let (status, replayed, body) = send(gateway.clone(), key.clone()).await;
        assert_eq!((status, replayed), (202, true));
        assert_eq!(body["id"].as_str(), accepted_id.as_deref());
    }
    assert_eq!(sim.requests_to("meta").len(), 1);
    drop(running);
    sim.stop().await;
}

/// A key no earlier run used.
fn ulid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos}-{}", std::process::id())
}

/// A gateway behind an egress proxy: with `HTTP_PROXY` set, the call to a plain-http provider is
/// handed to the proxy, and the proxy's answer comes back as the send's. The provider's host
/// does not resolve, so only the proxy can have carried the message.
#[tokio::test]
async fn provider_calls_go_through_the_proxy_the_environment_names() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let proxy = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v24.0/106540352242922/messages"))
        .and(header("host", "graph.provider.invalid"))
        .and(header("authorization", "Bearer proxied-meta-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": "+14085551234", "wa_id": "14085551234"}],
            "messages": [{"id": "wamid.through-the-proxy"}]
        })))
        .expect(1)
        .mount(&proxy)
        .await;

    let port = free_port();
    let dir = tempdir("proxy");
    let config = dir.join("switchboard.toml");
    std::fs::write(
        &config,
        support::meta_gateway_config(
            port,
            "sqlite::memory:",
            "http://graph.provider.invalid",
            "PROXIED",
        ),
    )
    .unwrap();
    let mut command = gateway_command("proxy");
    // HTTP_PROXY alone: none of the variables that could override it or turn it off.
    for name in [
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "REQUEST_METHOD",
    ] {
        command.env_remove(name);
    }
    let _gateway = Running(
        command
            .args(["serve", "--config"])
            .arg(&config)
            .env("HTTP_PROXY", proxy.uri())
            .env("PROXIED_ORDERS_TOKEN", "orders-token-value")
            .env("PROXIED_META_TOKEN", "proxied-meta-token")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_for_200(&url, "/readyz").await;

    let response = reqwest::Client::new()
        .post(format!("{url}/v1/messages"))
        .bearer_auth("orders-token-value")
        .json(&json!({"to": "+14085551234", "type": "text", "text": {"body": "via the proxy"}}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body["provider_message_id"], "wamid.through-the-proxy",
        "{body}"
    );
    proxy.verify().await;
}
