//! A fast fake Kaleyra pod for the load benchmark.
//!
//! `fake-provider --listen 127.0.0.1:18401` answers every POST, whatever its path, with
//! Kaleyra v2's documented success: HTTP 202 and
//! `{"code":"WA202","message":"Request Accepted","data":{"message_id":"…"},"error":{}}`.
//! It keeps nothing and logs nothing, so it costs as little as possible per request.
//!
//! `fake-provider --listen ADDR --mode blackhole` accepts connections, reads whatever arrives
//! and never answers: a pod that is reachable but hangs.
//!
//! `--threads N` sets the runtime's worker threads (default: one per CPU).

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

const USAGE: &str = "usage: fake-provider --listen ADDR [--mode ok|blackhole] [--threads N]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    Blackhole,
}

#[derive(Debug)]
struct Args {
    listen: SocketAddr,
    mode: Mode,
    threads: usize,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut listen = None;
    let mut mode = Mode::Ok;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => {
                let text = value("--listen")?;
                listen = Some(
                    text.parse::<SocketAddr>()
                        .map_err(|e| format!("--listen {text}: {e}"))?,
                );
            }
            "--mode" => {
                mode = match value("--mode")?.as_str() {
                    "ok" => Mode::Ok,
                    "blackhole" => Mode::Blackhole,
                    other => return Err(format!("--mode {other}: expected ok or blackhole")),
                }
            }
            "--threads" => {
                let text = value("--threads")?;
                threads = text
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--threads {text}: expected a positive number"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    let listen = listen.ok_or("--listen is required")?;
    Ok(Args {
        listen,
        mode,
        threads,
    })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            if !error.is_empty() {
                eprintln!("fake-provider: {error}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(serve(args)),
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fake-provider: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> std::io::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    println!(
        "fake-provider listening on {} ({})",
        listener.local_addr()?,
        match args.mode {
            Mode::Ok => "answers 202 WA202",
            Mode::Blackhole => "black hole: never answers",
        }
    );
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors or a connection reset before accept: keep serving.
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        match args.mode {
            Mode::Ok => tokio::spawn(answer(stream)),
            Mode::Blackhole => tokio::spawn(swallow(stream)),
        };
    }
}

/// Serves one keep-alive connection.
async fn answer(stream: TcpStream) {
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service_fn(respond))
        .await;
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

async fn respond(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let is_post = request.method() == Method::POST;
    // Read the whole body so the connection can carry the next request.
    let _ = request.into_body().collect().await;
    if !is_post {
        let mut response = Response::new(Full::new(Bytes::from_static(b"POST only\n")));
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        return Ok(response);
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let body = format!(
        r#"{{"code":"WA202","message":"Request Accepted","data":{{"message_id":"A{id:016}"}},"error":{{}}}}"#
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::ACCEPTED;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// Reads and discards until the peer closes; never writes a byte.
async fn swallow(mut stream: TcpStream) {
    let mut buffer = vec![0u8; 16 * 1024];
    while let Ok(n) = stream.read(&mut buffer).await {
        if n == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_listen_mode_and_threads() {
        let parsed = args(&[
            "--listen",
            "127.0.0.1:9000",
            "--mode",
            "blackhole",
            "--threads",
            "3",
        ])
        .unwrap();
        assert_eq!(parsed.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(parsed.mode, Mode::Blackhole);
        assert_eq!(parsed.threads, 3);
    }

    #[test]
    fn refuses_bad_arguments() {
        assert!(args(&[]).is_err());
        assert!(args(&["--listen", "nowhere"]).is_err());
        assert!(args(&["--listen", "127.0.0.1:1", "--mode", "slow"]).is_err());
        assert!(args(&["--listen", "127.0.0.1:1", "--threads", "0"]).is_err());
        assert!(args(&["--listen"]).is_err());
    }
}
