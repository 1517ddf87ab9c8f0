//! Members: listing, role changes, removal and leaving, ownership transfer, and adding a
//! member within the plan's seat limit. Every change that could leave an org without an
//! owner is one transaction guarded by the org's owner counter.

use domain::{Action, DomainError, Email, OrgId, Role, UserId, check_removal, check_role_change};

use crate::Store;
use crate::counters::Deltas;
use crate::entities::Member;
use crate::events::{DomainEvent, EventKind};
use crate::item::{av, to_item};
use crate::keys::{self, MEMBER_PREFIX};
use crate::orgs::{require, require_member};
use crate::page::{Page, PageRequest, PagedQuery, Sort};
use crate::scope::{OrgPartition, OrgScope, ReadScope};
use crate::tx::{Expr, Tx};

/// A member as read before a change, so the change can be conditioned on it.
pub type MemberChange = Member;

const STALE: DomainError = DomainError::Conflict("the member changed meanwhile; reload and try again");
const ACTOR_CHANGED: DomainError = DomainError::Conflict("your own role changed meanwhile");

impl Store {
    pub async fn list_members(&self, scope: &impl ReadScope, page: &PageRequest) -> Result<Page<Member>, DomainError> {
        let partition = keys::org_pk(scope.partition());
        self.query_page(&PagedQuery::on_table("members", &partition, Sort::Prefix(MEMBER_PREFIX)), page).await
    }

    pub async fn get_member(&self, scope: &impl ReadScope, user: &UserId) -> Result<Option<Member>, DomainError> {
        self.get(&keys::member(scope.partition(), user)).await
    }

    /// The membership's item with every attribute, as the table holds it (`None` when `user`
    /// is not a member): the old image of the stream record its removal makes, which the
    /// projects function's consumer receives.
    pub async fn member_item(
        &self,
        org: OrgId,
        user: &UserId,
    ) -> Result<Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>, DomainError> {
        self.raw_item(&keys::member(&OrgPartition::new(org), user)).await
    }

    /// Changes `target`'s role (as read by the caller) to `to`.
    pub async fn change_role(&self, scope: &OrgScope, target: &Member, to: Role) -> Result<Member, DomainError> {
        require(scope, Action::ManageMembers)?;
        check_role_change(scope.role(), target.role, to)?;
        require_member(scope)?;
        if target.role == to {
            return Ok(target.clone());
        }
        let mut tx = Tx::default();
        tx.update(
            &self.table,
            &keys::member(&scope.partition, &target.user_id),
            Expr::update("SET #role = :to").when("#role = :from").name("#role", "role").value(":to", av(&to)).value(":from", av(&target.role)),
            STALE,
        );
        self.guard_actor(&mut tx, scope, &target.user_id);
        let owner_delta = i64::from(to == Role::Owner) - i64::from(target.role == Role::Owner);
        self.org_counters(&mut tx, &scope.partition, Deltas { owners: owner_delta, ..Deltas::default() });
        let event = DomainEvent {
            previous_role: Some(target.role),
            ..DomainEvent::of_member(self, EventKind::MemberRoleChanged, scope.org_id(), &target.user_id, to, scope.user.as_str())
        };
        self.push_event(&mut tx, &event)?;
        tx.run(self).await?;
        Ok(Member { role: to, ..target.clone() })
    }

    /// Removes `target` (as read by the caller), or lets the caller leave when it is them.
    pub async fn remove_member(&self, scope: &OrgScope, target: &Member) -> Result<(), DomainError> {
        self.remove_member_with(scope, target, &[]).await
    }

    /// [`Store::remove_member`] with more events in its transaction (`user.erased`).
    pub(crate) async fn remove_member_with(&self, scope: &OrgScope, target: &Member, extra: &[DomainEvent]) -> Result<(), DomainError> {
        require_member(scope)?;
        let is_self = target.user_id == scope.user;
        check_removal(scope.role(), target.role, is_self)?;
        let mut tx = Tx::default();
        tx.delete(
            &self.table,
            &keys::member(&scope.partition, &target.user_id),
            Some(Expr::condition("#role = :from").name("#role", "role").value(":from", av(&target.role))),
            STALE,
        );
        if !is_self {
            self.guard_actor(&mut tx, scope, &target.user_id);
        }
        let owner_delta = -i64::from(target.role == Role::Owner);
        self.org_counters(&mut tx, &scope.partition, Deltas { owners: owner_delta, members: -1, seats: -1 });
        self.push_event(&mut tx, &DomainEvent::of_member(self, EventKind::MemberRemoved, scope.org_id(), &target.user_id, target.role, scope.user.as_str()))?;
        for event in extra {
            self.push_event(&mut tx, event)?;
        }
        tx.run(self).await
    }

    /// Makes `target` an owner and the caller (an owner) an admin, in one transaction.
    pub async fn transfer_ownership(&self, scope: &OrgScope, target: &Member) -> Result<(), DomainError> {
        require(scope, Action::TransferOwnership)?;
        require_member(scope)?;
        if target.user_id == scope.user {
            return Err(DomainError::invalid("userId", "cannot transfer ownership to yourself"));
        }
        if target.role == Role::Owner {
            return Err(DomainError::Conflict("the member is already an owner"));
        }
        let mut tx = Tx::default();
        tx.update(
            &self.table,
            &keys::member(&scope.partition, &target.user_id),
            Expr::update("SET #role = :owner").when("#role = :from").name("#role", "role").value(":owner", av(&Role::Owner)).value(":from", av(&target.role)),
            STALE,
        )
        .update(
            &self.table,
            &keys::member(&scope.partition, &scope.user),
            Expr::update("SET #role = :admin").when("#role = :owner").name("#role", "role").value(":admin", av(&Role::Admin)).value(":owner", av(&Role::Owner)),
            ACTOR_CHANGED,
        );
        // Net owner count is unchanged; the org must still be active.
        self.org_counters(&mut tx, &scope.partition, Deltas::default());
        let actor = scope.user.as_str();
        let promoted = DomainEvent {
            previous_role: Some(target.role),
            ..DomainEvent::of_member(self, EventKind::MemberRoleChanged, scope.org_id(), &target.user_id, Role::Owner, actor)
        };
        let demoted = DomainEvent {
            previous_role: Some(Role::Owner),
            ..DomainEvent::of_member(self, EventKind::MemberRoleChanged, scope.org_id(), &scope.user, Role::Admin, actor)
        };
        // The transfer itself, for the audit log: the new owner, and the previous one.
        let transferred = DomainEvent {
            changes: vec![crate::tasks::FieldChange { field: "owner".into(), from: serde_json::json!(scope.user), to: serde_json::json!(target.user_id) }],
            ..DomainEvent::of_member(self, EventKind::OwnershipTransferred, scope.org_id(), &target.user_id, Role::Owner, actor)
        };
        self.push_event(&mut tx, &promoted)?;
        self.push_event(&mut tx, &demoted)?;
        self.push_event(&mut tx, &transferred)?;
        tx.run(self).await
    }

    /// Adds a member, taking one seat; refused with `LimitReached` when the plan's member
    /// limit (members plus pending invitations) is reached, atomically.
    pub async fn add_member(
        &self,
        scope: &OrgScope,
        user: &UserId,
        role: Role,
        email: Option<Email>,
        display_name: Option<String>,
    ) -> Result<Member, DomainError> {
        require(scope, Action::ManageMembers)?;
        if role > scope.role() {
            return Err(DomainError::Forbidden("cannot grant a role above your own"));
        }
        let member = Member::new(scope.org_id(), user.clone(), role, email, display_name, self.clock.rfc3339());
        let mut tx = Tx::default();
        tx.put(
            &self.table,
            to_item(&member, &keys::member(&scope.partition, user), &keys::member_indexes(&scope.partition, &member))?,
            Some(Expr::condition("attribute_not_exists(PK)")),
            DomainError::Conflict("already a member"),
        );
        self.org_counters(&mut tx, &scope.partition, Deltas { owners: i64::from(role == Role::Owner), members: 1, seats: 1 });
        self.push_event(&mut tx, &DomainEvent::of_member(self, EventKind::MemberJoined, scope.org_id(), user, role, scope.user.as_str()))?;
        tx.run(self).await?;
        Ok(member)
    }

    /// The caller's own role must still be what it was when they were authorized.
    fn guard_actor(&self, tx: &mut Tx, scope: &OrgScope, target: &UserId) {
        if *target == scope.user {
            return;
        }
        tx.check(
            &self.table,
            &keys::member(&scope.partition, &scope.user),
            Expr::condition("#role = :mine").name("#role", "role").value(":mine", av(&scope.role())),
            ACTOR_CHANGED,
        );
    }
}
