//! `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`: the proof that a
//! webhook comes from Meta. It covers the exact bytes received, never re-serialized JSON.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const PREFIX: &str = "sha256=";

/// Whether `header` (the `X-Hub-Signature-256` value) proves `raw_body` was signed with
/// `app_secret`. Hex of either case is accepted; a missing or garbled header, or an empty
/// secret (which anyone could sign with), is refused. The comparison takes constant time.
pub fn verify_signature(app_secret: &[u8], raw_body: &[u8], header: Option<&str>) -> bool {
    let Some(signature) = header.and_then(|value| value.trim().strip_prefix(PREFIX)) else {
        return false;
    };
    let Ok(signature) = hex::decode(signature) else {
        return false;
    };
    match keyed_mac(app_secret) {
        Some(mut mac) => {
            mac.update(raw_body);
            mac.verify_slice(&signature).is_ok()
        }
        None => false,
    }
}

/// The header value Meta would send for `raw_body` (lowercase hex), e.g. for a simulator.
/// `None` for an empty secret, which [`verify_signature`] never accepts.
pub fn signature_header(app_secret: &[u8], raw_body: &[u8]) -> Option<String> {
    let mut mac = keyed_mac(app_secret)?;
    mac.update(raw_body);
    Some(format!(
        "{PREFIX}{}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

fn keyed_mac(app_secret: &[u8]) -> Option<Hmac<Sha256>> {
    if app_secret.is_empty() {
        return None;
    }
    Hmac::<Sha256>::new_from_slice(app_secret).ok()
}
