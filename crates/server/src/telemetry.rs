//! Logs to stderr; `RUST_LOG` sets the filter (default `info`). Nothing logged carries a
//! secret: secrets are `SecretString`s or masked `HeaderValue`s and never formatted.
//!
//! Lines are written by a thread of their own, so a request never waits on stderr ([`batched`]):
//! it writes the lines gathered over up to 50 ms together, a warning or an error at once. None
//! is dropped (loggers wait when too much is waiting), and the returned guard writes what is
//! left when it is dropped at exit.
//!
//! Lines are plain text, without colours even on a terminal: tracing-subscriber's colour
//! support styles every field name, with a blank style when colours are off, which was a
//! quarter of the request line's instructions (bench/RESULTS.md). The time on each line is
//! written as before, formatted once a second ([`timestamp`]).

mod batched;
mod timestamp;

pub use batched::FlushGuard;
use tracing_subscriber::EnvFilter;

/// Sets up the log; keep the guard until exit. Without a thread for the log (the system refused
/// one), lines are written by the loggers themselves.
#[must_use = "dropping the guard stops the log writer"]
pub fn init() -> Option<FlushGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(timestamp::UtcMicros);
    match batched::start(std::io::stderr(), batched::GATHER_FOR) {
        Ok((writer, guard)) => {
            let _ = logs.with_writer(writer).try_init();
            Some(guard)
        }
        Err(error) => {
            let _ = logs.with_writer(std::io::stderr).try_init();
            tracing::warn!(%error, "no thread for the log: lines are written as they are logged");
            None
        }
    }
}
