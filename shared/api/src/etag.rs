//! Optimistic concurrency over HTTP: an item's version leaves as `ETag: "<version>"`, and
//! comes back in `If-Match` on a write, which the store conditions on (412 when stale).

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, header};

use crate::{ApiError, ApiResult};

/// `body` with `ETag: "<version>"`.
pub fn with_etag(version: u64, body: impl IntoResponse) -> Response {
    let mut res = body.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

/// The version `If-Match: "<version>"` names, when the header is given; anything but an
/// ETag this API issued: 400.
pub fn if_match(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    let Some(v) = headers.get(header::IF_MATCH) else { return Ok(None) };
    v.to_str()
        .ok()
        .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|s| s.parse().ok())
        .map(Some)
        .ok_or_else(|| ApiError::malformed("If-Match must be an ETag this API issued, such as \"3\""))
}

/// Runs `write` again when the item changed between its read and its write and the caller
/// gave no `If-Match` (last writer wins, each attempt on a fresh read); with `If-Match`, a
/// change is the caller's 412.
pub async fn last_writer_wins<T, F, Fut>(expected: Option<u64>, mut write: F) -> Result<T, domain::DomainError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, domain::DomainError>>,
{
    const ATTEMPTS: usize = 3;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match write().await {
            Err(domain::DomainError::StaleVersion) if expected.is_none() && attempt < ATTEMPTS => continue,
            Err(domain::DomainError::StaleVersion) if expected.is_none() => {
                return Err(domain::DomainError::Conflict("the item kept changing; try again"));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_takes_the_etags_it_issued() {
        let mut h = HeaderMap::new();
        assert_eq!(if_match(&h).unwrap(), None);
        for (given, want) in [("\"3\"", 3), ("W/\"4\"", 4), (" \"5\" ", 5)] {
            h.insert(header::IF_MATCH, HeaderValue::from_static(given));
            assert_eq!(if_match(&h).unwrap(), Some(want));
        }
        for bad in ["*", "\"x\"", ""] {
            h.insert(header::IF_MATCH, HeaderValue::from_static(bad));
            assert_eq!(if_match(&h).unwrap_err().status, 400, "{bad}");
        }
        let res = with_etag(7, "ok");
        assert_eq!(res.headers()[header::ETAG], "\"7\"");
    }
}
