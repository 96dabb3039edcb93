//! The handshake: `GET /iclock/cdata?SN=..&options=all&pushver=..`. The answer tells the
//! device where to resume its uploads (the stamps), how often to poll, its time zone,
//! and the protocol version both sides speak; its `Date` header sets the device clock.

use std::cmp::Ordering;

use biogate_sdk::prelude::*;

use crate::request;
use crate::settings::{Settings, TimeZoneFormat};
use crate::state;
use crate::time;

/// The push protocol version of a device that does not say (`pushver` absent).
const LEGACY_PUSH_VERSION: &str = "2.2.14";

/// Answers a handshake, with a `device-status` event when enabled.
pub(crate) fn handle(device: &DeviceContext, request: &HttpRequest, settings: &Settings) -> DialectReply {
    let pushver = request::param(request, "pushver").filter(|v| !v.is_empty());
    // The serial number exactly as the device sent it (the registry may differ in case).
    let sn =
        request::serial(request).filter(|sn| sn.eq_ignore_ascii_case(&device.device_id)).unwrap_or(&device.device_id);
    let body = options(device, sn, pushver, settings);
    let mut reply = DialectReply::text(200, body);
    reply.headers.push(("date".into(), time::http_date(now_ms())));
    if settings.status_events {
        let info = request
            .query
            .iter()
            .filter(|(k, _)| !["sn", "options", "pushcommkey"].contains(&k.to_ascii_lowercase().as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        reply.events.push(EventBody::DeviceStatus(DeviceStatus { online: true, info }));
    }
    info!(device = device.device_id, pushver = pushver.unwrap_or("none"); "device handshake");
    reply
}

/// The body: `GET OPTION FROM: <sn>` and the option lines.
fn options(device: &DeviceContext, sn: &str, pushver: Option<&str>, settings: &Settings) -> String {
    let stamp = |table: &str| match state::stamp(&device.device_id, table) {
        Ok(Some(s)) => Some(s),
        Ok(None) => None,
        Err(err) => {
            warn!(device = device.device_id, table = table, error = err; "could not read a stamp; answering None");
            None
        }
    };
    let mut lines = vec![format!("GET OPTION FROM: {}", sn)];
    let (attlog, operlog, attphoto) = (stamp("ATTLOG"), stamp("OPERLOG"), stamp("ATTPHOTO"));
    let none = || "None".to_owned();
    lines.push(format!("ATTLOGStamp={}", attlog.clone().unwrap_or_else(none)));
    lines.push(format!("OPERLOGStamp={}", operlog.clone().unwrap_or_else(none)));
    lines.push(format!("ATTPHOTOStamp={}", attphoto.clone().unwrap_or_else(none)));
    if let Some(biodata) = stamp("BIODATA") {
        lines.push(format!("BIODATAStamp={biodata}"));
    }
    if pushver.is_none() {
        // Firmware older than pushver reads these names instead.
        lines.push(format!("Stamp={}", attlog.unwrap_or_else(none)));
        lines.push(format!("OpStamp={}", operlog.unwrap_or_else(none)));
        lines.push(format!("PhotoStamp={}", attphoto.unwrap_or_else(none)));
    }
    lines.push(format!("ErrorDelay={}", settings.error_delay));
    lines.push(format!("Delay={}", settings.delay));
    lines.push(format!("TransTimes={}", settings.trans_times));
    lines.push(format!("TransInterval={}", settings.trans_interval));
    lines.push(format!("TransFlag={}", settings.trans_flag));
    lines.push(format!("TimeZone={}", timezone(device.utc_offset_minutes, settings.timezone_format)));
    lines.push(format!("Realtime={}", u8::from(settings.realtime)));
    lines.push("Encrypt=None".to_owned());
    lines.push(format!("ServerVer={}", settings.server_ver));
    let device_version = pushver.unwrap_or(LEGACY_PUSH_VERSION);
    lines.push(format!("PushProtVer={}", lower_version(device_version, &settings.push_prot_ver.0)));
    let mut body = lines.join("\n");
    body.push('\n');
    body
}

/// The `TimeZone` value of an offset. `auto`: hours when whole and within ±12, else
/// minutes (India: `330`); `hours`: hours, fractional when needed (`5.5`); `minutes`.
pub(crate) fn timezone(offset_minutes: i32, format: TimeZoneFormat) -> String {
    let whole_hours = offset_minutes % 60 == 0;
    match format {
        TimeZoneFormat::Auto if whole_hours && (offset_minutes / 60).abs() <= 12 => (offset_minutes / 60).to_string(),
        TimeZoneFormat::Auto | TimeZoneFormat::Minutes => offset_minutes.to_string(),
        TimeZoneFormat::Hours if whole_hours => (offset_minutes / 60).to_string(),
        TimeZoneFormat::Hours => {
            let sign = if offset_minutes < 0 { "-" } else { "" };
            let abs = offset_minutes.unsigned_abs();
            let hundredths = abs % 60 * 100 / 60;
            let fraction = format!("{hundredths:02}");
            format!("{sign}{}.{}", abs / 60, fraction.trim_end_matches('0'))
        }
    }
}

/// The numbers of a dotted version (`2.4.1`); `None` when a part is not a number.
fn version_parts(v: &str) -> Option<Vec<u32>> {
    v.trim().split('.').map(|p| p.trim().parse().ok()).collect()
}

/// The lower of two dotted versions. A device version that does not parse counts as the
/// legacy 2.2.14.
pub(crate) fn lower_version(device: &str, ours: &str) -> String {
    let device = match version_parts(device) {
        Some(_) => device.trim(),
        None => LEGACY_PUSH_VERSION,
    };
    let (Some(d), Some(o)) = (version_parts(device), version_parts(ours)) else {
        return device.to_owned();
    };
    match d.cmp(&o) {
        Ordering::Less => device.to_owned(),
        _ => ours.trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timezones() {
        use TimeZoneFormat::*;
        assert_eq!(timezone(480, Auto), "8");
        assert_eq!(timezone(-300, Auto), "-5");
        assert_eq!(timezone(0, Auto), "0");
        assert_eq!(timezone(330, Auto), "330");
        assert_eq!(timezone(-210, Auto), "-210");
        assert_eq!(timezone(780, Auto), "780");
        assert_eq!(timezone(330, Hours), "5.5");
        assert_eq!(timezone(345, Hours), "5.75");
        assert_eq!(timezone(-210, Hours), "-3.5");
        assert_eq!(timezone(-30, Hours), "-0.5");
        assert_eq!(timezone(780, Hours), "13");
        assert_eq!(timezone(480, Minutes), "480");
    }

    #[test]
    fn versions() {
        assert_eq!(lower_version("2.2.14", "2.4.1"), "2.2.14");
        assert_eq!(lower_version("2.4.1", "2.4.1"), "2.4.1");
        assert_eq!(lower_version("3.1.2", "2.4.1"), "2.4.1");
        assert_eq!(lower_version("2.4.0", "2.4.1"), "2.4.0");
        assert_eq!(lower_version("2.10", "2.4.1"), "2.4.1");
        assert_eq!(lower_version("junk", "2.4.1"), "2.2.14");
    }
}
