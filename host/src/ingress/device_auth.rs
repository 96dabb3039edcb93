//! The checks every device request goes through before its data is read: the device is
//! registered and active, its body's encryption matches its mode, its AuthToken matches.
use std::sync::Arc;

use axum::http::StatusCode;
use subtle::ConstantTimeEq;

use crate::crypto::looks_encrypted;
use crate::store::{Device, DeviceState, Registry, StoreError, generate_token, valid_device_id};
use crate::web::error::{ApiError, CamsStatus};

/// A device request's body, decrypted when the device is in encrypted mode.
pub struct DeviceBody {
    pub device: Arc<Device>,
    pub plaintext: Vec<u8>,
}

/// Finds the device and decrypts its body. Unknown devices are refused (code 2) unless
/// auto-registration is on, in which case they are recorded as pending (code 5 until an
/// operator approves them).
pub fn authenticate_device(
    registry: &Registry,
    stgid: Option<&str>,
    body: &[u8],
    auto_register: bool,
) -> Result<DeviceBody, ApiError> {
    let device = find_device(registry, stgid, auto_register)?;
    let plaintext = decrypt_body(&device, body)?;
    Ok(DeviceBody { device, plaintext })
}

/// Finds an active device by its stgid (the checks of [`authenticate_device`] without a
/// body: for GET requests).
pub fn find_device(registry: &Registry, stgid: Option<&str>, auto_register: bool) -> Result<Arc<Device>, ApiError> {
    let Some(id) = stgid.filter(|s| !s.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            CamsStatus::UnknownStgid,
            "the stgid query parameter is missing",
        ));
    };
    let device = match registry.get(id) {
        Some(device) => device,
        None if auto_register && valid_device_id(id) => {
            register_pending(registry, id).map_err(ApiError::from)?;
            return Err(pending(id));
        }
        None => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                CamsStatus::UnknownStgid,
                format!("no device {id:?} is registered"),
            ));
        }
    };
    if device.state == DeviceState::Pending {
        return Err(pending(id));
    }
    if !device.enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            CamsStatus::DeviceUnavailable,
            format!("device {id:?} is disabled"),
        ));
    }
    Ok(device)
}

/// The body in plain text: decrypted for a device in encrypted mode (code 19 when it is
/// not encrypted), as is for a plain device (code 19 when it looks encrypted).
pub fn decrypt_body(device: &Device, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let id = &device.id;
    let plaintext = match device.cipher() {
        Some(cipher) => {
            if !looks_encrypted(body) {
                return Err(raw_data(format!("device {id:?} is in encrypted mode; the body is not encrypted")));
            }
            cipher
                .decrypt(body)
                .map_err(|e| raw_data(format!("the body could not be decrypted with the device's key: {e}")))?
        }
        None => {
            if looks_encrypted(body) {
                return Err(raw_data(format!("device {id:?} is in plain mode; the body looks encrypted")));
            }
            body.to_vec()
        }
    };
    Ok(plaintext)
}

/// A JSON reply for a device: encrypted with its key when it has one.
pub fn device_reply(device: &Device, json: Vec<u8>) -> Result<axum::response::Response, ApiError> {
    use axum::http::header;
    use axum::response::IntoResponse;
    Ok(match device.cipher() {
        Some(cipher) => {
            let text = cipher.encrypt(&json).map_err(ApiError::internal)?;
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
        }
        None => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], json).into_response(),
    })
}

/// The error reply to a request whose body was decrypted with the device's key (so the
/// caller holds it): the JSON error body, encrypted like [`device_reply`] when the device
/// has a key, with the error's HTTP status and `Retry-After`. Refusals before that point
/// (unknown device, a body that does not decrypt) stay plain: the caller could not read
/// them otherwise.
pub fn device_error(device: &Device, error: ApiError) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let Some(cipher) = device.cipher() else { return error.into_response() };
    let sealed = serde_json::to_vec(&error.body())
        .map_err(ApiError::internal)
        .and_then(|json| cipher.encrypt(&json).map_err(ApiError::internal));
    match sealed {
        Ok(text) => {
            let mut response = (error.http, [(header::CONTENT_TYPE, "text/plain")], text).into_response();
            error.add_retry_after(&mut response);
            response
        }
        Err(internal) => internal.into_response(),
    }
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
}

/// Checks a presented AuthToken against the device's, in constant time.
pub fn check_token(device: &Device, presented: Option<&str>) -> Result<(), ApiError> {
    let ok = presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(device.auth_token.as_bytes())));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::UNAUTHORIZED, CamsStatus::AuthTokenRefused, "the AuthToken is missing or wrong"))
    }
}

fn pending(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        CamsStatus::DeviceUnavailable,
        format!("device {id:?} is waiting for an operator's approval"),
    )
}

fn raw_data(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, CamsStatus::InvalidRawData, message)
}

fn register_pending(registry: &Registry, id: &str) -> Result<(), StoreError> {
    tracing::info!(device = id, "unknown device recorded as pending (auto-registration)");
    registry.put(Device {
        id: id.to_string(),
        label: String::new(),
        auth_token: generate_token(),
        security_key: None,
        encryption: crate::crypto::EncryptionMode::Plain,
        utc_offset_minutes: 0,
        enabled: true,
        state: DeviceState::Pending,
        routes: None,
        created_at_ms: crate::time::now_ms(),
    })?;
    Ok(())
}
