//! `?limit=&cursor=` for every listing.

use axum::extract::FromRequestParts;
use domain::FieldError;
use http::request::Parts;
use store::PageRequest;

use crate::ApiError;

/// The page a listing asks for, with any other query parameters the route accepts.
#[derive(Debug, Clone, Default)]
pub struct PageQuery {
    pub page: PageRequest,
    pub params: Vec<(String, String)>,
}

impl PageQuery {
    /// The value of another query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Refuses query parameters other than `limit`, `cursor` and `allowed`.
    pub fn only(self, allowed: &[&str]) -> Result<Self, ApiError> {
        let unknown: Vec<_> = self.params.iter().filter(|(k, _)| !allowed.contains(&k.as_str())).map(|(k, _)| k.clone()).collect();
        if unknown.is_empty() { Ok(self) } else { Err(ApiError::malformed(format!("unknown query parameter(s): {}", unknown.join(", ")))) }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let mut out = PageQuery::default();
        let query = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded_pairs(query)?;
        for (k, v) in pairs {
            match k.as_str() {
                "limit" => match v.parse::<u32>() {
                    Ok(n) if n >= 1 => out.page.limit = Some(n),
                    _ => return Err(ApiError::invalid(vec![FieldError::new("limit", "must be a whole number from 1 (values over 100 count as 100)")])),
                },
                // `cursor=` (empty) is the first page, like no cursor at all.
                "cursor" => out.page.cursor = Some(v).filter(|c| !c.is_empty()),
                _ => out.params.push((k, v)),
            }
        }
        Ok(out)
    }
}

fn serde_urlencoded_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&format!("/?{query}").parse().map_err(|_| ApiError::malformed("bad query string"))?)
        .map(|q| q.0)
        .map_err(|_| ApiError::malformed("bad query string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn query(q: &str) -> Result<PageQuery, ApiError> {
        let (mut parts, _) = http::Request::builder().uri(format!("/x?{q}")).body(()).unwrap().into_parts();
        PageQuery::from_request_parts(&mut parts, &()).await
    }

    #[tokio::test]
    async fn an_empty_cursor_is_the_first_page() {
        assert_eq!(query("cursor=").await.unwrap().page.cursor, None);
        assert_eq!(query("limit=5&cursor=").await.unwrap().page.limit, Some(5));
        assert_eq!(query("cursor=abc").await.unwrap().page.cursor.as_deref(), Some("abc"));
        assert_eq!(query("").await.unwrap().page.cursor, None);
    }

    #[tokio::test]
    async fn limits_and_other_parameters() {
        assert_eq!(query("limit=0").await.unwrap_err().status, 422);
        assert_eq!(query("limit=").await.unwrap_err().status, 422);
        let q = query("status=active").await.unwrap();
        assert_eq!(q.param("status"), Some("active"));
        assert_eq!(q.clone().only(&[]).unwrap_err().status, 400);
        assert!(q.only(&["status"]).is_ok());
    }
}
