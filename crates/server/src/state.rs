//! What every handler shares: the running configuration (swappable as a whole) and the
//! provider executor.

use crate::config::Settings;
use crate::idempotency::IdempotencyCache;
use crate::metrics::Metrics;
use crate::send::circuit::Circuits;
use crate::send::executor::Executor;
use arc_swap::ArcSwap;
use std::sync::Arc;

pub struct AppState {
    settings: ArcSwap<Settings>,
    pub executor: Executor,
    pub idempotency: IdempotencyCache,
    pub circuits: Circuits,
    pub metrics: Metrics,
}

impl AppState {
    pub fn new(settings: Settings) -> Self {
        AppState {
            settings: ArcSwap::from_pointee(settings),
            executor: Executor::new(),
            idempotency: IdempotencyCache::default(),
            circuits: Circuits::default(),
            metrics: Metrics::new(),
        }
    }

    /// A snapshot: a request keeps the configuration it started with, even across a reload.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    pub fn replace_settings(&self, settings: Settings) {
        self.settings.store(Arc::new(settings));
    }
}
