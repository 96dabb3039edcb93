//! The resource API for new integrations (bearer API key): operations on devices, the
//! users the gateway knows on each device, and punches queried by device, user and time.
//! Every operation of the catalogue goes through `POST /v1/devices/{id}/operations`; the
//! user routes are shorthands for the common ones.
use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::admin::Admin;
use crate::cams::names::{input_type_name, punch_type_name, template_kind_name};
use crate::operations::OperationRequest;
use crate::operations::catalogue::{TimeSpan, UserSpec};
use crate::operations::load_log::{PunchQuery, load_page};
use crate::operations::service::state_name;
use crate::plugin::bindings::types::{DeviceTime, EventBody, User, UserRole};
use crate::store::{Device, OperationRecord, OperationState, REQUEST_BYTES};
use crate::time::format_cams_time;
use crate::web::AppState;
use crate::web::error::{ApiError, CamsStatus, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::query::{self, ApiQuery, MAX_WAIT_MS};

/// An operation as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperationView {
    /// The OperationID.
    pub id: String,
    pub device_id: String,
    /// The catalogue name (`add_user`...).
    #[serde(rename = "type")]
    pub kind: String,
    pub state: OperationState,
    /// The request as validated.
    #[schema(value_type = Object)]
    pub request: serde_json::Value,
    /// The device's return code, once it answered (0: success).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_code: Option<i32>,
    /// What the device returned (device information...), and `Status`.
    pub details: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    /// When the command was last handed to the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at_ms: Option<u64>,
    /// How many times the command was handed to the device (more than once when its
    /// result was overdue: see `operations.redeliver_after_ms`).
    pub deliveries: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    /// The move/copy this operation is a step of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The steps of a move/copy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
    /// Users read from the directory (`load_user_info` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<UserView>>,
}

impl From<&OperationRecord> for OperationView {
    fn from(r: &OperationRecord) -> Self {
        OperationView {
            id: r.id.clone(),
            device_id: r.device_id.clone(),
            kind: r.kind.clone(),
            state: r.state,
            request: r.request.clone(),
            return_code: r.return_code,
            details: r.details.iter().cloned().collect(),
            message: r.message.clone(),
            created_at_ms: r.created_at_ms,
            expires_at_ms: r.expires_at_ms,
            sent_at_ms: r.sent_at_ms,
            deliveries: r.deliveries,
            finished_at_ms: r.finished_at_ms,
            parent: r.parent.clone(),
            steps: r.children.clone(),
            users: None,
        }
    }
}

/// A user as the gateway knows it on a device.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// `user` or `admin`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub enabled: bool,
    /// Time-bound access, in the device's offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// Credentials held: kind and slot (the template data is not shown).
    pub credentials: Vec<CredentialView>,
    pub has_photo: bool,
}

/// One credential held by a user.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialView {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
}

fn in_device_offset(t: DeviceTime, device: &Device) -> String {
    format_cams_time(DeviceTime { utc_offset_minutes: device.utc_offset_minutes, ..t })
}

fn user_view(u: &User, device: &Device) -> UserView {
    UserView {
        user_id: u.user_id.clone(),
        first_name: u.first_name.clone(),
        last_name: u.last_name.clone(),
        role: u.role.map(|r| if r == UserRole::Admin { "admin" } else { "user" }.to_string()),
        enabled: u.enabled.unwrap_or(true),
        valid_from: u.valid_from.map(|t| in_device_offset(t, device)),
        valid_until: u.valid_until.map(|t| in_device_offset(t, device)),
        credentials: u
            .templates
            .iter()
            .map(|t| CredentialView { kind: template_kind_name(t.kind).to_ascii_lowercase(), index: t.index })
            .collect(),
        has_photo: u.photo.is_some(),
    }
}

/// Options of a submission.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubmitQuery {
    /// Your id for the operation (1-64 of A-Z a-z 0-9 - _). Submitting the same id with
    /// the same request again returns the first submission (safe retries).
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub operation_id: Option<String>,
    /// Time to live: the operation expires if the device has not confirmed it by then.
    #[serde(default, deserialize_with = "query::int64")]
    #[param(minimum = 1)]
    pub ttl_seconds: Option<u64>,
    /// Wait up to this long for the device's confirmation before answering (0 to 120000
    /// ms; larger is refused).
    #[serde(default, deserialize_with = "query::wait_ms")]
    #[param(maximum = 120000)]
    pub wait_ms: Option<u64>,
}

fn device_of(state: &AppState, id: &str) -> Result<std::sync::Arc<Device>, ApiError> {
    state
        .gateway
        .registry
        .get(id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, CamsStatus::UnknownStgid, format!("no device {id:?}")))
}

async fn submit(
    state: &AppState,
    device_id: &str,
    request: OperationRequest,
    q: &SubmitQuery,
) -> Result<(StatusCode, Json<OperationView>), ApiError> {
    let gw = &state.gateway;
    let device = device_of(state, device_id)?;
    // A disabled device takes no commands (and a DELETE disables it first: nothing is
    // queued for a device on its way out).
    if !device.enabled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            CamsStatus::DeviceUnavailable,
            format!(
                "device {device_id:?} is disabled: enable it (PATCH /v1/devices/{device_id} {{\"enabled\": true}}) to queue operations"
            ),
        ));
    }
    if q.ttl_seconds == Some(0) {
        return Err(ApiError::field("ttl_seconds", "must be at least 1"));
    }
    let ttl = q.ttl_seconds.map(Duration::from_secs);
    gw.store.reserve().admit(REQUEST_BYTES)?;
    let submitted = gw.operations.submit(&device, q.operation_id.clone(), request, ttl).await?;
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(0).min(MAX_WAIT_MS));
    let record = if submitted.record.state.is_open() && !wait.is_zero() {
        gw.operations.wait(&submitted.record.id, wait).await?.unwrap_or(submitted.record.clone())
    } else {
        submitted.record.clone()
    };
    let mut view = OperationView::from(&record);
    view.users = submitted.users.as_ref().map(|users| users.iter().map(|u| user_view(u, &device)).collect());
    let status = if record.state.is_open() { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(view)))
}

/// Queue an operation of the catalogue for a device.
#[utoipa::path(post, path = "/v1/devices/{id}/operations", tag = "operations",
    params(("id" = String, Path, description = "The device id"), SubmitQuery),
    request_body = OperationRequest,
    responses(
        (status = 200, description = "Finished (the device confirmed, or the gateway answered)", body = OperationView),
        (status = 202, description = "Queued or sent; follow it at /v1/operations/{id}", body = OperationView),
        (status = 400, description = "A field is wrong (`field` names it)", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
        (status = 409, description = "The operation id is used by another request (43), or the device is disabled (5)", body = ErrorBody),
        (status = 503, description = "The disk is below its reserve (44): nothing queued; send again after `Retry-After`", body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn submit_operation(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<SubmitQuery>,
    ApiJson(request): ApiJson<OperationRequest>,
) -> Result<(StatusCode, Json<OperationView>), ApiError> {
    submit(&state, &id, request, &q).await
}

/// Paging by position.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Return items after this position (exclusive).
    #[serde(default, deserialize_with = "query::int64")]
    pub after: Option<u64>,
    /// At most this many (1 to 1000, default 100).
    #[serde(default, deserialize_with = "query::page_limit")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// A device's operations, oldest first.
#[utoipa::path(get, path = "/v1/devices/{id}/operations", tag = "operations",
    params(("id" = String, Path, description = "The device id"), ListQuery),
    responses((status = 200, description = "OK", body = Vec<OperationView>), (status = 400, description = "Unreadable query string or a value out of range (`field` names the parameter)", body = ErrorBody), (status = 404, description = "Not found", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_operations(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<OperationView>>, ApiError> {
    device_of(&state, &id)?;
    let records = state.gateway.operations.log().list(&id, q.after.unwrap_or(0), q.limit.unwrap_or(100))?;
    Ok(Json(records.iter().map(OperationView::from).collect()))
}

fn operation_not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, CamsStatus::Unreadable, format!("no operation {id:?}"))
}

/// One operation.
#[utoipa::path(get, path = "/v1/operations/{id}", tag = "operations",
    params(("id" = String, Path, description = "The OperationID")),
    responses((status = 200, description = "OK", body = OperationView), (status = 404, description = "Not found", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_operation(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<OperationView>, ApiError> {
    let record = state.gateway.operations.log().get(&id)?.ok_or_else(|| operation_not_found(&id))?;
    Ok(Json(OperationView::from(&record)))
}

/// Cancel an operation no device has taken yet.
#[utoipa::path(delete, path = "/v1/operations/{id}", tag = "operations",
    params(("id" = String, Path, description = "The OperationID")),
    responses(
        (status = 200, description = "Cancelled", body = OperationView),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Already sent to the device or finished", body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn cancel_operation(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<OperationView>, ApiError> {
    let before = state.gateway.operations.log().get(&id)?.ok_or_else(|| operation_not_found(&id))?;
    let was_queued = before.state == OperationState::Queued;
    if was_queued {
        state.gateway.store.reserve().admit(REQUEST_BYTES)?;
    }
    let record = match was_queued {
        true => state.gateway.operations.cancel(&id).await?.ok_or_else(|| operation_not_found(&id))?,
        false => before,
    };
    if !was_queued || record.state != OperationState::Cancelled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            CamsStatus::NotAllowed,
            format!("operation {id:?} is {} and can no longer be cancelled", state_name(record.state)),
        ));
    }
    Ok(Json(OperationView::from(&record)))
}

/// Users paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Return users whose id sorts after this one.
    pub after: Option<String>,
    /// At most this many (1 to 1000, default 100).
    #[serde(default, deserialize_with = "query::page_limit")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// The users the gateway knows on a device (from confirmed operations and enrolments the
/// device reported), in id order.
#[utoipa::path(get, path = "/v1/devices/{id}/users", tag = "users",
    params(("id" = String, Path, description = "The device id"), UserListQuery),
    responses((status = 200, description = "OK", body = Vec<UserView>), (status = 400, description = "Unreadable query string or a value out of range (`field` names the parameter)", body = ErrorBody), (status = 404, description = "Not found", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_users(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<UserListQuery>,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let device = device_of(&state, &id)?;
    let users = state.gateway.operations.users().list(&id, q.after.as_deref(), q.limit.unwrap_or(100))?;
    Ok(Json(users.iter().map(|u| user_view(u, &device)).collect()))
}

/// One user as the gateway knows it.
#[utoipa::path(get, path = "/v1/devices/{id}/users/{user_id}", tag = "users",
    params(("id" = String, Path, description = "The device id"), ("user_id" = String, Path, description = "The user id")),
    responses((status = 200, description = "OK", body = UserView), (status = 404, description = "Not found", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_user(
    _: Admin,
    State(state): State<AppState>,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Json<UserView>, ApiError> {
    let device = device_of(&state, &id)?;
    let user = state.gateway.operations.users().get(&id, &user_id)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            CamsStatus::Unreadable,
            format!("the gateway knows no user {user_id:?} on {id:?}"),
        )
    })?;
    Ok(Json(user_view(&user, &device)))
}

/// Add or update a user on a device (an `add_user` operation).
#[utoipa::path(put, path = "/v1/devices/{id}/users/{user_id}", tag = "users",
    params(("id" = String, Path, description = "The device id"), ("user_id" = String, Path, description = "The user id"), SubmitQuery),
    request_body(content = UserSpec, description = "`user_id` may be omitted (it is the path's)"),
    responses((status = 200, description = "OK", body = OperationView), (status = 202, description = "Accepted: queued or sent", body = OperationView), (status = 400, description = "A field is wrong (`field` names it)", body = ErrorBody), (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "The device is disabled (5)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn put_user(
    _: Admin,
    State(state): State<AppState>,
    Path((id, user_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<SubmitQuery>,
    ApiJson(mut body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<(StatusCode, Json<OperationView>), ApiError> {
    match body.get("user_id") {
        None => {
            body.insert("user_id".into(), user_id.clone().into());
        }
        Some(v) if v.as_str() == Some(user_id.as_str()) => {}
        Some(_) => return Err(ApiError::field("user_id", "differs from the user id in the path")),
    }
    let de = serde_json::Value::Object(body);
    let user: UserSpec = serde_path_to_error::deserialize(de)
        .map_err(|e| ApiError::field(e.path().to_string(), format!("unreadable JSON: {}", e.into_inner())))?;
    submit(&state, &id, OperationRequest::AddUser { user }, &q).await
}

/// Delete a user from a device (a `delete_user` operation).
#[utoipa::path(delete, path = "/v1/devices/{id}/users/{user_id}", tag = "users",
    params(("id" = String, Path, description = "The device id"), ("user_id" = String, Path, description = "The user id"), SubmitQuery),
    responses((status = 200, description = "OK", body = OperationView), (status = 202, description = "Accepted: queued or sent", body = OperationView), (status = 400, description = "Unreadable query string or a value out of range (`field` names the parameter)", body = ErrorBody), (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "The device is disabled (5)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete_user(
    _: Admin,
    State(state): State<AppState>,
    Path((id, user_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<SubmitQuery>,
) -> Result<(StatusCode, Json<OperationView>), ApiError> {
    submit(&state, &id, OperationRequest::DeleteUser { user_id }, &q).await
}

/// Block a user (a `block_user` operation).
#[utoipa::path(post, path = "/v1/devices/{id}/users/{user_id}/block", tag = "users",
    params(("id" = String, Path, description = "The device id"), ("user_id" = String, Path, description = "The user id"), SubmitQuery),
    responses((status = 200, description = "OK", body = OperationView), (status = 202, description = "Accepted: queued or sent", body = OperationView), (status = 400, description = "Unreadable query string or a value out of range (`field` names the parameter)", body = ErrorBody), (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "The device is disabled (5)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn block_user(
    _: Admin,
    State(state): State<AppState>,
    Path((id, user_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<SubmitQuery>,
) -> Result<(StatusCode, Json<OperationView>), ApiError> {
    submit(&state, &id, OperationRequest::BlockUser { user_id }, &q).await
}

/// Unblock a user (an `unblock_user` operation).
#[utoipa::path(post, path = "/v1/devices/{id}/users/{user_id}/unblock", tag = "users",
    params(("id" = String, Path, description = "The device id"), ("user_id" = String, Path, description = "The user id"), SubmitQuery),
    responses((status = 200, description = "OK", body = OperationView), (status = 202, description = "Accepted: queued or sent", body = OperationView), (status = 400, description = "Unreadable query string or a value out of range (`field` names the parameter)", body = ErrorBody), (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "The device is disabled (5)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn unblock_user(
    _: Admin,
    State(state): State<AppState>,
    Path((id, user_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<SubmitQuery>,
) -> Result<(StatusCode, Json<OperationView>), ApiError> {
    submit(&state, &id, OperationRequest::UnblockUser { user_id }, &q).await
}

/// A punch query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PunchesQuery {
    /// Start of the log-time range (`YYYY-MM-DD HH:MM:SS`, optionally `GMT +HHMM`, or RFC
    /// 3339; the device's offset when omitted).
    #[param(min_length = 1)]
    pub start_time: String,
    /// End of the range (inclusive); at most 30 days after the start.
    #[param(min_length = 1)]
    pub end_time: String,
    /// Only this user's punches.
    pub user_id: Option<String>,
    /// `next_offset` of the previous page.
    pub offset: Option<String>,
    /// Page size (1 to 5000, default 500).
    #[serde(default, deserialize_with = "query::punch_page_limit")]
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<usize>,
}

/// One punch.
#[derive(Debug, Serialize, ToSchema)]
pub struct PunchView {
    pub event_id: String,
    pub sequence: u64,
    pub user_id: String,
    /// In the device's offset.
    pub log_time: String,
    /// CheckIn, CheckOut, BreakOut, BreakIn, OverTimeIn, OverTimeOut, MealIn, MealOut.
    pub punch_type: String,
    /// Fingerprint, Face, Palm, FingerVein, Iris, Retina, Card, Password, Unknown.
    pub input_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_mask: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_code: Option<String>,
    pub received_at_ms: u64,
}

/// A page of punches.
#[derive(Debug, Serialize, ToSchema)]
pub struct PunchPage {
    /// Punches in the whole range as of the first page (absent with `user_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    pub punches: Vec<PunchView>,
    /// Pass as `offset` for the next page; empty on the last page.
    pub next_offset: String,
}

/// A device's punches by log time (from the journal), paged without skips or repeats.
#[utoipa::path(get, path = "/v1/devices/{id}/punches", tag = "punches",
    params(("id" = String, Path, description = "The device id"), PunchesQuery),
    responses(
        (status = 200, description = "OK", body = PunchPage),
        (status = 400, description = "A bad time, offset, query parameter (`field` names it) or a range over 30 days", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn punches(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PunchesQuery>,
) -> Result<Json<PunchPage>, ApiError> {
    let device = device_of(&state, &id)?;
    let span = TimeSpan { start_time: q.start_time.clone(), end_time: q.end_time.clone() };
    let query = PunchQuery {
        span: &span,
        offset: q.offset.as_deref().unwrap_or(""),
        user_id: q.user_id.as_deref(),
        page_size: q.limit.unwrap_or(500),
        field_prefix: "query",
    };
    let page = load_page(&state.gateway.journal, &device, &query).await?;
    let punches = page
        .events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Punch(p) => Some(PunchView {
                event_id: e.id.clone(),
                sequence: e.sequence,
                user_id: p.user_id.clone(),
                log_time: in_device_offset(p.log_time, &device),
                punch_type: punch_type_name(p.punch_type).to_string(),
                input_type: input_type_name(p.input_type).to_string(),
                temperature: p.temperature,
                face_mask: p.face_mask,
                work_code: p.work_code.clone(),
                received_at_ms: e.received_at_ms,
            }),
            _ => None,
        })
        .collect();
    Ok(Json(PunchPage { total: page.actual_row_count, punches, next_offset: page.next_offset }))
}
