//! The runner's HTTP server: every function's routes under API Gateway's paths, behind the
//! same Cognito verification the REST authorizer performs (but for the routes declared
//! public, which API Gateway serves without an authorizer), plus local auth and health.

use std::net::SocketAddr;
use std::sync::Arc;

use api::{Cors, Platform, RouteInfo};
use aws_lambda_events::apigw::ApiGatewayProxyRequestContext;
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::AddExtension;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use serde_json::json;

use crate::auth_routes::{self, AuthState};
use crate::jwt::{TokenVerifier, as_authorizer_claims};

/// The variable that sets the local CORS policy (`ALLOWED_ORIGINS` on AWS), and its default:
/// pages served from loopback on any port. Empty: no CORS headers.
pub const ALLOWED_ORIGINS_ENV: &str = "TENANTRY_ALLOWED_ORIGINS";
pub const DEFAULT_ALLOWED_ORIGINS: &str = "http://localhost:*,http://127.0.0.1:*";

/// The local CORS policy from [`ALLOWED_ORIGINS_ENV`].
pub fn cors_from_env() -> Option<Cors> {
    let routes: Vec<RouteInfo> = registry::routes().into_iter().map(|(_, r)| r).collect();
    Cors::from_env_var(ALLOWED_ORIGINS_ENV, DEFAULT_ALLOWED_ORIGINS).map(|c| c.for_routes(&routes))
}

/// Every function's routes (from the registry), merged and finished, with the list of all
/// routes. No CORS policy here: [`app`] applies one around everything, as API Gateway does in
/// front of the functions.
pub fn functions(platform: &Platform) -> Result<(Router, Vec<RouteInfo>), String> {
    let mut merged = Router::new();
    for f in registry::all() {
        if !f.sources.http {
            continue;
        }
        let build = f.handlers.ok_or_else(|| format!("{} serves routes but builds no handlers", f.name))?;
        let handlers = build(platform).map_err(|e| format!("{}: {e}", f.name))?;
        merged = merged.merge(handlers.http.ok_or_else(|| format!("{} serves routes but has no router", f.name))?);
    }
    let mut routes: Vec<RouteInfo> = registry::routes().into_iter().map(|(_, r)| r).collect();
    routes.sort_by(|a, b| (a.path, a.method.as_str()).cmp(&(b.path, b.method.as_str())));
    Ok((api::finish_with(merged, None), routes))
}

/// `functions` with every request metered into the cost ledger (see `api::metering`), as
/// the Lambda runtime layer meters each invocation on AWS.
pub fn metered(functions: Router, platform: &Platform) -> Router {
    functions.layer(axum::middleware::from_fn_with_state(platform.store.clone(), api::metering::metered))
}

/// Every function's routes on `store`'s table, metered, as `make dev` serves them (without its
/// authorizer: callers bring their claims), with the platform they run on: for tests that call
/// the API and read what it cost.
pub fn metered_stack(config: &aws_config::SdkConfig, store: store::Store) -> Result<(Platform, Router), String> {
    let platform = crate::provision::platform(config, store, "https://app.example.com", Default::default());
    let (functions, _) = functions(&platform)?;
    let router = metered(functions, &platform);
    Ok((platform, router))
}

/// The interactive API reference: one page, no external assets (the machine may be offline).
const DOCS_PAGE: &str = include_str!("../assets/docs.html");

/// Where the typed client's copy of the document lives (from the repository's root).
pub const CLIENT_OPENAPI: &str = "shared/client/openapi.json";

/// The OpenAPI document of every function's routes.
pub fn openapi() -> serde_json::Value {
    let routes: Vec<RouteInfo> = registry::routes().into_iter().map(|(_, r)| r).collect();
    api::openapi::document("Tenantry", env!("CARGO_PKG_VERSION"), &routes)
}

/// The whole local API, with the CORS policy of [`ALLOWED_ORIGINS_ENV`].
pub fn app(functions: Router, verifier: TokenVerifier, auth: AuthState, local: Router) -> Router {
    app_with_cors(functions, verifier, auth, local, cors_from_env())
}

/// The whole local API with this CORS policy: preflights are answered before the token is
/// checked, as API Gateway answers them, and every answer carries the policy's headers, the
/// authorizer's 401 and the local routes' answers included. `local` holds further local-only
/// routes (the clock and the event log).
pub fn app_with_cors(functions: Router, verifier: TokenVerifier, auth: AuthState, local: Router, cors: Option<Cors>) -> Router {
    let routes: Vec<RouteInfo> = registry::routes().into_iter().map(|(_, r)| r).collect();
    let protected = authorized(functions, verifier, &routes);
    let document = Arc::new(openapi());
    let console = ConsoleFiles {
        dist: testkit::endpoint::repo_root().map(|r| r.join(CONSOLE_DIST)).into(),
        csp: console_content_security_policy(&auth.resources.endpoint).into(),
    };
    let (root, index) = (console.clone(), console.clone());
    let app = Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/openapi.json", get(move || async move { Json((*document).clone()) }))
        .route("/docs", get(|| async { axum::response::Html(DOCS_PAGE) }))
        .route("/app", get(move || async move { root.file("") }))
        .route("/app/", get(move || async move { index.file("") }))
        .route("/app/{*path}", get(move |axum::extract::Path(path): axum::extract::Path<String>| async move { console.file(&path) }))
        .merge(auth_routes::router(auth))
        .merge(local)
        .fallback_service(protected);
    match cors {
        Some(cors) => cors.wrap(app),
        None => app,
    }
}

/// The console's Content-Security-Policy, as the deployed distribution sends it
/// (infra/lib/console.ts): its own files only, nothing inline, no frames; it connects to this
/// runner and to the local AWS endpoint (S3's presigned uploads and downloads), where the
/// deployed one connects to the API, the user pool and S3.
pub fn console_content_security_policy(endpoint: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data: {endpoint}; connect-src 'self' {endpoint}; \
         font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Where `make console` builds the web console (from the repository's root).
pub const CONSOLE_DIST: &str = "shared/console/dist";

/// The console's build (found once, when the app is built) and the policy it is served under.
#[derive(Clone)]
struct ConsoleFiles {
    dist: Arc<Option<std::path::PathBuf>>,
    csp: Arc<str>,
}

impl ConsoleFiles {
    /// `/app/{path}`: a file of the console's build, or its `index.html` for any other path (a
    /// single-page app: `/app/orgs/{orgId}` and the invitation link `/app/invites/accept` are
    /// its own routes). Before `make console`, a page saying so.
    fn file(&self, path: &str) -> Response {
        let Some(dist) = self.dist.as_ref() else {
            return (StatusCode::NOT_FOUND, "no repository here").into_response();
        };
        let csp = &*self.csp;
        let safe = !path.split('/').any(|seg| seg == ".." || seg.starts_with('.'));
        let file = dist.join(path);
        let is_file = safe && !path.is_empty() && file.is_file();
        // A missing file (its name has a dot: `config.json`, an old asset) is 404, as on
        // CloudFront for the deployment's files; any other path is one of the app's own routes.
        if !is_file && path.rsplit('/').next().is_some_and(|name| name.contains('.')) {
            return (StatusCode::NOT_FOUND, "no such file").into_response();
        }
        let (file, path) = if is_file { (file, path) } else { (dist.join("index.html"), "index.html") };
        let media = match path.rsplit('.').next() {
            Some("html") => "text/html; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            Some("png") => "image/png",
            Some("ico") => "image/x-icon",
            Some("json") => "application/json",
            _ => "application/octet-stream",
        };
        match std::fs::read(&file) {
            Ok(bytes) => ([(header::CONTENT_TYPE, media), (header::CONTENT_SECURITY_POLICY, csp)], bytes).into_response(),
            Err(_) => (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_SECURITY_POLICY, csp)],
                axum::response::Html("<!doctype html><title>Console not built</title><p>The console is not built yet: run <code>make console</code>.</p>"),
            )
                .into_response(),
        }
    }
}

/// `functions` (whose routes are `routes`) behind the REST Cognito authorizer, as API Gateway
/// serves them: a request for a public route (by method and the path template the router
/// picks for its path) passes without its token being looked at, with a request context
/// that has no authorizer claims (AuthorizationType NONE); every other request needs a valid
/// ID token, whose claims fill the context.
pub fn authorized(functions: Router, verifier: TokenVerifier, routes: &[RouteInfo]) -> Router {
    let gate = Gate { verifier, public: PublicRoutes::new(routes) };
    functions.layer(axum::middleware::from_fn_with_state(Arc::new(gate), authorize))
}

struct Gate {
    verifier: TokenVerifier,
    public: PublicRoutes,
}

/// One segment of a path template.
#[derive(Clone, PartialEq, Eq)]
enum Segment {
    Literal(&'static str),
    Parameter,
}

/// Which requests are for a public route. A path is matched to its route's template as axum
/// (and API Gateway) route it: among the templates it fits, the one with literal segments
/// where the others have parameters, earliest first (`/orgs/mine` before `/orgs/{orgId}`), so
/// a public template never captures a path that a protected one routes.
struct PublicRoutes {
    /// Every template, with the methods declared public on it.
    templates: Vec<(Vec<Segment>, Vec<Method>)>,
}

impl PublicRoutes {
    fn new(routes: &[RouteInfo]) -> PublicRoutes {
        let mut templates: Vec<(Vec<Segment>, Vec<Method>)> = Vec::new();
        for route in routes {
            // A greedy parameter (`{proxy+}`) is never public here: its requests stay protected.
            let Some(segments) = Self::template(route.path) else { continue };
            let index = match templates.iter().position(|(t, _)| *t == segments) {
                Some(i) => i,
                None => {
                    templates.push((segments, Vec::new()));
                    templates.len() - 1
                }
            };
            if route.public {
                templates[index].1.push(route.method.clone());
            }
        }
        PublicRoutes { templates }
    }

    fn template(path: &'static str) -> Option<Vec<Segment>> {
        path.split('/')
            .skip(1)
            .map(|seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) if name.ends_with('+') || name.starts_with('*') => None,
                Some(_) => Some(Segment::Parameter),
                None => Some(Segment::Literal(seg)),
            })
            .collect()
    }

    fn is_public(&self, method: &Method, path: &str) -> bool {
        if self.templates.iter().all(|(_, methods)| methods.is_empty()) {
            return false;
        }
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        let fits = |template: &[Segment]| {
            template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| match t {
                    Segment::Literal(l) => l == s,
                    Segment::Parameter => !s.is_empty(),
                })
        };
        // literal before parameter at the first segment where two fitting templates differ
        let rank = |template: &[Segment]| template.iter().map(|t| *t == Segment::Parameter).collect::<Vec<bool>>();
        let routed = self.templates.iter().filter(|(t, _)| path.starts_with('/') && fits(t)).min_by_key(|(t, _)| rank(t));
        routed.is_some_and(|(_, methods)| methods.contains(method))
    }
}

/// What API Gateway answers when the authorizer refuses a token.
fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({"message": "Unauthorized"}))).into_response()
}

/// The request context API Gateway sends, without the authorizer's part: the caller's
/// `identity` as API Gateway sees it, the source IP from the TCP peer (when the server was
/// started with [`serve`]) and the user agent from the `User-Agent` header.
fn request_context(req: &Request) -> ApiGatewayProxyRequestContext {
    let mut ctx = ApiGatewayProxyRequestContext::default();
    ctx.stage = Some("local".into());
    ctx.request_id = Some(ulid::Ulid::new().to_string());
    ctx.http_method = req.method().clone();
    ctx.path = Some(req.uri().path().to_owned());
    ctx.identity.source_ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip().to_string());
    ctx.identity.user_agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    ctx
}

/// Serves `app` on `listener` with each connection's peer address known to the requests
/// (API Gateway's `identity.sourceIp`).
pub fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
) -> axum::serve::Serve<tokio::net::TcpListener, IntoMakeServiceWithConnectInfo<Router, SocketAddr>, AddExtension<Router, ConnectInfo<SocketAddr>>> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
}

/// Verifies the bearer ID token and fills the request context as the REST Cognito
/// authorizer does, so handlers cannot tell the difference; lets a public route's request
/// through with a context without claims, whatever its Authorization header holds.
async fn authorize(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    if gate.public.is_public(req.method(), req.uri().path()) {
        let ctx = request_context(&req);
        let req = req.with_request_context(RequestContext::ApiGatewayV1(ctx));
        return next.run(req).await;
    }
    let token = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim().to_owned());
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return unauthorized();
    };
    let claims = match gate.verifier.verify(&token) {
        Ok(claims) => claims,
        Err(e) => {
            tracing::info!(reason = ?e, "token refused");
            return unauthorized();
        }
    };
    let mut ctx = request_context(&req);
    ctx.authorizer.fields.insert("claims".into(), as_authorizer_claims(&claims));
    let req = req.with_request_context(RequestContext::ApiGatewayV1(ctx));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    use serde_json::Value;
    use tower::ServiceExt;

    const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Test";
    const AUDIENCE: &str = "client-123";

    fn verifier() -> TokenVerifier {
        TokenVerifier::from_jwks(include_str!("../tests/fixtures/test-jwks.json"), ISSUER, AUDIENCE).unwrap()
    }

    fn token() -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let claims = json!({"sub": "user-1", "iss": ISSUER, "aud": AUDIENCE, "token_use": "id", "exp": now + 600, "iat": now, "email": "a@example.com"});
        let key = EncodingKey::from_rsa_der(include_bytes!("../tests/fixtures/test-signing-key.der"));
        encode(&Header { kid: Some("test-key".into()), ..Header::new(Algorithm::RS256) }, &claims, &key).unwrap()
    }

    /// Answers with the request context it got: whether there is one, and its claims.
    async fn probe(req: Request) -> Json<Value> {
        Json(match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV1(ctx)) => json!({"context": true, "claims": ctx.authorizer.fields.get("claims"), "stage": ctx.stage}),
            _ => json!({"context": false}),
        })
    }

    /// An unsubscribe link (a public page and its public one-click POST), a protected route,
    /// and a public template next to a protected literal path it would otherwise capture.
    fn app() -> Router {
        let table = api::RouteTable::<()>::default()
            .tag("t", "test")
            .route(Method::GET, "/unsubscribe", "unsubscribePage", "page", probe)
            .public()
            .returns_media(200, "text/html")
            .route(Method::POST, "/unsubscribe", "unsubscribe", "one click", probe)
            .public()
            .route(Method::GET, "/orgs/{orgId}", "getOrg", "protected", probe)
            .route(Method::GET, "/pages/{pageId}", "page", "public", probe)
            .public()
            .route(Method::GET, "/pages/mine", "myPages", "protected", probe);
        let (router, routes) = table.with_state(());
        authorized(api::finish_with(router, None), verifier(), &routes)
    }

    async fn call(method: &str, path: &str, authorization: Option<&str>) -> (u16, Value) {
        let mut req = http::Request::builder().method(method).uri(path);
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        let body = if method == "POST" {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from("List-Unsubscribe=One-Click")
        } else {
            Body::empty()
        };
        let res = app().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn a_public_route_passes_without_a_token_and_gets_no_claims() {
        let valid = format!("Bearer {}", token());
        for method in ["GET", "POST"] {
            for authorization in [None, Some("Bearer not-a-jwt"), Some("Basic dXNlcjpwYXNz"), Some(""), Some(valid.as_str())] {
                let (status, body) = call(method, "/unsubscribe?token=signed", authorization).await;
                assert_eq!(status, 200, "{method} with {authorization:?}");
                // API Gateway's AuthorizationType NONE: a context, no authorizer claims, even for a valid token
                assert_eq!(body, json!({"context": true, "claims": null, "stage": "local"}), "{method} with {authorization:?}");
            }
        }
    }

    #[tokio::test]
    async fn a_protected_route_still_needs_a_valid_token() {
        for authorization in [None, Some("Bearer not-a-jwt"), Some("")] {
            assert_eq!(call("GET", "/orgs/01ARZ3NDEKTSV4RRFFQ69G5FAV", authorization).await, (401, json!({"message": "Unauthorized"})), "{authorization:?}");
        }
        let (status, body) = call("GET", "/orgs/01ARZ3NDEKTSV4RRFFQ69G5FAV", Some(&format!("Bearer {}", token()))).await;
        assert_eq!(status, 200);
        assert_eq!(body["claims"]["sub"], "user-1");
        assert_eq!(body["claims"]["email"], "a@example.com");
    }

    #[tokio::test]
    async fn public_is_per_method_and_per_routed_template() {
        // a method the public path does not declare is refused like any other request
        assert_eq!(call("PUT", "/unsubscribe", None).await.0, 401);
        assert_eq!(call("DELETE", "/unsubscribe", Some("Bearer not-a-jwt")).await.0, 401);
        // the literal /pages/mine is routed before the public /pages/{pageId}: it stays protected
        assert_eq!(call("GET", "/pages/mine", None).await.0, 401);
        assert_eq!(call("GET", "/pages/someone-elses", None).await.0, 200);
        // paths that fit no template (or only with an empty parameter) are protected
        for path in ["/unsubscribe/", "/unsubscribe/x", "/pages/", "/pages//", "/nowhere"] {
            assert_eq!(call("GET", path, None).await.0, 401, "{path}");
        }
    }

    #[test]
    fn without_public_routes_nothing_is_public() {
        let routes = api::RouteTable::<()>::default().tag("t", "test").route(Method::GET, "/unsubscribe", "u", "u", || async {}).routes().to_vec();
        assert!(!PublicRoutes::new(&routes).is_public(&Method::GET, "/unsubscribe"));
    }
}
