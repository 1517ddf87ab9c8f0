//! Routes that hand out a presigned URL (a file's download, its thumbnail, its text) answer
//! 302 with it in `Location`, which a browser's navigation or an `<a href>` follows. A script
//! cannot use that answer across origins: `fetch` follows the redirect with `Origin: null`,
//! which the bucket's CORS rule (exact origins) refuses. To a request whose `Accept` names
//! `application/json` they answer 200 with the link itself, which a page puts in an `<img src>`.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

use crate::{ApiError, ApiResult};

/// A presigned URL, and how long it stays valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// Presigned: it needs no token, and anyone who has it may use it until it expires.
    pub url: String,
    pub expires_in_seconds: u64,
}

/// Whether the request's `Accept` names `media` (parameters such as `q=` ignored).
pub fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|m| m.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case(media))))
}

/// 302 to `url`, or 200 with the [`Link`] to a request that accepts `application/json`; never
/// cached (the URL is a credential that expires).
pub fn redirect_or_link(headers: &HeaderMap, url: &str, valid_secs: u64) -> ApiResult<Response> {
    let mut res = if accepts(headers, "application/json") {
        Json(Link { url: url.to_owned(), expires_in_seconds: valid_secs }).into_response()
    } else {
        let location = HeaderValue::from_str(url).map_err(|_| ApiError::internal())?;
        let mut res = StatusCode::FOUND.into_response();
        res.headers_mut().insert(header::LOCATION, location);
        res
    };
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn accept_names_a_media_type_among_others_and_with_parameters() {
        assert!(accepts(&accept("text/html, application/json;q=0.9"), "application/json"));
        assert!(accepts(&accept("Application/JSON"), "application/json"));
        assert!(!accepts(&accept("*/*"), "application/json"), "a browser's default is the redirect");
        assert!(!accepts(&HeaderMap::new(), "application/json"));
        assert!(!accepts(&accept("application/jsonx"), "application/json"));
    }

    #[tokio::test]
    async fn the_link_as_json_or_the_redirect_and_neither_is_cached() {
        let url = "https://bucket.s3.us-east-1.amazonaws.com/k?X-Amz-Signature=abc";
        let res = redirect_or_link(&accept("application/json"), url, 300).unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
        let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        let link: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(link, serde_json::json!({"url": url, "expiresInSeconds": 300}));

        let res = redirect_or_link(&accept("*/*"), url, 300).unwrap();
        assert_eq!(res.status(), StatusCode::FOUND);
        assert_eq!(res.headers()[header::LOCATION], url);
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    }
}
