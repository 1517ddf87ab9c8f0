//! The route table: the one place a function declares its routes. It builds the axum router,
//! and the same list feeds the OpenAPI document and the cross-tenant authorization matrix,
//! so a route cannot exist without being documented and tested.

use axum::Router;
use axum::handler::Handler;
use axum::response::IntoResponse;
use axum::routing::{MethodFilter, on};
use http::Method;

use crate::ApiError;

/// One route as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub method: Method,
    /// In API Gateway's syntax, which axum shares: `/orgs/{orgId}`.
    pub path: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
}

/// A router under construction together with the list of its routes.
pub struct RouteTable<S> {
    router: Router<S>,
    routes: Vec<RouteInfo>,
}

impl<S: Clone + Send + Sync + 'static> Default for RouteTable<S> {
    fn default() -> Self {
        RouteTable { router: Router::new(), routes: Vec::new() }
    }
}

impl<S: Clone + Send + Sync + 'static> RouteTable<S> {
    pub fn route<H, T>(mut self, method: Method, path: &'static str, operation_id: &'static str, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
        self.router = self.router.route(path, on(filter, handler));
        self.routes.push(RouteInfo { method, path, operation_id, summary });
        self
    }

    pub fn routes(&self) -> &[RouteInfo] {
        &self.routes
    }

    /// The routes with their state, not yet finished: routers of several functions can be
    /// merged (the local runner serves them all) and then finished once with [`finish`].
    pub fn with_state(self, state: S) -> (Router, Vec<RouteInfo>) {
        (self.router.with_state(state), self.routes)
    }

    /// The finished router of one function.
    pub fn into_router(self, state: S) -> (Router, Vec<RouteInfo>) {
        let (router, routes) = self.with_state(state);
        (finish(router), routes)
    }
}

/// Unknown paths answer 404 and known paths with another method 405, both as problems; the
/// request layer wraps the whole router so that it runs before routing (it maps API
/// Gateway's staged path back to the resource path).
pub fn finish(router: Router) -> Router {
    let inner = router
        .fallback(|| async { ApiError::not_found().detail("no such route").into_response() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed().into_response() });
    Router::new().fallback_service(inner).layer(axum::middleware::from_fn(crate::lambda::request_layer))
}
