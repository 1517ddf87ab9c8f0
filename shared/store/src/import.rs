//! Bulk creation of a project's tasks from a validated CSV file, in transactions of a few
//! dozen rows. Under an `Idempotency-Key` the import is recorded first and every task and
//! history id is derived from the key and the row, so a retried upload (or one resumed after
//! the function died part-way) writes each task once: rows already written are skipped, and
//! a finished import answers what it did.

use std::collections::{BTreeMap, HashSet};

use domain::work::{ProjectStatus, TaskId, TaskStatus, ranks_after};
use domain::{Action, DomainError, UserId};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::item::{Entity, av, n, to_item};
use crate::keys;
use crate::orgs::{require, require_member};
use crate::projects::Project;
use crate::scope::{OrgScope, ReadScope};
use crate::tasks::{ASSIGNEE_NOT_MEMBER, Expect, HistoryOf, OrgLabels, TASK_EXISTS, Task, TaskAction, TaskDraft, diff};
use crate::tx::{Expr, Tx};

/// Rows per transaction: each row is a task, its history entry and its domain event, plus a
/// check per distinct assignee, the project check and the label set: 24 × 4 + 2 = 98 of
/// DynamoDB's 100 items at most.
const ROWS_PER_TX: usize = 24;
/// Transactions in flight.
const TX_IN_FLIGHT: usize = 4;

/// An import recorded under its `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportRecord {
    /// SHA-256 of the file: the same key with another file is refused.
    pub body_hash: String,
    /// The time part of every id the import writes.
    pub started_ms: u64,
    pub done: bool,
    pub imported: u64,
    pub created_by: UserId,
    pub created_at: String,
}

impl Entity for ImportRecord {
    const TYPE: &'static str = "task-import";
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportOutcome {
    pub imported: u64,
    /// True when this answer repeats an import already done under the same key.
    pub replayed: bool,
}

/// An import's idempotency: the key's hash, the file's hash, and what was recorded under
/// the key (read with the authorization).
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key_hash: String,
    pub body_hash: String,
    pub recorded: Option<ImportRecord>,
}

const OTHER_FILE: DomainError = DomainError::Conflict("this Idempotency-Key was used for another file");

impl Store {
    pub async fn import_record(&self, scope: &impl ReadScope, project: domain::work::ProjectId, key_hash: &str) -> Result<Option<ImportRecord>, DomainError> {
        self.get(&keys::import(scope.partition(), project, key_hash)).await
    }

    /// Creates `rows` as tasks of `project`, appended to their columns (`last_ranks`: each
    /// column's last rank, read with the authorization) in file order. Assignees were
    /// resolved to members by the caller; each is checked again in the transaction.
    pub async fn import_tasks(
        &self,
        scope: &OrgScope,
        project: &Project,
        rows: Vec<TaskDraft>,
        last_ranks: &BTreeMap<TaskStatus, Option<String>>,
        labels: &OrgLabels,
        idempotency: Option<Idempotency>,
    ) -> Result<ImportOutcome, DomainError> {
        require(scope, Action::WriteWorkload)?;
        require_member(scope)?;
        if project.status != ProjectStatus::Active {
            return Err(DomainError::Conflict("the project is archived; restore it to import tasks"));
        }
        let p = &scope.partition;
        let started_ms = match &idempotency {
            Some(Idempotency { body_hash, recorded: Some(r), .. }) => {
                if r.body_hash != *body_hash {
                    return Err(OTHER_FILE);
                }
                if r.done {
                    return Ok(ImportOutcome { imported: r.imported, replayed: true });
                }
                r.started_ms
            }
            Some(Idempotency { key_hash, body_hash, recorded: None }) => {
                let record = ImportRecord {
                    body_hash: body_hash.clone(),
                    started_ms: u64::try_from(self.clock.epoch_millis()).unwrap_or(0),
                    done: false,
                    imported: 0,
                    created_by: scope.user.clone(),
                    created_at: self.clock.rfc3339(),
                };
                let mut item = to_item(&record, &keys::import(p, project.id, key_hash), &[])?;
                // Import records are kept for a day: long enough for any retry.
                item.insert("ttl".into(), n(u64::try_from(self.clock.epoch() + 86_400).unwrap_or(0)));
                self.put_new(item, DomainError::Conflict("an import with this Idempotency-Key is in progress; retry shortly")).await?;
                record.started_ms
            }
            None => u64::try_from(self.clock.epoch_millis()).unwrap_or(0),
        };
        let keyed = idempotency.as_ref().map(|i| i.key_hash.clone());

        // Ranks: each column's rows after its last task, in file order.
        let mut per_column: BTreeMap<TaskStatus, usize> = BTreeMap::new();
        for row in &rows {
            *per_column.entry(row.status).or_default() += 1;
        }
        let mut ranks: BTreeMap<TaskStatus, std::vec::IntoIter<String>> =
            per_column.iter().map(|(status, count)| (*status, ranks_after(last_ranks.get(status).cloned().flatten().as_deref(), *count).into_iter())).collect();
        let now = self.clock.rfc3339();
        let total = rows.len();
        let mut tasks = Vec::with_capacity(total);
        for (i, row) in rows.into_iter().enumerate() {
            let random = match &keyed {
                Some(key) => derived_bits(key, i),
                None => ulid::Ulid::new().random(),
            };
            let id = ulid::Ulid::from_parts(started_ms, random);
            let rank = ranks.get_mut(&row.status).and_then(Iterator::next).ok_or(DomainError::Unavailable)?;
            tasks.push(Task {
                id: id.to_string().parse::<TaskId>().map_err(|_| DomainError::Unavailable)?,
                project_id: project.id,
                org_id: scope.org_id(),
                title: row.title.as_str().to_owned(),
                description: row.description,
                status: row.status,
                priority: row.priority,
                assignee: row.assignee,
                due: row.due,
                labels: row.labels,
                rank,
                created_by: scope.user.clone(),
                created_at: now.clone(),
                updated_at: now.clone(),
                version: 1,
            });
        }

        // The label set grows once, in the first transaction.
        let mut first = true;
        let mut batches = Vec::new();
        for chunk in tasks.chunks(ROWS_PER_TX) {
            let mut tx = Tx::default();
            for task in chunk {
                let history = HistoryOf { action: TaskAction::Created, changes: diff(None, task), actor: scope.user.as_str(), id: Some(task.id.to_string()) };
                self.push_task_write(&mut tx, p, task, Expect::New, history)?;
            }
            tx.check(
                &self.table,
                &keys::project(p, project.id),
                Expr::condition("#status = :active").name("#status", "status").value(":active", av(&ProjectStatus::Active)),
                DomainError::Conflict("the project was archived or deleted during the import"),
            );
            let assignees: HashSet<&UserId> = chunk.iter().filter_map(|t| t.assignee.as_ref()).collect();
            for user in assignees {
                tx.check(&self.table, &keys::member(p, user), Expr::condition("attribute_exists(PK)"), DomainError::invalid("assignee", ASSIGNEE_NOT_MEMBER));
            }
            if first {
                self.push_new_labels(&mut tx, p, labels, tasks.iter().flat_map(|t| t.labels.iter()))?;
                first = false;
            }
            batches.push(tx);
        }
        let resuming = matches!(&idempotency, Some(Idempotency { recorded: Some(_), .. }));
        let results: Vec<Result<(), DomainError>> =
            futures::stream::iter(batches.into_iter().map(|tx| tx.run(self))).buffer_unordered(TX_IN_FLIGHT).collect().await;
        for result in results {
            match result {
                // Written by the attempt this one resumes.
                Err(DomainError::Conflict(TASK_EXISTS)) if resuming => {}
                other => other?,
            }
        }
        let imported = u64::try_from(total).unwrap_or(u64::MAX);
        if let Some(Idempotency { key_hash, .. }) = &idempotency {
            let expr = Expr::update("SET #done = :true, #imported = :imported")
                .name("#done", "done")
                .name("#imported", "imported")
                .value(":true", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
                .value(":imported", n(imported));
            if let Err(e) = self.update_one(&keys::import(p, project.id, key_hash), expr, DomainError::Unavailable).await {
                // The tasks are written; a retry finds them and finishes the record.
                tracing::warn!(error = %e, "could not mark an import done");
            }
        }
        Ok(ImportOutcome { imported, replayed: false })
    }
}

/// 80 bits derived from an import's key and a row: the random part of the row's task id.
fn derived_bits(key_hash: &str, row: usize) -> u128 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{key_hash}#{row}").as_bytes());
    let mut bits = 0u128;
    for b in &digest[..10] {
        bits = (bits << 8) | u128::from(*b);
    }
    bits
}
