//! What every handler shares: the running configuration (swappable as a whole), the store,
//! the provider executor, circuits and metrics.

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::queue::{QueueRuntime, SyncPacing};
use crate::recording::{LateRecords, SendsInFlight, StoreHealth};
use crate::send::circuit::Circuits;
use crate::send::executor::Executor;
use crate::send::Sending;
use arc_swap::ArcSwap;
use std::sync::Arc;
use switchboard_store::Store;
use tokio::sync::Notify;

pub struct AppState {
    settings: ArcSwap<Settings>,
    pub store: Arc<dyn Store>,
    pub executor: Executor,
    pub circuits: Circuits,
    pub metrics: Metrics,
    /// Wakes the delivery worker when events are put in the outbox.
    pub outbox_ready: Arc<Notify>,
    pub queue: Arc<QueueRuntime>,
    /// Synchronous sends, counted against their sender's pacing.
    pub sync_pacing: Arc<SyncPacing>,
    /// Whether synchronous sends are recorded after their send, or first (`recording.rs`).
    pub store_health: StoreHealth,
    /// Synchronous sends not on record yet, which a status webhook may wait for.
    pub sends_in_flight: SendsInFlight,
    /// Sent messages whose record the store could not take, written again later.
    pub late_records: Arc<LateRecords>,
}

impl AppState {
    pub fn new(settings: Settings, store: Arc<dyn Store>) -> Self {
        let mut metrics = Metrics::new();
        metrics.register_store(store.clone());
        let late_records = Arc::new(LateRecords::default());
        metrics.register_late_records(late_records.clone());
        AppState {
            queue: Arc::new(QueueRuntime::new(settings.queue.workers)),
            sync_pacing: Arc::new(SyncPacing::default()),
            store_health: StoreHealth::default(),
            sends_in_flight: SendsInFlight::default(),
            late_records,
            settings: ArcSwap::from_pointee(settings),
            store,
            executor: Executor::new(),
            circuits: Circuits::default(),
            metrics,
            outbox_ready: Arc::new(Notify::new()),
        }
    }

    /// What the send path needs of the state.
    pub fn sending(&self) -> Sending<'_> {
        Sending {
            executor: &self.executor,
            circuits: &self.circuits,
            metrics: &self.metrics,
        }
    }

    /// A snapshot: a request keeps the configuration it started with, even across a reload.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Replaces the configuration. The store stays the one opened at startup: a changed
    /// `store.url` takes effect on restart only.
    pub fn replace_settings(&self, settings: Settings) {
        let running = self.settings.load();
        if settings.store_url != running.store_url {
            tracing::warn!("store.url changed: it takes effect on the next restart");
        }
        self.settings.store(Arc::new(settings));
    }
}
