//! Invitations end to end through the local stack's event delivery: the expiry sweep on its
//! schedule frees the seats of invitations nobody accepted, without anyone listing them; the
//! pending list reads pending invitations only, page by page.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::HashMap;
use std::time::Duration;

use domain::{Action, OrgName, Plan, Role};
use local_runner::events::LocalEvents;
use serde_json::json;
use store::{InviteContext, InviteToken, NewInvite, NewOrg, Store};
use testkit::{ApiCall, Caller};

async fn events_for(store: &Store) -> (LocalEvents, axum::Router) {
    let config = testkit::sdk_config().await;
    local_runner::provision::mail_identity(&config).await;
    let platform = local_runner::provision::platform(&config, store.clone(), "https://app.example.com", HashMap::new());
    let invites = registry::function("invites").expect("invites is registered");
    let events = LocalEvents::setup(&config, &platform, vec![invites], "").await.expect("event sources wired");
    let (router, _) = local_runner::server::functions(&platform).unwrap();
    (events, router)
}

async fn invite(store: &Store, scope: &store::OrgScope, email: &str, ttl_secs: i64) -> Result<store::Invite, domain::DomainError> {
    let token = InviteToken::generate().unwrap();
    let ctx = InviteContext::default();
    store.create_invite(scope, &ctx, NewInvite { email: email.parse().unwrap(), role: Role::Member, token: &token, ttl_secs }).await
}

#[tokio::test]
async fn the_expiry_sweep_frees_the_seats_of_invitations_nobody_accepted() {
    let store = testkit::fresh_store().await.with_clock(domain::Clock::fixed(time::macros::datetime!(2026-11-27 10:00 UTC)));
    let (events, router) = events_for(&store).await;
    let owner = Caller::new("owner");
    let scope = store.create_org(&owner.identity(), None, NewOrg { name: OrgName::parse("name", "Full").unwrap(), slug: None }).await.unwrap();
    let scope = store.authorize(&owner.identity(), scope.org_id(), Action::ManageInvites).await.unwrap();
    // The Free plan's five seats: the owner and four invitations that will lapse in an hour.
    for i in 0..Plan::Free.limits().max_members - 1 {
        invite(&store, &scope, &Caller::new(&format!("lapsing{i}")).email, 3600).await.unwrap();
    }
    let refused = invite(&store, &scope, &Caller::new("newcomer").email, 3600).await.unwrap_err();
    assert_eq!(refused, domain::DomainError::LimitReached("members"));

    // Two hours later the sweep has run on its schedule; nobody listed anything.
    let fired = events.advance(Duration::from_secs(2 * 3600)).await.unwrap();
    assert!(fired.iter().any(|d| d.function == "invites" && d.source == "schedule:expire-invitations" && d.failed == 0), "{fired:?}");
    let scope = store.authorize(&owner.identity(), scope.org_id(), Action::ManageInvites).await.unwrap();
    assert_eq!(scope.org().seats_used, 1, "the lapsed invitations' seats are free");
    let listed = ApiCall::get(&format!("/orgs/{}/invites", scope.org_id())).by(&owner).send(&router).await.expect(200);
    assert!(listed.body["items"].as_array().unwrap().iter().all(|i| i["status"] == "expired"), "{}", listed.body);
    invite(&store, &scope, &Caller::new("newcomer").email, 3600).await.expect("a new invitation takes a freed seat");

    // Listing expired invitations again writes nothing: they are expired in storage.
    let (_, calls) = telemetry::record(ApiCall::get(&format!("/orgs/{}/invites", scope.org_id())).by(&owner).send(&router)).await;
    let ops: Vec<String> = calls.all().into_iter().filter(|c| c.service == "DynamoDB").map(|c| c.operation).collect();
    assert!(!ops.iter().any(|op| op == "TransactWriteItems"), "a listing re-expired stored expirations: {ops:?}");
    // A second sweep finds nothing to do.
    assert_eq!(store.expire_due_invites(100).await.unwrap(), 0);
}

#[tokio::test]
async fn the_pending_list_reads_pending_invitations_only_page_by_page() {
    let store = testkit::fresh_store().await;
    let (_, router) = events_for(&store).await;
    let invitee = Caller::new("popular");
    let mut tokens = Vec::new();
    for i in 0..5 {
        let owner = Caller::new(&format!("owner{i}"));
        let scope = store.create_org(&owner.identity(), None, NewOrg { name: OrgName::parse("name", &format!("Org {i}")).unwrap(), slug: None }).await.unwrap();
        let scope = store.authorize(&owner.identity(), scope.org_id(), Action::ManageInvites).await.unwrap();
        let token = InviteToken::generate().unwrap();
        store
            .create_invite(
                &scope,
                &InviteContext::default(),
                NewInvite { email: invitee.email.parse().unwrap(), role: Role::Viewer, token: &token, ttl_secs: 3600 },
            )
            .await
            .unwrap();
        tokens.push(token.token);
    }
    // Three of the five are declined: closed invitations do not crowd the pending ones out.
    for token in &tokens[..3] {
        ApiCall::post("/invites/decline").by(&invitee).json(json!({"token": token})).send(&router).await.expect(204);
    }
    let first = ApiCall::get("/invites/pending").by(&invitee).query("limit", "1").send(&router).await.expect(200);
    assert_eq!(first.body["items"].as_array().unwrap().len(), 1);
    let cursor = first.body["nextCursor"].as_str().expect("a second page").to_owned();
    let second = ApiCall::get("/invites/pending").by(&invitee).query("limit", "1").query("cursor", &cursor).send(&router).await.expect(200);
    assert_eq!(second.body["items"].as_array().unwrap().len(), 1);
    assert_ne!(first.body["items"][0]["id"], second.body["items"][0]["id"]);
    let all = ApiCall::get("/invites/pending").by(&invitee).send(&router).await.expect(200);
    assert_eq!(all.body["items"].as_array().unwrap().len(), 2, "{}", all.body);
    assert!(all.body["items"].as_array().unwrap().iter().all(|i| i["status"] == "pending"));
}
