//! The audit trail end to end: a client calls the local runner over TCP, as it calls API
//! Gateway, and the domain events of its changes carry the request behind them (API
//! Gateway's request id, the client's address from the connection, its user agent); a
//! refused change writes none; a sign-in (the Cognito trigger, no API request) writes one per
//! org of the user, without a request.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use local_runner::auth_routes::AuthState;
use local_runner::jwt::TokenVerifier;
use local_runner::{provision, server};
use serde_json::{Value, json};
use store::{DomainEvent, EventKind, Store};
use testkit::browser::{self, HttpAnswer};

/// The local runner serving on a loopback port, as `make dev` serves it.
struct Runner {
    base: String,
    store: Store,
}

impl Runner {
    async fn start() -> Runner {
        let endpoint = testkit::local_aws().endpoint.clone();
        let config = testkit::sdk_config().await;
        let table = format!("audit-{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
        let resources = provision::provision(&config, &endpoint, &table).await.unwrap();
        let verifier = TokenVerifier::fetch(&endpoint, &resources.user_pool_id, &resources.issuer(), &resources.client_id).await.unwrap();
        let store = Store::new(store::dynamodb_client(&config), table, store::CursorKey::new("audit"));
        let platform = provision::platform(&config, store.clone(), "https://app.example.com", Default::default());
        let (functions, _) = server::functions(&platform).unwrap();
        let triggers = cognito_triggers::Triggers { store: store.clone(), config: cognito_triggers::TriggerConfig::default() };
        let auth = AuthState { cognito: aws_sdk_cognitoidentityprovider::Client::new(&config), resources, triggers: std::sync::Arc::new(triggers) };
        let app = server::app_with_cors(functions, verifier, auth, axum::Router::new(), None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { server::serve(listener, app).await.unwrap() });
        Runner { base, store }
    }

    /// One request over its own TCP connection, with this user agent.
    async fn call(&self, method: &str, path: &str, token: Option<&str>, agent: &str, headers: &[(&str, String)], body: Option<Value>) -> (HttpAnswer, Value) {
        let mut all: Vec<(&str, String)> = vec![("User-Agent", agent.to_owned())];
        if let Some(t) = token {
            all.push(("Authorization", format!("Bearer {t}")));
        }
        if body.is_some() {
            all.push(("Content-Type", "application/json".to_owned()));
        }
        all.extend(headers.iter().cloned());
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let answer = browser::request(&format!("{}{path}", self.base), method, &all, &bytes).await.unwrap();
        let json = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        (answer, json)
    }

    async fn sign_up(&self, email: &str) {
        let creds = json!({"email": email, "password": "CorrectHorse42x"});
        assert_eq!(self.call("POST", "/local/auth/signup", None, "test", &[], Some(creds)).await.0.status, 201);
        assert_eq!(self.call("POST", "/local/auth/confirm", None, "test", &[], Some(json!({"email": email, "code": "000000"}))).await.0.status, 204);
    }

    async fn log_in(&self, email: &str) -> (String, String) {
        let (answer, tokens) = self.call("POST", "/local/auth/login", None, "test", &[], Some(json!({"email": email, "password": "CorrectHorse42x"}))).await;
        assert_eq!(answer.status, 200, "{tokens}");
        (tokens["idToken"].as_str().unwrap().to_owned(), tokens["claims"]["sub"].as_str().unwrap_or_default().to_owned())
    }

    async fn events(&self, kind: EventKind) -> Vec<DomainEvent> {
        let mut found: Vec<DomainEvent> = testkit::scan_all(&self.store)
            .await
            .into_iter()
            .filter_map(|item| DomainEvent::from_image(&serde_dynamo::Item::from(item)).unwrap())
            .filter(|e| e.kind == kind)
            .collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found
    }
}

#[tokio::test]
async fn events_made_through_the_api_carry_the_request_id_the_clients_address_and_its_user_agent() {
    let r = Runner::start().await;
    r.sign_up("ada@example.com").await;
    let (token, _) = r.log_in("ada@example.com").await;
    assert!(r.events(EventKind::UserSignedIn).await.is_empty(), "a member of no org yet");

    let (answer, org) = r.call("POST", "/orgs", Some(&token), "audit-e2e/2.0 (Macintosh)", &[], Some(json!({"name": "Audited"}))).await;
    assert_eq!(answer.status, 201, "{org}");
    let org_id = org["id"].as_str().unwrap().to_owned();
    let created = r.events(EventKind::OrgCreated).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].org_id.to_string(), org_id);
    let request = created[0].request.clone().expect("the API request behind the change");
    assert_eq!(ulid::Ulid::from_string(&request.request_id).map(|_| ()), Ok(()), "the request id the runner gave, as API Gateway gives one: {request:?}");
    assert_eq!(request.source_ip.as_deref(), Some("127.0.0.1"), "the TCP peer");
    assert_eq!(request.user_agent.as_deref(), Some("audit-e2e/2.0 (Macintosh)"));

    // A refused change (a stale If-Match) writes no event; the next one carries its own request.
    let rename = || Some(json!({"name": "Audited Inc"}));
    let (stale, _) = r.call("PATCH", &format!("/orgs/{org_id}"), Some(&token), "curl/8.5", &[("If-Match", "\"99\"".to_owned())], rename()).await;
    assert_eq!(stale.status, 412);
    assert!(r.events(EventKind::OrgUpdated).await.is_empty(), "a refused change leaves no event");
    let (renamed, _) = r.call("PATCH", &format!("/orgs/{org_id}"), Some(&token), "curl/8.5", &[("If-Match", "\"1\"".to_owned())], rename()).await;
    assert_eq!(renamed.status, 200);
    let updated = r.events(EventKind::OrgUpdated).await;
    assert_eq!(updated.len(), 1);
    let second = updated[0].request.clone().unwrap();
    assert_ne!(second.request_id, request.request_id);
    assert_eq!((second.source_ip.as_deref(), second.user_agent.as_deref()), (Some("127.0.0.1"), Some("curl/8.5")));

    // Signing in again: the Cognito trigger writes one event per org, with no API request.
    let (token, _) = r.log_in("ada@example.com").await;
    let signed_in = r.events(EventKind::UserSignedIn).await;
    assert_eq!(signed_in.len(), 1);
    assert_eq!((signed_in[0].org_id.to_string(), signed_in[0].request.clone()), (org_id.clone(), None));
    assert_eq!(signed_in[0].actor, created[0].actor, "the user who signed in");

    let (deleted, _) = r.call("DELETE", &format!("/orgs/{org_id}"), Some(&token), "audit-e2e/2.0 (Macintosh)", &[], None).await;
    assert_eq!(deleted.status, 204);
    let requested = r.events(EventKind::OrgDeletionRequested).await;
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0].request.as_ref().map(|m| m.user_agent.as_deref()), Some(Some("audit-e2e/2.0 (Macintosh)")));
}
