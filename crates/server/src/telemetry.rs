//! Logs to stderr; `RUST_LOG` sets the filter (default `info`). Nothing logged carries a
//! secret: secrets are `SecretString`s or masked `HeaderValue`s and never formatted.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
