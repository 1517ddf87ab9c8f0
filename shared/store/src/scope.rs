//! Scopes: the only values from which keys inside an organization's partition can be built.
//!
//! An [`OrgScope`] is produced only by [`crate::Store::authorize`] (a membership and org
//! status check) or by creating an org; an [`AdminScope`] only by
//! [`crate::Store::admin_scope`] (a platform-admin check). Their fields are private and
//! they have no public constructor, so code outside this crate that holds no scope cannot
//! name another tenant's items: the compiler keeps tenants apart.

use domain::{OrgId, Role, UserId};

use crate::entities::Org;

/// The partition of one organization. Constructed only inside this crate.
#[derive(Debug, Clone)]
pub struct OrgPartition(OrgId);

impl OrgPartition {
    pub(crate) fn new(org: OrgId) -> Self {
        OrgPartition(org)
    }
    pub fn org_id(&self) -> OrgId {
        self.0
    }
}

/// How the caller reached the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A member with this role.
    Member(Role),
    /// A platform operator who is not a member: read-only support access.
    Platform,
}

/// The result of a successful authorization: the caller, their access and the org as read
/// during the check.
#[derive(Debug, Clone)]
pub struct OrgScope {
    pub(crate) partition: OrgPartition,
    pub(crate) user: UserId,
    pub(crate) access: Access,
    pub(crate) org: Org,
}

impl OrgScope {
    pub fn org_id(&self) -> OrgId {
        self.partition.0
    }
    pub fn user_id(&self) -> &UserId {
        &self.user
    }
    pub fn access(&self) -> Access {
        self.access
    }
    /// The caller's effective role: their membership role, or viewer for platform access.
    pub fn role(&self) -> Role {
        match self.access {
            Access::Member(role) => role,
            Access::Platform => Role::Viewer,
        }
    }
    pub fn is_member(&self) -> bool {
        matches!(self.access, Access::Member(_))
    }
    /// The org as it was when the caller was authorized.
    pub fn org(&self) -> &Org {
        &self.org
    }
}

/// A platform operator's handle on one organization (suspend, reactivate, plan changes).
#[derive(Debug, Clone)]
pub struct AdminScope {
    pub(crate) partition: OrgPartition,
    pub(crate) org: Org,
}

impl AdminScope {
    pub fn org(&self) -> &Org {
        &self.org
    }
}

/// Handed to reads that run concurrently with the authorization check. Their results are
/// released only when the check passes; writes cannot take one.
#[derive(Debug, Clone)]
pub struct PendingScope {
    pub(crate) partition: OrgPartition,
}

/// Anything reads in an org partition can be keyed from. Sealed: implemented by the three
/// scope types of this module only.
pub trait ReadScope: sealed::Sealed {
    #[doc(hidden)]
    fn partition(&self) -> &OrgPartition;
}

impl ReadScope for OrgScope {
    fn partition(&self) -> &OrgPartition {
        &self.partition
    }
}
impl ReadScope for AdminScope {
    fn partition(&self) -> &OrgPartition {
        &self.partition
    }
}
impl ReadScope for PendingScope {
    fn partition(&self) -> &OrgPartition {
        &self.partition
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::OrgScope {}
    impl Sealed for super::AdminScope {}
    impl Sealed for super::PendingScope {}
}
