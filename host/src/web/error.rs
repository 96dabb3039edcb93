//! The error reply of every HTTP handler (devices' and clients'): an HTTP status, a Cams
//! `StatusCode` with its symbolic `Status`, a message
//! and, when one field is at fault, its name. Every error reply has this JSON shape:
//! `{"Status":"API_RESPONSE_AUTH_TOKEN_REFUSED","StatusCode":7,"error":"...","field":"..."}`.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub use crate::cams::CamsStatus;
use crate::field::FieldError;
use crate::operations::SubmitError;
use crate::operations::load_log::LoadLogError;

/// An error reply.
#[derive(Debug)]
pub struct ApiError {
    pub http: StatusCode,
    pub cams: CamsStatus,
    pub message: String,
    pub field: Option<String>,
    /// The OperationID of the call, echoed as Cams does.
    pub operation_id: Option<String>,
    /// Seconds to wait before sending again (`Retry-After`), when the refusal is temporary.
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(http: StatusCode, cams: CamsStatus, message: impl Into<String>) -> Self {
        ApiError { http, cams, message: message.into(), field: None, operation_id: None, retry_after: None }
    }

    /// The disk is below its reserve: 503, code 44, `Retry-After`. Not logged here: the
    /// reserve logs once when the disk crosses it.
    pub fn storage_full(error: &crate::store::StoreError) -> Self {
        ApiError {
            retry_after: Some(crate::store::RETRY_AFTER_SECS),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                CamsStatus::StorageFull,
                format!("{error}; keep the data and send it again later"),
            )
        }
    }

    /// The gateway has too many connections open (the listener's caps): 503, code 45,
    /// `Retry-After`.
    pub fn busy(retry_after: u32) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                CamsStatus::Busy,
                "the gateway has too many connections open; send again after Retry-After",
            )
        }
    }

    /// The request body did not arrive in time (`server.body_timeout_ms`): 408, code 1.
    pub fn body_timeout(limit: std::time::Duration) -> Self {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            CamsStatus::Unreadable,
            format!("the request body did not arrive within {} ms (server.body_timeout_ms)", limit.as_millis()),
        )
    }

    /// A bad request naming the field at fault.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::BAD_REQUEST, CamsStatus::Unreadable, message)
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

impl ApiError {
    /// The JSON error body, apart from the HTTP status and `Retry-After` (for a reply that
    /// is encrypted before it leaves, see `ingress::device_error`).
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            status: self.cams.name().to_string(),
            operation_id: self.operation_id.clone(),
            status_code: self.cams as u16,
            error: self.message.clone(),
            field: self.field.clone(),
        }
    }

    /// Adds the `Retry-After` header to `response` when the refusal is temporary.
    pub fn add_retry_after(&self, response: &mut Response) {
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.http, axum::Json(self.body())).into_response();
        self.add_retry_after(&mut response);
        response
    }
}

/// A store failure: 503 (44) with `Retry-After` below the disk reserve, else 500 (999).
impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        if error.is_disk_full() { ApiError::storage_full(&error) } else { ApiError::internal(error) }
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        ApiError::field(error.field, error.problem)
    }
}

/// A refused submission: the field at fault (1), an OperationID already used (43).
impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::Field(e) => e.into(),
            SubmitError::DuplicateId(id) => ApiError::new(
                StatusCode::CONFLICT,
                CamsStatus::DuplicateOperation,
                format!("OperationID {id:?} is already used by a different request"),
            ),
            SubmitError::Store(e) => e.into(),
        }
    }
}

/// A refused LoadLog page: the field at fault (1), a range over 30 days (42).
impl From<LoadLogError> for ApiError {
    fn from(error: LoadLogError) -> Self {
        match error {
            LoadLogError::Field(e) => e.into(),
            LoadLogError::SpanTooLong => ApiError::new(
                StatusCode::BAD_REQUEST,
                CamsStatus::RangeTooLarge,
                "one request may cover at most 30 days; split the range",
            ),
            LoadLogError::Store(e) => e.into(),
        }
    }
}
