//! Logs to stderr; `RUST_LOG` sets the filter (default `info`). Nothing logged carries a
//! secret: secrets are `SecretString`s or masked `HeaderValue`s and never formatted.
//!
//! Lines are written by a background thread, so a request never waits on stderr; none is
//! dropped (a full buffer makes loggers wait), and the returned guard flushes what is left
//! when it is dropped at exit. That thread writes the lines waiting at a time together and
//! flushes as soon as no more are waiting: under load one `write` carries many lines, instead
//! of one system call per line (bench/RESULTS.md).
//!
//! Lines are plain text, without colours even on a terminal: tracing-subscriber's colour
//! support styles every field name, with a blank style when colours are off, which was a
//! quarter of the request line's instructions (bench/RESULTS.md). The time on each line is
//! written as before, formatted once a second ([`timestamp`]).

mod timestamp;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Bytes of lines gathered before a write; a longer line is written on its own.
const LOG_BUFFER_BYTES: usize = 64 * 1024;

#[must_use = "dropping the guard stops the log writer"]
pub fn init() -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = std::io::BufWriter::with_capacity(LOG_BUFFER_BYTES, std::io::stderr());
    let (writer, guard) = NonBlockingBuilder::default().lossy(false).finish(stderr);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_timer(timestamp::UtcMicros)
        .try_init();
    guard
}
