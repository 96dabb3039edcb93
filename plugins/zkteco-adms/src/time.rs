//! Calendar arithmetic without a time library: device-local wall times
//! (`YYYY-MM-DD HH:MM:SS`) to and from instants, and the HTTP `Date` header.
//!
//! Days are counted with the proleptic Gregorian calendar (Howard Hinnant's
//! `days_from_civil` / `civil_from_days`).

use biogate_sdk::prelude::DeviceTime;

/// Days since 1970-01-01 of a calendar date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The calendar date (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // The casts cannot truncate: day is 1..=31 and month 1..=12 by construction.
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Parses a fixed-width decimal field (digits only).
fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Seconds since the epoch of a wall time `YYYY-MM-DD HH:MM:SS` (a `T` is accepted in
/// place of the space), read as if it were UTC. `None` when it is not a valid time or its
/// year is outside 1970-9999.
pub(crate) fn parse_wall_time(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut d = date.split('-');
    let (year, month, day) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() || year.len() != 4 {
        return None;
    }
    let mut t = time.trim().split(':');
    let (hour, minute, second) = (t.next()?, t.next()?, t.next()?);
    if t.next().is_some() {
        return None;
    }
    let year = i64::from(digits(year)?);
    // The years the gateway stores (as for native devices): a clock reset to year 0001
    // is not a punch time.
    if !(1970..=9999).contains(&year) {
        return None;
    }
    let (month, day) = (digits(month)?, digits(day)?);
    let (hour, minute, second) = (digits(hour)?, digits(minute)?, digits(second)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

/// The instant of a device-local wall time on a device `offset_minutes` east of UTC.
pub(crate) fn parse_device_time(text: &str, offset_minutes: i32) -> Option<DeviceTime> {
    let wall = parse_wall_time(text)?;
    Some(DeviceTime::new(wall - i64::from(offset_minutes) * 60, offset_minutes))
}

/// `YYYY-MM-DD HH:MM:SS` of `unix_seconds` shifted by `offset_minutes`.
pub(crate) fn format_wall_time(unix_seconds: i64, offset_minutes: i32) -> String {
    let local = unix_seconds.saturating_add(i64::from(offset_minutes) * 60);
    let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// An HTTP date (RFC 9110 IMF-fixdate) of `unix_ms`: `Tue, 26 Nov 2024 05:21:00 GMT`.
pub(crate) fn http_date(unix_ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = i64::try_from(unix_ms / 1000).unwrap_or(i64::MAX / 2);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month = MONTHS[(month as usize).saturating_sub(1).min(11)];
    format!("{weekday}, {day:02} {month} {year:04} {:02}:{:02}:{:02} GMT", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_times_round_trip() {
        assert_eq!(parse_wall_time("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_wall_time("2015-07-30 15:16:28"), Some(1_438_269_388));
        assert_eq!(parse_wall_time("2024-02-29T23:59:59"), Some(1_709_251_199));
        for t in [0, 951_782_400, 1_438_269_388, 4_102_444_799] {
            assert_eq!(parse_wall_time(&format_wall_time(t, 0)), Some(t));
        }
        assert_eq!(format_wall_time(0, 330), "1970-01-01 05:30:00");
        assert_eq!(format_wall_time(0, -300), "1969-12-31 19:00:00");
        // Extreme instants (from a command) do not overflow.
        assert!(!format_wall_time(i64::MAX, 60).is_empty());
    }

    #[test]
    fn invalid_wall_times_are_refused() {
        for bad in [
            "",
            "2015-07-30",
            "2015-13-01 00:00:00",
            "2023-02-29 00:00:00",
            "2015-07-30 24:00:00",
            "2015-07-30 12:60:00",
            "15-07-30 12:00:00",
            "2015-07-30 12:00",
            "2015-07-3x 12:00:00",
            "2015-07-30 +1:00:00",
        ] {
            assert_eq!(parse_wall_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn device_time_uses_the_offset() {
        let t = parse_device_time("2020-09-17 07:48:22", 330).unwrap();
        assert_eq!(t.utc_offset_minutes, 330);
        assert_eq!(format_wall_time(t.unix_seconds, 0), "2020-09-17 02:18:22");
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_732_598_460_999), "Tue, 26 Nov 2024 05:21:00 GMT");
    }
}
