//! The domain events of security-relevant changes, on the local AWS endpoint: each written in
//! the transaction of its change (none for a refused change), with its kind, actor and
//! targets, and with the API request behind it when there is one.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use domain::chat::ChatSettings;
use domain::work::{ProjectName, TaskTitle};
use domain::{Action, DomainError, Identity, OrgName, OrgSettings, Plan, Role};
use futures::StreamExt;
use serde_json::json;
use store::{DomainEvent, EventKind, InviteContext, InviteToken, NewInvite, NewOrg, OrgScope, OrgStatus, RequestMeta, Store};

fn person(name: &str) -> Identity {
    testkit::Caller::new(name).identity()
}

fn new_org(name: &str) -> NewOrg {
    NewOrg { name: OrgName::parse("name", name).unwrap(), slug: None }
}

/// Every event item in the table, oldest first.
async fn events(store: &Store) -> Vec<DomainEvent> {
    let mut events: Vec<DomainEvent> =
        testkit::scan_all(store).await.into_iter().filter_map(|item| DomainEvent::from_image(&serde_dynamo::Item::from(item)).unwrap()).collect();
    events.sort_by(|a, b| a.id.cmp(&b.id));
    events
}

/// The events of `kind`, oldest first.
async fn of_kind(store: &Store, kind: EventKind) -> Vec<DomainEvent> {
    events(store).await.into_iter().filter(|e| e.kind == kind).collect()
}

/// The one event of `kind`.
async fn only(store: &Store, kind: EventKind) -> DomainEvent {
    let found = of_kind(store, kind).await;
    assert_eq!(found.len(), 1, "one {kind:?} event: {found:?}");
    found.into_iter().next().unwrap()
}

/// Every event item as the table holds it, as text (what an item must not contain).
async fn raw_event_items(store: &Store) -> String {
    let items: Vec<_> =
        testkit::scan_all(store).await.into_iter().filter(|i| i.get("_type").and_then(|v| v.as_s().ok()).is_some_and(|t| t == "event")).collect();
    format!("{items:?}")
}

async fn operator(store: &Store) -> Identity {
    let who = Identity { platform_admin: true, ..person("operator") };
    store.ensure_user(&who).await.unwrap();
    store.set_platform_operator(&who.user_id, true).await.unwrap();
    who
}

async fn org(store: &Store, owner: &Identity, action: Action) -> OrgScope {
    let scope = store.create_org(owner, None, new_org("Acme")).await.unwrap();
    store.authorize(owner, scope.org_id(), action).await.unwrap()
}

fn meta(id: &str) -> RequestMeta {
    RequestMeta { request_id: id.into(), source_ip: Some("203.0.113.7".into()), user_agent: Some("audit-test/1.0".into()) }
}

#[tokio::test]
async fn an_orgs_lifecycle_writes_its_events_with_their_actors_and_changes() {
    let store = testkit::fresh_store().await;
    let owner = person("owner");
    let scope = org(&store, &owner, Action::UpdateOrg).await;
    let org_id = scope.org_id();

    let created = only(&store, EventKind::OrgCreated).await;
    assert_eq!((created.org_id, created.actor.as_str(), created.title.as_deref()), (org_id, owner.user_id.as_str(), Some("Acme")));
    assert_eq!(created.request, None, "made outside any API request");

    // Name and settings, the chat prompt among them: its text never reaches the event.
    let secret = "Never reveal the launch code 4242 to anyone.";
    let settings = OrgSettings { time_zone: "Europe/Paris".into(), chat_system_prompt: Some(secret.into()), ..scope.org().settings.clone() };
    let name = OrgName::parse("name", "Acme Corp").unwrap();
    store::with_request(Some(meta("req-update")), store.update_org(&scope, None, Some(name.clone()), Some(settings.clone()))).await.unwrap();
    let updated = only(&store, EventKind::OrgUpdated).await;
    assert_eq!((updated.actor.as_str(), updated.title.as_deref()), (owner.user_id.as_str(), Some("Acme Corp")));
    assert_eq!(updated.request, Some(meta("req-update")), "the request behind the change");
    let change = |field: &str| updated.change(field).map(|c| (c.from.clone(), c.to.clone()));
    assert_eq!(change("name"), Some((json!("Acme"), json!("Acme Corp"))));
    assert_eq!(change("settings.timeZone"), Some((json!("UTC"), json!("Europe/Paris"))));
    assert_eq!(change("settings.chatSystemPrompt"), Some((json!(null), json!({"length": secret.chars().count()}))));
    assert_eq!(updated.changes.len(), 3, "only what changed: {:?}", updated.changes);
    assert!(!raw_event_items(&store).await.contains("launch code"), "the prompt's text is not on any event");

    // A refused update (a stale version) writes nothing.
    let stale = store.update_org(&scope, Some(scope.org().version), Some(OrgName::parse("name", "Stale").unwrap()), None).await;
    assert_eq!(stale.unwrap_err(), DomainError::StaleVersion);
    assert_eq!(of_kind(&store, EventKind::OrgUpdated).await.len(), 1);

    // Operators: plan and status, as the platform.
    let op = operator(&store).await;
    store.set_org_plan(&store.admin_scope(&op, org_id).await.unwrap(), Plan::Starter).await.unwrap();
    let plan = only(&store, EventKind::OrgPlanChanged).await;
    assert_eq!(plan.actor, store::PLATFORM_ACTOR);
    assert_eq!(plan.change("plan").map(|c| (c.from.clone(), c.to.clone())), Some((json!(Plan::Free), json!(Plan::Starter))));
    // The same plan again changes nothing and says nothing.
    store.set_org_plan(&store.admin_scope(&op, org_id).await.unwrap(), Plan::Starter).await.unwrap();
    assert_eq!(of_kind(&store, EventKind::OrgPlanChanged).await.len(), 1);
    store.set_org_status(&store.admin_scope(&op, org_id).await.unwrap(), OrgStatus::Suspended).await.unwrap();
    store.set_org_status(&store.admin_scope(&op, org_id).await.unwrap(), OrgStatus::Active).await.unwrap();
    assert_eq!(only(&store, EventKind::OrgSuspended).await.actor, store::PLATFORM_ACTOR);
    assert_eq!(only(&store, EventKind::OrgReactivated).await.actor, store::PLATFORM_ACTOR);

    // Deletion, by an owner; a second request finds nothing to delete and writes nothing.
    let scope = store.authorize(&owner, org_id, Action::DeleteOrg).await.unwrap();
    store.delete_org(&scope).await.unwrap();
    assert!(store.delete_org(&scope).await.is_err());
    let requested = only(&store, EventKind::OrgDeletionRequested).await;
    assert_eq!((requested.org_id, requested.actor.as_str()), (org_id, owner.user_id.as_str()));
}

#[tokio::test]
async fn ownership_transfers_and_membership_changes_name_their_members() {
    let store = testkit::fresh_store().await;
    let (owner, heir, leaver) = (person("owner"), person("heir"), person("leaver"));
    let scope = org(&store, &owner, Action::ManageMembers).await;
    store.add_member(&scope, &heir.user_id, Role::Admin, heir.email.clone(), None).await.unwrap();
    store.add_member(&scope, &leaver.user_id, Role::Member, leaver.email.clone(), None).await.unwrap();
    let joined = of_kind(&store, EventKind::MemberJoined).await;
    assert_eq!(
        joined.iter().map(|e| (e.member.clone(), e.role)).collect::<Vec<_>>(),
        [(Some(heir.user_id.clone()), Some(Role::Admin)), (Some(leaver.user_id.clone()), Some(Role::Member))]
    );

    let target = store.get_member(&scope, &leaver.user_id).await.unwrap().unwrap();
    store.change_role(&scope, &target, Role::Viewer).await.unwrap();
    let changed = only(&store, EventKind::MemberRoleChanged).await;
    assert_eq!((changed.member.as_ref(), changed.role, changed.previous_role), (Some(&leaver.user_id), Some(Role::Viewer), Some(Role::Member)));
    let target = store.get_member(&scope, &leaver.user_id).await.unwrap().unwrap();
    store.remove_member(&scope, &target).await.unwrap();
    let removed = only(&store, EventKind::MemberRemoved).await;
    assert_eq!((removed.member.as_ref(), removed.actor.as_str()), (Some(&leaver.user_id), owner.user_id.as_str()));

    // A transfer to someone who is no member any more is refused, and says nothing.
    let gone = store::Member { role: Role::Viewer, ..target.clone() };
    let scope = store.authorize(&owner, scope.org_id(), Action::TransferOwnership).await.unwrap();
    assert!(store.transfer_ownership(&scope, &gone).await.is_err());
    assert!(of_kind(&store, EventKind::OwnershipTransferred).await.is_empty());

    let heir_member = store.get_member(&scope, &heir.user_id).await.unwrap().unwrap();
    store.transfer_ownership(&scope, &heir_member).await.unwrap();
    let transferred = only(&store, EventKind::OwnershipTransferred).await;
    assert_eq!((transferred.member.as_ref(), transferred.role, transferred.actor.as_str()), (Some(&heir.user_id), Some(Role::Owner), owner.user_id.as_str()));
    let owner_change = transferred.change("owner").unwrap();
    assert_eq!((owner_change.from.clone(), owner_change.to.clone()), (json!(owner.user_id), json!(heir.user_id)), "the previous owner and the new");
    assert_eq!(of_kind(&store, EventKind::MemberRoleChanged).await.len(), 3, "and both role changes, as before");
}

#[tokio::test]
async fn an_invitations_life_writes_its_events_without_the_invitees_address() {
    let store = testkit::fresh_store().await;
    let owner = person("owner");
    let scope = org(&store, &owner, Action::ManageInvites).await;
    let (invitee, decliner) = (person("invitee"), person("decliner"));
    let invite = |who: &Identity, role: Role, ctx: InviteContext| {
        let (store, scope, email) = (&store, &scope, who.email.clone().unwrap());
        async move {
            let token = InviteToken::generate().unwrap();
            let invite = store.create_invite(scope, &ctx, NewInvite { email, role, token: &token, ttl_secs: 3600 }).await.unwrap();
            (invite, token)
        }
    };

    let (first, _) = invite(&invitee, Role::Member, InviteContext::default()).await;
    let created = only(&store, EventKind::InvitationCreated).await;
    assert_eq!((created.invitation_id.as_deref(), created.role, created.actor.as_str()), (Some(first.id.as_str()), Some(Role::Member), owner.user_id.as_str()));
    // Inviting the same address again refreshes the invitation: a resend, with the new role.
    let (again, _) = invite(&invitee, Role::Admin, InviteContext { already_member: false, pending: Some(first.clone()) }).await;
    assert_eq!(again.id, first.id);
    let resent = only(&store, EventKind::InvitationResent).await;
    assert_eq!((resent.invitation_id.as_deref(), resent.role), (Some(first.id.as_str()), Some(Role::Admin)));
    let token = InviteToken::generate().unwrap();
    let latest = store.resend_invite(&scope, &again, &token, 3600).await.unwrap();
    assert_eq!(of_kind(&store, EventKind::InvitationResent).await.len(), 2);
    store.revoke_invite(&scope, &latest).await.unwrap();
    let revoked = only(&store, EventKind::InvitationRevoked).await;
    assert_eq!((revoked.invitation_id.as_deref(), revoked.actor.as_str()), (Some(first.id.as_str()), owner.user_id.as_str()));
    // Refused: resending or revoking what is no longer pending.
    assert!(store.resend_invite(&scope, &latest, &InviteToken::generate().unwrap(), 3600).await.is_err());
    let closed = store::Invite { status: store::InviteStatus::Revoked, ..latest.clone() };
    assert!(store.revoke_invite(&scope, &closed).await.is_err());
    assert_eq!(of_kind(&store, EventKind::InvitationResent).await.len(), 2);
    assert_eq!(of_kind(&store, EventKind::InvitationRevoked).await.len(), 1);

    // Declined, by the invitee (someone else's decline is refused and says nothing).
    let (declined, token) = invite(&decliner, Role::Viewer, InviteContext::default()).await;
    assert_eq!(store.decline_invite(&invitee, &token.token).await.unwrap_err(), DomainError::NotFound);
    assert!(of_kind(&store, EventKind::InvitationDeclined).await.is_empty());
    store.decline_invite(&decliner, &token.token).await.unwrap();
    let event = only(&store, EventKind::InvitationDeclined).await;
    assert_eq!((event.invitation_id.as_deref(), event.role, event.actor.as_str()), (Some(declined.id.as_str()), Some(Role::Viewer), decliner.user_id.as_str()));
    assert_eq!(event.inviter.as_ref(), Some(&owner.user_id));

    // Accepted: the invitation is named on its event.
    let (accepted, token) = invite(&invitee, Role::Member, InviteContext::default()).await;
    store.accept_invite(&invitee, &token.token).await.unwrap();
    let event = only(&store, EventKind::InvitationAccepted).await;
    assert_eq!((event.invitation_id.as_deref(), event.member.as_ref()), (Some(accepted.id.as_str()), Some(&invitee.user_id)));

    let raw = raw_event_items(&store).await;
    for who in [&invitee, &decliner] {
        assert!(!raw.contains(who.email.as_ref().unwrap().as_str()), "no event carries an invitee's address");
    }
}

#[tokio::test]
async fn project_task_and_file_events_name_their_targets() {
    let store = testkit::fresh_store().await;
    let owner = person("owner");
    let scope = org(&store, &owner, Action::ManageWorkload).await;
    let project = store.create_project(&scope, ProjectName::parse("name", "Apollo").unwrap(), String::new()).await.unwrap();
    let task = store
        .create_task(&scope, &project, store::TaskDraft::new(TaskTitle::parse("title", "Launch").unwrap()), None, &store::OrgLabels::default())
        .await
        .unwrap();

    // Uploads: granted (with what the file is attached to); one over the plan's size is
    // refused and says nothing.
    let attach = Some(store::Attachment { project_id: project.id, task_id: Some(task.id) });
    let new = store::NewFile { name: "plan.pdf".into(), content_type: "application/pdf", size: 10, attach_to: attach };
    let file = store.reserve_upload(&scope, new, store.clock().epoch() + 3600).await.unwrap();
    let too_big = store::NewFile { name: "huge.pdf".into(), content_type: "application/pdf", size: Plan::Free.limits().max_upload_bytes + 1, attach_to: None };
    assert!(store.reserve_upload(&scope, too_big, store.clock().epoch() + 3600).await.is_err());
    let started = only(&store, EventKind::FileUploadStarted).await;
    assert_eq!((started.file_id, started.title.as_deref(), started.actor.as_str()), (Some(file.id), Some("plan.pdf"), owner.user_id.as_str()));
    assert_eq!((started.project_id, started.task_id), (Some(project.id), Some(task.id)));

    // Downloads: one event per link handed out, the rendition named when not the original.
    store.record_download(&scope, &file, None).await.unwrap();
    store::with_request(Some(meta("req-text")), store.record_download(&scope, &file, Some("text"))).await.unwrap();
    let downloads = of_kind(&store, EventKind::FileDownloaded).await;
    assert_eq!(downloads.iter().map(|d| (d.file_id, d.rendition.as_deref())).collect::<Vec<_>>(), [(Some(file.id), None), (Some(file.id), Some("text"))]);
    assert_eq!(downloads[1].request, Some(meta("req-text")));
    // An operator's download (read-only platform access) is the platform's.
    let op = operator(&store).await;
    let platform_scope = store.authorize(&op, scope.org_id(), Action::ReadWorkload).await.unwrap();
    store.record_download(&platform_scope, &file, None).await.unwrap();
    assert_eq!(of_kind(&store, EventKind::FileDownloaded).await[2].actor, store::PLATFORM_ACTOR);

    store.delete_file(&scope, &file, None).await.unwrap();
    assert_eq!(only(&store, EventKind::FileDeleted).await.file_id, Some(file.id));

    // Deletions: a stale one is refused and says nothing.
    assert_eq!(store.delete_task(&scope, &task, Some(task.version + 1)).await.unwrap_err(), DomainError::StaleVersion);
    assert!(of_kind(&store, EventKind::TaskDeleted).await.is_empty());
    store.delete_task(&scope, &task, None).await.unwrap();
    assert_eq!(only(&store, EventKind::TaskDeleted).await.task_id, Some(task.id));
    assert_eq!(store.delete_project(&scope, &project, Some(project.version + 1)).await.unwrap_err(), DomainError::StaleVersion);
    assert!(of_kind(&store, EventKind::ProjectDeleted).await.is_empty());
    store.delete_project(&scope, &project, None).await.unwrap();
    let deleted = only(&store, EventKind::ProjectDeleted).await;
    assert_eq!((deleted.project_id, deleted.title.as_deref(), deleted.actor.as_str()), (Some(project.id), Some("Apollo"), owner.user_id.as_str()));
}

#[tokio::test]
async fn chat_settings_changes_name_their_fields_and_measure_the_prompt() {
    let store = testkit::fresh_store().await;
    let owner = person("owner");
    let scope = org(&store, &owner, Action::UpdateOrg).await;
    let current = store.chat_settings(&scope, scope.org().plan).await.unwrap();
    let prompt = "You answer as Captain Nemo, in riddles only.";
    let next = ChatSettings { system_prompt: prompt.into(), retrieval: false, ..current.settings.clone() };
    let saved = store.put_chat_settings(&scope, &current, None, next.clone()).await.unwrap();
    let event = only(&store, EventKind::ChatSettingsChanged).await;
    assert_eq!(event.actor, owner.user_id.as_str());
    let fields: Vec<&str> = event.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["retrieval", "systemPrompt"]);
    let measured = event.change("systemPrompt").unwrap();
    assert_eq!(
        (measured.from.clone(), measured.to.clone()),
        (json!({"length": current.settings.system_prompt.chars().count()}), json!({"length": prompt.chars().count()}))
    );
    assert!(!raw_event_items(&store).await.contains("Captain Nemo"), "the prompt's text is not on the event");

    // A stale save is refused; saving the same settings changes nothing worth an event.
    assert_eq!(store.put_chat_settings(&scope, &current, None, next.clone()).await.unwrap_err(), DomainError::StaleVersion);
    store.put_chat_settings(&scope, &saved, None, next).await.unwrap();
    assert_eq!(of_kind(&store, EventKind::ChatSettingsChanged).await.len(), 1);
}

#[tokio::test]
async fn a_sign_in_writes_one_event_per_org_of_the_user_in_transactions_of_at_most_a_hundred_items() {
    let limits = domain::PlatformLimits { orgs_per_user_per_day: 200, ..Default::default() };
    let store = testkit::fresh_store().await.with_limits(limits);
    let user = person("traveller");
    store.ensure_user(&user).await.unwrap();
    // More orgs than one transaction holds beside the login.
    let count = store::SIGN_IN_EVENTS_WITH_LOGIN + 3;
    let (store_ref, user_ref) = (&store, &user);
    let created =
        futures::stream::iter(0..count).map(|i| async move { store_ref.create_org(user_ref, None, new_org(&format!("Org {i}"))).await.unwrap().org_id() });
    let mut orgs: Vec<_> = futures::StreamExt::buffer_unordered(created, 8).collect().await;
    let (result, calls) = telemetry::record(store.record_login(&user.user_id)).await;
    result.unwrap();
    assert_eq!(calls.count("DynamoDB"), 3, "the memberships, the login with 99 events, the other 3 events");
    let signed_in = of_kind(&store, EventKind::UserSignedIn).await;
    let mut in_orgs: Vec<_> = signed_in.iter().map(|e| e.org_id).collect();
    in_orgs.sort();
    orgs.sort();
    assert_eq!(in_orgs, orgs, "one per org");
    assert!(signed_in.iter().all(|e| e.actor == user.user_id.as_str() && e.request.is_none()));
    assert!(store.get_user(&user.user_id).await.unwrap().unwrap().last_login_at.is_some());

    // No profile: no login recorded, and no event.
    let stranger = person("stranger");
    store.create_org(&stranger, None, new_org("Elsewhere")).await.unwrap();
    assert_eq!(store.record_login(&stranger.user_id).await.unwrap_err(), DomainError::NotFound);
    assert_eq!(of_kind(&store, EventKind::UserSignedIn).await.len(), count);
}

#[tokio::test]
async fn the_request_reaches_the_events_of_its_scope_only() {
    let store = testkit::fresh_store().await;
    let owner = person("owner");
    let scope = org(&store, &owner, Action::ManageMembers).await;
    let (a, b) = (person("a"), person("b"));
    let add_a = store.add_member(&scope, &a.user_id, Role::Member, None, None);
    let add_b = store.add_member(&scope, &b.user_id, Role::Member, None, None);
    // Two requests served at once, each with its own metadata; and a change outside both.
    let (ra, rb) = futures::join!(store::with_request(Some(meta("req-a")), add_a), store::with_request(Some(meta("req-b")), add_b));
    ra.unwrap();
    rb.unwrap();
    let outside = person("c");
    store.add_member(&scope, &outside.user_id, Role::Member, None, None).await.unwrap();
    let joined = of_kind(&store, EventKind::MemberJoined).await;
    let request_of = |who: &Identity| joined.iter().find(|e| e.member.as_ref() == Some(&who.user_id)).unwrap().request.clone();
    assert_eq!(request_of(&a).map(|r| r.request_id), Some("req-a".into()));
    assert_eq!(request_of(&b).map(|r| r.request_id), Some("req-b".into()));
    assert_eq!(request_of(&outside), None);
    assert_eq!(store::current_request(), None);
}

#[test]
fn request_metadata_is_bounded_and_blank_values_are_absent() {
    let long = "x".repeat(5_000);
    let meta = RequestMeta::new(Some("id"), Some(" "), Some(&long)).unwrap();
    assert_eq!((meta.source_ip, meta.user_agent.map(|u| u.chars().count())), (None, Some(store::USER_AGENT_CHARS)));
    assert_eq!(RequestMeta::new(None, Some("10.0.0.1"), None), None, "no request id: no API request");
    assert_eq!(RequestMeta::new(Some(""), None, None), None);
}
