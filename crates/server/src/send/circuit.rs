//! One circuit per endpoint (docs/failover.md): `failure_threshold` consecutive
//! `provider_unavailable` / `provider_timeout` outcomes open it; while open the endpoint is
//! skipped without a network call; after `open_secs` exactly one request probes it
//! (half-open): success closes it, failure re-opens it.
//!
//! Any other outcome — an acceptance, or an answer such as `invalid_request` — proves the
//! endpoint reachable and counts as a success for the circuit.

use super::AttemptError;
use foldhash::HashMap;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_core::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub const ALL: [CircuitState; 3] = [
        CircuitState::Closed,
        CircuitState::Open,
        CircuitState::HalfOpen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// The outcomes that count towards opening a circuit.
fn opens_circuit(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::ProviderUnavailable | ErrorCode::ProviderTimeout
    )
}

/// Counts of attempts by outcome, as `GET /v1/providers` shows them.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct AttemptCounts {
    pub accepted: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// What `GET /v1/providers` shows for one endpoint.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CircuitSnapshot {
    pub circuit: CircuitState,
    pub consecutive_failures: u32,
    pub last_error: Option<AttemptError>,
    pub attempts: AttemptCounts,
}

#[derive(Debug)]
struct Circuit {
    state: CircuitState,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    /// Set while the one half-open probe is out, so no second request slips through.
    probing: bool,
    last_error: Option<AttemptError>,
    attempts: AttemptCounts,
}

impl Default for Circuit {
    fn default() -> Self {
        Circuit {
            state: CircuitState::Closed,
            consecutive_failures: 0,
            opened_at: None,
            probing: false,
            last_error: None,
            attempts: AttemptCounts::default(),
        }
    }
}

/// The thresholds, from `[resilience]` (read per request so a reload applies at once).
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub failure_threshold: u32,
    pub open_for: Duration,
}

/// Whether an endpoint may be called now.
#[derive(Debug)]
pub enum Admission {
    /// Call it, then [`Permit::record`] the outcome.
    Call(Permit),
    /// Its circuit is open (or its half-open probe is already out): skip it.
    Skip,
}

/// The circuits of every endpoint, keyed by endpoint id. Endpoints added by a reload start
/// closed; an endpoint that keeps its id keeps its circuit.
#[derive(Debug, Clone, Default)]
pub struct Circuits {
    inner: Arc<Mutex<HashMap<String, Circuit>>>,
}

impl Circuits {
    /// Asks to call `endpoint`. Skips are counted here.
    pub fn admit(&self, endpoint: &str, thresholds: Thresholds) -> Admission {
        self.admit_at(endpoint, thresholds, Instant::now())
    }

    fn admit_at(&self, endpoint: &str, thresholds: Thresholds, now: Instant) -> Admission {
        let mut circuits = self.lock();
        let circuit = circuit_of(&mut circuits, endpoint);
        let probe = match circuit.state {
            CircuitState::Closed => false,
            CircuitState::Open => {
                let elapsed = circuit.opened_at.map_or(Duration::MAX, |at| now - at);
                if elapsed < thresholds.open_for {
                    circuit.attempts.skipped += 1;
                    return Admission::Skip;
                }
                circuit.state = CircuitState::HalfOpen;
                true
            }
            CircuitState::HalfOpen if circuit.probing => {
                circuit.attempts.skipped += 1;
                return Admission::Skip;
            }
            CircuitState::HalfOpen => true,
        };
        circuit.probing = probe;
        Admission::Call(Permit {
            circuits: self.clone(),
            endpoint: endpoint.to_string(),
            thresholds,
            probe,
            recorded: false,
        })
    }

    /// One endpoint's circuit (closed and empty if it was never called).
    pub fn snapshot(&self, endpoint: &str) -> CircuitSnapshot {
        let circuits = self.lock();
        match circuits.get(endpoint) {
            Some(c) => CircuitSnapshot {
                circuit: c.state,
                consecutive_failures: c.consecutive_failures,
                last_error: c.last_error.clone(),
                attempts: c.attempts.clone(),
            },
            None => CircuitSnapshot {
                circuit: CircuitState::Closed,
                consecutive_failures: 0,
                last_error: None,
                attempts: AttemptCounts::default(),
            },
        }
    }

    fn record(
        &self,
        endpoint: &str,
        thresholds: Thresholds,
        probe: bool,
        error: Option<&AttemptError>,
        now: Instant,
    ) {
        let mut circuits = self.lock();
        let circuit = circuit_of(&mut circuits, endpoint);
        if probe {
            circuit.probing = false;
        }
        match error {
            None => circuit.attempts.accepted += 1,
            Some(error) => {
                circuit.attempts.failed += 1;
                circuit.last_error = Some(error.clone());
            }
        }
        match error.map(|e| e.code) {
            Some(code) if opens_circuit(code) => {
                circuit.consecutive_failures = circuit.consecutive_failures.saturating_add(1);
                let reopen = circuit.state == CircuitState::HalfOpen;
                if reopen || circuit.consecutive_failures >= thresholds.failure_threshold {
                    if circuit.state != CircuitState::Open {
                        tracing::warn!(
                            endpoint,
                            consecutive_failures = circuit.consecutive_failures,
                            "circuit opened"
                        );
                    }
                    circuit.state = CircuitState::Open;
                    circuit.opened_at = Some(now);
                }
            }
            _ => {
                if circuit.state != CircuitState::Closed {
                    tracing::info!(endpoint, "circuit closed");
                }
                circuit.state = CircuitState::Closed;
                circuit.consecutive_failures = 0;
                circuit.opened_at = None;
            }
        }
    }

    /// A permit dropped without an outcome (the request was abandoned mid-call): a probe's
    /// slot is freed so the next request may probe.
    fn abandon(&self, endpoint: &str) {
        if let Some(circuit) = self.lock().get_mut(endpoint) {
            circuit.probing = false;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Circuit>> {
        // A panic while holding this lock cannot leave a circuit half-updated in a way that
        // matters more than losing all circuits, so keep serving with the data as it is.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `endpoint`'s circuit, a new closed one the first time. A lookup by `&str` first: the id is
/// copied into the map only when the endpoint is new, not at every call.
fn circuit_of<'a>(circuits: &'a mut HashMap<String, Circuit>, endpoint: &str) -> &'a mut Circuit {
    if !circuits.contains_key(endpoint) {
        circuits.insert(endpoint.to_owned(), Circuit::default());
    }
    circuits.get_mut(endpoint).expect("inserted above")
}

/// Leave to call one endpoint once.
#[derive(Debug)]
pub struct Permit {
    circuits: Circuits,
    endpoint: String,
    thresholds: Thresholds,
    probe: bool,
    recorded: bool,
}

impl Permit {
    /// Records the attempt's outcome: `None` for accepted, else its error.
    pub fn record(self, error: Option<&AttemptError>) {
        self.record_at(error, Instant::now());
    }

    fn record_at(mut self, error: Option<&AttemptError>, now: Instant) {
        self.recorded = true;
        self.circuits
            .record(&self.endpoint, self.thresholds, self.probe, error, now);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.recorded && self.probe {
            self.circuits.abandon(&self.endpoint);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::ProviderWords;

    const THRESHOLDS: Thresholds = Thresholds {
        failure_threshold: 2,
        open_for: Duration::from_secs(30),
    };

    fn error(code: ErrorCode) -> AttemptError {
        AttemptError {
            code,
            message: None,
            words: ProviderWords::default(),
        }
    }

    fn call(circuits: &Circuits, now: Instant) -> Permit {
        match circuits.admit_at("pod/a", THRESHOLDS, now) {
            Admission::Call(permit) => permit,
            Admission::Skip => panic!("expected a call, got a skip"),
        }
    }

    fn fail(circuits: &Circuits, code: ErrorCode, now: Instant) {
        call(circuits, now).record_at(Some(&error(code)), now);
    }

    fn state(circuits: &Circuits) -> CircuitState {
        circuits.snapshot("pod/a").circuit
    }

    #[test]
    fn opens_after_threshold_consecutive_unavailable_or_timeout() {
        let circuits = Circuits::default();
        let now = Instant::now();
        fail(&circuits, ErrorCode::ProviderUnavailable, now);
        assert_eq!(state(&circuits), CircuitState::Closed);
        fail(&circuits, ErrorCode::ProviderTimeout, now);
        assert_eq!(state(&circuits), CircuitState::Open);
        assert!(matches!(
            circuits.admit_at("pod/a", THRESHOLDS, now + Duration::from_secs(29)),
            Admission::Skip
        ));
        let snapshot = circuits.snapshot("pod/a");
        assert_eq!(snapshot.consecutive_failures, 2);
        assert_eq!(snapshot.attempts.failed, 2);
        assert_eq!(snapshot.attempts.skipped, 1);
        assert_eq!(
            snapshot.last_error.map(|e| e.code),
            Some(ErrorCode::ProviderTimeout)
        );
    }

    #[test]
    fn other_failures_break_the_run() {
        let circuits = Circuits::default();
        let now = Instant::now();
        fail(&circuits, ErrorCode::ProviderUnavailable, now);
        fail(&circuits, ErrorCode::InvalidRequest, now);
        fail(&circuits, ErrorCode::ProviderUnavailable, now);
        assert_eq!(state(&circuits), CircuitState::Closed);
        assert_eq!(circuits.snapshot("pod/a").consecutive_failures, 1);
    }

    #[test]
    fn one_probe_after_open_secs_success_closes() {
        let circuits = Circuits::default();
        let start = Instant::now();
        fail(&circuits, ErrorCode::ProviderUnavailable, start);
        fail(&circuits, ErrorCode::ProviderUnavailable, start);
        let later = start + THRESHOLDS.open_for;
        let probe = call(&circuits, later);
        assert_eq!(state(&circuits), CircuitState::HalfOpen);
        // While the probe is out, everyone else is skipped.
        assert!(matches!(
            circuits.admit_at("pod/a", THRESHOLDS, later),
            Admission::Skip
        ));
        probe.record(None);
        assert_eq!(state(&circuits), CircuitState::Closed);
        assert_eq!(circuits.snapshot("pod/a").consecutive_failures, 0);
        call(&circuits, later).record(None);
    }

    #[test]
    fn failed_probe_reopens_for_another_open_secs() {
        let circuits = Circuits::default();
        let start = Instant::now();
        fail(&circuits, ErrorCode::ProviderUnavailable, start);
        fail(&circuits, ErrorCode::ProviderUnavailable, start);
        let later = start + THRESHOLDS.open_for;
        fail(&circuits, ErrorCode::ProviderTimeout, later);
        assert_eq!(state(&circuits), CircuitState::Open);
        assert!(matches!(
            circuits.admit_at("pod/a", THRESHOLDS, later + Duration::from_secs(29)),
            Admission::Skip
        ));
        call(&circuits, later + THRESHOLDS.open_for);
    }

    #[test]
    fn an_abandoned_probe_frees_the_slot() {
        let circuits = Circuits::default();
        let start = Instant::now();
        fail(&circuits, ErrorCode::ProviderUnavailable, start);
        fail(&circuits, ErrorCode::ProviderUnavailable, start);
        let later = start + THRESHOLDS.open_for;
        drop(call(&circuits, later));
        call(&circuits, later);
    }
}
