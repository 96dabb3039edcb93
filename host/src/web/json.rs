//! `ApiJson`: the JSON body extractor of the API. A body that cannot be read becomes the
//! API's own error (HTTP 400, Cams code 1) naming the field at fault, instead of axum's
//! plain-text rejection. Every body of the API is one JSON object: an array (which serde
//! would read into a struct field by field) or anything after the object is refused.
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON request body of type `T`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::field("$", format!("the body could not be read: {e}")))?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::field("$", "the body must be a JSON object"));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            ApiError::field(path, format!("unreadable JSON: {}", e.into_inner()))
        })?;
        de.end().map_err(|e| ApiError::field("$", format!("unreadable JSON: {e}")))?;
        Ok(ApiJson(value))
    }
}
