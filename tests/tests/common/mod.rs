//! The fixture the matrix and the round-trip tests share: one org with a member of every
//! role, a target member and an open invitation, plus another org.

#![allow(dead_code)]

use domain::{Action, Role};
use store::{NewOrg, Store};
use testkit::Caller;

/// Callers, in the column order of the table.
#[derive(Debug, Clone, Copy)]
pub enum Who {
    Owner,
    Admin,
    Member,
    Viewer,
    /// The owner of another organization.
    Other,
    /// A platform operator who is not a member.
    Platform,
    Anonymous,
}

/// One org with a member of every role, a target member and an open invitation, plus
/// another org.
pub struct Fixture {
    pub org: String,
    /// A project of the org, created by its owner, with a task that has a comment by the owner.
    pub project: String,
    pub task: String,
    pub comment: String,
    /// A notification in the owner's inbox.
    pub notification: String,
    /// An unsubscribe link's token (the owner's, for mentions).
    pub unsubscribe: String,
    /// A ready file uploaded by the owner (with a thumbnail and extracted text).
    pub file: String,
    /// A conversation of the owner's, with one question and its answer.
    pub conversation: String,
    /// A complete export of the org, made by its owner.
    pub export: String,
    pub invite: String,
    pub token: String,
    pub newcomer: String,
    /// The address the open invitation is for.
    pub invitee: Caller,
    pub owner: Caller,
    pub admin: Caller,
    pub member: Caller,
    pub viewer: Caller,
    pub target: Caller,
    pub other: Caller,
    pub platform: Caller,
}

impl Fixture {
    pub async fn new(store: &Store) -> Fixture {
        let (owner, admin, member, viewer, target, other) =
            (Caller::new("owner"), Caller::new("admin"), Caller::new("member"), Caller::new("viewer"), Caller::new("target"), Caller::new("other"));
        let name = |n: &str| NewOrg { name: domain::OrgName::parse("name", n).unwrap(), slug: None };
        let scope = store.create_org(&owner.identity(), None, name("Matrix Org")).await.unwrap();
        let other_org = store.create_org(&other.identity(), None, name("Other Org")).await.unwrap().org_id().to_string();
        let operator = store.admin_scope(&testkit::operator(store, "op").await.identity(), scope.org_id()).await.unwrap();
        store.set_org_plan(&operator, domain::Plan::Starter).await.unwrap();
        let scope = store.authorize(&owner.identity(), scope.org_id(), Action::ManageMembers).await.unwrap();
        for (c, role) in [(&admin, Role::Admin), (&member, Role::Member), (&viewer, Role::Viewer), (&target, Role::Member)] {
            store.add_member(&scope, &c.identity().user_id, role, c.identity().email, None).await.unwrap();
        }
        let org = scope.org_id().to_string();
        // their tokens were issued after they joined: their org claims name the org
        let (owner, admin, member, viewer, target, other) = (
            owner.claiming(&org, "owner"),
            admin.claiming(&org, "admin"),
            member.claiming(&org, "member"),
            viewer.claiming(&org, "viewer"),
            target.claiming(&org, "member"),
            other.claiming(&other_org, "owner"),
        );
        let scope = store.authorize(&owner.identity(), scope.org_id(), Action::ManageInvites).await.unwrap();
        let invitee = Caller::new("invitee");
        for c in [&owner, &admin, &member, &viewer, &other, &invitee] {
            store.ensure_user(&c.identity()).await.unwrap();
        }
        let token = store::InviteToken::generate().unwrap();
        let new = store::NewInvite { email: invitee.email.parse().unwrap(), role: Role::Member, token: &token, ttl_secs: 3600 };
        let invite = store.create_invite(&scope, &store::InviteContext::default(), new).await.unwrap();
        let project = store.create_project(&scope, domain::work::ProjectName::parse("name", "Matrix Project").unwrap(), String::new()).await.unwrap();
        let draft = store::TaskDraft::new(domain::work::TaskTitle::parse("title", "Matrix Task").unwrap());
        let task = store.create_task(&scope, &project, draft, None, &store::OrgLabels::default()).await.unwrap();
        let comment = store.create_comment(&scope, &task, "first".into(), Vec::new()).await.unwrap();
        let recipient = store.recipient(scope.org_id(), &owner.identity().user_id).await.unwrap().unwrap();
        let notification = ulid::Ulid::new().to_string();
        let note = store::NewNotification {
            id: notification.clone(),
            kind: domain::notify::NotificationKind::Mentioned,
            actor: admin.sub.clone(),
            at: "2026-11-27T10:00:00Z".into(),
            title: "Admin mentioned you".into(),
            body: String::new(),
            project_id: Some(project.id),
            task_id: Some(task.id),
        };
        store.deliver_notification(&recipient, &note).await.unwrap();
        let unsubscribe =
            domain::notify::UnsubscribeToken { user: owner.identity().user_id, org: scope.org_id(), kind: domain::notify::NotificationKind::Mentioned }
                .sign(&store.derived_key("unsubscribe"));
        let file = ready_file(store, &scope).await;
        let conversation = owned_conversation(store, &scope).await;
        let export = complete_export(store, &scope).await;
        Fixture {
            export,
            file,
            conversation,
            notification,
            unsubscribe,
            org,
            project: project.id.to_string(),
            task: task.id.to_string(),
            comment: comment.id.to_string(),
            invite: invite.id,
            token: token.token,
            newcomer: Caller::new("newcomer").email,
            invitee,
            owner,
            admin,
            member,
            viewer,
            target,
            other,
            platform: testkit::operator(store, "operator").await,
        }
    }

    /// `path` with the fixture's ids in place of its parameters.
    pub fn concrete(&self, path: &str) -> String {
        path.replace("{orgId}", &self.org)
            .replace("{userId}", &self.target.sub)
            .replace("{inviteId}", &self.invite)
            .replace("{projectId}", &self.project)
            .replace("{taskId}", &self.task)
            .replace("{commentId}", &self.comment)
            .replace("{notificationId}", &self.notification)
            .replace("{fileId}", &self.file)
            .replace("{conversationId}", &self.conversation)
            .replace("{exportId}", &self.export)
    }

    /// A call of `method` on `path` with `body`: JSON, or (a string) a CSV import or the
    /// one-click unsubscribe form; the org-wide task listing asks for the caller's tasks, and
    /// the unsubscribe link carries its token.
    pub fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> testkit::ApiCall {
        let mut call = testkit::ApiCall::new(method, &self.concrete(path));
        if path == "/unsubscribe" {
            call = call.query("token", &self.unsubscribe);
            if let Some(serde_json::Value::String(form)) = body {
                return call.header("content-type", "application/x-www-form-urlencoded").raw_body(form);
            }
        }
        match body {
            Some(serde_json::Value::String(csv)) => call = call.header("content-type", "text/csv").raw_body(csv),
            Some(json) => call = call.json(json),
            None => {}
        }
        if path == "/orgs/{orgId}/tasks" {
            call = call.query("assignee", "me");
        }
        call
    }

    pub fn caller(&self, who: Who) -> Option<&Caller> {
        match who {
            Who::Owner => Some(&self.owner),
            Who::Admin => Some(&self.admin),
            Who::Member => Some(&self.member),
            Who::Viewer => Some(&self.viewer),
            Who::Other => Some(&self.other),
            Who::Platform => Some(&self.platform),
            Who::Anonymous => None,
        }
    }
}

/// A complete export of the org, and one of the owner's own data (the jobs as the exports
/// function leaves them).
async fn complete_export(store: &Store, scope: &store::OrgScope) -> String {
    let job = store.start_org_export(scope).await.unwrap();
    let own = store
        .start_user_export(&domain::Identity { user_id: scope.user_id().clone(), email: None, email_verified: true, platform_admin: false })
        .await
        .unwrap();
    for j in [&job, &own] {
        let mut export = store.export_scope(&store::ExportTarget::of(j)).await.unwrap().unwrap();
        store.finish_export(&mut export, Ok((Default::default(), 22))).await.unwrap();
    }
    job.id
}

/// A conversation of the owner's with a recorded turn (as the chat function records one).
async fn owned_conversation(store: &Store, scope: &store::OrgScope) -> String {
    use store::chat::{ChatMessage, ChatRole, MessageStatus, Turn};
    let conv = store.create_conversation(scope, None).await.unwrap();
    let message = |role, content: &str| ChatMessage {
        id: domain::chat::MessageId::new(),
        conversation_id: conv.id,
        role,
        content: content.into(),
        status: MessageStatus::Complete,
        model: Some(domain::chat::DEFAULT_MODEL.into()),
        usage: None,
        latency_ms: None,
        citations: Vec::new(),
        error: None,
        created_at: store.clock().rfc3339(),
    };
    let turn = Turn { question: message(ChatRole::User, "Hello?"), answer: Some(message(ChatRole::Assistant, "Hello.")), title: None };
    store.record_turn(scope, &conv, turn).await.unwrap();
    conv.id.to_string()
}

/// A file of the owner's that went through upload and processing as the files function takes
/// it through them (the bytes themselves are not needed by any route: downloads are presigned).
async fn ready_file(store: &Store, scope: &store::OrgScope) -> String {
    let new = store::NewFile { name: "matrix.png".into(), content_type: "image/png", size: 10, attach_to: None };
    let file = store.reserve_upload(scope, new, store.clock().epoch() + 3600).await.unwrap();
    let store::Arrival::Process(file) = store.begin_processing(&file, "0001", "etag", 10).await.unwrap() else { panic!("not processed") };
    let outcome = store::Outcome { status: Some(domain::files::FileStatus::Ready), has_thumbnail: true, has_text: true, ..Default::default() };
    store.finish_processing(&file, outcome, false).await.unwrap().unwrap().id.to_string()
}
