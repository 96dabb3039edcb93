//! The Cams v3-compatible endpoint: `POST /external/api3.0/biometric?stgid=<device>`.
//!
//! The body is the Cams envelope (encrypted like the device's bodies when it has a key),
//! authenticated by the device's AuthToken. Operations are queued for the device and the
//! call waits up to `operations.cams_wait_ms` (or `?wait_ms=`) for the device's
//! confirmation; LoadLog is answered from the journal at once. Replies:
//! `{"Status","OperationID","StatusCode"}` plus `PunchLog`, `UserInfo`,
//! `DeviceInformation` or `ReturnCode` where they apply; once the body decrypted, error
//! replies are encrypted too.
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cams::envelope::{CamsAction, parse};
use crate::cams::reply::{cams_punch_log, operation_reply};
use crate::ingress::{authenticate_device, check_token, device_error, device_reply};
use crate::operations::load_log::{PunchQuery, load_page};
use crate::operations::service::generate_operation_id;
use crate::store::{Device, REQUEST_BYTES};
use crate::web::AppState;
use crate::web::error::{ApiError, CamsStatus, ErrorBody};
use crate::web::query::{self, ApiQuery, MAX_WAIT_MS};

/// The query string.
#[derive(Deserialize)]
pub struct CamsQuery {
    stgid: Option<String>,
    /// How long to wait for the device's confirmation (overrides `operations.cams_wait_ms`;
    /// at most [`MAX_WAIT_MS`], larger is refused).
    #[serde(default, deserialize_with = "query::wait_ms")]
    wait_ms: Option<u64>,
}

#[utoipa::path(post, path = "/external/api3.0/biometric", tag = "cams",
    params(("stgid" = String, Query, min_length = 1, description = "The device id"), ("wait_ms" = Option<u64>, Query, maximum = 120000, description = "Wait this long for the device's confirmation (0 to 120000 ms; larger is refused)")),
    request_body(content = Object, description = "The Cams envelope `{\"<Verb>\":{\"<Object>\":..},\"OperationID\",\"AuthToken\",\"Time\"}` (docs/operations.md)"),
    responses(
        (status = 200, description = "`{Status, OperationID, StatusCode}` plus PunchLog, UserInfo, DeviceInformation or ReturnCode", body = Object),
        (status = 400, description = "Unreadable body or query string (1), wrong encryption (19), range over 30 days (42)", body = ErrorBody),
        (status = 401, description = "AuthToken refused (7)", body = ErrorBody),
        (status = 404, description = "Unknown stgid (2)", body = ErrorBody),
        (status = 409, description = "OperationID used by another request (43); with `operations.cams_offline_code`, the device has not been heard from within `operations.offline_after_ms` (5): nothing queued", body = ErrorBody),
        (status = 503, description = "The disk is below its reserve (44): nothing queued; send again after `Retry-After`", body = ErrorBody),
    ))]
/// `POST /external/api3.0/biometric`.
///
/// Refusals before the body is decrypted (unknown stgid, a disabled device, a body that
/// does not match the device's encryption: 19) are plain JSON; once the body decrypted,
/// every reply, errors included, is encrypted in the device's mode.
pub async fn biometric(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<CamsQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let authed = authenticate_device(&state.gateway.registry, query.stgid.as_deref(), &body, false)?;
    let device = authed.device;
    match answer(&state, &query, &device, &authed.plaintext).await {
        Ok(reply) => device_reply(&device, serde_json::to_vec(&reply).map_err(ApiError::internal)?),
        Err(error) => Ok(device_error(&device, error)),
    }
}

/// The reply to a decrypted call of `device`.
async fn answer(state: &AppState, query: &CamsQuery, device: &Device, plaintext: &[u8]) -> Result<Value, ApiError> {
    let gw = &state.gateway;
    let envelope: Value =
        serde_json::from_slice(plaintext).map_err(|e| ApiError::field("$", format!("unreadable JSON: {e}")))?;
    let claimed_id = envelope.get("OperationID").and_then(Value::as_str).map(str::to_string);
    let call = parse(&envelope).map_err(|e| ApiError::from(e).with_operation(claimed_id.clone()))?;
    check_token(device, call.auth_token.as_deref()).map_err(|e| e.with_operation(claimed_id.clone()))?;

    Ok(match call.action {
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
            let page = load_page(&gw.journal, device, &query)
                .await
                .map_err(|e| ApiError::from(e).with_operation(Some(id.clone())))?;
            json!({
                "Status": "done",
                "OperationID": id,
                "StatusCode": 0,
                "PunchLog": cams_punch_log(&page, device),
            })
        }
        CamsAction::Operation(request) => {
            if gw.operations.settings.cams_offline_code && !gw.operations.device_seen(&device.id) {
                return Err(offline(device, gw.operations.settings.offline_after_ms).with_operation(claimed_id));
            }
            gw.store
                .reserve()
                .admit(REQUEST_BYTES)
                .map_err(|e| ApiError::from(e).with_operation(claimed_id.clone()))?;
            let submitted = gw
                .operations
                .submit(device, call.operation_id.clone(), request, None)
                .await
                .map_err(|e| ApiError::from(e).with_operation(claimed_id.clone()))?;
            let wait =
                Duration::from_millis(query.wait_ms.unwrap_or(gw.operations.settings.cams_wait_ms).min(MAX_WAIT_MS));
            let record = if submitted.record.state.is_open() && !wait.is_zero() {
                gw.operations.wait(&submitted.record.id, wait).await?.unwrap_or(submitted.record.clone())
            } else {
                submitted.record.clone()
            };
            operation_reply(&record, &submitted, device)
        }
    })
}

/// The refusal of an operation for a device not heard from within its offline window
/// (`operations.cams_offline_code`): 409, code 5, nothing queued.
fn offline(device: &Device, window_ms: u64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        CamsStatus::DeviceUnavailable,
        format!(
            "device {:?} has not been heard from for {} s (operations.offline_after_ms) and counts as offline; nothing was queued",
            device.id,
            window_ms / 1000
        ),
    )
}
