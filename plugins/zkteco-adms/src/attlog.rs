//! `table=ATTLOG` lines: one punch per line,
//! `PIN\tTime\tStatus\tVerify\tWorkcode\tReserved1\tReserved2[\tMaskFlag\tTemperature\t...]`.
//!
//! Real devices send from 5 to 12 or more fields, empty work codes and status 255. Only
//! the PIN and the time are required; a missing or empty status or verify code takes
//! the configured default, and fields after the temperature are ignored.

use biogate_sdk::prelude::*;

use crate::codes::CodeMaps;
use crate::time;

/// Parses one line into a punch; the error says why the line is bad.
pub(crate) fn parse(line: &str, offset_minutes: i32, maps: &CodeMaps) -> Result<Punch, String> {
    let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
    let pin = fields.first().copied().unwrap_or_default();
    if pin.is_empty() {
        return Err("empty PIN".into());
    }
    if pin.chars().any(char::is_control) {
        return Err("PIN has control characters".into());
    }
    let Some(&time_text) = fields.get(1) else {
        return Err("no time field".into());
    };
    let log_time = time::parse_device_time(time_text, offset_minutes)
        .ok_or_else(|| format!("time `{time_text}` is not YYYY-MM-DD HH:MM:SS"))?;
    let status = code(&fields, 2, "status")?;
    let verify = code(&fields, 3, "verify")?;

    let mut punch = Punch::new(pin, log_time);
    punch.punch_type = maps.punch_type(status);
    punch.input_type = maps.input_type(verify);
    punch.work_code = fields.get(4).filter(|w| !w.is_empty() && **w != "0").map(|w| (*w).to_owned());
    punch.face_mask = match fields.get(7) {
        Some(&"1") => Some(true),
        Some(&"0") => Some(false),
        _ => None,
    };
    punch.temperature = fields.get(8).and_then(|t| t.parse::<f32>().ok()).filter(|t| (10.0..=50.0).contains(t));
    Ok(punch)
}

/// The numeric code in field `index`, `None` when absent or empty.
fn code(fields: &[&str], index: usize, name: &str) -> Result<Option<u32>, String> {
    match fields.get(index) {
        None | Some(&"") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| format!("{name} `{text}` is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use biogate_sdk::testing;

    fn maps() -> CodeMaps {
        CodeMaps::load().unwrap()
    }

    #[test]
    fn seven_field_line_of_the_spec() {
        let p = parse("1452\t2015-07-30 15:16:28\t0\t1\t0\t0\t0", 480, &maps()).unwrap();
        assert_eq!(p.user_id, "1452");
        // 15:16:28 at UTC+8 is 07:16:28 UTC.
        assert_eq!(p.log_time, DeviceTime::new(1_438_269_388 - 8 * 3600, 480));
        assert_eq!(p.punch_type, PunchType::CheckIn);
        assert_eq!(p.input_type, InputType::Fingerprint);
        assert_eq!((p.work_code, p.face_mask, p.temperature), (None, None, None));
    }

    #[test]
    fn five_field_line_with_status_255_and_empty_workcode() {
        let p = parse("7\t2024-01-02 03:04:05\t255\t15\t", 0, &maps()).unwrap();
        assert_eq!(p.punch_type, PunchType::CheckIn);
        assert_eq!(p.input_type, InputType::Face);
        assert_eq!(p.work_code, None);
        testing::set_config(&[("status.255", "check-out")]);
        let p = parse("7\t2024-01-02 03:04:05\t255\t15\t", 0, &maps()).unwrap();
        assert_eq!(p.punch_type, PunchType::CheckOut);
    }

    #[test]
    fn eight_field_line_with_mask() {
        let p = parse("7\t2024-01-02 03:04:05\t1\t4\t12\t0\t0\t1", 330, &maps()).unwrap();
        assert_eq!(p.punch_type, PunchType::CheckOut);
        assert_eq!(p.input_type, InputType::Card);
        assert_eq!(p.work_code.as_deref(), Some("12"));
        assert_eq!(p.face_mask, Some(true));
        assert_eq!(p.temperature, None);
        assert_eq!(p.log_time.utc_offset_minutes, 330);
    }

    #[test]
    fn twelve_field_line_with_temperature() {
        let line = "88\t2021-06-01 08:00:00\t2\t15\t\t0\t0\t0\t36.6\t0\t0\t0";
        let p = parse(line, -300, &maps()).unwrap();
        assert_eq!(p.punch_type, PunchType::BreakOut);
        assert_eq!(p.face_mask, Some(false));
        assert_eq!(p.temperature, Some(36.6));
        assert_eq!(p.log_time.unix_seconds, 1_622_534_400 + 5 * 3600);
        // 255 means "not measured".
        let p = parse("88\t2021-06-01 08:00:00\t0\t15\t\t0\t0\t255\t255", 0, &maps()).unwrap();
        assert_eq!((p.face_mask, p.temperature), (None, None));
    }

    #[test]
    fn bad_lines_say_why() {
        for (line, why) in [
            ("\t2015-07-30 15:16:28\t0\t1", "PIN"),
            ("14\x0052\t2015-07-30 15:16:28\t0\t1", "PIN"),
            ("1452", "time"),
            ("1452\t2015-07-30\t0\t1", "time"),
            ("1452\t2015-07-30 25:00:00\t0\t1", "time"),
            ("1452\t0001-07-30 15:16:28\t0\t1", "time"),
            ("1452\t1969-12-31 23:59:59\t0\t1", "time"),
            ("1452\t2015-07-30 15:16:28\tx\t1", "status"),
            ("1452\t2015-07-30 15:16:28\t0\t-1", "verify"),
        ] {
            let err = parse(line, 0, &maps()).unwrap_err();
            assert!(err.contains(why), "{line:?}: {err}");
        }
    }
}
