//! Path parameters that never reject with anything but a problem: a malformed id names
//! nothing, so it is a 404.

use std::str::FromStr;

use axum::extract::{FromRequestParts, RawPathParams};
use http::request::Parts;

use crate::ApiError;

/// The route's path parameters.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses the parameter `name`; absent or malformed: 404.
    pub fn get<T: FromStr>(&self, name: &str) -> Result<T, ApiError> {
        self.0.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.parse().ok()).ok_or_else(ApiError::not_found)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = RawPathParams::from_request_parts(parts, state).await.map_err(|_| ApiError::not_found())?;
        Ok(Params(raw.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()))
    }
}
