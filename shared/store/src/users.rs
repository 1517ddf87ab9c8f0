//! User profiles, keyed by the Cognito `sub`: created by the confirmation trigger (with the
//! email claim and, when configured, a personal org, all in one transaction) or lazily on
//! the first API call; last login; the one-query read behind token claims.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::{DomainError, Email, Identity, OrgId, OrgName, Role, UserId};
use serde::{Deserialize, Serialize};

use crate::entities::{Member, UserProfile};
use crate::item::{Item, from_item, s, to_item};
use crate::keys::{self, GSI1, GSI1PK, PROFILE_SK};
use crate::scope::OrgScope;
use crate::tx::{Expr, Tx};
use crate::{Store, tx};

/// What the confirmation trigger did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileOutcome {
    Created {
        personal_org: Option<OrgId>,
    },
    /// A retried or duplicated trigger: the profile was there already.
    AlreadyExists,
}

/// The email claim item: makes an address belong to one user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmailClaim {
    email: Email,
    user_id: UserId,
}

impl crate::item::Entity for EmailClaim {
    const TYPE: &'static str = "email";
}

/// The caller's memberships (and profile) as token claims need them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimsView {
    pub memberships: Vec<(OrgId, Role)>,
    /// More memberships exist than `cap`.
    pub truncated: bool,
    pub last_active_org: Option<OrgId>,
    pub platform_operator: bool,
}

/// A transaction holds at most 100 items: a login's own holds the profile's update and the
/// sign-in events of this many orgs.
pub const SIGN_IN_EVENTS_WITH_LOGIN: usize = 99;
/// Sign-in events per further transaction, for a member of more orgs.
pub const SIGN_IN_EVENTS_PER_TX: usize = 100;
/// The most orgs a login writes sign-in events in (10 transactions; the trigger answers
/// within Cognito's 5 seconds).
pub const SIGN_IN_EVENT_ORGS: usize = 1_000;

const PROFILE_EXISTS: DomainError = DomainError::Conflict("profile exists");
const EMAIL_TAKEN: DomainError = DomainError::Conflict("email belongs to another user");

impl Store {
    pub async fn get_user(&self, user: &UserId) -> Result<Option<UserProfile>, DomainError> {
        self.get(&keys::user_profile(user)).await
    }

    fn new_profile(&self, who: &Identity, display_name: Option<String>, personal_org: Option<OrgId>) -> UserProfile {
        let now = self.clock.rfc3339();
        UserProfile {
            user_id: who.user_id.clone(),
            email: who.email.clone(),
            display_name,
            created_at: now.clone(),
            updated_at: now,
            last_login_at: None,
            last_active_org: personal_org,
            personal_org,
            platform_operator: false,
            version: 1,
        }
    }

    fn profile_item(profile: &UserProfile) -> Result<Item, DomainError> {
        let mut indexes = vec![keys::user_profile_index(&profile.user_id)];
        indexes.extend(profile.email.as_ref().map(keys::user_by_email));
        to_item(profile, &keys::user_profile(&profile.user_id), &indexes)
    }

    /// The confirmation trigger's write: profile, email claim and (optionally) a personal org
    /// owned by the user, in one conditional transaction. A retried or duplicated trigger
    /// changes nothing and reports `AlreadyExists`.
    pub async fn create_profile(&self, who: &Identity, display_name: Option<String>, personal_org: Option<OrgName>) -> Result<ProfileOutcome, DomainError> {
        let mut claim_email = true;
        let org_id = OrgId::new();
        let mut attempt = 0;
        loop {
            let mut tx = Tx::default();
            let profile = self.new_profile(who, display_name.clone(), personal_org.as_ref().map(|_| org_id));
            tx.put(&self.table, Self::profile_item(&profile)?, Some(Expr::condition("attribute_not_exists(PK)")), PROFILE_EXISTS);
            if let (true, Some(email)) = (claim_email, &who.email) {
                let claim = EmailClaim { email: email.clone(), user_id: who.user_id.clone() };
                tx.put(
                    &self.table,
                    to_item(&claim, &keys::email_claim(email), &[])?,
                    Some(Expr::condition("attribute_not_exists(PK) OR #user = :user").name("#user", "userId").value(":user", s(who.user_id.as_str()))),
                    EMAIL_TAKEN,
                );
            }
            if let Some(name) = &personal_org {
                let base = Self::base_slug(name, org_id)?;
                let slug = Self::slug_attempt(&base, org_id, attempt)?;
                self.push_org_creation(&mut tx, who, display_name.clone(), org_id, name, slug)?;
            }
            match tx.run(self).await {
                Ok(()) => return Ok(ProfileOutcome::Created { personal_org: profile.personal_org }),
                Err(PROFILE_EXISTS) => return Ok(ProfileOutcome::AlreadyExists),
                Err(EMAIL_TAKEN) => {
                    // A stale claim of a deleted account: keep the user, log the clash.
                    tracing::warn!(user_id = %who.user_id, "email already claimed by another user id; profile created without the claim");
                    claim_email = false;
                }
                Err(DomainError::Conflict(crate::orgs::SLUG_TAKEN)) if attempt + 1 < crate::orgs::SLUG_ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The caller's profile, created from their verified claims when it is missing (a
    /// confirmation trigger that failed for good must not lock anybody out).
    pub async fn ensure_user(&self, who: &Identity) -> Result<UserProfile, DomainError> {
        if let Some(profile) = self.get_user(&who.user_id).await? {
            return Ok(profile);
        }
        let profile = self.new_profile(who, None, None);
        match self.put_new(Self::profile_item(&profile)?, PROFILE_EXISTS).await {
            Ok(()) => Ok(profile),
            // Created concurrently by another request or the trigger: read theirs.
            Err(PROFILE_EXISTS) => self.get_user(&who.user_id).await?.ok_or(DomainError::Unavailable),
            Err(e) => Err(e),
        }
    }

    /// Sets the caller's display name (`None` clears it).
    pub async fn set_display_name(&self, who: &Identity, name: Option<String>) -> Result<UserProfile, DomainError> {
        let mut profile = self.ensure_user(who).await?;
        profile.updated_at = self.clock.rfc3339();
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

    /// Remembers the org the caller last worked in (they are authorized in it).
    pub async fn set_last_active_org(&self, scope: &OrgScope) -> Result<(), DomainError> {
        let expr = Expr::update("SET #org = :org").when("attribute_exists(PK)").name("#org", "lastActiveOrg").value(":org", s(scope.org_id().to_string()));
        self.update_one(&keys::user_profile(scope.user_id()), expr, DomainError::NotFound).await
    }

    /// Records a login, with a `user.signed_in` event in each org the user is a member of
    /// (actor: the user; no request: Cognito's trigger has none). The login and the events of
    /// its first [`SIGN_IN_EVENTS_WITH_LOGIN`] orgs are one transaction; the events of further
    /// orgs follow in transactions of [`SIGN_IN_EVENTS_PER_TX`], concurrently, for at most
    /// [`SIGN_IN_EVENT_ORGS`] orgs in all (the rest are logged). Fails with `NotFound` when
    /// the profile does not exist (and then writes no event).
    pub async fn record_login(&self, user: &UserId) -> Result<(), DomainError> {
        let mut orgs = self.member_org_ids(user, SIGN_IN_EVENT_ORGS + 1).await?;
        if orgs.len() > SIGN_IN_EVENT_ORGS {
            orgs.truncate(SIGN_IN_EVENT_ORGS);
            tracing::warn!(user_id = %user, cap = SIGN_IN_EVENT_ORGS, "member of more orgs than sign-in events are written for");
        }
        let signed_in = |org: &OrgId| crate::events::DomainEvent::new(self, crate::events::EventKind::UserSignedIn, *org, user.as_str());
        let (first, rest) = orgs.split_at(orgs.len().min(SIGN_IN_EVENTS_WITH_LOGIN));
        let mut tx = Tx::default();
        let expr = Expr::update("SET #login = :now").when("attribute_exists(PK)").name("#login", "lastLoginAt").value(":now", s(self.clock.rfc3339()));
        tx.update(&self.table, &keys::user_profile(user), expr, DomainError::NotFound);
        for org in first {
            self.push_event(&mut tx, &signed_in(org))?;
        }
        tx.run(self).await?;
        let more = rest.chunks(SIGN_IN_EVENTS_PER_TX).map(|chunk| {
            let mut tx = Tx::default();
            let pushed: Result<(), DomainError> = chunk.iter().try_for_each(|org| self.push_event(&mut tx, &signed_in(org)));
            async move {
                pushed?;
                tx.run(self).await
            }
        });
        futures::future::try_join_all(more).await?;
        Ok(())
    }

    /// The ids of the orgs `user` is a member of (at most `max`), from their memberships' index
    /// entries.
    async fn member_org_ids(&self, user: &UserId, max: usize) -> Result<Vec<OrgId>, DomainError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .index_name(GSI1)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", GSI1PK)
                .expression_attribute_names("#sk", keys::GSI1SK)
                .expression_attribute_names("#org", "orgId")
                .expression_attribute_values(":pk", AttributeValue::S(keys::user_pk(user)))
                .expression_attribute_values(":prefix", AttributeValue::S(keys::MEMBERSHIP_PREFIX.to_owned()))
                .projection_expression("#org")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(tx::unexpected)?;
            for item in out.items.unwrap_or_default() {
                if let Some(org) = item.get("orgId").and_then(|v| v.as_s().ok()).and_then(|v| v.parse::<OrgId>().ok()) {
                    found.push(org);
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() || found.len() >= max {
                return Ok(found);
            }
        }
    }

    /// The user's memberships (at most `cap`) and profile flags, in one query: the profile's
    /// index entry sorts after every membership (`PROFILE` > `ORG#…`), so a descending query
    /// meets it first.
    pub async fn claims_view(&self, user: &UserId, cap: usize) -> Result<ClaimsView, DomainError> {
        let out = self
            .client
            .query()
            .table_name(&*self.table)
            .index_name(GSI1)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI1PK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::user_pk(user)))
            .scan_index_forward(false)
            .limit(i32::try_from(cap + 2).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(tx::unexpected)?;
        let mut view = ClaimsView { memberships: Vec::new(), truncated: false, last_active_org: None, platform_operator: false };
        for item in out.items.unwrap_or_default() {
            let sort = item.get(keys::GSI1SK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            if sort == PROFILE_SK {
                let profile: UserProfile = from_item(item)?;
                view.last_active_org = profile.last_active_org;
                view.platform_operator = profile.platform_operator;
            } else if view.memberships.len() < cap {
                let m: Member = from_item(item)?;
                view.memberships.push((m.org_id, m.role));
            } else {
                view.truncated = true;
            }
        }
        view.truncated |= out.last_evaluated_key.is_some() && view.memberships.len() >= cap;
        Ok(view)
    }
}
