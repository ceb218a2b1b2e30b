//! RFC 3339 date-times (`2026-11-21T10:00:00Z`, `2026-11-21T10:00:00.5+05:30`) → unix seconds,
//! without a date-time dependency for one field.

/// Unix seconds of an RFC 3339 date-time with a `Z` or `±HH:MM` offset; fractions of a second
/// are dropped. `None` for anything else, impossible dates included.
pub(super) fn unix_seconds(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' {
        return None;
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') || bytes[16] != b':' {
        return None;
    }
    let (year, month, day) = (
        number(bytes, 0, 4)?,
        number(bytes, 5, 7)?,
        number(bytes, 8, 10)?,
    );
    let (hour, minute, second) = (
        number(bytes, 11, 13)?,
        number(bytes, 14, 16)?,
        number(bytes, 17, 19)?,
    );
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 60;
    if !valid {
        return None;
    }
    let offset = offset_seconds(skip_fraction(&bytes[19..]))?;
    let seconds_of_day = hour * 3600 + minute * 60 + second;
    Some(days_from_civil(year, month, day) * 86_400 + seconds_of_day - offset)
}

/// The digits `bytes[start..end]` as a number; `None` if any is not a digit.
fn number(bytes: &[u8], start: usize, end: usize) -> Option<i64> {
    bytes[start..end].iter().try_fold(0i64, |value, byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + i64::from(byte - b'0'))
    })
}

fn skip_fraction(rest: &[u8]) -> &[u8] {
    match rest.split_first() {
        Some((b'.', fraction)) => {
            let digits = fraction
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count();
            if digits == 0 {
                rest
            } else {
                &fraction[digits..]
            }
        }
        _ => rest,
    }
}

/// `Z` → 0, `±HH:MM` → its signed seconds east of UTC.
fn offset_seconds(offset: &[u8]) -> Option<i64> {
    match offset {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (number(offset, 1, 3)?, number(offset, 4, 6)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            Some(if *sign == b'-' { -seconds } else { seconds })
        }
        _ => None,
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::unix_seconds;

    #[test]
    fn reads_utc_and_offsets() {
        // Expected values from `date -u -d … +%s`.
        for (text, seconds) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2026-11-21T10:00:00Z", 1_795_255_200),
            ("2026-11-21t10:00:00z", 1_795_255_200),
            ("2026-11-21 10:00:00Z", 1_795_255_200),
            ("2026-11-21T15:30:00+05:30", 1_795_255_200),
            ("2026-11-21T02:00:00-08:00", 1_795_255_200),
            ("2026-11-21T10:00:00.999999Z", 1_795_255_200),
            ("2024-02-29T12:00:00Z", 1_709_208_000),
            ("2000-03-01T00:00:00Z", 951_868_800),
            ("1969-12-31T23:59:59Z", -1),
            ("0000-03-01T00:00:00Z", -62_162_035_200),
        ] {
            assert_eq!(unix_seconds(text), Some(seconds), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_date_time() {
        for text in [
            "",
            "2026-11-21",
            "2026-11-21T10:00:00",
            "2026-11-21T10:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-11-21T24:00:00Z",
            "2026-11-21T10:60:00Z",
            "2026-11-21T10:00:61Z",
            "2026-11-21T10:00:00+24:00",
            "2026-11-21T10:00:00+05:60",
            "2026-11-21T10:00:00+0530",
            "2026-11-21T10:00:00.Z",
            "2026-11-21T10:00:00ZZ",
            "2026/11/21T10:00:00Z",
            "+026-11-21T10:00:00Z",
            "2026-11-21T10:00:00 UTC",
            "２０２６-11-21T10:00:00Z",
        ] {
            assert_eq!(unix_seconds(text), None, "{text:?}");
        }
    }
}
