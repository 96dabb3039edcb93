//! Device requests in a vendor's dialect: HTTP requests under a dialect plugin's mount
//! (`/iclock` by default; matched without regard to case, so `/iClock/cdata.aspx` reaches
//! it too) are handed to the plugin. The plugin names the device (`identify-http`), the
//! registry decides whether it may speak (unknown devices are refused unless
//! auto-registration is on), the plugin handles the request (`handle-http`), and the
//! events it returns are journaled durably before the device gets its reply.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::device_auth::find_device;
use crate::gateway::Gateway;
use crate::plugin::bindings::dialect::exports::biogate::plugin::dialect_handler::{
    DeviceContext, DialectError, DialectReply, HttpRequest,
};
use crate::plugin::{DialectPlugin, PluginFault};
use crate::store::{Device, RETRY_AFTER_SECS, StoreError};
use crate::web::AppState;
use crate::web::error::CamsStatus;

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, "text/plain")], message.into()).into_response()
}

/// Below the disk reserve: 503 with `Retry-After`, never the dialect's "OK", so the
/// terminal keeps its records and sends them again.
fn storage_full(error: &StoreError) -> Response {
    let mut response =
        text(StatusCode::SERVICE_UNAVAILABLE, format!("{}: {error}; send again later", CamsStatus::StorageFull.name()));
    response.headers_mut().insert(axum::http::header::RETRY_AFTER, RETRY_AFTER_SECS.into());
    response
}

/// Whether a request of `method` may carry data for the gateway to store (an upload, a
/// command result): such requests are refused before the plugin sees them when the disk
/// is below its reserve, so that no plugin state moves on (an ADMS stamp) for records
/// that are not stored. Polls (GET, HEAD) still go through: handing out commands is the
/// gateway's own write.
fn may_carry_data(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A device request refused before its events are stored: the status and text it gets.
type Refusal = (StatusCode, String);

/// The value of a plugin call, or what the device is told when there is none.
fn plugin_outcome<R>(
    plugin: &DialectPlugin,
    outcome: Result<Result<R, DialectError>, PluginFault>,
) -> Result<R, Refusal> {
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(DialectError::BadRequest(m))) => Err((StatusCode::BAD_REQUEST, m)),
        Ok(Err(DialectError::Refused(m))) => Err((StatusCode::FORBIDDEN, m)),
        Err(fault) => {
            plugin.log_budget().log(
                plugin.name(),
                || tracing::warn!(plugin = plugin.name(), %fault, "the dialect plugin failed on a device request"),
            );
            Err((StatusCode::INTERNAL_SERVER_ERROR, "the gateway could not handle the request; send it again".into()))
        }
    }
}

/// Names the device, checks it against the registry and lets the plugin handle the
/// request: both plugin calls and the registry lookup in one trip to a blocking thread.
fn identify_and_handle(
    gw: &Gateway,
    plugin: &DialectPlugin,
    request: &HttpRequest,
) -> Result<(Arc<Device>, DialectReply), Refusal> {
    let serial = plugin_outcome(plugin, plugin.identify_http(request))?;
    let device = find_device(&gw.registry, Some(&serial), gw.config.config.server.auto_register)
        .map_err(|error| (error.http, error.message))?;
    let context = DeviceContext {
        device_id: device.id.clone(),
        label: device.label.clone(),
        utc_offset_minutes: device.utc_offset_minutes,
    };
    let reply = plugin_outcome(plugin, plugin.handle_http(&context, request))?;
    Ok((device, reply))
}

/// The fallback handler: requests no other route took.
pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let gw = &state.gateway;
    let Some(mount) = gw.dialects.iter().find(|m| m.matches(uri.path())).cloned() else {
        return text(StatusCode::NOT_FOUND, format!("no route for {}", uri.path()));
    };
    let query = match Query::<Vec<(String, String)>>::try_from_uri(&uri) {
        Ok(Query(pairs)) => pairs,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("unreadable query string: {e}")),
    };
    let request = HttpRequest {
        method: method.as_str().to_string(),
        path: uri.path().to_string(),
        query,
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_string())))
            .collect(),
        body: body.to_vec(),
    };
    if may_carry_data(&method)
        && let Err(error) = gw.store.reserve().admit(body.len() as u64)
    {
        return storage_full(&error);
    }
    let (gateway, plugin) = (gw.clone(), mount.plugin.clone());
    // What the plugin may change during the call that its reply tells the device about:
    // commands taken, and its own state (ADMS keeps command lines that did not fit a reply
    // in its key/value space, and takes them off when it sends them).
    let changes = || (gw.operations.handed_out(), gw.store.plugin_kv_writes());
    let before = changes();
    let (device, reply) =
        match tokio::task::spawn_blocking(move || identify_and_handle(&gateway, &plugin, &request)).await {
            Ok(Ok(handled)) => handled,
            Ok(Err((status, message))) => return text(status, message),
            Err(error) => {
                tracing::error!(plugin = mount.plugin.name(), %error, "a dialect call panicked");
                return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
            }
        };
    if !reply.events.is_empty() {
        // Durable in the journal when this returns (the event log's own fdatasync); the
        // plugin's changes in sled are flushed below.
        if let Err(error) = gw.ingest.accept(&device, reply.events).await {
            if error.is_disk_full() {
                return storage_full(&error);
            }
            tracing::error!(%error, device = %device.id, "storing a dialect request's events failed");
            return text(StatusCode::INTERNAL_SERVER_ERROR, "the events could not be stored; send them again");
        }
    }
    if changes() != before
        && let Err(error) = gw.journal.durable().await
    {
        // Commands the plugin took (or took off its queue) go out in this reply: on disk
        // as sent first, or a crash right after would hand them out again.
        tracing::error!(%error, device = %device.id, "recording handed-out commands failed");
        return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut response = (status, reply.body).into_response();
    for (name, value) in reply.headers {
        match (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
            (Ok(n), Ok(v)) => {
                response.headers_mut().insert(n, v);
            }
            _ => {
                tracing::warn!(plugin = mount.plugin.name(), header = %name, "the dialect plugin returned an invalid header; dropped")
            }
        }
    }
    response
}
