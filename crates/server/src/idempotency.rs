//! `Idempotency-Key` (CONTRACT 3.1): the first request's final response is kept for 24 h per
//! client and key; a repeat with the same body gets it again, a repeat with another body is
//! refused, and a repeat while the first is in flight gets 409.
//!
//! This keeps the responses in the process's memory: it holds for one gateway process. Across
//! replicas it needs the shared store.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const KEY_MAX_LEN: usize = 255;
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// Expired entries are swept after this many new keys.
const SWEEP_EVERY: usize = 1024;

/// A final response, as it is replayed.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub retry_after_secs: Option<u64>,
}

#[derive(Debug)]
enum Entry {
    InFlight {
        request: Value,
    },
    Done {
        request: Value,
        response: StoredResponse,
        at: Instant,
    },
}

/// What to do with a request that carries a key.
#[derive(Debug)]
pub enum Claim {
    /// First use: send, then [`Reservation::complete`].
    Fresh(Reservation),
    Replay(StoredResponse),
    InFlight,
    BodyMismatch,
}

type Key = (String, String);

#[derive(Debug, Default, Clone)]
pub struct IdempotencyCache {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    inserts_since_sweep: usize,
}

impl IdempotencyCache {
    /// Claims `key` for `client`. Bodies are compared as JSON values, so formatting does not
    /// matter.
    pub fn claim(&self, client: &str, key: &str, request: Value) -> Claim {
        let mut inner = self.inner.lock().expect("idempotency lock poisoned");
        let id = (client.to_string(), key.to_string());
        match inner.entries.get(&id) {
            Some(Entry::Done { at, .. }) if at.elapsed() >= RETENTION => {}
            Some(Entry::Done {
                request: first,
                response,
                ..
            }) => {
                return if *first == request {
                    Claim::Replay(response.clone())
                } else {
                    Claim::BodyMismatch
                };
            }
            Some(Entry::InFlight { request: first }) => {
                return if *first == request {
                    Claim::InFlight
                } else {
                    Claim::BodyMismatch
                };
            }
            None => {}
        }
        inner.sweep_if_due();
        inner
            .entries
            .insert(id.clone(), Entry::InFlight { request });
        Claim::Fresh(Reservation {
            cache: self.clone(),
            key: Some(id),
        })
    }
}

impl Inner {
    fn sweep_if_due(&mut self) {
        self.inserts_since_sweep += 1;
        if self.inserts_since_sweep >= SWEEP_EVERY {
            self.inserts_since_sweep = 0;
            self.entries.retain(
                |_, entry| !matches!(entry, Entry::Done { at, .. } if at.elapsed() >= RETENTION),
            );
        }
    }
}

/// A key in flight. Completing it keeps the response; dropping it uncompleted (the request
/// was abandoned) frees the key.
#[derive(Debug)]
pub struct Reservation {
    cache: IdempotencyCache,
    key: Option<Key>,
}

impl Reservation {
    pub fn complete(mut self, response: StoredResponse) {
        let Some(key) = self.key.take() else { return };
        let mut inner = self.cache.inner.lock().expect("idempotency lock poisoned");
        if let Some(Entry::InFlight { request }) = inner.entries.remove(&key) {
            inner.entries.insert(
                key,
                Entry::Done {
                    request,
                    response,
                    at: Instant::now(),
                },
            );
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            if let Ok(mut inner) = self.cache.inner.lock() {
                inner.entries.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(status: u16) -> StoredResponse {
        StoredResponse {
            status,
            body: b"{}".to_vec(),
            retry_after_secs: None,
        }
    }

    #[test]
    fn replay_mismatch_and_in_flight() {
        let cache = IdempotencyCache::default();
        let Claim::Fresh(reservation) = cache.claim("orders", "k1", json!({"a": 1})) else {
            panic!()
        };
        assert!(matches!(
            cache.claim("orders", "k1", json!({"a": 1})),
            Claim::InFlight
        ));
        assert!(matches!(
            cache.claim("orders", "k1", json!({"a": 2})),
            Claim::BodyMismatch
        ));
        assert!(
            matches!(
                cache.claim("support", "k1", json!({"a": 1})),
                Claim::Fresh(_)
            ),
            "scoped per client"
        );
        reservation.complete(response(202));
        match cache.claim("orders", "k1", json!({"a": 1})) {
            Claim::Replay(stored) => assert_eq!(stored, response(202)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            cache.claim("orders", "k1", json!({"a": 2})),
            Claim::BodyMismatch
        ));
    }

    #[test]
    fn an_abandoned_request_frees_its_key() {
        let cache = IdempotencyCache::default();
        let Claim::Fresh(reservation) = cache.claim("orders", "k", json!(1)) else {
            panic!()
        };
        drop(reservation);
        assert!(matches!(
            cache.claim("orders", "k", json!(1)),
            Claim::Fresh(_)
        ));
    }
}
