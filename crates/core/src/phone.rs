//! Phone numbers: callers may write E.164 with or without `+`; providers want one or the other.

/// The digits of an E.164 number given with or without `+`: 7 to 15 digits, not starting
/// with 0. `None` if `raw` is not such a number.
pub fn e164_digits(raw: &str) -> Option<&str> {
    let digits = raw.strip_prefix('+').unwrap_or(raw);
    let valid = (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    valid.then_some(digits)
}

/// `+<digits>` for a valid number; `raw` unchanged otherwise (a group id, say).
pub fn with_plus(raw: &str) -> String {
    match e164_digits(raw) {
        Some(digits) => {
            let mut number = String::with_capacity(digits.len() + 1);
            number.push('+');
            number.push_str(digits);
            number
        }
        None => raw.to_string(),
    }
}

/// `<digits>` for a valid number; `raw` unchanged otherwise (a group id, say).
pub fn without_plus(raw: &str) -> String {
    e164_digits(raw).unwrap_or(raw).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_e164_with_or_without_plus() {
        assert_eq!(e164_digits("+14085551234"), Some("14085551234"));
        assert_eq!(e164_digits("14085551234"), Some("14085551234"));
        assert_eq!(with_plus("14085551234"), "+14085551234");
        assert_eq!(without_plus("+14085551234"), "14085551234");
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        for bad in [
            "",
            "+",
            "123456",
            "0123456789",
            "+1 408 555 1234",
            "1234567890123456",
            "abc1234567",
            "++14085551234",
        ] {
            assert_eq!(e164_digits(bad), None, "{bad}");
        }
        assert_eq!(
            with_plus("120363025246125486@g.us"),
            "120363025246125486@g.us"
        );
    }
}
