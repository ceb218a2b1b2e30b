//! The floor of the gateway's HTTP stack, for the load benchmark: the least a proxy built on
//! the same crates (actix-web in, reqwest out, the same client settings) does per message.
//!
//! `stack-floor --listen ADDR --upstream URL` answers every POST, whatever its path, by sending
//! the request's body unchanged to `URL` (with Kaleyra's `api-key` header) and answering 202
//! with the upstream's body. No parsing, no validation, no store, no logs, no metrics: what the
//! gateway spends beyond this is its own work, and this row's ratio to nginx is the most the
//! gateway could reach with this stack on the machine measured.

use actix_web::{web, App, HttpResponse, HttpServer};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// The gateway's allocator (crates/server/src/main.rs), so that the comparison is like for like.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: stack-floor --listen ADDR --upstream URL";

struct Upstream {
    client: reqwest::Client,
    url: reqwest::Url,
}

fn parse_args() -> Result<(SocketAddr, reqwest::Url), String> {
    let mut listen = None;
    let mut upstream = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().map_err(|e| format!("--listen: {e}"))?),
            "--upstream" => {
                upstream =
                    Some(reqwest::Url::parse(&value).map_err(|e| format!("--upstream: {e}"))?)
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok((
        listen.ok_or("--listen is required")?,
        upstream.ok_or("--upstream is required")?,
    ))
}

/// The provider client as the gateway builds it (crates/server/src/send/executor.rs).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("the HTTP client builds with static settings")
}

async fn forward(upstream: web::Data<Upstream>, body: web::Bytes) -> HttpResponse {
    let sent = upstream
        .client
        .post(upstream.url.clone())
        .timeout(Duration::from_secs(10))
        .header("content-type", "application/json")
        .header("api-key", "bench-kaleyra-key")
        .body(body)
        .send()
        .await;
    let answer = match sent {
        Ok(response) => response.bytes().await,
        Err(error) => Err(error),
    };
    match answer {
        Ok(bytes) => HttpResponse::Accepted()
            .content_type("application/json")
            .body(bytes),
        Err(_) => HttpResponse::BadGateway().finish(),
    }
}

fn main() -> ExitCode {
    let (listen, url) = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("stack-floor: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let served = actix_web::rt::System::new().block_on(async move {
        let upstream = web::Data::new(Upstream {
            client: client(),
            url,
        });
        HttpServer::new(move || {
            App::new()
                .app_data(upstream.clone())
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
