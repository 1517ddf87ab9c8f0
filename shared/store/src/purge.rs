//! Purging a deleted org, asynchronously and resumably.
//!
//! Deleting an org only marks it `deleting` (and frees its slug) in one transaction, and puts
//! it in the sparse "awaiting purge" index; it answers 404 from then on. The table's stream
//! carries that change to the purge consumer, which deletes every item of the org's
//! partitions page by page and the org item itself last, so an interrupted purge leaves the
//! org marked `deleting` and is resumed. A pass that runs out of time bumps `purgePass` on
//! the org item: that change is a new stream record, so the consumer picks the purge up
//! again without any queue of its own; a schedule resumes whatever is still waiting (a
//! record that went to the dead-letter queue, say). Purging twice is harmless.

use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use domain::work::ProjectId;
use domain::{DomainError, OrgId};

use crate::Store;
use crate::entities::{Org, OrgStatus};
use crate::keys::{self, GSI2, GSI2PK, GSI2SK, PK, SK};
use crate::projects::ProjectTombstone;
use crate::scope::{AdminScope, OrgPartition};
use crate::tx::{self, Expr};

const PAGE: i32 = 100;
const BATCH: usize = 25;
/// At most this many orgs are listed by one sweep of the "awaiting purge" index.
const SWEEP_LIMIT: usize = 1_000;

/// An org that is being deleted, established by reading it: the only way to purge.
#[derive(Debug)]
pub struct PurgeScope {
    partition: OrgPartition,
}

impl PurgeScope {
    pub fn org_id(&self) -> OrgId {
        self.partition.org_id()
    }
}

/// A deleted project awaiting its purge, established by reading what is left of it.
#[derive(Debug)]
pub struct ProjectPurgeScope {
    partition: OrgPartition,
    project: ProjectId,
}

/// Something the purge sweep finds waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PurgeTarget {
    Org(OrgId),
    Project(OrgId, ProjectId),
}

impl PurgeTarget {
    /// From an entry of the "awaiting purge" index: `<org>` or `<org>#PROJECT#<project>`.
    fn parse(sk: &str) -> Option<PurgeTarget> {
        match sk.split_once("#PROJECT#") {
            Some((org, project)) => Some(PurgeTarget::Project(org.parse().ok()?, project.parse().ok()?)),
            None => sk.parse().ok().map(PurgeTarget::Org),
        }
    }
}

impl From<&AdminScope> for Option<PurgeScope> {
    fn from(scope: &AdminScope) -> Self {
        (scope.org.status == OrgStatus::Deleting).then(|| PurgeScope { partition: OrgPartition::new(scope.org.id) })
    }
}

/// How far one purge pass got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PurgeProgress {
    /// Every item is gone, the org item last.
    Done,
    /// The pass ran out of time; the org is marked for another pass.
    Continuing,
}

impl Store {
    /// The purge scope of `org` if it is being deleted; `None` when there is nothing (left) to
    /// purge: the org is gone, or not being deleted.
    pub async fn purge_scope(&self, org: OrgId) -> Result<Option<PurgeScope>, DomainError> {
        let partition = OrgPartition::new(org);
        let found: Option<Org> = self.get(&keys::org(&partition)).await?;
        Ok(found.filter(|o| o.status == OrgStatus::Deleting).map(|_| PurgeScope { partition }))
    }

    /// The org's item with every attribute, as the table holds it (`None` once it is purged):
    /// the image a stream record of a change to it carries (the benchmark builds the records
    /// the purge consumer receives from it).
    pub async fn org_item(&self, org: OrgId) -> Result<Option<std::collections::HashMap<String, AttributeValue>>, DomainError> {
        self.raw_item(&keys::org(&OrgPartition::new(org))).await
    }

    /// What is left of a deleted project until it is purged, as the table holds it (`None`
    /// once it is purged, or when the project was never deleted): the new image of the stream
    /// record its deletion makes, which the purge consumer's filter matches.
    pub async fn project_purge_item(&self, org: OrgId, project: ProjectId) -> Result<Option<std::collections::HashMap<String, AttributeValue>>, DomainError> {
        self.raw_item(&keys::project_purge(&OrgPartition::new(org), project)).await
    }

    /// The purge scope for a platform operator resuming a purge by hand.
    pub fn admin_purge_scope(&self, scope: &AdminScope) -> Result<PurgeScope, DomainError> {
        Option::<PurgeScope>::from(scope).ok_or(DomainError::Conflict("the organization is not being deleted"))
    }

    /// What awaits its purge: orgs marked `deleting` and deleted projects (oldest first, at
    /// most 1,000).
    pub async fn awaiting_purge(&self) -> Result<Vec<PurgeTarget>, DomainError> {
        let mut targets = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .index_name(GSI2)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", GSI2PK)
                .expression_attribute_values(":pk", AttributeValue::S(keys::PURGE_INDEX_PK.into()))
                .projection_expression("#sk")
                .expression_attribute_names("#sk", GSI2SK)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(tx::unexpected)?;
            for item in out.items.unwrap_or_default() {
                let target = item.get(GSI2SK).and_then(|v| v.as_s().ok()).and_then(|s| PurgeTarget::parse(s));
                targets.extend(target);
            }
            start = out.last_evaluated_key;
            if start.is_none() || targets.len() >= SWEEP_LIMIT {
                targets.truncate(SWEEP_LIMIT);
                return Ok(targets);
            }
        }
    }

    /// Deletes the org's items until they are all gone (then the org item, last) or until
    /// `deadline`; in the second case marks the org for another pass and answers
    /// [`PurgeProgress::Continuing`]. Its projects' partitions go first, each before the
    /// project item that leads to it.
    pub async fn purge(&self, scope: &PurgeScope, deadline: Instant) -> Result<PurgeProgress, DomainError> {
        let partition = &scope.partition;
        let org_key = keys::org(partition);
        for prefix in [keys::PROJECT_PREFIX, keys::PROJECT_PURGE_PREFIX] {
            loop {
                let (projects, _) = self.partition_keys(&keys::org_pk(partition), prefix).await?;
                if projects.is_empty() {
                    break;
                }
                for key in projects {
                    let project = key.get(SK).and_then(|v| v.as_s().ok()).and_then(|sk| sk.strip_prefix(prefix)).and_then(|id| id.parse::<ProjectId>().ok());
                    if let Some(project) = project
                        && !self.purge_partition(&keys::project_pk(partition, project), None, deadline).await?
                    {
                        return self.continue_org(partition).await;
                    }
                    self.batch_delete(vec![key]).await?;
                }
            }
        }
        // The audit partition (`keys::org_audit_pk`) stays: its entries expire by their TTL.
        if !self.purge_partition(&keys::org_pk(partition), Some(&org_key.sk), deadline).await? {
            return self.continue_org(partition).await;
        }
        let last = Expr::condition("attribute_not_exists(PK) OR #status = :deleting")
            .name("#status", "status")
            .value(":deleting", crate::item::av(&OrgStatus::Deleting));
        self.client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(org_key.to_map()))
            .set_condition_expression(last.condition)
            .set_expression_attribute_names(Some(last.names))
            .set_expression_attribute_values(Some(last.values))
            .send()
            .await
            .map_err(|e| tx::conditional(e, DomainError::Conflict("the organization is not being deleted")))?;
        tracing::info!(org_id = %partition.org_id(), "organization purged");
        Ok(PurgeProgress::Done)
    }

    /// Marks the org for another pass (a pass that ran out of time before its items, say).
    pub async fn continue_purge(&self, scope: &PurgeScope) -> Result<PurgeProgress, DomainError> {
        self.continue_org(&scope.partition).await
    }

    async fn continue_org(&self, partition: &OrgPartition) -> Result<PurgeProgress, DomainError> {
        self.mark_for_another_pass(&keys::org(partition), "attribute_exists(PK) AND #status = :deleting").await?;
        tracing::info!(org_id = %partition.org_id(), "purge continues in another pass");
        Ok(PurgeProgress::Continuing)
    }

    /// The purge scope of a deleted project (`None` when it is purged already).
    pub async fn project_purge_scope(&self, org: OrgId, project: ProjectId) -> Result<Option<ProjectPurgeScope>, DomainError> {
        let partition = OrgPartition::new(org);
        let found: Option<ProjectTombstone> = self.get(&keys::project_purge(&partition, project)).await?;
        Ok(found.map(|_| ProjectPurgeScope { partition, project }))
    }

    /// Deletes a deleted project's tasks, comments, history and imports, then what is left of
    /// the project; or, at `deadline`, marks it for another pass.
    pub async fn purge_project(&self, scope: &ProjectPurgeScope, deadline: Instant) -> Result<PurgeProgress, DomainError> {
        let tombstone = keys::project_purge(&scope.partition, scope.project);
        if !self.purge_partition(&keys::project_pk(&scope.partition, scope.project), None, deadline).await? {
            self.mark_for_another_pass(&tombstone, "attribute_exists(PK)").await?;
            return Ok(PurgeProgress::Continuing);
        }
        self.batch_delete(vec![tombstone.to_map()]).await?;
        tracing::info!(org_id = %scope.partition.org_id(), project_id = %scope.project, "project purged");
        Ok(PurgeProgress::Done)
    }

    /// The keys of `pk`'s items whose sort key begins with `prefix`, a page of them, and
    /// whether more follow.
    async fn partition_keys(&self, pk: &str, prefix: &str) -> Result<(Vec<std::collections::HashMap<String, AttributeValue>>, bool), DomainError> {
        let query = self
            .client
            .query()
            .table_name(&*self.table)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()));
        let query = if prefix.is_empty() {
            query.key_condition_expression("#pk = :pk")
        } else {
            query
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
        };
        let out = query.projection_expression("#pk, #sk").consistent_read(true).limit(PAGE).send().await.map_err(tx::unexpected)?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key.is_some()))
    }

    /// Deletes every item of partition `pk` whose sort key begins with `prefix`, each page's
    /// batches at once, stopping after the last page (no query to find it empty).
    pub(crate) async fn delete_prefix(&self, pk: &str, prefix: &str) -> Result<(), DomainError> {
        loop {
            let (keys, more) = self.partition_keys(pk, prefix).await?;
            let deletes: Vec<_> = keys.chunks(BATCH).map(|chunk| self.batch_delete(chunk.to_vec())).collect();
            for result in futures::future::join_all(deletes).await {
                result?;
            }
            if !more {
                return Ok(());
            }
        }
    }

    /// Deletes the items of partition `pk` (but `keep`) page by page: true when none is
    /// left, false when `deadline` came first.
    async fn purge_partition(&self, pk: &str, keep: Option<&str>, deadline: Instant) -> Result<bool, DomainError> {
        loop {
            let keys: Vec<_> = self
                .partition_keys(pk, "")
                .await?
                .0
                .into_iter()
                .filter(|k| keep.is_none_or(|sk| k.get(SK) != Some(&AttributeValue::S(sk.to_owned()))))
                .collect();
            if keys.is_empty() {
                return Ok(true);
            }
            for chunk in keys.chunks(BATCH) {
                self.batch_delete(chunk.to_vec()).await?;
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }

    /// A change to the item (org, or deleted project) that the purge consumer's stream filter
    /// matches: the next pass.
    async fn mark_for_another_pass(&self, key: &keys::Key, condition: &str) -> Result<(), DomainError> {
        let expr = Expr::update("ADD #pass :one").when(condition).name("#pass", "purgePass").value(":one", crate::item::n(1));
        let expr =
            if condition.contains(":deleting") { expr.name("#status", "status").value(":deleting", crate::item::av(&OrgStatus::Deleting)) } else { expr };
        self.update_one(key, expr, DomainError::Conflict("nothing is being deleted")).await
    }

    pub(crate) async fn batch_delete(&self, keys: Vec<std::collections::HashMap<String, AttributeValue>>) -> Result<(), DomainError> {
        let mut requests = Vec::with_capacity(keys.len());
        for key in keys {
            let delete = DeleteRequest::builder().set_key(Some(key)).build().map_err(|_| DomainError::Unavailable)?;
            requests.push(WriteRequest::builder().delete_request(delete).build());
        }
        let mut backoff = tx::BatchBackoff::new();
        while !requests.is_empty() {
            let out = self.client.batch_write_item().request_items(self.table.to_string(), requests).send().await.map_err(tx::unexpected)?;
            requests = out.unprocessed_items.and_then(|mut u| u.remove(&*self.table)).unwrap_or_default();
            if !requests.is_empty() {
                backoff.wait().await?;
            }
        }
        Ok(())
    }
}
