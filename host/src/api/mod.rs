//! The HTTP API: the device endpoints, the admin API under `/v1`, health and metrics.
pub mod admin;
pub mod error;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::gateway::Gateway;
use crate::ingress::native;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    pub gateway: Arc<Gateway>,
    pub metrics: Option<PrometheusHandle>,
}

/// The gateway's HTTP routes.
pub fn router(state: AppState) -> Router {
    let limit = state.gateway.config.config.server.max_body_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/device/v1/events", post(native::upload))
        .route("/v1/devices", get(admin::list_devices).post(admin::create_device))
        .route(
            "/v1/devices/{id}",
            get(admin::get_device).patch(admin::update_device).delete(admin::delete_device),
        )
        .route("/v1/devices/{id}/approve", post(admin::approve_device))
        .route("/v1/devices/{id}/events", get(admin::device_events))
        .route("/v1/devices/{id}/deliveries", get(admin::device_deliveries))
        .route("/v1/dead-letters", get(admin::dead_letters))
        .route("/v1/replay", post(admin::replay))
        .route("/v1/routes", get(admin::list_routes))
        .route("/v1/routes/{name}/enable", post(admin::enable_route))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "plugins": state.gateway.plugins.keys().collect::<Vec<_>>(),
        "routes": state.gateway.chains.keys().collect::<Vec<_>>(),
    }))
}

async fn metrics(State(state): State<AppState>) -> Result<String, StatusCode> {
    state.metrics.as_ref().map(|h| h.render()).ok_or(StatusCode::NOT_FOUND)
}
