//! The store against the local AWS endpoint: round trips, conditional and transactional
//! failures mapped to domain errors, cursors that cannot be forged.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use domain::{Action, DomainError, Identity, OrgName, OrgSettings, Plan, Role, UserId};
use store::{Access, NewOrg, OrgStatus, PageRequest, PurgeProgress, Store, UsageCounter};

fn person(name: &str) -> Identity {
    let c = testkit::Caller::new(name);
    Identity { user_id: c.sub.parse().unwrap(), email: Some(c.email.parse().unwrap()), email_verified: true, platform_admin: false }
}

/// A platform operator: the group claim, and the profile flag the store re-checks.
async fn operator(store: &Store) -> Identity {
    let who = Identity { platform_admin: true, ..person("operator") };
    store.ensure_user(&who).await.unwrap();
    store.set_platform_operator(&who.user_id, true).await.unwrap();
    who
}

fn new_org(name: &str) -> NewOrg {
    NewOrg { name: OrgName::parse("name", name).unwrap(), slug: None }
}

async fn org_with_members(store: &Store, members: &[(&Identity, Role)]) -> (Identity, store::OrgScope) {
    let owner = person("owner");
    let scope = store.create_org(&owner, None, new_org("Acme")).await.unwrap();
    store.set_org_plan(&store.admin_scope(&operator(store).await, scope.org_id()).await.unwrap(), Plan::Starter).await.unwrap();
    let scope = store.authorize(&owner, scope.org_id(), Action::ManageMembers).await.unwrap();
    for (who, role) in members {
        store.add_member(&scope, &who.user_id, *role, who.email.clone(), None).await.unwrap();
    }
    let scope = store.authorize(&owner, scope.org_id(), Action::ManageMembers).await.unwrap();
    (owner, scope)
}

#[tokio::test]
async fn org_member_user_and_usage_round_trip() {
    let store = testkit::fresh_store().await;
    let owner = person("owner");
    let scope = store.create_org(&owner, Some("Olga".into()), new_org("Acme, Inc.")).await.unwrap();
    assert_eq!(scope.org().slug.as_str(), "acme-inc");
    assert_eq!(scope.access(), Access::Member(Role::Owner));

    let again = store.authorize(&owner, scope.org_id(), Action::DeleteOrg).await.unwrap();
    assert_eq!(again.org(), scope.org());

    let member = store.get_member(&again, &owner.user_id).await.unwrap().unwrap();
    assert_eq!((member.role, member.display_name.as_deref()), (Role::Owner, Some("Olga")));
    assert_eq!(member.email, owner.email);

    let mine = store.list_my_orgs(&owner.user_id, &PageRequest::default()).await.unwrap();
    assert_eq!(mine.items.len(), 1);
    assert_eq!((mine.items[0].org.id, mine.items[0].role), (scope.org_id(), Role::Owner));

    let profile = store.ensure_user(&owner).await.unwrap();
    assert_eq!(store.get_user(&owner.user_id).await.unwrap(), Some(profile.clone()));
    assert_eq!(store.ensure_user(&owner).await.unwrap(), profile, "second call reads, not recreates");
    let renamed = store.set_display_name(&owner, Some("Olga O.".into())).await.unwrap();
    assert_eq!(store.get_user(&owner.user_id).await.unwrap(), Some(renamed));

    store.add_usage(&again, UsageCounter::ChatTokens, 120).await.unwrap();
    store.add_usage(&again, UsageCounter::ChatTokens, 30).await.unwrap();
    store.add_usage(&again, UsageCounter::EmailsSent, 1).await.unwrap();
    let month = store.usage_month(&again).await.unwrap();
    assert_eq!((month.chat_tokens, month.emails_sent, month.invites_sent), (150, 1, 0));

    let mut settings = OrgSettings::new();
    settings.chat_system_prompt = Some("Be brief.".into());
    let updated = store.update_org(&again, None, Some(OrgName::parse("n", "Acme 2").unwrap()), Some(settings.clone())).await.unwrap();
    let read = store.authorize(&owner, scope.org_id(), Action::ReadOrg).await.unwrap();
    assert_eq!(read.org(), &updated);
    assert_eq!((read.org().version, &read.org().settings), (2, &settings));
}

#[tokio::test]
async fn authorization_outcomes() {
    let store = testkit::fresh_store().await;
    let viewer = person("viewer");
    let (_, scope) = org_with_members(&store, &[(&viewer, Role::Viewer)]).await;
    let org = scope.org_id();
    assert!(store.authorize(&viewer, org, Action::ReadMembers).await.is_ok());
    assert_eq!(store.authorize(&viewer, org, Action::WriteWorkload).await.unwrap_err(), DomainError::Forbidden("your role does not allow this"));
    assert_eq!(store.authorize(&person("stranger"), org, Action::ReadOrg).await.unwrap_err(), DomainError::NotFound);
    assert_eq!(store.authorize(&viewer, domain::OrgId::new(), Action::ReadOrg).await.unwrap_err(), DomainError::NotFound);
    let platform = store.authorize(&operator(&store).await, org, Action::ReadOrg).await.unwrap();
    assert_eq!(platform.access(), Access::Platform);
    assert!(store.authorize(&operator(&store).await, org, Action::UpdateOrg).await.is_err());

    let admin = store.admin_scope(&operator(&store).await, org).await.unwrap();
    store.set_org_status(&admin, OrgStatus::Suspended).await.unwrap();
    assert_eq!(store.authorize(&viewer, org, Action::ReadOrg).await.unwrap_err(), DomainError::Suspended);
    assert!(store.authorize(&operator(&store).await, org, Action::ReadOrg).await.is_ok());
    assert_eq!(store.admin_scope(&viewer, org).await.unwrap_err(), DomainError::Forbidden("platform operators only"));
}

#[tokio::test]
async fn slugs_are_unique() {
    let store = testkit::fresh_store().await;
    let a = store.create_org(&person("a"), None, new_org("Acme")).await.unwrap();
    let b = store.create_org(&person("b"), None, new_org("Acme")).await.unwrap();
    assert_eq!(a.org().slug.as_str(), "acme");
    assert!(b.org().slug.as_str().starts_with("acme-"), "derived slug gets a suffix: {}", b.org().slug);
    let taken = store.create_org(&person("c"), None, NewOrg { slug: Some("acme".parse().unwrap()), ..new_org("Other") }).await.unwrap_err();
    assert_eq!(taken, DomainError::Conflict("slug already taken"));
}

#[tokio::test]
async fn transactional_failures_map_to_domain_errors() {
    let store = testkit::fresh_store().await;
    let admin = person("admin");
    let member = person("member");
    let (owner, scope) = org_with_members(&store, &[(&admin, Role::Admin), (&member, Role::Member)]).await;
    let org = scope.org_id();

    // duplicate membership
    let again = store.add_member(&scope, &member.user_id, Role::Member, None, None).await.unwrap_err();
    assert_eq!(again, DomainError::Conflict("already a member"));

    // the last owner can neither be demoted nor leave
    let me = store.get_member(&scope, &owner.user_id).await.unwrap().unwrap();
    assert_eq!(store.change_role(&scope, &me, Role::Admin).await.unwrap_err(), DomainError::LastOwner);
    assert_eq!(store.remove_member(&scope, &me).await.unwrap_err(), DomainError::LastOwner);

    // a change based on a stale read is refused
    let target = store.get_member(&scope, &member.user_id).await.unwrap().unwrap();
    store.change_role(&scope, &target, Role::Viewer).await.unwrap();
    assert!(matches!(store.change_role(&scope, &target, Role::Admin).await.unwrap_err(), DomainError::Conflict(_)));

    // an admin cannot raise anyone above themselves
    let admin_scope = store.authorize(&admin, org, Action::ManageMembers).await.unwrap();
    let target = store.get_member(&admin_scope, &member.user_id).await.unwrap().unwrap();
    assert!(matches!(store.change_role(&admin_scope, &target, Role::Owner).await.unwrap_err(), DomainError::Forbidden(_)));

    // an actor demoted after being authorized can no longer act on that authorization
    let admin_member = store.get_member(&scope, &admin.user_id).await.unwrap().unwrap();
    store.change_role(&scope, &admin_member, Role::Member).await.unwrap();
    assert_eq!(store.change_role(&admin_scope, &target, Role::Member).await.unwrap_err(), DomainError::Conflict("your own role changed meanwhile"));

    // optimistic locking on the org
    let fresh = store.authorize(&owner, org, Action::UpdateOrg).await.unwrap();
    store.update_org(&fresh, None, Some(OrgName::parse("n", "One").unwrap()), None).await.unwrap();
    assert_eq!(store.update_org(&fresh, None, Some(OrgName::parse("n", "Two").unwrap()), None).await.unwrap_err(), DomainError::StaleVersion);
}

#[tokio::test]
async fn seat_limit_holds_and_a_lowered_plan_refuses_additions() {
    let store = testkit::fresh_store().await;
    let owner = person("owner");
    let scope = store.create_org(&owner, None, new_org("Tiny")).await.unwrap();
    let free_seats = Plan::Free.limits().max_members - 1;
    for i in 0..free_seats {
        store.add_member(&scope, &person(&format!("m{i}")).user_id, Role::Member, None, None).await.unwrap();
    }
    let scope = store.authorize(&owner, scope.org_id(), Action::ManageMembers).await.unwrap();
    assert_eq!(scope.org().seats_used, Plan::Free.limits().max_members);
    assert_eq!(store.add_member(&scope, &person("late").user_id, Role::Member, None, None).await.unwrap_err(), DomainError::LimitReached("members"));

    // Raise, add above the free limit, lower again: nothing is deleted, additions refused.
    let admin = store.admin_scope(&operator(&store).await, scope.org_id()).await.unwrap();
    store.set_org_plan(&admin, Plan::Starter).await.unwrap();
    let scope = store.authorize(&owner, scope.org_id(), Action::ManageMembers).await.unwrap();
    let extra = person("extra");
    store.add_member(&scope, &extra.user_id, Role::Member, None, None).await.unwrap();
    // A plan change is conditioned on the plan read: the operator's stale read is refused.
    assert!(matches!(store.set_org_plan(&admin, Plan::Free).await.unwrap_err(), DomainError::Conflict(_)));
    let admin = store.admin_scope(&operator(&store).await, scope.org_id()).await.unwrap();
    store.set_org_plan(&admin, Plan::Free).await.unwrap();
    let scope = store.authorize(&owner, scope.org_id(), Action::ManageMembers).await.unwrap();
    let members = store.list_members(&scope, &PageRequest::first(100)).await.unwrap();
    assert_eq!(members.items.len() as u64, Plan::Free.limits().max_members + 1);
    assert_eq!(store.add_member(&scope, &person("refused").user_id, Role::Member, None, None).await.unwrap_err(), DomainError::LimitReached("members"));
    // Back under the limit (two leave), additions work again.
    for m in members.items.iter().filter(|m| m.role == Role::Member).take(2) {
        store.remove_member(&scope, m).await.unwrap();
    }
    let scope = store.authorize(&owner, scope.org_id(), Action::ManageMembers).await.unwrap();
    store.add_member(&scope, &person("welcome").user_id, Role::Member, None, None).await.unwrap();
}

#[tokio::test]
async fn concurrent_additions_for_the_last_seat_let_one_through() {
    let store = testkit::fresh_store().await;
    let owner = person("owner");
    let scope = store.create_org(&owner, None, new_org("Race")).await.unwrap();
    for i in 0..Plan::Free.limits().max_members - 2 {
        store.add_member(&scope, &person(&format!("m{i}")).user_id, Role::Member, None, None).await.unwrap();
    }
    let scope = store.authorize(&owner, scope.org_id(), Action::ManageMembers).await.unwrap();
    let attempts = (0..20).map(|i| {
        let (store, scope) = (store.clone(), scope.clone());
        tokio::spawn(async move { store.add_member(&scope, &person(&format!("c{i}")).user_id, Role::Member, None, None).await })
    });
    let results = futures::future::join_all(attempts).await;
    let ok = results.iter().filter(|r| r.as_ref().unwrap().is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    let after = store.authorize(&owner, scope.org_id(), Action::ReadOrg).await.unwrap();
    assert_eq!(after.org().seats_used, Plan::Free.limits().max_members);
}

#[tokio::test]
async fn pagination_and_cursors() {
    let store = testkit::fresh_store().await;
    let people: Vec<Identity> = (0..7).map(|i| person(&format!("p{i}"))).collect();
    let pairs: Vec<(&Identity, Role)> = people.iter().map(|p| (p, Role::Member)).collect();
    let (owner, scope) = org_with_members(&store, &pairs).await;
    let (_, other) = org_with_members(&store, &pairs[..3]).await;

    let mut seen: Vec<UserId> = Vec::new();
    let mut page = PageRequest::first(3);
    loop {
        let got = store.list_members(&scope, &page).await.unwrap();
        assert!(got.items.len() <= 3);
        seen.extend(got.items.into_iter().map(|m| m.user_id));
        match got.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    seen.sort();
    let mut expected: Vec<UserId> = people.iter().map(|p| p.user_id.clone()).chain([owner.user_id.clone()]).collect();
    expected.sort();
    assert_eq!(seen, expected);

    let first = store.list_members(&scope, &PageRequest::first(2)).await.unwrap();
    let cursor = first.next_cursor.unwrap();
    // replayed against another org
    let replay = PageRequest { limit: Some(2), cursor: Some(cursor.clone()) };
    assert_eq!(store.list_members(&other, &replay).await.unwrap_err(), DomainError::InvalidCursor);
    // replayed against another query
    assert_eq!(store.list_my_orgs(&owner.user_id, &replay).await.unwrap_err(), DomainError::InvalidCursor);
    // edited by hand
    let (body, tag) = cursor.split_once('.').unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&base64_decode(body)).unwrap();
    json["k"]["SK"] = serde_json::Value::String("MEMBER#zzz".into());
    let forged = format!("{}.{}", base64_encode(json.to_string().as_bytes()), tag);
    let forged = PageRequest { limit: Some(2), cursor: Some(forged) };
    assert_eq!(store.list_members(&scope, &forged).await.unwrap_err(), DomainError::InvalidCursor);
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
}
fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[tokio::test]
async fn deleting_an_org_purges_every_item() {
    let store = testkit::fresh_store().await;
    let people: Vec<Identity> = (0..4).map(|i| person(&format!("p{i}"))).collect();
    let pairs: Vec<(&Identity, Role)> = people.iter().map(|p| (p, Role::Member)).collect();
    let (owner, scope) = org_with_members(&store, &pairs).await;
    let (_, survivor) = org_with_members(&store, &pairs[..1]).await;
    store.add_usage(&scope, UsageCounter::ChatTokens, 5).await.unwrap();
    let org = scope.org_id();
    let slug = scope.org().slug.clone();

    store.delete_org(&scope).await.unwrap();
    // Deletion only marks the org; its items wait for the purge consumer.
    assert_eq!(store.awaiting_purge().await.unwrap(), vec![store::PurgeTarget::Org(org)]);
    let purge = store.purge_scope(org).await.unwrap().expect("a deleted org awaits its purge");
    assert_eq!(store.purge(&purge, std::time::Instant::now() + std::time::Duration::from_secs(60)).await.unwrap(), PurgeProgress::Done);
    assert!(store.awaiting_purge().await.unwrap().is_empty());
    assert!(store.purge_scope(org).await.unwrap().is_none(), "nothing is left to purge");

    assert_eq!(store.authorize(&owner, org, Action::ReadOrg).await.unwrap_err(), DomainError::NotFound);
    assert_eq!(store.authorize(&operator(&store).await, org, Action::ReadOrg).await.unwrap_err(), DomainError::NotFound);
    assert!(store.list_my_orgs(&people[0].user_id, &PageRequest::default()).await.unwrap().items.iter().all(|o| o.org.id != org));
    let items = testkit::scan_all(&store).await;
    // Domain events are not in the org's partitions: they expire by TTL within their
    // retention (their consumers need them for that long), and nothing else remains.
    let is_event = |i: &&std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| {
        i.get("_type").and_then(|v| v.as_s().ok()).is_some_and(|t| t == "event")
            && i.get("ttl")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
                .is_some_and(|t| t <= store.clock().epoch() + store::EVENT_RETENTION_SECS)
    };
    let leftovers: Vec<_> =
        items.iter().filter(|i| i.values().any(|v| v.as_s().is_ok_and(|s| s.contains(&org.to_string())))).filter(|i| !is_event(i)).collect();
    assert!(leftovers.is_empty(), "items of the deleted org remain: {leftovers:?}");
    // the slug is free again and the other org is intact
    let reuse = store.create_org(&owner, None, NewOrg { slug: Some(slug), ..new_org("Reborn") }).await;
    assert!(reuse.is_ok());
    assert_eq!(store.list_members(&survivor, &PageRequest::default()).await.unwrap().items.len(), 2);
    // a second purge is harmless; there is nothing left to resume
    assert_eq!(store.admin_scope(&operator(&store).await, org).await.unwrap_err(), DomainError::NotFound);
}

#[tokio::test]
async fn warm_up_reads_nothing_and_never_fails() {
    let store = testkit::fresh_store().await;
    let (_, calls) = telemetry::record(store.warm_up()).await;
    assert_eq!(calls.count("DynamoDB"), 1);
    assert!(testkit::scan_all(&store).await.is_empty());
    let broken = Store::new(store.client().clone(), "no-such-table", store::CursorKey::new("x"));
    broken.warm_up().await;
}

/// An org with three members, deleted: its owner and its id.
async fn deleted_org(store: &Store, prefix: &str) -> (Identity, domain::OrgId) {
    let people: Vec<Identity> = (0..3).map(|i| person(&format!("{prefix}{i}"))).collect();
    let pairs: Vec<(&Identity, Role)> = people.iter().map(|p| (p, Role::Member)).collect();
    let (owner, scope) = org_with_members(store, &pairs).await;
    store.delete_org(&scope).await.unwrap();
    (owner, scope.org_id())
}

#[tokio::test]
async fn a_deleted_org_answers_404_at_once_and_its_items_wait_for_the_purge() {
    let store = testkit::fresh_store().await;
    let (owner, org) = deleted_org(&store, "w").await;
    assert_eq!(store.authorize(&owner, org, Action::ReadOrg).await.unwrap_err(), DomainError::NotFound);
    let remaining = |items: Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>| {
        items.iter().filter(|i| i.get("PK").and_then(|v| v.as_s().ok()).is_some_and(|pk| pk.contains(&org.to_string()))).count()
    };
    assert!(remaining(testkit::scan_all(&store).await) > 1, "deletion itself purges nothing");
}

#[tokio::test]
async fn a_purge_pass_that_runs_out_of_time_marks_the_org_for_another() {
    let store = testkit::fresh_store().await;
    let (_, org) = deleted_org(&store, "q").await;
    let purge = store.purge_scope(org).await.unwrap().unwrap();
    // A deadline already past: one page goes, then the pass stops and marks the org.
    assert_eq!(store.purge(&purge, std::time::Instant::now()).await.unwrap(), PurgeProgress::Continuing);
    let org_item = testkit::scan_all(&store).await.into_iter().find(|i| {
        i.get("SK").and_then(|v| v.as_s().ok()).is_some_and(|s| s == "ORG") && i.get("id").and_then(|v| v.as_s().ok()).is_some_and(|id| *id == org.to_string())
    });
    let pass = org_item.expect("the org item stays until the end").get("purgePass").and_then(|v| v.as_n().ok()).cloned();
    assert_eq!(pass.as_deref(), Some("1"), "the mark is a change the stream carries to the consumer");
    assert_eq!(store.awaiting_purge().await.unwrap(), vec![store::PurgeTarget::Org(org)]);
    assert_eq!(store.purge(&purge, std::time::Instant::now() + std::time::Duration::from_secs(60)).await.unwrap(), PurgeProgress::Done);
    assert!(store.purge_scope(org).await.unwrap().is_none());
    // A pass over a purged org is harmless.
    assert!(store.awaiting_purge().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_platform_admin_claim_counts_only_while_the_profile_says_operator() {
    let store = testkit::fresh_store().await;
    let (_, scope) = org_with_members(&store, &[]).await;
    let org = scope.org_id();
    let op = operator(&store).await;
    assert!(store.admin_scope(&op, org).await.is_ok());
    assert!(store.authorize(&op, org, Action::ReadOrg).await.is_ok());
    assert!(store.list_all_orgs(&op, None, &PageRequest::default()).await.is_ok());

    // Withdrawn: the token still carries the group until it expires, but nothing honours it.
    store.set_platform_operator(&op.user_id, false).await.unwrap();
    assert_eq!(store.admin_scope(&op, org).await.unwrap_err(), DomainError::Forbidden("platform operators only"));
    assert_eq!(store.authorize(&op, org, Action::ReadOrg).await.unwrap_err(), DomainError::NotFound);
    assert_eq!(store.list_all_orgs(&op, None, &PageRequest::default()).await.unwrap_err(), DomainError::Forbidden("platform operators only"));

    // A claim without a profile at all counts for nothing either.
    let stranger = Identity { platform_admin: true, ..person("claims-only") };
    assert!(store.admin_scope(&stranger, org).await.is_err());
    assert_eq!(store.authorize(&stranger, org, Action::ReadOrg).await.unwrap_err(), DomainError::NotFound);
}
