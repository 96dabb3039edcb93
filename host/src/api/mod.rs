//! The HTTP API: health and metrics for now; devices and REST clients come through here.
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::gateway::Gateway;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    pub gateway: Arc<Gateway>,
    pub metrics: Option<PrometheusHandle>,
}

/// The gateway's HTTP routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
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
