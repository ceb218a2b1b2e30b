//! What the black-box tests of the binary share: starting it, waiting for it, stopping it,
//! and a PostgreSQL database when the tests may use one.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

pub const BINARY: &str = env!("CARGO_BIN_EXE_switchboard");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A directory of this test run (the process id is in its name), under the system's temporary
/// directory; the same name gives the same directory.
pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-blackbox-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `switchboard serve --config CONFIG` in `dir`, with `env` set, logging at warn to nowhere.
pub fn serve(dir: &std::path::Path, config: &std::path::Path, env: &[(&str, &str)]) -> Running {
    let child = std::process::Command::new(BINARY)
        .current_dir(dir)
        .args(["serve", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Running(child)
}

/// Sends `signal` (`TERM`, `INT`, …) to the child.
pub fn send_signal(child: &Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

pub fn wait_for_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < limit,
            "the process did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the child if a test fails half-way.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `GET {url}{path}` answers 200 (`/healthz`: the process runs; `/readyz`: its
/// store answers too).
pub async fn wait_for_200(url: &str, path: &str) {
    let client = reqwest::Client::new();
    for _ in 0..400 {
        if let Ok(response) = client.get(format!("{url}{path}")).send().await {
            if response.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url}{path} never answered 200");
}

/// A fresh database on the PostgreSQL the tests may use, or a printed reason to skip. A
/// configured server that cannot be reached fails the test: CI must not skip silently.
pub async fn postgres_database(test: &str) -> Option<String> {
    use switchboard_store::testing::{fresh_postgres_database, POSTGRES_URL_VAR};
    let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
        // Straight to stderr, past the test harness's capture, so that the skip is seen.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped {test}: {POSTGRES_URL_VAR} is not set (see README: Tests)"
        );
        return None;
    };
    Some(
        fresh_postgres_database(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but unusable: {e}")),
    )
}

/// A gateway on `port` storing in `store_url` and sending for +15550783881 through Meta at
/// `meta_base_url`; the client `orders` has the token in `{prefix}_ORDERS_TOKEN`, Meta's
/// access token is in `{prefix}_META_TOKEN`.
pub fn meta_gateway_config(
    port: u16,
    store_url: &str,
    meta_base_url: &str,
    prefix: &str,
) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
shutdown_timeout_secs = 2

[store]
url = "{store_url}"

[[clients]]
name = "orders"
token_env = "{prefix}_ORDERS_TOKEN"

[providers.meta]
kind = "meta"
base_url = "{meta_base_url}"
access_token_env = "{prefix}_META_TOKEN"

[[senders]]
number = "+15550783881"
route = ["meta"]
phone_number_id = "106540352242922"

[routing]
default_sender = "+15550783881"
"#
    )
}
