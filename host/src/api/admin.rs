//! The admin API under `/v1` (bearer API key): devices, their events, delivery attempts,
//! dead letters, replay, and re-enabling a route that a receiver disabled with 410.
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::crypto::EncryptionMode;
use crate::store::{Attempt, DeadLetter, Device, DeviceChanges, DeviceState, REQUEST_BYTES};
use crate::web::AppState;
use crate::web::error::{ApiError, CamsStatus, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::query::{self, ApiQuery};

/// Proof that the request carried a valid admin API key.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let ok = state.gateway.admin_keys.iter().any(|k| bool::from(k.as_bytes().ct_eq(presented.as_bytes())));
        if ok {
            Ok(Admin)
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                CamsStatus::AuthTokenRefused,
                "a valid admin API key is required (Authorization: Bearer <key>)",
            ))
        }
    }
}

/// A device as the admin API shows it (secrets included: this is the operator's API).
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    id: String,
    label: String,
    auth_token: String,
    security_key: Option<String>,
    encryption: EncryptionMode,
    time_zone: String,
    enabled: bool,
    state: DeviceState,
    routes: Option<Vec<String>>,
}

fn offset_text(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", minutes.abs() / 60, minutes.abs() % 60)
}

impl From<&Device> for DeviceView {
    fn from(d: &Device) -> Self {
        DeviceView {
            id: d.id.clone(),
            label: d.label.clone(),
            auth_token: d.auth_token.clone(),
            security_key: d.security_key.clone(),
            encryption: d.encryption,
            time_zone: offset_text(d.utc_offset_minutes),
            enabled: d.enabled,
            state: d.state,
            routes: d.routes.clone(),
        }
    }
}

fn route_names(state: &AppState) -> Vec<String> {
    state.gateway.dispatcher.routes().iter().map(|r| r.name.clone()).collect()
}

/// 404 for a route name that is not in the config, naming the field that holds it.
fn no_route(field: &str, name: &str) -> ApiError {
    ApiError {
        field: Some(field.into()),
        ..ApiError::new(StatusCode::NOT_FOUND, CamsStatus::Unreadable, format!("no route named {name:?}"))
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, CamsStatus::UnknownStgid, format!("no device {id:?}"))
}

/// `GET /v1/devices`
#[utoipa::path(get, path = "/v1/devices", tag = "devices", responses((status = 200, description = "OK", body = Vec<DeviceView>)), security(("api_key" = [])))]
pub async fn list_devices(_: Admin, State(state): State<AppState>) -> Json<Vec<DeviceView>> {
    Json(state.gateway.registry.list().iter().map(|d| DeviceView::from(d.as_ref())).collect())
}

/// `POST /v1/devices`
#[utoipa::path(post, path = "/v1/devices", tag = "devices", request_body = DeviceChanges, responses((status = 201, description = "Created", body = DeviceView), (status = 400, description = "A field is wrong (`field` names it)", body = ErrorBody), (status = 409, description = "Conflict", body = ErrorBody)), security(("api_key" = [])))]
pub async fn create_device(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<DeviceChanges>,
) -> Result<(StatusCode, Json<DeviceView>), ApiError> {
    let id = input.id.clone().ok_or_else(|| ApiError::field("id", "required"))?;
    if state.gateway.registry.get(&id).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            CamsStatus::NotAllowed,
            format!("device {id:?} exists; use PATCH"),
        ));
    }
    let device = input.apply(&id, None, &route_names(&state))?;
    let device = state.gateway.registry.put(device)?;
    Ok((StatusCode::CREATED, Json(DeviceView::from(device.as_ref()))))
}

/// `GET /v1/devices/{id}`
#[utoipa::path(get, path = "/v1/devices/{id}", tag = "devices", params(("id" = String, Path, description = "The device id")), responses((status = 200, description = "OK", body = DeviceView), (status = 404, description = "Not found", body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_device(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeviceView>, ApiError> {
    let device = state.gateway.registry.get(&id).ok_or_else(|| not_found(&id))?;
    Ok(Json(DeviceView::from(device.as_ref())))
}

/// `PATCH /v1/devices/{id}`. A route put on the device for the first time starts after
/// its last stored event (the route's `start = "now"`, the default) or at its oldest
/// (`"oldest"`). A route taken off the device gets none of its events from then on (not
/// even those still waiting for it); put back, it resumes where it stopped.
#[utoipa::path(patch, path = "/v1/devices/{id}", tag = "devices", params(("id" = String, Path, description = "The device id")), request_body = DeviceChanges, responses((status = 200, description = "OK", body = DeviceView), (status = 400, description = "A field is wrong (`field` names it)", body = ErrorBody), (status = 404, description = "Not found", body = ErrorBody)), security(("api_key" = [])))]
pub async fn update_device(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<DeviceChanges>,
) -> Result<Json<DeviceView>, ApiError> {
    let current = state.gateway.registry.get(&id).ok_or_else(|| not_found(&id))?;
    if input.id.as_ref().is_some_and(|body_id| *body_id != id) {
        return Err(ApiError::field("id", "differs from the device id in the path (a device cannot be renamed)"));
    }
    let device = input.apply(&id, Some(&current), &route_names(&state))?;
    // Below the disk reserve nothing of it is written (the routes' starts neither).
    state.gateway.store.reserve().admit(REQUEST_BYTES)?;
    // A route put on the device starts where its `start` says, before the device's next
    // event can reach it.
    state.gateway.dispatcher.attach(Some(&current), &device)?;
    let device = state.gateway.registry.put(device)?;
    // A route put (back) on the device delivers what waits for it now, not at the next punch.
    state.gateway.dispatcher.ensure(&device);
    Ok(Json(DeviceView::from(device.as_ref())))
}

/// `POST /v1/devices/{id}/approve`: a pending (auto-registered) device may send.
#[utoipa::path(post, path = "/v1/devices/{id}/approve", tag = "devices", params(("id" = String, Path, description = "The device id")), responses((status = 200, description = "OK", body = DeviceView), (status = 404, description = "Not found", body = ErrorBody)), security(("api_key" = [])))]
pub async fn approve_device(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeviceView>, ApiError> {
    let mut device = state.gateway.registry.get(&id).ok_or_else(|| not_found(&id))?.as_ref().clone();
    device.state = DeviceState::Approved;
    let device = state.gateway.registry.put(device)?;
    Ok(Json(DeviceView::from(device.as_ref())))
}

/// `DELETE /v1/devices/{id}`: the device and its journal. Its events are gone, delivered or
/// not (its key and routes go with it): a device registered again under the same id, which
/// may be someone else's, starts with an empty history (LoadLog, events, replays) and gets
/// none of the old registration's events. Its open operations fail (return code -9003;
/// queued steps of a move or copy on other devices are cancelled), its open long polls end
/// empty, and what the gateway knew of its users (templates, photos) is forgotten. The
/// operator's records stay: closed operation records (with their requests) and delivery
/// attempts. The device is disabled first and removed last, so a DELETE that failed half
/// way can be sent again, and the id cannot be registered again meanwhile (409). Plugin
/// key/value state (e.g. ADMS's) is the plugin's and is not touched.
#[utoipa::path(delete, path = "/v1/devices/{id}", tag = "devices", params(("id" = String, Path, description = "The device id")), responses((status = 204, description = "Done"), (status = 404, description = "Not found", body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete_device(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let gw = &state.gateway;
    let device = gw.registry.get(&id).ok_or_else(|| not_found(&id))?;
    // Below the disk reserve the whole DELETE is refused before its first write.
    gw.store.reserve().admit(REQUEST_BYTES)?;
    // Disabled first (durably): the device can send nothing more, its long polls end, and
    // the id cannot be registered again until its data is gone. A DELETE that failed
    // half-way can be sent again.
    if device.enabled {
        gw.registry.put(Device { enabled: false, ..(*device).clone() })?;
    }
    gw.dispatcher.stop_device(&id);
    // Its open operations end without being announced on it. A worker started again
    // before they all ended (the sweeper announcing an expiry of one of them) is stopped
    // once more afterwards; its operations, all ended, start none then.
    let operations = gw.operations.forget_device(&id).await?;
    gw.dispatcher.stop_device(&id);
    let journal = gw.journal.clone();
    let purged = {
        let id = id.clone();
        tokio::task::spawn_blocking(move || journal.purge(&id)).await.map_err(ApiError::internal)??
    };
    gw.journal.durable().await?;
    let deliveries = gw.delivery_log.forget_device(&id, &route_names(&state))?;
    gw.registry.remove(&id)?;
    tracing::info!(
        device = %id,
        purged,
        operations,
        deliveries,
        "device deleted with its journal, users, open operations and delivery records"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Paging by sequence.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeqRange {
    /// Items after this sequence (exclusive; default 0).
    #[serde(default, deserialize_with = "query::int64")]
    after: Option<u64>,
    /// Items up to this sequence (inclusive; default: the last).
    #[serde(default, deserialize_with = "query::int64")]
    to: Option<u64>,
    /// At most this many (1 to 1000, default 100).
    #[serde(default, deserialize_with = "query::page_limit")]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// `GET /v1/devices/{id}/events?after=&to=&limit=`: the journal, in order.
#[utoipa::path(get, path = "/v1/devices/{id}/events", tag = "deliveries", params(("id" = String, Path, description = "The device id"), SeqRange), responses((status = 200, description = "`{\"events\": [...]}`: journal events in order", body = Object), (status = 400, description = "Unreadable query string or a value out of range (`field` names the parameter)", body = ErrorBody), (status = 404, description = "No such device (2)", body = ErrorBody)), security(("api_key" = [])))]
pub async fn device_events(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<SeqRange>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.gateway.registry.get(&id).ok_or_else(|| not_found(&id))?;
    let events =
        state.gateway.journal.read(&id, q.after.unwrap_or(0), q.to.unwrap_or(u64::MAX), q.limit.unwrap_or(100))?;
    Ok(Json(serde_json::json!({ "events": events })))
}

/// `GET /v1/devices/{id}/deliveries?after=&to=&limit=`: every attempt, oldest first.
#[utoipa::path(get, path = "/v1/devices/{id}/deliveries", tag = "deliveries", params(("id" = String, Path, description = "The device id"), SeqRange), responses((status = 200, description = "OK", body = Vec<Attempt>), (status = 400, description = "Unreadable query string or a value out of range (`field` names the parameter)", body = ErrorBody), (status = 404, description = "No such device (2)", body = ErrorBody)), security(("api_key" = [])))]
pub async fn device_deliveries(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<SeqRange>,
) -> Result<Json<Vec<Attempt>>, ApiError> {
    state.gateway.registry.get(&id).ok_or_else(|| not_found(&id))?;
    Ok(Json(state.gateway.delivery_log.attempts(
        &id,
        q.after.unwrap_or(0),
        q.to.unwrap_or(u64::MAX),
        q.limit.unwrap_or(100),
    )?))
}

/// Which dead letters.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    #[serde(default)]
    route: Option<String>,
    /// At most this many (1 to 1000, default 100).
    #[serde(default, deserialize_with = "query::page_limit")]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// `GET /v1/dead-letters?route=`
#[utoipa::path(get, path = "/v1/dead-letters", tag = "deliveries", params(DeadLetterQuery), responses((status = 200, description = "OK", body = Vec<DeadLetter>), (status = 400, description = "Unreadable query string or a value out of range (`field` names the parameter)", body = ErrorBody)), security(("api_key" = [])))]
pub async fn dead_letters(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeadLetterQuery>,
) -> Result<Json<Vec<DeadLetter>>, ApiError> {
    Ok(Json(state.gateway.delivery_log.dead_letters(q.route.as_deref(), q.limit.unwrap_or(100))?))
}

/// A replay request: one event (`sequence`), or a range of received times.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    route: String,
    device: String,
    #[serde(default)]
    sequence: Option<u64>,
    /// Milliseconds since the epoch (received time), inclusive.
    #[serde(default)]
    from_ms: Option<u64>,
    #[serde(default)]
    to_ms: Option<u64>,
}

/// `POST /v1/replay`: delivers stored events again through the normal path.
#[utoipa::path(post, path = "/v1/replay", tag = "deliveries", request_body = ReplayRequest, responses((status = 200, description = "`{\"queued\": n}`", body = Object), (status = 400, description = "A field is wrong (`field` names it)", body = ErrorBody), (status = 404, description = "No such route or device (`field` names it)", body = ErrorBody)), security(("api_key" = [])))]
pub async fn replay(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ReplayRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let gw = &state.gateway;
    if !route_names(&state).contains(&req.route) {
        return Err(no_route("route", &req.route));
    }
    let device = gw.registry.get(&req.device).ok_or_else(|| not_found(&req.device))?;
    gw.store.reserve().admit(REQUEST_BYTES)?;
    let mut queued = 0;
    match (req.sequence, req.from_ms, req.to_ms) {
        (Some(seq), None, None) => {
            if gw.journal.get(&req.device, seq)?.is_none() {
                return Err(ApiError::field("sequence", format!("no event {seq} for this device")));
            }
            gw.delivery_log.request_replay(&req.route, &req.device, seq)?;
            queued = 1;
        }
        (None, Some(from), Some(to)) if from <= to => {
            let mut after = 0;
            loop {
                let page = gw.journal.read(&req.device, after, u64::MAX, 1000)?;
                let Some(last) = page.last() else { break };
                after = last.sequence;
                for event in page.iter().filter(|e| (from..=to).contains(&e.received_at_ms)) {
                    gw.delivery_log.request_replay(&req.route, &req.device, event.sequence)?;
                    queued += 1;
                }
            }
        }
        _ => return Err(ApiError::field("sequence", "give either `sequence`, or `from_ms` <= `to_ms`")),
    }
    gw.dispatcher.ensure(&device);
    Ok(Json(serde_json::json!({ "queued": queued })))
}

/// `GET /v1/routes`: each route, its signing secret and whether it is disabled.
#[utoipa::path(get, path = "/v1/routes", tag = "deliveries", responses((status = 200, description = "Each route: name, signing_secret, disabled", body = Vec<Object>)), security(("api_key" = [])))]
pub async fn list_routes(_: Admin, State(state): State<AppState>) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let gw = &state.gateway;
    let mut out = Vec::new();
    for route in gw.dispatcher.routes() {
        out.push(serde_json::json!({
            "name": route.name,
            "signing_secret": gw.route_secrets.get(&route.name),
            "disabled": gw.delivery_log.route_disabled(&route.name)?,
        }));
    }
    Ok(Json(out))
}

/// `POST /v1/routes/{name}/enable`: resumes a route a receiver disabled (410 Gone).
#[utoipa::path(post, path = "/v1/routes/{name}/enable", tag = "deliveries", params(("name" = String, Path, description = "The route name")), responses((status = 204, description = "Done"), (status = 404, description = "No such route", body = ErrorBody)), security(("api_key" = [])))]
pub async fn enable_route(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !route_names(&state).contains(&name) {
        return Err(no_route("name", &name));
    }
    state.gateway.store.reserve().admit(REQUEST_BYTES)?;
    state.gateway.delivery_log.set_route_disabled(&name, None)?;
    Ok(StatusCode::NO_CONTENT)
}
