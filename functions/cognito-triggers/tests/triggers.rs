//! The user-pool triggers with their sample events, on the local AWS endpoint.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use cognito_triggers::{ORG_CLAIMS_CAP, TriggerConfig, TriggerError, Triggers};
use domain::{Action, Identity, OrgName, Role};
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};
use store::{NewOrg, Store};

fn sample(source: &str) -> Value {
    let path = testkit::events_dir().join("cognito").join(format!("{source}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A sample event for another user.
fn sample_for(source: &str, sub: &str, email: &str) -> Value {
    let mut e = sample(source);
    e["userName"] = json!(sub);
    let attrs = &mut e["request"]["userAttributes"];
    if attrs.get("sub").is_some() {
        attrs["sub"] = json!(sub);
    }
    attrs["email"] = json!(email);
    e
}

async fn triggers(config: TriggerConfig) -> Triggers {
    Triggers { store: testkit::fresh_store().await, config }
}

fn count_type(items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>], t: &str) -> usize {
    items.iter().filter(|i| i.get("_type").and_then(|v| v.as_s().ok()).map(String::as_str) == Some(t)).count()
}

fn identity(sub: &str, email: &str) -> Identity {
    Identity { user_id: sub.parse().unwrap(), email: email.parse().ok(), email_verified: true, platform_admin: false }
}

#[tokio::test]
async fn every_sample_event_is_answered() {
    let t = triggers(TriggerConfig::default()).await;
    let dir = testkit::events_dir().join("cognito");
    let mut sources: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".json").to_owned()).collect();
    sources.sort();
    assert!(sources.len() >= 18, "{sources:?}");
    // Confirmation first, so later triggers find a profile.
    sources.sort_by_key(|s| !s.starts_with("PostConfirmation_ConfirmSignUp"));
    for source in &sources {
        let event = sample(source);
        let answer = t.handle(event.clone()).await.unwrap_or_else(|e| panic!("{source}: {e:?}"));
        assert_eq!(answer["triggerSource"], event["triggerSource"], "{source}");
        assert_eq!(answer["request"]["userAttributes"], event["request"]["userAttributes"], "{source}: the request is echoed back");
        if source.starts_with("PreSignUp_") {
            assert_eq!(answer["response"]["autoConfirmUser"], false);
            assert_eq!(answer["response"]["autoVerifyEmail"], false);
        }
        if source.starts_with("CustomMessage_") {
            let html = answer["response"]["emailMessage"].as_str().unwrap();
            assert!(html.contains("{####}"), "{source}: the code placeholder is kept");
            assert!(answer["response"]["emailSubject"].as_str().unwrap().len() > 5);
            if source == "CustomMessage_AdminCreateUser" {
                assert!(html.contains("{username}"));
            }
        }
        if source.starts_with("TokenGeneration_") {
            let claims = &answer["response"]["claimsAndScopeOverrideDetails"]["idTokenGeneration"]["claimsToAddOrOverride"];
            assert_eq!(claims["tenantry_orgs"], json!([]), "{source}");
        }
    }
    let profile = t.store.get_user(&"5b2f1c3a-9d8e-4f70-a1b2-c3d4e5f60718".parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(profile.email.unwrap().as_str(), "grace@example.com");
    assert!(profile.last_login_at.is_some(), "PostAuthentication recorded the login");
}

#[tokio::test]
async fn unknown_sources_are_answered_unchanged() {
    let t = triggers(TriggerConfig::default()).await;
    let event = json!({"version": "1", "triggerSource": "UserMigration_Authentication", "request": {}, "response": {}});
    assert_eq!(t.handle(event.clone()).await.unwrap(), event);
    let odd = json!({"triggerSource": 42});
    assert_eq!(t.handle(odd.clone()).await.unwrap(), odd);
    // a known source with a broken body is refused, not a panic
    let broken = json!({"triggerSource": "PreSignUp_SignUp", "request": "nope"});
    assert_eq!(t.handle(broken).await.unwrap_err(), TriggerError::MalformedEvent);
}

#[tokio::test]
async fn sign_up_policy() {
    let config = TriggerConfig { blocked_domains: vec!["mailinator.com".into()], ..TriggerConfig::default() };
    let t = triggers(config).await;
    let mut event = sample("PreSignUp_SignUp");
    event["request"]["userAttributes"]["email"] = json!("Eve@Spam.Mailinator.COM ");
    let err = t.handle(event.clone()).await.unwrap_err();
    assert_eq!(err, TriggerError::SignUpRefused("This email address cannot be used to sign up."));
    let d: Diagnostic = err.into();
    assert_eq!(d.error_type, "SignUpRefused");
    assert!(!d.error_message.contains("mailinator"), "no details in the user-facing message");

    event["request"]["userAttributes"]["email"] = json!("not an email");
    assert!(matches!(t.handle(event.clone()).await.unwrap_err(), TriggerError::SignUpRefused(_)));
    event["request"]["userAttributes"]["email"] = json!("ok@example.com");
    // a sign-up that asks to be auto-confirmed is not
    event["response"]["autoConfirmUser"] = json!(true);
    event["response"]["autoVerifyEmail"] = json!(true);
    let answer = t.handle(event).await.unwrap();
    assert_eq!((answer["response"]["autoConfirmUser"].as_bool(), answer["response"]["autoVerifyEmail"].as_bool()), (Some(false), Some(false)));
}

#[tokio::test]
async fn duplicate_confirmations_leave_one_profile_and_one_personal_org() {
    let t = triggers(TriggerConfig { personal_org: true, ..TriggerConfig::default() }).await;
    let event = sample("PostConfirmation_ConfirmSignUp");
    t.handle(event.clone()).await.unwrap();
    t.handle(event.clone()).await.unwrap();
    // and concurrently, for another user
    let other = sample_for("PostConfirmation_ConfirmSignUp", "0c8f7e6d-5b4a-4392-8170-6f5e4d3c2b1a", "hopper@example.com");
    let runs = (0..12).map(|_| t.handle(other.clone()));
    for r in futures::future::join_all(runs).await {
        r.unwrap();
    }
    let items = testkit::scan_all(&t.store).await;
    assert_eq!(count_type(&items, "user"), 2);
    assert_eq!(count_type(&items, "email"), 2);
    assert_eq!(count_type(&items, "org"), 2, "one personal org each");
    assert_eq!(count_type(&items, "member"), 2);
    let grace = t.store.get_user(&"5b2f1c3a-9d8e-4f70-a1b2-c3d4e5f60718".parse().unwrap()).await.unwrap().unwrap();
    let org = grace.personal_org.unwrap();
    let scope = t.store.authorize(&identity("5b2f1c3a-9d8e-4f70-a1b2-c3d4e5f60718", "grace@example.com"), org, Action::DeleteOrg).await.unwrap();
    assert_eq!(scope.org().name, "Grace's workspace");
    assert_eq!(grace.last_active_org, Some(org));
}

#[tokio::test]
async fn forgot_password_confirmation_creates_nothing() {
    let t = triggers(TriggerConfig { personal_org: true, ..TriggerConfig::default() }).await;
    t.handle(sample("PostConfirmation_ConfirmForgotPassword")).await.unwrap();
    assert!(testkit::scan_all(&t.store).await.is_empty());
}

async fn member_of(store: &Store, sub: &str, n: usize) -> Vec<domain::OrgId> {
    let me = identity(sub, "grace@example.com");
    let mut orgs = Vec::new();
    for i in 0..n {
        let owner = identity(&format!("owner-{i}-{sub}"), "o@example.com");
        let scope = store.create_org(&owner, None, NewOrg { name: OrgName::parse("n", &format!("Org {i}")).unwrap(), slug: None }).await.unwrap();
        store.add_member(&scope, &me.user_id, if i == 0 { Role::Admin } else { Role::Viewer }, None, None).await.unwrap();
        orgs.push(scope.org_id());
    }
    orgs
}

fn org_claims(answer: &Value) -> (Vec<String>, bool, Option<String>) {
    let claims = &answer["response"]["claimsAndScopeOverrideDetails"]["idTokenGeneration"]["claimsToAddOrOverride"];
    let orgs = claims["tenantry_orgs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    (orgs, claims["tenantry_orgs_truncated"].as_bool().unwrap(), claims["tenantry_last_org"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn token_claims_for_zero_one_and_many_orgs() {
    let t = triggers(TriggerConfig::default()).await;
    let event = |sub: &str| sample_for("TokenGeneration_Authentication", sub, "grace@example.com");

    let (orgs, truncated, last) = org_claims(&t.handle(event("u-none")).await.unwrap());
    assert_eq!((orgs.len(), truncated, last), (0, false, None));

    let one = member_of(&t.store, "u-one", 1).await;
    t.store.create_profile(&identity("u-one", "one@example.com"), None, None).await.unwrap();
    let scope = t.store.authorize(&identity("u-one", "one@example.com"), one[0], Action::ReadOrg).await.unwrap();
    t.store.set_last_active_org(&scope).await.unwrap();
    let (orgs, truncated, last) = org_claims(&t.handle(event("u-one")).await.unwrap());
    assert_eq!(orgs, vec![format!("{}:admin", one[0])]);
    assert_eq!((truncated, last), (false, Some(one[0].to_string())));

    member_of(&t.store, "u-many", ORG_CLAIMS_CAP + 3).await;
    let (orgs, truncated, _) = org_claims(&t.handle(event("u-many")).await.unwrap());
    assert_eq!((orgs.len(), truncated), (ORG_CLAIMS_CAP, true));

    member_of(&t.store, "u-cap", ORG_CLAIMS_CAP).await;
    let (orgs, truncated, _) = org_claims(&t.handle(event("u-cap")).await.unwrap());
    assert_eq!((orgs.len(), truncated), (ORG_CLAIMS_CAP, false));
}

#[tokio::test]
async fn platform_operators_get_the_group() {
    let t = triggers(TriggerConfig::default()).await;
    let mut event = sample_for("TokenGeneration_Authentication", "u-op", "op@example.com");
    event["request"]["groupConfiguration"]["groupsToOverride"] = json!(["editors"]);
    let answer = t.handle(event.clone()).await.unwrap();
    assert_eq!(answer["response"]["claimsAndScopeOverrideDetails"]["groupOverrideDetails"]["groupsToOverride"], json!(["editors"]));
    t.store.create_profile(&identity("u-op", "op@example.com"), None, None).await.unwrap();
    testkit::make_platform_operator(&t.store, &"u-op".parse().unwrap()).await;
    let answer = t.handle(event).await.unwrap();
    assert_eq!(answer["response"]["claimsAndScopeOverrideDetails"]["groupOverrideDetails"]["groupsToOverride"], json!(["editors", "platform-admin"]));
}

#[tokio::test]
async fn a_login_is_recorded_and_a_storage_failure_does_not_block_it() {
    let t = triggers(TriggerConfig::default()).await;
    t.handle(sample("PostConfirmation_ConfirmSignUp")).await.unwrap();
    t.handle(sample("PostAuthentication_Authentication")).await.unwrap();
    let profile = t.store.get_user(&"5b2f1c3a-9d8e-4f70-a1b2-c3d4e5f60718".parse().unwrap()).await.unwrap().unwrap();
    assert!(profile.last_login_at.is_some());

    // a table that does not exist: the login still succeeds
    let broken = Triggers { store: Store::new(t.store.client().clone(), "no-such-table", store::CursorKey::new("x")), config: TriggerConfig::default() };
    assert!(broken.handle(sample("PostAuthentication_Authentication")).await.is_ok());
    // while the confirmation fails with a user-safe message
    let err = broken.handle(sample("PostConfirmation_ConfirmSignUp")).await.unwrap_err();
    assert_eq!(err, TriggerError::Unavailable);
}

#[tokio::test]
async fn custom_messages_escape_user_values() {
    let t = triggers(TriggerConfig::default()).await;
    let mut event = sample("CustomMessage_SignUp");
    event["request"]["userAttributes"]["name"] = json!("<img src=x onerror=alert(1)>");
    let answer = t.handle(event).await.unwrap();
    let html = answer["response"]["emailMessage"].as_str().unwrap();
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("{####}"));
    assert_eq!(answer["response"]["emailSubject"], "Confirm your email for Tenantry");
}

/// An org named `org_name` that invited `email`.
async fn org_inviting(store: &Store, org_name: &str, email: &str) -> domain::OrgId {
    let owner = identity(&format!("owner-{}", ulid::Ulid::new().to_string().to_ascii_lowercase()), "owner@example.com");
    let scope = store.create_org(&owner, None, NewOrg { name: OrgName::parse("n", org_name).unwrap(), slug: None }).await.unwrap();
    let scope = store.authorize(&owner, scope.org_id(), Action::ManageInvites).await.unwrap();
    let token = store::InviteToken::generate().unwrap();
    let new = store::NewInvite { email: email.parse().unwrap(), role: Role::Member, token: &token, ttl_secs: 3600 };
    store.create_invite(&scope, &store::InviteContext::default(), new).await.unwrap();
    scope.org_id()
}

#[tokio::test]
async fn invite_only_sign_up() {
    let t = triggers(TriggerConfig { invite_only: true, ..TriggerConfig::default() }).await;
    let mut event = sample("PreSignUp_SignUp");
    event["request"]["userAttributes"]["email"] = json!("newcomer@example.com");
    assert_eq!(t.handle(event.clone()).await.unwrap_err(), TriggerError::SignUpRefused("Sign-up is by invitation only."));
    org_inviting(&t.store, "Invitational", "newcomer@example.com").await;
    // the address as typed at sign-up, with spaces and an upper-case domain, still matches
    event["request"]["userAttributes"]["email"] = json!(" newcomer@EXAMPLE.com ");
    assert!(t.handle(event).await.is_ok());
}

#[tokio::test]
async fn a_hostile_org_name_comes_out_escaped() {
    let t = triggers(TriggerConfig::default()).await;
    let org = org_inviting(&t.store, "<script>alert('pwn')</script> & Sons", "grace@example.com").await;
    let mut event = sample("CustomMessage_SignUp");
    event["request"]["clientMetadata"] = json!({"orgId": org.to_string()});
    let answer = t.handle(event).await.unwrap();
    let html = answer["response"]["emailMessage"].as_str().unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(&#x27;pwn&#x27;)&lt;/script&gt; &amp; Sons"), "{html}");
    assert!(html.contains("{####}"));
    // an org that did not invite this address lends no branding
    let mut event = sample("CustomMessage_SignUp");
    let stranger = org_inviting(&t.store, "Stranger Things", "someone-else@example.com").await;
    event["request"]["clientMetadata"] = json!({"orgId": stranger.to_string()});
    let answer = t.handle(event).await.unwrap();
    assert!(!answer["response"]["emailMessage"].as_str().unwrap().contains("Stranger Things"));
}
