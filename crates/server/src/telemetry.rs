//! Logs to stderr; `RUST_LOG` sets the filter (default `info`). Nothing logged carries a
//! secret: secrets are `SecretString`s or masked `HeaderValue`s and never formatted.
//!
//! Lines are written by a background thread, so a request never waits on stderr; none is
//! dropped (a full buffer makes loggers wait), and the returned guard flushes what is left
//! when it is dropped at exit.

use std::io::IsTerminal;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

#[must_use = "dropping the guard stops the log writer"]
pub fn init() -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours for a terminal only, not for files and log collectors.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer)
        .try_init();
    guard
}
