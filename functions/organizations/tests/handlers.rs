//! The organizations routes driven with API Gateway REST proxy events, on the local AWS endpoint.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use axum::Router;
use serde_json::{Value, json};
use testkit::{ApiCall, Caller, send_event};

async fn app() -> Router {
    organizations::router(testkit::fresh_store().await).0
}

async fn create_org(router: &Router, owner: &Caller, name: &str) -> String {
    let res = ApiCall::post("/orgs").by(owner).json(json!({ "name": name })).send(router).await.expect(201);
    res.body["id"].as_str().unwrap().to_owned()
}

/// Adds `who` with `role` the way a later accepted invitation will: through the store.
async fn join(router_store: &store::Store, org: &str, owner: &Caller, who: &Caller, role: domain::Role) {
    let scope = router_store.authorize(&owner.identity(), org.parse().unwrap(), domain::Action::ManageMembers).await.unwrap();
    router_store.add_member(&scope, &who.identity().user_id, role, who.identity().email, None).await.unwrap();
}

#[tokio::test]
async fn sample_events_are_served() {
    let router = app().await;
    let read = |name: &str| std::fs::read_to_string(testkit::events_dir().join("apigw").join(name)).unwrap();
    let created = send_event(&router, &read("create-org.json")).await.expect(201);
    assert_eq!(created.body["name"], "Analytical Engines Ltd");
    assert_eq!(created.body["slug"], "analytical-engines-ltd");
    assert_eq!(created.body["role"], "owner");
    assert_eq!(created.header("location").unwrap(), format!("/orgs/{}", created.body["id"].as_str().unwrap()));
    let me = send_event(&router, &read("get-me.json")).await.expect(200);
    assert_eq!(me.body["email"], "ada@example.com");
    let mine = send_event(&router, &read("list-my-orgs.json")).await.expect(200);
    assert_eq!(mine.body["items"][0]["id"], created.body["id"]);
    send_event(&router, &read("get-me-no-claims.json")).await.expect_problem(401, "unauthorized");
}

#[test]
fn testkit_events_have_the_shape_of_the_samples() {
    let sample: Value = serde_json::from_str(&std::fs::read_to_string(testkit::events_dir().join("apigw/create-org.json")).unwrap()).unwrap();
    let built = ApiCall::post("/orgs").by(&Caller::new("a")).json(json!({})).event();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<std::collections::BTreeSet<_>>();
    assert_eq!(keys(&sample), keys(&built));
    assert!(keys(&sample["requestContext"]).is_superset(&keys(&built["requestContext"])));
}

#[tokio::test]
async fn bad_input_gets_clear_problems() {
    let router = app().await;
    let ada = Caller::new("ada");
    let post = || ApiCall::post("/orgs").by(&ada);
    post().send(&router).await.expect_problem(400, "malformed-request");
    post().raw_body("{\"name\":").header("content-type", "application/json").send(&router).await.expect_problem(400, "malformed-request");
    post().json(json!({"name": "A", "plan": "ENTERPRISE"})).send(&router).await.expect_problem(400, "malformed-request");
    post().raw_body("name=A").header("content-type", "text/plain").send(&router).await.expect_problem(415, "unsupported-media-type");
    let big = json!({ "name": "x".repeat(70 * 1024) });
    post().json(big).send(&router).await.expect_problem(413, "payload-too-large");

    let res = post().json(json!({"name": "", "slug": "Not#A slug"})).send(&router).await.expect_problem(422, "validation-failed");
    let fields: Vec<&str> = res.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "slug"]);
    let res = post().json(json!({"name": 5})).send(&router).await.expect_problem(422, "validation-failed");
    assert_eq!(res.body["errors"][0]["field"], "name");

    // nothing was created by any of that
    let mine = ApiCall::get("/orgs").by(&ada).send(&router).await.expect(200);
    assert_eq!(mine.body["items"], json!([]));

    ApiCall::get("/nowhere").by(&ada).send(&router).await.expect_problem(404, "not-found");
    ApiCall::put("/orgs").by(&ada).send(&router).await.expect_problem(405, "method-not-allowed");
    ApiCall::get("/orgs/not-an-id").by(&ada).send(&router).await.expect_problem(404, "not-found");
    ApiCall::get("/orgs").by(&ada).query("limit", "abc").send(&router).await.expect_problem(422, "validation-failed");
    ApiCall::get("/orgs").by(&ada).query("cursor", "forged.cursor").send(&router).await.expect_problem(400, "invalid-cursor");
    ApiCall::get("/orgs").by(&ada).query("sort", "name").send(&router).await.expect_problem(400, "malformed-request");
}

#[tokio::test]
async fn settings_are_validated_and_versioned() {
    let router = app().await;
    let ada = Caller::new("ada");
    let org = create_org(&router, &ada, "Acme").await;
    let path = format!("/orgs/{org}");

    let res = ApiCall::patch(&path)
        .by(&ada)
        .json(json!({"settings": {"displayName": "ACME", "logoUrl": "https://cdn.example.com/a.png",
                                  "allowedEmailDomains": ["Acme.com"], "timeZone": "Europe/Paris",
                                  "chatSystemPrompt": "Answer in French.", "allowedChatModels": ["anthropic.claude-3-haiku-20240307-v1:0"]}}))
        .send(&router)
        .await
        .expect(200);
    assert_eq!(res.body["settings"]["allowedEmailDomains"], json!(["acme.com"]));
    assert_eq!(res.body["version"], 2);
    assert_eq!(res.header("etag"), Some("\"2\""));

    let res = ApiCall::patch(&path)
        .by(&ada)
        .json(json!({"name": " ", "settings": {"logoUrl": "javascript:alert(1)", "timeZone": "Nowhere"}}))
        .send(&router)
        .await
        .expect_problem(422, "validation-failed");
    let fields: Vec<&str> = res.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "settings.logoUrl", "settings.timeZone"]);
    ApiCall::patch(&path).by(&ada).json(json!({"settings": {"theme": "dark"}})).send(&router).await.expect_problem(400, "malformed-request");
    ApiCall::patch(&path).by(&ada).json(json!({})).send(&router).await.expect_problem(422, "validation-failed");

    // If-Match with an old version: 412; with the current one: applied.
    ApiCall::patch(&path).by(&ada).header("if-match", "\"1\"").json(json!({"name": "Old"})).send(&router).await.expect_problem(412, "stale-version");
    ApiCall::patch(&path).by(&ada).header("if-match", "\"2\"").json(json!({"name": "New"})).send(&router).await.expect(200);
    let read = ApiCall::get(&path).by(&ada).send(&router).await.expect(200);
    assert_eq!((read.body["name"].as_str(), read.body["settings"]["chatSystemPrompt"].as_str()), (Some("New"), Some("Answer in French.")));
}

#[tokio::test]
async fn members_roles_and_ownership() {
    let store = testkit::fresh_store().await;
    let router = organizations::router(store.clone()).0;
    let (owner, admin, bob) = (Caller::new("owner"), Caller::new("admin"), Caller::new("bob"));
    let org = create_org(&router, &owner, "Acme").await;
    join(&store, &org, &owner, &admin, domain::Role::Admin).await;
    join(&store, &org, &owner, &bob, domain::Role::Member).await;
    let member = |u: &Caller| format!("/orgs/{org}/members/{}", u.sub);

    // paginated listing
    let first = ApiCall::get(&format!("/orgs/{org}/members")).by(&bob).query("limit", "2").send(&router).await.expect(200);
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    let cursor = first.body["nextCursor"].as_str().unwrap();
    let rest = ApiCall::get(&format!("/orgs/{org}/members")).by(&bob).query("limit", "2").query("cursor", cursor).send(&router).await.expect(200);
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);

    // role ceilings
    ApiCall::patch(&member(&bob)).by(&admin).json(json!({"role": "owner"})).send(&router).await.expect_problem(403, "forbidden");
    ApiCall::patch(&member(&owner)).by(&admin).json(json!({"role": "member"})).send(&router).await.expect_problem(403, "forbidden");
    ApiCall::patch(&member(&bob)).by(&admin).json(json!({"role": "superuser"})).send(&router).await.expect_problem(422, "validation-failed");
    ApiCall::patch(&member(&bob)).by(&admin).json(json!({"role": "admin"})).send(&router).await.expect(200);

    // the last owner can neither leave nor be demoted
    ApiCall::delete(&member(&owner)).by(&owner).send(&router).await.expect_problem(409, "last-owner");
    ApiCall::patch(&member(&owner)).by(&owner).json(json!({"role": "admin"})).send(&router).await.expect_problem(409, "last-owner");

    // transfer: bob becomes the owner, the old owner an admin, who can then leave
    let transfer = format!("/orgs/{org}/transfer-ownership");
    ApiCall::post(&transfer).by(&owner).json(json!({"userId": "nobody"})).send(&router).await.expect_problem(422, "validation-failed");
    ApiCall::post(&transfer).by(&owner).json(json!({"userId": bob.sub})).send(&router).await.expect(204);
    let roles = ApiCall::get(&format!("/orgs/{org}/members")).by(&bob).send(&router).await.expect(200);
    let role_of = |u: &Caller| roles.body["items"].as_array().unwrap().iter().find(|m| m["userId"] == u.sub.as_str()).unwrap()["role"].clone();
    assert_eq!((role_of(&bob), role_of(&owner)), (json!("owner"), json!("admin")));
    ApiCall::delete(&member(&owner)).by(&owner).send(&router).await.expect(204);

    // a removed member loses access on the next request
    ApiCall::delete(&member(&admin)).by(&bob).send(&router).await.expect(204);
    ApiCall::get(&format!("/orgs/{org}")).by(&admin).send(&router).await.expect_problem(404, "not-found");
    ApiCall::get(&format!("/orgs/{org}")).by(&owner).send(&router).await.expect_problem(404, "not-found");
    let usage = ApiCall::get(&format!("/orgs/{org}/usage")).by(&bob).send(&router).await.expect(200);
    assert_eq!((usage.body["members"].as_u64(), usage.body["seatsUsed"].as_u64()), (Some(1), Some(1)));
}

#[tokio::test]
async fn usage_follows_the_plan() {
    let store = testkit::fresh_store().await;
    let router = organizations::router(store.clone()).0;
    let (ada, op) = (Caller::new("ada"), testkit::operator(&store, "op").await);
    let org = create_org(&router, &ada, "Acme").await;
    let usage = ApiCall::get(&format!("/orgs/{org}/usage")).by(&ada).send(&router).await.expect(200);
    assert_eq!(usage.body["plan"], "FREE");
    assert_eq!(usage.body["limits"]["maxMembers"], 5);
    assert_eq!(usage.body["members"], 1);
    ApiCall::put(&format!("/admin/orgs/{org}/plan")).by(&op).json(json!({"plan": "GOLD"})).send(&router).await.expect_problem(422, "validation-failed");
    ApiCall::put(&format!("/admin/orgs/{org}/plan")).by(&op).json(json!({"plan": "PROFESSIONAL"})).send(&router).await.expect(200);
    let usage = ApiCall::get(&format!("/orgs/{org}/usage")).by(&ada).send(&router).await.expect(200);
    assert_eq!((usage.body["plan"].as_str(), usage.body["limits"]["maxMembers"].as_u64()), (Some("PROFESSIONAL"), Some(200)));
    let listing = ApiCall::get("/admin/orgs").by(&op).query("status", "active").send(&router).await.expect(200);
    assert!(listing.body["items"].as_array().unwrap().iter().any(|o| o["id"] == org.as_str()));
    ApiCall::get("/admin/orgs").by(&op).query("status", "weird").send(&router).await.expect_problem(422, "validation-failed");
}

#[tokio::test]
async fn deleting_an_org_makes_it_unreachable() {
    let store = testkit::fresh_store().await;
    let router = organizations::router(store.clone()).0;
    let (ada, bob, op) = (Caller::new("ada"), Caller::new("bob"), testkit::operator(&store, "op").await);
    let org = create_org(&router, &ada, "Doomed").await;
    join(&store, &org, &ada, &bob, domain::Role::Admin).await;
    ApiCall::delete(&format!("/orgs/{org}")).by(&bob).send(&router).await.expect_problem(403, "forbidden");
    ApiCall::delete(&format!("/orgs/{org}")).by(&ada).send(&router).await.expect(204);
    for c in [&ada, &bob, &op] {
        ApiCall::get(&format!("/orgs/{org}")).by(c).send(&router).await.expect_problem(404, "not-found");
        let mine = ApiCall::get("/orgs").by(c).send(&router).await.expect(200);
        assert_eq!(mine.body["items"], json!([]));
    }
    ApiCall::delete(&format!("/orgs/{org}")).by(&ada).send(&router).await.expect_problem(404, "not-found");
}

#[tokio::test]
async fn profile_is_created_lazily_and_edited() {
    let router = app().await;
    let ada = Caller::new("ada");
    let me = ApiCall::get("/me").by(&ada).send(&router).await.expect(200);
    assert_eq!((me.body["userId"].as_str(), me.body["email"].as_str()), (Some(ada.sub.as_str()), Some(ada.email.as_str())));
    let me = ApiCall::patch("/me").by(&ada).json(json!({"displayName": "Ada L."})).send(&router).await.expect(200);
    assert_eq!(me.body["displayName"], "Ada L.");
    ApiCall::patch("/me").by(&ada).json(json!({"displayName": ""})).send(&router).await.expect_problem(422, "validation-failed");
    ApiCall::patch("/me").by(&ada).json(json!({"email": "x@evil.com"})).send(&router).await.expect_problem(400, "malformed-request");
    let me = ApiCall::patch("/me").by(&ada).json(json!({"displayName": null})).send(&router).await.expect(200);
    assert!(me.body.get("displayName").is_none());
    // the new owner's membership carries the profile's display name
    ApiCall::patch("/me").by(&ada).json(json!({"displayName": "Ada"})).send(&router).await.expect(200);
    let org = create_org(&router, &ada, "Named").await;
    let members = ApiCall::get(&format!("/orgs/{org}/members")).by(&ada).send(&router).await.expect(200);
    assert_eq!(members.body["items"][0]["displayName"], "Ada");
}

#[tokio::test]
async fn a_suspended_org_answers_403_to_members_and_not_to_operators() {
    let store = testkit::fresh_store().await;
    let router = organizations::router(store.clone()).0;
    let (owner, viewer, other, op) = (Caller::new("owner"), Caller::new("viewer"), Caller::new("other"), testkit::operator(&store, "op").await);
    let org = create_org(&router, &owner, "Paused").await;
    join(&store, &org, &owner, &viewer, domain::Role::Viewer).await;
    ApiCall::post(&format!("/admin/orgs/{org}/suspend")).by(&op).send(&router).await.expect(200);
    for c in [&owner, &viewer] {
        for path in [format!("/orgs/{org}"), format!("/orgs/{org}/members"), format!("/orgs/{org}/usage")] {
            ApiCall::get(&path).by(c).send(&router).await.expect_problem(403, "org-suspended");
        }
        ApiCall::patch(&format!("/orgs/{org}")).by(c).json(json!({"name": "x"})).send(&router).await.expect_problem(403, "org-suspended");
    }
    ApiCall::get(&format!("/orgs/{org}")).by(&op).send(&router).await.expect(200);
    ApiCall::get(&format!("/orgs/{org}")).by(&other).send(&router).await.expect_problem(404, "not-found");
    ApiCall::post(&format!("/admin/orgs/{org}/reactivate")).by(&op).send(&router).await.expect(200);
    ApiCall::get(&format!("/orgs/{org}")).by(&viewer).send(&router).await.expect(200);
}

#[tokio::test]
async fn a_lingering_platform_admin_claim_opens_nothing() {
    let store = testkit::fresh_store().await;
    let router = organizations::router(store.clone()).0;
    let ada = Caller::new("ada");
    let org = create_org(&router, &ada, "Acme").await;
    let op = testkit::operator(&store, "op").await;
    ApiCall::get("/admin/orgs").by(&op).send(&router).await.expect(200);
    ApiCall::get(&format!("/orgs/{org}")).by(&op).send(&router).await.expect(200);
    // Removed as an operator: the token still says platform-admin until it expires.
    store.set_platform_operator(&op.identity().user_id, false).await.unwrap();
    ApiCall::get("/admin/orgs").by(&op).send(&router).await.expect_problem(403, "forbidden");
    ApiCall::post(&format!("/admin/orgs/{org}/suspend")).by(&op).send(&router).await.expect_problem(403, "forbidden");
    ApiCall::get(&format!("/orgs/{org}")).by(&op).send(&router).await.expect_problem(404, "not-found");
}
