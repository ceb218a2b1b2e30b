//! `X-Hub-Signature-256`: known answers computed outside this code, and every way a proof fails.

use switchboard_meta::webhook::{signature_header, verify_signature};

const SECRET: &[u8] = b"meta-app-secret";
const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;
/// HMAC-SHA256(SECRET, BODY), computed with `openssl dgst -sha256 -hmac` and Python's `hmac`.
const BODY_HEX: &str = "ee9f05f989bc0aa2693d85691a477f8b8403933cde7959a1c5c6be7ea85e8d3d";

#[test]
fn known_answers_verify() {
    assert!(verify_signature(
        SECRET,
        BODY,
        Some(&format!("sha256={BODY_HEX}"))
    ));
    // RFC 4231, test case 2.
    assert!(verify_signature(
        b"Jefe",
        b"what do ya want for nothing?",
        Some("sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    ));
}

#[test]
fn hex_of_either_case_is_accepted() {
    let upper = format!("sha256={}", BODY_HEX.to_uppercase());
    assert!(verify_signature(SECRET, BODY, Some(&upper)));
}

#[test]
fn signature_header_writes_what_meta_sends() {
    assert_eq!(
        signature_header(SECRET, BODY),
        Some(format!("sha256={BODY_HEX}"))
    );
    assert_eq!(signature_header(b"", BODY), None);
}

#[test]
fn wrong_secret_or_altered_body_is_refused() {
    let header = format!("sha256={BODY_HEX}");
    assert!(!verify_signature(b"another-secret", BODY, Some(&header)));
    let mut altered = BODY.to_vec();
    altered.push(b' ');
    assert!(!verify_signature(SECRET, &altered, Some(&header)));
    // Same JSON, other bytes: the signature covers bytes, not meaning.
    let reformatted = br#"{"object": "whatsapp_business_account", "entry": []}"#;
    assert!(!verify_signature(SECRET, reformatted, Some(&header)));
}

#[test]
fn missing_or_garbled_headers_are_refused() {
    let truncated = &BODY_HEX[..BODY_HEX.len() - 2];
    for header in [
        None,
        Some(String::new()),
        Some(BODY_HEX.to_string()),
        Some(format!("sha1={BODY_HEX}")),
        Some(format!("SHA256={BODY_HEX}")),
        Some(format!("sha256:{BODY_HEX}")),
        Some(format!("sha256={truncated}")),
        Some(format!("sha256={BODY_HEX}00")),
        Some(format!("sha256={}zz", truncated)),
        Some("sha256=".to_string()),
    ] {
        assert!(
            !verify_signature(SECRET, BODY, header.as_deref()),
            "{header:?}"
        );
    }
}

#[test]
fn an_empty_secret_proves_nothing() {
    let header = signature_header(b"x", BODY).unwrap();
    assert!(!verify_signature(b"", BODY, Some(&header)));
    // Even a correct HMAC under the empty key.
    assert!(!verify_signature(
        b"",
        b"",
        Some("sha256=b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"),
    ));
}
