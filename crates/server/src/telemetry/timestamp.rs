//! The time on each log line: RFC 3339 in UTC with microseconds, exactly as
//! tracing-subscriber's default timer writes it (`2026-12-06T22:53:34.614530Z`).
//!
//! The default formats every field of the date and time for every line: 2,100 instructions of
//! the 7,200 a request's line costs (bench/RESULTS.md). The date and time of day change once a
//! second, so each thread formats them once a second and writes only the microseconds per line.

use std::cell::RefCell;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// The log lines' timer (see the module's documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct UtcMicros;

/// A thread's last second: its Unix time and `YYYY-MM-DDTHH:MM:SS`.
struct Second {
    unix: i64,
    text: String,
}

thread_local! {
    static LAST_SECOND: RefCell<Option<Second>> = const { RefCell::new(None) };
}

impl FormatTime for UtcMicros {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let (unix, micros) = unix_now();
        format_at(unix, micros, w)
    }
}

/// Seconds since the Unix epoch and the microseconds into that second. Before the epoch the
/// second is rounded down, so the microseconds count forward, as the default timer does.
fn unix_now() -> (i64, u32) {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => (since.as_secs() as i64, since.subsec_micros()),
        Err(before) => {
            let before = before.duration();
            let (secs, micros) = (before.as_secs() as i64, before.subsec_micros());
            if micros == 0 {
                (-secs, 0)
            } else {
                (-secs - 1, 1_000_000 - micros)
            }
        }
    }
}

fn format_at(unix: i64, micros: u32, w: &mut Writer<'_>) -> fmt::Result {
    LAST_SECOND.with(|cell| {
        let mut last = cell.borrow_mut();
        let second = match &mut *last {
            Some(second) if second.unix == unix => second,
            slot => slot.insert(Second {
                unix,
                text: date_and_time(unix)?,
            }),
        };
        w.write_str(&second.text)
    })?;
    let fraction = fraction(micros);
    w.write_str(std::str::from_utf8(&fraction).map_err(|_| fmt::Error)?)
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time, with the default timer's years: four digits, or a minus
/// sign and four digits before year 0. Years past 9999 are out of the `time` crate's range (and
/// of any clock this runs under): an error, which the line shows as `<unknown time>`.
fn date_and_time(unix: i64) -> Result<String, fmt::Error> {
    let at = time::OffsetDateTime::from_unix_timestamp(unix).map_err(|_| fmt::Error)?;
    let year = at.year();
    let year = if year < 0 {
        format!("{year:05}")
    } else {
        format!("{year:04}")
    };
    Ok(format!(
        "{year}-{:02}-{:02}T{:02}:{:02}:{:02}",
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    ))
}

/// `.uuuuuuZ`: the microseconds, six digits.
fn fraction(micros: u32) -> [u8; 8] {
    let mut text = *b".000000Z";
    let mut rest = micros;
    for digit in text[1..7].iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;

    fn formatted(unix: i64, micros: u32) -> String {
        let mut line = String::new();
        format_at(unix, micros, &mut Writer::new(&mut line)).unwrap();
        line
    }

    #[test]
    fn writes_what_the_default_timer_wrote() {
        // Seconds checked with `date -u -d @SECONDS`.
        assert_eq!(formatted(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(formatted(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(
            formatted(1_796_596_414, 614_530),
            "2026-12-06T22:33:34.614530Z"
        );
        assert_eq!(
            formatted(4_107_542_399, 999_999),
            "2100-02-28T23:59:59.999999Z"
        );
        assert_eq!(
            formatted(4_107_542_400, 120_000),
            "2100-03-01T00:00:00.120000Z"
        );
        assert_eq!(formatted(-1, 500_000), "1969-12-31T23:59:59.500000Z");
    }

    #[test]
    fn a_new_second_is_formatted_again() {
        // Each call reuses or replaces this thread's cached second: going back and forth must
        // never show a stale one.
        for unix in [1_000_000_000, 1_000_000_001, 1_000_000_000, 1_000_086_400] {
            let expected = time::OffsetDateTime::from_unix_timestamp(unix)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            let line = formatted(unix, 42);
            assert_eq!(line, expected.replace('Z', ".000042Z"));
        }
    }

    #[test]
    fn agrees_with_the_default_timer_on_the_current_time() {
        use tracing_subscriber::fmt::time::SystemTime as DefaultTimer;
        // The two clocks are read apart: retry if a second boundary fell between them.
        for _ in 0..10 {
            let (mut ours, mut theirs) = (String::new(), String::new());
            UtcMicros.format_time(&mut Writer::new(&mut ours)).unwrap();
            DefaultTimer
                .format_time(&mut Writer::new(&mut theirs))
                .unwrap();
            assert_eq!(ours.len(), theirs.len(), "{ours} vs {theirs}");
            if ours[..19] == theirs[..19] {
                assert_eq!(ours.as_bytes()[19], b'.');
                assert!(ours.ends_with('Z'));
                return;
            }
        }
        panic!("the seconds never agreed");
    }
}
