//! Organizations: creation (with slug uniqueness and the owner's membership in one
//! transaction), the caller's orgs, updates with optimistic locking, deletion, and the
//! platform operators' listing, status and plan changes.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::KeysAndAttributes;
use domain::{Action, DomainError, Identity, OrgId, OrgName, OrgSettings, Plan, Role, Slug, UserId};
use serde::Serialize;

use crate::entities::{Member, Org, OrgStatus, SlugClaim};
use crate::events::{DomainEvent, EventKind, PLATFORM_ACTOR};
use crate::item::{from_item, n, s, to_item};
use crate::keys::{self, MEMBERSHIP_PREFIX};
use crate::page::{Page, PageRequest, PagedQuery, Sort};
use crate::scope::{Access, AdminScope, OrgPartition, OrgScope};
use crate::tx::{Expr, Tx};
use crate::{Store, tx};

/// What creating an org takes.
#[derive(Debug, Clone)]
pub struct NewOrg {
    pub name: OrgName,
    /// A slug the caller asked for; derived from the name when absent.
    pub slug: Option<Slug>,
}

/// One of the caller's orgs with their role in it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MyOrg {
    #[serde(flatten)]
    pub org: Org,
    pub role: Role,
}

/// Tries of a derived slug with a suffix before giving up.
pub(crate) const SLUG_ATTEMPTS: usize = 4;
const MAX_BATCH_GET: usize = 100;

impl Store {
    /// Creates an org with the caller as its owner. A slug the caller chose that is taken:
    /// `Conflict`. A derived slug that is taken gets a short suffix.
    pub async fn create_org(&self, who: &Identity, display_name: Option<String>, new: NewOrg) -> Result<OrgScope, DomainError> {
        let id = OrgId::new();
        let base = match &new.slug {
            Some(s) => s.clone(),
            None => Self::base_slug(&new.name, id)?,
        };
        for attempt in 0..SLUG_ATTEMPTS {
            let slug = Self::slug_attempt(&base, id, attempt)?;
            match self.create_org_with_slug(who, display_name.clone(), id, &new.name, slug).await {
                Err(DomainError::Conflict(SLUG_TAKEN)) if new.slug.is_none() => continue,
                other => return other,
            }
        }
        Err(DomainError::Conflict(SLUG_TAKEN))
    }

    async fn create_org_with_slug(&self, who: &Identity, display_name: Option<String>, id: OrgId, name: &OrgName, slug: Slug) -> Result<OrgScope, DomainError> {
        let mut tx = Tx::default();
        let org = self.push_org_creation(&mut tx, who, display_name, id, name, slug)?;
        // One user may create only so many orgs a day (a platform limit).
        let now = self.clock.epoch();
        let on_limit = DomainError::RateLimited { what: "organizations created today", retry_after_secs: crate::invites::seconds_to_utc_midnight(now) };
        self.count_daily(&mut tx, &keys::orgs_created(&who.user_id, &crate::invites::day_key(now)), self.limits.orgs_per_user_per_day, now, on_limit);
        tx.run(self).await?;
        telemetry::attribute(&id.to_string());
        Ok(OrgScope { partition: OrgPartition::new(id), user: who.user_id.clone(), access: Access::Member(Role::Owner), org })
    }

    /// Adds the writes that create an org owned by `who` (org, slug claim, owner membership),
    /// each conditional, to `tx`.
    pub(crate) fn push_org_creation(
        &self,
        tx: &mut Tx,
        who: &Identity,
        display_name: Option<String>,
        id: OrgId,
        name: &OrgName,
        slug: Slug,
    ) -> Result<Org, DomainError> {
        let partition = OrgPartition::new(id);
        let now = self.clock.rfc3339();
        let org = Org {
            id,
            name: name.as_str().to_owned(),
            slug: slug.clone(),
            plan: Plan::Free,
            status: OrgStatus::Active,
            settings: OrgSettings::new(),
            created_by: who.user_id.clone(),
            created_at: now.clone(),
            updated_at: now.clone(),
            version: 1,
            owner_count: 1,
            member_count: 1,
            seats_used: 1,
            seat_limit: Plan::Free.limits().max_members,
            project_count: 0,
            storage_bytes: 0,
            storage_reserved: 0,
            rate_override: None,
        };
        let member = Member::new(id, who.user_id.clone(), Role::Owner, who.email.clone(), display_name, now.clone());
        let not_exists = || Some(Expr::condition("attribute_not_exists(PK)"));
        tx.put(
            &self.table,
            to_item(&org, &keys::org(&partition), &[keys::org_listing(&partition, &now)])?,
            not_exists(),
            DomainError::Conflict("organization id collision"),
        )
        .put(&self.table, to_item(&SlugClaim { slug: slug.clone(), org_id: id }, &keys::slug(&slug), &[])?, not_exists(), DomainError::Conflict(SLUG_TAKEN))
        .put(
            &self.table,
            to_item(&member, &keys::member(&partition, &who.user_id), &keys::member_indexes(&partition, &member))?,
            not_exists(),
            DomainError::Conflict("membership exists"),
        );
        let created = DomainEvent { title: Some(org.name.clone()), ..DomainEvent::new(self, EventKind::OrgCreated, id, who.user_id.as_str()) };
        self.push_event(tx, &created)?;
        Ok(org)
    }

    /// The slug to try on `attempt` (0: the base; then with a suffix taken from the org id).
    pub(crate) fn slug_attempt(base: &Slug, id: OrgId, attempt: usize) -> Result<Slug, DomainError> {
        if attempt == 0 {
            return Ok(base.clone());
        }
        let id_suffix = id.to_string().to_ascii_lowercase();
        let suffix = &id_suffix[id_suffix.len() - 2 * attempt - 2..];
        base.with_suffix(suffix).ok_or(DomainError::Unavailable)
    }

    /// The slug an org gets when the caller chose none.
    pub(crate) fn base_slug(name: &OrgName, id: OrgId) -> Result<Slug, DomainError> {
        match Slug::derive(name.as_str()) {
            Some(s) => Ok(s),
            None => format!("org-{}", id.to_string().to_ascii_lowercase()).parse().map_err(|_| DomainError::Unavailable),
        }
    }

    /// The orgs `user` is a member of, with their role; orgs being deleted are left out.
    pub async fn list_my_orgs(&self, user: &UserId, page: &PageRequest) -> Result<Page<MyOrg>, DomainError> {
        let partition = keys::user_pk(user);
        let memberships: Page<Member> =
            self.query_page(&PagedQuery::on_index("my-orgs", keys::Gsi::One, &partition, Sort::Prefix(MEMBERSHIP_PREFIX)), page).await?;
        // Keys derived from the user's own memberships.
        let partitions: Vec<OrgPartition> = memberships.items.iter().map(|m| OrgPartition::new(m.org_id)).collect();
        let mut orgs: HashMap<OrgId, Org> = self.batch_get_orgs(&partitions).await?;
        let items = memberships
            .items
            .into_iter()
            .filter(|m| m.user_id == *user)
            .filter_map(|m| {
                let org = orgs.remove(&m.org_id)?;
                (org.status != OrgStatus::Deleting).then_some(MyOrg { org, role: m.role })
            })
            .collect();
        Ok(Page { items, next_cursor: memberships.next_cursor })
    }

    pub(crate) async fn batch_get_orgs(&self, partitions: &[OrgPartition]) -> Result<HashMap<OrgId, Org>, DomainError> {
        let mut found = HashMap::new();
        for chunk in partitions.chunks(MAX_BATCH_GET) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.iter().map(|p| keys::org(p).to_map()).collect()))
                    .consistent_read(true)
                    .build()
                    .expect("keys are set"),
            );
            let mut backoff = tx::BatchBackoff::new();
            while let Some(request) = pending.take() {
                let out = self.client.batch_get_item().request_items(self.table.to_string(), request).send().await.map_err(tx::unexpected)?;
                for item in out.responses.unwrap_or_default().remove(&*self.table).unwrap_or_default() {
                    let org: Org = from_item(item)?;
                    found.insert(org.id, org);
                }
                pending = out.unprocessed_keys.and_then(|mut u| u.remove(&*self.table)).filter(|k| !k.keys.is_empty());
                if pending.is_some() {
                    backoff.wait().await?;
                }
            }
        }
        Ok(found)
    }

    /// Updates name and/or settings, on the version the caller was authorized against (or an
    /// explicit one from `If-Match`). A concurrent edit: `StaleVersion`.
    pub async fn update_org(
        &self,
        scope: &OrgScope,
        expected_version: Option<u64>,
        name: Option<OrgName>,
        settings: Option<OrgSettings>,
    ) -> Result<Org, DomainError> {
        require(scope, Action::UpdateOrg)?;
        let current = &scope.org;
        let version = expected_version.unwrap_or(current.version);
        if version != current.version {
            return Err(DomainError::StaleVersion);
        }
        let mut org = current.clone();
        if let Some(name) = name {
            org.name = name.as_str().to_owned();
        }
        if let Some(settings) = settings {
            org.settings = settings;
        }
        org.updated_at = self.clock.rfc3339();
        org.version = version + 1;
        let expr = Expr::update("SET #name = :name, #settings = :settings, #updated = :updated, #version = :next")
            .when("#version = :version AND #status = :active")
            .name("#name", "name")
            .name("#settings", "settings")
            .name("#updated", "updatedAt")
            .name("#version", "version")
            .name("#status", "status")
            .value(":name", s(&org.name))
            .value(":settings", crate::item::av(&org.settings))
            .value(":updated", s(&org.updated_at))
            .value(":next", n(org.version))
            .value(":version", n(version))
            .value(":active", crate::item::av(&OrgStatus::Active));
        let mut tx = Tx::default();
        tx.update(&self.table, &keys::org(&scope.partition), expr, DomainError::StaleVersion);
        let changes = org_changes(current, &org);
        if !changes.is_empty() {
            let event = DomainEvent { title: Some(org.name.clone()), changes, ..DomainEvent::new(self, EventKind::OrgUpdated, org.id, scope.user.as_str()) };
            self.push_event(&mut tx, &event)?;
        }
        tx.run(self).await?;
        Ok(org)
    }

    /// Deletes an org: it is unreachable (404) from the moment this returns or fails after the
    /// first write, and its items are then purged (see `purge.rs`).
    pub async fn delete_org(&self, scope: &OrgScope) -> Result<(), DomainError> {
        require(scope, Action::DeleteOrg)?;
        if !scope.is_member() {
            return Err(DomainError::Forbidden("only owners delete an organization"));
        }
        let mut tx = Tx::default();
        tx.update(
            &self.table,
            &keys::org(&scope.partition),
            Expr::update("SET #status = :deleting, #updated = :now, #purgePk = :purgePk, #purgeSk = :org")
                .when("attribute_exists(PK) AND #status <> :deleting")
                .name("#status", "status")
                .name("#updated", "updatedAt")
                .name("#purgePk", keys::GSI2PK)
                .name("#purgeSk", keys::GSI2SK)
                .value(":deleting", crate::item::av(&OrgStatus::Deleting))
                .value(":now", s(self.clock.rfc3339()))
                .value(":purgePk", s(keys::PURGE_INDEX_PK))
                .value(":org", s(scope.org_id().to_string())),
            DomainError::NotFound,
        )
        .delete(&self.table, &keys::slug(&scope.org.slug), None, DomainError::NotFound);
        let requested =
            DomainEvent { title: Some(scope.org.name.clone()), ..DomainEvent::new(self, EventKind::OrgDeletionRequested, scope.org.id, scope.user.as_str()) };
        self.push_event(&mut tx, &requested)?;
        // The purge itself runs asynchronously: the stream carries this change to the purge
        // consumer (see `purge.rs`).
        tx.run(self).await
    }

    /// Every org on the platform, newest first, optionally only those with `status`.
    pub async fn list_all_orgs(&self, who: &Identity, status: Option<OrgStatus>, page: &PageRequest) -> Result<Page<Org>, DomainError> {
        if !who.platform_admin {
            return Err(DomainError::Forbidden("platform operators only"));
        }
        // The operator check and the listing in one round trip; the page is dropped unless the
        // check passes.
        let query = PagedQuery::on_index("all-orgs", keys::Gsi::One, keys::ORGS_INDEX_PK, Sort::Prefix("")).newest_first();
        let (operator, listed) = futures::join!(self.is_platform_operator(who), self.query_page::<Org>(&query, page));
        if !operator? {
            return Err(DomainError::Forbidden("platform operators only"));
        }
        let mut page = listed?;
        if let Some(status) = status {
            page.items.retain(|o| o.status == status);
        }
        Ok(page)
    }

    /// Suspends or reactivates an org. An org being deleted: `NotFound`.
    pub async fn set_org_status(&self, scope: &AdminScope, status: OrgStatus) -> Result<Org, DomainError> {
        if status == OrgStatus::Deleting {
            return Err(DomainError::invalid("status", "use DELETE to delete an organization"));
        }
        if scope.org.status == OrgStatus::Deleting {
            return Err(DomainError::NotFound);
        }
        if status == scope.org.status {
            return Ok(scope.org.clone());
        }
        // The change and its event in one transaction, conditioned on the status read.
        let kind = if status == OrgStatus::Suspended { EventKind::OrgSuspended } else { EventKind::OrgReactivated };
        let mut tx = Tx::default();
        tx.update(
            &self.table,
            &keys::org(&scope.partition),
            Expr::update("SET #status = :status, #updated = :now, #version = #version + :one")
                .when("#status = :read")
                .name("#status", "status")
                .name("#updated", "updatedAt")
                .name("#version", "version")
                .value(":status", crate::item::av(&status))
                .value(":read", crate::item::av(&scope.org.status))
                .value(":now", s(self.clock.rfc3339()))
                .value(":one", n(1)),
            DomainError::Conflict("the organization changed meanwhile; read it again"),
        );
        let event = DomainEvent { title: Some(scope.org.name.clone()), ..DomainEvent::new(self, kind, scope.org.id, PLATFORM_ACTOR) };
        self.push_event(&mut tx, &event)?;
        tx.run(self).await?;
        Ok(Org { status, updated_at: self.clock.rfc3339(), version: scope.org.version + 1, ..scope.org.clone() })
    }

    /// Changes an org's plan, conditioned on the plan read (a concurrent change: `Conflict`).
    /// Nothing is deleted when the new plan is below current usage; additions are refused
    /// until usage is back under the new limits.
    pub async fn set_org_plan(&self, scope: &AdminScope, plan: Plan) -> Result<Org, DomainError> {
        if scope.org.status == OrgStatus::Deleting {
            return Err(DomainError::NotFound);
        }
        let now = self.clock.rfc3339();
        let seat_limit = plan.limits().max_members;
        let mut tx = Tx::default();
        tx.update(
            &self.table,
            &keys::org(&scope.partition),
            Expr::update("SET #plan = :plan, #limit = :limit, #updated = :now")
                .when("attribute_exists(PK) AND #st <> :deleting AND #plan = :read")
                .name("#plan", "plan")
                .name("#limit", "seatLimit")
                .name("#st", "status")
                .name("#updated", "updatedAt")
                .value(":plan", crate::item::av(&plan))
                .value(":read", crate::item::av(&scope.org.plan))
                .value(":limit", n(seat_limit))
                .value(":deleting", crate::item::av(&OrgStatus::Deleting))
                .value(":now", s(&now)),
            DomainError::Conflict("the organization changed meanwhile; read it again"),
        );
        if plan != scope.org.plan {
            let change = crate::tasks::FieldChange { field: "plan".into(), from: serde_json::json!(scope.org.plan), to: serde_json::json!(plan) };
            let event = DomainEvent {
                title: Some(scope.org.name.clone()),
                changes: vec![change],
                ..DomainEvent::new(self, EventKind::OrgPlanChanged, scope.org.id, PLATFORM_ACTOR)
            };
            self.push_event(&mut tx, &event)?;
        }
        tx.run(self).await?;
        Ok(Org { plan, seat_limit, updated_at: now, ..scope.org.clone() })
    }

    /// Sets (or, with `None`, removes) a platform operator's override of the org's rate
    /// limits, with its `org.limits_changed` event in the same transaction, conditioned on the
    /// org's version read by the operator's scope.
    pub async fn set_org_rate_override(&self, scope: &AdminScope, rate: Option<domain::RateOverride>) -> Result<Org, DomainError> {
        if scope.org.status == OrgStatus::Deleting {
            return Err(DomainError::NotFound);
        }
        let now = self.clock.rfc3339();
        let expr = match &rate {
            Some(o) => Expr::update("SET #rate = :rate, #updated = :now, #version = #version + :one").value(":rate", crate::item::av(o)),
            None => Expr::update("REMOVE #rate SET #updated = :now, #version = #version + :one"),
        };
        let mut tx = Tx::default();
        tx.update(
            &self.table,
            &keys::org(&scope.partition),
            expr.when("#version = :read AND #st <> :deleting")
                .name("#rate", "rateOverride")
                .name("#updated", "updatedAt")
                .name("#version", "version")
                .name("#st", "status")
                .value(":now", s(now.clone()))
                .value(":one", n(1))
                .value(":read", n(scope.org.version))
                .value(":deleting", crate::item::av(&OrgStatus::Deleting)),
            DomainError::Conflict("the organization changed meanwhile; read it again"),
        );
        let value = |o: &Option<domain::RateOverride>| serde_json::to_value(o).unwrap_or(serde_json::Value::Null);
        let change = crate::tasks::FieldChange { field: "rateOverride".into(), from: value(&scope.org.rate_override), to: value(&rate) };
        let event = DomainEvent {
            title: Some(scope.org.name.clone()),
            changes: vec![change],
            ..DomainEvent::new(self, EventKind::OrgLimitsChanged, scope.org.id, PLATFORM_ACTOR)
        };
        self.push_event(&mut tx, &event)?;
        tx.run(self).await?;
        Ok(Org { rate_override: rate, updated_at: now, version: scope.org.version + 1, ..scope.org.clone() })
    }

    pub(crate) async fn update_one(&self, key: &keys::Key, expr: Expr, on_fail: DomainError) -> Result<(), DomainError> {
        self.hold_for_charge().await?;
        self.client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(key.to_map()))
            .set_update_expression(expr.update.clone())
            .set_condition_expression(expr.condition.clone())
            .set_expression_attribute_names((!expr.names.is_empty()).then(|| expr.names.clone()))
            .set_expression_attribute_values((!expr.values.is_empty()).then(|| expr.values.clone()))
            .send()
            .await
            .map_err(|e| tx::conditional(e, on_fail))?;
        Ok(())
    }
}

pub(crate) const SLUG_TAKEN: &str = "slug already taken";

/// What an org update changed: its name, and each setting (`settings.…`; the chat system
/// prompt by its length only).
fn org_changes(before: &Org, after: &Org) -> Vec<crate::tasks::FieldChange> {
    let mut changes = Vec::new();
    if before.name != after.name {
        changes.push(crate::tasks::FieldChange { field: "name".into(), from: serde_json::json!(before.name), to: serde_json::json!(after.name) });
    }
    for mut change in crate::events::field_changes(&before.settings, &after.settings, &["chatSystemPrompt"]) {
        change.field = format!("settings.{}", change.field);
        changes.push(change);
    }
    changes
}

/// Writes need a membership: a platform operator's access to an org is read-only.
pub(crate) fn require_member(scope: &OrgScope) -> Result<(), DomainError> {
    if scope.is_member() { Ok(()) } else { Err(DomainError::Forbidden("platform access is read-only")) }
}

/// Changes to an org's workload: members change what they made (`owner`), admins anything;
/// `refusal` says so to the others.
pub(crate) fn require_own_or_admin(scope: &OrgScope, owner: &UserId, refusal: &'static str) -> Result<(), DomainError> {
    require(scope, Action::WriteWorkload)?;
    require_member(scope)?;
    if *owner != scope.user {
        require(scope, Action::ManageWorkload).map_err(|_| DomainError::Forbidden(refusal))?;
    }
    Ok(())
}

/// Re-checks the permission table inside the store, so a write cannot be reached with a
/// scope that was authorized for a lesser action.
pub(crate) fn require(scope: &OrgScope, action: Action) -> Result<(), DomainError> {
    if domain::permits(scope.role(), action) { Ok(()) } else { Err(DomainError::Forbidden("your role does not allow this")) }
}
