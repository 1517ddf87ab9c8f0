//! User profiles, keyed by the Cognito `sub`.

use domain::{DomainError, Identity, UserId, now_rfc3339};

use crate::entities::UserProfile;
use crate::item::{s, to_item};
use crate::keys;
use crate::tx::Expr;
use crate::Store;

impl Store {
    pub async fn get_user(&self, user: &UserId) -> Result<Option<UserProfile>, DomainError> {
        self.get(&keys::user_profile(user)).await
    }

    /// The caller's profile, created from their verified claims when it is missing (a
    /// confirmation trigger that failed for good must not lock anybody out).
    pub async fn ensure_user(&self, who: &Identity) -> Result<UserProfile, DomainError> {
        if let Some(profile) = self.get_user(&who.user_id).await? {
            return Ok(profile);
        }
        let now = now_rfc3339();
        let profile = UserProfile {
            user_id: who.user_id.clone(),
            email: who.email.clone(),
            display_name: None,
            created_at: now.clone(),
            updated_at: now,
            last_login_at: None,
            last_active_org: None,
            version: 1,
        };
        let gsi = who.email.as_ref().map(keys::user_by_email);
        let item = to_item(&profile, &keys::user_profile(&who.user_id), gsi.as_ref())?;
        match self.put_new(item, DomainError::Conflict("profile exists")).await {
            Ok(()) => Ok(profile),
            // Created concurrently by another request or the trigger: read theirs.
            Err(DomainError::Conflict(_)) => self.get_user(&who.user_id).await?.ok_or(DomainError::Unavailable),
            Err(e) => Err(e),
        }
    }

    /// Sets the caller's display name (`None` clears it).
    pub async fn set_display_name(&self, who: &Identity, name: Option<String>) -> Result<UserProfile, DomainError> {
        let mut profile = self.ensure_user(who).await?;
        profile.updated_at = now_rfc3339();
        profile.version += 1;
        let expr = match &name {
            Some(n) => Expr::update("SET #name = :name, #updated = :now, #version = #version + :one").value(":name", s(n)),
            None => Expr::update("REMOVE #name SET #updated = :now, #version = #version + :one"),
        }
        .when("attribute_exists(PK)")
        .name("#name", "displayName")
        .name("#updated", "updatedAt")
        .name("#version", "version")
        .value(":now", s(&profile.updated_at))
        .value(":one", crate::item::n(1));
        self.update_one(&keys::user_profile(&who.user_id), expr, DomainError::NotFound).await?;
        profile.display_name = name;
        Ok(profile)
    }
}
