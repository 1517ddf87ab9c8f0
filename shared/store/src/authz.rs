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
        // When the caller's verified token names this org in its org claims, the request is
        // counted in the org's rate-limit buckets in the same round trip as the check (and
        // given back if the check fails). A token that does not name the org (a stranger's,
        // or one issued before the caller joined) is charged after the check.
        let gate = crate::rate::claimed_gate(&who.user_id, org);
        let count = async {
            match &gate {
                Some(g) if !g.charged().await => Some(self.count_in_org(g, &partition).await),
                _ => None,
            }
        };
        let (member, org_item, operator, data, counted) =
            futures::join!(self.get::<Member>(&member_key), self.get::<Org>(&org_key), self.is_platform_operator(who), read(pending), count);
        let checked = async {
            let org_item = org_item?.filter(|o| o.status != OrgStatus::Deleting).ok_or(DomainError::NotFound)?;
            let operator = operator?;
            let access = match member? {
                Some(m) => Access::Member(m.role),
                None if operator => Access::Platform,
                None => return Err(DomainError::NotFound),
            };
            if org_item.status == OrgStatus::Suspended && !operator {
                return Err(DomainError::Suspended);
            }
            let scope = OrgScope { partition, user: who.user_id.clone(), access, org: org_item };
            // The request's usage is the org's from here on (a member's), or the platform's (an
            // operator's support access): never an org whose check failed.
            telemetry::attribute(&match access {
                Access::Member(_) => org.to_string(),
                Access::Platform => telemetry::PLATFORM.to_owned(),
            });
            if !permits(scope.role(), action) {
                return Err(DomainError::Forbidden("your role does not allow this"));
            }
            Ok(scope)
        }
        .await;
        // The counts stand only for a caller authorized as a member: anyone else's are given
        // back, so a non-member cannot spend an org's budget.
        let scope = match (checked, gate, counted) {
            (Ok(scope), Some(gate), Some(counted)) => {
                let counted = counted?;
                if matches!(scope.access, Access::Member(_)) {
                    self.settle_in_org(&gate, &scope, counted).await?;
                } else {
                    self.give_back_counted(&counted).await;
                    self.charge_in_org(&scope).await?;
                }
                scope
            }
            (Ok(scope), _, _) => {
                self.charge_in_org(&scope).await?;
                scope
            }
            (Err(e), Some(_), Some(Ok(counted))) => {
                self.give_back_counted(&counted).await;
                return Err(e);
            }
            (Err(e), _, _) => return Err(e),
        };
        Ok((scope, data?))
    }

    /// A platform operator's scope on any existing org (including one being deleted, so that
    /// its purge can be resumed). Anyone else: `Forbidden`.
    pub async fn admin_scope(&self, who: &Identity, org: OrgId) -> Result<AdminScope, DomainError> {
        if !who.platform_admin {
            return Err(DomainError::Forbidden("platform operators only"));
        }
        let partition = OrgPartition::new(org);
        let org_key = keys::org(&partition);
        let (operator, org) = futures::join!(self.is_platform_operator(who), self.get::<Org>(&org_key));
        if !operator? {
            return Err(DomainError::Forbidden("platform operators only"));
        }
        let org = org?.ok_or(DomainError::NotFound)?;
        Ok(AdminScope { partition, org })
    }

    /// Whether `who` is a platform operator now. The `platform-admin` group in a token is only
    /// a claim that lasts as long as the token; the profile's `platformOperator` flag (which
    /// PreTokenGeneration turns into that group) is what is checked, on every use, so removing
    /// an operator takes effect at once. Callers without the claim cost no read.
    pub async fn is_platform_operator(&self, who: &Identity) -> Result<bool, DomainError> {
        if !who.platform_admin {
            return Ok(false);
        }
        Ok(self.get_user(&who.user_id).await?.is_some_and(|p| p.platform_operator))
    }

    /// Grants or withdraws platform operator status: an out-of-band action of whoever runs
    /// the platform (no route calls it). The user must have a profile.
    pub async fn set_platform_operator(&self, user: &domain::UserId, operator: bool) -> Result<(), DomainError> {
        let expr = crate::tx::Expr::update("SET #op = :op")
            .when("attribute_exists(PK)")
            .name("#op", "platformOperator")
            .value(":op", aws_sdk_dynamodb::types::AttributeValue::Bool(operator));
        self.update_one(&keys::user_profile(user), expr, DomainError::NotFound).await
    }
}
