//! The Cams `StatusCode`s and their symbolic `Status` names.

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
    /// 44 (biogate): the gateway's disk is below its reserve; nothing was stored: send
    /// again after `Retry-After`.
    StorageFull = 44,
    /// 45 (biogate): the gateway has too many connections open (from this address, or in
    /// all); nothing was read: send again after `Retry-After`.
    Busy = 45,
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
            CamsStatus::StorageFull => "API_RESPONSE_STORAGE_FULL",
            CamsStatus::Busy => "API_RESPONSE_GATEWAY_BUSY",
            CamsStatus::Unknown => "API_RESPONSE_UNKNOWN_ERROR",
        }
    }
}
