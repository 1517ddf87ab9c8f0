//! Invitations: what the Cognito triggers need of them (is an address invited, and by which
//! org's branding should its mail be dressed).

use aws_sdk_dynamodb::types::AttributeValue;
use domain::{DomainError, Email, OrgId};

use crate::entities::{Invite, Org, OrgStatus};
use crate::item::from_item;
use crate::keys::{self, GSI1, GSI1PK, GSI1SK, INVITE_PREFIX};
use crate::scope::OrgPartition;
use crate::{Store, tx};

/// How an org presents itself in mail to someone it invited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branding {
    pub org_name: String,
    pub logo_url: Option<String>,
}

pub(crate) fn epoch_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Store {
    /// Invitations addressed to `email` whose sort key starts with `prefix`.
    async fn invites_to(&self, email: &Email, prefix: &str) -> Result<Vec<Invite>, DomainError> {
        let out = self
            .client
            .query()
            .table_name(&*self.table)
            .index_name(GSI1)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", GSI1PK)
            .expression_attribute_names("#sk", GSI1SK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::email_pk(email)))
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
            .limit(100)
            .send()
            .await
            .map_err(tx::unexpected)?;
        out.items.unwrap_or_default().into_iter().map(from_item).collect()
    }

    /// Whether any org has an open invitation for `email` (invite-only sign-up).
    pub async fn has_open_invitation(&self, email: &Email) -> Result<bool, DomainError> {
        let now = epoch_now();
        Ok(self.invites_to(email, INVITE_PREFIX).await?.iter().any(|i| i.is_open(now)))
    }

    /// The branding of `org` for mail to `email`, only when `org` has an open invitation for
    /// that address: the invitation is what allows reading the org here.
    pub async fn invitation_branding(&self, email: &Email, org: OrgId) -> Result<Option<Branding>, DomainError> {
        let prefix = keys::invites_of_org_prefix(org);
        let org_key = keys::org(&OrgPartition::new(org));
        let (invites, org_item) = futures::join!(self.invites_to(email, &prefix), self.get::<Org>(&org_key));
        let now = epoch_now();
        if !invites?.iter().any(|i| i.is_open(now) && i.org_id == org) {
            return Ok(None);
        }
        Ok(org_item?.filter(|o| o.status == OrgStatus::Active).map(|o| Branding {
            org_name: o.settings.display_name.clone().unwrap_or(o.name),
            logo_url: o.settings.logo_url,
        }))
    }
}
