//! Authorization: the only producer of [`OrgScope`] and [`AdminScope`].

use std::future::Future;

use domain::{Action, DomainError, Identity, OrgId, permits};

use crate::Store;
use crate::entities::{Member, Org, OrgStatus};
use crate::keys;
use crate::scope::{Access, AdminScope, OrgPartition, OrgScope, PendingScope};

impl Store {
    /// Checks that `who` may perform `action` in `org` and returns the scope to act in.
    pub async fn authorize(&self, who: &Identity, org: OrgId, action: Action) -> Result<OrgScope, DomainError> {
        self.authorize_with(who, org, action, |_| async { Ok(()) }).await.map(|(scope, ())| scope)
    }

    /// Like [`Store::authorize`], running `read` concurrently with the check: the caller's
    /// membership and the org are read in the same round trip as the route's own data, and
    /// that data is dropped unless the check passes.
    ///
    /// Outcomes: unknown org, org being deleted, or a caller who is neither a member nor a
    /// platform operator: `NotFound`. Suspended org: `Suspended` for everyone but platform
    /// operators. Role too low for `action`: `Forbidden`.
    pub async fn authorize_with<T, F, Fut>(&self, who: &Identity, org: OrgId, action: Action, read: F) -> Result<(OrgScope, T), DomainError>
    where
        F: FnOnce(PendingScope) -> Fut,
        Fut: Future<Output = Result<T, DomainError>>,
    {
        let partition = OrgPartition::new(org);
        let pending = PendingScope { partition: partition.clone() };
        let member_key = keys::member(&partition, &who.user_id);
        let org_key = keys::org(&partition);
        let (member, org_item, data) = futures::join!(self.get::<Member>(&member_key), self.get::<Org>(&org_key), read(pending));
        let org_item = org_item?.filter(|o| o.status != OrgStatus::Deleting).ok_or(DomainError::NotFound)?;
        let access = match member? {
            Some(m) => Access::Member(m.role),
            None if who.platform_admin => Access::Platform,
            None => return Err(DomainError::NotFound),
        };
        if org_item.status == OrgStatus::Suspended && !who.platform_admin {
            return Err(DomainError::Suspended);
        }
        let scope = OrgScope { partition, user: who.user_id.clone(), access, org: org_item };
        if !permits(scope.role(), action) {
            return Err(DomainError::Forbidden("your role does not allow this"));
        }
        Ok((scope, data?))
    }

    /// A platform operator's scope on any existing org (including one being deleted, so that
    /// its purge can be resumed). Anyone else: `Forbidden`.
    pub async fn admin_scope(&self, who: &Identity, org: OrgId) -> Result<AdminScope, DomainError> {
        if !who.platform_admin {
            return Err(DomainError::Forbidden("platform operators only"));
        }
        let partition = OrgPartition::new(org);
        let org = self.get::<Org>(&keys::org(&partition)).await?.ok_or(DomainError::NotFound)?;
        Ok(AdminScope { partition, org })
    }
}
