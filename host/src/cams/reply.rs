//! The Cams replies: the body of an operation's answer (`Status`, `OperationID`,
//! `StatusCode`, `ReturnCode`, `DeviceInformation`, `UserInfo`), a user in the Cams shape,
//! and a LoadLog page as a `PunchLog` object, times in the device's offset (its rows are
//! in [`super::punch_log`]).
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::names::template_kind_name;
use super::punch_log::{CamsLogRow, log_rows};
use super::status::CamsStatus;
use crate::operations::Submitted;
use crate::operations::load_log::LogPage;
use crate::operations::service::state_name;
use crate::plugin::bindings::types::{DeviceTime, User, UserRole};
use crate::store::{Device, OperationRecord, OperationState};
use crate::time::format_cams_time;

/// The reply for an operation as it stands.
pub fn operation_reply(record: &OperationRecord, submitted: &Submitted, device: &Device) -> Value {
    let (status, code) = match record.state {
        OperationState::Done => ("done", CamsStatus::Done),
        OperationState::Queued | OperationState::Sent => (state_name(record.state), CamsStatus::Done),
        OperationState::Failed => (CamsStatus::DeviceRefused.name(), CamsStatus::DeviceRefused),
        OperationState::Expired => (CamsStatus::DeviceUnavailable.name(), CamsStatus::DeviceUnavailable),
        OperationState::Cancelled => (CamsStatus::Cancelled.name(), CamsStatus::Cancelled),
    };
    let mut out = Map::new();
    out.insert("Status".into(), status.into());
    out.insert("OperationID".into(), record.id.clone().into());
    out.insert("StatusCode".into(), (code as u16).into());
    if let Some(rc) = record.return_code.filter(|_| record.command.is_some()) {
        out.insert("ReturnCode".into(), rc.into());
    }
    if let Some(message) = &record.message {
        out.insert("Message".into(), message.clone().into());
    }
    if record.kind == "load_device_info" && record.state == OperationState::Done {
        let info: Map<String, Value> = record
            .details
            .iter()
            .filter(|(k, _)| k != "Status")
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        out.insert("DeviceInformation".into(), info.into());
    }
    if let Some(users) = &submitted.users {
        out.insert("UserInfo".into(), users.iter().map(|u| cams_user(u, device)).collect::<Vec<_>>().into());
    }
    Value::Object(out)
}

/// A user in the Cams shape (`UserID`, `FirstName`, `UserType`, `Template`...).
pub fn cams_user(user: &User, device: &Device) -> Value {
    let mut out = Map::new();
    out.insert("UserID".into(), user.user_id.clone().into());
    if let Some(v) = &user.first_name {
        out.insert("FirstName".into(), v.clone().into());
    }
    if let Some(v) = &user.last_name {
        out.insert("LastName".into(), v.clone().into());
    }
    if let Some(role) = user.role {
        out.insert("UserType".into(), if role == UserRole::Admin { "Admin" } else { "User" }.into());
    }
    out.insert("Enabled".into(), user.enabled.unwrap_or(true).into());
    let offset = |t: DeviceTime| format_cams_time(DeviceTime { utc_offset_minutes: device.utc_offset_minutes, ..t });
    if let Some(t) = user.valid_from {
        out.insert("ValidFrom".into(), offset(t).into());
    }
    if let Some(t) = user.valid_until {
        out.insert("ValidUntil".into(), offset(t).into());
    }
    let templates: Vec<Value> = user
        .templates
        .iter()
        .map(|t| {
            let mut v = json!({"Type": template_kind_name(t.kind), "UserID": user.user_id, "Size": t.data.len().to_string(), "Data": t.data});
            if let Some(i) = t.index {
                v["Index"] = i.to_string().into();
            }
            v
        })
        .collect();
    out.insert("Template".into(), templates.into());
    out.insert("HasPhoto".into(), user.photo.is_some().into());
    Value::Object(out)
}

/// The Cams `PunchLog` object of a reply.
#[derive(Debug, Serialize)]
pub struct CamsPunchLog<'a> {
    #[serde(rename = "ActualRowCount")]
    actual_row_count: String,
    #[serde(rename = "ReturnRowCount")]
    return_row_count: String,
    #[serde(rename = "OffSet")]
    offset: &'a str,
    #[serde(rename = "Log")]
    log: Vec<CamsLogRow<'a>>,
}

/// Renders a page in the Cams form, times in the device's offset.
pub fn cams_punch_log<'a>(page: &'a LogPage, device: &Device) -> CamsPunchLog<'a> {
    let log = log_rows(&page.events, device);
    CamsPunchLog {
        actual_row_count: page.actual_row_count.unwrap_or(log.len() as u64).to_string(),
        return_row_count: log.len().to_string(),
        offset: &page.next_offset,
        log,
    }
}
