//! The actix-web application and server.

use crate::api;
use crate::config::{self, Settings};
use crate::events::delivery;
use crate::http::request_id;
use crate::queue;
use crate::state::AppState;
use crate::webhooks;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};

/// Whether the server handles SIGTERM/SIGINT itself (the binary) or leaves signals to the
/// embedding process (tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    Handle,
    Ignore,
}

/// Opens the store (creating a SQLite file and its schema on first start) and starts serving
/// on `listener`, with the event delivery worker beside it. Returns the server handle (await
/// it to run to completion) and the shared state.
pub async fn start(
    settings: Settings,
    listener: TcpListener,
    signals: Signals,
) -> std::io::Result<(Server, web::Data<AppState>)> {
    let shutdown_secs = settings.server.shutdown_timeout_secs;
    let store = switchboard_store::open(&settings.store_url)
        .await
        .map_err(|e| std::io::Error::other(format!("store: {e}")))?;
    let state = web::Data::new(AppState::new(settings, store));
    let weak = Arc::downgrade(&state.clone().into_inner());
    actix_web::rt::spawn(delivery::run(weak.clone()));
    actix_web::rt::spawn(queue::worker::run(weak.clone()));
    actix_web::rt::spawn(state.sync_pacing.clone().run(weak));
    actix_web::rt::spawn(state.late_records.clone().run(Arc::downgrade(&state.store)));
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .wrap_fn(request_id::middleware)
            .configure(api::routes)
            .configure(webhooks::routes)
            .default_service(web::to(api::not_found))
    })
    .shutdown_timeout(shutdown_secs)
    // actix-web stops at once on SIGINT; both SIGINT and SIGTERM must be graceful here.
    .disable_signals()
    .listen(listener)?
    .run();
    if signals == Signals::Handle {
        stop_gracefully_on_signals(server.handle())?;
    }
    Ok((server, state))
}

/// On SIGTERM or SIGINT (Ctrl-C): stop accepting connections and let the requests in flight
/// finish, up to `server.shutdown_timeout_secs`.
fn stop_gracefully_on_signals(server: ServerHandle) -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    actix_web::rt::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "stopping: finishing the requests in flight");
        server.stop(true).await;
    });
    Ok(())
}

/// Binds the configured address and serves until SIGTERM/Ctrl-C, letting in-flight requests
/// finish (up to `server.shutdown_timeout_secs`). SIGHUP re-reads `config_path`.
pub async fn serve(settings: Settings, config_path: PathBuf) -> std::io::Result<()> {
    let listen = settings.server.listen;
    let listener = TcpListener::bind(listen).map_err(|e| bind_error(listen, e, "server.listen"))?;
    let listen = listener.local_addr()?;
    let (server, state) = start(settings, listener, Signals::Handle).await?;
    tracing::info!(%listen, "switchboard listening");
    reload_on_sighup(state.clone(), config_path)?;
    server.await?;
    drain_queue(&state).await;
    write_late_records(&state).await;
    // Let the store finish its writes (SQLite folds its log into the file).
    state.store.close().await;
    Ok(())
}

/// Once requests are done: stops taking queued messages and lets the hand-overs in flight end
/// (up to `server.shutdown_timeout_secs`), so none is left for a lease to run out on.
pub async fn drain_queue(state: &AppState) {
    let timeout = std::time::Duration::from_secs(state.settings().server.shutdown_timeout_secs);
    if !state.queue.drain(timeout).await {
        tracing::warn!("hand-overs still in flight at shutdown: they end provider_timeout when their lease runs out");
    }
}

/// A last try for the records the store could not take; what is left is lost with the process.
pub async fn write_late_records(state: &AppState) {
    if state.late_records.waiting() == 0 {
        return;
    }
    state.late_records.write(state.store.as_ref()).await;
    let lost = state.late_records.waiting();
    if lost > 0 {
        tracing::error!(
            lost,
            "sent messages not on record at shutdown: the store did not take them"
        );
    }
}

/// A bind failure that names the address and what sets it (`Address already in use` alone
/// does not say which of the addresses involved is busy).
pub fn bind_error(address: SocketAddr, error: std::io::Error, set_by: &str) -> std::io::Error {
    let hint = if error.kind() == std::io::ErrorKind::AddrInUse {
        format!("; another process listens there: stop it or choose another address with {set_by}")
    } else {
        String::new()
    };
    std::io::Error::new(
        error.kind(),
        format!("cannot listen on {address}: {error}{hint}"),
    )
}

/// On SIGHUP: load and validate the file again; a valid one replaces the running
/// configuration (requests in flight keep the one they started with), an invalid one is
/// logged and the running one stays. The listen address is bound once and not reloaded.
fn reload_on_sighup(state: web::Data<AppState>, path: PathBuf) -> std::io::Result<()> {
    let mut hangups = signal(SignalKind::hangup())?;
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            match config::load(&path) {
                Ok(settings) => {
                    state.replace_settings(settings);
                    tracing::info!(config = %path.display(), "configuration reloaded");
                }
                Err(error) => {
                    tracing::error!(config = %path.display(), %error, "configuration rejected; the running one stays")
                }
            }
        }
    });
    Ok(())
}
