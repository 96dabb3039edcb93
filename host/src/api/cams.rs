//! The Cams v3-compatible endpoint: `POST /external/api3.0/biometric?stgid=<device>`.
//!
//! The body is the Cams envelope (encrypted like the device's bodies when it has a key),
//! authenticated by the device's AuthToken. Operations are queued for the device and the
//! call waits up to `operations.cams_wait_ms` (or `?wait_ms=`) for the device's
//! confirmation; LoadLog is answered from the journal at once. Replies:
//! `{"Status","OperationID","StatusCode"}` plus `PunchLog`, `UserInfo`,
//! `DeviceInformation` or `ReturnCode` where they apply.
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::error::{ApiError, CamsStatus, ErrorBody};
use crate::delivery::cams_format::{format_cams_time, template_kind_name};
use crate::ingress::{authenticate_device, check_token, device_reply};
use crate::operations::cams::{CamsAction, parse};
use crate::operations::load_log::{LoadLogError, PunchQuery, cams_punch_log, load_page};
use crate::operations::service::{generate_operation_id, state_name};
use crate::operations::{SubmitError, Submitted};
use crate::plugin::bindings::types::{User, UserRole};
use crate::store::{Device, OperationRecord, OperationState};

/// The query string.
#[derive(Deserialize)]
pub struct CamsQuery {
    stgid: Option<String>,
    /// How long to wait for the device's confirmation (overrides `operations.cams_wait_ms`).
    wait_ms: Option<u64>,
}

#[utoipa::path(post, path = "/external/api3.0/biometric", tag = "cams",
    params(("stgid" = String, Query, description = "The device id"), ("wait_ms" = Option<u64>, Query, description = "Wait this long for the device's confirmation")),
    request_body(content = Object, description = "The Cams envelope `{\"<Verb>\":{\"<Object>\":..},\"OperationID\",\"AuthToken\",\"Time\"}` (docs/operations.md)"),
    responses(
        (status = 200, description = "`{Status, OperationID, StatusCode}` plus PunchLog, UserInfo, DeviceInformation or ReturnCode", body = Object),
        (status = 400, description = "Unreadable (1), wrong encryption (19), range over 30 days (42)", body = ErrorBody),
        (status = 401, description = "AuthToken refused (7)", body = ErrorBody),
        (status = 404, description = "Unknown stgid (2)", body = ErrorBody),
        (status = 409, description = "OperationID used by another request (43)", body = ErrorBody),
    ))]
/// `POST /external/api3.0/biometric`.
pub async fn biometric(
    State(state): State<AppState>,
    Query(query): Query<CamsQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let gw = &state.gateway;
    let authed = authenticate_device(&gw.registry, query.stgid.as_deref(), &body, false)?;
    let device = authed.device;
    let envelope: Value =
        serde_json::from_slice(&authed.plaintext).map_err(|e| ApiError::field("$", format!("unreadable JSON: {e}")))?;
    let claimed_id = envelope.get("OperationID").and_then(Value::as_str).map(str::to_string);
    let call =
        parse(&envelope).map_err(|(field, msg)| ApiError::field(field, msg).with_operation(claimed_id.clone()))?;
    check_token(&device, call.auth_token.as_deref()).map_err(|e| e.with_operation(claimed_id.clone()))?;

    let reply = match call.action {
        CamsAction::LoadPunchLog { span, offset } => {
            let id = call.operation_id.clone().unwrap_or_else(generate_operation_id);
            let page_size = gw.operations.settings.load_log_page_size;
            let query = PunchQuery {
                span: &span,
                offset: &offset,
                user_id: None,
                page_size,
                field_prefix: "Load.PunchLog.Filter",
            };
            let page = load_page(&gw.journal, &device, &query)
                .await
                .map_err(|e| load_log_error(e).with_operation(Some(id.clone())))?;
            json!({
                "Status": "done",
                "OperationID": id,
                "StatusCode": 0,
                "PunchLog": cams_punch_log(&page, &device),
            })
        }
        CamsAction::Operation(request) => {
            let submitted = gw
                .operations
                .submit(&device, call.operation_id.clone(), request, None)
                .await
                .map_err(|e| submit_error(e).with_operation(claimed_id.clone()))?;
            let wait = Duration::from_millis(query.wait_ms.unwrap_or(gw.operations.settings.cams_wait_ms).min(120_000));
            let record = if submitted.record.state.is_open() && !wait.is_zero() {
                gw.operations.wait(&submitted.record.id, wait).await?.unwrap_or(submitted.record.clone())
            } else {
                submitted.record.clone()
            };
            operation_reply(&record, &submitted, &device)
        }
    };
    device_reply(&device, serde_json::to_vec(&reply).map_err(ApiError::internal)?)
}

/// The reply for an operation as it stands.
fn operation_reply(record: &OperationRecord, submitted: &Submitted, device: &Device) -> Value {
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
    let offset = |t: crate::plugin::bindings::types::DeviceTime| {
        format_cams_time(crate::plugin::bindings::types::DeviceTime {
            utc_offset_minutes: device.utc_offset_minutes,
            ..t
        })
    };
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

/// The API error for a refused submission.
pub fn submit_error(error: SubmitError) -> ApiError {
    match error {
        SubmitError::Field((field, msg)) => ApiError::field(field, msg),
        SubmitError::DuplicateId(id) => ApiError::new(
            StatusCode::CONFLICT,
            CamsStatus::DuplicateOperation,
            format!("OperationID {id:?} is already used by a different request"),
        ),
        SubmitError::Store(e) => ApiError::internal(e),
    }
}

/// The API error for a refused LoadLog page.
pub fn load_log_error(error: LoadLogError) -> ApiError {
    match error {
        LoadLogError::Field((field, msg)) => ApiError::field(field, msg),
        LoadLogError::SpanTooLong => ApiError::new(
            StatusCode::BAD_REQUEST,
            CamsStatus::RangeTooLarge,
            "one request may cover at most 30 days; split the range",
        ),
        LoadLogError::Store(e) => ApiError::internal(e),
    }
}
