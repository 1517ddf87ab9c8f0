//! Strict JSON request bodies: at most 64 KiB (413), well-formed (400), no unknown fields
//! (400, so nobody can mass-assign an attribute), values of the right type (422 naming the
//! field). Types use `#[serde(deny_unknown_fields)]`; semantic checks happen in handlers
//! and also answer 422 naming every bad field.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use domain::FieldError;
use http::header;
use serde::de::DeserializeOwned;

use crate::ApiError;

pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body of type `T`.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, _: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or("").trim();
            if essence != "application/json" && !essence.ends_with("+json") {
                return Err(ApiError::unsupported_media_type());
            }
        }
        let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            return Err(ApiError::too_large());
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await.map_err(|_| ApiError::too_large())?;
        parse(&bytes).map(JsonBody)
    }
}

/// [`JsonBody`] for a route whose body may be left out: an empty body is `None`.
#[derive(Debug, Clone)]
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, state: &S) -> Result<Self, ApiError> {
        let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
        if declared == Some(0) {
            return Ok(OptionalJsonBody(None));
        }
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| ApiError::too_large())?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        let req = Request::from_parts(parts, Body::from(bytes));
        JsonBody::<T>::from_request(req, state).await.map(|JsonBody(v)| OptionalJsonBody(Some(v)))
    }
}

/// Parses a body, classifying failures as described in the module documentation.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed("a JSON body is required"));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| ApiError::malformed(format!("malformed JSON: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        if message.starts_with("unknown field") {
            ApiError::malformed(format!("{message} (at {path})"))
        } else {
            let field = if path == "." { "body".to_owned() } else { path };
            ApiError::invalid(vec![FieldError::new(field, message)])
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        name: String,
        count: Option<u32>,
    }

    #[test]
    fn classifies_bad_bodies() {
        assert_eq!(parse::<Input>(b"").unwrap_err().status, 400);
        assert_eq!(parse::<Input>(b"{\"name\":").unwrap_err().status, 400);
        assert_eq!(parse::<Input>(b"{\"name\":\"a\",\"role\":\"owner\"}").unwrap_err().status, 400);
        let e = parse::<Input>(b"{\"name\":\"a\",\"count\":-1}").unwrap_err();
        assert_eq!((e.status, e.errors[0].field.as_str()), (422, "count"));
        let e = parse::<Input>(b"[1]").unwrap_err();
        assert_eq!(e.status, 422);
        assert!(parse::<Input>(b"{\"name\":\"a\"}").is_ok());
    }
}
