//! API errors: an HTTP status, a Cams `StatusCode` with its symbolic `Status`, a message
//! and, when one field is at fault, its name. Every error reply has this JSON shape:
//! `{"Status":"API_RESPONSE_AUTH_TOKEN_REFUSED","StatusCode":7,"error":"...","field":"..."}`.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Cams status codes (the numbers and meanings of the Cams v3 contract; biogate adds none
/// so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CamsStatus {
    /// 0: success.
    Done = 0,
    /// 1: the request could not be read (malformed JSON, missing or bad fields, too large).
    Unreadable = 1,
    /// 2: no device has this stgid.
    UnknownStgid = 2,
    /// 3: origin not allowed.
    OriginNotAllowed = 3,
    /// 5: the device is not available (disabled, pending approval, offline).
    DeviceUnavailable = 5,
    /// 7: the AuthToken is missing or wrong.
    AuthTokenRefused = 7,
    /// 19: the body's encryption does not match the device's mode.
    InvalidRawData = 19,
    /// 35: the operation is not allowed for this device.
    NotAllowed = 35,
    /// 999: an unexpected error on the gateway's side.
    Unknown = 999,
}

impl CamsStatus {
    /// The symbolic name sent in `Status`.
    pub fn name(self) -> &'static str {
        match self {
            CamsStatus::Done => "done",
            CamsStatus::Unreadable => "API_RESPONSE_UNREADABLE_REQUEST",
            CamsStatus::UnknownStgid => "API_RESPONSE_UNKNOWN_STGID",
            CamsStatus::OriginNotAllowed => "API_RESPONSE_ORIGIN_NOT_ALLOWED",
            CamsStatus::DeviceUnavailable => "API_RESPONSE_DEVICE_UNAVAILABLE",
            CamsStatus::AuthTokenRefused => "API_RESPONSE_AUTH_TOKEN_REFUSED",
            CamsStatus::InvalidRawData => "API_RESPONSE_INVALID_RAW_DATA",
            CamsStatus::NotAllowed => "API_RESPONSE_OPERATION_NOT_ALLOWED",
            CamsStatus::Unknown => "API_RESPONSE_UNKNOWN_ERROR",
        }
    }
}

/// An error reply.
#[derive(Debug)]
pub struct ApiError {
    pub http: StatusCode,
    pub cams: CamsStatus,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(http: StatusCode, cams: CamsStatus, message: impl Into<String>) -> Self {
        ApiError { http, cams, message: message.into(), field: None }
    }

    /// A bad request naming the field at fault.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { http: StatusCode::BAD_REQUEST, cams: CamsStatus::Unreadable, message: message.into(), field: Some(field.into()) }
    }

    /// A failure of the gateway itself (logged; the client sees no internals).
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed inside the gateway");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, CamsStatus::Unknown, "internal error")
    }
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "Status")]
    status: &'a str,
    #[serde(rename = "StatusCode")]
    status_code: u16,
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            status: self.cams.name(),
            status_code: self.cams as u16,
            error: &self.message,
            field: self.field.as_deref(),
        };
        (self.http, axum::Json(body)).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        ApiError::internal(error)
    }
}
