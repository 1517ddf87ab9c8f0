//! Exports: an org's data (its owner asks) or a user's own data across their orgs, written by
//! the exports function into one zip in the exports bucket, resumably.
//!
//! The job is an item (`ORG#{org}` / `EXPORT#{id}` or `USER#{user}` / `EXPORT#{id}`) with its
//! status, counts per section, bytes, times and the worker's checkpoint (opaque here: the
//! function's zip and upload state), updated on the job's `version`. One export at a time per
//! org and per user: the lock item (`EXPORT-LOCK` in the same partition) is put in the same
//! transaction as the job, on the condition that there is none (or that the one there is
//! stale: older than [`LOCK_SECS`]), and deleted in the transaction that ends the job. The
//! `export.requested` event is written in that first transaction too.
//!
//! The worker reads the data through [`Store::export_page`]: one section at a time, in pages,
//! each record with the position after it ([`SectionCursor`]), so that a checkpoint can be
//! taken after any record and a resumed pass continues right after it. Every key it reads is
//! built here from the job's own org (or, for a user's export, the orgs the user was a member
//! of when they asked, recorded on the job), never from the message that carries the job.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use domain::files::FileStatus;
use domain::work::ProjectId;
use domain::{Action, DomainError, Identity, OrgId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Store;
use crate::events::{DomainEvent, EventKind};
use crate::files::StoredFile;
use crate::item::{Entity, av, from_item, n, s, to_item};
use crate::keys::{self, Key, PK, SK};
use crate::orgs::{require, require_member};
use crate::page::{Page, PageRequest, PagedQuery, Sort};
use crate::scope::{OrgPartition, OrgScope, ReadScope};
use crate::tx::{self, Expr, Tx};

/// A lock older than this is stale (its worker died and its job failed to end): a new export
/// may take it over. Longer than any export runs.
pub const LOCK_SECS: i64 = 24 * 3600;
/// How long a finished job's item stays (its object expires after 7 days in the bucket).
pub const JOB_RETENTION_SECS: i64 = 30 * 86_400;
/// A user's export covers at most this many orgs (the transaction that starts it holds an
/// `export.requested` event for each).
pub const MAX_USER_EXPORT_ORGS: usize = 90;

/// Whose data an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportKind {
    Org,
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportStatus {
    Queued,
    Running,
    Complete,
    Failed,
    /// Deleted after it was made: it held data of a user who erased their account.
    Withdrawn,
}

impl ExportStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, ExportStatus::Complete | ExportStatus::Failed | ExportStatus::Withdrawn)
    }
}

/// An export job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportJob {
    pub id: String,
    pub kind: ExportKind,
    /// The org exported (org exports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OrgId>,
    /// Who asked (and, for a user's export, whose data it is).
    pub user_id: UserId,
    pub status: ExportStatus,
    /// Records (or files) written per section so far.
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// Bytes of the zip written so far.
    #[serde(default)]
    pub bytes: u64,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The zip's key in the exports bucket.
    pub object_key: String,
    /// The orgs a user's export covers: the user's memberships when they asked.
    #[serde(default)]
    pub orgs: Vec<OrgId>,
    /// The worker's checkpoint (its own JSON), while the job runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// Passes (invocations) that worked on it.
    #[serde(default)]
    pub passes: u32,
    /// Until when (epoch seconds) the pass working on it holds it: another delivery of its
    /// message meanwhile leaves it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<i64>,
    pub version: u64,
    /// Epoch seconds when the item expires once finished (DynamoDB TTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
}

impl Entity for ExportJob {
    const TYPE: &'static str = "export";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportLock {
    export_id: String,
    expires_epoch: i64,
}

impl Entity for ExportLock {
    const TYPE: &'static str = "export-lock";
}

/// Which job a queue message names: parsed from the message, checked against the table by
/// [`Store::export_scope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportTarget {
    pub kind: ExportKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OrgId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    pub export_id: String,
}

impl ExportTarget {
    pub fn of(job: &ExportJob) -> ExportTarget {
        ExportTarget { kind: job.kind, org_id: job.org_id, user_id: (job.kind == ExportKind::User).then(|| job.user_id.clone()), export_id: job.id.clone() }
    }
}

/// A job that exists and is not finished, read by the worker: the only way to read a job's
/// data.
#[derive(Debug, Clone)]
pub struct ExportScope {
    units: Vec<OrgPartition>,
    job_key: Key,
    lock_key: Key,
    job: ExportJob,
}

impl ExportScope {
    pub fn job(&self) -> &ExportJob {
        &self.job
    }
    pub fn sections(&self) -> &'static [Section] {
        match self.job.kind {
            ExportKind::Org => &Section::ORG,
            ExportKind::User => &Section::USER,
        }
    }
}

/// The sections of an export, each one file of the zip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    Org,
    Members,
    Invitations,
    Projects,
    Tasks,
    Comments,
    History,
    NotificationSettings,
    Files,
    Conversations,
    Audit,
    Profile,
    Memberships,
    MyComments,
    MyConversations,
    MyNotifications,
    MyNotificationSettings,
}

impl Section {
    /// An org's export, in order.
    pub const ORG: [Section; 11] = [
        Section::Org,
        Section::Members,
        Section::Invitations,
        Section::Projects,
        Section::Tasks,
        Section::Comments,
        Section::History,
        Section::NotificationSettings,
        Section::Files,
        Section::Conversations,
        Section::Audit,
    ];
    /// A user's export, in order.
    pub const USER: [Section; 6] =
        [Section::Profile, Section::Memberships, Section::MyComments, Section::MyConversations, Section::MyNotifications, Section::MyNotificationSettings];

    /// Its file in the zip (and its name in the counts).
    pub fn file_name(self) -> &'static str {
        match self {
            Section::Org => "org.json",
            Section::Members => "members.jsonl",
            Section::Invitations => "invitations.jsonl",
            Section::Projects => "projects.jsonl",
            Section::Tasks => "tasks.jsonl",
            Section::Comments | Section::MyComments => "comments.jsonl",
            Section::History => "history.jsonl",
            Section::NotificationSettings | Section::MyNotificationSettings => "notification-settings.jsonl",
            Section::Files => "files.jsonl",
            Section::Conversations | Section::MyConversations => "conversations.jsonl",
            Section::Audit => "audit.jsonl",
            Section::Profile => "profile.json",
            Section::Memberships => "memberships.jsonl",
            Section::MyNotifications => "notifications.jsonl",
        }
    }

    /// Its name in the counts.
    pub fn name(self) -> &'static str {
        self.file_name().split('.').next().unwrap_or("")
    }
}

/// A position in a section: after the record it was answered with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionCursor {
    /// Which of the export's orgs.
    #[serde(default, rename = "u")]
    unit: usize,
    /// The parent (project, member) whose partition is being read.
    #[serde(default, rename = "p", skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    /// The sort key of the last record answered.
    #[serde(default, rename = "a", skip_serializing_if = "Option::is_none")]
    after: Option<String>,
}

/// A record of a section.
#[derive(Debug, Clone)]
pub struct ExportRecord {
    pub value: Value,
    /// Where the section continues after this record.
    pub position: SectionCursor,
    /// For a file's metadata: its bytes, when it has some to export.
    pub object: Option<ExportObject>,
}

/// A file's bytes to copy into the zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportObject {
    /// Its name in the zip: `files/{fileId}/{name}`.
    pub path: String,
    /// The object (the checked copy that downloads serve) in the upload bucket.
    pub key: String,
    pub size: u64,
}

/// A page of a section: its records, and where it continues (`None`: the section is done).
#[derive(Debug, Clone)]
pub struct ExportPage {
    pub records: Vec<ExportRecord>,
    pub next: Option<SectionCursor>,
}

/// Where a section's records are.
enum Source {
    /// One partition per org: items whose sort key begins with the prefix (and match the
    /// filter).
    Direct { pk: String, prefix: String, filter: Option<(&'static str, AttributeValue)> },
    /// The partition of each item of the org's partition under `parent_prefix`.
    PerParent { parent_prefix: &'static str, child_prefix: &'static str, filter: Option<(&'static str, AttributeValue)> },
}

/// Attributes that never leave in an export: keys, index keys, and secrets.
fn exported(item: HashMap<String, AttributeValue>) -> Value {
    let mut value: Value = serde_dynamo::from_item(item).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.retain(|k, _| !(k == PK || k == SK || k.starts_with("GSI") || k == keys::TYPE || k == "tokenHash" || k == "ttl"));
    }
    value
}

impl Store {
    /// Starts an export of the org (its owners): the job, the lock and the event in one
    /// transaction; `Conflict` while another export of the org runs.
    pub async fn start_org_export(&self, scope: &OrgScope) -> Result<ExportJob, DomainError> {
        require(scope, Action::ExportOrg)?;
        require_member(scope)?;
        let id = self.time_ulid();
        let p = &scope.partition;
        let job = self.new_job(&id, ExportKind::Org, Some(scope.org_id()), scope.user.clone(), keys::org_export_object(scope.org_id(), &id), Vec::new());
        let event = DomainEvent { export_id: Some(id.clone()), ..DomainEvent::new(self, EventKind::ExportRequested, scope.org_id(), scope.user.as_str()) };
        self.start_job(&job, &keys::org_export(p, &id), &keys::org_export_lock(p), &[event], "an export of this organization is running already").await?;
        Ok(job)
    }

    /// Starts an export of the caller's own data across their orgs.
    pub async fn start_user_export(&self, who: &Identity) -> Result<ExportJob, DomainError> {
        let mut orgs = Vec::new();
        let mut page = PageRequest::first(crate::page::MAX_LIMIT);
        loop {
            let mine = self.list_my_orgs(&who.user_id, &page).await?;
            orgs.extend(mine.items.into_iter().map(|m| m.org.id));
            match mine.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        if orgs.len() > MAX_USER_EXPORT_ORGS {
            return Err(DomainError::Conflict("an export covers at most 90 organizations"));
        }
        orgs.sort();
        let id = self.time_ulid();
        let job = self.new_job(&id, ExportKind::User, None, who.user_id.clone(), keys::user_export_object(&who.user_id, &id), orgs.clone());
        let events: Vec<DomainEvent> = orgs
            .iter()
            .map(|org| DomainEvent { export_id: Some(id.clone()), ..DomainEvent::new(self, EventKind::ExportRequested, *org, who.user_id.as_str()) })
            .collect();
        self.start_job(
            &job,
            &keys::user_export(&who.user_id, &id),
            &keys::user_export_lock(&who.user_id),
            &events,
            "an export of your data is running already",
        )
        .await?;
        Ok(job)
    }

    fn new_job(&self, id: &str, kind: ExportKind, org_id: Option<OrgId>, user_id: UserId, object_key: String, orgs: Vec<OrgId>) -> ExportJob {
        ExportJob {
            id: id.to_owned(),
            kind,
            org_id,
            user_id,
            status: ExportStatus::Queued,
            counts: BTreeMap::new(),
            bytes: 0,
            created_at: self.clock.rfc3339(),
            started_at: None,
            finished_at: None,
            error: None,
            object_key,
            orgs,
            checkpoint: None,
            passes: 0,
            lease_until: None,
            version: 1,
            ttl: None,
        }
    }

    async fn start_job(&self, job: &ExportJob, key: &Key, lock: &Key, events: &[DomainEvent], busy: &'static str) -> Result<(), DomainError> {
        let now = self.clock.epoch();
        let mut tx = Tx::default();
        tx.put(&self.table, to_item(job, key, &[])?, Some(Expr::condition("attribute_not_exists(PK)")), DomainError::Conflict("export id collision"));
        let held = ExportLock { export_id: job.id.clone(), expires_epoch: now + LOCK_SECS };
        tx.put(
            &self.table,
            to_item(&held, lock, &[])?,
            Some(Expr::condition("attribute_not_exists(PK) OR #expires < :now").name("#expires", "expiresEpoch").value(":now", av(&now))),
            DomainError::Conflict(busy),
        );
        for event in events {
            self.push_event(&mut tx, event)?;
        }
        tx.run(self).await
    }

    /// An export of the org (its owners read them: authorize for [`Action::ExportOrg`]).
    pub async fn org_export(&self, scope: &impl ReadScope, id: &str) -> Result<ExportJob, DomainError> {
        valid_id(id)?;
        self.get(&keys::org_export(scope.partition(), id)).await?.ok_or(DomainError::NotFound)
    }

    /// The org's exports, newest first (authorize for [`Action::ExportOrg`]).
    pub async fn list_org_exports(&self, scope: &impl ReadScope, page: &PageRequest) -> Result<Page<ExportJob>, DomainError> {
        let pk = keys::org_pk(scope.partition());
        self.query_page(&PagedQuery::on_table("org-exports", &pk, Sort::Prefix(keys::EXPORT_PREFIX)).newest_first(), page).await
    }

    /// The caller's latest export of their own data.
    pub async fn latest_user_export(&self, user: &UserId) -> Result<Option<ExportJob>, DomainError> {
        let pk = keys::user_pk(user);
        let page =
            self.query_page(&PagedQuery::on_table("user-exports", &pk, Sort::Prefix(keys::EXPORT_PREFIX)).newest_first(), &PageRequest::first(1)).await?;
        Ok(page.items.into_iter().next())
    }

    /// Every export of the user's own data (erasure deletes them).
    pub async fn user_exports(&self, user: &UserId) -> Result<Vec<ExportJob>, DomainError> {
        self.all_exports(&keys::user_pk(user), "user-exports").await
    }

    pub(crate) async fn all_exports(&self, pk: &str, name: &'static str) -> Result<Vec<ExportJob>, DomainError> {
        let mut jobs = Vec::new();
        let mut page = PageRequest::first(crate::page::MAX_LIMIT);
        loop {
            let found: Page<ExportJob> = self.query_page(&PagedQuery::on_table(name, pk, Sort::Prefix(keys::EXPORT_PREFIX)), &page).await?;
            jobs.extend(found.items);
            match found.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => return Ok(jobs),
            }
        }
    }

    /// The job a queue message names, if it exists and is not finished: the scope the worker
    /// reads its data in. `None`: nothing (left) to do.
    pub async fn export_scope(&self, target: &ExportTarget) -> Result<Option<ExportScope>, DomainError> {
        valid_id(&target.export_id)?;
        let (job_key, lock_key) = match (target.kind, target.org_id, &target.user_id) {
            (ExportKind::Org, Some(org), _) => {
                let p = OrgPartition::new(org);
                (keys::org_export(&p, &target.export_id), keys::org_export_lock(&p))
            }
            (ExportKind::User, _, Some(user)) => (keys::user_export(user, &target.export_id), keys::user_export_lock(user)),
            _ => return Ok(None),
        };
        let Some(job) = self.get::<ExportJob>(&job_key).await? else { return Ok(None) };
        if job.status.is_finished() {
            return Ok(None);
        }
        let units = match job.kind {
            ExportKind::Org => job.org_id.into_iter().map(OrgPartition::new).collect(),
            ExportKind::User => job.orgs.iter().copied().map(OrgPartition::new).collect(),
        };
        Ok(Some(ExportScope { units, job_key, lock_key, job }))
    }

    /// Records the worker's progress on the job's version: the checkpoint, counts and bytes;
    /// `release` ends the pass's lease (it hands over to the next). `Conflict` when another
    /// worker moved the job on (this one must stop).
    pub async fn export_progress(
        &self,
        scope: &mut ExportScope,
        checkpoint: String,
        counts: BTreeMap<String, u64>,
        bytes: u64,
        release: bool,
    ) -> Result<(), DomainError> {
        let mut job = scope.job.clone();
        job.status = ExportStatus::Running;
        job.checkpoint = Some(checkpoint);
        job.counts = counts;
        job.bytes = bytes;
        if release {
            job.lease_until = None;
        }
        self.replace_job(scope, job).await
    }

    /// Begins a pass on the job: counts it and leases the job to it for `lease_secs`. `false`
    /// when another pass holds the lease (this delivery has nothing to do).
    pub async fn export_pass(&self, scope: &mut ExportScope, lease_secs: i64) -> Result<bool, DomainError> {
        let now = self.clock.epoch();
        if scope.job.lease_until.is_some_and(|until| until > now) {
            return Ok(false);
        }
        let mut job = scope.job.clone();
        job.passes += 1;
        job.lease_until = Some(now + lease_secs);
        if job.started_at.is_none() {
            job.started_at = Some(self.clock.rfc3339());
        }
        job.status = ExportStatus::Running;
        match self.replace_job(scope, job).await {
            Ok(()) => Ok(true),
            Err(DomainError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn replace_job(&self, scope: &mut ExportScope, mut job: ExportJob) -> Result<(), DomainError> {
        let expected = job.version;
        job.version += 1;
        self.client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(to_item(&job, &scope.job_key, &[])?))
            .condition_expression("#v = :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", n(expected))
            .send()
            .await
            .map_err(|e| tx::conditional(e, DomainError::Conflict("the export moved on")))?;
        scope.job = job;
        Ok(())
    }

    /// Ends the job (complete or failed) and releases the lock, in one transaction.
    pub async fn finish_export(&self, scope: &mut ExportScope, outcome: Result<(BTreeMap<String, u64>, u64), String>) -> Result<(), DomainError> {
        let mut job = scope.job.clone();
        match outcome {
            Ok((counts, bytes)) => {
                job.status = ExportStatus::Complete;
                job.counts = counts;
                job.bytes = bytes;
            }
            Err(error) => {
                job.status = ExportStatus::Failed;
                job.error = Some(error);
            }
        }
        job.checkpoint = None;
        job.lease_until = None;
        job.finished_at = Some(self.clock.rfc3339());
        job.ttl = Some(self.clock.epoch() + JOB_RETENTION_SECS);
        let expected = job.version;
        job.version += 1;
        let mut tx = Tx::default();
        tx.put(
            &self.table,
            to_item(&job, &scope.job_key, &[])?,
            Some(Expr::condition("#v = :v").name("#v", "version").value(":v", n(expected))),
            DomainError::Conflict("the export moved on"),
        );
        release_lock(&mut tx, &self.table, &scope.lock_key, &job.id);
        tx.run(self).await?;
        scope.job = job;
        Ok(())
    }

    /// A page of `section` from `from` (`SectionCursor::default()`: its start), at most about
    /// `limit` records.
    pub async fn export_page(&self, scope: &ExportScope, section: Section, from: &SectionCursor, limit: i32) -> Result<ExportPage, DomainError> {
        let mut cursor = from.clone();
        let user = &scope.job.user_id;
        loop {
            let Some(unit) = scope.units.get(cursor.unit) else { return Ok(ExportPage { records: Vec::new(), next: None }) };
            // A user's profile is one record, whatever the orgs.
            if section == Section::Profile && cursor.unit > 0 {
                return Ok(ExportPage { records: Vec::new(), next: None });
            }
            let next_unit = SectionCursor { unit: cursor.unit + 1, parent: None, after: None };
            let (pk, prefix, filter) = match source(section, unit, user) {
                Source::Direct { pk, prefix, filter } => (pk, prefix, filter),
                Source::PerParent { parent_prefix, child_prefix, filter } => {
                    let parent = match &cursor.parent {
                        Some(p) if cursor.after.as_deref() != Some(END) => p.clone(),
                        previous => {
                            // The next parent after the previous one (or the first).
                            let after = previous.clone().map(|p| format!("{parent_prefix}{p}"));
                            let (items, _) = self.raw_query(&keys::org_pk(unit), parent_prefix, after.as_deref(), 1, None).await?;
                            let found = items.first().and_then(|i| i.get(SK)).and_then(|v| v.as_s().ok()).and_then(|sk| sk.strip_prefix(parent_prefix));
                            match found {
                                Some(p) => {
                                    cursor = SectionCursor { unit: cursor.unit, parent: Some(p.to_owned()), after: None };
                                    p.to_owned()
                                }
                                None => {
                                    cursor = next_unit;
                                    continue;
                                }
                            }
                        }
                    };
                    let pk = match parent_prefix {
                        keys::PROJECT_PREFIX => keys::project_pk(unit, parent.parse::<ProjectId>().map_err(|_| DomainError::Unavailable)?),
                        _ => crate::notifications::inbox_pk(unit.org_id(), &parent.parse::<UserId>().map_err(|_| DomainError::Unavailable)?),
                    };
                    (pk, child_prefix.to_owned(), filter)
                }
            };
            let (items, more) = self.raw_query(&pk, &prefix, cursor.after.as_deref(), limit, filter).await?;
            let mut records = Vec::with_capacity(items.len());
            for item in items {
                let sk = item.get(SK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                let position = SectionCursor { unit: cursor.unit, parent: cursor.parent.clone(), after: Some(sk) };
                let object = if section == Section::Files { export_object(item.clone())? } else { None };
                let mut value = exported(item);
                if matches!(section, Section::Conversations | Section::MyConversations) {
                    let messages = self.conversation_messages(unit, &value).await?;
                    if let Value::Object(map) = &mut value {
                        map.insert("messages".into(), Value::Array(messages));
                    }
                }
                records.push(ExportRecord { value, position, object });
            }
            let next = match (more, records.last()) {
                (Some(after), _) => Some(SectionCursor { after: Some(after), ..cursor.clone() }),
                (None, _) if cursor.parent.is_some() => Some(SectionCursor { after: Some(END.into()), ..cursor.clone() }),
                (None, _) if cursor.unit + 1 < scope.units.len() => Some(next_unit),
                (None, _) => None,
            };
            if records.is_empty() {
                match next {
                    Some(n) => {
                        cursor = n;
                        continue;
                    }
                    None => return Ok(ExportPage { records, next: None }),
                }
            }
            return Ok(ExportPage { records, next });
        }
    }

    /// Every message of the conversation `value` is, oldest first.
    async fn conversation_messages(&self, unit: &OrgPartition, value: &Value) -> Result<Vec<Value>, DomainError> {
        let Some(id) = value.get("id").and_then(Value::as_str).and_then(|id| id.parse::<domain::chat::ConversationId>().ok()) else { return Ok(Vec::new()) };
        let prefix = keys::messages_prefix(id);
        let mut messages = Vec::new();
        let mut after = None;
        loop {
            let (items, more) = self.raw_query(&keys::org_pk(unit), &prefix, after.as_deref(), 100, None).await?;
            messages.extend(items.into_iter().map(exported));
            match more {
                Some(a) => after = Some(a),
                None => return Ok(messages),
            }
        }
    }

    /// Items of `pk` whose sort key begins with `prefix`, after sort key `after`, with the
    /// sort key to continue after when more may follow.
    async fn raw_query(
        &self,
        pk: &str,
        prefix: &str,
        after: Option<&str>,
        limit: i32,
        filter: Option<(&'static str, AttributeValue)>,
    ) -> Result<(Vec<HashMap<String, AttributeValue>>, Option<String>), DomainError> {
        let mut q = self
            .client
            .query()
            .table_name(&*self.table)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(pk))
            .consistent_read(true)
            .limit(limit);
        q = if prefix.is_empty() {
            q.key_condition_expression("#pk = :pk")
        } else {
            q.key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":prefix", s(prefix))
        };
        if let Some(after) = after {
            q = q.exclusive_start_key(PK, s(pk)).exclusive_start_key(SK, s(after));
        }
        if let Some((attribute, value)) = filter {
            q = q.filter_expression("#f = :f").expression_attribute_names("#f", attribute).expression_attribute_values(":f", value);
        }
        let out = q.send().await.map_err(tx::unexpected)?;
        let more = out.last_evaluated_key.and_then(|k| k.get(SK).and_then(|v| v.as_s().ok()).cloned());
        Ok((out.items.unwrap_or_default(), more))
    }

    /// Withdraws every finished export of `org` (their objects are deleted by the caller):
    /// answers the object keys of those that were complete.
    pub(crate) async fn withdraw_org_exports(&self, org: OrgId) -> Result<Vec<String>, DomainError> {
        let p = OrgPartition::new(org);
        let jobs = self.all_exports(&keys::org_pk(&p), "org-exports").await?;
        let mut objects = Vec::new();
        for job in jobs {
            objects.push(job.object_key.clone());
            if job.status == ExportStatus::Withdrawn {
                continue;
            }
            let expr = Expr::update("SET #status = :withdrawn, #v = #v + :one REMOVE #checkpoint")
                .name("#status", "status")
                .name("#v", "version")
                .name("#checkpoint", "checkpoint")
                .value(":withdrawn", av(&ExportStatus::Withdrawn))
                .value(":one", n(1));
            let mut tx = Tx::default();
            tx.update(&self.table, &keys::org_export(&p, &job.id), expr.when("attribute_exists(PK)"), DomainError::NotFound);
            if !job.status.is_finished() {
                release_lock(&mut tx, &self.table, &keys::org_export_lock(&p), &job.id);
            }
            match tx.run(self).await {
                Ok(()) | Err(DomainError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(objects)
    }

    /// Deletes the user's own export jobs (and their lock); answers their object keys.
    pub(crate) async fn delete_user_exports(&self, user: &UserId) -> Result<Vec<String>, DomainError> {
        let jobs = self.user_exports(user).await?;
        let objects = jobs.iter().map(|j| j.object_key.clone()).collect();
        let mut keys_to_delete: Vec<_> = jobs.iter().map(|j| keys::user_export(user, &j.id).to_map()).collect();
        keys_to_delete.push(keys::user_export_lock(user).to_map());
        for chunk in keys_to_delete.chunks(25) {
            self.batch_delete(chunk.to_vec()).await?;
        }
        Ok(objects)
    }
}

/// The sort key that marks a parent's partition as read to its end.
const END: &str = "\u{10FFFF}";

fn release_lock(tx: &mut Tx, table: &str, lock: &Key, id: &str) {
    tx.delete(
        table,
        lock,
        Some(Expr::condition("attribute_not_exists(PK) OR #id = :id").name("#id", "exportId").value(":id", s(id))),
        DomainError::Conflict("the lock belongs to another export"),
    );
}

fn source(section: Section, unit: &OrgPartition, user: &UserId) -> Source {
    let org_pk = keys::org_pk(unit);
    let direct = |pk: String, prefix: &str| Source::Direct { pk, prefix: prefix.to_owned(), filter: None };
    match section {
        Section::Org => direct(org_pk, keys::ORG_SK),
        Section::Members => direct(org_pk, keys::MEMBER_PREFIX),
        Section::Invitations => direct(org_pk, keys::INVITE_PREFIX),
        Section::Projects => direct(org_pk, keys::PROJECT_PREFIX),
        Section::Tasks => Source::PerParent { parent_prefix: keys::PROJECT_PREFIX, child_prefix: keys::TASK_PREFIX, filter: None },
        Section::Comments => Source::PerParent { parent_prefix: keys::PROJECT_PREFIX, child_prefix: keys::COMMENT_PREFIX, filter: None },
        Section::History => Source::PerParent { parent_prefix: keys::PROJECT_PREFIX, child_prefix: keys::HISTORY_PREFIX, filter: None },
        Section::NotificationSettings => Source::PerParent { parent_prefix: keys::MEMBER_PREFIX, child_prefix: keys::PREFERENCES_SK, filter: None },
        Section::Files => direct(org_pk, keys::FILE_PREFIX),
        Section::Conversations => direct(org_pk, keys::CONVERSATION_PREFIX),
        Section::Audit => direct(keys::org_audit_pk(unit), ""),
        Section::Profile => direct(keys::user_pk(user), keys::PROFILE_SK),
        Section::Memberships => Source::Direct { pk: org_pk, prefix: format!("{}{user}", keys::MEMBER_PREFIX), filter: Some(("userId", s(user.as_str()))) },
        Section::MyComments => {
            Source::PerParent { parent_prefix: keys::PROJECT_PREFIX, child_prefix: keys::COMMENT_PREFIX, filter: Some(("author", s(user.as_str()))) }
        }
        Section::MyConversations => direct(org_pk, &keys::conversations_prefix(user)),
        Section::MyNotifications => direct(crate::notifications::inbox_pk(unit.org_id(), user), keys::NOTIFICATION_PREFIX),
        Section::MyNotificationSettings => direct(crate::notifications::inbox_pk(unit.org_id(), user), keys::PREFERENCES_SK),
    }
}

/// A file item's bytes to export: the checked copy of a ready file.
fn export_object(item: HashMap<String, AttributeValue>) -> Result<Option<ExportObject>, DomainError> {
    let file: StoredFile = from_item(item)?;
    if file.status != FileStatus::Ready {
        return Ok(None);
    }
    let name: String = file.name.chars().map(|c| if c == '/' || c == '\\' || c.is_control() { '_' } else { c }).collect();
    let name = if name.is_empty() || name == "." || name == ".." { "file".to_owned() } else { name };
    Ok(Some(ExportObject { path: format!("files/{}/{name}", file.id), key: file.checked_key(), size: file.size }))
}

/// Export ids are ULIDs.
fn valid_id(id: &str) -> Result<(), DomainError> {
    if id.parse::<ulid::Ulid>().is_ok() { Ok(()) } else { Err(DomainError::NotFound) }
}
