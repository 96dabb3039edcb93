//! The native protocol's command channel: `GET /device/v1/commands?stgid=<device>` hands
//! a device its queued commands, oldest first, holding the request open (long-poll) until
//! one is queued or `wait_ms` runs out, so a connected device receives a command within
//! milliseconds. Results come back as `command_result` events on `/device/v1/events`.
//! Specified in docs/device-protocol.md; names (`Fingerprint`, `Admin`) are spelt as in
//! the events the device sends.
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::device_auth::{bearer, check_token, device_reply, find_device};
use crate::plugin::bindings::types::{Command, CommandBody, TemplateKind, User, UserRole};
use crate::time::format_cams_time;
use crate::web::AppState;
use crate::web::error::{ApiError, CamsStatus, ErrorBody};
use crate::web::query::{self, ApiQuery};

/// Most commands in one reply unless the device asks for fewer.
pub const MAX_COMMANDS: usize = 16;

/// The query string.
#[derive(Deserialize)]
pub struct PollQuery {
    stgid: Option<String>,
    /// How long to hold the request open when nothing is queued (default 0: answer at
    /// once; at most `web::query::MAX_WAIT_MS`, larger is refused; held at most
    /// `operations.max_poll_wait_ms`).
    #[serde(default, deserialize_with = "query::wait_ms")]
    wait_ms: Option<u64>,
    /// Most commands to take (1 to 16).
    #[serde(default)]
    max: Option<usize>,
    /// The AuthToken, for devices that cannot set a header.
    #[serde(rename = "AuthToken", default)]
    auth_token: Option<String>,
}

/// One command as the device receives it.
#[derive(Debug, Serialize)]
pub struct WireCommand {
    pub operation_id: String,
    #[serde(flatten)]
    pub body: WireCommandBody,
}

/// What the device is asked to do (`type` says which).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WireCommandBody {
    UpsertUser {
        user: WireUser,
    },
    DeleteUser {
        user_id: String,
    },
    DeleteAllUsers,
    SetUserEnabled {
        user_id: String,
        enabled: bool,
    },
    DeleteTemplate {
        user_id: String,
        kind: TemplateKind,
        #[serde(skip_serializing_if = "Option::is_none")]
        index: Option<u32>,
    },
    UploadPunches {
        start_time: String,
        end_time: String,
    },
    ClearPunches,
    ClearPhotos,
    ClearAllData,
    GetDeviceInfo,
    GetUserInfo {
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    Reboot,
    SetTime {
        time: String,
    },
    SetOption {
        key: String,
        value: String,
    },
    UnlockDoor,
    StartEnrollment {
        user_id: String,
        kind: TemplateKind,
        #[serde(skip_serializing_if = "Option::is_none")]
        index: Option<u32>,
    },
}

/// A whole user record.
#[derive(Debug, Serialize)]
pub struct WireUser {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<UserRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    pub templates: Vec<WireTemplate>,
    /// Base64 JPEG.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photo: Option<String>,
}

/// One credential.
#[derive(Debug, Serialize)]
pub struct WireTemplate {
    pub kind: TemplateKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    pub data: String,
}

fn wire_user(user: User) -> WireUser {
    WireUser {
        user_id: user.user_id,
        first_name: user.first_name,
        last_name: user.last_name,
        role: user.role,
        enabled: user.enabled,
        valid_from: user.valid_from.map(format_cams_time),
        valid_until: user.valid_until.map(format_cams_time),
        templates: user
            .templates
            .into_iter()
            .map(|t| WireTemplate { kind: t.kind, index: t.index, data: t.data })
            .collect(),
        photo: user.photo.map(|p| base64::engine::general_purpose::STANDARD.encode(p)),
    }
}

impl From<Command> for WireCommand {
    fn from(command: Command) -> Self {
        let body = match command.body {
            CommandBody::UpsertUser(user) => WireCommandBody::UpsertUser { user: wire_user(user) },
            CommandBody::DeleteUser(user_id) => WireCommandBody::DeleteUser { user_id },
            CommandBody::DeleteAllUsers => WireCommandBody::DeleteAllUsers,
            CommandBody::SetUserEnabled((user_id, enabled)) => WireCommandBody::SetUserEnabled { user_id, enabled },
            CommandBody::DeleteTemplate(a) => {
                WireCommandBody::DeleteTemplate { user_id: a.user_id, kind: a.kind, index: a.index }
            }
            CommandBody::UploadPunches(range) => WireCommandBody::UploadPunches {
                start_time: format_cams_time(range.start),
                end_time: format_cams_time(range.end),
            },
            CommandBody::ClearPunches => WireCommandBody::ClearPunches,
            CommandBody::ClearPhotos => WireCommandBody::ClearPhotos,
            CommandBody::ClearAllData => WireCommandBody::ClearAllData,
            CommandBody::GetDeviceInfo => WireCommandBody::GetDeviceInfo,
            CommandBody::GetUserInfo(user_id) => WireCommandBody::GetUserInfo { user_id },
            CommandBody::Reboot => WireCommandBody::Reboot,
            CommandBody::SetTime(t) => WireCommandBody::SetTime { time: format_cams_time(t) },
            CommandBody::SetOption((key, value)) => WireCommandBody::SetOption { key, value },
            CommandBody::UnlockDoor => WireCommandBody::UnlockDoor,
            CommandBody::StartEnrollment(a) => {
                WireCommandBody::StartEnrollment { user_id: a.user_id, kind: a.kind, index: a.index }
            }
        };
        WireCommand { operation_id: command.operation_id, body }
    }
}

#[derive(Serialize)]
struct Reply {
    #[serde(rename = "Status")]
    status: &'static str,
    #[serde(rename = "StatusCode")]
    status_code: u16,
    commands: Vec<WireCommand>,
}

#[utoipa::path(get, path = "/device/v1/commands", tag = "device protocol",
    params(("stgid" = String, Query, min_length = 1, description = "The device id"), ("wait_ms" = Option<u64>, Query, maximum = 120000, description = "Hold the request open this long when nothing is queued (0 to 120000 ms, larger is refused; held at most `operations.max_poll_wait_ms`)"), ("max" = Option<usize>, Query, minimum = 1, maximum = 16, description = "Most commands to take (1-16)")),
    responses(
        (status = 200, description = "`{Status, StatusCode, commands: [{operation_id, type, ...}]}`, oldest first; now marked sent", body = Object),
        (status = 400, description = "Unreadable query string or a value out of range (1; `field` names the parameter)", body = ErrorBody),
        (status = 401, description = "AuthToken refused (7)", body = ErrorBody),
        (status = 404, description = "Unknown stgid (2)", body = ErrorBody),
    ))]
/// `GET /device/v1/commands`.
pub async fn poll(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PollQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let gw = &state.gateway;
    let device = find_device(&gw.registry, query.stgid.as_deref(), gw.config.config.server.auto_register)?;
    check_token(&device, bearer(&headers).or(query.auth_token.as_deref()))?;
    let max = query.max.unwrap_or(MAX_COMMANDS);
    if !(1..=MAX_COMMANDS).contains(&max) {
        return Err(ApiError::field("max", format!("must be between 1 and {MAX_COMMANDS}")));
    }
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0).min(gw.operations.settings.max_poll_wait_ms));
    // Native devices recognise an operation id they have already carried out.
    let commands = if wait.is_zero() {
        gw.operations.take_durably(&device.id, max, true).await?
    } else {
        gw.operations.wait_for_commands(&device, wait, max, true).await?
    };
    metrics::counter!("biogate_commands_sent_total").increment(commands.len() as u64);
    let reply = Reply {
        status: "done",
        status_code: CamsStatus::Done as u16,
        commands: commands.into_iter().map(WireCommand::from).collect(),
    };
    device_reply(&device, serde_json::to_vec(&reply).map_err(ApiError::internal)?)
}
