//! Roles, actions and the one permission table every handler asks.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{DomainError, Email, UserId};

/// A member's role in one organization. Ordered from lowest to highest, so
/// `Role::Admin > Role::Member`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Member,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or(())
    }
}

/// Everything a caller can try to do inside an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ReadOrg,
    UpdateOrg,
    DeleteOrg,
    ReadMembers,
    ManageMembers,
    TransferOwnership,
    ReadUsage,
    ManageInvites,
    ReadWorkload,
    WriteWorkload,
    /// Change or delete anyone's projects and comments, delete projects.
    ManageWorkload,
    /// Read the org's audit log.
    ReadAudit,
    /// Recompute the org's audit hash chain.
    VerifyAudit,
    /// Export all of the org's data (members, workload, files, conversations, audit).
    ExportOrg,
}

/// The permission table: the lowest role allowed to perform each action.
/// Nothing is allowed that this table does not say.
const fn minimum_role(action: Action) -> Role {
    match action {
        Action::ReadOrg => Role::Viewer,
        Action::ReadMembers => Role::Viewer,
        Action::ReadUsage => Role::Viewer,
        Action::ReadWorkload => Role::Viewer,
        Action::WriteWorkload => Role::Member,
        Action::ManageWorkload => Role::Admin,
        Action::UpdateOrg => Role::Admin,
        Action::ManageMembers => Role::Admin,
        Action::ManageInvites => Role::Admin,
        Action::DeleteOrg => Role::Owner,
        Action::TransferOwnership => Role::Owner,
        Action::ReadAudit => Role::Admin,
        Action::VerifyAudit => Role::Owner,
        Action::ExportOrg => Role::Owner,
    }
}

/// Whether `role` may perform `action`.
pub fn permits(role: Role, action: Action) -> bool {
    role >= minimum_role(action)
}

/// Whether `actor` may change a member's role from `from` to `to`. Admins and owners manage
/// members; nobody changes someone whose role is above their own, or grants a role above it.
/// (Keeping at least one owner is enforced atomically by the store.)
pub fn check_role_change(actor: Role, from: Role, to: Role) -> Result<(), DomainError> {
    if !permits(actor, Action::ManageMembers) {
        return Err(DomainError::Forbidden("only admins and owners manage members"));
    }
    if from > actor {
        return Err(DomainError::Forbidden("cannot change a member whose role is above your own"));
    }
    if to > actor {
        return Err(DomainError::Forbidden("cannot grant a role above your own"));
    }
    Ok(())
}

/// Whether `actor` may remove a member with role `target`; anyone may leave by themselves.
pub fn check_removal(actor: Role, target: Role, is_self: bool) -> Result<(), DomainError> {
    if is_self {
        return Ok(());
    }
    if !permits(actor, Action::ManageMembers) {
        return Err(DomainError::Forbidden("only admins and owners remove members"));
    }
    if target > actor {
        return Err(DomainError::Forbidden("cannot remove a member whose role is above your own"));
    }
    Ok(())
}

/// The verified caller, built only from the authorizer's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: UserId,
    pub email: Option<Email>,
    pub email_verified: bool,
    pub platform_admin: bool,
}

impl Identity {
    /// The Cognito group whose members operate the platform.
    pub const PLATFORM_ADMIN_GROUP: &'static str = "platform-admin";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member && Role::Member > Role::Viewer);
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn role_ceilings() {
        use Role::*;
        assert!(check_role_change(Admin, Member, Admin).is_ok());
        assert!(check_role_change(Admin, Member, Owner).is_err());
        assert!(check_role_change(Admin, Owner, Member).is_err());
        assert!(check_role_change(Member, Viewer, Member).is_err());
        assert!(check_role_change(Owner, Admin, Owner).is_ok());
        assert!(check_removal(Viewer, Viewer, true).is_ok());
        assert!(check_removal(Member, Viewer, false).is_err());
        assert!(check_removal(Admin, Owner, false).is_err());
        assert!(check_removal(Admin, Admin, false).is_ok());
    }

    #[test]
    fn permission_table() {
        assert!(permits(Role::Viewer, Action::ReadOrg));
        assert!(!permits(Role::Viewer, Action::WriteWorkload));
        assert!(permits(Role::Member, Action::WriteWorkload));
        assert!(!permits(Role::Member, Action::ManageMembers));
        assert!(permits(Role::Admin, Action::ManageMembers));
        assert!(!permits(Role::Admin, Action::DeleteOrg));
        assert!(permits(Role::Owner, Action::DeleteOrg));
        assert!(!permits(Role::Admin, Action::TransferOwnership));
    }
}
