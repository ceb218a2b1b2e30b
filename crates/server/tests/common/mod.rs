//! A gateway with the sandbox configuration, served on loopback against the provider
//! simulator: what the integration tests drive over real HTTP.
#![allow(dead_code)]

pub mod queue;

use serde_json::Value;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use switchboard_server::app::{self, Signals};
use switchboard_server::config::{Endpoint, Settings};
use switchboard_sim::{SimCredentials, Simulator};

pub const TOKEN: &str = "sandbox-token";

pub struct Gateway {
    pub sim: Simulator,
    pub url: String,
    pub http: reqwest::Client,
    /// The running gateway's state (its store, for one).
    pub state: actix_web::web::Data<switchboard_server::state::AppState>,
    server: actix_web::dev::ServerHandle,
    /// Holds the gateway's SQLite file (unless the test named its own store).
    _store_dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

impl Gateway {
    pub async fn start() -> Gateway {
        Gateway::start_with(|_| {}).await
    }

    /// Starts with the sandbox settings and a fresh SQLite store, adjusted by `edit`.
    pub async fn start_with(edit: impl FnOnce(&mut Settings)) -> Gateway {
        let credentials = SimCredentials::sandbox();
        let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), credentials.clone())
            .await
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut settings =
            switchboard_server::sandbox::settings_for(&sim, &credentials, port).unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        settings.store_url = sqlite_url(&store_dir.path().join("switchboard.db"));
        edit(&mut settings);
        let (server, state) = app::start(settings, listener, Signals::Ignore)
            .await
            .unwrap();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Gateway {
            sim,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            state,
            server: handle,
            _store_dir: store_dir,
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, serde_json::to_vec(body).unwrap(), Some(TOKEN))
            .await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>, token: Option<&str>) -> Reply {
        let mut request = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        reply(request.send().await.unwrap()).await
    }

    /// `POST` with the client token and extra request headers (e.g. `Prefer`, `Idempotency-Key`).
    pub async fn post_with_headers(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .bearer_auth(TOKEN)
            .body(serde_json::to_vec(body).unwrap());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        reply(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        reply(
            self.http
                .get(format!("{}{path}", self.url))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn send(&self, message: &Value) -> Reply {
        self.post("/v1/messages", message).await
    }

    pub async fn stop(self) {
        self.server.stop(false).await;
        self.sim.stop().await;
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Reply {
        status,
        headers,
        body,
    }
}

/// Gives every endpoint a timeout of `timeout`.
pub fn shorten_timeouts(settings: &mut Settings, timeout: Duration) {
    for endpoint in settings.endpoints.values_mut() {
        *endpoint = Arc::new(Endpoint {
            id: endpoint.id.clone(),
            provider: endpoint.provider.clone(),
            kind: endpoint.kind,
            adapter: endpoint.adapter.clone(),
            timeout,
            base_url: endpoint.base_url.clone(),
        });
    }
}

pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}", path.display())
}
