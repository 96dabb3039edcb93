//! `ApiQuery`: the query-string extractor of the API. A query string that cannot be read
//! becomes the API's own error (HTTP 400, Cams code 1) naming the parameter at fault,
//! instead of axum's plain-text rejection. With it, the bounds every query shares:
//! [`wait_ms`] (at most [`MAX_WAIT_MS`]) and [`int64`] (what OpenAPI's `int64` can carry).
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Error as _};

use super::error::ApiError;

/// The longest wait a client or a device may ask for with `?wait_ms=`, in milliseconds;
/// larger values are refused.
pub const MAX_WAIT_MS: u64 = 120_000;

/// The largest integer a query parameter takes (`i64::MAX`: the OpenAPI type is `int64`).
pub const MAX_INT64: u64 = i64::MAX as u64;

/// A query string of type `T`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parse(parts.uri.query().unwrap_or("")).map(ApiQuery)
    }
}

/// Reads a query string (without its `?`) into `T`.
pub fn parse<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let field = match path.as_str() {
            "." => named_field(&inner).unwrap_or("query").to_string(),
            _ => path,
        };
        ApiError::field(field, format!("unreadable query string: {inner}"))
    })
}

/// The parameter serde's "missing field `x`" or "duplicate field `x`" names.
fn named_field(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once('`')?;
    Some(rest.split_once('`')?.0)
}

/// `?wait_ms=`: absent, or 0 to [`MAX_WAIT_MS`]. Use with `#[serde(default, deserialize_with)]`.
pub fn wait_ms<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    at_most(de, MAX_WAIT_MS)
}

/// An optional integer parameter of OpenAPI type `int64`: 0 to [`MAX_INT64`]. Use with
/// `#[serde(default, deserialize_with)]`.
pub fn int64<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    at_most(de, MAX_INT64)
}

/// The largest page a listing returns (`?limit=`).
pub const MAX_PAGE: u64 = 1000;

/// The largest page of punches (`GET /v1/devices/{id}/punches?limit=`).
pub const MAX_PUNCH_PAGE: u64 = 5000;

/// `?limit=` of a listing: absent, or 1 to [`MAX_PAGE`]. Use with `#[serde(default, deserialize_with)]`.
pub fn page_limit<'de, D: Deserializer<'de>>(de: D) -> Result<Option<usize>, D::Error> {
    within(de, 1, MAX_PAGE)
}

/// `?limit=` of the punches listing: absent, or 1 to [`MAX_PUNCH_PAGE`].
pub fn punch_page_limit<'de, D: Deserializer<'de>>(de: D) -> Result<Option<usize>, D::Error> {
    within(de, 1, MAX_PUNCH_PAGE)
}

fn within<'de, D: Deserializer<'de>>(de: D, min: u64, max: u64) -> Result<Option<usize>, D::Error> {
    match at_most(de, max)? {
        Some(value) if value < min => Err(D::Error::custom(format!("{value} is too small: at least {min}"))),
        // At most MAX_PUNCH_PAGE: fits any usize.
        value => Ok(value.map(|v| v as usize)),
    }
}

fn at_most<'de, D: Deserializer<'de>>(de: D, max: u64) -> Result<Option<u64>, D::Error> {
    match Option::<u64>::deserialize(de)? {
        Some(value) if value > max => Err(D::Error::custom(format!("{value} is too large: at most {max}"))),
        value => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        #[serde(default, deserialize_with = "wait_ms")]
        wait_ms: Option<u64>,
        #[serde(default, deserialize_with = "int64")]
        to: Option<u64>,
        #[allow(dead_code)]
        stgid: String,
        #[serde(default)]
        max: Option<usize>,
        #[serde(default, deserialize_with = "page_limit")]
        limit: Option<usize>,
    }

    fn refused(query: &str) -> (String, String) {
        let error = parse::<Sample>(query).expect_err(query);
        assert_eq!(error.http, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(error.cams as u16, 1, "{query}");
        (error.field.unwrap_or_default(), error.message)
    }

    #[test]
    fn bad_values_name_their_parameter() {
        assert_eq!(refused("stgid=D&max=-1").0, "max");
        assert_eq!(refused("stgid=D&wait_ms=abc").0, "wait_ms");
        assert_eq!(refused("stgid=D&wait_ms=1e30").0, "wait_ms");
        assert_eq!(refused("stgid=D&wait_ms=-5").0, "wait_ms");
        assert_eq!(refused("wait_ms=5").0, "stgid");
        assert_eq!(refused("stgid=D&stgid=E").0, "stgid");
    }

    #[test]
    fn waits_and_int64_values_are_bounded() {
        let (field, message) = refused("stgid=D&wait_ms=9223372036854775808");
        assert_eq!(field, "wait_ms");
        assert!(message.contains("at most 120000"), "{message}");
        assert_eq!(refused("stgid=D&wait_ms=120001").0, "wait_ms");
        assert_eq!(refused("stgid=D&to=9223372036854775808").0, "to");
        let ok = parse::<Sample>("stgid=D&wait_ms=120000&to=9223372036854775807").expect("in bounds");
        assert_eq!((ok.wait_ms, ok.to, ok.max), (Some(120_000), Some(MAX_INT64), None));
        assert_eq!(refused("stgid=D&limit=0").0, "limit");
        assert_eq!(refused("stgid=D&limit=1001").0, "limit");
        assert_eq!(refused("stgid=D&limit=14929879231417557188608").0, "limit");
        assert_eq!(parse::<Sample>("stgid=D&limit=1000").expect("in bounds").limit, Some(1000));
        let ok = parse::<Sample>("stgid=D").expect("defaults");
        assert_eq!((ok.wait_ms, ok.to), (None, None));
    }
}
