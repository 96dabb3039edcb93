//! The rows of a Cams `PunchLog.Log` (`Type`, `InputType`, `UserID`, `LogTime` in the
//! device's offset, `Temperature`, `FaceMask`, `WorkCode`), shared by the LoadLog reply
//! and the contract's historical batch callback of a `Resend.PunchLog`
//! (`{"PunchLog":{"ReturnRowCount","Log":[..]}}`, [`punch_log_batch`]).
use serde::Serialize;

use super::names::{input_type_name, punch_type_name};
use crate::plugin::bindings::types::{DeviceTime, Event, EventBody};
use crate::store::Device;
use crate::time::format_cams_time;

/// One row of a Cams `PunchLog.Log`.
#[derive(Debug, Serialize)]
pub struct CamsLogRow<'a> {
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "InputType")]
    input_type: &'static str,
    #[serde(rename = "UserID")]
    user_id: &'a str,
    #[serde(rename = "LogTime")]
    log_time: String,
    #[serde(rename = "Temperature", skip_serializing_if = "Option::is_none")]
    temperature: Option<String>,
    #[serde(rename = "FaceMask", skip_serializing_if = "Option::is_none")]
    face_mask: Option<bool>,
    #[serde(rename = "WorkCode", skip_serializing_if = "Option::is_none")]
    work_code: Option<&'a str>,
}

/// The rows of the punches among `events`, times in the device's offset.
pub(super) fn log_rows<'a>(events: &'a [Event], device: &Device) -> Vec<CamsLogRow<'a>> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Punch(p) => Some(CamsLogRow {
                kind: punch_type_name(p.punch_type),
                input_type: input_type_name(p.input_type),
                user_id: &p.user_id,
                log_time: format_cams_time(DeviceTime {
                    unix_seconds: p.log_time.unix_seconds,
                    utc_offset_minutes: device.utc_offset_minutes,
                }),
                temperature: p.temperature.filter(|t| t.is_finite()).map(|t| format!("{t:.1}")),
                face_mask: p.face_mask,
                work_code: p.work_code.as_deref(),
            }),
            _ => None,
        })
        .collect()
}

/// The historical batch callback body of the contract, `{"PunchLog":{"ReturnRowCount","Log":
/// [..]}}`, for the punches among `events` (rows as in a LoadLog reply). `None` when there
/// is none.
pub fn punch_log_batch(events: &[Event], device: &Device) -> Option<Vec<u8>> {
    #[derive(Serialize)]
    struct Batch<'a> {
        #[serde(rename = "PunchLog")]
        punch_log: BatchLog<'a>,
    }
    #[derive(Serialize)]
    struct BatchLog<'a> {
        #[serde(rename = "ReturnRowCount")]
        return_row_count: String,
        #[serde(rename = "Log")]
        log: Vec<CamsLogRow<'a>>,
    }
    let log = log_rows(events, device);
    if log.is_empty() {
        return None;
    }
    let batch = Batch { punch_log: BatchLog { return_row_count: log.len().to_string(), log } };
    // Strings, bools and string-keyed structs only: serde_json always serializes them.
    serde_json::to_vec(&batch).ok()
}
