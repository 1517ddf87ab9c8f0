//! Realistic data for the scenarios, written through the store as the functions would: an org
//! on the Enterprise plan (so the scenarios' own writes stay inside its limits) with an owner,
//! members, and one pending invitation per accept-invite invocation, whose tokens are kept;
//! for the projects scenarios, a workload (two projects, a board column of tasks, the owner's
//! open tasks across both); and, for each invocation of a stream or purge scenario, what it
//! acts on: an org its owner deletes, a member with open tasks whom the owner removes, or a
//! project with tasks that the owner deletes. For the notifications function: unread and read
//! notifications in the owner's inbox (its routes), comments that mention members, whose
//! domain events are the stream batches (one per invocation), members whose daily digest and
//! held-back mail are due for each sweep, and the address each SES feedback event names. For
//! the files function: before each processing invocation, a file reserved through the store
//! with a real sample (a 2 MB JPEG, a 20-page PDF) put into the upload bucket at its key; a
//! processed file for the malware scan results; and, for each sweep, an upload whose
//! reservation just expired. For the chat function: a member's conversation with earlier
//! turns; for retrieval, ready documents whose chunks are put straight into the org's vector
//! index; and before each ingestion, a document processed to `ready` with 20 pages of
//! extracted text, and the `file.processed` event its processing wrote. For the exports
//! function: before each pass, an export of the org that its owner starts (one at a time per
//! org, so each pass must finish the one before).
//!
//! Each scenario gets its own table, made from `table.json` without the stream: the local
//! endpoint (moto) deep-copies a table with its whole stream history for every item of every
//! transaction, so a streamed table makes each write slower than the last (quadratic). On
//! AWS a stream adds nothing to a write's latency, so leaving it out keeps the numbers honest.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::files::FileStatus;
use domain::notify::{Digest, DigestFrequency, NotificationKind, Preferences};
use domain::work::{Due, Priority, ProjectId, ProjectName, TaskId, TaskStatus, TaskTitle};
use domain::{Action, Clock, Identity, OrgId, OrgName, Plan, Role, UserId};
use serde_json::{Value, json};
use store::{
    Arrival, EventKind, InviteContext, InviteToken, NewFile, NewInvite, NewNotification, NewOrg, OrgScope, Outcome, PageRequest, Project, Recipient, Store,
    StoredFile, TableDefinition, Task, TaskDraft,
};

use crate::runtime_api::request_id;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long seeded invitations stay valid.
const INVITE_TTL_SECS: i64 = 7 * 24 * 3600;

/// Tasks in the board column the "list board" scenario reads (`todo` of the workload's board).
pub const BOARD_TASKS: usize = 50;
/// Open tasks assigned to the owner ("my tasks"), across the workload's two projects.
pub const OWNER_TASKS: usize = 50;
/// Open tasks of each member a "member removed" invocation's record removes.
pub const REMOVED_MEMBER_TASKS: usize = 3;
/// Tasks of each project a "deleted project" invocation purges (each with its history entry).
pub const DELETED_PROJECT_TASKS: usize = 20;
/// The labels seeded tasks carry, in turn (the org's label set).
const LABELS: [&str; 3] = ["bench", "backend", "ui"];
/// Notifications in the owner's inbox that the notifications routes read, newest last.
pub const INBOX_NOTIFICATIONS: usize = 50;
/// Of those, the oldest ones the owner has read.
pub const INBOX_READ: usize = 20;
/// Members whose daily digest is due at each invocation of the notification sweep, each also
/// with a mail that quiet hours held back.
pub const DIGEST_MEMBERS: usize = 10;
/// Unread notifications of each of them (what their digest lists).
pub const DIGEST_UNREAD: usize = 3;
/// The time zones of the digest readers, in turn.
const TIME_ZONES: [&str; 4] = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"];
/// How far back the notification sweep looks for due digests and held-back mail.
const SWEEP_LOOKBACK_SECS: i64 = 3 * 86_400;

/// A Cognito user: a UUID `sub` and a verified email.
#[derive(Debug, Clone)]
pub struct User {
    pub sub: String,
    pub email: String,
    pub name: String,
    /// In the platform-admin group.
    pub platform_admin: bool,
}

impl User {
    pub fn new(email: impl Into<String>, name: impl Into<String>) -> User {
        User { sub: request_id(), email: email.into(), name: name.into(), platform_admin: false }
    }

    /// A platform operator.
    pub fn operator(email: impl Into<String>, name: impl Into<String>) -> User {
        User { platform_admin: true, ..User::new(email, name) }
    }

    pub fn identity(&self) -> Result<Identity, Error> {
        Ok(Identity {
            user_id: self.sub.parse().map_err(|e| format!("sub {}: {e:?}", self.sub))?,
            email: Some(self.email.parse().map_err(|e| format!("email {}: {e:?}", self.email))?),
            email_verified: true,
            platform_admin: self.platform_admin,
        })
    }

    /// The Cognito authorizer's claims as API Gateway REST passes them (all strings; groups
    /// as one string).
    pub fn claims(&self) -> Value {
        let mut claims = json!({
            "sub": self.sub,
            "email": self.email,
            "email_verified": "true",
            "cognito:username": self.sub,
            "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_bench",
            "aud": "benchclient",
            "token_use": "id",
            "auth_time": "1764165000",
        });
        if self.platform_admin {
            claims["cognito:groups"] = json!(Identity::PLATFORM_ADMIN_GROUP);
        }
        claims
    }
}

/// An invited person and the token of their invitation.
#[derive(Debug, Clone)]
pub struct Invitee {
    pub user: User,
    pub token: String,
}

/// What the scenarios refer to.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The scenario's table.
    pub table: String,
    pub org_id: String,
    pub owner: User,
    /// Creates orgs (kept apart from the owner so the owner's org list stays as seeded).
    pub creator: User,
    /// Seeded members besides the owner.
    pub members: usize,
    /// Their user ids, in the order they were added.
    pub member_ids: Vec<String>,
    /// One per accept-invite invocation, in order.
    pub invitees: Vec<Invitee>,
    /// Has an open invitation that accept-invite never consumes (CustomMessage branding).
    pub branded: User,
    /// A platform operator (the operators' routes).
    pub operator: User,
    /// A seeded member with the member role (none with fewer than two members).
    pub member: Option<User>,
    /// The projects scenarios' projects and tasks, when seeded.
    pub workload: Option<Workload>,
    /// The domain events of comments that mention members, one stream batch per invocation
    /// (empty unless [`comment_events`] seeded them).
    pub comment_events: Vec<Vec<CommentEvent>>,
    /// The sample the files scenarios upload, made once per scenario.
    pub sample: Option<SampleFile>,
    /// The processed file the malware scan results are about, when seeded ([`upload`]).
    pub upload: Option<Upload>,
    /// The member's conversation chat turns are asked in, when seeded ([`conversation`]).
    pub conversation_id: Option<String>,
    /// The documents in the org's vector index, when seeded ([`corpus`]).
    pub corpus: Option<Corpus>,
    /// The extracted text each ingestion invocation's document has ([`document_text`]).
    pub document: Option<DocumentText>,
}

/// The domain event of a comment the owner wrote on a board task, mentioning one member: the
/// event item as the store wrote it (with the comment, in one transaction), which is the new
/// image of the stream record (`INSERT`) it makes.
#[derive(Debug, Clone)]
pub struct CommentEvent {
    /// The event's id: the id of the notification it makes in the mentioned member's inbox.
    pub id: String,
    /// The member the comment mentions.
    pub mentioned: String,
    pub item: Item,
}

/// The members of the seeded org whose daily digest is due, seeded for one invocation of the
/// notification sweep: each with [`DIGEST_UNREAD`] unread notifications and a mail that quiet
/// hours held back until a minute ago.
#[derive(Debug, Clone)]
pub struct DueDigests {
    pub org_id: String,
    pub user_ids: Vec<String>,
}

/// The projects and tasks of the projects scenarios, written through the store as
/// `POST …/projects` and `POST …/tasks` write them.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The board: its `todo` column holds [`BOARD_TASKS`] tasks, every other one the owner's.
    pub project_id: String,
    /// A second project: the rest of the owner's [`OWNER_TASKS`] open tasks, in progress.
    pub other_project_id: String,
    /// A member besides the owner (the assignee of created tasks).
    pub assignee: String,
}

/// A member of the seeded org, with open tasks, whom its owner removed just before the
/// invocation (`Store::remove_member`). The membership's item before the removal is the old
/// image of the stream record the removal makes.
#[derive(Debug, Clone)]
pub struct RemovedMember {
    pub org_id: String,
    pub user_id: String,
    /// The project and id of each open task assigned to them when they were removed.
    pub tasks: Vec<(String, String)>,
    pub before: Item,
}

/// A project of the seeded org, with tasks, that its owner deleted just before the invocation
/// (`Store::delete_project`): gone from every listing, its tasks awaiting their purge. The
/// marker the deletion leaves is the new image of the stream record (`INSERT`) it makes.
#[derive(Debug, Clone)]
pub struct DeletedProject {
    pub org_id: String,
    pub project_id: String,
    pub tasks: usize,
    pub after: Item,
}

/// An item as the table holds it.
pub type Item = HashMap<String, AttributeValue>;

/// An org seeded for one invocation and deleted by its owner (`Store::delete_org`): marked
/// `deleting`, awaiting its purge. Its item before and after the deletion are the images of
/// the stream record the deletion makes.
#[derive(Debug, Clone)]
pub struct DeletedOrg {
    pub org_id: String,
    pub members: usize,
    pub before: Item,
    pub after: Item,
}

/// Creates `name` from `table.json`, as the tests and the local stack do (no stream locally,
/// see above).
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), Error> {
    TableDefinition::load().create(client, name).await?;
    Ok(())
}

/// Seeds the org, `invitations` invitations to accept and, with `workload`, the projects
/// scenarios' [`Workload`].
pub async fn seed(store: &Store, members: usize, invitations: usize, workload: bool) -> Result<Fixture, Error> {
    let owner = User::new("owner@bench.example.com", "Bench Owner");
    let creator = User::new("creator@bench.example.com", "Bench Creator");
    let who = owner.identity()?;
    store.ensure_user(&who).await?;
    store.ensure_user(&creator.identity()?).await?;
    let name = OrgName::parse("name", "Bench Org").map_err(|e| format!("{e:?}"))?;
    let scope = store.create_org(&who, Some(owner.name.clone()), NewOrg { name, slug: None }).await?;
    let org_id = scope.org_id();

    // An operator has the group claim and the profile flag the store re-checks.
    let operator = User::operator("operator@bench.example.com", "Bench Operator");
    store.ensure_user(&operator.identity()?).await?;
    store.set_platform_operator(&operator.identity()?.user_id, true).await?;
    let admin = store.admin_scope(&operator.identity()?, org_id).await?;
    store.set_org_plan(&admin, Plan::Enterprise).await?;
    let scope = store.authorize(&who, org_id, Action::ManageMembers).await?;

    let mut member_ids = Vec::with_capacity(members);
    let mut member = None;
    for k in 0..members {
        let m = User::new(format!("member-{k}@bench.example.com"), format!("Member {k}"));
        let role = if k % 5 == 0 { Role::Admin } else { Role::Member };
        store.add_member(&scope, &m.identity()?.user_id, role, m.identity()?.email, Some(m.name.clone())).await?;
        member_ids.push(m.identity()?.user_id);
        if role == Role::Member && member.is_none() {
            member = Some(m);
        }
    }

    let invite = |email: String| {
        let scope = &scope;
        async move {
            let token = InviteToken::generate()?;
            let email_parsed = email.parse().map_err(|e| format!("email {email}: {e:?}"))?;
            let new = NewInvite { email: email_parsed, role: Role::Member, token: &token, ttl_secs: INVITE_TTL_SECS };
            store.create_invite(scope, &InviteContext::default(), new).await?;
            Ok::<String, Error>(token.token.clone())
        }
    };
    let mut invitees = Vec::with_capacity(invitations);
    for k in 0..invitations {
        let user = User::new(format!("invitee-{k}@bench.example.com"), format!("Invitee {k}"));
        let token = invite(user.email.clone()).await?;
        invitees.push(Invitee { user, token });
    }
    let branded = User::new("branded@bench.example.com", "Branded");
    invite(branded.email.clone()).await?;

    let workload = if workload { Some(seed_workload(store, &who, org_id, &member_ids).await?) } else { None };
    Ok(Fixture {
        table: store.table_name().to_owned(),
        org_id: org_id.to_string(),
        owner,
        creator,
        members,
        member_ids: member_ids.iter().map(UserId::to_string).collect(),
        invitees,
        branded,
        operator,
        member,
        workload,
        comment_events: Vec::new(),
        sample: None,
        upload: None,
        conversation_id: None,
        corpus: None,
        document: None,
    })
}

fn invalid(e: impl std::fmt::Debug) -> Error {
    format!("{e:?}").into()
}

/// The org's owner, authorized as the projects function authorizes a task write.
async fn workload_scope(store: &Store, owner: &Identity, org: OrgId) -> Result<OrgScope, Error> {
    Ok(store.authorize(owner, org, Action::WriteWorkload).await?)
}

/// A task as `POST …/tasks` writes one: the org's labels and the end of its column read
/// first, then the one transaction.
#[allow(clippy::too_many_arguments)]
async fn create_task(
    store: &Store,
    scope: &OrgScope,
    project: &Project,
    title: String,
    status: TaskStatus,
    assignee: Option<UserId>,
    due: Option<String>,
    label: usize,
) -> Result<Task, Error> {
    let draft = TaskDraft {
        title: TaskTitle::parse("title", &title).map_err(invalid)?,
        description: format!("Seeded for the benchmark: {title}."),
        status,
        priority: if label.is_multiple_of(2) { Priority::None } else { Priority::High },
        assignee,
        due: due.map(|d| Due::parse("due", &d)).transpose().map_err(invalid)?,
        labels: domain::work::labels("labels", &[LABELS[label % LABELS.len()].to_owned()]).map_err(invalid)?,
    };
    let (labels, last) = tokio::join!(store.org_labels(scope), store.last_rank(scope, project.id, status));
    Ok(store.create_task(scope, project, draft, last?.as_deref(), &labels?).await?)
}

/// A due date `days` days after 2026-12-01 (the seeded tasks fall due over two months).
fn due_in(days: usize) -> String {
    let date =
        time::Date::from_calendar_date(2026, time::Month::December, 1).unwrap_or(time::Date::MIN) + time::Duration::days(i64::try_from(days % 60).unwrap_or(0));
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// Two projects: the board's `todo` column of [`BOARD_TASKS`] tasks, every other one the
/// owner's (the rest assigned to members, in turn), and in the second project the rest of the
/// owner's [`OWNER_TASKS`] open tasks, in progress.
async fn seed_workload(store: &Store, owner: &Identity, org: OrgId, members: &[UserId]) -> Result<Workload, Error> {
    let scope = workload_scope(store, owner, org).await?;
    let name = |n: &str| ProjectName::parse("name", n).map_err(invalid);
    let board = store.create_project(&scope, name("Bench Board")?, "The board the benchmark reads and writes.".into()).await?;
    let other = store.create_project(&scope, name("Bench Roadmap")?, String::new()).await?;
    let me = owner.user_id.clone();
    let member = |k: usize| members.get(k % members.len().max(1)).cloned().unwrap_or_else(|| me.clone());
    let mut owners = 0;
    for k in 0..BOARD_TASKS {
        let assignee = if k.is_multiple_of(2) { me.clone() } else { member(k / 2) };
        owners += usize::from(assignee == me);
        create_task(store, &scope, &board, format!("Board task {k}"), TaskStatus::Todo, Some(assignee), Some(due_in(k)), k).await?;
    }
    for k in owners..OWNER_TASKS {
        create_task(store, &scope, &other, format!("Roadmap task {k}"), TaskStatus::InProgress, Some(me.clone()), Some(due_in(k)), k).await?;
    }
    Ok(Workload { project_id: board.id.to_string(), other_project_id: other.id.to_string(), assignee: member(0).to_string() })
}

/// Seeds the member of invocation `k` of the "member removed" scenario in the fixture's org,
/// assigns them [`REMOVED_MEMBER_TASKS`] open tasks across the workload's projects, and has
/// the owner remove them.
pub async fn removed_member(store: &Store, fixture: &Fixture, k: usize) -> Result<RemovedMember, Error> {
    let workload = fixture.workload.as_ref().ok_or("the fixture has no workload")?;
    let owner = fixture.owner.identity()?;
    let org: OrgId = fixture.org_id.parse().map_err(invalid)?;
    let user = User::new(format!("leaver-{k}@bench.example.com"), format!("Leaver {k}"));
    let id = user.identity()?;
    let scope = store.authorize(&owner, org, Action::ManageMembers).await?;
    store.add_member(&scope, &id.user_id, Role::Member, id.email.clone(), Some(user.name.clone())).await?;
    let scope = workload_scope(store, &owner, org).await?;
    let mut tasks = Vec::with_capacity(REMOVED_MEMBER_TASKS);
    for t in 0..REMOVED_MEMBER_TASKS {
        let project_id = if t.is_multiple_of(2) { &workload.project_id } else { &workload.other_project_id };
        let project = store.get_project(&scope, project_id.parse().map_err(invalid)?).await?.ok_or("a workload project is gone")?;
        let status = [TaskStatus::Todo, TaskStatus::InProgress, TaskStatus::Blocked][t % 3];
        let task = create_task(store, &scope, &project, format!("Leaver {k} task {t}"), status, Some(id.user_id.clone()), Some(due_in(k + t)), t).await?;
        tasks.push((project.id.to_string(), task.id.to_string()));
    }
    let before = store.member_item(org, &id.user_id).await?.ok_or("the seeded member has no item")?;
    let scope = store.authorize(&owner, org, Action::ManageMembers).await?;
    let member = store.get_member(&scope, &id.user_id).await?.ok_or("the seeded member is gone")?;
    store.remove_member(&scope, &member).await?;
    Ok(RemovedMember { org_id: org.to_string(), user_id: id.user_id.to_string(), tasks, before })
}

/// Whether the open tasks of `removed` are unassigned (the consumer's work).
pub async fn unassigned(store: &Store, fixture: &Fixture, removed: &RemovedMember) -> Result<bool, Error> {
    let org: OrgId = removed.org_id.parse().map_err(invalid)?;
    let scope = store.authorize(&fixture.owner.identity()?, org, Action::ReadWorkload).await?;
    for (project, task) in &removed.tasks {
        let (project, task): (ProjectId, TaskId) = (project.parse().map_err(invalid)?, task.parse().map_err(invalid)?);
        let task = store.get_task(&scope, project, task).await?.ok_or("a removed member's task is gone")?;
        if task.assignee.is_some() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Seeds the project of invocation `k` of the "deleted project" scenario in the fixture's
/// org, with `tasks` tasks (half of them assigned to the owner, with due dates), and has the
/// owner delete it.
pub async fn deleted_project(store: &Store, fixture: &Fixture, tasks: usize, k: usize) -> Result<DeletedProject, Error> {
    let owner = fixture.owner.identity()?;
    let org: OrgId = fixture.org_id.parse().map_err(invalid)?;
    let scope = workload_scope(store, &owner, org).await?;
    let name = ProjectName::parse("name", &format!("Deleted Project {k}")).map_err(invalid)?;
    let project = store.create_project(&scope, name, String::new()).await?;
    for t in 0..tasks {
        let (assignee, due) = if t.is_multiple_of(2) { (Some(owner.user_id.clone()), Some(due_in(t))) } else { (None, None) };
        let status = [TaskStatus::Todo, TaskStatus::InProgress, TaskStatus::Done][t % 3];
        create_task(store, &scope, &project, format!("Doomed task {k}.{t}"), status, assignee, due, t).await?;
    }
    let scope = store.authorize(&owner, org, Action::ManageWorkload).await?;
    let current = store.get_project(&scope, project.id).await?.ok_or("the seeded project is gone")?;
    store.delete_project(&scope, &current, None).await?;
    let after = store.project_purge_item(org, project.id).await?.ok_or("the deleted project left no marker")?;
    Ok(DeletedProject { org_id: org.to_string(), project_id: project.id.to_string(), tasks, after })
}

/// Whether the project of `deleted` is purged: its marker gone (the purge deletes it last)
/// and no task left.
pub async fn project_purged(store: &Store, fixture: &Fixture, deleted: &DeletedProject) -> Result<bool, Error> {
    let org: OrgId = deleted.org_id.parse().map_err(invalid)?;
    let project: ProjectId = deleted.project_id.parse().map_err(invalid)?;
    if store.project_purge_item(org, project).await?.is_some() {
        return Ok(false);
    }
    let scope = store.authorize(&fixture.owner.identity()?, org, Action::ReadWorkload).await?;
    Ok(store.list_tasks(&scope, project, None, &PageRequest::first(1)).await?.items.is_empty())
}

/// Seeds the org of invocation `k` of a purge scenario, with `members` members besides its
/// owner, and has the owner delete it.
pub async fn deleted_org(store: &Store, operator: &User, members: usize, k: usize) -> Result<DeletedOrg, Error> {
    let owner = User::new(format!("purge-owner-{k}@bench.example.com"), format!("Purge Owner {k}"));
    let who = owner.identity()?;
    store.ensure_user(&who).await?;
    let name = OrgName::parse("name", &format!("Purged Org {k}")).map_err(|e| format!("{e:?}"))?;
    let scope = store.create_org(&who, Some(owner.name.clone()), NewOrg { name, slug: None }).await?;
    let org_id = scope.org_id();
    let admin = store.admin_scope(&operator.identity()?, org_id).await?;
    store.set_org_plan(&admin, Plan::Enterprise).await?;
    let scope = store.authorize(&who, org_id, Action::ManageMembers).await?;
    for m in 0..members {
        let user = User::new(format!("purge-member-{k}-{m}@bench.example.com"), format!("Purge Member {k}.{m}"));
        let id = user.identity()?;
        store.add_member(&scope, &id.user_id, Role::Member, id.email, Some(user.name.clone())).await?;
    }
    let before = store.org_item(org_id).await?.ok_or("the seeded org has no item")?;
    let scope = store.authorize(&who, org_id, Action::DeleteOrg).await?;
    store.delete_org(&scope).await?;
    let after = store.org_item(org_id).await?.ok_or("the deleted org has no item")?;
    Ok(DeletedOrg { org_id: org_id.to_string(), members, before, after })
}

/// Whether the org of `deleted` is gone (the purge deletes the org item last).
pub async fn purged(store: &Store, deleted: &DeletedOrg) -> Result<bool, Error> {
    let org = deleted.org_id.parse().map_err(|e| format!("org id {}: {e:?}", deleted.org_id))?;
    Ok(store.org_item(org).await?.is_none())
}

/// A notification as the consumer or the sweep makes one, from `actor` about the `k`th thing.
fn notification(kind: NotificationKind, actor: &str, k: usize, now: i64) -> Result<NewNotification, Error> {
    let at = time::OffsetDateTime::from_unix_timestamp(now).map_err(invalid)?;
    let task = format!("Board task {k}");
    let (title, body) = match kind {
        NotificationKind::Mentioned => {
            (format!("Member {k} mentioned you on \u{201c}{task}\u{201d}"), "@owner could you take a look before Friday?".to_owned())
        }
        NotificationKind::Commented => (format!("Member {k} commented on \u{201c}{task}\u{201d}"), "Done on my side.".to_owned()),
        NotificationKind::DueSoon => (format!("\u{201c}{task}\u{201d} is due soon"), "Due 2026-12-15.".to_owned()),
        _ => (format!("Member {k} assigned you \u{201c}{task}\u{201d}"), String::new()),
    };
    Ok(NewNotification {
        id: ulid::Ulid::new().to_string(),
        kind,
        actor: actor.to_owned(),
        at: domain::rfc3339(at),
        title,
        body,
        project_id: None,
        task_id: None,
    })
}

/// The kinds seeded notifications have, in turn.
const KINDS: [NotificationKind; 4] = [NotificationKind::Assigned, NotificationKind::Mentioned, NotificationKind::Commented, NotificationKind::DueSoon];

/// Puts [`INBOX_NOTIFICATIONS`] notifications from the org's members into the owner's inbox,
/// as the consumer delivers them, and has the owner read the oldest [`INBOX_READ`] one by one
/// (as `POST …/notifications/{id}/read` does).
pub async fn inbox(store: &Store, fixture: &Fixture) -> Result<(), Error> {
    let owner = fixture.owner.identity()?;
    let org: OrgId = fixture.org_id.parse().map_err(invalid)?;
    let recipient = store.recipient(org, &owner.user_id).await?.ok_or("the owner is not a recipient")?;
    let actor = |k: usize| fixture.member_ids.get(k % fixture.member_ids.len().max(1)).cloned().unwrap_or_else(|| store::SYSTEM_ACTOR.to_owned());
    let now = store.clock().epoch();
    let mut ids = Vec::with_capacity(INBOX_NOTIFICATIONS);
    for k in 0..INBOX_NOTIFICATIONS {
        let note = notification(KINDS[k % KINDS.len()], &actor(k), k, now)?;
        store.deliver_notification(&recipient, &note).await?;
        ids.push(note.id);
    }
    let scope = store.authorize(&owner, org, Action::ReadOrg).await?;
    for id in ids.iter().take(INBOX_READ) {
        let state = store.notification_state(&scope, &owner.user_id, id).await?.ok_or("a seeded notification is gone")?;
        store.mark_notification_read(&scope, state).await?;
    }
    Ok(())
}

/// Has the owner write `batches` × `per_batch` comments on the workload's board tasks, each
/// mentioning a member in turn (the members' own tasks get a "commented" notification too),
/// and answers the domain events the store wrote with them, oldest first, `per_batch` to a
/// batch. Seeded before the first invocation: an event item has no index, so they are found
/// with one scan of the table.
pub async fn comment_events(store: &Store, fixture: &Fixture, batches: usize, per_batch: usize) -> Result<Vec<Vec<CommentEvent>>, Error> {
    let workload = fixture.workload.as_ref().ok_or("the fixture has no workload")?;
    let owner = fixture.owner.identity()?;
    let org: OrgId = fixture.org_id.parse().map_err(invalid)?;
    let scope = workload_scope(store, &owner, org).await?;
    let board: ProjectId = workload.project_id.parse().map_err(invalid)?;
    let tasks = store.list_tasks(&scope, board, Some(TaskStatus::Todo), &PageRequest::first(store::MAX_LIMIT)).await?.items;
    if tasks.is_empty() || fixture.member_ids.is_empty() {
        return Err("comment events need the board's tasks and members to mention".into());
    }
    let wanted = batches * per_batch;
    for k in 0..wanted {
        let task = &tasks[k % tasks.len()];
        let m = k % fixture.member_ids.len();
        let mentioned: UserId = fixture.member_ids[m].parse().map_err(invalid)?;
        let text = format!("@member-{m} could you take a look at this before Friday? The estimate moved (bench comment {k}).");
        store.create_comment(&scope, task, text, vec![mentioned]).await?;
    }
    let mut events = event_items(store, EventKind::CommentCreated).await?;
    let id = |item: &Item| item.get("id").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    events.sort_by_key(id);
    if events.len() != wanted {
        return Err(format!("seeded {wanted} comments but found {} comment events", events.len()).into());
    }
    let seeded = events
        .into_iter()
        .map(|item| {
            let mentioned = item.get("mentions").and_then(|v| v.as_l().ok()).and_then(|l| l.first()).and_then(|v| v.as_s().ok()).cloned();
            Ok(CommentEvent { id: id(&item), mentioned: mentioned.ok_or("a comment event names nobody")?, item })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(seeded.chunks(per_batch).map(<[CommentEvent]>::to_vec).collect())
}

/// The event items of `kind` in the store's table (one scan).
async fn event_items(store: &Store, kind: EventKind) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = store
            .client()
            .scan()
            .table_name(store.table_name())
            .filter_expression("#type = :event AND #kind = :kind")
            .expression_attribute_names("#type", "_type")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":event", AttributeValue::S("event".into()))
            .expression_attribute_values(":kind", AttributeValue::S(kind.as_str().into()))
            .set_exclusive_start_key(start)
            .send()
            .await?;
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(items);
        }
    }
}

/// How many of `events` have not made their notification in the mentioned member's inbox
/// (the consumer's work).
pub async fn mentions_missing(store: &Store, fixture: &Fixture, events: &[CommentEvent]) -> Result<usize, Error> {
    let org: OrgId = fixture.org_id.parse().map_err(invalid)?;
    let scope = store.admin_scope(&fixture.operator.identity()?, org).await?;
    let mut missing = 0;
    for e in events {
        let user: UserId = e.mentioned.parse().map_err(invalid)?;
        missing += usize::from(store.notification_state(&scope, &user, &e.id).await?.is_none());
    }
    Ok(missing)
}

/// Seeds, for invocation `k` of the notification sweep, [`DIGEST_MEMBERS`] members of the
/// fixture's org whose daily digest is due: their preferences were set a day ago (so their
/// digest hour came since), each has [`DIGEST_UNREAD`] unread notifications and a mail that
/// quiet hours held back until a minute ago. Fresh members each time: a digest is mailed once
/// per member and time.
pub async fn due_digests(store: &Store, fixture: &Fixture, k: usize) -> Result<DueDigests, Error> {
    let owner = fixture.owner.identity()?;
    let org: OrgId = fixture.org_id.parse().map_err(invalid)?;
    let scope = store.authorize(&owner, org, Action::ManageMembers).await?;
    let now = store.clock().now();
    let a_day_ago = store.clone().with_clock(Clock::fixed(now - time::Duration::days(1)));
    let mut user_ids = Vec::with_capacity(DIGEST_MEMBERS);
    for m in 0..DIGEST_MEMBERS {
        let user = User::new(format!("digest-{k}-{m}@bench.example.com"), format!("Digest Reader {k}.{m}"));
        let id = user.identity()?;
        store.add_member(&scope, &id.user_id, Role::Member, id.email.clone(), Some(user.name.clone())).await?;
        let own = a_day_ago.authorize(&id, org, Action::ReadOrg).await?;
        let hour = u8::try_from((k + m) % 24).unwrap_or(8);
        let preferences = Preferences {
            time_zone: TIME_ZONES[m % TIME_ZONES.len()].to_owned(),
            digest: Digest { frequency: DigestFrequency::Daily, hour, weekday: None },
            ..Preferences::default()
        };
        a_day_ago.set_notification_preferences(&own, preferences).await?;
        let recipient: Recipient = store.recipient(org, &id.user_id).await?.ok_or("a digest reader is not a recipient")?;
        let actor = owner.user_id.as_str();
        for n in 0..DIGEST_UNREAD {
            store.deliver_notification(&recipient, &notification(KINDS[(m + n) % KINDS.len()], actor, n, now.unix_timestamp())?).await?;
        }
        let held = notification(NotificationKind::Assigned, actor, m, now.unix_timestamp() - 8 * 3600)?;
        store.defer_mail(&recipient, &held, now.unix_timestamp() - 60).await?;
        user_ids.push(id.user_id.to_string());
    }
    Ok(DueDigests { org_id: org.to_string(), user_ids })
}

/// How many digests and held-back mails of `due` are still due (the sweep sends and
/// reschedules them).
pub async fn digests_pending(store: &Store, due: &DueDigests) -> Result<usize, Error> {
    let now = store.clock().epoch();
    let ours = |org: OrgId, user: &UserId| org.to_string() == due.org_id && due.user_ids.iter().any(|u| u == user.as_str());
    let (digests, mail) = tokio::join!(store.digests_due(now - SWEEP_LOOKBACK_SECS, now), store.deferred_mail_due(now - SWEEP_LOOKBACK_SECS, now));
    let digests = digests?.iter().filter(|d| ours(d.org_id, &d.user_id)).count();
    let mail = mail?.iter().filter(|m| ours(m.org_id, &m.user_id)).count();
    Ok(digests + mail)
}

/// The address SES feedback invocation `k` reports as bounced (mixed case, as mail servers
/// write them).
pub fn bounced_address(k: usize) -> String {
    format!("Bounced.Reader-{k}@Bench.Example.com")
}

/// Whether `address` is on the suppression list (the feedback handler's work).
pub async fn suppressed(store: &Store, address: &str) -> Result<bool, Error> {
    Ok(store.is_suppressed(&address.parse().map_err(|e| format!("email {address}: {e:?}"))?).await?)
}

/// A sample file the files scenarios upload, made by `media::samples`: real files, which the
/// function's processing decodes or parses in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// A photo-like JPEG of [`JPEG_SIZE`] pixels at quality [`JPEG_QUALITY`]: about 2 MB, 3
    /// megapixels to decode (and a thumbnail to make).
    Jpeg,
    /// A PDF of [`PDF_PAGES`] pages, each with a line of text (extracted page by page).
    Pdf,
}

/// The sample JPEG's width and height.
pub const JPEG_SIZE: (u32, u32) = (2000, 1500);
pub const JPEG_QUALITY: u8 = 95;
/// The sample PDF's pages.
pub const PDF_PAGES: u32 = 20;

impl Sample {
    /// The file's bytes (made anew at each call).
    pub fn bytes(self) -> Vec<u8> {
        match self {
            Sample::Jpeg => media::samples::jpeg(JPEG_SIZE.0, JPEG_SIZE.1, JPEG_QUALITY),
            Sample::Pdf => {
                let pages: Vec<String> =
                    (1..=PDF_PAGES).map(|p| format!("Bench Org quarterly report, page {p} of {PDF_PAGES}: revenue, seats and storage by plan.")).collect();
                media::samples::pdf(&pages.iter().map(String::as_str).collect::<Vec<_>>())
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Sample::Jpeg => "photo.jpg",
            Sample::Pdf => "report.pdf",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Sample::Jpeg => "image/jpeg",
            Sample::Pdf => "application/pdf",
        }
    }

    /// What processing should have found in the sample but did not, if anything: the JPEG's
    /// dimensions and its thumbnail, the PDF's pages and its text.
    pub fn unmet(self, file: &StoredFile) -> Option<String> {
        match self {
            Sample::Jpeg => {
                let (width, height) = JPEG_SIZE;
                (file.width != Some(width) || file.height != Some(height) || !file.has_thumbnail).then(|| {
                    format!("processed as {:?}×{:?}, thumbnail {} (expected {width}×{height} with a thumbnail)", file.width, file.height, file.has_thumbnail)
                })
            }
            Sample::Pdf => (file.pages != Some(PDF_PAGES) || !file.has_text)
                .then(|| format!("processed with {:?} pages, text {} (expected {PDF_PAGES} pages with text)", file.pages, file.has_text)),
        }
    }
}

/// A sample and its bytes, made once (encoding the JPEG takes a while).
#[derive(Clone)]
pub struct SampleFile {
    pub sample: Sample,
    pub bytes: std::sync::Arc<Vec<u8>>,
}

impl SampleFile {
    pub fn new(sample: Sample) -> SampleFile {
        SampleFile { sample, bytes: std::sync::Arc::new(sample.bytes()) }
    }
}

impl std::fmt::Debug for SampleFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({} bytes)", self.sample, self.bytes.len())
    }
}

/// A file of the seeded org whose bytes are in the upload bucket: reserved through the store
/// as `POST …/files` reserves it, its bytes put with the S3 API where the browser's presigned
/// POST would put them. Nothing notifies the function here: the scenarios build the events.
#[derive(Debug, Clone)]
pub struct Upload {
    pub sample: Sample,
    pub org_id: String,
    pub file_id: String,
    pub bucket: String,
    /// `uploads/{org}/{file}`, as stored (S3 events carry it form-encoded).
    pub key: String,
    pub size: u64,
    /// The ETag S3 answered the put with, without its quotes.
    pub etag: String,
    /// The file item's version once seeded (each write of the function adds one).
    pub version: u64,
}

/// Seeds an upload of `file` by the fixture's owner into `bucket`: reserves a new file and
/// puts the sample's bytes at its key. With `processed`, also takes it through processing in
/// the store, as the function would (`ready`, not gated): the file a malware scan result is
/// about.
pub async fn upload(store: &Store, s3: &aws_sdk_s3::Client, bucket: &str, fixture: &Fixture, file: &SampleFile, processed: bool) -> Result<Upload, Error> {
    let owner = fixture.owner.identity()?;
    let org: OrgId = fixture.org_id.parse().map_err(invalid)?;
    let scope = store.authorize(&owner, org, Action::WriteWorkload).await?;
    let (sample, bytes) = (file.sample, file.bytes.to_vec());
    let size = u64::try_from(bytes.len())?;
    let new = NewFile { name: sample.name().to_owned(), content_type: sample.content_type(), size, attach_to: None };
    let expires = store.clock().epoch() + domain::files::UPLOAD_VALID_SECS + domain::files::RESERVATION_GRACE_SECS;
    let mut file = store.reserve_upload(&scope, new, expires).await?;
    let key = file.object_key();
    let put = s3
        .put_object()
        .bucket(bucket)
        .key(&key)
        .content_type(sample.content_type())
        .body(bytes.into())
        .send()
        .await
        .map_err(|e| format!("putting {key} into {bucket}: {}", aws_sdk_s3::error::DisplayErrorContext(e)))?;
    let etag = put.e_tag().ok_or_else(|| format!("putting {key} answered no ETag"))?.trim_matches('"').to_owned();
    if processed {
        let Arrival::Process(begun) = store.begin_processing(&file, &sequencer(0), &etag, size).await? else {
            return Err(format!("the seeded file {} did not begin processing", file.id).into());
        };
        let outcome = Outcome {
            status: Some(FileStatus::Ready),
            detected_type: Some(sample.content_type().to_owned()),
            has_thumbnail: sample == Sample::Jpeg,
            has_text: sample == Sample::Pdf,
            ..Outcome::default()
        };
        file = store.finish_processing(&begun, outcome, false).await?.ok_or("the seeded file changed while it was processed")?;
    }
    Ok(Upload { sample, org_id: org.to_string(), file_id: file.id.to_string(), bucket: bucket.to_owned(), key, size, etag, version: file.version })
}

/// The sequencer of invocation `i`'s object event, in S3's form (hex), each greater than the
/// one before (sequencers order the events of one key; these keys are new each time).
pub fn sequencer(i: usize) -> String {
    format!("{:018X}", i + 1)
}

/// Deletes the objects of `upload`'s file (its upload key and what processing derived under
/// `derived/{org}/{file}/`) once checked: the local endpoint keeps objects in memory, and 200
/// invocations of 2 MB would add up. Best effort.
pub async fn remove_objects(s3: &aws_sdk_s3::Client, upload: &Upload) {
    let prefix = format!("{}{}/{}/", store::DERIVED_PREFIX, upload.org_id, upload.file_id);
    let derived = s3.list_objects_v2().bucket(&upload.bucket).prefix(&prefix).send().await.ok();
    let keys = derived.iter().flat_map(|page| page.contents()).filter_map(|o| o.key().map(str::to_owned));
    for key in std::iter::once(upload.key.clone()).chain(keys) {
        let _ = s3.delete_object().bucket(&upload.bucket).key(key).send().await;
    }
}

/// What is wrong with `upload`'s file after an invocation that got its event with `sequencer`
/// (any, with `None`): gone, not `ready`, not processed for this event (its event dropped as
/// seen), or without what processing derives from its sample.
pub async fn processing_problem(store: &Store, upload: &Upload, sequencer: Option<&str>) -> Result<Option<String>, Error> {
    let Some(file) = store.file_of_object(&upload.key).await? else {
        return Ok(Some(format!("file {} is gone", upload.file_id)));
    };
    if file.status != FileStatus::Ready {
        return Ok(Some(format!("file {} is {} ({})", file.id, file.status, file.reason.as_deref().unwrap_or("no reason"))));
    }
    if let Some(expected) = sequencer
        && file.sequencer.as_deref() != Some(expected)
    {
        return Ok(Some(format!("file {} was not processed for the event with sequencer {expected} (its sequencer: {:?})", file.id, file.sequencer)));
    }
    Ok(upload.sample.unmet(&file).map(|unmet| format!("file {}: {unmet}", file.id)))
}

/// What is wrong with the seeded (processed) upload's file after the `n`th scan result of its
/// object (1 for the first): no clean scan of its ETag recorded, not by this invocation (the
/// item's version tells), or no longer `ready`.
pub async fn scan_problem(store: &Store, upload: &Upload, n: u64) -> Result<Option<String>, Error> {
    let Some(file) = store.file_of_object(&upload.key).await? else {
        return Ok(Some(format!("file {} is gone", upload.file_id)));
    };
    let expected = upload.version + n;
    Ok(if file.scan_result.as_deref() != Some(store::SCAN_CLEAN) || file.scan_etag.as_deref() != Some(upload.etag.as_str()) {
        Some(format!("file {} has no clean scan of ETag {} recorded (result {:?} of {:?})", file.id, upload.etag, file.scan_result, file.scan_etag))
    } else if file.version != expected {
        Some(format!("file {} is at version {}, not {expected}: the scan result was not recorded", file.id, file.version))
    } else if file.status != FileStatus::Ready {
        Some(format!("file {} is {} after a clean scan", file.id, file.status))
    } else {
        None
    })
}

/// An upload reserved just before an invocation of the upload sweep, whose reservation has
/// expired (its bytes never came): the sweep must delete it and free its bytes.
#[derive(Debug, Clone)]
pub struct ExpiredUpload {
    pub file_id: String,
    pub key: String,
}

/// Reserves, for invocation `k` of the upload sweep, an upload by the fixture's owner whose
/// reservation expired a second ago.
pub async fn expired_upload(store: &Store, fixture: &Fixture, k: usize) -> Result<ExpiredUpload, Error> {
    let owner = fixture.owner.identity()?;
    let org: OrgId = fixture.org_id.parse().map_err(invalid)?;
    let scope = store.authorize(&owner, org, Action::WriteWorkload).await?;
    let new = NewFile { name: format!("never-arrived-{k}.jpg"), content_type: "image/jpeg", size: 1024 * 1024, attach_to: None };
    let file = store.reserve_upload(&scope, new, store.clock().epoch() - 1).await?;
    Ok(ExpiredUpload { file_id: file.id.to_string(), key: file.object_key() })
}

/// Whether the sweep deleted `expired` (and so freed its reservation, in the same transaction).
pub async fn swept(store: &Store, expired: &ExpiredUpload) -> Result<bool, Error> {
    Ok(store.file_of_object(&expired.key).await?.is_none())
}

/// Earlier turns of the conversation a chat turn is asked in: 20 questions with their answers,
/// the 40 messages of history a turn reads at most (`chat::turn::HISTORY_MESSAGES`), which fit
/// its 4,000 tokens of history.
pub const CONVERSATION_TURNS: usize = 20;
/// Pages of a seeded document's extracted text.
pub const DOCUMENT_PAGES: usize = 20;

/// The conversation chat turns are asked in: the seeded member's, with `turns` earlier
/// questions and answers (each answer as a model writes one: a few sentences, its usage and
/// latency), recorded as the function records a turn. Answers its id.
pub async fn conversation(store: &Store, fixture: &Fixture, turns: usize) -> Result<String, Error> {
    use store::chat::{ChatMessage, ChatRole, MessageStatus, TokenUsage, Turn};
    let member = fixture.member.as_ref().ok_or("a chat turn needs a seeded member with the member role")?.identity()?;
    let org: OrgId = fixture.org_id.parse().map_err(invalid)?;
    let scope = store.authorize(&member, org, Action::WriteWorkload).await?;
    let mut conv = store.create_conversation(&scope, Some("Quarterly planning".into())).await?;
    // Message ids sort as the messages were written: an hour ago, a second apart, before any
    // turn the function records.
    let start_ms = u64::try_from(store.clock().epoch() - 3600).unwrap_or(0) * 1000;
    let id = |n: usize| -> Result<domain::chat::MessageId, Error> {
        let ms = start_ms + u64::try_from(n).unwrap_or(0) * 1000;
        ulid::Ulid::from_parts(ms, ulid::Ulid::new().random()).to_string().parse().map_err(invalid)
    };
    let at = |n: usize| domain::epoch_rfc3339(i64::try_from(start_ms / 1000).unwrap_or(0) + i64::try_from(n).unwrap_or(0)).unwrap_or_default();
    for t in 0..turns {
        let topic = TOPICS[t % TOPICS.len()];
        let message = |n: usize, role: ChatRole, content: String| -> Result<ChatMessage, Error> {
            Ok(ChatMessage {
                id: id(n)?,
                conversation_id: conv.id,
                role,
                content,
                status: MessageStatus::Complete,
                model: Some(domain::chat::DEFAULT_MODEL.into()),
                usage: None,
                latency_ms: None,
                citations: Vec::new(),
                error: None,
                created_at: at(n),
            })
        };
        let question =
            message(2 * t, ChatRole::User, format!("What did the planning review conclude about {topic}, and what should we prepare before the next one?"))?;
        let text = format!(
            "The review concluded that {topic} stays on track for the quarter, with two open points: the owners agreed to report \
             progress every other week, and the budget line is confirmed until the next review. Before then, prepare the figures \
             of the last three months and a short note on what changed since the previous plan, so that the discussion can \
             start from the numbers rather than from the slides."
        );
        let mut answer = message(2 * t + 1, ChatRole::Assistant, text)?;
        answer.usage = Some(TokenUsage { input_tokens: 900 + 60 * u64::try_from(t).unwrap_or(0), output_tokens: 110 });
        answer.latency_ms = Some(1_800);
        conv = store.record_turn(&scope, &conv, Turn { question, answer: Some(answer), title: None }).await?;
    }
    Ok(conv.id.to_string())
}

/// What seeded documents and chunks are about, in turn.
const TOPICS: [&str; 12] = [
    "storage growth",
    "seat expansion",
    "customer onboarding",
    "pricing by plan",
    "support load",
    "the security review",
    "data retention",
    "service uptime",
    "the hiring plan",
    "the partner program",
    "the product roadmap",
    "customer churn",
];

/// A deterministic stream of numbers (SplitMix64).
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[usize::try_from(self.next() % words.len() as u64).unwrap_or(0)]
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// The extracted text of a report of `pages` pages, as the files function stores a PDF's
/// text (`derived/{org}/{file}/text.txt`): each page a heading and three paragraphs of prose
/// (about 3,000 characters, 450 words), pages after the first beginning with a form feed
/// ([`media::PAGE_BREAK`]). Deterministic for a `seed`; different seeds read differently.
pub fn document_text(seed: usize, pages: usize) -> String {
    const SUBJECTS: [&str; 8] =
        ["The finance team", "The platform group", "Customer success", "The sales team", "Engineering", "The board", "Operations", "Product management"];
    const VERBS: [&str; 8] = ["reported", "expects", "reviewed", "measured", "questioned", "confirmed", "revised", "proposed"];
    const OBJECTS: [&str; 8] = [
        "a steady increase in monthly active seats",
        "the cost of storage per organization",
        "the share of invitations accepted within a week",
        "the time to first value for new customers",
        "the number of tickets per thousand members",
        "the renewal rate of annual contracts",
        "the latency of the busiest routes",
        "the spend on model tokens per member",
    ];
    const PERIODS: [&str; 6] = [
        "over the last quarter",
        "since the spring release",
        "for the coming half year",
        "in the enterprise segment",
        "across every plan",
        "in the first month of use",
    ];
    const CLAUSES: [&str; 8] = [
        "which matches the forecast made in January",
        "although the figures for the smallest plans are still noisy",
        "and the team will publish a detailed breakdown next month",
        "so the targets for next year were adjusted accordingly",
        "while the largest customers grew faster than the rest",
        "and no change to the pricing is planned before the review",
        "which the steering committee asked to monitor weekly",
        "but the sample is too small to draw firm conclusions",
    ];
    let mut rng = Mix(0x7465_6e61_6e74_7279 ^ u64::try_from(seed).unwrap_or(0).wrapping_mul(0x1000_0000_01b3));
    let mut text = String::with_capacity(pages * 3_200);
    for page in 1..=pages {
        if page > 1 {
            text.push(media::PAGE_BREAK);
        }
        let topic = TOPICS[(seed + page) % TOPICS.len()];
        text.push_str(&format!("Section {page}: {}{}\n\n", topic[..1].to_uppercase(), &topic[1..]));
        for _ in 0..3 {
            for s in 0..6 {
                if s > 0 {
                    text.push(' ');
                }
                text.push_str(&format!(
                    "{} {} {} {} regarding {topic}, {}.",
                    rng.pick(&SUBJECTS),
                    rng.pick(&VERBS),
                    rng.pick(&OBJECTS),
                    rng.pick(&PERIODS),
                    rng.pick(&CLAUSES)
                ));
            }
            text.push_str("\n\n");
        }
    }
    text
}

/// A document's extracted text, made once per scenario.
#[derive(Clone)]
pub struct DocumentText(pub std::sync::Arc<str>);

impl std::fmt::Debug for DocumentText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} characters of text", self.0.chars().count())
    }
}

/// A document of the seeded org, processed to `ready` with text, seeded just before an
/// ingestion invocation: its file item, its extracted text in the upload bucket, and the
/// `file.processed` event the store wrote with it, as the fan-out sends it to the function's
/// queue.
#[derive(Debug, Clone)]
pub struct ReadyDocument {
    pub org_id: String,
    pub file_id: String,
    pub bucket: String,
    pub text_key: String,
    /// The ETag S3 answered the text's put with (quotes included, as S3 answers it).
    pub text_etag: String,
    /// The chunks its text makes (`chat::chunks`).
    pub chunks: usize,
    /// The event as [`store::DomainEvent`] serializes it (the message body).
    pub event: String,
}

/// Seeds, for invocation `k` of the ingestion scenario, a PDF uploaded by the fixture's owner
/// and processed to `ready` with `text` as its extracted text (put where the files function
/// puts it), and reads back the `file.processed` event processing wrote.
pub async fn ready_document(store: &Store, s3: &aws_sdk_s3::Client, bucket: &str, fixture: &Fixture, text: &str, k: usize) -> Result<ReadyDocument, Error> {
    let owner = fixture.owner.identity()?;
    let org: OrgId = fixture.org_id.parse().map_err(invalid)?;
    let scope = store.authorize(&owner, org, Action::WriteWorkload).await?;
    // About what a PDF of this text weighs.
    let size = u64::try_from(text.len()).unwrap_or(0) * 3;
    let new = NewFile { name: format!("Quarterly report {k}.pdf"), content_type: "application/pdf", size, attach_to: None };
    let expires = store.clock().epoch() + domain::files::UPLOAD_VALID_SECS + domain::files::RESERVATION_GRACE_SECS;
    let file = store.reserve_upload(&scope, new, expires).await?;
    let text_key = file.text_key();
    let put = s3
        .put_object()
        .bucket(bucket)
        .key(&text_key)
        .content_type("text/plain; charset=utf-8")
        .body(text.as_bytes().to_vec().into())
        .send()
        .await
        .map_err(|e| format!("putting {text_key} into {bucket}: {}", aws_sdk_s3::error::DisplayErrorContext(e)))?;
    let text_etag = put.e_tag().ok_or_else(|| format!("putting {text_key} answered no ETag"))?.to_owned();
    let upload_etag = format!("{:032x}", ulid::Ulid::new().0);
    let Arrival::Process(begun) = store.begin_processing(&file, &sequencer(k), &upload_etag, size).await? else {
        return Err(format!("the seeded document {} did not begin processing", file.id).into());
    };
    let outcome = Outcome {
        status: Some(FileStatus::Ready),
        detected_type: Some("application/pdf".into()),
        pages: Some(u32::try_from(DOCUMENT_PAGES).unwrap_or(u32::MAX)),
        characters: Some(u64::try_from(text.chars().count()).unwrap_or(0)),
        has_text: true,
        ..Outcome::default()
    };
    let file = store.finish_processing(&begun, outcome, false).await?.ok_or("the seeded document changed while it was processed")?;
    if file.status != FileStatus::Ready || !file.has_text {
        return Err(format!("the seeded document {} is {} (text: {})", file.id, file.status, file.has_text).into());
    }
    let item = file_event(store, EventKind::FileProcessed, &file.id.to_string())
        .await?
        .ok_or_else(|| format!("processing {} wrote no file.processed event", file.id))?;
    let event = store::DomainEvent::from_image(&serde_dynamo::Item::from(item))?.ok_or("the file.processed item is not an event")?;
    Ok(ReadyDocument {
        org_id: org.to_string(),
        file_id: file.id.to_string(),
        bucket: bucket.to_owned(),
        text_key,
        text_etag,
        chunks: chat::chunks(text).len(),
        event: serde_json::to_string(&event)?,
    })
}

/// The event item of `kind` about file `file_id` (one scan: event items have no index).
async fn file_event(store: &Store, kind: EventKind, file_id: &str) -> Result<Option<Item>, Error> {
    let mut start = None;
    loop {
        let page = store
            .client()
            .scan()
            .table_name(store.table_name())
            .filter_expression("#type = :event AND #kind = :kind AND #file = :file")
            .expression_attribute_names("#type", "_type")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_names("#file", "fileId")
            .expression_attribute_values(":event", AttributeValue::S("event".into()))
            .expression_attribute_values(":kind", AttributeValue::S(kind.as_str().into()))
            .expression_attribute_values(":file", AttributeValue::S(file_id.into()))
            .set_exclusive_start_key(start)
            .send()
            .await?;
        if let Some(item) = page.items.unwrap_or_default().into_iter().next() {
            return Ok(Some(item));
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(None);
        }
    }
}

/// What is wrong after the ingestion of `doc`: the index does not hold its chunks (no record
/// of them, another count, or a record of another text).
pub async fn ingestion_problem(store: &Store, doc: &ReadyDocument) -> Result<Option<String>, Error> {
    let org: OrgId = doc.org_id.parse().map_err(invalid)?;
    let file = doc.file_id.parse().map_err(invalid)?;
    Ok(match store.indexed_file(org, file).await? {
        None => Some(format!("document {} has no chunks indexed", doc.file_id)),
        Some(r) if usize::try_from(r.chunks).ok() != Some(doc.chunks) => {
            Some(format!("document {} has {} chunks indexed, not {}", doc.file_id, r.chunks, doc.chunks))
        }
        Some(r) if r.etag != doc.text_etag => Some(format!("document {} was indexed from text {}, not {}", doc.file_id, r.etag, doc.text_etag)),
        Some(_) => None,
    })
}

/// Deletes a document's extracted text once checked (the local endpoint keeps objects in
/// memory). Best effort.
pub async fn remove_text(s3: &aws_sdk_s3::Client, doc: &ReadyDocument) {
    let _ = s3.delete_object().bucket(&doc.bucket).key(&doc.text_key).send().await;
}

/// The org's documents as its vector index holds them, seeded straight into the index.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub files: usize,
    pub chunks: usize,
    pub index: store::VectorIndex,
}

/// Vectors per PutVectors call (S3 Vectors takes up to 500).
pub const VECTOR_BATCH: usize = 500;
/// The metadata the function stores but does not filter on (as its ingestion creates the index).
const NON_FILTERABLE: [&str; 2] = ["text", "name"];

/// Seeds `chunks` chunks of the fixture's org's documents into its vector index, as ingestion
/// would leave them: ready PDFs of [`DOCUMENT_PAGES`] pages with text (each file's item and its
/// `IndexedFile` record), the index created as the function creates it, and each document's
/// chunks (`chat::chunks` of its text, with their metadata) put with PutVectors, 500 at a time.
/// The vectors are random unit vectors of the embedding's 512 dimensions rather than
/// embeddings: a query reads the whole index either way.
pub async fn corpus(
    store: &Store,
    client: &aws_sdk_s3vectors::Client,
    buckets: &store::VectorBuckets,
    fixture: &Fixture,
    chunks: usize,
) -> Result<Corpus, Error> {
    use aws_sdk_s3vectors::types::{DataType, DistanceMetric, MetadataConfiguration, PutInputVector, VectorData};
    let owner = fixture.owner.identity()?;
    let org: OrgId = fixture.org_id.parse().map_err(invalid)?;
    let scope = store.authorize(&owner, org, Action::WriteWorkload).await?;
    let index = buckets.index_of(org);
    let dimension = usize::try_from(domain::chat::EMBEDDING_DIMENSIONS)?;
    let metadata = MetadataConfiguration::builder().set_non_filterable_metadata_keys(Some(NON_FILTERABLE.iter().map(|k| (*k).to_owned()).collect())).build()?;
    client
        .create_index()
        .vector_bucket_name(&index.bucket)
        .index_name(&index.index)
        .data_type(DataType::Float32)
        .dimension(i32::try_from(dimension)?)
        .distance_metric(DistanceMetric::Cosine)
        .metadata_configuration(metadata)
        .send()
        .await
        .map_err(|e| format!("creating the index {} in {}: {}", index.index, index.bucket, aws_sdk_s3vectors::error::DisplayErrorContext(e)))?;
    let mut rng = Mix(0x5345_4544_4544);
    let mut batch = Vec::with_capacity(VECTOR_BATCH);
    let (mut seeded, mut files) = (0, 0);
    let put = |batch: Vec<PutInputVector>| async {
        client
            .put_vectors()
            .vector_bucket_name(&index.bucket)
            .index_name(&index.index)
            .set_vectors(Some(batch))
            .send()
            .await
            .map_err(|e| format!("PutVectors into {}: {}", index.index, aws_sdk_s3vectors::error::DisplayErrorContext(e)))
    };
    while seeded < chunks {
        let text = document_text(files, DOCUMENT_PAGES);
        let pieces = chat::chunks(&text);
        let name = format!("Report {files:03}.pdf");
        let size = u64::try_from(text.len()).unwrap_or(0) * 3;
        let new = NewFile { name: name.clone(), content_type: "application/pdf", size, attach_to: None };
        let expires = store.clock().epoch() + domain::files::UPLOAD_VALID_SECS + domain::files::RESERVATION_GRACE_SECS;
        let file = store.reserve_upload(&scope, new, expires).await?;
        let Arrival::Process(begun) = store.begin_processing(&file, &sequencer(files), &format!("{:032x}", files + 1), size).await? else {
            return Err(format!("the seeded document {} did not begin processing", file.id).into());
        };
        let outcome = Outcome {
            status: Some(FileStatus::Ready),
            detected_type: Some("application/pdf".into()),
            pages: Some(u32::try_from(DOCUMENT_PAGES).unwrap_or(u32::MAX)),
            characters: Some(u64::try_from(text.chars().count()).unwrap_or(0)),
            has_text: true,
            ..Outcome::default()
        };
        let file = store.finish_processing(&begun, outcome, false).await?.ok_or("the seeded document changed while it was processed")?;
        let take = pieces.len().min(chunks - seeded);
        let record = store::chat::IndexedFile { file_id: file.id, chunks: u64::try_from(take)?, etag: format!("\"{:032x}\"", files + 1) };
        store.set_indexed_file(org, &record).await?;
        for (n, c) in pieces.into_iter().take(take).enumerate() {
            let mut vector: Vec<f32> = (0..dimension).map(|_| rng.unit()).collect();
            let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
            vector.iter_mut().for_each(|v| *v /= norm);
            let meta = json!({"fileId": file.id.to_string(), "name": name, "page": c.page, "start": c.start, "end": c.end, "text": c.text});
            batch.push(PutInputVector::builder().key(format!("{}#{n:05}", file.id)).data(VectorData::Float32(vector)).metadata(document(&meta)).build()?);
            if batch.len() == VECTOR_BATCH {
                put(std::mem::take(&mut batch)).await?;
            }
        }
        seeded += take;
        files += 1;
    }
    if !batch.is_empty() {
        put(batch).await?;
    }
    Ok(Corpus { files, chunks: seeded, index })
}

/// A JSON value as a Smithy document (S3 Vectors metadata).
fn document(value: &Value) -> aws_smithy_types::Document {
    use aws_smithy_types::{Document, Number};
    match value {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Document::Number(Number::PosInt(u)),
            (None, Some(i)) => Document::Number(Number::NegInt(i)),
            _ => Document::Number(Number::Float(n.as_f64().unwrap_or_default())),
        },
        Value::String(s) => Document::String(s.clone()),
        Value::Array(a) => Document::Array(a.iter().map(document).collect()),
        Value::Object(o) => Document::Object(o.iter().map(|(k, v)| (k.clone(), document(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_twenty_pages_of_prose_in_chunks() {
        let text = document_text(3, DOCUMENT_PAGES);
        assert_eq!(text.matches(media::PAGE_BREAK).count(), DOCUMENT_PAGES - 1);
        assert!((50_000..80_000).contains(&text.len()), "{} characters", text.len());
        assert_eq!(text, document_text(3, DOCUMENT_PAGES), "deterministic");
        assert_ne!(text, document_text(4, DOCUMENT_PAGES));
        let chunks = chat::chunks(&text);
        assert!((30..80).contains(&chunks.len()), "{} chunks", chunks.len());
        assert_eq!(chunks.last().map(|c| c.page), Some(u32::try_from(DOCUMENT_PAGES).unwrap()));
    }

    #[test]
    fn random_unit_values_stay_in_range() {
        let mut rng = Mix(1);
        let v: Vec<f32> = (0..10_000).map(|_| rng.unit()).collect();
        assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
        assert!(v.iter().sum::<f32>().abs() < 500.0, "centred");
    }
}

/// An export of the fixture's org that its owner started for one invocation of the exports
/// function's work queue, and the message its start sends.
#[derive(Debug, Clone)]
pub struct StartedExport {
    pub org_id: String,
    pub export_id: String,
    /// The work queue's message body (the job's target, as the function enqueues it).
    pub message: String,
}

/// Has the fixture's owner start an export of the org, as `POST /orgs/{orgId}/exports` does.
pub async fn started_export(store: &Store, fixture: &Fixture) -> Result<StartedExport, Error> {
    let owner = fixture.owner.identity()?;
    let org: OrgId = fixture.org_id.parse().map_err(invalid)?;
    let scope = store.authorize(&owner, org, Action::ExportOrg).await?;
    let job = store.start_org_export(&scope).await?;
    let message = serde_json::to_string(&store::ExportTarget::of(&job))?;
    Ok(StartedExport { org_id: fixture.org_id.clone(), export_id: job.id, message })
}

/// What is wrong with `export` after its pass: not complete (a pass of the seeded org fits in
/// one invocation), or complete with no members written.
pub async fn export_problem(store: &Store, fixture: &Fixture, export: &StartedExport) -> Result<Option<String>, Error> {
    let org: OrgId = export.org_id.parse().map_err(invalid)?;
    let scope = store.authorize(&fixture.owner.identity()?, org, Action::ExportOrg).await?;
    let job = store.org_export(&scope, &export.export_id).await?;
    Ok(match job.status {
        store::ExportStatus::Complete if job.counts.get("members").copied().unwrap_or(0) > 0 => None,
        store::ExportStatus::Complete => Some(format!("export {} is complete without its members ({:?})", job.id, job.counts)),
        status => Some(format!("export {} is {status:?} after its pass{}", job.id, job.error.map(|e| format!(": {e}")).unwrap_or_default())),
    })
}
