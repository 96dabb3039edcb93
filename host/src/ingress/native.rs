//! The native device protocol: `POST /device/v1/events?stgid=<device>` with a JSON list of
//! events, authenticated by the device's AuthToken, answered only once the events are
//! durable. Specified in docs/device-protocol.md.
use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::device_auth::{authenticate_device, bearer, check_token, device_reply};
use crate::plugin::bindings::types::{
    CommandResult, DeviceStatus, DeviceTime, EventBody, InputType, Punch, PunchType, Template, TemplateKind, User,
    UserRole, UserUpdate,
};
use crate::store::Device;
use crate::time::parse_cams_time_with_default;
use crate::web::AppState;
use crate::web::error::{ApiError, CamsStatus, ErrorBody};
use crate::web::query::ApiQuery;

/// Most events in one request.
pub const MAX_EVENTS: usize = 1000;

/// The query string.
#[derive(Deserialize)]
pub struct DeviceQuery {
    stgid: Option<String>,
}

/// The request body (after decryption).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Upload {
    /// The device's AuthToken, when not sent as `Authorization: Bearer`.
    #[serde(rename = "AuthToken", default)]
    auth_token: Option<String>,
    events: Vec<WireEvent>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum WireEvent {
    Punch {
        user_id: String,
        log_time: String,
        #[serde(default = "check_in")]
        punch_type: PunchType,
        #[serde(default = "unknown_input")]
        input_type: InputType,
        #[serde(default)]
        temperature: Option<f32>,
        #[serde(default)]
        face_mask: Option<bool>,
        #[serde(default)]
        work_code: Option<String>,
        /// Base64 JPEG.
        #[serde(default)]
        photo: Option<String>,
    },
    UserUpdate {
        user: WireUser,
        operation_time: String,
    },
    Status {
        online: bool,
        #[serde(default)]
        info: BTreeMap<String, String>,
    },
    CommandResult {
        operation_id: String,
        return_code: i32,
        #[serde(default)]
        details: BTreeMap<String, String>,
    },
}

fn check_in() -> PunchType {
    PunchType::CheckIn
}

fn unknown_input() -> InputType {
    InputType::Unknown
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireUser {
    user_id: String,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    role: Option<UserRole>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    templates: Vec<WireTemplate>,
    #[serde(default)]
    photo: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireTemplate {
    kind: TemplateKind,
    #[serde(default)]
    index: Option<u32>,
    data: String,
}

/// One stored event in the reply.
#[derive(Serialize)]
struct Stored {
    id: String,
    sequence: u64,
    duplicate: bool,
}

#[derive(Serialize)]
struct Reply {
    #[serde(rename = "Status")]
    status: &'static str,
    #[serde(rename = "StatusCode")]
    status_code: u16,
    accepted: usize,
    duplicates: usize,
    events: Vec<Stored>,
}

/// The upload in `plaintext`. Read without tracking where it is first (every punch goes
/// through here); only a body that fails is read again to name the field at fault.
fn read_upload(plaintext: &[u8]) -> Result<Upload, ApiError> {
    // Both refuse anything after the object but whitespace: a second upload in the same
    // body would otherwise be acknowledged and dropped.
    if let Ok(upload) = serde_json::from_slice::<Upload>(plaintext) {
        return Ok(upload);
    }
    let mut de = serde_json::Deserializer::from_slice(plaintext);
    let upload: Upload = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::field(path, format!("unreadable JSON: {}", e.into_inner()))
    })?;
    de.end().map_err(|e| ApiError::field(".", format!("unreadable JSON: {e}")))?;
    Ok(upload)
}

/// Reads an upload body (decrypted): checks the AuthToken (`bearer` when the transport
/// carried one, else the body's) and turns its events into canonical bodies. Errors name
/// the field (`events[2].log_time`).
pub fn parse_upload(device: &Device, plaintext: &[u8], bearer: Option<&str>) -> Result<Vec<EventBody>, ApiError> {
    let upload = read_upload(plaintext)?;
    check_token(device, bearer.or(upload.auth_token.as_deref()))?;
    if upload.events.is_empty() {
        return Err(ApiError::field("events", "the list is empty"));
    }
    if upload.events.len() > MAX_EVENTS {
        return Err(ApiError::field("events", format!("at most {MAX_EVENTS} events per request")));
    }
    upload
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| to_body(e, device).map_err(|e| ApiError::from(e.within(&format!("events[{i}]")))))
        .collect()
}

#[utoipa::path(post, path = "/device/v1/events", tag = "device protocol",
    params(("stgid" = String, Query, min_length = 1, description = "The device id")),
    request_body(content = Object, description = "`{\"AuthToken\"?, \"events\": [...]}` (docs/device-protocol.md); encrypted for devices with a key"),
    responses(
        (status = 200, description = "Stored durably: `{Status, StatusCode, accepted, duplicates, events}`", body = Object),
        (status = 400, description = "Unreadable body or query string (1), or wrong encryption (19)", body = ErrorBody),
        (status = 401, description = "AuthToken refused (7)", body = ErrorBody),
        (status = 404, description = "Unknown stgid (2)", body = ErrorBody),
        (status = 503, description = "The disk is below its reserve (44): nothing stored; send again after `Retry-After`", body = ErrorBody),
    ))]
/// `POST /device/v1/events`.
pub async fn upload(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DeviceQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let gw = &state.gateway;
    let authed =
        authenticate_device(&gw.registry, query.stgid.as_deref(), &body, gw.config.config.server.auto_register)?;
    let device = authed.device;
    let bodies = parse_upload(&device, &authed.plaintext, bearer(&headers))?;
    let appended = gw.ingest.accept(&device, bodies).await?;
    let reply = Reply {
        status: "done",
        status_code: CamsStatus::Done as u16,
        accepted: appended.stored(),
        duplicates: appended.duplicates(),
        events: appended
            .events
            .into_iter()
            .map(|(id, sequence, duplicate)| Stored { id, sequence, duplicate })
            .collect(),
    };
    let json = serde_json::to_vec(&reply).map_err(ApiError::internal)?;
    device_reply(&device, json)
}

use crate::field::{FieldError, check_user_id};

fn time(field: &str, text: &str, device: &Device) -> Result<DeviceTime, FieldError> {
    parse_cams_time_with_default(text, device.utc_offset_minutes)
        .map_err(|e| FieldError::new(field, format!("{text:?}: {e}")))
}

fn photo(field: &str, data: Option<String>) -> Result<Option<Vec<u8>>, FieldError> {
    data.map(|b64| {
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| FieldError::new(field, format!("not base64: {e}")))
    })
    .transpose()
}

fn nonempty(field: &str, value: &str) -> Result<(), FieldError> {
    if value.trim().is_empty() || value.len() > 64 {
        return Err(FieldError::new(field, "must be 1 to 64 characters"));
    }
    Ok(())
}

fn to_body(event: WireEvent, device: &Device) -> Result<EventBody, FieldError> {
    Ok(match event {
        WireEvent::Punch { user_id, log_time, punch_type, input_type, temperature, face_mask, work_code, photo: p } => {
            check_user_id("user_id", &user_id)?;
            if temperature.is_some_and(|t| !(20.0..=50.0).contains(&t)) {
                return Err(FieldError::new("temperature", "must be between 20 and 50 (degrees Celsius)"));
            }
            EventBody::Punch(Punch {
                user_id,
                log_time: time("log_time", &log_time, device)?,
                punch_type,
                input_type,
                temperature,
                face_mask,
                work_code,
                photo: photo("photo", p)?,
            })
        }
        WireEvent::UserUpdate { user, operation_time } => {
            check_user_id("user.user_id", &user.user_id)?;
            EventBody::UserUpdate(UserUpdate {
                operation_time: time("operation_time", &operation_time, device)?,
                user: User {
                    user_id: user.user_id,
                    first_name: user.first_name,
                    last_name: user.last_name,
                    role: user.role,
                    enabled: user.enabled,
                    valid_from: None,
                    valid_until: None,
                    templates: user
                        .templates
                        .into_iter()
                        .map(|t| Template { kind: t.kind, index: t.index, data: t.data })
                        .collect(),
                    photo: photo("user.photo", user.photo)?,
                },
            })
        }
        WireEvent::Status { online, info } => {
            EventBody::DeviceStatus(DeviceStatus { online, info: info.into_iter().collect() })
        }
        WireEvent::CommandResult { operation_id, return_code, details } => {
            nonempty("operation_id", &operation_id)?;
            EventBody::CommandResult(CommandResult {
                operation_id,
                return_code,
                details: details.into_iter().collect(),
            })
        }
    })
}
