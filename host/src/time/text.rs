//! The time texts of the device protocols and the API: `YYYY-MM-DD HH:MM:SS GMT +HHMM`
//! (the Cams form, in the device's offset), the bare wall time, and RFC 3339 on input.
use std::sync::LazyLock;

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, Datelike, NaiveDateTime, Utc};

use super::offset::{MAX_OFFSET_MINUTES, parse_utc_offset};
use crate::plugin::bindings::types::DeviceTime;

/// Why a time text was refused. The text is quoted (cut to 64 characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CamsTimeError {
    /// Not `YYYY-MM-DD HH:MM:SS[ GMT +HHMM]` nor RFC 3339, or not a real date and time.
    #[error("invalid time {0:?}: expected \"YYYY-MM-DD HH:MM:SS GMT +HHMM\" or RFC 3339")]
    Invalid(String),
    /// A wall time without offset where no default offset was given.
    #[error("time {0:?} has no UTC offset")]
    MissingOffset(String),
    /// The offset is not `GMT +HHMM` (or another form of [`parse_utc_offset`]) within
    /// ±14:00.
    #[error("invalid UTC offset in {0:?}")]
    Offset(String),
    /// A year outside [`MIN_YEAR`] to [`MAX_YEAR`] (as written, in the text's offset).
    #[error("time {0:?} is out of range: the year must be 1970 to 9999")]
    OutOfRange(String),
}

/// The earliest year a time text may have: no device records before the Unix epoch.
pub const MIN_YEAR: i32 = 1970;
/// The latest year a time text may have: the four digits of `YYYY`.
pub const MAX_YEAR: i32 = 9999;

/// `YYYY-MM-DD HH:MM:SS GMT +HHMM` in the device's offset, e.g.
/// `2020-09-17 07:48:22 GMT +0530`, `... GMT -0300`, `... GMT +0000`.
pub fn format_cams_time(time: DeviceTime) -> String {
    let offset = time.utc_offset_minutes;
    let sign = if offset < 0 { '-' } else { '+' };
    let abs = offset.unsigned_abs();
    format!("{} GMT {sign}{:02}{:02}", format_wall_time(time), abs / 60, abs % 60)
}

/// The device-local wall time `YYYY-MM-DD HH:MM:SS` (no offset). Instants beyond chrono's
/// range (years past ±262143) are clamped to it.
pub fn format_wall_time(time: DeviceTime) -> String {
    let local = time.unix_seconds.saturating_add(i64::from(time.utc_offset_minutes) * 60);
    let clamped = if local < 0 { DateTime::<Utc>::MIN_UTC } else { DateTime::<Utc>::MAX_UTC };
    DateTime::from_timestamp(local, 0).unwrap_or(clamped).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Parses `YYYY-MM-DD HH:MM:SS GMT +HHMM` (also `GMT+0530`, `GMT +05:30`, `UTC`, bare `GMT`
/// for +0000) or RFC 3339. A wall time without offset is an error here; see
/// [`parse_cams_time_with_default`].
pub fn parse_cams_time(text: &str) -> Result<DeviceTime, CamsTimeError> {
    parse_time(text, None)
}

/// Like [`parse_cams_time`], but a bare `YYYY-MM-DD HH:MM:SS` (or with `T`) is taken as wall
/// time at `default_offset_minutes`.
pub fn parse_cams_time_with_default(text: &str, default_offset_minutes: i32) -> Result<DeviceTime, CamsTimeError> {
    parse_time(text, Some(default_offset_minutes))
}

fn parse_time(text: &str, default_offset: Option<i32>) -> Result<DeviceTime, CamsTimeError> {
    let text = text.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        let offset = instant.offset().local_minus_utc() / 60;
        if offset.abs() > MAX_OFFSET_MINUTES {
            return Err(CamsTimeError::Offset(excerpt(text)));
        }
        check_year(instant.year(), text)?;
        return Ok(DeviceTime { unix_seconds: instant.timestamp(), utc_offset_minutes: offset });
    }
    let (wall, rest) = WALL_CLOCK
        .iter()
        .find_map(|items| wall_clock(text, items))
        .ok_or_else(|| CamsTimeError::Invalid(excerpt(text)))?;
    check_year(wall.year(), text)?;
    let rest = rest.trim();
    let offset = if rest.is_empty() {
        default_offset.ok_or_else(|| CamsTimeError::MissingOffset(excerpt(text)))?
    } else {
        parse_utc_offset(rest).ok_or_else(|| CamsTimeError::Offset(excerpt(text)))?
    };
    Ok(DeviceTime { unix_seconds: wall.and_utc().timestamp() - i64::from(offset) * 60, utc_offset_minutes: offset })
}

/// The wall-clock layouts a time may start with, their format strings parsed once (a
/// device sends them with every punch).
static WALL_CLOCK: LazyLock<[Vec<Item<'static>>; 2]> = LazyLock::new(|| {
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
        .map(|format| StrftimeItems::new(format).parse_to_owned().unwrap_or_default())
});

/// The wall-clock time `text` starts with in the layout `items`, and the rest of it.
fn wall_clock<'a>(text: &'a str, items: &[Item<'static>]) -> Option<(NaiveDateTime, &'a str)> {
    if items.is_empty() {
        return None;
    }
    let mut parsed = Parsed::new();
    let rest = chrono::format::parse_and_remainder(&mut parsed, text, items.iter()).ok()?;
    Some((parsed.to_naive_datetime_with_offset(0).ok()?, rest))
}

fn check_year(year: i32, text: &str) -> Result<(), CamsTimeError> {
    match (MIN_YEAR..=MAX_YEAR).contains(&year) {
        true => Ok(()),
        false => Err(CamsTimeError::OutOfRange(excerpt(text))),
    }
}

fn excerpt(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2020-09-17 07:48:22 at +05:30.
    const LOG_UNIX: i64 = 1_600_309_102;
    const IST: i32 = 330;

    #[test]
    fn formats_cams_times_in_the_device_offset() {
        let at = |offset| format_cams_time(DeviceTime { unix_seconds: LOG_UNIX, utc_offset_minutes: offset });
        assert_eq!(at(IST), "2020-09-17 07:48:22 GMT +0530");
        assert_eq!(at(0), "2020-09-17 02:18:22 GMT +0000");
        assert_eq!(at(-180), "2020-09-16 23:18:22 GMT -0300");
        assert_eq!(at(-570), "2020-09-16 16:48:22 GMT -0930");
        assert_eq!(at(845), "2020-09-17 16:23:22 GMT +1405");
        assert_eq!(
            format_wall_time(DeviceTime { unix_seconds: LOG_UNIX, utc_offset_minutes: IST }),
            "2020-09-17 07:48:22"
        );
        // Absurd inputs do not panic.
        format_cams_time(DeviceTime { unix_seconds: i64::MAX, utc_offset_minutes: i32::MIN });
        format_cams_time(DeviceTime { unix_seconds: i64::MIN, utc_offset_minutes: i32::MAX });
    }

    #[test]
    fn parses_the_cams_form_and_variants() {
        let ist = DeviceTime { unix_seconds: LOG_UNIX, utc_offset_minutes: IST };
        for text in [
            "2020-09-17 07:48:22 GMT +0530",
            " 2020-09-17 07:48:22 GMT+0530 ",
            "2020-09-17 07:48:22 gmt +05:30",
            "2020-09-17T07:48:22 UTC +0530",
            "2020-09-17T07:48:22+05:30",
            "2020-09-17 07:48:22+05:30",
            "2020-09-17T02:18:22.999Z",
        ] {
            let expected = if text.ends_with('Z') { DeviceTime { utc_offset_minutes: 0, ..ist } } else { ist };
            assert_eq!(parse_cams_time(text), Ok(expected), "{text}");
        }
        assert_eq!(
            parse_cams_time("2020-09-16 23:18:22 GMT -0300"),
            Ok(DeviceTime { unix_seconds: LOG_UNIX, utc_offset_minutes: -180 })
        );
        assert_eq!(
            parse_cams_time("2020-09-17 02:18:22 GMT"),
            Ok(DeviceTime { unix_seconds: LOG_UNIX, utc_offset_minutes: 0 })
        );
        assert_eq!(parse_cams_time_with_default("2020-09-17 07:48:22", IST), Ok(ist));
        assert_eq!(parse_cams_time_with_default("2020-09-17T07:48:22", IST), Ok(ist));
        // An explicit offset wins over the default.
        assert_eq!(parse_cams_time_with_default("2020-09-17 07:48:22 GMT +0530", -60), Ok(ist));
    }

    #[test]
    fn years_outside_1970_to_9999_are_refused() {
        for text in [
            "0001-01-01 00:00:00",
            "1969-12-31 23:59:59 GMT +0000",
            "0001-01-01T00:00:00Z",
            "+10000-01-01 00:00:00",
            "-0001-01-01 00:00:00",
        ] {
            assert!(
                matches!(parse_cams_time_with_default(text, IST), Err(CamsTimeError::OutOfRange(_))),
                "{text}: {:?}",
                parse_cams_time_with_default(text, IST)
            );
        }
        for text in ["1970-01-01 00:00:00", "9999-12-31 23:59:59 GMT +0000", "9999-12-31T23:59:59+14:00"] {
            assert!(parse_cams_time_with_default(text, IST).is_ok(), "{text}");
        }
    }

    #[test]
    fn round_trips_through_text() {
        for offset in [IST, 0, -180, 600, -720, 840] {
            let time = DeviceTime { unix_seconds: LOG_UNIX, utc_offset_minutes: offset };
            assert_eq!(parse_cams_time(&format_cams_time(time)), Ok(time));
        }
    }

    #[test]
    fn refuses_impossible_or_malformed_times() {
        for text in [
            "2026-02-30 10:00:00 GMT +0000",
            "2026-01-01 25:00:00 GMT +0000",
            "2026-01-01 10:61:00 GMT +0000",
            "2026-13-01 10:00:00 GMT +0000",
            "17/09/2020 07:48:22",
            "",
            "garbage",
        ] {
            assert!(matches!(parse_cams_time(text), Err(CamsTimeError::Invalid(_))), "{text}");
        }
        for text in [
            "2026-01-01 10:00:00 GMT +2400",
            "2026-01-01 10:00:00 GMT +1500",
            "2026-01-01T10:00:00+15:00",
            "2026-01-01 10:00:00 GMT +0560",
            "2026-01-01 10:00:00 GMT 0530",
            "2026-01-01 10:00:00 IST",
            "2026-01-01 10:00:00 GMT +05300",
            "2026-01-01 10:00:00 GMT +5",
            "2026-01-01 10:00:00 GMT +０５３０",
        ] {
            assert!(matches!(parse_cams_time(text), Err(CamsTimeError::Offset(_))), "{text}");
        }
        assert_eq!(
            parse_cams_time("2026-01-01 10:00:00"),
            Err(CamsTimeError::MissingOffset("2026-01-01 10:00:00".into()))
        );
        let long = format!("x{}", "y".repeat(500));
        match parse_cams_time(&long) {
            Err(CamsTimeError::Invalid(quoted)) => assert_eq!(quoted.chars().count(), 64),
            other => panic!("{other:?}"),
        }
    }
}
