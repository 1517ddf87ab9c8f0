//! Tasks: a project's work items, with their board order, history and the org-wide indexes.
//!
//! A task item lives in its project's partition and in up to three index partitions:
//! - GSI1, its project's board column (its status), sorted by its fractional rank, so that a
//!   move rewrites the one item;
//! - GSI2, while it is open and assigned, its assignee's tasks across the org, by due date;
//! - GSI3, while it is open and has a due date, the org's due tasks by due date;
//! - GSI4, while it is open and has a due date, every org's tasks due that UTC day, by due
//!   time (the reminder sweep).
//!
//! Every write of a task is one transaction with its history entry, a check that the project
//! is active, a check that a new assignee is a member, and the growth of the org's label set.
//! Writes are conditioned on the version that was read: `If-Match` makes a stale version a 412;
//! without it the handler re-reads and re-applies (last writer wins, field by field).

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::work::{Due, Label, MAX_LABELS_PER_ORG, Priority, ProjectId, ProjectStatus, TaskId, TaskStatus, TaskTitle, rank_between};
use domain::{Action, DomainError, OrgId, UserId};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Store;
use crate::events::{DomainEvent, EventKind};
use crate::item::{Entity, av, n, s, to_item};
use crate::keys::{self, GSI1, GSI1PK, GSI1SK};
use crate::orgs::{require, require_member};
use crate::page::{Page, PageRequest, PagedQuery, Sort};
use crate::projects::Project;
use crate::scope::{OrgPartition, OrgScope, ReadScope};
use crate::tx::{self, Expr, Tx};

/// A task of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: TaskId,
    pub project_id: ProjectId,
    pub org_id: OrgId,
    pub title: String,
    /// Markdown.
    #[serde(default)]
    pub description: String,
    pub status: TaskStatus,
    pub priority: Priority,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Due>,
    #[serde(default)]
    pub labels: Vec<Label>,
    /// The task's place in its board column: columns sort by rank as plain strings.
    pub rank: String,
    pub created_by: UserId,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
}

impl Entity for Task {
    const TYPE: &'static str = "task";
}

/// A new task.
#[derive(Debug, Clone)]
pub struct TaskDraft {
    pub title: TaskTitle,
    pub description: String,
    pub status: TaskStatus,
    pub priority: Priority,
    pub assignee: Option<UserId>,
    pub due: Option<Due>,
    pub labels: Vec<Label>,
}

impl TaskDraft {
    /// A task to do with this title and nothing else set.
    pub fn new(title: TaskTitle) -> TaskDraft {
        TaskDraft { title, description: String::new(), status: TaskStatus::Todo, priority: Priority::None, assignee: None, due: None, labels: Vec::new() }
    }
}

/// A partial update: `None` leaves a field alone; `Some(None)` clears a clearable one.
#[derive(Debug, Clone, Default)]
pub struct TaskPatch {
    pub title: Option<TaskTitle>,
    pub description: Option<String>,
    pub status: Option<TaskStatus>,
    pub priority: Option<Priority>,
    pub assignee: Option<Option<UserId>>,
    pub due: Option<Option<Due>>,
    pub labels: Option<Vec<Label>>,
}

/// What happened to a task in one history entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskAction {
    Created,
    Updated,
    Moved,
    /// Its assignee left the organization.
    Unassigned,
}

/// One field's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FieldChange {
    pub field: String,
    /// The value before (null when it had none).
    pub from: Value,
    /// The value after (null when it has none).
    pub to: Value,
}

/// One entry of a task's history, written in the transaction of the change it records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskHistoryEntry {
    pub id: String,
    pub task_id: TaskId,
    pub action: TaskAction,
    /// Who made the change (`system` for the platform's own changes).
    pub actor: String,
    pub at: String,
    pub changes: Vec<FieldChange>,
}

impl Entity for TaskHistoryEntry {
    const TYPE: &'static str = "task-history";
}

/// The labels in use in an org: a bounded set ([`MAX_LABELS_PER_ORG`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgLabels {
    #[serde(default)]
    pub names: BTreeSet<String>,
}

impl Entity for OrgLabels {
    const TYPE: &'static str = "labels";
}

/// The actor of the platform's own changes in a history.
pub const SYSTEM_ACTOR: &str = "system";

pub(crate) const ASSIGNEE_NOT_MEMBER: &str = "is not a member of this organization";
const PROJECT_NOT_ACTIVE: DomainError = DomainError::Conflict("the project is archived or deleted; restore it to change its tasks");

/// The fields a history records, as JSON values.
fn tracked(t: &Task) -> [(&'static str, Value); 7] {
    fn json(v: impl Serialize) -> Value {
        serde_json::to_value(v).unwrap_or(Value::Null)
    }
    [
        ("title", Value::from(t.title.clone())),
        ("description", Value::from(t.description.clone())),
        ("status", json(t.status)),
        ("priority", json(t.priority)),
        ("assignee", t.assignee.as_ref().map(|u| Value::from(u.to_string())).unwrap_or(Value::Null)),
        ("due", t.due.as_ref().map(|d| Value::from(d.as_str())).unwrap_or(Value::Null)),
        ("labels", json(&t.labels)),
    ]
}

/// The fields that differ between `before` (none: a new task) and `after`.
pub(crate) fn diff(before: Option<&Task>, after: &Task) -> Vec<FieldChange> {
    let old = before.map(tracked);
    tracked(after)
        .into_iter()
        .enumerate()
        .filter_map(|(i, (field, to))| {
            let from = old.as_ref().map(|o| o[i].1.clone()).unwrap_or(Value::Null);
            let empty = |v: &Value| v.is_null() || v.as_str() == Some("") || v.as_array().is_some_and(Vec::is_empty);
            let changed = match &old {
                Some(_) => from != to,
                None => !empty(&to),
            };
            changed.then(|| FieldChange { field: field.to_owned(), from, to })
        })
        .collect()
}

impl TaskPatch {
    /// `task` with the patch applied (version and times untouched).
    pub fn apply(&self, task: &Task) -> Task {
        let mut t = task.clone();
        if let Some(v) = &self.title {
            t.title = v.as_str().to_owned();
        }
        if let Some(v) = &self.description {
            t.description = v.clone();
        }
        if let Some(v) = self.status {
            t.status = v;
        }
        if let Some(v) = self.priority {
            t.priority = v;
        }
        if let Some(v) = &self.assignee {
            t.assignee = v.clone();
        }
        if let Some(v) = &self.due {
            t.due = v.clone();
        }
        if let Some(v) = &self.labels {
            t.labels = v.clone();
        }
        t
    }
}

/// Where a move puts a task.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    /// The column.
    pub status: TaskStatus,
    /// The task it goes right after, if any.
    pub after: Option<&'a Task>,
    /// The task it goes right before, if any.
    pub before: Option<&'a Task>,
    /// The column's last rank, for when no neighbour is named.
    pub last_rank: Option<&'a str>,
}

/// How a task write is conditioned.
pub(crate) enum Expect {
    /// A new task.
    New,
    /// The task at this version.
    Version(u64),
}

impl Store {
    pub async fn get_task(&self, scope: &impl ReadScope, project: ProjectId, task: TaskId) -> Result<Option<Task>, DomainError> {
        self.get(&keys::task(scope.partition(), project, task)).await
    }

    /// The org's label set.
    pub async fn org_labels(&self, scope: &impl ReadScope) -> Result<OrgLabels, DomainError> {
        Ok(self.get(&keys::labels(scope.partition())).await?.unwrap_or_default())
    }

    /// The rank of the last task of a board column, if it has any.
    pub async fn last_rank(&self, scope: &impl ReadScope, project: ProjectId, status: TaskStatus) -> Result<Option<String>, DomainError> {
        let out = self
            .client
            .query()
            .table_name(&*self.table)
            .index_name(GSI1)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI1PK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::board_pk(scope.partition(), project, status)))
            .projection_expression("#sk")
            .expression_attribute_names("#sk", GSI1SK)
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(tx::unexpected)?;
        Ok(out
            .items
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|item| item.get(GSI1SK).and_then(|v| v.as_s().ok()).and_then(|sk| sk.split('#').next()).map(str::to_owned)))
    }

    /// Creates a task at the end of its board column (`last_rank` is the column's last rank,
    /// read with the authorization).
    pub async fn create_task(
        &self,
        scope: &OrgScope,
        project: &Project,
        draft: TaskDraft,
        last_rank: Option<&str>,
        labels: &OrgLabels,
    ) -> Result<Task, DomainError> {
        require(scope, Action::WriteWorkload)?;
        require_member(scope)?;
        let now = self.clock.rfc3339();
        let task = Task {
            id: TaskId::new(),
            project_id: project.id,
            org_id: scope.org_id(),
            title: draft.title.as_str().to_owned(),
            description: draft.description,
            status: draft.status,
            priority: draft.priority,
            assignee: draft.assignee,
            due: draft.due,
            labels: draft.labels,
            rank: rank_between(last_rank, None),
            created_by: scope.user.clone(),
            created_at: now.clone(),
            updated_at: now,
            version: 1,
        };
        self.write_task(scope, project, None, &task, TaskAction::Created, labels).await?;
        Ok(task)
    }

    /// Applies `patch` to `current` (as read). A status change puts the task at the end of
    /// its new column (`last_rank`, read with the authorization). No change: no write.
    pub async fn update_task(
        &self,
        scope: &OrgScope,
        project: &Project,
        current: &Task,
        patch: &TaskPatch,
        last_rank: Option<&str>,
        labels: &OrgLabels,
    ) -> Result<Task, DomainError> {
        require(scope, Action::WriteWorkload)?;
        require_member(scope)?;
        let mut next = patch.apply(current);
        if next == *current {
            return Ok(next);
        }
        if next.status != current.status {
            next.rank = rank_between(last_rank, None);
        }
        self.write_task(scope, project, Some(current), &next, TaskAction::Updated, labels).await
    }

    /// Moves `current` to `to`: into a column between two neighbours (either may be absent:
    /// the top or the bottom of the column; both absent: after the column's last rank). Writes
    /// the one task (and a history entry when the status changes).
    pub async fn move_task(&self, scope: &OrgScope, project: &Project, current: &Task, to: Placement<'_>) -> Result<Task, DomainError> {
        let Placement { status, after, before, last_rank } = to;
        require(scope, Action::WriteWorkload)?;
        require_member(scope)?;
        for (field, neighbour) in [("after", after), ("before", before)] {
            if let Some(t) = neighbour {
                if t.id == current.id {
                    return Err(DomainError::invalid(field, "must be another task"));
                }
                if t.status != status {
                    return Err(DomainError::invalid(field, "is not in the column the task moves to"));
                }
            }
        }
        let rank = match (after, before) {
            (None, None) => rank_between(last_rank, None),
            (Some(a), Some(b)) if a.rank >= b.rank => return Err(DomainError::invalid("before", "must come after the task named by after")),
            (a, b) => rank_between(a.map(|t| t.rank.as_str()), b.map(|t| t.rank.as_str())),
        };
        let next = Task { status, rank, ..current.clone() };
        if next == *current {
            return Ok(next);
        }
        self.write_task(scope, project, Some(current), &next, TaskAction::Moved, &OrgLabels::default()).await
    }

    /// Writes `next` over `previous` (none: creates it) with its history entry, in one
    /// transaction; answers the task as written.
    async fn write_task(
        &self,
        scope: &OrgScope,
        project: &Project,
        previous: Option<&Task>,
        next: &Task,
        action: TaskAction,
        labels: &OrgLabels,
    ) -> Result<Task, DomainError> {
        if project.status != ProjectStatus::Active {
            return Err(PROJECT_NOT_ACTIVE);
        }
        let mut next = next.clone();
        let expect = match previous {
            None => Expect::New,
            Some(p) => {
                next.version = p.version + 1;
                next.updated_at = self.clock.rfc3339();
                Expect::Version(p.version)
            }
        };
        let changes = diff(previous, &next);
        let mut tx = Tx::default();
        self.push_task_write(&mut tx, &scope.partition, &next, expect, HistoryOf { action, changes, actor: scope.user.as_str(), id: None })?;
        tx.check(
            &self.table,
            &keys::project(&scope.partition, project.id),
            Expr::condition("#status = :active").name("#status", "status").value(":active", av(&ProjectStatus::Active)),
            PROJECT_NOT_ACTIVE,
        );
        if let Some(user) = &next.assignee
            && previous.and_then(|p| p.assignee.as_ref()) != Some(user)
        {
            tx.check(
                &self.table,
                &keys::member(&scope.partition, user),
                Expr::condition("attribute_exists(PK)"),
                DomainError::invalid("assignee", ASSIGNEE_NOT_MEMBER),
            );
        }
        self.push_new_labels(&mut tx, &scope.partition, labels, next.labels.iter())?;
        tx.run(self).await?;
        if next.rank.len() > REBALANCE_AT {
            // Many moves into one gap made the rank long: renumber the column (rare).
            match self.rebalance_column(scope, next.project_id, next.status).await {
                Ok(n) => tracing::info!(project_id = %next.project_id, status = next.status.as_str(), renumbered = n, "board column renumbered"),
                Err(e) => tracing::warn!(error = %e, "could not renumber a board column; the next long rank tries again"),
            }
        }
        Ok(next)
    }

    /// Gives the tasks of a board column short, evenly spaced ranks in their current order,
    /// each task's write conditioned on the rank it had; answers how many changed. Versions
    /// are left alone (a rank is not an edit), so no one's `If-Match` goes stale.
    pub async fn rebalance_column(&self, scope: &OrgScope, project: ProjectId, status: TaskStatus) -> Result<usize, DomainError> {
        require(scope, Action::WriteWorkload)?;
        require_member(scope)?;
        let mut tasks = Vec::new();
        let mut page = PageRequest::first(100);
        loop {
            let listed = self.list_tasks(scope, project, Some(status), &page).await?;
            tasks.extend(listed.items);
            match listed.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        let ranks = domain::work::ranks_after(None, tasks.len());
        let mut writes = Vec::new();
        for (task, rank) in tasks.iter().zip(ranks) {
            if task.rank == rank {
                continue;
            }
            let moved = Task { rank: rank.clone(), ..task.clone() };
            let board = keys::task_indexes(&scope.partition, &moved).into_iter().find(|k| k.index == keys::Gsi::One).ok_or(DomainError::Unavailable)?;
            let expr = Expr::update("SET #rank = :rank, #sk = :sk")
                .when("#rank = :old")
                .name("#rank", "rank")
                .name("#sk", GSI1SK)
                .value(":rank", s(rank))
                .value(":sk", s(board.sk))
                .value(":old", s(&task.rank));
            let key = keys::task(&scope.partition, project, task.id);
            writes.push(async move { self.update_one(&key, expr, DomainError::Conflict("the task moved meanwhile")).await });
        }
        let changed = writes.len();
        let results: Vec<Result<(), DomainError>> = futures::stream::iter(writes).buffer_unordered(8).collect().await;
        for result in results {
            match result {
                // Moved meanwhile: it has a fresh rank of its own.
                Err(DomainError::Conflict(_)) => {}
                other => other?,
            }
        }
        Ok(changed)
    }

    /// Adds the put of `task` (conditioned by `expect`) and its history entry to `tx`. A
    /// history entry with no change is not written.
    pub(crate) fn push_task_write(&self, tx: &mut Tx, p: &OrgPartition, task: &Task, expect: Expect, history: HistoryOf<'_>) -> Result<(), DomainError> {
        let HistoryOf { action, changes, actor, id } = history;
        let (condition, on_fail) = match expect {
            Expect::New => (Expr::condition("attribute_not_exists(PK)"), DomainError::Conflict(TASK_EXISTS)),
            Expect::Version(v) => (Expr::condition("#version = :version").name("#version", "version").value(":version", n(v)), DomainError::StaleVersion),
        };
        tx.put(&self.table, to_item(task, &keys::task(p, task.project_id, task.id), &keys::task_indexes(p, task))?, Some(condition), on_fail);
        if !changes.is_empty() {
            // The entry's id sorts by time: the task's history lists in order.
            let id = id.unwrap_or_else(|| self.time_ulid());
            let kind = match action {
                TaskAction::Created => EventKind::TaskCreated,
                TaskAction::Updated => EventKind::TaskUpdated,
                TaskAction::Moved => EventKind::TaskMoved,
                TaskAction::Unassigned => EventKind::TaskUnassigned,
            };
            let mut event = DomainEvent::of_task(self, kind, task, actor);
            event.changes = changes.clone();
            self.push_event(tx, &event)?;
            let entry = TaskHistoryEntry { id: id.clone(), task_id: task.id, action, actor: actor.to_owned(), at: self.clock.rfc3339(), changes };
            tx.put(&self.table, to_item(&entry, &keys::history(p, task.project_id, task.id, &id), &[])?, None, DomainError::Unavailable);
        }
        Ok(())
    }

    /// Adds the growth of the org's label set by the labels it does not have yet to `tx`,
    /// bounded by [`MAX_LABELS_PER_ORG`]. No new label: nothing.
    pub(crate) fn push_new_labels<'a>(
        &self,
        tx: &mut Tx,
        p: &OrgPartition,
        known: &OrgLabels,
        used: impl Iterator<Item = &'a Label>,
    ) -> Result<(), DomainError> {
        let new: BTreeSet<String> = used.map(|l| l.as_str().to_owned()).filter(|l| !known.names.contains(l)).collect();
        if new.is_empty() {
            return Ok(());
        }
        let full = DomainError::invalid("labels", "the organization has reached its limit of 100 labels; use existing ones");
        let room = MAX_LABELS_PER_ORG.checked_sub(new.len()).ok_or_else(|| full.clone())?;
        if known.names.len() > room {
            return Err(full);
        }
        tx.update(
            &self.table,
            &keys::labels(p),
            Expr::update("SET #type = :type ADD #names :new")
                .when("attribute_not_exists(#names) OR size(#names) <= :room")
                .name("#type", crate::keys::TYPE)
                .name("#names", "names")
                .value(":type", s(<OrgLabels as Entity>::TYPE))
                .value(":new", AttributeValue::Ss(new.into_iter().collect()))
                .value(":room", n(u64::try_from(room).unwrap_or(0))),
            full,
        );
        Ok(())
    }

    /// Deletes a task (at the version read, or `If-Match`'s), then its comments and history.
    pub async fn delete_task(&self, scope: &OrgScope, current: &Task, expected: Option<u64>) -> Result<(), DomainError> {
        require(scope, Action::WriteWorkload)?;
        require_member(scope)?;
        if expected.is_some_and(|v| v != current.version) {
            return Err(DomainError::StaleVersion);
        }
        let p = &scope.partition;
        let mut tx = Tx::default();
        tx.delete(
            &self.table,
            &keys::task(p, current.project_id, current.id),
            Some(Expr::condition("#version = :version").name("#version", "version").value(":version", n(current.version))),
            DomainError::StaleVersion,
        )
        .check(
            &self.table,
            &keys::project(p, current.project_id),
            Expr::condition("#status = :active").name("#status", "status").value(":active", av(&ProjectStatus::Active)),
            PROJECT_NOT_ACTIVE,
        );
        self.push_event(&mut tx, &DomainEvent::of_task(self, EventKind::TaskDeleted, current, scope.user.as_str()))?;
        tx.run(self).await?;
        // Unreachable from now on; the project's purge would remove them too.
        let partition = keys::project_pk(p, current.project_id);
        let (comments, history) = (keys::comments_prefix(current.id), keys::history_prefix(current.id));
        let (a, b) = futures::join!(self.delete_prefix(&partition, &comments), self.delete_prefix(&partition, &history));
        if let Err(e) = a.and(b) {
            tracing::warn!(error = %e, task_id = %current.id, "could not delete a deleted task's comments or history; the project's purge will");
        }
        Ok(())
    }

    /// A project's tasks: one board column in manual order, or (no status) all of them in
    /// the order they were created.
    pub async fn list_tasks(
        &self,
        scope: &impl ReadScope,
        project: ProjectId,
        status: Option<TaskStatus>,
        page: &PageRequest,
    ) -> Result<Page<Task>, DomainError> {
        let p = scope.partition();
        match status {
            Some(status) => {
                let partition = keys::board_pk(p, project, status);
                let q = PagedQuery::on_index("board", keys::Gsi::One, &partition, Sort::Prefix(""));
                self.query_page(&q, page).await
            }
            None => {
                let partition = keys::project_pk(p, project);
                let q = PagedQuery::on_table("tasks", &partition, Sort::Prefix(keys::TASK_PREFIX));
                self.query_page(&q, page).await
            }
        }
    }

    /// The open tasks assigned to `user` across the org's projects, soonest due first,
    /// undated last.
    pub async fn list_assigned(&self, scope: &impl ReadScope, user: &UserId, page: &PageRequest) -> Result<Page<Task>, DomainError> {
        let partition = keys::assigned_pk(scope.partition(), user);
        let q = PagedQuery::on_index("assigned", keys::Gsi::Two, &partition, Sort::Prefix(""));
        self.query_page(&q, page).await
    }

    /// The org's open tasks due at or after `after` and before `before` (bounds in
    /// [`domain::work::due_bound`]'s form), soonest first.
    pub async fn list_due(&self, scope: &impl ReadScope, after: Option<&str>, before: Option<&str>, page: &PageRequest) -> Result<Page<Task>, DomainError> {
        let partition = keys::due_pk(scope.partition());
        let sort = match (after, before) {
            (Some(a), Some(b)) => Sort::Between(a, b),
            (Some(a), None) => Sort::From(a),
            (None, Some(b)) => Sort::Below(b),
            (None, None) => Sort::Prefix(""),
        };
        let q = PagedQuery::on_index("due", keys::Gsi::Three, &partition, sort);
        self.query_page(&q, page).await
    }

    /// A task's history, oldest first.
    pub async fn task_history(
        &self,
        scope: &impl ReadScope,
        project: ProjectId,
        task: TaskId,
        page: &PageRequest,
    ) -> Result<Page<TaskHistoryEntry>, DomainError> {
        let partition = keys::project_pk(scope.partition(), project);
        let prefix = keys::history_prefix(task);
        let q = PagedQuery::on_table("history", &partition, Sort::Prefix(&prefix));
        self.query_page(&q, page).await
    }
}

pub(crate) const TASK_EXISTS: &str = "task id collision";

/// A rank longer than this renumbers its column.
pub const REBALANCE_AT: usize = 48;

/// The history entry of a task write.
pub(crate) struct HistoryOf<'a> {
    pub action: TaskAction,
    pub changes: Vec<FieldChange>,
    pub actor: &'a str,
    /// A chosen id (an import's, so that a retry writes the same entry); else a new one.
    pub id: Option<String>,
}
