//! The command poll, `GET /iclock/getrequest?SN=..[&INFO=..]`: the reply carries the
//! device's pending commands as `C:<id>:<command>` lines, or `OK` when there are none.
//!
//! - Caps: at most `max_commands` lines and `max_reply_bytes` bytes per reply, and
//!   nothing after a `REBOOT`. Commands are taken from the gateway one at a time while
//!   there is room; the lines of a command that do not fit (one command can be several
//!   lines) wait in the kv queue and go first in the next reply, so nothing taken is
//!   lost.
//! - Ids: `<id>` is a per-device counter, mapped in kv to the gateway's operation id so
//!   that `devicecmd` results map back.
//! - A command ADMS cannot express, or too long for a reply, is answered at once with a
//!   `command-result` event (-1002 not supported, -1 bad parameter, -1006 too long); at
//!   most [`MAX_POLL_EVENTS`] events per reply.
//! - `INFO` (firmware, counts, IP...) becomes a `device-status` event when it changed.

use biogate_sdk::prelude::*;

use crate::codes::{BiodataSettings, TOO_LONG};
use crate::commands::{self, Effect, Encoded};
use crate::request;
use crate::settings::Settings;
use crate::state::{self, Progress, Sent};

/// The largest line the kv queue can hold (a value is at most 64 KiB).
const MAX_QUEUED_LINE: usize = 60_000;

/// At most this many events per poll reply (refused commands, device status): well
/// under any sane `max_output_events` (a dialect's default is 10,000), whose excess would lose the
/// reply and with it the commands already taken.
pub(crate) const MAX_POLL_EVENTS: usize = 50;

/// The names of the comma-separated fields of a poll's `INFO`.
const INFO_FIELDS: [&str; 10] = [
    "firmware",
    "users",
    "fingerprints",
    "punches",
    "ip",
    "fingerprint_version",
    "face_version",
    "faces_needed",
    "faces",
    "functions",
];

/// The reply being built, under the caps.
struct Batch {
    lines: Vec<String>,
    bytes: usize,
    max_lines: usize,
    max_bytes: usize,
    /// A `REBOOT` is in the batch: nothing may follow it.
    rebooting: bool,
}

impl Batch {
    fn new(settings: &Settings) -> Self {
        Self {
            lines: Vec::new(),
            bytes: 0,
            max_lines: settings.max_commands as usize,
            max_bytes: settings.max_reply_bytes as usize,
            rebooting: false,
        }
    }

    /// Whether no more lines can be added.
    fn closed(&self) -> bool {
        self.rebooting || self.lines.len() >= self.max_lines || self.bytes >= self.max_bytes
    }

    /// Whether `line` (and its line feed) fits.
    fn fits(&self, line: &str) -> bool {
        !self.closed() && self.bytes + line.len() < self.max_bytes
    }

    fn push(&mut self, line: String) {
        self.bytes += line.len() + 1;
        if commands::is_reboot(command_text(&line)) {
            self.rebooting = true;
        }
        self.lines.push(line);
    }

    fn body(&self) -> String {
        if self.lines.is_empty() {
            return "OK".into();
        }
        let mut body = self.lines.join("\n");
        body.push('\n');
        body
    }
}

/// The command of a `C:<id>:<command>` line.
fn command_text(line: &str) -> &str {
    line.splitn(3, ':').nth(2).unwrap_or(line)
}

/// A `command-result` event for a command that is not sent.
fn refused(operation_id: &str, code: i32, reason: &str) -> EventBody {
    EventBody::CommandResult(CommandResult {
        operation_id: operation_id.to_owned(),
        return_code: code,
        details: vec![("reason".into(), reason.to_owned())],
    })
}

/// Answers a poll.
pub(crate) fn handle(device: &DeviceContext, request: &HttpRequest, settings: &Settings) -> DialectReply {
    let mut events = Vec::new();
    if let Some(info) = request::param(request, "INFO").filter(|i| !i.is_empty())
        && settings.status_events
    {
        events.extend(info_status(&device.device_id, info));
    }
    let mut batch = Batch::new(settings);
    if let Err(err) = fill(device, settings, &mut batch, &mut events) {
        error!(device = device.device_id, error = err; "command poll: the kv store failed; no new command taken");
    }
    DialectReply::text(200, batch.body()).with_events(events)
}

/// A `device-status` event for a poll's `INFO`, unless it is the same as last time.
fn info_status(device: &str, info: &str) -> Option<EventBody> {
    match state::last_info(device) {
        Ok(Some(last)) if last == info => return None,
        Ok(_) => {}
        Err(err) => warn!(device = device, error = err; "could not read the last INFO"),
    }
    if let Err(err) = state::set_last_info(device, info) {
        warn!(device = device, error = err; "could not record the INFO");
    }
    let values = info.split(',').map(str::trim);
    let mut fields: Vec<(String, String)> = INFO_FIELDS
        .iter()
        .map(|name| (*name).to_owned())
        .zip(values.map(str::to_owned))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    fields.push(("info".into(), info.to_owned()));
    Some(EventBody::DeviceStatus(DeviceStatus { online: true, info: fields }))
}

/// Fills the batch: first the queued lines, then new commands while there is room.
/// An error means the kv store failed before a command was taken.
fn fill(
    device: &DeviceContext,
    settings: &Settings,
    batch: &mut Batch,
    events: &mut Vec<EventBody>,
) -> Result<(), KvError> {
    let dev = device.device_id.as_str();
    let biodata = match BiodataSettings::load() {
        Ok(b) => b,
        Err(err) => {
            error!(device = dev, error = err; "command poll: invalid plugin config; no command taken");
            return Ok(());
        }
    };
    if !drain_queue(dev, batch)? {
        return Ok(());
    }
    let mut next_id = state::next_command_id(dev)?;
    let line_limit = (batch.max_bytes - 1).min(MAX_QUEUED_LINE);

    for _ in 0..batch.max_lines {
        if batch.closed() || events.len() >= MAX_POLL_EVENTS {
            break;
        }
        let Some(command) = biogate_sdk::commands::take_pending(dev, 1).into_iter().next() else {
            break;
        };
        let op = command.operation_id.as_str();
        let known_pri = commands::subject(&command.body).and_then(|pin| {
            state::pri(dev, pin)
                .inspect_err(|err| warn!(device = dev, error = err; "could not read a user's privilege"))
                .ok()
                .flatten()
        });
        let cx =
            commands::Context { settings, biodata: &biodata, offset_minutes: device.utc_offset_minutes, known_pri };
        let Encoded { lines, effect } = match commands::encode(&command.body, &cx) {
            Ok(encoded) => encoded,
            Err(refusal) => {
                warn!(device = dev, operation = op, code = refusal.code; "command not sent: {}", refusal.reason);
                events.push(refused(op, refusal.code, &refusal.reason));
                continue;
            }
        };
        let lines: Vec<String> = lines.iter().zip(next_id..).map(|(text, id)| format!("C:{id}:{text}")).collect();
        if let Some(long) = lines.iter().find(|l| l.len() > line_limit) {
            let reason =
                format!("a command line of {} bytes exceeds the reply limit of {line_limit} bytes", long.len());
            warn!(device = dev, operation = op; "command not sent: {reason}");
            events.push(refused(op, TOO_LONG, &reason));
            continue;
        }
        let first_id = next_id;
        next_id += lines.len() as u64;
        let reserved = state::set_next_command_id(dev, next_id);
        record(dev, op, first_id, lines.len(), &effect);
        let mut queued = false;
        for (line, id) in lines.into_iter().zip(first_id..) {
            if !queued && batch.fits(&line) {
                batch.push(line);
                continue;
            }
            queued = true;
            if let Err(err) = state::queue_push(dev, id, &line) {
                // Sending over the caps beats losing a command already taken.
                warn!(device = dev, operation = op, error = err; "could not queue a command line; sent over the caps");
                batch.push(line);
            }
        }
        if let Err(err) = reserved {
            error!(device = dev, error = err; "could not record the next command id; stopping this batch");
            break;
        }
        if queued {
            break;
        }
    }
    Ok(())
}

/// Moves queued lines into the batch. `Ok(true)` when the queue is now empty and the
/// batch still open, so that new commands may be taken.
fn drain_queue(dev: &str, batch: &mut Batch) -> Result<bool, KvError> {
    let limit = u32::try_from(batch.max_lines).unwrap_or(u32::MAX);
    let queued = state::queued(dev, limit)?;
    let total = queued.len();
    let mut sent = 0;
    for (key, line) in queued {
        // A line longer than the byte cap (the cap was lowered since it was queued)
        // still goes, alone.
        let alone = batch.lines.is_empty() && !batch.closed();
        if !batch.fits(&line) && !alone {
            break;
        }
        batch.push(line);
        sent += 1;
        if let Err(err) = state::unqueue(&key) {
            warn!(device = dev, error = err; "could not unqueue a sent command line; it may be sent twice");
        }
    }
    Ok(sent == total && !batch.closed())
}

/// Records the operation of the command ids and the effect of the command.
fn record(dev: &str, op: &str, first_id: u64, parts: usize, effect: &Effect) {
    let parts = u32::try_from(parts).unwrap_or(u32::MAX);
    let sent = Sent { operation_id: op.to_owned(), parts };
    for id in first_id..first_id + u64::from(parts) {
        if let Err(err) = state::remember(dev, id, &sent) {
            error!(device = dev, operation = op, error = err; "could not record a command id; its result will not map back");
        }
    }
    if parts > 1
        && let Err(err) = state::set_progress(dev, op, &Progress::default())
    {
        error!(device = dev, operation = op, error = err; "could not record the progress of an operation");
    }
    let stored = match effect {
        Effect::None => Ok(()),
        Effect::SetPri(pin, pri) => state::set_pri(dev, pin, *pri),
        Effect::ForgetUser(pin) => state::forget_pri(dev, pin),
    };
    if let Err(err) = stored {
        warn!(device = dev, error = err; "could not record a user's privilege");
    }
}
