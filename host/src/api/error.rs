//! API errors: an HTTP status, a Cams `StatusCode` with its symbolic `Status`, a message
//! and, when one field is at fault, its name. Every error reply has this JSON shape:
//! `{"Status":"API_RESPONSE_AUTH_TOKEN_REFUSED","StatusCode":7,"error":"...","field":"..."}`.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Cams status codes: the numbers and meanings of the Cams v3 contract, plus biogate's
/// own from 40 up (documented in docs/operations.md).
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
    /// 40 (biogate): the device answered the command with an error (`ReturnCode`).
    DeviceRefused = 40,
    /// 41 (biogate): the operation was cancelled before the device took it.
    Cancelled = 41,
    /// 42 (biogate): the time range covers more than 30 days.
    RangeTooLarge = 42,
    /// 43 (biogate): the OperationID is already used by a different request.
    DuplicateOperation = 43,
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
            CamsStatus::DeviceRefused => "API_RESPONSE_DEVICE_REFUSED",
            CamsStatus::Cancelled => "API_RESPONSE_OPERATION_CANCELLED",
            CamsStatus::RangeTooLarge => "API_RESPONSE_RANGE_TOO_LARGE",
            CamsStatus::DuplicateOperation => "API_RESPONSE_DUPLICATE_OPERATION_ID",
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
    /// The OperationID of the call, echoed as Cams does.
    pub operation_id: Option<String>,
}

impl ApiError {
    pub fn new(http: StatusCode, cams: CamsStatus, message: impl Into<String>) -> Self {
        ApiError { http, cams, message: message.into(), field: None, operation_id: None }
    }

    /// A bad request naming the field at fault.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            http: StatusCode::BAD_REQUEST,
            cams: CamsStatus::Unreadable,
            message: message.into(),
            field: Some(field.into()),
            operation_id: None,
        }
    }

    /// The same error, echoing `id` as its `OperationID`.
    pub fn with_operation(mut self, id: Option<String>) -> Self {
        self.operation_id = id;
        self
    }

    /// A failure of the gateway itself (logged; the client sees no internals).
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed inside the gateway");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, CamsStatus::Unknown, "internal error")
    }
}

/// The JSON body of every error reply.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The symbolic status (`API_RESPONSE_...`): stable, for programs.
    #[serde(rename = "Status")]
    pub status: String,
    /// The call's OperationID, when it had one.
    #[serde(rename = "OperationID", skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// The Cams status code: stable, for programs.
    #[serde(rename = "StatusCode")]
    pub status_code: u16,
    /// What went wrong, for people.
    pub error: String,
    /// The field at fault (`user.credentials[0].data`), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            status: self.cams.name().to_string(),
            operation_id: self.operation_id,
            status_code: self.cams as u16,
            error: self.message,
            field: self.field,
        };
        (self.http, axum::Json(body)).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        ApiError::internal(error)
    }
}
