//! The local stack end to end: sign-up, confirmation and login against the local user pool,
//! tokens verified as API Gateway's authorizer does, the functions' routes behind them.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use axum::Router;
use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use local_runner::auth_routes::AuthState;
use local_runner::jwt::TokenVerifier;
use local_runner::{provision, server};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Stack {
    app: Router,
    store: store::Store,
    resources: provision::LocalResources,
}

async fn stack() -> Stack {
    stack_with(None).await
}

/// `cors`: `None` for the runner's own policy (from the environment), else this one.
async fn stack_with(cors: Option<Option<api::Cors>>) -> Stack {
    stack_limited(cors, domain::PlatformLimits::default()).await
}

async fn stack_limited(cors: Option<Option<api::Cors>>, limits: domain::PlatformLimits) -> Stack {
    let endpoint = testkit::local_aws().endpoint.clone();
    let config = testkit::sdk_config().await;
    let table = format!("e2e-{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
    let resources = provision::provision(&config, &endpoint, &table).await.unwrap();
    let verifier = TokenVerifier::fetch(&endpoint, &resources.user_pool_id, &resources.issuer(), &resources.client_id).await.unwrap();
    let store = store::Store::new(store::dynamodb_client(&config), table, store::CursorKey::new("e2e")).with_limits(limits);
    let platform = provision::platform(&config, store.clone(), "https://app.example.com", Default::default());
    let (functions, _) = server::functions(&platform).unwrap();
    let triggers = cognito_triggers::Triggers {
        store: store.clone(),
        config: cognito_triggers::TriggerConfig { blocked_domains: vec!["blocked.example".into()], ..Default::default() },
    };
    let auth =
        AuthState { cognito: aws_sdk_cognitoidentityprovider::Client::new(&config), resources: resources.clone(), triggers: std::sync::Arc::new(triggers) };
    let app = match cors {
        Some(cors) => server::app_with_cors(functions, verifier, auth, axum::Router::new(), cors),
        None => server::app(functions, verifier, auth, axum::Router::new()),
    };
    Stack { app, store, resources }
}

async fn call(app: &Router, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let (status, _, body) = call_with_headers(app, method, path, token, body).await;
    (status, body)
}

async fn call_with_headers(app: &Router, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, http::HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let res = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn sign_up_and_log_in(app: &Router, email: &str) -> String {
    let creds = json!({"email": email, "password": "CorrectHorse42x"});
    assert_eq!(call(app, "POST", "/local/auth/signup", None, Some(creds.clone())).await.0, 201);
    assert_eq!(call(app, "POST", "/local/auth/confirm", None, Some(json!({"email": email, "code": "000000"}))).await.0, 204);
    let (status, tokens) = call(app, "POST", "/local/auth/login", None, Some(creds)).await;
    assert_eq!(status, 200, "{tokens}");
    tokens["idToken"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn sign_up_log_in_and_use_the_api() {
    let s = stack().await;
    let ada = sign_up_and_log_in(&s.app, "ada@example.com").await;
    let bob = sign_up_and_log_in(&s.app, "bob@example.com").await;

    let (status, me) = call(&s.app, "GET", "/me", Some(&ada), None).await;
    assert_eq!((status, me["email"].as_str()), (200, Some("ada@example.com")));

    let (status, org) = call(&s.app, "POST", "/orgs", Some(&ada), Some(json!({"name": "Acme"}))).await;
    assert_eq!(status, 201, "{org}");
    let org_path = format!("/orgs/{}", org["id"].as_str().unwrap());
    assert_eq!(call(&s.app, "GET", &org_path, Some(&ada), None).await.0, 200);

    // the other tenant sees nothing
    let (status, problem) = call(&s.app, "GET", &org_path, Some(&bob), None).await;
    assert_eq!((status, problem["type"].as_str()), (404, Some("https://tenantry.dev/problems/not-found")));
    assert_eq!(call(&s.app, "GET", "/orgs", Some(&bob), None).await.1["items"], json!([]));

    // the runner answers as the function's own handler does for the same caller and route
    let direct = organizations::router(s.store.clone()).0;
    let caller =
        testkit::Caller { sub: me["userId"].as_str().unwrap().into(), email: "ada@example.com".into(), email_verified: true, groups: vec![], orgs: vec![] };
    let handler = testkit::ApiCall::get(&org_path).by(&caller).send(&direct).await;
    let (status, via_runner) = call(&s.app, "GET", &org_path, Some(&ada), None).await;
    assert_eq!((status, &via_runner), (handler.status, &handler.body));
}

#[tokio::test]
async fn missing_and_invalid_tokens_get_api_gateways_401() {
    let s = stack().await;
    let ada = sign_up_and_log_in(&s.app, "ada@example.com").await;
    let mut tampered = ada.clone();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    for token in [None, Some(""), Some("not-a-jwt"), Some(tampered.as_str())] {
        let (status, body) = call(&s.app, "GET", "/me", token, None).await;
        assert_eq!((status, body), (401, json!({"message": "Unauthorized"})), "token {token:?}");
    }
    assert_eq!(call(&s.app, "GET", "/health", None, None).await.0, 200);
}

async fn raw(app: &Router, method: &str, path: &str, headers: &[(&str, &str)]) -> http::Response<Body> {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
}

#[tokio::test]
async fn browsers_get_cors_headers_before_and_after_authentication() {
    let routes: Vec<api::RouteInfo> = registry::routes().into_iter().map(|(_, r)| r).collect();
    let s = stack_with(Some(Some(api::Cors::origins(["http://localhost:*"]).unwrap().for_routes(&routes)))).await;
    let page = "http://localhost:5173";
    // the preflight is answered before the token is checked, as API Gateway does
    let res = raw(
        &s.app,
        "OPTIONS",
        "/orgs/01J00000000000000000000000",
        &[("origin", page), ("access-control-request-method", "PATCH"), ("access-control-request-headers", "authorization,if-match")],
    )
    .await;
    assert_eq!(res.status(), 204);
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], page);
    assert_eq!(h["access-control-allow-methods"], "DELETE, GET, PATCH");
    assert!(h["access-control-allow-headers"].to_str().unwrap().contains("If-Match"));
    assert!(!h.contains_key("access-control-allow-credentials"));
    // the authorizer's 401, the runner's own routes and the functions' answers carry them
    for (method, path) in [("GET", "/me"), ("GET", "/health"), ("GET", "/openapi.json"), ("POST", "/local/auth/login"), ("GET", "/nowhere")] {
        let res = raw(&s.app, method, path, &[("origin", page)]).await;
        assert_eq!(res.headers()["access-control-allow-origin"], page, "{method} {path}: {}", res.status());
        assert!(res.headers()["access-control-expose-headers"].to_str().unwrap().contains("ETag"));
    }
    // another origin: the normal answer, no CORS headers, and no preflight answer
    let res = raw(&s.app, "GET", "/health", &[("origin", "https://evil.example")]).await;
    assert_eq!(res.status(), 200);
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    let res = raw(&s.app, "OPTIONS", "/orgs", &[("origin", "https://evil.example"), ("access-control-request-method", "POST")]).await;
    assert_eq!(res.status(), 401);
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    // no policy: no headers
    let s = stack_with(Some(None)).await;
    let res = raw(&s.app, "GET", "/health", &[("origin", page)]).await;
    assert!(!res.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn local_auth_answers_with_problems() {
    let s = stack().await;
    let creds = json!({"email": "eve@example.com", "password": "CorrectHorse42x"});
    assert_eq!(call(&s.app, "POST", "/local/auth/signup", None, Some(creds.clone())).await.0, 201);
    assert_eq!(call(&s.app, "POST", "/local/auth/signup", None, Some(creds.clone())).await.0, 409);
    let (status, _) = call(&s.app, "POST", "/local/auth/signup", None, Some(json!({"email": "nope", "password": "x"}))).await;
    assert_eq!(status, 422);
    let (status, _) = call(&s.app, "POST", "/local/auth/login", None, Some(json!({"email": "eve@example.com", "password": "WrongHorse42x"}))).await;
    assert!(status == 401 || status == 403, "{status}");
}

#[tokio::test]
async fn local_auth_runs_the_cognito_triggers() {
    let s = stack().await;
    // PreSignUp refuses a blocked domain with Cognito's message shape
    let (status, problem) =
        call(&s.app, "POST", "/local/auth/signup", None, Some(json!({"email": "eve@blocked.example", "password": "CorrectHorse42x"}))).await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["detail"], "PreSignUp failed with error This email address cannot be used to sign up.");

    // PostConfirmation created the profile; PostAuthentication recorded the login
    let token = sign_up_and_log_in(&s.app, "ivy@example.com").await;
    let (_, me) = call(&s.app, "GET", "/me", Some(&token), None).await;
    let profile = s.store.get_user(&me["userId"].as_str().unwrap().parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(profile.email.unwrap().as_str(), "ivy@example.com");
    assert!(profile.last_login_at.is_some());

    // PreTokenGeneration's claims come back beside the tokens
    let (_, org) = call(&s.app, "POST", "/orgs", Some(&token), Some(json!({"name": "Ivy Co"}))).await;
    let (_, tokens) = call(&s.app, "POST", "/local/auth/login", None, Some(json!({"email": "ivy@example.com", "password": "CorrectHorse42x"}))).await;
    assert_eq!(tokens["claims"]["tenantry_orgs"], json!([format!("{}:owner", org["id"].as_str().unwrap())]));
}

#[tokio::test]
async fn the_runner_serves_its_openapi_document() {
    let s = stack().await;
    let (status, doc) = call(&s.app, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/orgs/{orgId}/invites"]["post"].is_object());
}

#[tokio::test]
async fn the_runner_serves_the_console_under_its_content_security_policy() {
    let s = stack().await;
    // A route of the single-page app answers its index.html (or, before `make console`, a page
    // saying so), under the policy the deployed distribution sends.
    let page = raw(&s.app, "GET", "/app/orgs/01HZZZZZZZZZZZZZZZZZZZZZZZ", &[]).await;
    let csp = page.headers()[http::header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains(&format!("connect-src 'self' {};", s.resources.endpoint.trim_end_matches('/'))), "the local S3 for uploads: {csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    // A file that is not there is 404, not the app: config.json (the deployment writes it; the
    // console signs in locally without it) and an asset of an older build.
    for path in ["/app/config.json", "/app/assets/index-0ld.js"] {
        assert_eq!(raw(&s.app, "GET", path, &[]).await.status(), 404, "{path}");
    }
    // Outside the build: refused, whatever the encoding.
    assert_eq!(raw(&s.app, "GET", "/app/..%2F..%2FCargo.toml", &[]).await.status(), 404);
}

#[tokio::test]
async fn provisioning_creates_what_the_infrastructure_does() {
    let s = stack().await;
    let config = testkit::sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
    let block = s3.get_public_access_block().bucket(&s.resources.upload_bucket).send().await.unwrap();
    let c = block.public_access_block_configuration.unwrap();
    assert_eq!((c.block_public_acls, c.restrict_public_buckets), (Some(true), Some(true)), "the upload bucket is private");
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&config);
    let client = cognito.describe_user_pool_client().user_pool_id(&s.resources.user_pool_id).client_id(&s.resources.client_id).send().await.unwrap();
    let writable = client.user_pool_client.unwrap().write_attributes.unwrap_or_default();
    assert!(writable.iter().all(|a| !a.contains("org") && !a.contains("role")), "{writable:?}");
    let groups = cognito.list_groups().user_pool_id(&s.resources.user_pool_id).send().await.unwrap();
    assert!(groups.groups().iter().any(|g| g.group_name() == Some("platform-admin")));
}

/// The token in the newest invitation mail to `address` (exactly as it was written).
async fn invitation_token(address: &str) -> String {
    let mails = testkit::sent_mail(&testkit::local_aws().endpoint).await.unwrap();
    let body = &mails.into_iter().rfind(|m| m.is_to(address)).unwrap_or_else(|| panic!("no mail to {address}")).body;
    let start = body.find("#token=").unwrap() + "#token=".len();
    body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

/// Invited as `Mixed.Case@…`, signed up as `mixed.case@…`: one address. The invitation shows
/// in the pending list and is accepted, invite-only sign-up admits the address however it is
/// spelled, and the invitation keeps the spelling it was sent to.
#[tokio::test]
async fn an_address_is_one_address_whatever_its_case() {
    let s = stack().await;
    let run = ulid::Ulid::new().to_string().to_ascii_lowercase();
    let ada = sign_up_and_log_in(&s.app, &format!("ada-{run}@example.com")).await;
    let (_, org) = call(&s.app, "POST", "/orgs", Some(&ada), Some(json!({"name": "Case Co"}))).await;
    let org = org["id"].as_str().unwrap().to_owned();
    let invited = format!("Mixed.Case-{run}@Example.com");
    let (status, invite) = call(&s.app, "POST", &format!("/orgs/{org}/invites"), Some(&ada), Some(json!({"email": invited, "role": "member"}))).await;
    assert_eq!(status, 201, "{invite}");
    assert_eq!(invite["email"], format!("Mixed.Case-{run}@example.com"), "shown as entered (the domain lower-cased)");

    // Invite-only sign-up: the PreSignUp trigger of an invite-only pool admits the address
    // in another case, and still refuses one nobody invited.
    let invite_only =
        cognito_triggers::Triggers { store: s.store.clone(), config: cognito_triggers::TriggerConfig { invite_only: true, ..Default::default() } };
    let pre_sign_up = |email: &str| {
        let mut event: Value = serde_json::from_str(&std::fs::read_to_string(testkit::events_dir().join("cognito/PreSignUp_SignUp.json")).unwrap()).unwrap();
        event["request"]["userAttributes"]["email"] = json!(email);
        event
    };
    let lower = format!("mixed.case-{run}@example.com");
    assert!(invite_only.handle(pre_sign_up(&lower)).await.is_ok(), "the invited address, lower-cased, may sign up");
    assert!(invite_only.handle(pre_sign_up(&format!("stranger-{run}@example.com"))).await.is_err());

    let bob = sign_up_and_log_in(&s.app, &lower).await;
    let (status, pending) = call(&s.app, "GET", "/invites/pending", Some(&bob), None).await;
    assert_eq!(status, 200);
    assert_eq!(pending["items"].as_array().unwrap().len(), 1, "{pending}");
    let token = invitation_token(&format!("Mixed.Case-{run}@example.com")).await;
    let (status, accepted) = call(&s.app, "POST", "/invites/accept", Some(&bob), Some(json!({"token": token}))).await;
    assert_eq!(status, 200, "{accepted}");
    let (_, members) = call(&s.app, "GET", &format!("/orgs/{org}/members"), Some(&ada), None).await;
    assert_eq!(members["items"].as_array().unwrap().len(), 2, "{members}");
    // Inviting the address again, in yet another case, finds the member.
    let again = json!({"email": format!("MIXED.CASE-{run}@example.com"), "role": "member"});
    let (status, problem) = call(&s.app, "POST", &format!("/orgs/{org}/invites"), Some(&ada), Some(again)).await;
    assert_eq!(status, 409, "{problem}");
}

/// One user cannot multiply the daily invitation limit by creating orgs, and one address
/// cannot be mailed without end by many orgs: both are platform limits per UTC day, answered
/// with 429 and `Retry-After` (the seconds to midnight UTC).
#[tokio::test]
async fn org_creation_per_user_and_invitations_per_recipient_are_limited_per_day() {
    let limits = domain::PlatformLimits { orgs_per_user_per_day: 2, invites_per_recipient_per_day: 3, ..Default::default() };
    let s = stack_limited(None, limits).await;
    let run = ulid::Ulid::new().to_string().to_ascii_lowercase();
    let ada = sign_up_and_log_in(&s.app, &format!("ada-{run}@example.com")).await;
    let carol = sign_up_and_log_in(&s.app, &format!("carol-{run}@example.com")).await;
    let mut orgs = Vec::new();
    for name in ["One", "Two"] {
        let (status, org) = call(&s.app, "POST", "/orgs", Some(&ada), Some(json!({"name": name}))).await;
        assert_eq!(status, 201, "{org}");
        orgs.push(org["id"].as_str().unwrap().to_owned());
    }
    let (status, headers, problem) = call_with_headers(&s.app, "POST", "/orgs", Some(&ada), Some(json!({"name": "Three"}))).await;
    assert_eq!(status, 429, "{problem}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
    let (status, org) = call(&s.app, "POST", "/orgs", Some(&carol), Some(json!({"name": "Carol's"}))).await;
    assert_eq!(status, 201, "another user is not limited by Ada's count: {org}");
    orgs.push(org["id"].as_str().unwrap().to_owned());

    // Three orgs invite one address: the third mail is its last today, whoever sends it.
    let bob = format!("bob-{run}@example.com");
    for (org, by) in [(&orgs[0], &ada), (&orgs[1], &ada), (&orgs[2], &carol)] {
        let (status, invite) = call(&s.app, "POST", &format!("/orgs/{org}/invites"), Some(by), Some(json!({"email": bob, "role": "member"}))).await;
        assert_eq!(status, 201, "{invite}");
    }
    let (_, list) = call(&s.app, "GET", &format!("/orgs/{}/invites", orgs[0]), Some(&ada), None).await;
    let first = list["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, headers, problem) = call_with_headers(&s.app, "POST", &format!("/orgs/{}/invites/{first}/resend", orgs[0]), Some(&ada), None).await;
    assert_eq!(status, 429, "a resend counts too: {problem}");
    assert!(headers.contains_key("retry-after"));
    // The same address in another case is the same recipient.
    let (status, _) = call(
        &s.app,
        "POST",
        &format!("/orgs/{}/invites", orgs[1]),
        Some(&ada),
        Some(json!({"email": bob.to_uppercase().replace("EXAMPLE.COM", "example.com"), "role": "member"})),
    )
    .await;
    assert_eq!(status, 429);
    // Another address is not affected.
    let (status, _) =
        call(&s.app, "POST", &format!("/orgs/{}/invites", orgs[0]), Some(&ada), Some(json!({"email": format!("dan-{run}@example.com"), "role": "member"})))
            .await;
    assert_eq!(status, 201);
}
