//! When and how long a queued message may be handed over (docs/api.md, "Asynchronous
//! sending"): `send_at`, `validity_secs` and `priority`, checked against the time the caller
//! gives (the core reads no clock).

use crate::error::ValidationError;
use crate::message::{Envelope, Priority};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// How far ahead `send_at` may be.
pub const SEND_AT_MAX_AHEAD_SECS: i64 = 35 * 24 * 60 * 60;
/// The longest `validity_secs` (30 days).
pub const VALIDITY_SECS_MAX: u64 = 2_592_000;

/// A message's place in the queue, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Unix milliseconds; a time in the past is moved to `now`.
    pub send_at_ms: Option<i64>,
    /// Unix milliseconds after which the message is no longer worth sending.
    pub expires_at_ms: Option<i64>,
    pub priority: Priority,
}

/// Checks `send_at` (RFC 3339, at most [`SEND_AT_MAX_AHEAD_SECS`] after `now_ms`) and
/// `validity_secs` (1 to [`VALIDITY_SECS_MAX`]), naming the field at fault.
pub fn schedule(envelope: &Envelope, now_ms: i64) -> Result<Schedule, ValidationError> {
    let send_at_ms = match &envelope.send_at {
        None => None,
        Some(text) => {
            let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
                ValidationError::new(
                    "send_at",
                    "must be an RFC 3339 time with its offset, e.g. 2026-12-24T09:00:00Z",
                )
            })?;
            let at_ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
            if at_ms > now_ms + SEND_AT_MAX_AHEAD_SECS * 1000 {
                return Err(ValidationError::new(
                    "send_at",
                    "must be at most 35 days ahead",
                ));
            }
            Some(at_ms.max(now_ms))
        }
    };
    let expires_at_ms = match envelope.validity_secs {
        None => None,
        Some(secs) if (1..=VALIDITY_SECS_MAX).contains(&secs) => {
            Some(now_ms + (secs as i64) * 1000)
        }
        Some(_) => {
            return Err(ValidationError::new(
                "validity_secs",
                "must be 1 to 2592000 seconds (30 days)",
            ))
        }
    };
    Ok(Schedule {
        send_at_ms,
        expires_at_ms,
        priority: envelope.priority.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_message;

    const NOW: i64 = 1_795_255_200_000; // 2026-11-21T10:00:00Z

    fn envelope(extra: &str) -> Envelope {
        let body =
            format!(r#"{{"to":"+14085551234","type":"text","text":{{"body":"hi"}}{extra}}}"#);
        parse_message(body.as_bytes()).unwrap().envelope
    }

    fn field_of(extra: &str) -> String {
        schedule(&envelope(extra), NOW).unwrap_err().field
    }

    #[test]
    fn no_fields_is_now_normal_and_forever() {
        let s = schedule(&envelope(""), NOW).unwrap();
        assert_eq!(
            s,
            Schedule {
                send_at_ms: None,
                expires_at_ms: None,
                priority: Priority::Normal
            }
        );
    }

    #[test]
    fn send_at_is_read_with_its_offset_and_the_past_means_now() {
        let s = schedule(&envelope(r#","send_at":"2026-11-21T12:00:00+02:00""#), NOW).unwrap();
        assert_eq!(s.send_at_ms, Some(NOW));
        let s = schedule(&envelope(r#","send_at":"2026-11-21T10:00:01.5Z""#), NOW).unwrap();
        assert_eq!(s.send_at_ms, Some(NOW + 1500));
        let s = schedule(&envelope(r#","send_at":"2001-01-01T00:00:00Z""#), NOW).unwrap();
        assert_eq!(s.send_at_ms, Some(NOW));
    }

    #[test]
    fn send_at_may_be_35_days_ahead_and_no_more() {
        let s = schedule(&envelope(r#","send_at":"2026-12-26T10:00:00Z""#), NOW).unwrap();
        assert_eq!(s.send_at_ms, Some(NOW + SEND_AT_MAX_AHEAD_SECS * 1000));
        assert_eq!(
            field_of(r#","send_at":"2026-12-26T10:00:00.001Z""#),
            "send_at"
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        assert_eq!(field_of(r#","send_at":"tomorrow""#), "send_at");
        assert_eq!(field_of(r#","send_at":"2026-11-21 10:00:00""#), "send_at");
        assert_eq!(field_of(r#","validity_secs":0"#), "validity_secs");
        assert_eq!(field_of(r#","validity_secs":2592001"#), "validity_secs");
    }

    #[test]
    fn wrong_types_are_refused_by_the_parser_naming_the_field() {
        for (extra, field) in [
            (r#","send_at":1795255200"#, "send_at"),
            (r#","validity_secs":"60""#, "validity_secs"),
            (r#","validity_secs":-1"#, "validity_secs"),
            (r#","priority":"urgent""#, "priority"),
        ] {
            let body =
                format!(r#"{{"to":"+14085551234","type":"text","text":{{"body":"hi"}}{extra}}}"#);
            let error = parse_message(body.as_bytes()).unwrap_err();
            assert_eq!(error.field, field, "{extra}");
        }
    }

    #[test]
    fn validity_and_priority() {
        let s = schedule(&envelope(r#","validity_secs":300,"priority":"bulk""#), NOW).unwrap();
        assert_eq!(s.expires_at_ms, Some(NOW + 300_000));
        assert_eq!(s.priority, Priority::Bulk);
        let s = schedule(&envelope(r#","validity_secs":2592000"#), NOW).unwrap();
        assert_eq!(s.expires_at_ms, Some(NOW + 2_592_000_000));
    }
}
