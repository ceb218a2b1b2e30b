//! The `switchboard` gateway: configuration, REST API, routing with failover, and the one
//! executor that talks HTTP to providers. Provider wire formats live in the adapter crates.

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod metrics;
pub mod providers;
pub mod queue;
pub mod recording;
pub mod sandbox;
pub mod send;
pub mod state;
pub mod telemetry;
pub mod webhooks;
