//! `Idempotency-Key` (docs/api.md): the first request's final response is kept for 24 h per
//! client and key, in the store — so it holds across restarts and across replicas sharing
//! one PostgreSQL. A repeat with the same body gets it again, a repeat with another body is
//! refused, a repeat while the first is in flight gets 409.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

pub const KEY_MAX_LEN: usize = 255;
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// What makes two bodies "the same": equal JSON values, whatever their formatting or key
/// order; bodies that are not JSON compare by their bytes.
pub fn fingerprint(body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => {
            hasher.update(b"json:");
            canonical(&value, &mut hasher);
        }
        Err(_) => {
            hasher.update(b"bytes:");
            hasher.update(body);
        }
    }
    hex::encode(hasher.finalize())
}

/// Feeds `value` with object keys sorted, so key order never matters. Strings and numbers are
/// fed as JSON writes them, straight into the hasher.
fn canonical(value: &Value, hasher: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            hasher.update(b"{");
            for key in keys {
                feed_json(key, hasher);
                hasher.update(b":");
                canonical(&map[key], hasher);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                canonical(item, hasher);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        scalar => feed_json(scalar, hasher),
    }
}

fn feed_json<T: serde::Serialize + ?Sized>(value: &T, hasher: &mut Sha256) {
    // Writing into a hasher cannot fail, nor can serializing a string or a JSON value.
    let _ = serde_json::to_writer(HashWriter(hasher), value);
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_and_key_order_do_not_matter() {
        let a = fingerprint(br#"{"to":"+1","text":{"body":"x","preview_url":false}}"#);
        let b = fingerprint(
            b"{ \"text\": {\"preview_url\": false, \"body\": \"x\"},\n \"to\": \"+1\" }",
        );
        assert_eq!(a, b);
    }

    #[test]
    fn values_do() {
        let a = fingerprint(br#"{"to":"+1","text":{"body":"x"}}"#);
        assert_ne!(a, fingerprint(br#"{"to":"+1","text":{"body":"y"}}"#));
        assert_ne!(a, fingerprint(br#"{"to":"+1","text":{"body":["x"]}}"#));
        assert_ne!(fingerprint(b"[1,2]"), fingerprint(b"[2,1]"));
        assert_ne!(fingerprint(b"\"1\""), fingerprint(b"1"));
    }

    /// Fingerprints are stored with their keys: a change would make every retry of a request
    /// kept before an upgrade a 422.
    #[test]
    fn fingerprints_stay_what_they_were() {
        assert_eq!(
            fingerprint(br#"{"to":"+1","n":[1,2.5,true,null],"t":{"b":"x\"\u00fc"}}"#),
            "85c5d032b63f5c9f57e1ca81d185c1d082a51859a9316daca97ec58547a328fa"
        );
    }

    #[test]
    fn non_json_compares_by_bytes() {
        assert_eq!(fingerprint(b"not json"), fingerprint(b"not json"));
        assert_ne!(fingerprint(b"not json"), fingerprint(b"not json "));
    }
}
