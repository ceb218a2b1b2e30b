//! Group commit: how writes are batched, and what the batches looked like.
//!
//! Each store has one writer. Callers hand it their writes through a channel; it takes whatever
//! has accumulated (at most `batch_max` writes, waiting up to `linger` for more when fewer are
//! there), runs them in one transaction, commits, and only then answers each caller.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::StoreError;

/// Most writes committed in one transaction.
pub const DEFAULT_BATCH_MAX: usize = 256;
/// How long the writer waits for more writes when it has fewer than `batch_max`: none. Writes
/// arriving while a batch commits make up the next one, so batches grow with the load by
/// themselves, and a lone write is not delayed.
pub const DEFAULT_LINGER: Duration = Duration::ZERO;

const BATCH_MAX_LIMIT: usize = 65_536;
const LINGER_LIMIT: Duration = Duration::from_secs(1);

/// The store URL's own query parameters; the rest of the URL goes to the database driver.
pub(crate) const PARAM_BATCH_MAX: &str = "batch_max";
pub(crate) const PARAM_LINGER_US: &str = "linger_us";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchConfig {
    pub(crate) batch_max: usize,
    pub(crate) linger: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            batch_max: DEFAULT_BATCH_MAX,
            linger: DEFAULT_LINGER,
        }
    }
}

impl BatchConfig {
    /// Takes `batch_max` and `linger_us` out of `url`'s query: the settings and the URL without
    /// them. `backend` names the store in errors.
    pub(crate) fn from_url(
        url: &str,
        backend: &'static str,
    ) -> Result<(BatchConfig, String), StoreError> {
        let mut config = BatchConfig::default();
        let Some((base, query)) = url.split_once('?') else {
            return Ok((config, url.to_owned()));
        };
        let invalid = |name: &str, value: &str, range: &str| {
            StoreError::open(
                backend,
                format!("store URL parameter {name}={value}: expected {range}"),
                url,
            )
        };
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                PARAM_BATCH_MAX => {
                    config.batch_max = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=BATCH_MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            invalid(
                                name,
                                value,
                                &format!("a number from 1 to {BATCH_MAX_LIMIT}"),
                            )
                        })?;
                }
                PARAM_LINGER_US => {
                    config.linger = value
                        .parse()
                        .ok()
                        .map(Duration::from_micros)
                        .filter(|d| *d <= LINGER_LIMIT)
                        .ok_or_else(|| {
                            let max = LINGER_LIMIT.as_micros();
                            invalid(name, value, &format!("microseconds from 0 to {max}"))
                        })?;
                }
                _ => rest.push(pair),
            }
        }
        let url = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        Ok((config, url))
    }
}

/// A histogram as Prometheus keeps one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    pub sum: f64,
    pub count: u64,
    /// `(upper bound, observations in this bucket)`, bounds ascending, the last one `f64::MAX`
    /// (`+Inf`). The counts are per bucket, not cumulative, as
    /// `prometheus_client::encoding::MetricEncoder::encode_histogram` takes them.
    pub buckets: Vec<(f64, u64)>,
}

/// What the store's writer has done since the store was opened.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WriteStats {
    /// Transactions the writer committed.
    pub batches: u64,
    /// Writes (calls such as `insert_message` or `record_outcome`) answered from them.
    pub writes: u64,
    /// Batches that failed as a whole (their callers got an error, or on PostgreSQL had their
    /// writes run one by one instead).
    pub failed_batches: u64,
    /// Writes per committed transaction.
    pub batch_size: Histogram,
    /// Seconds from the start of a batch's transaction to the end of its commit.
    pub commit_seconds: Histogram,
}

const BATCH_SIZE_BOUNDS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];
const COMMIT_SECONDS_BOUNDS: [f64; 13] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Lock-free counters behind [`WriteStats`], updated by the writer once per batch.
#[derive(Debug, Default)]
pub(crate) struct StatsRecorder {
    batches: AtomicU64,
    writes: AtomicU64,
    failed_batches: AtomicU64,
    commit_nanos: AtomicU64,
    size_buckets: [AtomicU64; BATCH_SIZE_BOUNDS.len() + 1],
    commit_buckets: [AtomicU64; COMMIT_SECONDS_BOUNDS.len() + 1],
}

impl StatsRecorder {
    pub(crate) fn committed(&self, writes: usize, took: Duration) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes as u64, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.commit_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.size_buckets[bucket(&BATCH_SIZE_BOUNDS, writes as f64)]
            .fetch_add(1, Ordering::Relaxed);
        self.commit_buckets[bucket(&COMMIT_SECONDS_BOUNDS, took.as_secs_f64())]
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self) {
        self.failed_batches.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> WriteStats {
        let batches = self.batches.load(Ordering::Relaxed);
        let writes = self.writes.load(Ordering::Relaxed);
        WriteStats {
            batches,
            writes,
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
            batch_size: histogram(&BATCH_SIZE_BOUNDS, &self.size_buckets, writes as f64),
            commit_seconds: histogram(
                &COMMIT_SECONDS_BOUNDS,
                &self.commit_buckets,
                self.commit_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            ),
        }
    }
}

fn bucket(bounds: &[f64], value: f64) -> usize {
    bounds
        .iter()
        .position(|bound| value <= *bound)
        .unwrap_or(bounds.len())
}

fn histogram(bounds: &[f64], counts: &[AtomicU64], sum: f64) -> Histogram {
    let buckets: Vec<(f64, u64)> = bounds
        .iter()
        .copied()
        .chain([f64::MAX])
        .zip(counts.iter().map(|c| c.load(Ordering::Relaxed)))
        .collect();
    Histogram {
        sum,
        count: buckets.iter().map(|(_, n)| n).sum(),
        buckets,
    }
}

/// What a store's writer receives: a write `W` to commit with whatever else is waiting (its
/// caller gets `D` once committed), or the order to close.
// Nearly every message is a write: boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Message<W, D> {
    Write(Request<W, D>),
    /// Commit what came before, close the writer's connection, then answer.
    Close(tokio::sync::oneshot::Sender<()>),
}

pub(crate) struct Request<W, D> {
    pub(crate) write: W,
    pub(crate) reply: tokio::sync::oneshot::Sender<Result<D, StoreError>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_parameters_are_taken_out_of_the_url() {
        let (config, url) =
            BatchConfig::from_url("sqlite://data/x.db?batch_max=64&linger_us=250", "SQLite")
                .unwrap();
        assert_eq!(config.batch_max, 64);
        assert_eq!(config.linger, Duration::from_micros(250));
        assert_eq!(url, "sqlite://data/x.db");

        let (config, url) = BatchConfig::from_url(
            "postgres://u:p@db/app?sslmode=disable&linger_us=100&application_name=sb",
            "PostgreSQL",
        )
        .unwrap();
        assert_eq!(config.batch_max, DEFAULT_BATCH_MAX);
        assert_eq!(config.linger, Duration::from_micros(100));
        assert_eq!(
            url,
            "postgres://u:p@db/app?sslmode=disable&application_name=sb"
        );

        let (config, url) = BatchConfig::from_url("sqlite::memory:", "SQLite").unwrap();
        assert_eq!(
            (config, url.as_str()),
            (BatchConfig::default(), "sqlite::memory:")
        );
    }

    #[test]
    fn bad_batch_parameters_are_refused_without_the_password() {
        for url in [
            "postgres://u:hunter2@db/app?batch_max=0",
            "postgres://u:hunter2@db/app?batch_max=lots",
            "postgres://u:hunter2@db/app?linger_us=-1",
            "postgres://u:hunter2@db/app?linger_us=5000000",
        ] {
            let err = BatchConfig::from_url(url, "PostgreSQL").unwrap_err();
            let text = err.to_string();
            assert!(text.contains("store URL parameter"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn stats_fill_buckets() {
        let stats = StatsRecorder::default();
        stats.committed(1, Duration::from_micros(40));
        stats.committed(3, Duration::from_millis(2));
        stats.committed(5000, Duration::from_secs(2));
        stats.failed();
        let s = stats.snapshot();
        assert_eq!((s.batches, s.writes, s.failed_batches), (3, 5004, 1));
        assert_eq!(s.batch_size.count, 3);
        assert_eq!(s.batch_size.buckets[0], (1.0, 1));
        assert_eq!(s.batch_size.buckets[2], (4.0, 1));
        assert_eq!(s.batch_size.buckets.last(), Some(&(f64::MAX, 1)));
        assert_eq!(s.commit_seconds.buckets[0], (0.000_05, 1));
        assert_eq!(s.commit_seconds.buckets.last(), Some(&(f64::MAX, 1)));
        assert!((s.commit_seconds.sum - 2.002_04).abs() < 1e-9);
    }
}
