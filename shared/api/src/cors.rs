//! Cross-origin resource sharing: which browser origins may read the API's answers.
//!
//! The policy is a value ([`Cors`]), built from `ALLOWED_ORIGINS` on Lambda
//! ([`Cors::from_env`]) or directly in tests. Entries are exact origins
//! (`https://app.example.com`), an origin with any port (`http://localhost:*`), or `*`
//! alone for any origin. Every answer to an allowed origin carries
//! `Access-Control-Allow-Origin` (the origin echoed, with `Vary: Origin`; `*` when the
//! policy is `*`) and `Access-Control-Expose-Headers`; credentials are never allowed (the API
//! takes a bearer token, not cookies). A preflight (`OPTIONS` with
//! `Access-Control-Request-Method`) from an allowed origin is answered 204 with the methods
//! of the path, the request headers the API reads, and a max age. Any other origin gets the
//! normal answer without CORS headers, so the browser withholds it.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use lambda_http::RequestExt;

use crate::RouteInfo;

/// The environment variable [`Cors::from_env`] reads.
pub const ALLOWED_ORIGINS_ENV: &str = "ALLOWED_ORIGINS";
/// Response headers a browser script may read besides the CORS-safelisted ones.
pub const EXPOSE_HEADERS: &str = "ETag, Location, RateLimit, RateLimit-Policy, Retry-After";
/// Request headers a browser script may send besides the CORS-safelisted ones.
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type, If-Match, Idempotency-Key";
/// The methods a preflight names when the path matches no declared route.
pub const ALL_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
/// How long a browser may cache a preflight answer, in seconds (Chromium caps it at 7200).
pub const DEFAULT_MAX_AGE_SECS: u32 = 3600;

/// One allowed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    /// `scheme://host[:port]`, compared exactly (ASCII case-insensitively).
    Exact(String),
    /// `scheme://host:*`: that scheme and host on any port, or on none.
    AnyPort(String),
}

impl Allowed {
    fn matches(&self, origin: &str) -> bool {
        match self {
            Allowed::Exact(o) => origin.eq_ignore_ascii_case(o),
            Allowed::AnyPort(prefix) => {
                let Some(rest) = origin.get(..prefix.len()).filter(|p| p.eq_ignore_ascii_case(prefix)).map(|_| &origin[prefix.len()..]) else {
                    return false;
                };
                rest.is_empty() || rest.strip_prefix(':').is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
            }
        }
    }
}

/// A CORS policy. Build it with [`Cors::any`], [`Cors::origins`] or [`Cors::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// `None`: any origin (`*`).
    allowed: Option<Vec<Allowed>>,
    max_age_secs: u32,
    /// `(path template, method)` of the declared routes, for the methods a preflight names.
    routes: Vec<(String, Method)>,
}

/// A configured origin that is not `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an origin (scheme://host[:port], scheme://host:* or *): {0:?}")]
pub struct BadOrigin(pub String);

impl Cors {
    /// Any origin may read the answers (`Access-Control-Allow-Origin: *`).
    pub fn any() -> Cors {
        Cors { allowed: None, max_age_secs: DEFAULT_MAX_AGE_SECS, routes: Vec::new() }
    }

    /// Only these origins (see the module documentation for their syntax); `*` among them
    /// allows any origin.
    pub fn origins<I, O>(origins: I) -> Result<Cors, BadOrigin>
    where
        I: IntoIterator<Item = O>,
        O: AsRef<str>,
    {
        let mut allowed = Vec::new();
        for raw in origins {
            let o = raw.as_ref().trim().trim_end_matches('/');
            if o.is_empty() {
                continue;
            }
            if o == "*" {
                return Ok(Cors::any());
            }
            let (scheme, rest) = o.split_once("://").ok_or_else(|| BadOrigin(o.to_owned()))?;
            let valid_host = |h: &str| !h.is_empty() && !h.contains(['/', '?', '#', '@', ' ', '*']);
            if !matches!(scheme, "http" | "https") {
                return Err(BadOrigin(o.to_owned()));
            }
            allowed.push(match rest.strip_suffix(":*") {
                Some(host) if valid_host(host) => Allowed::AnyPort(format!("{scheme}://{}", host.to_ascii_lowercase())),
                None if valid_host(rest) => Allowed::Exact(o.to_ascii_lowercase()),
                _ => return Err(BadOrigin(o.to_owned())),
            });
        }
        Ok(Cors { allowed: Some(allowed), max_age_secs: DEFAULT_MAX_AGE_SECS, routes: Vec::new() })
    }

    /// A comma-separated list as `ALLOWED_ORIGINS` holds it; blank: no policy (no CORS
    /// headers at all).
    pub fn parse(spec: &str) -> Result<Option<Cors>, BadOrigin> {
        if spec.trim().is_empty() {
            return Ok(None);
        }
        Cors::origins(spec.split(',')).map(Some)
    }

    /// The policy `ALLOWED_ORIGINS` describes; unset or blank: none. A malformed entry is
    /// logged and the policy left out (answers carry no CORS headers) rather than guessed.
    pub fn from_env() -> Option<Cors> {
        Cors::from_env_var(ALLOWED_ORIGINS_ENV, "")
    }

    /// The policy the variable `name` describes, `default` when it is unset.
    pub fn from_env_var(name: &str, default: &str) -> Option<Cors> {
        let spec = std::env::var(name).unwrap_or_else(|_| default.to_owned());
        match Cors::parse(&spec) {
            Ok(cors) => cors,
            Err(e) => {
                tracing::error!(variable = name, error = %e, "CORS policy ignored");
                None
            }
        }
    }

    /// The same policy with another preflight max age.
    pub fn max_age(mut self, secs: u32) -> Cors {
        self.max_age_secs = secs;
        self
    }

    /// The same policy naming, in a preflight, the methods these routes declare for the path.
    pub fn for_routes(mut self, routes: &[RouteInfo]) -> Cors {
        self.routes.extend(routes.iter().map(|r| (r.path.to_owned(), r.method.clone())));
        self
    }

    /// Whether any origin is allowed.
    pub fn allows_any(&self) -> bool {
        self.allowed.is_none()
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if it is allowed.
    pub fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match &self.allowed {
            None => Some(HeaderValue::from_static("*")),
            Some(list) => {
                let o = origin?;
                let s = o.to_str().ok()?;
                list.iter().any(|a| a.matches(s)).then(|| o.clone())
            }
        }
    }

    /// Adds the CORS headers of an answer to a request from `origin`.
    pub fn decorate(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        if !self.allows_any() {
            add_vary_origin(headers);
        }
        let Some(allow) = self.allow_origin(origin) else { return };
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
        headers.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
    }

    /// The methods a preflight for `path` names.
    pub fn methods_for(&self, path: &str) -> String {
        let mut methods: Vec<&str> = self.routes.iter().filter(|(t, _)| path_matches(t, path)).map(|(_, m)| m.as_str()).collect();
        if methods.is_empty() {
            return ALL_METHODS.to_owned();
        }
        methods.sort_unstable();
        methods.dedup();
        methods.join(", ")
    }

    /// The answer to a preflight for `path` from `origin`, when the origin is allowed.
    pub fn preflight(&self, origin: Option<&HeaderValue>, path: &str) -> Option<Response> {
        let allow = self.allow_origin(origin)?;
        let mut res = StatusCode::NO_CONTENT.into_response();
        let h = res.headers_mut();
        if !self.allows_any() {
            add_vary_origin(h);
        }
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        if let Ok(methods) = HeaderValue::from_str(&self.methods_for(path)) {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
        }
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(self.max_age_secs));
        Some(res)
    }

    /// `router` with this policy on every answer, preflights answered before anything else
    /// in it runs (authentication included).
    pub fn wrap(self, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(Arc::new(self), layer))
    }
}

/// Whether a request is a CORS preflight.
pub fn is_preflight(req: &Request) -> bool {
    req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

fn add_vary_origin(headers: &mut HeaderMap) {
    let already = headers
        .get_all(header::VARY)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.split(',').any(|p| p.trim().eq_ignore_ascii_case("origin") || p.trim() == "*")));
    if !already {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// `/orgs/{orgId}` matches `/orgs/01J…`: a `{name}` segment matches any non-empty segment.
fn path_matches(template: &str, path: &str) -> bool {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) if ts.starts_with('{') && ts.ends_with('}') && !ps.is_empty() => {}
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return false,
        }
    }
}

async fn layer(State(cors): State<Arc<Cors>>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    if is_preflight(&req) {
        // On Lambda the URI may carry the stage; the resource path is what routes declare.
        let raw = req.raw_http_path();
        let path = if raw.is_empty() { req.uri().path() } else { raw };
        if let Some(res) = cors.preflight(origin.as_ref(), path) {
            return res;
        }
    }
    let mut res: Response<Body> = next.run(req).await;
    cors.decorate(origin.as_ref(), res.headers_mut());
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tower::ServiceExt;

    fn origin(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn parses_the_configured_origins() {
        assert_eq!(Cors::parse("").unwrap(), None);
        assert_eq!(Cors::parse("  ").unwrap(), None);
        assert!(Cors::parse("*").unwrap().unwrap().allows_any());
        assert!(Cors::parse("https://a.example, *").unwrap().unwrap().allows_any());
        let c = Cors::parse("https://App.Example.com/, http://localhost:*").unwrap().unwrap();
        assert!(!c.allows_any());
        assert!(c.allow_origin(Some(&origin("https://app.example.com"))).is_some());
        assert!(Cors::parse("app.example.com").is_err());
        assert!(Cors::parse("ftp://app.example.com").is_err());
        assert!(Cors::parse("https://app.example.com/path").is_err());
        assert!(Cors::parse("https://*.example.com").is_err());
    }

    #[test]
    fn allows_listed_origins_only() {
        let c = Cors::origins(["https://app.example.com", "http://127.0.0.1:*"]).unwrap();
        let yes = ["https://app.example.com", "HTTPS://APP.EXAMPLE.COM", "http://127.0.0.1", "http://127.0.0.1:5173"];
        for o in yes {
            assert_eq!(c.allow_origin(Some(&HeaderValue::from_str(o).unwrap())).unwrap(), o, "{o}");
        }
        let no = [
            "https://app.example.com:8443",
            "http://app.example.com",
            "https://app.example.com.evil.example",
            "http://127.0.0.1.evil.example",
            "http://127.0.0.1:",
            "http://127.0.0.1:80a",
            "https://127.0.0.1:3000",
            "null",
        ];
        for o in no {
            assert!(c.allow_origin(Some(&HeaderValue::from_str(o).unwrap())).is_none(), "{o}");
        }
        assert!(c.allow_origin(None).is_none());
        assert_eq!(Cors::any().allow_origin(None).unwrap(), "*");
    }

    #[test]
    fn preflight_names_the_methods_of_the_path() {
        let table = crate::RouteTable::<()>::default()
            .tag("orgs", "Organizations")
            .route(Method::GET, "/orgs/{orgId}", "getOrg", "x", || async {})
            .route(Method::PATCH, "/orgs/{orgId}", "updateOrg", "x", || async {})
            .route(Method::POST, "/orgs", "createOrg", "x", || async {});
        let c = Cors::any().for_routes(table.routes());
        assert_eq!(c.methods_for("/orgs/01J0000000000000000000000"), "GET, PATCH");
        assert_eq!(c.methods_for("/orgs"), "POST");
        assert_eq!(c.methods_for("/orgs//"), ALL_METHODS);
        assert_eq!(c.methods_for("/nowhere"), ALL_METHODS);
    }

    fn app(cors: Cors) -> Router {
        cors.wrap(
            Router::new()
                .route("/things", get(|| async { ([(header::ETAG, "\"1\"")], "ok") }))
                .fallback(|| async { crate::ApiError::not_found().into_response() }),
        )
    }

    async fn send(app: &Router, method: Method, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn answers_carry_the_headers_for_an_allowed_origin() {
        let app = app(Cors::origins(["http://localhost:3000"]).unwrap());
        let res = send(&app, Method::GET, "/things", &[("origin", "http://localhost:3000")]).await;
        assert_eq!(res.status(), 200);
        let h = res.headers();
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "http://localhost:3000");
        assert_eq!(h[header::ACCESS_CONTROL_EXPOSE_HEADERS], EXPOSE_HEADERS);
        assert_eq!(h[header::VARY], "Origin");
        assert!(!h.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
        // errors too
        let res = send(&app, Method::GET, "/nothing", &[("origin", "http://localhost:3000")]).await;
        assert_eq!(res.status(), 404);
        assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "http://localhost:3000");
    }

    #[tokio::test]
    async fn another_origin_gets_the_normal_answer_without_cors_headers() {
        let app = app(Cors::origins(["http://localhost:3000"]).unwrap());
        for origin in [Some("http://localhost:3001"), None] {
            let headers: Vec<(&str, &str)> = origin.into_iter().map(|o| ("origin", o)).collect();
            let res = send(&app, Method::GET, "/things", &headers).await;
            assert_eq!(res.status(), 200);
            assert!(!res.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN), "{origin:?}");
            assert!(!res.headers().contains_key(header::ACCESS_CONTROL_EXPOSE_HEADERS));
            assert_eq!(res.headers()[header::VARY], "Origin", "caches must key on the origin");
        }
        // a preflight from it is not answered as one
        let res = send(&app, Method::OPTIONS, "/things", &[("origin", "http://evil.example"), ("access-control-request-method", "GET")]).await;
        assert_ne!(res.status(), 204);
        assert!(!res.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    }

    #[tokio::test]
    async fn wildcard_policy_answers_star_without_vary() {
        let app = app(Cors::any());
        let res = send(&app, Method::GET, "/things", &[("origin", "https://anything.example")]).await;
        assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!res.headers().contains_key(header::VARY));
    }

    #[tokio::test]
    async fn preflight_is_answered_before_the_router() {
        let app = app(Cors::origins(["https://app.example.com"]).unwrap().max_age(600));
        let res = send(
            &app,
            Method::OPTIONS,
            "/things",
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "authorization, content-type"),
            ],
        )
        .await;
        assert_eq!(res.status(), 204);
        let h = res.headers();
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_METHODS], ALL_METHODS);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_HEADERS], ALLOW_HEADERS);
        assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], "600");
        assert_eq!(h[header::VARY], "Origin");
        assert!(!h.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
        // a plain OPTIONS is no preflight
        let res = send(&app, Method::OPTIONS, "/things", &[("origin", "https://app.example.com")]).await;
        assert_eq!(res.status(), 405);
    }

    #[tokio::test]
    async fn every_answer_of_a_finished_router_carries_them() {
        let router =
            Router::new().route("/things", get(|| async { "ok" })).route("/boom", get(|| async { if true { panic!("a handler bug") } else { "never" } }));
        let app = crate::finish_with(router, Some(Cors::origins(["https://app.example.com"]).unwrap()));
        for (method, path, status) in
            [(Method::GET, "/things", 200), (Method::GET, "/nothing", 404), (Method::DELETE, "/things", 405), (Method::GET, "/boom", 500)]
        {
            let res = send(&app, method.clone(), path, &[("origin", "https://app.example.com")]).await;
            assert_eq!(res.status(), status, "{method} {path}");
            assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com", "{method} {path}");
            if status >= 400 {
                assert_eq!(res.headers()[header::CONTENT_TYPE], crate::PROBLEM_JSON, "{method} {path}");
            }
        }
        let res = send(&app, Method::OPTIONS, "/things", &[("origin", "https://app.example.com"), ("access-control-request-method", "DELETE")]).await;
        assert_eq!(res.status(), 204);
        // without a policy, no CORS headers at all
        let app = crate::finish_with(Router::new().route("/things", get(|| async { "ok" })), None);
        let res = send(&app, Method::GET, "/things", &[("origin", "https://app.example.com")]).await;
        assert!(!res.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
        assert!(!res.headers().contains_key(header::VARY));
    }
}
