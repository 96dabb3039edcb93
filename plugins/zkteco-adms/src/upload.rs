//! Uploads, `POST /iclock/cdata?SN=..&table=<T>&Stamp=..`: many records per body, one
//! per line. The reply is always `OK: <n>` (some firmware takes a bare `OK` for a failure
//! and re-sends the batch forever); `n` counts the records accepted (or, with
//! `reply_count = received`, every line). A bad line is logged and counted, never fatal.
//! The `Stamp` of the upload is recorded for the next handshake.
//!
//! - `ATTLOG`: punches ([`crate::attlog`]);
//! - `OPERLOG`, `BIODATA`: user updates ([`crate::operlog`]);
//! - `ATTPHOTO`: one punch photo per request, header lines then the JPEG after a NUL. A
//!   punch is journaled when its `ATTLOG` line arrives, before its photo; the WIT has no
//!   way to attach a photo to it afterwards, so photos are accepted and not kept;
//! - `options`: the device's capabilities (`FingerFunOn=1,FaceFunOn=1,...`) as a
//!   `device-status` event;
//! - any other table: accepted (so the device moves on) and logged.

use biogate_sdk::prelude::*;

use crate::attlog;
use crate::codes::CodeMaps;
use crate::operlog::{self, Record};
use crate::request;
use crate::settings::{ReplyCount, Settings};
use crate::state;

/// Bad lines logged one by one per request; the rest are only counted.
const LOGGED_BAD_LINES: usize = 10;

/// What a body gave.
#[derive(Default)]
struct Tally {
    events: Vec<EventBody>,
    accepted: usize,
    bad: usize,
}

/// Logs bad lines, up to [`LOGGED_BAD_LINES`] per request.
struct BadLines<'a> {
    device: &'a str,
    table: &'a str,
    logged: usize,
}

impl BadLines<'_> {
    fn report(&mut self, line: usize, reason: &str, excerpt: Option<&str>) {
        self.logged += 1;
        if self.logged > LOGGED_BAD_LINES {
            return;
        }
        let excerpt = excerpt.map(request::excerpt).unwrap_or_default();
        warn!(device = self.device, table = self.table, line = line, reason = reason, text = excerpt;
            "bad upload line skipped");
    }
}

/// Handles an upload.
pub(crate) fn handle(
    device: &DeviceContext,
    request: &HttpRequest,
    settings: &Settings,
) -> Result<DialectReply, DialectError> {
    let dev = device.device_id.as_str();
    let table = request::param(request, "table")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| DialectError::BadRequest("ADMS upload without a table query parameter".into()))?
        .to_ascii_uppercase();
    let text = request::text(&request.body);
    let mut bad = BadLines { device: dev, table: &table, logged: 0 };
    let tally = match table.as_str() {
        "ATTLOG" => punches(device, &text, settings, &mut bad).map_err(|err| crate::config_error(dev, &err))?,
        "OPERLOG" => user_records(device, &text, None, &mut bad),
        "BIODATA" => user_records(device, &text, Some("BIODATA"), &mut bad),
        "ATTPHOTO" => photo(dev, &request.body, &mut bad),
        "OPTIONS" => options(&text, settings, &mut bad),
        _ => {
            let lines = request::lines(&text).count();
            warn!(device = dev, table = table, lines = lines; "upload of a table this dialect does not read; accepted and ignored");
            Tally { accepted: lines, ..Tally::default() }
        }
    };
    if tally.bad > 0 {
        warn!(device = dev, table = table, accepted = tally.accepted, bad = tally.bad; "upload had bad lines");
    }
    record_stamp(dev, &table, request);
    let n = match settings.reply_count {
        ReplyCount::Accepted => tally.accepted,
        ReplyCount::Received => tally.accepted + tally.bad,
    };
    debug!(device = dev, table = table, accepted = tally.accepted, bad = tally.bad; "upload");
    Ok(DialectReply::text(200, format!("OK: {n}")).with_events(tally.events))
}

/// Records the upload's `Stamp` for the tables the handshake reports.
fn record_stamp(dev: &str, table: &str, request: &HttpRequest) {
    if !state::STAMP_TABLES.contains(&table) {
        return;
    }
    let Some(stamp) = request::param(request, "Stamp").filter(|s| !s.is_empty()) else {
        return;
    };
    if stamp.len() > 64 || stamp.chars().any(|c| c.is_control() || c.is_whitespace()) {
        warn!(device = dev, table = table; "upload Stamp is not a short token; not recorded");
        return;
    }
    if let Err(err) = state::set_stamp(dev, table, stamp) {
        warn!(device = dev, table = table, error = err; "could not record the upload Stamp");
    }
}

fn now_seconds() -> i64 {
    i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX)
}

fn punches(
    device: &DeviceContext,
    text: &str,
    settings: &Settings,
    bad: &mut BadLines<'_>,
) -> Result<Tally, ConfigError> {
    let maps = CodeMaps::load()?;
    let horizon = now_seconds().saturating_add(i64::from(settings.future_tolerance_seconds));
    let mut tally = Tally::default();
    for (number, line) in request::lines(text) {
        match attlog::parse(line, device.utc_offset_minutes, &maps) {
            Ok(punch) => {
                if punch.log_time.unix_seconds > horizon {
                    warn!(device = device.device_id, user = punch.user_id, line = number;
                        "punch far in the future (device clock wrong?); accepted");
                }
                tally.accepted += 1;
                tally.events.push(EventBody::Punch(punch));
            }
            Err(reason) => {
                tally.bad += 1;
                bad.report(number, &reason, Some(line));
            }
        }
    }
    Ok(tally)
}

fn user_records(device: &DeviceContext, text: &str, default_tag: Option<&str>, bad: &mut BadLines<'_>) -> Tally {
    let dev = device.device_id.as_str();
    let now = DeviceTime::new(now_seconds(), device.utc_offset_minutes);
    let mut tally = Tally::default();
    for (number, line) in request::lines(text) {
        match operlog::parse(line, now, default_tag) {
            Ok(Record::Update(update, pri)) => {
                if let Some(pri) = pri
                    && let Err(err) = state::set_pri(dev, &update.user.user_id, pri)
                {
                    warn!(device = dev, error = err; "could not record a user's privilege");
                }
                tally.accepted += 1;
                tally.events.push(EventBody::UserUpdate(update));
            }
            Ok(Record::Ignored(tag)) => {
                tally.accepted += 1;
                debug!(device = dev, tag = tag, line = number; "operation log record without an event");
            }
            Err(reason) => {
                tally.bad += 1;
                // OPERLOG lines carry passwords and templates: never logged verbatim.
                let tag = line.split([' ', '\t']).next().unwrap_or_default();
                bad.report(number, &format!("{} ({reason})", request::excerpt(tag)), None);
            }
        }
    }
    tally
}

/// `PIN=<yyyymmddhhmmss-pin.jpg>\nSN=<sn>\nsize=<n>\nCMD=uploadphoto\0<jpeg>`.
fn photo(dev: &str, body: &[u8], bad: &mut BadLines<'_>) -> Tally {
    let Some(nul) = body.iter().position(|b| *b == 0) else {
        bad.report(1, "no NUL between the header and the photo", None);
        return Tally { bad: 1, ..Tally::default() };
    };
    let header = request::text(&body[..nul]);
    let jpeg = &body[nul + 1..];
    let value = |key: &str| {
        request::lines(&header)
            .filter_map(|(_, l)| l.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim().to_owned())
    };
    let Some(name) = value("PIN").filter(|n| !n.is_empty()) else {
        bad.report(1, "photo header without PIN", None);
        return Tally { bad: 1, ..Tally::default() };
    };
    let declared = value("size").and_then(|s| s.parse::<usize>().ok());
    if declared.is_some_and(|size| size != jpeg.len()) {
        warn!(device = dev, file = name, declared = declared.unwrap_or(0), received = jpeg.len();
            "punch photo size differs from its header");
    }
    debug!(device = dev, file = name, bytes = jpeg.len(); "punch photo received (not kept: it cannot be attached to its journaled punch)");
    Tally { accepted: 1, ..Tally::default() }
}

/// `FingerFunOn=1,FaceFunOn=1,...` (commas or line breaks between pairs).
fn options(text: &str, settings: &Settings, bad: &mut BadLines<'_>) -> Tally {
    let mut tally = Tally::default();
    let mut info = Vec::new();
    for (number, line) in request::lines(text) {
        for item in line.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    info.push((k.trim().to_owned(), v.trim().to_owned()));
                    tally.accepted += 1;
                }
                _ => {
                    tally.bad += 1;
                    bad.report(number, "option without `=`", Some(item));
                }
            }
        }
    }
    if settings.status_events && !info.is_empty() {
        tally.events.push(EventBody::DeviceStatus(DeviceStatus { online: true, info }));
    }
    tally
}
