//! The HTTP API: the router of every endpoint (the device endpoints of `ingress`, the
//! Cams-compatible endpoint, the admin and resource API under `/v1`, health and metrics). The OpenAPI document
//! (`/v1/openapi.json`) is generated from the same route table that serves the requests
//! (utoipa-axum), so it cannot drift from the code.
pub mod admin;
pub mod cams;
mod openapi;
pub mod operations;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::ingress::{native, native_commands};
use crate::web::AppState;
use crate::web::error::{ApiError, CamsStatus};
use admin::Admin;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "biogate",
        description = "Open biometric device gateway: the device protocol, the Cams v3-compatible endpoint, and the resource API. Errors share one JSON shape (`ErrorBody`) whose `Status` and `StatusCode` are stable codes.",
    ),
    modifiers(&ApiKeyAuth),
    tags(
        (name = "devices", description = "The device registry"),
        (name = "operations", description = "Server-to-device operations (the catalogue in docs/operations.md)"),
        (name = "users", description = "Users on devices, as the gateway knows them"),
        (name = "punches", description = "Punches from the journal"),
        (name = "deliveries", description = "Delivery attempts, dead letters, replay, routes"),
        (name = "cams", description = "The Cams Biometric Web API 3.0-compatible endpoint"),
        (name = "device protocol", description = "What devices call (docs/device-protocol.md)"),
    )
)]
struct ApiDoc;

/// Declares the bearer API key scheme (`Authorization: Bearer <key>`).
struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("api_key", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The documented routes, with their OpenAPI description.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(native::upload))
        .routes(routes!(native_commands::poll))
        .routes(routes!(cams::biometric))
        .routes(routes!(admin::list_devices, admin::create_device))
        .routes(routes!(admin::get_device, admin::update_device, admin::delete_device))
        .routes(routes!(admin::approve_device))
        .routes(routes!(admin::device_events))
        .routes(routes!(admin::device_deliveries))
        .routes(routes!(admin::dead_letters))
        .routes(routes!(admin::replay))
        .routes(routes!(admin::list_routes))
        .routes(routes!(admin::enable_route))
        .routes(routes!(operations::submit_operation, operations::list_operations))
        .routes(routes!(operations::get_operation, operations::cancel_operation))
        .routes(routes!(operations::list_users))
        .routes(routes!(operations::get_user, operations::put_user, operations::delete_user))
        .routes(routes!(operations::block_user))
        .routes(routes!(operations::unblock_user))
        .routes(routes!(operations::punches))
}

/// The OpenAPI 3.1 document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut api = documented().split_for_parts().1;
    openapi::complete(&mut api);
    api
}

/// The gateway's HTTP routes.
pub fn router(state: AppState) -> Router {
    let limit = state.gateway.config.config.server.max_body_bytes;
    let (routes, mut api) = documented().split_for_parts();
    openapi::complete(&mut api);
    let api = Arc::new(api);
    routes
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(move || std::future::ready(Json(api.as_ref().clone()))))
        .fallback(crate::ingress::dialect_http::handle)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// `GET /health`: 200 `{"status":"ok",...}`, or 503 `{"status":"degraded","reason":"disk",...}`
/// while the disk is below its reserve (device and client writes are refused). `journal`
/// lists damage found in the event log (a torn tail cut off, damaged regions, unreadable
/// events).
async fn health(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let disk = state.gateway.store.reserve().state();
    let mut body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "plugins": state.gateway.plugins.keys().collect::<Vec<_>>(),
        "routes": state.gateway.chains.keys().collect::<Vec<_>>(),
        "mqtt": state.mqtt.as_ref().map(|link| serde_json::json!({ "subscribed": link.subscribed() })),
        "storage": { "free_bytes": disk.free_bytes, "reserve_bytes": disk.reserve_bytes },
        // What is known to be wrong with the journal on disk (docs/storage.md): reported,
        // not degraded: everything intact is served.
        "journal": state.gateway.journal.damage(),
    });
    if !disk.degraded {
        return (StatusCode::OK, Json(body));
    }
    body["status"] = "degraded".into();
    body["reason"] = "disk".into();
    (StatusCode::SERVICE_UNAVAILABLE, Json(body))
}

/// `GET /metrics`: the Prometheus text, behind the admin API key unless
/// `server.public_metrics` (401 with the error body without it).
async fn metrics(State(state): State<AppState>, admin: Result<Admin, ApiError>) -> Result<String, ApiError> {
    if !state.gateway.config.config.server.public_metrics {
        admin?;
    }
    let handle = state.metrics.as_ref().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, CamsStatus::Unknown, "metrics are not recorded by this process")
    })?;
    Ok(handle.render())
}
