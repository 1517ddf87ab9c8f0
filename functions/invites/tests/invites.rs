//! Invitations end to end on the local AWS endpoint: the sent mail is read back from the
//! local SES to take the token from its link.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use axum::Router;
use domain::{Action, OrgName, Plan, Role};
use invites::{AppState, Mailer, MailerConfig};
use serde_json::{Value, json};
use store::{NewOrg, Store};
use testkit::{ApiCall, Caller};

const FROM: &str = "invites@example.com";

struct App {
    router: Router,
    store: Store,
}

async fn app_with(store: Store, from: &str, ttl_secs: i64) -> App {
    let config = testkit::sdk_config().await;
    let ses = aws_sdk_sesv2::Client::new(&config);
    let _ = ses.create_email_identity().email_identity("example.com").send().await;
    let mailer = Mailer::new(
        ses,
        MailerConfig {
            from: from.into(),
            app_url: "https://app.example.com".into(),
            product: "Tenantry".into(),
            invite_ttl_secs: ttl_secs,
            configuration_set: Some("tenantry-mail".into()),
        },
    );
    let router = invites::router(AppState { store: store.clone(), mailer }).0;
    App { router, store }
}

async fn app() -> App {
    app_with(testkit::fresh_store().await, FROM, 7 * 86_400).await
}

/// An org owned by `owner`, on `plan`, with `members` added.
async fn org(store: &Store, owner: &Caller, plan: Plan, members: &[(&Caller, Role)]) -> String {
    let scope = store.create_org(&owner.identity(), None, NewOrg { name: OrgName::parse("n", "Acme <b>Labs</b>").unwrap(), slug: None }).await.unwrap();
    let admin = store.admin_scope(&testkit::operator(store, "op").await.identity(), scope.org_id()).await.unwrap();
    store.set_org_plan(&admin, plan).await.unwrap();
    let scope = store.authorize(&owner.identity(), scope.org_id(), Action::ManageMembers).await.unwrap();
    for (c, role) in members {
        store.add_member(&scope, &c.identity().user_id, *role, c.identity().email, None).await.unwrap();
    }
    scope.org_id().to_string()
}

async fn mails_to(address: &str) -> Vec<testkit::endpoint::SentMail> {
    let all = testkit::endpoint::sent_mail(&testkit::local_aws().endpoint).await.unwrap();
    all.into_iter().filter(|m| m.is_to(address)).collect()
}

/// The token in the newest invitation mail to `address`.
async fn token_for(address: &str) -> String {
    let mails = mails_to(address).await;
    let body = &mails.last().unwrap_or_else(|| panic!("no mail to {address}")).body;
    assert!(!body.contains("accept?token="), "the token never travels in a query string");
    let start = body.find("/invites/accept#token=").expect("an accept link with the token in its fragment") + "/invites/accept#token=".len();
    body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

async fn invite(app: &App, org: &str, by: &Caller, email: &str, role: &str) -> testkit::ApiResponse {
    ApiCall::post(&format!("/orgs/{org}/invites")).by(by).json(json!({"email": email, "role": role})).send(&app.router).await
}

async fn usage(store: &Store, org: &str, owner: &Caller) -> (u64, u64) {
    let scope = store.authorize(&owner.identity(), org.parse().unwrap(), Action::ReadOrg).await.unwrap();
    (scope.org().member_count, scope.org().seats_used)
}

#[tokio::test]
async fn invite_read_the_mail_and_accept() {
    let app = app().await;
    let (owner, admin, bob) = (Caller::new("owner"), Caller::new("admin"), Caller::new("bob"));
    let org = org(&app.store, &owner, Plan::Free, &[(&admin, Role::Admin)]).await;

    let created = invite(&app, &org, &admin, &bob.email.to_uppercase().replace("@EXAMPLE.COM", "@Example.COM"), "member").await.expect(201);
    assert_eq!(created.body["status"], "pending");
    assert_eq!(created.body["delivered"], true);
    assert!(created.body.get("tokenHash").is_none(), "the hash never leaves the store");
    assert_eq!(usage(&app.store, &org, &owner).await, (2, 3), "the invitation holds a seat");

    let mail = mails_to(created.body["email"].as_str().unwrap()).await;
    assert_eq!(mail.len(), 1);
    assert!(mail[0].subject.contains("Acme <b>Labs</b>"), "subject names the org: {}", mail[0].subject);
    assert!(mail[0].body.contains("Acme &lt;b&gt;Labs&lt;/b&gt;") && !mail[0].body.contains("<b>Labs"), "org name escaped in HTML");
    assert_eq!(mail[0].source, FROM);

    // the invitee's email in the claims is lower-cased by Cognito's normalisation of the domain only
    let invitee = Caller { email: created.body["email"].as_str().unwrap().to_owned(), ..bob.clone() };
    let pending = ApiCall::get("/invites/pending").by(&invitee).send(&app.router).await.expect(200);
    assert_eq!(pending.body["items"][0]["orgId"], org.as_str());

    let token = token_for(invitee.email.as_str()).await;
    let accepted = ApiCall::post("/invites/accept").by(&invitee).json(json!({"token": token})).send(&app.router).await.expect(200);
    assert_eq!((accepted.body["role"].as_str(), accepted.body["orgId"].as_str()), (Some("member"), Some(org.as_str())));
    assert_eq!(usage(&app.store, &org, &owner).await, (3, 3), "the reserved seat became the member's");

    // a token works once
    ApiCall::post("/invites/accept").by(&invitee).json(json!({"token": token})).send(&app.router).await.expect_problem(404, "not-found");
    let list = ApiCall::get(&format!("/orgs/{org}/invites")).by(&admin).query("status", "accepted").send(&app.router).await.expect(200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_rules() {
    let app = app().await;
    let (owner, admin, member, carol, dave) = (Caller::new("owner"), Caller::new("admin"), Caller::new("member"), Caller::new("carol"), Caller::new("dave"));
    let org = org(&app.store, &owner, Plan::Starter, &[(&admin, Role::Admin), (&member, Role::Member)]).await;

    // role ceiling, existing member, bad input
    invite(&app, &org, &admin, &carol.email, "owner").await.expect_problem(403, "forbidden");
    invite(&app, &org, &member, &carol.email, "viewer").await.expect_problem(403, "forbidden");
    invite(&app, &org, &admin, &member.email, "viewer").await.expect_problem(409, "conflict");
    invite(&app, &org, &admin, "not-an-email", "viewer").await.expect_problem(422, "validation-failed");
    ApiCall::post(&format!("/orgs/{org}/invites"))
        .by(&admin)
        .json(json!({"email": carol.email, "role": "member", "status": "accepted"}))
        .send(&app.router)
        .await
        .expect_problem(400, "malformed-request");

    // re-inviting refreshes: same invitation, new token, old token dead
    let first = invite(&app, &org, &admin, &carol.email, "viewer").await.expect(201);
    let old_token = token_for(&carol.email).await;
    let again = invite(&app, &org, &owner, &carol.email, "admin").await.expect(201);
    assert_eq!(first.body["id"], again.body["id"]);
    assert_eq!(again.body["role"], "admin");
    let new_token = token_for(&carol.email).await;
    assert_ne!(old_token, new_token);
    assert_eq!(usage(&app.store, &org, &owner).await.1, 4, "one seat for one invitation");
    ApiCall::post("/invites/accept").by(&carol).json(json!({"token": old_token})).send(&app.router).await.expect_problem(404, "not-found");

    // someone else's token, an unverified email, garbage: refused alike or as unverified
    ApiCall::post("/invites/accept").by(&dave).json(json!({"token": new_token})).send(&app.router).await.expect_problem(404, "not-found");
    let unverified = Caller { email_verified: false, ..carol.clone() };
    ApiCall::post("/invites/accept").by(&unverified).json(json!({"token": new_token})).send(&app.router).await.expect_problem(403, "email-not-verified");
    ApiCall::get("/invites/pending").by(&unverified).send(&app.router).await.expect_problem(403, "email-not-verified");
    ApiCall::post("/invites/accept").by(&carol).json(json!({"token": "x".repeat(43)})).send(&app.router).await.expect_problem(404, "not-found");
    ApiCall::post("/invites/accept").by(&carol).json(json!({"token": ""})).send(&app.router).await.expect_problem(422, "validation-failed");

    // decline frees the seat; revoke frees the seat
    ApiCall::post("/invites/decline").by(&carol).json(json!({"token": new_token})).send(&app.router).await.expect(204);
    assert_eq!(usage(&app.store, &org, &owner).await.1, 3);
    let d = invite(&app, &org, &admin, &dave.email, "member").await.expect(201);
    ApiCall::delete(&format!("/orgs/{org}/invites/{}", d.body["id"].as_str().unwrap())).by(&admin).send(&app.router).await.expect(204);
    assert_eq!(usage(&app.store, &org, &owner).await.1, 3);
    let dave_token = token_for(&dave.email).await;
    ApiCall::post("/invites/accept").by(&dave).json(json!({"token": dave_token})).send(&app.router).await.expect_problem(404, "not-found");
    ApiCall::delete(&format!("/orgs/{org}/invites/{}", d.body["id"].as_str().unwrap())).by(&admin).send(&app.router).await.expect_problem(409, "conflict");
    let revoked = ApiCall::get(&format!("/orgs/{org}/invites")).by(&admin).query("status", "revoked").send(&app.router).await.expect(200);
    assert_eq!(revoked.body["items"][0]["email"], dave.email.as_str());
}

#[tokio::test]
async fn expired_invitations_cannot_be_accepted_and_free_their_seat() {
    let app = app_with(testkit::fresh_store().await, FROM, 1).await;
    let (owner, erin) = (Caller::new("owner"), Caller::new("erin"));
    let org = org(&app.store, &owner, Plan::Free, &[]).await;
    invite(&app, &org, &owner, &erin.email, "member").await.expect(201);
    let token = token_for(&erin.email).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    ApiCall::post("/invites/accept").by(&erin).json(json!({"token": token})).send(&app.router).await.expect_problem(404, "not-found");
    assert_eq!(ApiCall::get("/invites/pending").by(&erin).send(&app.router).await.expect(200).body["items"], json!([]));
    let listed = ApiCall::get(&format!("/orgs/{org}/invites")).by(&owner).send(&app.router).await.expect(200);
    assert_eq!(listed.body["items"][0]["status"], "expired");
    assert_eq!(usage(&app.store, &org, &owner).await.1, 1, "the expired invitation's seat is free again");
}

#[tokio::test]
async fn a_failed_send_keeps_the_invitation_and_resend_works() {
    let store = testkit::fresh_store().await;
    let broken = app_with(store.clone(), "invites@unverified.invalid", 7 * 86_400).await;
    let working = app_with(store.clone(), FROM, 7 * 86_400).await;
    let (owner, fay) = (Caller::new("owner"), Caller::new("fay"));
    let org = org(&store, &owner, Plan::Free, &[]).await;
    let created = invite(&broken, &org, &owner, &fay.email, "viewer").await.expect(201);
    assert_eq!(created.body["delivered"], false);
    assert!(mails_to(&fay.email).await.is_empty());
    let listed = ApiCall::get(&format!("/orgs/{org}/invites")).by(&owner).query("status", "pending").send(&working.router).await.expect(200);
    assert_eq!((listed.body["items"][0]["id"].clone(), listed.body["items"][0]["delivered"].clone()), (created.body["id"].clone(), json!(false)));

    let resend = format!("/orgs/{org}/invites/{}/resend", created.body["id"].as_str().unwrap());
    let resent = ApiCall::post(&resend).by(&owner).send(&working.router).await.expect(200);
    assert_eq!(resent.body["delivered"], true);
    let token = token_for(&fay.email).await;
    // a second resend kills the first link
    ApiCall::post(&resend).by(&owner).send(&working.router).await.expect(200);
    ApiCall::post("/invites/accept").by(&fay).json(json!({"token": token})).send(&working.router).await.expect_problem(404, "not-found");
    // the fourth send within the hour is refused with Retry-After
    let limited = ApiCall::post(&resend).by(&owner).send(&working.router).await.expect_problem(429, "rate-limited");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 3600);
    let token = token_for(&fay.email).await;
    ApiCall::post("/invites/accept").by(&fay).json(json!({"token": token})).send(&working.router).await.expect(200);
}

#[tokio::test]
async fn invitations_per_day_are_limited_by_plan() {
    let app = app().await;
    let (owner, gus) = (Caller::new("owner"), Caller::new("gus"));
    let org = org(&app.store, &owner, Plan::Free, &[]).await;
    // Distinct addresses, each revoked again so that seats never run out: only the day's
    // count is left to refuse.
    for i in 0..Plan::Free.limits().invites_per_day {
        let created = invite(&app, &org, &owner, &format!("guest{i}@example.com"), "viewer").await.expect(201);
        let id = created.body["id"].as_str().unwrap().to_owned();
        ApiCall::delete(&format!("/orgs/{org}/invites/{id}")).by(&owner).send(&app.router).await.expect(204);
    }
    let limited = invite(&app, &org, &owner, &gus.email, "viewer").await.expect_problem(429, "rate-limited");
    let retry = limited.header("retry-after").unwrap().parse::<u64>().unwrap();
    assert!(retry > 0 && retry <= 86_400, "until the next UTC day: {retry}");
}

#[tokio::test]
async fn inviting_a_pending_address_again_is_limited_like_a_resend() {
    let app = app().await;
    let (owner, hal) = (Caller::new("owner"), Caller::new("hal"));
    let org = org(&app.store, &owner, Plan::Starter, &[]).await;
    // The first send and two more within the hour...
    for _ in 0..store::RESENDS_PER_HOUR {
        invite(&app, &org, &owner, &hal.email, "viewer").await.expect(201);
    }
    assert_eq!(mails_to(&hal.email).await.len(), store::RESENDS_PER_HOUR);
    // ...and the next is refused, with no mail sent.
    let limited = invite(&app, &org, &owner, &hal.email, "viewer").await.expect_problem(429, "rate-limited");
    let retry = limited.header("retry-after").unwrap().parse::<u64>().unwrap();
    assert!(retry > 0 && retry <= 3600, "{retry}");
    assert_eq!(mails_to(&hal.email).await.len(), store::RESENDS_PER_HOUR);
}

#[tokio::test]
async fn twenty_concurrent_invitations_for_the_last_seat_let_one_through() {
    let app = app().await;
    let owner = Caller::new("owner");
    let org = org(&app.store, &owner, Plan::Free, &[]).await;
    for i in 0..Plan::Free.limits().max_members - 2 {
        invite(&app, &org, &owner, &Caller::new(&format!("pre{i}")).email, "viewer").await.expect(201);
    }
    let racers: Vec<Caller> = (0..20).map(|i| Caller::new(&format!("racer{i}"))).collect();
    let results = futures::future::join_all(racers.iter().map(|c| invite(&app, &org, &owner, &c.email, "viewer"))).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert!(results.iter().filter(|r| r.status != 201).all(|r| r.body["type"].as_str().unwrap().ends_with("/plan-limit-reached")));
    assert_eq!(usage(&app.store, &org, &owner).await.1, Plan::Free.limits().max_members);
}

#[tokio::test]
async fn twenty_concurrent_accepts_after_a_plan_was_lowered_let_one_through() {
    let app = app().await;
    let owner = Caller::new("owner");
    let early: Vec<Caller> = (0..Plan::Free.limits().max_members - 2).map(|i| Caller::new(&format!("early{i}"))).collect();
    let pairs: Vec<(&Caller, Role)> = early.iter().map(|c| (c, Role::Member)).collect();
    let org = org(&app.store, &owner, Plan::Starter, &pairs).await;
    let invitees: Vec<Caller> = (0..20).map(|i| Caller::new(&format!("late{i}"))).collect();
    for c in &invitees {
        invite(&app, &org, &owner, &c.email, "viewer").await.expect(201);
    }
    let admin = app.store.admin_scope(&testkit::operator(&app.store, "op").await.identity(), org.parse().unwrap()).await.unwrap();
    app.store.set_org_plan(&admin, Plan::Free).await.unwrap();
    let mut tokens = Vec::new();
    for c in &invitees {
        tokens.push(token_for(&c.email).await);
    }
    let calls: Vec<ApiCall> = invitees.iter().zip(&tokens).map(|(c, t)| ApiCall::post("/invites/accept").by(c).json(json!({"token": t}))).collect();
    let accepts = calls.iter().map(|call| call.send(&app.router));
    let results = futures::future::join_all(accepts).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(usage(&app.store, &org, &owner).await.0, Plan::Free.limits().max_members);
}

#[tokio::test]
async fn another_orgs_invitations_are_out_of_reach() {
    let app = app().await;
    let (a_owner, b_owner, hank) = (Caller::new("a"), Caller::new("b"), Caller::new("hank"));
    let org_a = org(&app.store, &a_owner, Plan::Free, &[]).await;
    let org_b = org(&app.store, &b_owner, Plan::Free, &[]).await;
    let b_invite = invite(&app, &org_b, &b_owner, &hank.email, "member").await.expect(201);
    let id = b_invite.body["id"].as_str().unwrap();
    // A's owner, on B's org: nothing exists
    ApiCall::get(&format!("/orgs/{org_b}/invites")).by(&a_owner).send(&app.router).await.expect_problem(404, "not-found");
    ApiCall::post(&format!("/orgs/{org_b}/invites/{id}/resend")).by(&a_owner).send(&app.router).await.expect_problem(404, "not-found");
    ApiCall::delete(&format!("/orgs/{org_b}/invites/{id}")).by(&a_owner).send(&app.router).await.expect_problem(404, "not-found");
    // ...nor through their own org's path
    ApiCall::post(&format!("/orgs/{org_a}/invites/{id}/resend")).by(&a_owner).send(&app.router).await.expect_problem(404, "not-found");
    ApiCall::delete(&format!("/orgs/{org_a}/invites/{id}")).by(&a_owner).send(&app.router).await.expect_problem(404, "not-found");
    let list_a: Value = ApiCall::get(&format!("/orgs/{org_a}/invites")).by(&a_owner).send(&app.router).await.expect(200).body;
    assert_eq!(list_a["items"], json!([]));
    assert_eq!(mails_to(&hank.email).await.len(), 1, "no resend happened");
}

#[tokio::test]
async fn an_invitation_is_only_as_good_as_its_senders_authority() {
    let app = app().await;
    let (owner, admin, leaver, demoted) = (Caller::new("owner"), Caller::new("admin"), Caller::new("leaver"), Caller::new("demoted"));
    let (x, y, z) = (Caller::new("x"), Caller::new("y"), Caller::new("z"));
    let org = org(&app.store, &owner, Plan::Starter, &[(&admin, Role::Admin), (&leaver, Role::Admin), (&demoted, Role::Admin)]).await;
    // An admin about to be removed invites a second address of their own as admin; another
    // admin about to be demoted invites someone; a third invitation's sender keeps their role.
    invite(&app, &org, &leaver, &x.email, "admin").await.expect(201);
    let for_x = token_for(&x.email).await;
    invite(&app, &org, &demoted, &y.email, "member").await.expect(201);
    let for_y = token_for(&y.email).await;
    invite(&app, &org, &admin, &z.email, "member").await.expect(201);
    let for_z = token_for(&z.email).await;

    let scope = app.store.authorize(&owner.identity(), org.parse().unwrap(), Action::ManageMembers).await.unwrap();
    let leaving = app.store.get_member(&scope, &leaver.identity().user_id).await.unwrap().unwrap();
    app.store.remove_member(&scope, &leaving).await.unwrap();
    let demoting = app.store.get_member(&scope, &demoted.identity().user_id).await.unwrap().unwrap();
    app.store.change_role(&scope, &demoting, Role::Member).await.unwrap();

    for (who, token) in [(&x, &for_x), (&y, &for_y)] {
        ApiCall::post("/invites/accept").by(who).json(json!({"token": token})).send(&app.router).await.expect_problem(404, "not-found");
    }
    ApiCall::post("/invites/accept").by(&z).json(json!({"token": for_z})).send(&app.router).await.expect(200);
    // A current admin sending y's invitation again vouches for it: the new link works.
    let pending = ApiCall::get(&format!("/orgs/{org}/invites")).by(&admin).query("status", "pending").send(&app.router).await.expect(200);
    let for_y_id = pending.body["items"].as_array().unwrap().iter().find(|i| i["email"] == y.email.as_str()).unwrap()["id"].as_str().unwrap().to_owned();
    ApiCall::post(&format!("/orgs/{org}/invites/{for_y_id}/resend")).by(&admin).send(&app.router).await.expect(200);
    let resent = token_for(&y.email).await;
    assert_ne!(resent, for_y);
    ApiCall::post("/invites/accept").by(&y).json(json!({"token": resent})).send(&app.router).await.expect(200);
    let members: Vec<_> = app.store.list_members(&scope, &store::PageRequest::default()).await.unwrap().items.into_iter().map(|m| m.user_id).collect();
    assert!(!members.contains(&x.identity().user_id), "a refused invitation added nobody");
    assert!(members.contains(&y.identity().user_id), "the resent invitation was accepted");
    assert!(members.contains(&z.identity().user_id));
}

#[tokio::test]
async fn allowed_email_domains_decide_who_may_be_invited_and_who_may_join() {
    let app = app().await;
    let owner = Caller::new("owner");
    let org = org(&app.store, &owner, Plan::Starter, &[]).await;
    async fn set_domains(store: &Store, owner: &Caller, org: &str, domains: &[&str]) {
        let scope = store.authorize(&owner.identity(), org.parse().unwrap(), Action::UpdateOrg).await.unwrap();
        let mut settings = scope.org().settings.clone();
        settings.allowed_email_domains = domains.iter().map(|d| (*d).to_owned()).collect();
        store.update_org(&scope, None, None, Some(settings)).await.unwrap();
    }
    set_domains(&app.store, &owner, &org, &["example.com"]).await;
    let outsider = Caller::new("outsider");
    let outsider = Caller { email: outsider.email.replace("@example.com", "@elsewhere.org"), ..outsider };
    let refused = invite(&app, &org, &owner, &outsider.email, "member").await.expect_problem(422, "validation-failed");
    assert_eq!(refused.body["errors"][0]["field"], "email", "{}", refused.body);
    assert!(mails_to(&outsider.email).await.is_empty(), "no mail to an address the org does not take");

    // Invited while the domain was allowed; the org stops taking it before the invitee joins.
    let insider = Caller::new("insider");
    invite(&app, &org, &owner, &insider.email, "member").await.expect(201);
    let token = token_for(&insider.email).await;
    set_domains(&app.store, &owner, &org, &["example.org"]).await;
    ApiCall::post("/invites/accept").by(&insider).json(json!({"token": token})).send(&app.router).await.expect_problem(404, "not-found");
    assert_eq!(usage(&app.store, &org, &owner).await.0, 1, "nobody joined");
    // Allowed again: the same invitation works.
    set_domains(&app.store, &owner, &org, &["example.org", "example.com"]).await;
    ApiCall::post("/invites/accept").by(&insider).json(json!({"token": token})).send(&app.router).await.expect(200);
    assert_eq!(usage(&app.store, &org, &owner).await.0, 2);
}

#[tokio::test]
async fn a_suppressed_address_gets_no_invitation_mail_but_the_invitation_stands() {
    let app = app().await;
    let (owner, bounced, fine) = (Caller::new("owner"), Caller::new("bounced"), Caller::new("fine"));
    let org = org(&app.store, &owner, Plan::Starter, &[]).await;
    app.store.suppress(&bounced.email.parse().unwrap(), "bounce").await.unwrap();
    let created = invite(&app, &org, &owner, &bounced.email, "member").await.expect(201);
    assert_eq!((created.body["status"].as_str(), created.body["delivered"].as_bool()), (Some("pending"), Some(false)));
    assert!(mails_to(&bounced.email).await.is_empty(), "no mail to a suppressed address");
    // Another address is mailed, through the configuration set that reports its bounces.
    invite(&app, &org, &owner, &fine.email, "member").await.expect(201);
    let mails = mails_to(&fine.email).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].configuration_set.as_deref(), Some("tenantry-mail"));
}
