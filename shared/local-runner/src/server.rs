//! The runner's HTTP server: every function's routes under API Gateway's paths, behind the
//! same Cognito verification the REST authorizer performs, plus local auth and health.

use std::sync::Arc;

use api::{Cors, Platform, RouteInfo};
use aws_lambda_events::apigw::ApiGatewayProxyRequestContext;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
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

/// The interactive API reference: one page, no external assets (the machine may be offline).
const DOCS_PAGE: &str = include_str!("../assets/docs.html");

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
    let protected = functions.layer(axum::middleware::from_fn_with_state(Arc::new(verifier), authorize));
    let document = Arc::new(openapi());
    let app = Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/openapi.json", get(move || async move { Json((*document).clone()) }))
        .route("/docs", get(|| async { axum::response::Html(DOCS_PAGE) }))
        .merge(auth_routes::router(auth))
        .merge(local)
        .fallback_service(protected);
    match cors {
        Some(cors) => cors.wrap(app),
        None => app,
    }
}

/// What API Gateway answers when the authorizer refuses a token.
fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({"message": "Unauthorized"}))).into_response()
}

/// Verifies the bearer ID token and fills the request context as the REST Cognito
/// authorizer does, so handlers cannot tell the difference.
async fn authorize(State(verifier): State<Arc<TokenVerifier>>, req: Request, next: Next) -> Response {
    let token = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim().to_owned());
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return unauthorized();
    };
    let claims = match verifier.verify(&token) {
        Ok(claims) => claims,
        Err(e) => {
            tracing::info!(reason = ?e, "token refused");
            return unauthorized();
        }
    };
    let mut ctx = ApiGatewayProxyRequestContext::default();
    ctx.stage = Some("local".into());
    ctx.request_id = Some(ulid::Ulid::new().to_string());
    ctx.http_method = req.method().clone();
    ctx.path = Some(req.uri().path().to_owned());
    ctx.authorizer.fields.insert("claims".into(), as_authorizer_claims(&claims));
    let req = req.with_request_context(RequestContext::ApiGatewayV1(ctx));
    next.run(req).await
}
