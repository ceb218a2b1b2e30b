//! Wall-clock time as the store keeps it (unix milliseconds) and as the API shows it
//! (RFC 3339, UTC).

use std::time::{SystemTime, UNIX_EPOCH};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// `2026-11-21T10:00:00.123Z`-style; milliseconds only when there are any.
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_optional_millis() {
        assert_eq!(rfc3339(1_795_255_200_000), "2026-11-21T10:00:00Z");
        assert_eq!(rfc3339(1_795_255_200_250), "2026-11-21T10:00:00.25Z");
    }
}
