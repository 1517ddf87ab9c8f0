//! RFC 9457 problem details. Every error leaves as `application/problem+json` with a stable
//! `type`; internals never do.

use axum::response::{IntoResponse, Response};
use domain::{DomainError, FieldError};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";
const TYPE_BASE: &str = "https://tenantry.dev/problems/";

/// The `Retry-After` of a 503 whose storage was unavailable (throttled past the SDK's retries).
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ApiError {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The organizations a refusal is about (the erasure of an account that is the last owner
    /// of some), each with its `id` and `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orgs: Option<Box<Vec<ProblemOrg>>>,
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

/// An organization named by a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ProblemOrg {
    pub id: String,
    pub name: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, slug: &str, title: &'static str) -> Self {
        ApiError { kind: format!("{TYPE_BASE}{slug}"), title, status: status.as_u16(), detail: None, errors: Vec::new(), orgs: None, retry_after: None }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Authentication required")
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found")
    }
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed")
    }
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed-request", "Malformed request").detail(detail)
    }
    pub fn too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Request body too large")
            .detail(format!("bodies are limited to {} bytes", crate::MAX_BODY_BYTES))
    }
    pub fn unsupported_media_type() -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type").detail("send application/json")
    }
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed", "Invalid input");
        e.detail = Some(errors.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "));
        e.errors = errors;
        e
    }
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error")
    }
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound => ApiError::not_found(),
            DomainError::Forbidden(why) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden").detail(why),
            DomainError::Suspended => {
                ApiError::new(StatusCode::FORBIDDEN, "org-suspended", "Organization suspended").detail("this organization is suspended; contact support")
            }
            DomainError::Conflict(why) => ApiError::new(StatusCode::CONFLICT, "conflict", "Conflict").detail(why),
            DomainError::LastOwner => ApiError::new(StatusCode::CONFLICT, "last-owner", "Last owner").detail("an organization must keep at least one owner"),
            DomainError::LimitReached(what) => {
                ApiError::new(StatusCode::CONFLICT, "plan-limit-reached", "Plan limit reached").detail(format!("the plan's limit on {what} is reached"))
            }
            DomainError::StaleVersion => ApiError::new(StatusCode::PRECONDITION_FAILED, "stale-version", "Changed meanwhile")
                .detail("the item changed since you read it; reload and try again"),
            DomainError::Invalid(errors) => ApiError::invalid(errors),
            DomainError::RateLimited { what, retry_after_secs } => {
                let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests")
                    .detail(format!("too many {what}; try again in {retry_after_secs} seconds"));
                e.retry_after = Some(retry_after_secs);
                e
            }
            DomainError::EmailNotVerified => {
                ApiError::new(StatusCode::FORBIDDEN, "email-not-verified", "Email not verified").detail("verify your email address first")
            }
            DomainError::InvalidCursor => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid-cursor", "Invalid cursor").detail("the cursor is not one this query issued")
            }
            // Storage failed even after the SDK's retries (throttling, a 5xx, a reset): nothing
            // was written, and the client may try again after a moment.
            DomainError::Unavailable => {
                let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable")
                    .detail(format!("try again in {UNAVAILABLE_RETRY_AFTER_SECS} seconds"));
                e.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECS);
                e
            }
            DomainError::BudgetExhausted { resets_at_epoch } => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                let resets = u64::try_from(resets_at_epoch).unwrap_or(0);
                let at = domain::epoch_rfc3339(resets_at_epoch).unwrap_or_default();
                let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "budget-exhausted", "Chat budget exhausted")
                    .detail(format!("this month's chat tokens are spent; the budget resets at {at}"));
                e.retry_after = Some(resets.saturating_sub(now).max(1));
                e
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut res = (status, body).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}
