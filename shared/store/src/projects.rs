//! Projects: the org's workload containers. A project item lives in the org's partition (and,
//! by status, in an index partition that lists the org's active or archived projects); its
//! tasks, comments, history and imports live in a partition of their own, which deleting the
//! project purges asynchronously and resumably, like an org's purge.
//!
//! The number of active projects is a plan limit, kept on the org item (`projectCount`) and
//! changed in the same transaction as the project, with a condition on the plan the caller
//! was authorized under: concurrent creates cannot overshoot it, and lowering a plan refuses
//! new projects while deleting nothing.

use domain::work::{ProjectId, ProjectName, ProjectStatus};
use domain::{Action, DomainError, OrgId, UserId};
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::entities::OrgStatus;
use crate::item::{Entity, av, n, to_item};
use crate::keys::{self};
use crate::orgs::{require, require_member};
use crate::page::{Page, PageRequest, PagedQuery, Sort};
use crate::scope::{OrgPartition, OrgScope, ReadScope};
use crate::tx::{Expr, Tx};

/// A project of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: ProjectId,
    pub org_id: OrgId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub status: ProjectStatus,
    pub created_by: UserId,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
}

impl Entity for Project {
    const TYPE: &'static str = "project";
}

/// What is left of a deleted project until its partition is purged: the item the purge
/// consumer's stream filter matches, and the entry in the "awaiting purge" index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectTombstone {
    pub project_id: ProjectId,
    pub org_id: OrgId,
    pub deleted_by: UserId,
    pub deleted_at: String,
}

impl Entity for ProjectTombstone {
    const TYPE: &'static str = "project-purge";
}

/// The `_type` of a deleted project awaiting its purge (the purge consumer's stream filter).
pub const PROJECT_PURGE_TYPE: &str = <ProjectTombstone as Entity>::TYPE;

/// A change to a project's name, description or status.
#[derive(Debug, Clone, Default)]
pub struct ProjectPatch {
    pub name: Option<ProjectName>,
    pub description: Option<String>,
    pub status: Option<ProjectStatus>,
}

const PROJECT_LIMIT: DomainError = DomainError::LimitReached("active projects");

impl Store {
    /// Creates an active project, within the plan's limit on active projects.
    pub async fn create_project(&self, scope: &OrgScope, name: ProjectName, description: String) -> Result<Project, DomainError> {
        require(scope, Action::WriteWorkload)?;
        require_member(scope)?;
        let now = self.clock.rfc3339();
        let project = Project {
            id: ProjectId::new(),
            org_id: scope.org_id(),
            name: name.as_str().to_owned(),
            description,
            status: ProjectStatus::Active,
            created_by: scope.user.clone(),
            created_at: now.clone(),
            updated_at: now,
            version: 1,
        };
        let mut tx = Tx::default();
        tx.put(
            &self.table,
            self.project_item(&scope.partition, &project)?,
            Some(Expr::condition("attribute_not_exists(PK)")),
            DomainError::Conflict("project id collision"),
        );
        self.project_count(&mut tx, scope, 1);
        tx.run(self).await?;
        Ok(project)
    }

    fn project_item(&self, p: &OrgPartition, project: &Project) -> Result<crate::item::Item, DomainError> {
        to_item(project, &keys::project(p, project.id), &[keys::project_by_status(p, project.status, project.id)])
    }

    /// Adds the change of the org's active-project count to `tx`: an increase only while the
    /// org is active, on the plan the caller was authorized under, and below its limit.
    fn project_count(&self, tx: &mut Tx, scope: &OrgScope, delta: i64) {
        let mut expr = Expr::update("SET #pc = #pc + :delta")
            .name("#pc", "projectCount")
            .name("#status", "status")
            .value(":delta", aws_sdk_dynamodb::types::AttributeValue::N(delta.to_string()));
        if delta > 0 {
            let plan = scope.org.plan;
            expr = expr
                .when("#status = :active AND #plan = :plan AND #pc < :limit")
                .name("#plan", "plan")
                .value(":active", av(&OrgStatus::Active))
                .value(":plan", av(&plan))
                .value(":limit", n(plan.limits().max_projects));
            tx.update(&self.table, &keys::org(&scope.partition), expr, PROJECT_LIMIT);
        } else {
            expr = expr.when("attribute_exists(PK) AND #status <> :deleting").value(":deleting", av(&OrgStatus::Deleting));
            tx.update(&self.table, &keys::org(&scope.partition), expr, DomainError::NotFound);
        }
    }

    pub async fn get_project(&self, scope: &impl ReadScope, id: ProjectId) -> Result<Option<Project>, DomainError> {
        self.get(&keys::project(scope.partition(), id)).await
    }

    /// The org's projects, newest first; with `status`, only those with it.
    pub async fn list_projects(&self, scope: &impl ReadScope, status: Option<ProjectStatus>, page: &PageRequest) -> Result<Page<Project>, DomainError> {
        let p = scope.partition();
        match status {
            None => {
                let partition = keys::org_pk(p);
                let query = PagedQuery::on_table("projects", &partition, Sort::Prefix(keys::PROJECT_PREFIX)).newest_first();
                self.query_page(&query, page).await
            }
            Some(status) => {
                let partition = keys::projects_by_status_pk(p, status);
                let query = PagedQuery::on_index("projects-by-status", keys::Gsi::One, &partition, Sort::Prefix("")).newest_first();
                self.query_page(&query, page).await
            }
        }
    }

    /// Whether the caller may change `project`: members change their own, admins any.
    fn may_change(scope: &OrgScope, project: &Project) -> Result<(), DomainError> {
        crate::orgs::require_own_or_admin(scope, &project.created_by, "only admins change projects created by someone else")
    }

    /// Applies `patch` to `current` (as read), on the version given by `If-Match` if any.
    /// Archiving frees a place under the plan's limit; restoring takes one.
    pub async fn update_project(&self, scope: &OrgScope, current: &Project, expected: Option<u64>, patch: ProjectPatch) -> Result<Project, DomainError> {
        Self::may_change(scope, current)?;
        if expected.is_some_and(|v| v != current.version) {
            return Err(DomainError::StaleVersion);
        }
        let mut next = current.clone();
        if let Some(name) = patch.name {
            next.name = name.as_str().to_owned();
        }
        if let Some(description) = patch.description {
            next.description = description;
        }
        if let Some(status) = patch.status {
            next.status = status;
        }
        if next == *current {
            return Ok(next);
        }
        next.version = current.version + 1;
        next.updated_at = self.clock.rfc3339();
        let mut tx = Tx::default();
        tx.put(
            &self.table,
            self.project_item(&scope.partition, &next)?,
            Some(Expr::condition("#version = :version").name("#version", "version").value(":version", n(current.version))),
            DomainError::StaleVersion,
        );
        match (current.status, next.status) {
            (ProjectStatus::Active, ProjectStatus::Archived) => self.project_count(&mut tx, scope, -1),
            (ProjectStatus::Archived, ProjectStatus::Active) => self.project_count(&mut tx, scope, 1),
            _ => {}
        }
        tx.run(self).await?;
        Ok(next)
    }

    /// Deletes a project (admin+): it is gone from every listing at once; its tasks, comments
    /// and history are purged asynchronously (see `purge.rs`).
    pub async fn delete_project(&self, scope: &OrgScope, current: &Project, expected: Option<u64>) -> Result<(), DomainError> {
        require(scope, Action::ManageWorkload)?;
        require_member(scope)?;
        if expected.is_some_and(|v| v != current.version) {
            return Err(DomainError::StaleVersion);
        }
        let p = &scope.partition;
        let tombstone = ProjectTombstone { project_id: current.id, org_id: scope.org_id(), deleted_by: scope.user.clone(), deleted_at: self.clock.rfc3339() };
        let mut tx = Tx::default();
        tx.delete(
            &self.table,
            &keys::project(p, current.id),
            Some(Expr::condition("#version = :version").name("#version", "version").value(":version", n(current.version))),
            DomainError::StaleVersion,
        )
        .put(
            &self.table,
            to_item(&tombstone, &keys::project_purge(p, current.id), &[keys::project_awaiting_purge(p, current.id)])?,
            None,
            DomainError::Unavailable,
        );
        if current.status == ProjectStatus::Active {
            self.project_count(&mut tx, scope, -1);
        }
        let deleted = crate::events::DomainEvent {
            project_id: Some(current.id),
            title: Some(current.name.clone()),
            ..crate::events::DomainEvent::new(self, crate::events::EventKind::ProjectDeleted, scope.org_id(), scope.user.as_str())
        };
        self.push_event(&mut tx, &deleted)?;
        tx.run(self).await
    }
}
