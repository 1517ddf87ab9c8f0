//! API Gateway REST proxy events, shaped like the real ones (see `events/apigw/`), driven
//! through a function's router exactly as `lambda_http` would hand them over.

use axum::Router;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Who calls: the claims the Cognito authorizer would put in the request context.
#[derive(Debug, Clone)]
pub struct Caller {
    pub sub: String,
    pub email: String,
    pub email_verified: bool,
    pub groups: Vec<String>,
    /// The token's `tenantry_orgs` claim (`orgId:role`, as PreTokenGeneration writes it): the
    /// orgs the caller was a member of when the token was issued.
    pub orgs: Vec<String>,
}

impl Caller {
    /// A new user with a fresh `sub` and a verified email.
    pub fn new(name: &str) -> Caller {
        let sub = format!("{}-{}", name, ulid::Ulid::new().to_string().to_ascii_lowercase());
        Caller { email: format!("{sub}@example.com"), sub, email_verified: true, groups: Vec::new(), orgs: Vec::new() }
    }

    pub fn platform_admin(name: &str) -> Caller {
        Caller { groups: vec!["platform-admin".into()], ..Caller::new(name) }
    }

    /// The same caller with a token naming `org` (with `role`) in its org claims: a token
    /// issued after they joined it.
    pub fn claiming(mut self, org: &str, role: &str) -> Caller {
        self.orgs.push(format!("{org}:{role}"));
        self
    }

    /// The identity a handler derives from these claims.
    pub fn identity(&self) -> domain::Identity {
        domain::Identity {
            user_id: self.sub.parse().expect("a valid sub"),
            email: self.email.parse().ok(),
            email_verified: self.email_verified,
            platform_admin: self.groups.iter().any(|g| g == domain::Identity::PLATFORM_ADMIN_GROUP),
        }
    }

    pub fn claims(&self) -> Value {
        let mut claims = json!({
            "sub": self.sub,
            "email": self.email,
            "email_verified": self.email_verified.to_string(),
            "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
            "aud": "example-client-id",
            "token_use": "id",
            "cognito:username": self.sub,
            "auth_time": "1764115200",
            "exp": "Thu Nov 26 15:00:00 UTC 2026",
            "iat": "Thu Nov 26 14:00:00 UTC 2026"
        });
        if !self.groups.is_empty() {
            claims["cognito:groups"] = Value::String(self.groups.join(","));
        }
        if !self.orgs.is_empty() {
            // API Gateway REST hands a list claim over as one string
            claims["tenantry_orgs"] = Value::String(format!("[{}]", self.orgs.join(" ")));
        }
        claims
    }
}

/// One request, built up and then sent through a router.
#[derive(Debug, Clone)]
pub struct ApiCall {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<String>,
    caller: Option<Caller>,
}

impl ApiCall {
    pub fn new(method: &str, path: &str) -> ApiCall {
        ApiCall { method: method.into(), path: path.into(), query: Vec::new(), headers: Vec::new(), body: None, caller: None }
    }
    pub fn get(path: &str) -> ApiCall {
        Self::new("GET", path)
    }
    pub fn post(path: &str) -> ApiCall {
        Self::new("POST", path)
    }
    pub fn patch(path: &str) -> ApiCall {
        Self::new("PATCH", path)
    }
    pub fn put(path: &str) -> ApiCall {
        Self::new("PUT", path)
    }
    pub fn delete(path: &str) -> ApiCall {
        Self::new("DELETE", path)
    }
    pub fn by(mut self, caller: &Caller) -> ApiCall {
        self.caller = Some(caller.clone());
        self
    }
    pub fn json(mut self, body: Value) -> ApiCall {
        self.body = Some(body.to_string());
        self.header("content-type", "application/json")
    }
    pub fn raw_body(mut self, body: impl Into<String>) -> ApiCall {
        self.body = Some(body.into());
        self
    }
    pub fn query(mut self, key: &str, value: &str) -> ApiCall {
        self.query.push((key.into(), value.into()));
        self
    }
    pub fn header(mut self, key: &str, value: &str) -> ApiCall {
        self.headers.push((key.into(), value.into()));
        self
    }

    /// The API Gateway REST proxy event for this request, as API Gateway sends it with a
    /// Cognito user pool authorizer on stage `prod`.
    pub fn event(&self) -> Value {
        let headers: serde_json::Map<String, Value> = self.headers.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        let multi_headers: serde_json::Map<String, Value> = self.headers.iter().map(|(k, v)| (k.clone(), json!([v]))).collect();
        let query: Option<serde_json::Map<String, Value>> =
            (!self.query.is_empty()).then(|| self.query.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect());
        let multi_query: Option<serde_json::Map<String, Value>> =
            (!self.query.is_empty()).then(|| self.query.iter().map(|(k, v)| (k.clone(), json!([v]))).collect());
        let authorizer = self.caller.as_ref().map(|c| json!({ "claims": c.claims() }));
        json!({
            "resource": self.path,
            "path": self.path,
            "httpMethod": self.method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": null,
            "stageVariables": null,
            "requestContext": {
                "resourceId": "abc123",
                "resourcePath": self.path,
                "httpMethod": self.method,
                "extendedRequestId": "Xyz0aF0cIAMFkxA=",
                "requestTime": "26/Nov/2026:14:00:00 +0000",
                "path": format!("/prod{}", self.path),
                "accountId": "123456789012",
                "protocol": "HTTP/1.1",
                "stage": "prod",
                "domainPrefix": "api",
                "requestTimeEpoch": 1764165600000u64,
                "requestId": ulid::Ulid::new().to_string(),
                "identity": { "sourceIp": "203.0.113.10", "userAgent": "testkit" },
                "domainName": "api.example.com",
                "apiId": "a1b2c3d4e5",
                "authorizer": authorizer,
            },
            "body": self.body,
            "isBase64Encoded": false
        })
    }

    /// Sends the event through `router` the way `lambda_http` does on Lambda.
    pub async fn send(&self, router: &Router) -> ApiResponse {
        send_event(router, &self.event().to_string()).await
    }
}

/// Sends a raw API Gateway REST proxy event (a file under `events/apigw/`, say) through `router`.
pub async fn send_event(router: &Router, event: &str) -> ApiResponse {
    {
        let request = lambda_http::request::from_str(event).expect("a valid API Gateway event");
        let response = router.clone().oneshot(request).await.expect("routers are infallible");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into())) };
        ApiResponse { status, headers, body }
    }
}

/// What came back.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl ApiResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts the status, printing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> ApiResponse {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        self
    }
    /// Asserts a problem+json answer with this status and type suffix.
    #[track_caller]
    pub fn expect_problem(self, status: u16, kind: &str) -> ApiResponse {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "body: {}", self.body);
        let t = self.body["type"].as_str().unwrap_or_default();
        assert!(t.ends_with(&format!("/{kind}")), "problem type {t}, expected {kind}");
        self
    }
}
