//! UTC offsets: the one parser behind device time zones in the config and the API, the
//! offsets of Cams time texts and RFC 3339 times, and their text forms.

/// The largest offset accepted, in minutes: real time zones run from -12:00 to +14:00.
pub const MAX_OFFSET_MINUTES: i32 = 14 * 60;

/// Parses a UTC offset into minutes east of UTC: `+05:30`, `+0530`, `+05`, `-03:00`, the
/// same after `GMT` or `UTC` (`GMT +0530`, `UTC-03`), and `Z`, `UTC` or `GMT` alone for
/// zero. Hours are two ASCII digits, minutes two more; the offset is at most
/// [`MAX_OFFSET_MINUTES`] either way.
pub fn parse_utc_offset(text: &str) -> Option<i32> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let signed = match t.get(..3) {
        Some(zone) if zone.eq_ignore_ascii_case("gmt") || zone.eq_ignore_ascii_case("utc") => t[3..].trim_start(),
        _ => t,
    };
    if signed.is_empty() {
        return (signed.len() != t.len()).then_some(0);
    }
    let (sign, rest) = match signed.as_bytes()[0] {
        b'+' => (1, &signed[1..]),
        b'-' => (-1, &signed[1..]),
        _ => return None,
    };
    let digits = match rest.as_bytes() {
        [h1, h2, b':', m1, m2] => [*h1, *h2, *m1, *m2],
        [h1, h2, m1, m2] => [*h1, *h2, *m1, *m2],
        [h1, h2] => [*h1, *h2, b'0', b'0'],
        _ => return None,
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let number = |a: u8, b: u8| i32::from(a - b'0') * 10 + i32::from(b - b'0');
    let (hours, minutes) = (number(digits[0], digits[1]), number(digits[2], digits[3]));
    let total = hours * 60 + minutes;
    (minutes < 60 && total <= MAX_OFFSET_MINUTES).then_some(sign * total)
}

/// `+HH:MM` (`-03:00`, `+05:30`, `+00:00`).
pub fn format_utc_offset(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let abs = minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", abs / 60, abs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_written_form() {
        for (text, minutes) in [
            ("+05:30", 330),
            ("+0530", 330),
            ("+05", 300),
            ("-03:00", -180),
            (" -0930 ", -570),
            ("+14:00", 840),
            ("-12:00", -720),
            ("Z", 0),
            ("z", 0),
            ("UTC", 0),
            ("gmt", 0),
            ("GMT +0530", 330),
            ("GMT+05:30", 330),
            ("UTC -03", -180),
            ("+00:00", 0),
        ] {
            assert_eq!(parse_utc_offset(text), Some(minutes), "{text:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_an_offset() {
        for text in [
            "",
            "05:30",
            "+5",
            "+5:30",
            "+05:3",
            "+053",
            "+05300",
            "+0560",
            "+1401",
            "+15:00",
            "-2400",
            "IST",
            "GMT 0530",
            "GMT +０５３０",
            "+05;30",
            "++0530",
            "UTC+",
            "ZZ",
        ] {
            assert_eq!(parse_utc_offset(text), None, "{text:?}");
        }
    }

    #[test]
    fn formats_and_reads_back() {
        for minutes in [0, 330, -180, -570, 840, -720, 345] {
            assert_eq!(parse_utc_offset(&format_utc_offset(minutes)), Some(minutes));
        }
        assert_eq!(format_utc_offset(-30), "-00:30");
    }
}
