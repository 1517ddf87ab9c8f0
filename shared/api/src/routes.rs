//! The route table: the one place a function declares its routes. It builds the axum router,
//! and the same list feeds the OpenAPI document and the cross-tenant authorization matrix,
//! so a route cannot exist without being documented and tested.

use axum::Router;
use axum::handler::Handler;
use axum::response::IntoResponse;
use axum::routing::{MethodFilter, on};
use http::Method;

use domain::RateClass;

use crate::{ApiError, Cors};

/// A function's router state: the store its rate limits are kept in (`None`: no limits, for
/// routers of tests that exercise routing alone).
pub trait RouteState: Clone + Send + Sync + 'static {
    fn rate_store(&self) -> Option<&store::Store>;
}

impl RouteState for () {
    fn rate_store(&self) -> Option<&store::Store> {
        None
    }
}

/// Produces the JSON schema of a request or response type.
pub type SchemaFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

/// A group of operations in the OpenAPI document, declared in the route tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    pub name: &'static str,
    pub description: &'static str,
}

/// One route as declared.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    pub method: Method,
    /// In API Gateway's syntax, which axum shares: `/orgs/{orgId}`.
    pub path: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    /// The group the route is documented in.
    pub tag: Tag,
    /// The body it takes, if any.
    pub request: Option<SchemaFn>,
    /// The media type of that body (`application/json` unless declared otherwise).
    pub request_media: &'static str,
    /// Its success status and body (none for 204).
    pub response: (u16, Option<SchemaFn>),
    /// The media type of that body (`application/json` unless declared otherwise).
    pub response_media: &'static str,
    /// Headers its success answer always carries: name and meaning.
    pub response_headers: Vec<(&'static str, &'static str)>,
    /// Query parameters besides `limit` and `cursor`, when it is a listing.
    pub query: &'static [&'static str],
    /// The values a query parameter takes, when they are a fixed set.
    pub query_values: Vec<(&'static str, &'static [&'static str])>,
    pub paginated: bool,
    /// Error statuses it answers besides those its shape implies (see [`crate::openapi`]).
    pub errors: Vec<u16>,
    /// Served without the Cognito authorizer (API Gateway's AuthorizationType NONE): the
    /// request carries no claims, and the handler checks whatever credential it takes itself.
    pub public: bool,
    /// Also answers as server-sent events (`text/event-stream`) to a request that accepts
    /// them: what the events are.
    pub event_stream: Option<&'static str>,
    /// A redirect that also answers 200 with the [`crate::Link`] itself to a request that
    /// accepts `application/json` ([`crate::redirect_or_link`]).
    pub or_link: bool,
    /// What the route costs against the rate limits besides an ordinary request (every
    /// request counts as one `General`): chat messages, uploads, invitations, exports,
    /// imports.
    pub rate_class: RateClass,
}

fn schema_of<T: schemars::JsonSchema>(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<T>()
}

/// A router under construction together with the list of its routes.
pub struct RouteTable<S> {
    router: Router<S>,
    routes: Vec<RouteInfo>,
    tag: Option<Tag>,
}

impl<S: Clone + Send + Sync + 'static> Default for RouteTable<S> {
    fn default() -> Self {
        RouteTable { router: Router::new(), routes: Vec::new(), tag: None }
    }
}

impl<S: Clone + Send + Sync + 'static> RouteTable<S> {
    /// The group the routes declared from here on are documented in.
    pub fn tag(mut self, name: &'static str, description: &'static str) -> Self {
        self.tag = Some(Tag { name, description });
        self
    }

    /// Declares a route (after a [`tag`](Self::tag)).
    pub fn route<H, T>(mut self, method: Method, path: &'static str, operation_id: &'static str, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
        self.router = self.router.route(path, on(filter, handler));
        let status = if method == Method::POST { 201 } else { 200 };
        let tag = self.tag.unwrap_or_else(|| panic!("{method} {path}: declare a tag before the route"));
        self.routes.push(RouteInfo {
            method,
            path,
            operation_id,
            summary,
            tag,
            request: None,
            request_media: "application/json",
            response: (status, None),
            response_media: "application/json",
            response_headers: Vec::new(),
            query: &[],
            query_values: Vec::new(),
            paginated: false,
            errors: Vec::new(),
            public: false,
            event_stream: None,
            or_link: false,
            rate_class: RateClass::General,
        });
        self
    }

    fn last(&mut self) -> &mut RouteInfo {
        self.routes.last_mut().expect("a route was declared before its documentation")
    }

    /// Documents the JSON body the last route takes.
    pub fn takes<T: schemars::JsonSchema>(mut self) -> Self {
        self.last().request = Some(schema_of::<T>);
        self
    }

    /// Documents a body of another media type the last route takes (a CSV file, say).
    pub fn takes_media<T: schemars::JsonSchema>(mut self, media: &'static str) -> Self {
        let route = self.last();
        route.request = Some(schema_of::<T>);
        route.request_media = media;
        self
    }

    /// Documents the last route's success status and JSON body.
    pub fn returns<T: schemars::JsonSchema>(mut self, status: u16) -> Self {
        let route = self.last();
        route.response = (status, Some(schema_of::<T>));
        route.response_media = "application/json";
        self
    }

    /// Documents the last route's success status and a body of another media type (an HTML
    /// page, say), described as a string.
    pub fn returns_media(mut self, status: u16, media: &'static str) -> Self {
        let route = self.last();
        route.response = (status, Some(schema_of::<String>));
        route.response_media = media;
        self
    }

    /// Documents that the last route answers 204 with no body.
    pub fn no_content(mut self) -> Self {
        self.last().response = (204, None);
        self
    }

    /// Documents the last route as a paginated listing with these extra query parameters.
    pub fn paginated(mut self, query: &'static [&'static str]) -> Self {
        let route = self.last();
        route.paginated = true;
        route.query = query;
        self
    }

    /// Query parameters of the last route, when it is not a listing.
    pub fn query(mut self, query: &'static [&'static str]) -> Self {
        self.last().query = query;
        self
    }

    /// Documents that the last route answers 302 with no body and a `Location` (a presigned
    /// URL, say).
    pub fn redirects(mut self, to: &'static str) -> Self {
        let route = self.last();
        route.response = (302, None);
        route.response_headers.push(("Location", to));
        self
    }

    /// Documents that the last route, a [`redirects`](Self::redirects), also answers 200 with
    /// the link as JSON to a request that accepts `application/json`.
    pub fn or_link(mut self) -> Self {
        let route = self.last();
        assert_eq!(route.response.0, 302, "{} {}: or_link follows redirects", route.method, route.path);
        route.or_link = true;
        self
    }

    /// Documents a header the last route's success answer always carries.
    pub fn header(mut self, name: &'static str, meaning: &'static str) -> Self {
        self.last().response_headers.push((name, meaning));
        self
    }

    /// Documents the values a query parameter of the last route takes.
    pub fn query_values(mut self, name: &'static str, values: &'static [&'static str]) -> Self {
        self.last().query_values.push((name, values));
        self
    }

    /// Documents that the last route also answers `text/event-stream` (server-sent events,
    /// streamed) when the request's `Accept` asks for it.
    pub fn streams(mut self, events: &'static str) -> Self {
        self.last().event_stream = Some(events);
        self
    }

    /// Documents error statuses the last route answers besides those its shape implies.
    pub fn errors(mut self, statuses: &[u16]) -> Self {
        self.last().errors.extend_from_slice(statuses);
        self
    }

    /// Serves the last route without the Cognito authorizer: no token is asked for or
    /// checked, and the handler sees no claims (an unsubscribe link whose signed token is its
    /// only credential, say). Everywhere the routes go: API Gateway (AuthorizationType NONE),
    /// the local runner and the OpenAPI document (`security: []`).
    pub fn public(mut self) -> Self {
        self.last().public = true;
        self
    }

    /// Counts the last route against the rate limits of `class` too (an expensive route).
    pub fn rate_class(mut self, class: RateClass) -> Self {
        self.last().rate_class = class;
        self
    }

    pub fn routes(&self) -> &[RouteInfo] {
        &self.routes
    }

    /// The routes with their state, not yet finished: routers of several functions can be
    /// merged (the local runner serves them all) and then finished once with [`finish`].
    /// Every route passes through the rate-limit layer (`crate::rate`) of the state's store.
    pub fn with_state(self, state: S) -> (Router, Vec<RouteInfo>)
    where
        S: RouteState,
    {
        let router = match state.rate_store() {
            Some(store) => {
                self.router.layer(axum::middleware::from_fn_with_state(crate::rate::RateLayer::new(store.clone(), &self.routes), crate::rate::layer))
            }
            None => self.router,
        };
        (router.with_state(state), self.routes)
    }

    /// The finished router of one function, with the CORS policy of `ALLOWED_ORIGINS`.
    pub fn into_router(self, state: S) -> (Router, Vec<RouteInfo>)
    where
        S: RouteState,
    {
        let (router, routes) = self.with_state(state);
        let cors = Cors::from_env().map(|c| c.for_routes(&routes));
        (finish_with(router, cors), routes)
    }
}

/// [`finish_with`] the CORS policy of `ALLOWED_ORIGINS` (none when it is unset).
pub fn finish(router: Router) -> Router {
    finish_with(router, Cors::from_env())
}

/// Unknown paths answer 404 and known paths with another method 405, both as problems; the
/// request layer wraps the whole router so that it runs before routing (it maps API
/// Gateway's staged path back to the resource path). The CORS policy, when there is one,
/// wraps everything, so that every answer carries its headers, the 500 of a panic included.
pub fn finish_with(router: Router, cors: Option<Cors>) -> Router {
    let inner = router
        .fallback(|| async { ApiError::not_found().detail("no such route").into_response() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed().into_response() });
    let finished = Router::new().fallback_service(inner).layer(axum::middleware::from_fn(crate::lambda::request_layer));
    match cors {
        Some(cors) => cors.wrap(finished),
        None => finished,
    }
}
