//! The floor of the gateway's HTTP stack, for the load benchmark: the least a proxy built on
//! the same crates (actix-web in, reqwest out, the same client settings) does per message.
//!
//! `stack-floor --listen ADDR --upstream URL [--client reqwest|hyper]` answers every POST,
//! whatever its path, by sending the request's body unchanged to `URL` (with Kaleyra's `api-key`
//! header) and answering 202 with the upstream's body. No parsing, no validation, no store, no
//! logs, no metrics: what the gateway spends beyond this is its own work, and this row's ratio to
//! nginx is the most the gateway could reach with this stack on the machine measured.
//!
//! `--client hyper` sends with hyper's own pooled client (hyper-util's), the layer reqwest is
//! built on, with the same pool, connect and request timeouts: what a provider client without
//! reqwest's layers would save. The gateway itself sends with reqwest.
//!
//! Each HTTP worker builds its own client, as the gateway does (crates/server/src/send/
//! executor.rs); `--pool shared` gives all workers one client, as the gateway did before, to
//! measure the difference.

use actix_web::{web, App, HttpResponse, HttpServer};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// The gateway's allocator (crates/server/src/main.rs), so that the comparison is like for like.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str =
    "usage: stack-floor --listen ADDR --upstream URL [--client reqwest|hyper] [--pool per-worker|shared]";

/// The gateway's per-endpoint default `timeout_ms`, for the whole exchange.
const TIMEOUT: Duration = Duration::from_secs(10);

type HyperClient = hyper_util::client::legacy::Client<HttpConnector, Full<web::Bytes>>;

enum Upstream {
    Reqwest {
        client: reqwest::Client,
        url: reqwest::Url,
    },
    Hyper {
        /// Boxed: hyper's client is several times the size of reqwest's handle.
        client: Box<HyperClient>,
        uri: hyper::Uri,
    },
}

#[derive(Clone, Copy)]
enum ClientKind {
    Reqwest,
    Hyper,
}

struct Args {
    listen: SocketAddr,
    upstream: reqwest::Url,
    client: ClientKind,
    per_worker: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = None;
    let mut upstream = None;
    let mut client = ClientKind::Reqwest;
    let mut per_worker = true;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().map_err(|e| format!("--listen: {e}"))?),
            "--upstream" => {
                upstream =
                    Some(reqwest::Url::parse(&value).map_err(|e| format!("--upstream: {e}"))?)
            }
            "--client" => {
                client = match value.as_str() {
                    "reqwest" => ClientKind::Reqwest,
                    "hyper" => ClientKind::Hyper,
                    other => return Err(format!("--client: {other} is not reqwest or hyper")),
                }
            }
            "--pool" => {
                per_worker = match value.as_str() {
                    "shared" => false,
                    "per-worker" => true,
                    other => return Err(format!("--pool: {other} is not shared or per-worker")),
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or("--listen is required")?,
        upstream: upstream.ok_or("--upstream is required")?,
        client,
        per_worker,
    })
}

impl Upstream {
    fn new(kind: ClientKind, url: reqwest::Url) -> Result<Self, String> {
        Ok(match kind {
            ClientKind::Reqwest => Upstream::Reqwest {
                client: client(),
                url,
            },
            ClientKind::Hyper => Upstream::Hyper {
                client: Box::new(hyper_client()),
                uri: url
                    .as_str()
                    .parse()
                    .map_err(|e| format!("--upstream: {e}"))?,
            },
        })
    }
}

/// The provider client as the gateway builds it (crates/server/src/send/executor.rs) when the
/// environment names no proxy, as in bench/run.sh.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("the HTTP client builds with static settings")
}

/// hyper's pooled client with the settings `client()` gives reqwest (which also sets
/// `TCP_NODELAY`).
fn hyper_client() -> HyperClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    connector.set_nodelay(true);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .build(connector)
}

async fn forward(upstream: web::Data<Upstream>, body: web::Bytes) -> HttpResponse {
    let answer = match upstream.get_ref() {
        Upstream::Reqwest { client, url } => send_reqwest(client, url, body).await,
        Upstream::Hyper { client, uri } => send_hyper(client, uri, body).await,
    };
    match answer {
        Some(bytes) => HttpResponse::Accepted()
            .content_type("application/json")
            .body(bytes),
        None => HttpResponse::BadGateway().finish(),
    }
}

async fn send_reqwest(
    client: &reqwest::Client,
    url: &reqwest::Url,
    body: web::Bytes,
) -> Option<web::Bytes> {
    let response = client
        .post(url.clone())
        .timeout(TIMEOUT)
        .header("content-type", "application/json")
        .header("api-key", "bench-kaleyra-key")
        .body(body)
        .send()
        .await
        .ok()?;
    response.bytes().await.ok()
}

async fn send_hyper(
    client: &HyperClient,
    uri: &hyper::Uri,
    body: web::Bytes,
) -> Option<web::Bytes> {
    let request = hyper::Request::post(uri.clone())
        .header("content-type", "application/json")
        .header("api-key", "bench-kaleyra-key")
        .body(Full::new(body))
        .ok()?;
    let exchange = async {
        let response = client.request(request).await.ok()?;
        Some(response.into_body().collect().await.ok()?.to_bytes())
    };
    tokio::time::timeout(TIMEOUT, exchange).await.ok()?
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("stack-floor: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listen = args.listen;
    let served = actix_web::rt::System::new().block_on(async move {
        // Built inside the runtime: hyper's pool timer needs it.
        let upstream = match Upstream::new(args.client, args.upstream.clone()) {
            Ok(upstream) => web::Data::new(upstream),
            Err(message) => return Err(std::io::Error::other(message)),
        };
        let (kind, url, per_worker) = (args.client, args.upstream, args.per_worker);
        HttpServer::new(move || {
            let upstream = if per_worker {
                web::Data::new(Upstream::new(kind, url.clone()).expect("parsed once already"))
            } else {
                upstream.clone()
            };
            App::new()
                .app_data(upstream)
                .default_service(web::post().to(forward))
        })
        .bind(listen)?
        .run()
        .await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("stack-floor: {error}");
            ExitCode::FAILURE
        }
    }
}
