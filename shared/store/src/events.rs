//! Domain events: the record of a change that others may react to (notifications now; audit,
//! document ingestion and cost metering later), written by the store in the same transaction
//! as the change. So an event exists exactly when its change committed: never lost when a
//! function dies between two calls, never written for a change that was rolled back.
//!
//! An event is an item of its own (`EVENT#{id}` / `EVENT`, `_type = event`) that expires after
//! [`EVENT_RETENTION_SECS`]; the table's stream carries its INSERT to the consumers, each of
//! which filters on `_type` and `kind`. Its id is a ULID: unique, and it sorts by time.

use domain::work::{CommentId, FileId, FileStatus, ProjectId, TaskId};
use domain::{DomainError, OrgId, Role, UserId};
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::item::{Entity, to_item};
use crate::tasks::FieldChange;
use crate::tx::Tx;

/// How long an event item stays in the table: long enough for any consumer's retries (the
/// stream keeps records 24 hours), then DynamoDB's TTL deletes it.
pub const EVENT_RETENTION_SECS: i64 = 3 * 86_400;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum EventKind {
    #[serde(rename = "task.created")]
    TaskCreated,
    /// Any edit: `changes` says which fields (assignee, status, due, …).
    #[serde(rename = "task.updated")]
    TaskUpdated,
    /// Moved on the board (a status change is among `changes`).
    #[serde(rename = "task.moved")]
    TaskMoved,
    /// Its assignee left the org.
    #[serde(rename = "task.unassigned")]
    TaskUnassigned,
    #[serde(rename = "task.deleted")]
    TaskDeleted,
    /// A comment on a task; `mentions` names the members it mentions.
    #[serde(rename = "comment.created")]
    CommentCreated,
    #[serde(rename = "member.joined")]
    MemberJoined,
    #[serde(rename = "member.removed")]
    MemberRemoved,
    #[serde(rename = "member.role_changed")]
    MemberRoleChanged,
    /// An invitation accepted; `inviter` sent it, `member` joined by it.
    #[serde(rename = "invitation.accepted")]
    InvitationAccepted,
    #[serde(rename = "org.suspended")]
    OrgSuspended,
    #[serde(rename = "org.reactivated")]
    OrgReactivated,
    /// An upload's processing finished: `fileStatus` says ready, quarantined or failed.
    #[serde(rename = "file.processed")]
    FileProcessed,
    #[serde(rename = "file.deleted")]
    FileDeleted,
    #[serde(rename = "org.created")]
    OrgCreated,
    /// Its name or settings changed; `changes` says which.
    #[serde(rename = "org.updated")]
    OrgUpdated,
    #[serde(rename = "org.plan_changed")]
    OrgPlanChanged,
    /// Deletion scheduled: the purge follows.
    #[serde(rename = "org.deletion_requested")]
    OrgDeletionRequested,
    /// A platform operator changed the org's rate limits.
    #[serde(rename = "org.limits_changed")]
    OrgLimitsChanged,
    #[serde(rename = "ownership.transferred")]
    OwnershipTransferred,
    #[serde(rename = "invitation.created")]
    InvitationCreated,
    #[serde(rename = "invitation.resent")]
    InvitationResent,
    #[serde(rename = "invitation.revoked")]
    InvitationRevoked,
    #[serde(rename = "invitation.declined")]
    InvitationDeclined,
    #[serde(rename = "project.deleted")]
    ProjectDeleted,
    /// An upload was granted (presigned); `file.processed` follows when it arrives.
    #[serde(rename = "file.upload_started")]
    FileUploadStarted,
    /// A download link was handed out.
    #[serde(rename = "file.downloaded")]
    FileDownloaded,
    #[serde(rename = "chat.settings_changed")]
    ChatSettingsChanged,
    /// An export of an org's data, or of a user's own data, was started.
    #[serde(rename = "export.requested")]
    ExportRequested,
    /// A member signed in (one event per org they belong to).
    #[serde(rename = "user.signed_in")]
    UserSignedIn,
    /// A user erased their account.
    #[serde(rename = "user.erased")]
    UserErased,
}

impl EventKind {
    pub const ALL: [EventKind; 31] = [
        EventKind::TaskCreated,
        EventKind::TaskUpdated,
        EventKind::TaskMoved,
        EventKind::TaskUnassigned,
        EventKind::TaskDeleted,
        EventKind::CommentCreated,
        EventKind::MemberJoined,
        EventKind::MemberRemoved,
        EventKind::MemberRoleChanged,
        EventKind::InvitationAccepted,
        EventKind::OrgSuspended,
        EventKind::OrgReactivated,
        EventKind::FileProcessed,
        EventKind::FileDeleted,
        EventKind::OrgCreated,
        EventKind::OrgUpdated,
        EventKind::OrgPlanChanged,
        EventKind::OrgDeletionRequested,
        EventKind::OrgLimitsChanged,
        EventKind::OwnershipTransferred,
        EventKind::InvitationCreated,
        EventKind::InvitationResent,
        EventKind::InvitationRevoked,
        EventKind::InvitationDeclined,
        EventKind::ProjectDeleted,
        EventKind::FileUploadStarted,
        EventKind::FileDownloaded,
        EventKind::ChatSettingsChanged,
        EventKind::ExportRequested,
        EventKind::UserSignedIn,
        EventKind::UserErased,
    ];

    /// Its name, as stored and filtered on.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::TaskCreated => "task.created",
            EventKind::TaskUpdated => "task.updated",
            EventKind::TaskMoved => "task.moved",
            EventKind::TaskUnassigned => "task.unassigned",
            EventKind::TaskDeleted => "task.deleted",
            EventKind::CommentCreated => "comment.created",
            EventKind::MemberJoined => "member.joined",
            EventKind::MemberRemoved => "member.removed",
            EventKind::MemberRoleChanged => "member.role_changed",
            EventKind::InvitationAccepted => "invitation.accepted",
            EventKind::OrgSuspended => "org.suspended",
            EventKind::OrgReactivated => "org.reactivated",
            EventKind::FileProcessed => "file.processed",
            EventKind::FileDeleted => "file.deleted",
            EventKind::OrgCreated => "org.created",
            EventKind::OrgUpdated => "org.updated",
            EventKind::OrgPlanChanged => "org.plan_changed",
            EventKind::OrgDeletionRequested => "org.deletion_requested",
            EventKind::OrgLimitsChanged => "org.limits_changed",
            EventKind::OwnershipTransferred => "ownership.transferred",
            EventKind::InvitationCreated => "invitation.created",
            EventKind::InvitationResent => "invitation.resent",
            EventKind::InvitationRevoked => "invitation.revoked",
            EventKind::InvitationDeclined => "invitation.declined",
            EventKind::ProjectDeleted => "project.deleted",
            EventKind::FileUploadStarted => "file.upload_started",
            EventKind::FileDownloaded => "file.downloaded",
            EventKind::ChatSettingsChanged => "chat.settings_changed",
            EventKind::ExportRequested => "export.requested",
            EventKind::UserSignedIn => "user.signed_in",
            EventKind::UserErased => "user.erased",
        }
    }
}

/// A domain event. The subject fields present depend on the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DomainEvent {
    /// A ULID: unique, sorts by time. Consumers are idempotent on it.
    pub id: String,
    pub kind: EventKind,
    pub org_id: OrgId,
    /// The user who made the change, or `system` / `platform`.
    pub actor: String,
    /// RFC 3339, the change's time.
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<ProjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    /// The task's title (or the org's name), for messages that name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The fields that changed, with their values before and after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// The task's assignee after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<UserId>,
    /// The task's creator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<CommentId>,
    /// The members a comment mentions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
    /// The start of a comment's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
    /// The member a membership event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_role: Option<Role>,
    /// Who sent the invitation that was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inviter: Option<UserId>,
    /// The file a file event is about (its name is `title`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<FileId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_status: Option<FileStatus>,
    /// Which rendition of the file a download handed out, when not the original (`text`: its
    /// extracted text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendition: Option<String>,
    /// The invitation an invitation event is about (never the invitee's address: events stay
    /// for days, and an account's erasure could not find an address here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_id: Option<String>,
    /// The export an `export.requested` event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_id: Option<String>,
    /// Where the change came from, when an API request made it (the API Gateway request
    /// context): for the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestMeta>,
    /// Epoch seconds when the item expires (DynamoDB TTL).
    pub ttl: i64,
}

/// The API request behind a change, from API Gateway's request context.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestMeta {
    /// API Gateway's request id.
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// The most characters of a user agent an event keeps (the header is the client's to fill).
pub const USER_AGENT_CHARS: usize = 512;

impl RequestMeta {
    /// The request's metadata, the user agent cut to [`USER_AGENT_CHARS`]; blank values count
    /// as absent. `None` without a request id (no API Gateway request context).
    pub fn new(request_id: Option<&str>, source_ip: Option<&str>, user_agent: Option<&str>) -> Option<RequestMeta> {
        fn present(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        Some(RequestMeta {
            request_id: present(request_id)?.to_owned(),
            source_ip: present(source_ip).map(str::to_owned),
            user_agent: present(user_agent).map(|ua| ua.chars().take(USER_AGENT_CHARS).collect()),
        })
    }
}

tokio::task_local! {
    /// The API request being served, for the events its changes write.
    static REQUEST: RequestMeta;
}

/// Runs `fut` as the work of the API request `meta`: every event written meanwhile (in this
/// task) carries it. Changes made outside such a scope (stream and queue consumers,
/// schedules, Cognito triggers) write events without a request.
pub async fn with_request<F: std::future::Future>(meta: Option<RequestMeta>, fut: F) -> F::Output {
    match meta {
        Some(meta) => REQUEST.scope(meta, fut).await,
        None => fut.await,
    }
}

/// The API request being served, if any.
pub fn current_request() -> Option<RequestMeta> {
    REQUEST.try_with(Clone::clone).ok()
}

impl Entity for DomainEvent {
    const TYPE: &'static str = "event";
}

/// The actor of a platform operator's change.
pub const PLATFORM_ACTOR: &str = "platform";

/// How much of a comment an event carries.
pub const EXCERPT_CHARS: usize = 280;

impl DomainEvent {
    /// The event with only its envelope set.
    pub(crate) fn new(store: &Store, kind: EventKind, org: OrgId, actor: &str) -> DomainEvent {
        DomainEvent {
            id: store.time_ulid(),
            kind,
            org_id: org,
            actor: actor.to_owned(),
            at: store.clock.rfc3339(),
            project_id: None,
            task_id: None,
            title: None,
            changes: Vec::new(),
            assignee: None,
            created_by: None,
            comment_id: None,
            mentions: Vec::new(),
            excerpt: None,
            member: None,
            role: None,
            previous_role: None,
            inviter: None,
            file_id: None,
            file_status: None,
            rendition: None,
            invitation_id: None,
            export_id: None,
            request: current_request(),
            ttl: store.clock.epoch() + EVENT_RETENTION_SECS,
        }
    }

    /// An event about `task` (as it is after the change).
    pub(crate) fn of_task(store: &Store, kind: EventKind, task: &crate::tasks::Task, actor: &str) -> DomainEvent {
        DomainEvent {
            project_id: Some(task.project_id),
            task_id: Some(task.id),
            title: Some(task.title.clone()),
            assignee: task.assignee.clone(),
            created_by: Some(task.created_by.clone()),
            ..DomainEvent::new(store, kind, task.org_id, actor)
        }
    }

    /// An event about `member` of `org`.
    pub(crate) fn of_member(store: &Store, kind: EventKind, org: OrgId, member: &UserId, role: Role, actor: &str) -> DomainEvent {
        DomainEvent { member: Some(member.clone()), role: Some(role), ..DomainEvent::new(store, kind, org, actor) }
    }

    /// An event about `invite` (its id and role; never its address).
    pub(crate) fn of_invitation(store: &Store, kind: EventKind, invite: &crate::entities::Invite, actor: &str) -> DomainEvent {
        DomainEvent { invitation_id: Some(invite.id.clone()), role: Some(invite.role), ..DomainEvent::new(store, kind, invite.org_id, actor) }
    }

    /// An event about `file` (its id, name, and what it is attached to).
    pub(crate) fn of_file(store: &Store, kind: EventKind, file: &crate::files::StoredFile, actor: &str) -> DomainEvent {
        DomainEvent {
            file_id: Some(file.id),
            title: Some(file.name.clone()),
            project_id: file.attached_to.map(|a| a.project_id),
            task_id: file.attached_to.and_then(|a| a.task_id),
            ..DomainEvent::new(store, kind, file.org_id, actor)
        }
    }

    /// The event's change of `field`, if it changed.
    pub fn change(&self, field: &str) -> Option<&FieldChange> {
        self.changes.iter().find(|c| c.field == field)
    }

    /// Reads an event from the new image of its stream record. `Ok(None)`: not an event item;
    /// `Err`: an event item that does not parse (a poison record).
    pub fn from_image(image: &serde_dynamo::Item) -> Result<Option<DomainEvent>, String> {
        match image.get(crate::keys::TYPE) {
            Some(serde_dynamo::AttributeValue::S(t)) if t == <DomainEvent as Entity>::TYPE => {
                serde_dynamo::from_item(image.clone()).map(Some).map_err(|e| format!("malformed event item: {e}"))
            }
            _ => Ok(None),
        }
    }
}

/// The top-level fields whose values differ between `before` and `after` (both serialised
/// to JSON objects), by name. A field
/// named in `by_length` (long free text: a system prompt) records its length in characters,
/// `{"length": n}`, never its text.
pub(crate) fn field_changes<T: Serialize>(before: &T, after: &T, by_length: &[&str]) -> Vec<FieldChange> {
    use serde_json::{Map, Value, json};
    let object = |v: &T| match serde_json::to_value(v) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let (before, after) = (object(before), object(after));
    let shown = |field: &str, v: Option<&Value>| match (v, by_length.contains(&field)) {
        (None | Some(Value::Null), _) => Value::Null,
        (Some(Value::String(text)), true) => json!({ "length": text.chars().count() }),
        (Some(other), true) => json!({ "length": other.to_string().chars().count() }),
        (Some(v), false) => v.clone(),
    };
    let fields = after.keys().chain(before.keys().filter(|k| !after.contains_key(*k)));
    fields
        .filter(|f| before.get(*f).unwrap_or(&Value::Null) != after.get(*f).unwrap_or(&Value::Null))
        .map(|f| FieldChange { field: f.clone(), from: shown(f, before.get(f)), to: shown(f, after.get(f)) })
        .collect()
}

/// The start of `text`, at most [`EXCERPT_CHARS`] characters.
pub(crate) fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

impl Store {
    /// Adds `event` to `tx`: it is written exactly when the rest of the transaction is.
    pub(crate) fn push_event(&self, tx: &mut Tx, event: &DomainEvent) -> Result<(), DomainError> {
        tx.put(
            &self.table,
            to_item(event, &crate::keys::event(&event.id), &[])?,
            Some(crate::tx::Expr::condition("attribute_not_exists(PK)")),
            DomainError::Conflict("event id collision"),
        );
        Ok(())
    }
}
