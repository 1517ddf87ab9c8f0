//! The rate-limit layer every function's routes pass through (see `store::RateGate` for the
//! buckets and what each costs). It finds the route's class in the route table, opens the
//! request's gate and:
//!
//! - for a route under `/orgs/{orgId}`, leaves the charge to the authorization (the org's
//!   buckets are charged only for its members, the caller's own in that org), and when the
//!   request ended before it was authorized (a 404 to a stranger, a 400), charges the
//!   caller's own budget outside any org, so a refused request is not free either;
//! - for any other route (the caller's profile, their orgs, invitations to them, platform
//!   operators' routes), charges the caller's own budget outside any org concurrently with
//!   the handler: a read's answer is dropped if refused, and a write's writes wait for the
//!   charge (`store::RateGate::holding_writes`).
//!
//! Every answer of a signed-in caller carries `RateLimit-Policy` and `RateLimit` (of the
//! bucket with the fewest requests left); over a limit the answer is 429 `rate-limited` with
//! `Retry-After`, and the handler's work did not happen. Public routes (no caller to charge)
//! are left to API Gateway's stage throttling.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::{DomainError, RateClass};
use http::{HeaderName, HeaderValue, Method};
use store::{RateGate, Store};

use crate::{ApiError, RouteInfo};

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers).
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// What the layer knows of a route.
#[derive(Debug, Clone, Copy)]
struct RouteRate {
    class: RateClass,
    public: bool,
    in_org: bool,
    /// A `GET`: it changes nothing.
    read: bool,
}

/// The layer's state: the store the buckets are in, and the function's routes.
pub(crate) struct RateLayer {
    store: Store,
    routes: HashMap<(Method, &'static str), RouteRate>,
}

impl RateLayer {
    pub(crate) fn new(store: Store, routes: &[RouteInfo]) -> Arc<RateLayer> {
        let routes = routes
            .iter()
            .map(|r| {
                (
                    (r.method.clone(), r.path),
                    RouteRate { class: r.rate_class, public: r.public, in_org: r.path.starts_with("/orgs/{orgId}"), read: r.method == Method::GET },
                )
            })
            .collect();
        Arc::new(RateLayer { store, routes })
    }
}

pub(crate) async fn layer(State(layer): State<Arc<RateLayer>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().and_then(|m| layer.routes.get(&(req.method().clone(), m.as_str()))).copied();
    let Some(route) = route.filter(|r| !r.public) else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let who = crate::identity::identity_of(&parts);
    let claimed = crate::identity::claimed_orgs(&parts);
    let req = Request::from_parts(parts, body);
    let Some(who) = who else {
        return next.run(req).await; // the handler answers 401
    };
    let gate = if route.in_org || route.read { RateGate::new(&who, route.class, claimed) } else { RateGate::holding_writes(&who, route.class) };
    let mut response = if route.in_org {
        let response = gate.scope(next.run(req)).await;
        if gate.charged().await {
            response
        } else {
            match layer.store.charge_unscoped(&gate).await {
                Err(e @ DomainError::RateLimited { .. }) => ApiError::from(e).into_response(),
                _ => response,
            }
        }
    } else {
        // Outside orgs the caller's own buckets are charged concurrently with the handler: a
        // read's answer is dropped when the charge refuses it; a write's writes wait for the
        // charge (the store holds them), so a refused write does nothing.
        let (charged, response) = futures::join!(layer.store.charge_unscoped(&gate), gate.scope(next.run(req)));
        match charged {
            Err(e @ DomainError::RateLimited { .. }) => ApiError::from(e).into_response(),
            Err(e) if route.read => ApiError::from(e).into_response(),
            // a failed charge was made again by the handler's first write (or it wrote nothing)
            _ if gate.refused().await => {
                let retry_after_secs = gate.headline().await.map_or(60, |q| q.reset_secs);
                ApiError::from(DomainError::RateLimited { what: route.class.what(), retry_after_secs }).into_response()
            }
            _ => response,
        }
    };
    if let Some(quota) = gate.headline().await {
        let headers = response.headers_mut();
        for (name, value) in [(RATELIMIT_POLICY, quota.policy_header()), (RATELIMIT, quota.state_header())] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
    response
}
