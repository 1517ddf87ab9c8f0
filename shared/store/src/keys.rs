//! Key composition. Every key string of the table is written in this file and nowhere else.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::work::{CommentId, FileId, ProjectId, ProjectStatus, TaskId, TaskStatus};
use domain::{Email, OrgId, Slug, UserId};

use crate::scope::OrgPartition;

pub(crate) const PK: &str = "PK";
pub(crate) const SK: &str = "SK";
pub(crate) const GSI1: &str = "GSI1";
pub(crate) const GSI1PK: &str = "GSI1PK";
pub(crate) const GSI1SK: &str = "GSI1SK";
pub(crate) const GSI2: &str = "GSI2";
pub(crate) const GSI2PK: &str = "GSI2PK";
pub(crate) const GSI2SK: &str = "GSI2SK";
pub(crate) const GSI3: &str = "GSI3";
pub(crate) const GSI3PK: &str = "GSI3PK";
pub(crate) const GSI3SK: &str = "GSI3SK";
pub(crate) const GSI4: &str = "GSI4";
pub(crate) const GSI4PK: &str = "GSI4PK";
pub(crate) const GSI4SK: &str = "GSI4SK";
pub(crate) const TYPE: &str = "_type";

/// A primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn to_map(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([(PK.to_owned(), AttributeValue::S(self.pk.clone())), (SK.to_owned(), AttributeValue::S(self.sk.clone()))])
    }
}

/// Which global secondary index an [`IndexKey`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gsi {
    One,
    Two,
    Three,
    Four,
}

impl Gsi {
    pub fn name(self) -> &'static str {
        match self {
            Gsi::One => GSI1,
            Gsi::Two => GSI2,
            Gsi::Three => GSI3,
            Gsi::Four => GSI4,
        }
    }

    pub fn attributes(self) -> (&'static str, &'static str) {
        match self {
            Gsi::One => (GSI1PK, GSI1SK),
            Gsi::Two => (GSI2PK, GSI2SK),
            Gsi::Three => (GSI3PK, GSI3SK),
            Gsi::Four => (GSI4PK, GSI4SK),
        }
    }
}

/// An index key (partition, sort) of one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexKey {
    pub index: Gsi,
    pub pk: String,
    pub sk: String,
}

pub(crate) fn org_pk(p: &OrgPartition) -> String {
    org_pk_of(p.org_id())
}
fn org_pk_of(org: OrgId) -> String {
    format!("ORG#{org}")
}
pub(crate) fn org_audit_pk(p: &OrgPartition) -> String {
    format!("ORG#{}#AUDIT", p.org_id())
}

// org
pub(crate) fn org(p: &OrgPartition) -> Key {
    Key { pk: org_pk(p), sk: "ORG".into() }
}
pub(crate) const ORGS_INDEX_PK: &str = "ORGS";
pub(crate) fn org_listing(p: &OrgPartition, created_at: &str) -> IndexKey {
    IndexKey { index: Gsi::One, pk: ORGS_INDEX_PK.into(), sk: format!("{created_at}#{}", p.org_id()) }
}

/// The sparse index of orgs awaiting their purge: the org item is in it from its deletion
/// until it is purged.
pub(crate) const PURGE_INDEX_PK: &str = "PURGE";

// domain event
pub(crate) fn event(id: &str) -> Key {
    Key { pk: format!("EVENT#{id}"), sk: "EVENT".into() }
}

// slug
pub(crate) fn slug(slug: &Slug) -> Key {
    Key { pk: format!("SLUG#{slug}"), sk: "SLUG".into() }
}

// member
pub(crate) const MEMBER_PREFIX: &str = "MEMBER#";
pub(crate) fn member(p: &OrgPartition, user: &UserId) -> Key {
    Key { pk: org_pk(p), sk: format!("{MEMBER_PREFIX}{user}") }
}
pub(crate) fn member_by_user(p: &OrgPartition, user: &UserId) -> IndexKey {
    IndexKey { index: Gsi::One, pk: user_pk(user), sk: org_pk(p) }
}
pub(crate) const MEMBERSHIP_PREFIX: &str = "ORG#";
/// A membership by email: answers "is this address a member of the org" in one query.
pub(crate) fn member_by_email(p: &OrgPartition, email: &Email) -> IndexKey {
    IndexKey { index: Gsi::Two, pk: email_pk(email), sk: format!("MEMBER#{}", p.org_id()) }
}
/// A membership by its handle (`@mentions`).
pub(crate) fn member_by_handle(p: &OrgPartition, handle: &str) -> IndexKey {
    IndexKey { index: Gsi::Three, pk: format!("{}#HANDLE#{handle}", org_pk(p)), sk: MEMBER_PREFIX.into() }
}
pub(crate) fn member_indexes(p: &OrgPartition, m: &crate::entities::Member) -> Vec<IndexKey> {
    let mut indexes = vec![member_by_user(p, &m.user_id), member_by_handle(p, &m.handle())];
    indexes.extend(m.email.as_ref().map(|e| member_by_email(p, e)));
    indexes
}

// user
pub(crate) fn user_pk(user: &UserId) -> String {
    format!("USER#{user}")
}
pub(crate) fn user_profile(user: &UserId) -> Key {
    Key { pk: user_pk(user), sk: "PROFILE".into() }
}
/// The profile's entry in the user's own index partition, next to their memberships, so
/// that one query returns both (token claims).
pub(crate) const PROFILE_SK: &str = "PROFILE";
pub(crate) fn user_profile_index(user: &UserId) -> IndexKey {
    IndexKey { index: Gsi::One, pk: user_pk(user), sk: PROFILE_SK.into() }
}
pub(crate) fn user_by_email(email: &Email) -> IndexKey {
    IndexKey { index: Gsi::Two, pk: email_pk(email), sk: "USER".into() }
}
/// An address's partition: case-folded, so that every spelling of it is one address.
pub(crate) fn email_pk(email: &Email) -> String {
    format!("EMAIL#{}", email.folded())
}
/// Makes an email address belong to one user.
pub(crate) fn email_claim(email: &Email) -> Key {
    Key { pk: email_pk(email), sk: "EMAIL".into() }
}

// invite
pub(crate) fn invite(p: &OrgPartition, invite: &str) -> Key {
    Key { pk: org_pk(p), sk: format!("INVITE#{invite}") }
}
pub(crate) const INVITE_PREFIX: &str = "INVITE#";
/// Invitations addressed to an email, across orgs, by status: an open one sorts under
/// `INVITE#PENDING#`, a closed one under `INVITE#CLOSED#`, so the pending list and the
/// invite-only check read pending ones only.
pub(crate) const PENDING_INVITES_PREFIX: &str = "INVITE#PENDING#";
pub(crate) fn pending_invites_of_org_prefix(org: OrgId) -> String {
    format!("{PENDING_INVITES_PREFIX}{org}#")
}
/// The sort key of a closed invitation in its address's partition.
pub(crate) fn closed_invite_by_email_sk(org: OrgId, invite: &str) -> String {
    format!("INVITE#CLOSED#{org}#{invite}")
}
/// The sparse index of pending invitations by expiry, across orgs: what the expiry sweep
/// reads. An invitation leaves it when it stops being pending.
pub(crate) const INVITE_EXPIRY_PK: &str = "INVITE-EXPIRY";
pub(crate) fn invite_expiry_sk(epoch: i64) -> String {
    format!("{:012}", epoch.max(0))
}
/// An invitation's index entries: by address (and status), and while pending by expiry.
pub(crate) fn invite_indexes(p: &OrgPartition, invite: &crate::entities::Invite) -> Vec<IndexKey> {
    let org = p.org_id();
    if invite.status == crate::entities::InviteStatus::Pending {
        vec![
            IndexKey { index: Gsi::One, pk: email_pk(&invite.email), sk: format!("{}{}", pending_invites_of_org_prefix(org), invite.id) },
            IndexKey { index: Gsi::Two, pk: INVITE_EXPIRY_PK.into(), sk: format!("{}#{org}#{}", invite_expiry_sk(invite.expires_epoch), invite.id) },
        ]
    } else {
        vec![IndexKey { index: Gsi::One, pk: email_pk(&invite.email), sk: closed_invite_by_email_sk(org, &invite.id) }]
    }
}
pub(crate) fn daily_invites(p: &OrgPartition, day: &str) -> Key {
    Key { pk: org_pk(p), sk: format!("INVITES#{day}") }
}
pub(crate) fn invite_token(hash: &str) -> Key {
    Key { pk: format!("TOKEN#{hash}"), sk: "TOKEN".into() }
}

/// Orgs `user` created on `day`.
pub(crate) fn orgs_created(user: &UserId, day: &str) -> Key {
    Key { pk: user_pk(user), sk: format!("ORGS-CREATED#{day}") }
}
/// Invitations mailed to `email` on `day`, by any org.
pub(crate) fn invites_received(email: &Email, day: &str) -> Key {
    Key { pk: email_pk(email), sk: format!("INVITES-RECEIVED#{day}") }
}

// usage
pub(crate) fn usage_month(p: &OrgPartition, month: &str) -> Key {
    Key { pk: org_pk(p), sk: format!("USAGE#{month}") }
}
/// A member's chat usage of a month (its sort key begins with the org month's).
pub(crate) fn usage_user(p: &OrgPartition, month: &str, user: &UserId) -> Key {
    Key { pk: org_pk(p), sk: format!("USAGE#{month}#USER#{user}") }
}
/// A model's chat usage of a month (its sort key begins with the org month's).
pub(crate) fn usage_model(p: &OrgPartition, month: &str, model: &str) -> Key {
    Key { pk: org_pk(p), sk: format!("USAGE#{month}#MODEL#{model}") }
}
pub(crate) fn chat_settings(p: &OrgPartition) -> Key {
    Key { pk: org_pk(p), sk: "CHAT#SETTINGS".into() }
}
/// The conversations of one member: their own user id is part of every key.
pub(crate) fn conversations_prefix(user: &UserId) -> String {
    format!("CONV#{user}#")
}
pub(crate) fn conversation(p: &OrgPartition, user: &UserId, id: domain::chat::ConversationId) -> Key {
    Key { pk: org_pk(p), sk: format!("{}{id}", conversations_prefix(user)) }
}
pub(crate) fn messages_prefix(conversation: domain::chat::ConversationId) -> String {
    format!("MSG#{conversation}#")
}
pub(crate) fn message(p: &OrgPartition, conversation: domain::chat::ConversationId, id: domain::chat::MessageId) -> Key {
    Key { pk: org_pk(p), sk: format!("{}{id}", messages_prefix(conversation)) }
}
/// What the org's vector index holds of one file.
pub(crate) fn indexed_file(p: &OrgPartition, file: FileId) -> Key {
    Key { pk: org_pk(p), sk: format!("CHUNKS#{file}") }
}

// projects: the project items live in the org's partition; each project's tasks, comments,
// history and imports in a partition of their own.
pub(crate) const PROJECT_PREFIX: &str = "PROJECT#";
pub(crate) fn project(p: &OrgPartition, project: ProjectId) -> Key {
    Key { pk: org_pk(p), sk: format!("{PROJECT_PREFIX}{project}") }
}
/// A project's entry in the listing of its org's projects with one status (newest first).
pub(crate) fn projects_by_status_pk(p: &OrgPartition, status: ProjectStatus) -> String {
    format!("{}#PROJECTS#{}", org_pk(p), project_status(status))
}
pub(crate) fn project_by_status(p: &OrgPartition, status: ProjectStatus, project: ProjectId) -> IndexKey {
    IndexKey { index: Gsi::One, pk: projects_by_status_pk(p, status), sk: project.to_string() }
}
fn project_status(status: ProjectStatus) -> &'static str {
    match status {
        ProjectStatus::Active => "active",
        ProjectStatus::Archived => "archived",
    }
}
/// What is left of a deleted project until its partition is purged.
pub(crate) const PROJECT_PURGE_PREFIX: &str = "PURGE#PROJECT#";
pub(crate) fn project_purge(p: &OrgPartition, project: ProjectId) -> Key {
    Key { pk: org_pk(p), sk: format!("{PROJECT_PURGE_PREFIX}{project}") }
}
/// A deleted project's entry in the "awaiting purge" index.
pub(crate) fn project_awaiting_purge(p: &OrgPartition, project: ProjectId) -> IndexKey {
    IndexKey { index: Gsi::Two, pk: PURGE_INDEX_PK.into(), sk: format!("{}#PROJECT#{project}", p.org_id()) }
}
pub(crate) fn project_pk(p: &OrgPartition, project: ProjectId) -> String {
    format!("{}#PROJECT#{project}", org_pk(p))
}

// tasks
pub(crate) const TASK_PREFIX: &str = "TASK#";
pub(crate) fn task(p: &OrgPartition, project: ProjectId, task: TaskId) -> Key {
    Key { pk: project_pk(p, project), sk: format!("{TASK_PREFIX}{task}") }
}
/// One column of a project's board: its tasks with one status, in manual order.
pub(crate) fn board_pk(p: &OrgPartition, project: ProjectId, status: TaskStatus) -> String {
    format!("{}#BOARD#{}", project_pk(p, project), status.as_str())
}
/// The open tasks assigned to a user, across the org's projects, by due date (undated last).
pub(crate) fn assigned_pk(p: &OrgPartition, user: &UserId) -> String {
    format!("{}#ASSIGNEE#{user}", org_pk(p))
}
/// The org's open tasks with a due date, by due date: what reminders are sent from.
pub(crate) fn due_pk(p: &OrgPartition) -> String {
    format!("{}#DUE", org_pk(p))
}
/// Every org's open tasks falling due on one UTC day (of a due key, `YYYY-MM-DDTHH:MM:SSZ`),
/// by due time: what the reminder sweep reads, one partition per day.
pub(crate) fn due_day_pk(due_key: &str) -> String {
    format!("DUE#{}", due_key.get(..10).unwrap_or(due_key))
}
/// Sorts after every due key.
pub(crate) const UNDATED: &str = "~";
pub(crate) fn task_indexes(p: &OrgPartition, t: &crate::tasks::Task) -> Vec<IndexKey> {
    let mut indexes = vec![IndexKey { index: Gsi::One, pk: board_pk(p, t.project_id, t.status), sk: format!("{}#{}", t.rank, t.id) }];
    if t.status.is_open() {
        let due = t.due.as_ref().map(domain::work::Due::key);
        if let Some(user) = &t.assignee {
            let when = due.clone().unwrap_or_else(|| UNDATED.to_owned());
            indexes.push(IndexKey { index: Gsi::Two, pk: assigned_pk(p, user), sk: format!("{when}#{}#{}", t.project_id, t.id) });
        }
        if let Some(due) = due {
            indexes.push(IndexKey { index: Gsi::Four, pk: due_day_pk(&due), sk: format!("{due}#{}#{}#{}", p.org_id(), t.project_id, t.id) });
            indexes.push(IndexKey { index: Gsi::Three, pk: due_pk(p), sk: format!("{due}#{}#{}", t.project_id, t.id) });
        }
    }
    indexes
}
pub(crate) const COMMENT_PREFIX: &str = "COMMENT#";
pub(crate) const HISTORY_PREFIX: &str = "HISTORY#";
pub(crate) fn comments_prefix(task: TaskId) -> String {
    format!("COMMENT#{task}#")
}
pub(crate) fn comment(p: &OrgPartition, project: ProjectId, task: TaskId, comment: CommentId) -> Key {
    Key { pk: project_pk(p, project), sk: format!("{}{comment}", comments_prefix(task)) }
}
pub(crate) fn history_prefix(task: TaskId) -> String {
    format!("HISTORY#{task}#")
}
/// One entry of a task's history, by its id (a ULID of the time of the change).
pub(crate) fn history(p: &OrgPartition, project: ProjectId, task: TaskId, id: &str) -> Key {
    Key { pk: project_pk(p, project), sk: format!("{}{id}", history_prefix(task)) }
}
/// A CSV import, by its `Idempotency-Key` (hashed).
pub(crate) fn import(p: &OrgPartition, project: ProjectId, key_hash: &str) -> Key {
    Key { pk: project_pk(p, project), sk: format!("IMPORT#{key_hash}") }
}
/// The org's set of labels in use.
pub(crate) fn labels(p: &OrgPartition) -> Key {
    Key { pk: org_pk(p), sk: "LABELS".into() }
}

// files
pub(crate) const FILE_PREFIX: &str = "FILE#";
pub(crate) fn file(p: &OrgPartition, file: FileId) -> Key {
    Key { pk: org_pk(p), sk: format!("{FILE_PREFIX}{file}") }
}
/// The files attached to one project (tasks' included), newest first.
pub(crate) fn files_of_project_pk(p: &OrgPartition, project: ProjectId) -> String {
    format!("{}#FILES#{project}", org_pk(p))
}
/// The files attached to one task, newest first.
pub(crate) fn files_of_task_pk(p: &OrgPartition, task: TaskId) -> String {
    format!("{}#FILES#TASK#{task}", org_pk(p))
}
pub(crate) fn file_indexes(p: &OrgPartition, f: &crate::files::StoredFile) -> Vec<IndexKey> {
    let mut indexes = Vec::new();
    if let Some(a) = &f.attached_to {
        indexes.push(IndexKey { index: Gsi::One, pk: files_of_project_pk(p, a.project_id), sk: format!("{FILE_PREFIX}{}", f.id) });
        if let Some(task) = a.task_id {
            indexes.push(IndexKey { index: Gsi::Two, pk: files_of_task_pk(p, task), sk: format!("{FILE_PREFIX}{}", f.id) });
        }
    }
    indexes
}

// rate limits: one item per bucket and one-minute window (`{windowStart}` in epoch seconds
// is appended), expiring after it
/// An org's bucket of a rate class, all its members together.
pub(crate) fn org_rate_prefix(class: &str) -> String {
    format!("RATE#{class}#")
}
/// A user's own bucket of a rate class in one org (`scope` is the org id, or `-` outside any
/// org), in the user's partition.
pub(crate) fn user_rate_prefix(scope: &str, class: &str) -> String {
    format!("RATE#{scope}#{class}#")
}

// audit log: an org's entries, its chain's head and the events it recorded, in a partition of
// their own (`ORG#{org}#AUDIT`), which outlives the org's purge until the entries expire
pub(crate) const AUDIT_ENTRY_PREFIX: &str = "ENTRY#";
/// One entry: by its recording time (RFC 3339 with milliseconds, monotonic within the org)
/// and sequence number, so the sort key orders the entries as the chain does.
pub(crate) fn audit_entry_sk(time: &str, seq: u64) -> String {
    format!("{AUDIT_ENTRY_PREFIX}{time}#{seq:010}")
}
pub(crate) fn audit_entry(p: &OrgPartition, time: &str, seq: u64) -> Key {
    Key { pk: org_audit_pk(p), sk: audit_entry_sk(time, seq) }
}
/// The chain's head: the sequence number, hash, time and expiry of the last entry.
pub(crate) fn audit_head(p: &OrgPartition) -> Key {
    Key { pk: org_audit_pk(p), sk: "HEAD".into() }
}
/// Marks a domain event as recorded (the consumer's idempotency), with a ttl.
pub(crate) fn audit_seen(p: &OrgPartition, event_id: &str) -> Key {
    Key { pk: org_audit_pk(p), sk: format!("SEEN#{event_id}") }
}
/// Entries by actor, across orgs: an org's entries of one actor in a time range, or an
/// operator's view of one actor everywhere.
pub(crate) fn audit_by_actor_pk(actor: &str) -> String {
    format!("AUDIT#ACTOR#{actor}")
}
/// The sort key of [`audit_by_actor_pk`] (or a bound of it: `time` may be a bound).
pub(crate) fn audit_by_actor_sk(org: OrgId, time: &str) -> String {
    format!("{org}#{time}")
}
/// Every org's entries of one UTC day (`yyyy-mm-dd`), by time: the platform-wide feed.
pub(crate) fn audit_day_pk(day: &str) -> String {
    format!("AUDIT#DAY#{day}")
}
pub(crate) fn audit_indexes(p: &OrgPartition, actor: &str, time: &str, seq: u64) -> Vec<IndexKey> {
    let org = p.org_id();
    vec![
        IndexKey { index: Gsi::One, pk: audit_by_actor_pk(actor), sk: format!("{}#{seq:010}", audit_by_actor_sk(org, time)) },
        IndexKey { index: Gsi::Two, pk: audit_day_pk(time.get(..10).unwrap_or(time)), sk: format!("{time}#{org}#{seq:010}") },
    ]
}
// exports
pub(crate) const EXPORT_PREFIX: &str = "EXPORT#";
/// An export of an org's data.
pub(crate) fn org_export(p: &OrgPartition, id: &str) -> Key {
    Key { pk: org_pk(p), sk: format!("{EXPORT_PREFIX}{id}") }
}
/// An export of a user's own data.
pub(crate) fn user_export(user: &UserId, id: &str) -> Key {
    Key { pk: user_pk(user), sk: format!("{EXPORT_PREFIX}{id}") }
}
/// One export at a time per org: the lock names the running one.
pub(crate) fn org_export_lock(p: &OrgPartition) -> Key {
    Key { pk: org_pk(p), sk: "EXPORT-LOCK".into() }
}
/// One export at a time per user.
pub(crate) fn user_export_lock(user: &UserId) -> Key {
    Key { pk: user_pk(user), sk: "EXPORT-LOCK".into() }
}
/// Where an export's zip lives in the exports bucket.
pub(crate) fn org_export_object(org: OrgId, id: &str) -> String {
    format!("orgs/{org}/{id}.zip")
}
pub(crate) fn user_export_object(user: &UserId, id: &str) -> String {
    format!("users/{user}/{id}.zip")
}
/// The org's export sections read these sort-key prefixes of its partition.
pub(crate) const ORG_SK: &str = "ORG";
pub(crate) const CONVERSATION_PREFIX: &str = "CONV#";
pub(crate) const NOTIFICATION_PREFIX: &str = "N#";
pub(crate) const PREFERENCES_SK: &str = "PREFS";

// cost ledger: one item per payer per day and per month, summed with ADD
/// The partition a payer's ledger items live in: one per org, outside the org's own (an org's
/// purge leaves what it cost), or one per bucket (`platform`, `unattributed`).
pub(crate) fn ledger_pk(org: Option<OrgId>, bucket: &str) -> String {
    match org {
        Some(org) => format!("COSTS#{}", org_pk_of(org)),
        None => format!("COSTS#{bucket}"),
    }
}
/// The sort key of a ledger item: `COST#yyyy-mm` (month) or `COST#yyyy-mm-dd` (day), so that a
/// month's item and its days share one prefix.
pub(crate) fn ledger(pk: &str, period: &str) -> Key {
    Key { pk: pk.to_owned(), sk: format!("{LEDGER_PREFIX}{period}") }
}
pub(crate) const LEDGER_PREFIX: &str = "COST#";
/// The month items of every payer, in one index partition per month.
pub(crate) fn ledger_month_index(month: &str, payer: &str) -> IndexKey {
    IndexKey { index: Gsi::One, pk: ledger_month_index_pk(month), sk: payer.to_owned() }
}
pub(crate) fn ledger_month_index_pk(month: &str) -> String {
    format!("COSTS-OF#{month}")
}

/// A key no item has: read once at init to open the connection to DynamoDB.
pub(crate) fn warm_up() -> Key {
    Key { pk: "WARMUP".into(), sk: "WARMUP".into() }
}
