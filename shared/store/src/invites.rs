//! Invitations: what the Cognito triggers need of them (is an address invited, and by which
//! org's branding should its mail be dressed).

use aws_sdk_dynamodb::types::AttributeValue;
use domain::{DomainError, Email, OrgId, UserId};

use crate::entities::{Invite, Org, OrgStatus};
use crate::events::{DomainEvent, EventKind};
use crate::item::from_item;
use crate::keys::{self, GSI1, GSI1PK, GSI1SK, INVITE_PREFIX, PENDING_INVITES_PREFIX};
use crate::scope::OrgPartition;
use crate::{Store, tx};

/// How an org presents itself in mail to someone it invited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branding {
    pub org_name: String,
    pub logo_url: Option<String>,
}

impl Store {
    /// Pending invitations addressed to `email` whose sort key starts with `prefix` (all of
    /// them, page by page, until `enough` says so).
    pub(crate) async fn pending_to(&self, email: &Email, prefix: &str, enough: impl Fn(&[Invite]) -> bool) -> Result<Vec<Invite>, DomainError> {
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
                .expression_attribute_names("#sk", GSI1SK)
                .expression_attribute_values(":pk", AttributeValue::S(keys::email_pk(email)))
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(tx::unexpected)?;
            for item in out.items.unwrap_or_default() {
                found.push(from_item(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() || enough(&found) {
                return Ok(found);
            }
        }
    }

    /// Whether any org has an open invitation for `email` (invite-only sign-up).
    pub async fn has_open_invitation(&self, email: &Email) -> Result<bool, DomainError> {
        let now = self.clock.epoch();
        let open = |found: &[Invite]| found.iter().any(|i| i.is_open(now));
        Ok(open(&self.pending_to(email, PENDING_INVITES_PREFIX, open).await?))
    }

    /// The branding of `org` for mail to `email`, only when `org` has an open invitation for
    /// that address: the invitation is what allows reading the org here.
    pub async fn invitation_branding(&self, email: &Email, org: OrgId) -> Result<Option<Branding>, DomainError> {
        let prefix = keys::pending_invites_of_org_prefix(org);
        let org_key = keys::org(&OrgPartition::new(org));
        let (invites, org_item) = futures::join!(self.pending_to(email, &prefix, |_| true), self.get::<Org>(&org_key));
        let now = self.clock.epoch();
        if !invites?.iter().any(|i| i.is_open(now) && i.org_id == org) {
            return Ok(None);
        }
        Ok(org_item?
            .filter(|o| o.status == OrgStatus::Active)
            .map(|o| Branding { org_name: o.settings.display_name.clone().unwrap_or(o.name), logo_url: o.settings.logo_url }))
    }
}

// ---------------------------------------------------------------------------------------
// The invitation lifecycle: invite (or refresh), list, resend, revoke, accept, decline,
// expire. Seats: an open invitation holds one (`seatsUsed`); accepting turns it into a
// member (checked against `seatLimit` again); revoking, declining and expiring free it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{Action, Identity, Role};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::counters::Deltas;
use crate::entities::{InviteStatus, Member};
use crate::item::{av, n, s, to_item};
use crate::keys::{GSI2, GSI2PK, GSI2SK};
use crate::orgs::{require, require_member};
use crate::page::{Page, PageRequest, PagedQuery, Sort};
use crate::scope::{OrgScope, PendingScope, ReadScope};
use crate::tx::{Expr, Tx};

/// How long terminal invitations stay visible before TTL removes them.
const KEEP_TERMINAL_SECS: i64 = 30 * 24 * 3600;
/// Sends of one invitation allowed per rolling hour.
pub const RESENDS_PER_HOUR: usize = 3;

/// A fresh invitation token: 32 random bytes from the OS, base64url for the link; only its
/// SHA-256 is ever stored.
pub struct InviteToken {
    pub token: String,
    pub hash: String,
}

impl InviteToken {
    pub fn generate() -> Result<InviteToken, DomainError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| {
            tracing::error!(error = %e, "OS random generator failed");
            DomainError::Unavailable
        })?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hash = Self::hash_of(&token);
        Ok(InviteToken { token, hash })
    }

    /// The stored form of a token someone presents. Anything that is not a token of ours
    /// hashes to a key that does not exist.
    pub fn hash_of(token: &str) -> String {
        let digest = Sha256::digest(token.trim().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for InviteToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InviteToken(..)")
    }
}

/// The token item: what accepting needs, keyed by the token's hash, swept by TTL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenItem {
    org_id: OrgId,
    invite_id: String,
    email: Email,
    role: Role,
    expires_epoch: i64,
    ttl: i64,
    /// Who sent the invitation: accepting re-checks that they may still invite to its role.
    #[serde(default)]
    invited_by: Option<UserId>,
}

impl crate::item::Entity for TokenItem {
    const TYPE: &'static str = "invite-token";
}

/// What creating an invitation must know, read alongside the authorization.
#[derive(Debug, Clone, Default)]
pub struct InviteContext {
    pub already_member: bool,
    /// A pending invitation for the same address (expired or not): re-inviting refreshes it.
    pub pending: Option<Invite>,
}

/// What a new or refreshed invitation needs.
#[derive(Debug)]
pub struct NewInvite<'a> {
    pub email: Email,
    pub role: Role,
    pub token: &'a InviteToken,
    pub ttl_secs: i64,
}

pub(crate) fn seconds_to_utc_midnight(now: i64) -> u64 {
    // rem_euclid keeps it in 1..=86_400.
    u64::try_from(86_400 - now.rem_euclid(86_400)).unwrap_or(86_400)
}

pub(crate) fn day_key(now: i64) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH).date();
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

pub(crate) fn rfc3339_of(epoch: i64) -> String {
    rfc3339(epoch)
}

fn rfc3339(epoch: i64) -> String {
    domain::epoch_rfc3339(epoch).unwrap_or_default()
}

impl Store {
    /// Reads what [`Store::create_invite`] needs; run it inside `authorize_with`.
    pub async fn invite_context(&self, scope: &PendingScope, email: &Email) -> Result<InviteContext, DomainError> {
        let org = scope.partition().org_id();
        let member_key = keys::member_by_email(scope.partition(), email);
        let member_query = self
            .client
            .query()
            .table_name(&*self.table)
            .index_name(GSI2)
            .key_condition_expression("#pk = :pk AND #sk = :sk")
            .expression_attribute_names("#pk", GSI2PK)
            .expression_attribute_names("#sk", GSI2SK)
            .expression_attribute_values(":pk", AttributeValue::S(member_key.pk))
            .expression_attribute_values(":sk", AttributeValue::S(member_key.sk))
            .limit(1)
            .send();
        let prefix = keys::pending_invites_of_org_prefix(org);
        let (members, invites) = futures::join!(member_query, self.pending_to(email, &prefix, |_| true));
        let already_member = members.map_err(tx::unexpected)?.count > 0;
        let pending = invites?.into_iter().find(|i| i.status == InviteStatus::Pending && i.org_id == org);
        Ok(InviteContext { already_member, pending })
    }

    /// Invites `new.email`, or refreshes the pending invitation for it (new token and expiry;
    /// the old token dies). A new invitation takes a seat; both count towards the plan's
    /// invitations per day.
    pub async fn create_invite(&self, scope: &OrgScope, ctx: &InviteContext, new: NewInvite<'_>) -> Result<Invite, DomainError> {
        require(scope, Action::ManageInvites)?;
        require_member(scope)?;
        if new.role > scope.role() {
            return Err(DomainError::Forbidden("cannot invite to a role above your own"));
        }
        if ctx.already_member {
            return Err(DomainError::Conflict("already a member"));
        }
        if !scope.org.settings.admits(&new.email) {
            return Err(DomainError::invalid("email", "the organization takes members only from the domains in its allowedEmailDomains setting"));
        }
        let now = self.clock.epoch();
        let expires = now + new.ttl_secs;
        let mut tx = Tx::default();
        let invite = match &ctx.pending {
            Some(old) => {
                // Inviting a pending address again sends mail again: the same hourly limit as
                // a resend.
                old.may_send_again(now)?;
                let invite = Invite {
                    role: new.role,
                    invited_by: scope.user.clone(),
                    updated_at: self.clock.rfc3339(),
                    expires_at: rfc3339(expires),
                    expires_epoch: expires,
                    token_hash: new.token.hash.clone(),
                    version: old.version + 1,
                    org_name: scope.org.name.clone(),
                    ..old.clone()
                }
                .about_to_send(now);
                self.replace_invite(&mut tx, scope, old, &invite)?;
                // Sent again, with a new token (and the role asked for now).
                self.push_event(&mut tx, &DomainEvent::of_invitation(self, EventKind::InvitationResent, &invite, scope.user.as_str()))?;
                invite
            }
            None => {
                let invite = Invite {
                    id: ulid::Ulid::new().to_string(),
                    org_id: scope.org_id(),
                    email: new.email.clone(),
                    role: new.role,
                    invited_by: scope.user.clone(),
                    status: InviteStatus::Pending,
                    created_at: self.clock.rfc3339(),
                    updated_at: self.clock.rfc3339(),
                    expires_at: rfc3339(expires),
                    expires_epoch: expires,
                    token_hash: new.token.hash.clone(),
                    delivered: false,
                    sends: 0,
                    last_sent_at: None,
                    recent_sends: Vec::new(),
                    version: 1,
                    org_name: scope.org.name.clone(),
                }
                .about_to_send(now);
                tx.put(
                    &self.table,
                    to_item(&invite, &keys::invite(&scope.partition, &invite.id), &keys::invite_indexes(&scope.partition, &invite))?,
                    Some(Expr::condition("attribute_not_exists(PK)")),
                    DomainError::Conflict("invitation id collision"),
                );
                self.put_token(&mut tx, scope, &invite)?;
                self.org_counters(&mut tx, &scope.partition, Deltas { seats: 1, ..Deltas::default() });
                self.push_event(&mut tx, &DomainEvent::of_invitation(self, EventKind::InvitationCreated, &invite, scope.user.as_str()))?;
                invite
            }
        };
        self.count_daily_invite(&mut tx, scope, now);
        self.count_received_invite(&mut tx, &invite.email, now);
        tx.run(self).await?;
        Ok(invite)
    }

    fn put_token(&self, tx: &mut Tx, scope: &OrgScope, invite: &Invite) -> Result<(), DomainError> {
        let token = TokenItem {
            org_id: invite.org_id,
            invite_id: invite.id.clone(),
            email: invite.email.clone(),
            role: invite.role,
            expires_epoch: invite.expires_epoch,
            // kept a day past expiry so that late clicks get the same answer as wrong tokens
            ttl: invite.expires_epoch + 86_400,
            invited_by: Some(invite.invited_by.clone()),
        };
        let _ = scope;
        tx.put(
            &self.table,
            to_item(&token, &keys::invite_token(&invite.token_hash), &[])?,
            Some(Expr::condition("attribute_not_exists(PK)")),
            DomainError::Conflict("token collision"),
        );
        Ok(())
    }

    /// Writes `new` over `old` (same invitation, new token), killing the old token.
    fn replace_invite(&self, tx: &mut Tx, scope: &OrgScope, old: &Invite, new: &Invite) -> Result<(), DomainError> {
        tx.put(
            &self.table,
            to_item(new, &keys::invite(&scope.partition, &new.id), &keys::invite_indexes(&scope.partition, new))?,
            Some(
                Expr::condition("#version = :version AND #status = :pending")
                    .name("#version", "version")
                    .name("#status", "status")
                    .value(":version", n(old.version))
                    .value(":pending", av(&InviteStatus::Pending)),
            ),
            DomainError::Conflict("the invitation changed meanwhile; reload and try again"),
        );
        tx.delete(&self.table, &keys::invite_token(&old.token_hash), None, DomainError::Unavailable);
        self.put_token(tx, scope, new)
    }

    fn count_daily_invite(&self, tx: &mut Tx, scope: &OrgScope, now: i64) {
        let limit = scope.org.plan.limits().invites_per_day;
        let key = keys::daily_invites(&scope.partition, &day_key(now));
        self.count_daily(tx, &key, limit, now, DomainError::RateLimited { what: "invitations today", retry_after_secs: seconds_to_utc_midnight(now) });
    }

    /// Counts a mail to `email` against the platform's daily cap per recipient, across orgs.
    fn count_received_invite(&self, tx: &mut Tx, email: &Email, now: i64) {
        self.count_daily(
            tx,
            &keys::invites_received(email, &day_key(now)),
            self.limits.invites_per_recipient_per_day,
            now,
            DomainError::RateLimited { what: "invitations to this address today", retry_after_secs: seconds_to_utc_midnight(now) },
        );
    }

    /// Adds one to a per-day counter item (kept two days), refused with `on_limit` at `limit`.
    pub(crate) fn count_daily(&self, tx: &mut Tx, key: &keys::Key, limit: u64, now: i64, on_limit: DomainError) {
        let expr = Expr::update("SET #type = :type, #ttl = :ttl ADD #count :one")
            .when("attribute_not_exists(#count) OR #count < :limit")
            .name("#type", "_type")
            .name("#ttl", "ttl")
            .name("#count", "count")
            .value(":type", s("daily-count"))
            .value(":ttl", AttributeValue::N((now + 2 * 86_400).to_string()))
            .value(":one", n(1))
            .value(":limit", n(limit));
        tx.update(&self.table, key, expr, on_limit);
    }

    /// Records that the email of an invitation could not be sent: it stays pending and
    /// visible, marked not delivered (a successful send was recorded with the write that
    /// preceded it, so the happy path costs no extra write).
    pub async fn record_send_failure(&self, scope: &OrgScope, invite: &Invite) -> Result<Invite, DomainError> {
        let expr = Expr::update("SET #delivered = :no")
            .when("#hash = :hash")
            .name("#delivered", "delivered")
            .name("#hash", "tokenHash")
            .value(":no", AttributeValue::Bool(false))
            .value(":hash", s(&invite.token_hash));
        self.update_one(&keys::invite(&scope.partition, &invite.id), expr, DomainError::Conflict("the invitation changed meanwhile")).await?;
        Ok(Invite { delivered: false, ..invite.clone() })
    }

    pub async fn get_invite(&self, scope: &impl ReadScope, id: &str) -> Result<Option<Invite>, DomainError> {
        if ulid::Ulid::from_string(id).is_err() {
            return Ok(None);
        }
        self.get(&keys::invite(scope.partition(), id)).await
    }

    /// An org's invitations, newest first, optionally of one status. Expired pending ones
    /// show as expired; [`Store::expire_stale_invites`] then frees their seats.
    pub async fn list_invites(&self, scope: &impl ReadScope, status: Option<InviteStatus>, page: &PageRequest) -> Result<Page<Invite>, DomainError> {
        let partition = keys::org_pk(scope.partition());
        let mut found: Page<Invite> = self.query_page(&PagedQuery::on_table("invites", &partition, Sort::Prefix(INVITE_PREFIX)).newest_first(), page).await?;
        let now = self.clock.epoch();
        for invite in found.items.iter_mut() {
            if invite.status == InviteStatus::Pending && !invite.is_open(now) {
                invite.status = InviteStatus::Expired;
            }
        }
        if let Some(status) = status {
            found.items.retain(|i| i.status == status);
        }
        Ok(found)
    }

    /// Expires the listed invitations that are past their expiry but still stored as
    /// pending, freeing their seats (only when there are any: no extra round trip otherwise).
    pub async fn expire_stale_invites(&self, scope: &OrgScope, listed: &[Invite]) -> Result<(), DomainError> {
        require(scope, Action::ManageInvites)?;
        let stale: Vec<&Invite> = listed.iter().filter(|i| i.status == InviteStatus::Expired && !i.token_hash.is_empty()).collect();
        let results = futures::future::join_all(stale.iter().map(|i| self.expire_invite(&scope.partition, i))).await;
        for (invite, result) in stale.iter().zip(results) {
            if let Err(e) = result {
                tracing::warn!(error = %e, invite_id = %invite.id, "could not expire an invitation");
            }
        }
        Ok(())
    }

    /// Expires every pending invitation past its expiry, in every org, freeing its seat
    /// (the scheduled sweep: a team's seats come back without anyone listing its
    /// invitations). Answers how many it expired; at most `max` per call.
    pub async fn expire_due_invites(&self, max: usize) -> Result<usize, DomainError> {
        let now = self.clock.epoch();
        let mut expired = 0;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .index_name(GSI2)
                .key_condition_expression("#pk = :pk AND #sk < :now")
                .expression_attribute_names("#pk", GSI2PK)
                .expression_attribute_names("#sk", GSI2SK)
                .expression_attribute_values(":pk", s(keys::INVITE_EXPIRY_PK))
                // Every entry of an epoch at or before now sorts below the next second.
                .expression_attribute_values(":now", s(keys::invite_expiry_sk(now + 1)))
                .limit(100)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(tx::unexpected)?;
            let due: Vec<Invite> = out.items.unwrap_or_default().into_iter().map(from_item).collect::<Result<_, _>>()?;
            // The invitation names its org: being due is what lets the sweep reach it.
            let partitions: Vec<crate::scope::OrgPartition> = due.iter().map(|i| crate::scope::OrgPartition::new(i.org_id)).collect();
            let results = futures::future::join_all(due.iter().zip(&partitions).map(|(i, p)| self.expire_invite(p, i))).await;
            for (invite, result) in due.iter().zip(results) {
                match result {
                    Ok(()) => expired += 1,
                    Err(e) => tracing::warn!(error = %e, invite_id = %invite.id, "could not expire an invitation; the next sweep retries"),
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() || expired >= max {
                return Ok(expired);
            }
        }
    }

    /// Marks an expired pending invitation expired, freeing its seat and killing its token.
    async fn expire_invite(&self, partition: &crate::scope::OrgPartition, invite: &Invite) -> Result<(), DomainError> {
        let mut tx = Tx::default();
        tx.update(
            &self.table,
            &keys::invite(partition, &invite.id),
            Expr::update("SET #status = :expired, #ttl = :ttl, #byEmail = :closed REMOVE #expiryPk, #expirySk, #hash")
                .when("#status = :pending AND #expires <= :now")
                .name("#byEmail", GSI1SK)
                .name("#expiryPk", GSI2PK)
                .name("#expirySk", GSI2SK)
                .name("#hash", "tokenHash")
                .value(":closed", s(keys::closed_invite_by_email_sk(partition.org_id(), &invite.id)))
                .name("#status", "status")
                .name("#ttl", "ttl")
                .name("#expires", "expiresEpoch")
                .value(":expired", av(&InviteStatus::Expired))
                .value(":pending", av(&InviteStatus::Pending))
                .value(":now", AttributeValue::N(self.clock.epoch().to_string()))
                .value(":ttl", AttributeValue::N((self.clock.epoch() + KEEP_TERMINAL_SECS).to_string())),
            DomainError::Conflict("not pending"),
        )
        .delete(&self.table, &keys::invite_token(&invite.token_hash), None, DomainError::Unavailable);
        self.org_counters(&mut tx, partition, Deltas { seats: -1, ..Deltas::default() });
        match tx.run(self).await {
            Ok(()) | Err(DomainError::Conflict("not pending")) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A new token for an open invitation (the old one dies), at most
    /// [`RESENDS_PER_HOUR`] sends per hour.
    pub async fn resend_invite(&self, scope: &OrgScope, invite: &Invite, token: &InviteToken, ttl_secs: i64) -> Result<Invite, DomainError> {
        require(scope, Action::ManageInvites)?;
        require_member(scope)?;
        let now = self.clock.epoch();
        if invite.status != InviteStatus::Pending {
            return Err(DomainError::Conflict("the invitation is no longer pending"));
        }
        // Whoever sends the invitation again vouches for it from now on (accepting re-checks
        // the sender), so they must be able to invite to its role themselves.
        if invite.role > scope.role() {
            return Err(DomainError::Forbidden("cannot invite to a role above your own"));
        }
        invite.may_send_again(now)?;
        let expires = now + ttl_secs;
        let new = Invite {
            token_hash: token.hash.clone(),
            expires_epoch: expires,
            expires_at: rfc3339(expires),
            updated_at: self.clock.rfc3339(),
            version: invite.version + 1,
            invited_by: scope.user.clone(),
            ..invite.clone()
        }
        .about_to_send(now);
        let mut tx = Tx::default();
        self.replace_invite(&mut tx, scope, invite, &new)?;
        self.count_received_invite(&mut tx, &new.email, now);
        self.push_event(&mut tx, &DomainEvent::of_invitation(self, EventKind::InvitationResent, &new, scope.user.as_str()))?;
        tx.run(self).await?;
        Ok(new)
    }

    /// Revokes an open invitation, freeing its seat.
    pub async fn revoke_invite(&self, scope: &OrgScope, invite: &Invite) -> Result<(), DomainError> {
        require(scope, Action::ManageInvites)?;
        require_member(scope)?;
        if invite.status != InviteStatus::Pending {
            return Err(DomainError::Conflict("the invitation is no longer pending"));
        }
        let revoked = DomainEvent::of_invitation(self, EventKind::InvitationRevoked, invite, scope.user.as_str());
        self.close_invite(&scope.partition, &invite.id, &invite.token_hash, InviteStatus::Revoked, None, &revoked).await
    }

    /// Moves a pending invitation to a terminal status, kills its token and frees its seat,
    /// with `event`; with `email`, only when addressed to it (decline).
    async fn close_invite(
        &self,
        partition: &crate::scope::OrgPartition,
        id: &str,
        token_hash: &str,
        status: InviteStatus,
        email: Option<&Email>,
        event: &DomainEvent,
    ) -> Result<(), DomainError> {
        let mut expr = Expr::update("SET #status = :status, #ttl = :ttl, #updated = :now, #byEmail = :closed REMOVE #expiryPk, #expirySk")
            .when("#status = :pending AND #hash = :hash")
            .name("#byEmail", GSI1SK)
            .name("#expiryPk", GSI2PK)
            .name("#expirySk", GSI2SK)
            .value(":closed", s(keys::closed_invite_by_email_sk(partition.org_id(), id)))
            .name("#status", "status")
            .name("#ttl", "ttl")
            .name("#updated", "updatedAt")
            .name("#hash", "tokenHash")
            .value(":status", av(&status))
            .value(":pending", av(&InviteStatus::Pending))
            .value(":hash", s(token_hash))
            .value(":now", s(self.clock.rfc3339()))
            .value(":ttl", AttributeValue::N((self.clock.epoch() + KEEP_TERMINAL_SECS).to_string()));
        if let Some(email) = email {
            expr = expr.when("#status = :pending AND #hash = :hash AND #email = :email").name("#email", "email").value(":email", s(email.as_str()));
        }
        let mut tx = Tx::default();
        tx.update(&self.table, &keys::invite(partition, id), expr, DomainError::NotFound).delete(
            &self.table,
            &keys::invite_token(token_hash),
            Some(Expr::condition("attribute_exists(PK)")),
            DomainError::NotFound,
        );
        self.org_counters(&mut tx, partition, Deltas { seats: -1, ..Deltas::default() });
        self.push_event(&mut tx, event)?;
        tx.run(self).await
    }

    /// Pending invitations addressed to `email`, in any org, a page at a time (only pending
    /// ones are read; one that expired since is left out until the sweep closes it).
    pub async fn pending_invites_for(&self, email: &Email, page: &PageRequest) -> Result<Page<Invite>, DomainError> {
        let partition = keys::email_pk(email);
        let query = PagedQuery::on_index("pending-invites", keys::Gsi::One, &partition, Sort::Prefix(PENDING_INVITES_PREFIX));
        let mut found: Page<Invite> = self.query_page(&query, page).await?;
        let now = self.clock.epoch();
        found.items.retain(|i| i.is_open(now));
        Ok(found)
    }

    async fn token(&self, token: &str) -> Result<TokenItem, DomainError> {
        let hash = InviteToken::hash_of(token);
        self.get::<TokenItem>(&keys::invite_token(&hash)).await?.ok_or(DomainError::NotFound)
    }

    /// Accepts an invitation with its token: in one transaction the invitation (pending,
    /// unexpired, addressed to the caller's verified email) is consumed and the membership
    /// created, within the plan's member limit. Wrong, expired, revoked or used tokens:
    /// `NotFound`, all alike.
    pub async fn accept_invite(&self, who: &Identity, token: &str) -> Result<Member, DomainError> {
        let email = match (&who.email, who.email_verified) {
            (Some(e), true) => e.clone(),
            _ => return Err(DomainError::EmailNotVerified),
        };
        let (item, profile) = futures::join!(self.token(token), self.get_user(&who.user_id));
        let item = item?;
        let hash = InviteToken::hash_of(token);
        let now = self.clock.epoch();
        if item.email != email || now >= item.expires_epoch {
            return Err(DomainError::NotFound);
        }
        // The token names the org: holding it is what lets this caller reach the partition.
        let partition = crate::scope::OrgPartition::new(item.org_id);
        let member = Member::new(
            item.org_id,
            who.user_id.clone(),
            item.role,
            Some(email.clone()),
            profile.ok().flatten().and_then(|p| p.display_name),
            self.clock.rfc3339(),
        );
        let mut tx = Tx::default();
        tx.update(
            &self.table,
            &keys::invite(&partition, &item.invite_id),
            Expr::update("SET #status = :accepted, #ttl = :ttl, #updated = :nowText, #by = :by, #byEmail = :closed REMOVE #expiryPk, #expirySk")
                .when("#status = :pending AND #hash = :hash AND #email = :email AND #expires > :now")
                .name("#status", "status")
                .name("#ttl", "ttl")
                .name("#updated", "updatedAt")
                .name("#by", "acceptedBy")
                .name("#hash", "tokenHash")
                .name("#email", "email")
                .name("#expires", "expiresEpoch")
                .name("#byEmail", GSI1SK)
                .name("#expiryPk", GSI2PK)
                .name("#expirySk", GSI2SK)
                .value(":closed", s(keys::closed_invite_by_email_sk(item.org_id, &item.invite_id)))
                .value(":accepted", av(&InviteStatus::Accepted))
                .value(":pending", av(&InviteStatus::Pending))
                .value(":hash", s(&hash))
                // The invitation's own spelling: the caller's matched it case-folded above.
                .value(":email", s(item.email.as_str()))
                .value(":now", AttributeValue::N(now.to_string()))
                .value(":nowText", s(self.clock.rfc3339()))
                .value(":by", s(who.user_id.as_str()))
                .value(":ttl", AttributeValue::N((now + KEEP_TERMINAL_SECS).to_string())),
            DomainError::NotFound,
        )
        .delete(&self.table, &keys::invite_token(&hash), Some(Expr::condition("attribute_exists(PK)")), DomainError::NotFound)
        .put(
            &self.table,
            to_item(&member, &keys::member(&partition, &who.user_id), &keys::member_indexes(&partition, &member))?,
            Some(Expr::condition("attribute_not_exists(PK)")),
            DomainError::Conflict("already a member"),
        );
        // The org's allowed domains, if it has any, must admit the address when it joins.
        let admitted = Expr::condition("attribute_not_exists(#settings.#domains) OR size(#settings.#domains) = :none OR contains(#settings.#domains, :domain)")
            .name("#settings", "settings")
            .name("#domains", "allowedEmailDomains")
            .value(":none", n(0))
            .value(":domain", s(email.domain()));
        self.org_counters_when(&mut tx, &partition, Deltas { members: 1, owners: i64::from(item.role == Role::Owner), seats: 0 }, Some(admitted));
        // An invitation is only as good as its sender's authority: the inviter must still be a
        // member whose role may invite to this role (removed or demoted since: the same 404 as
        // any unusable invitation).
        if let Some(inviter) = &item.invited_by {
            if *inviter == who.user_id {
                return Err(DomainError::Conflict("already a member"));
            }
            let allowed: Vec<Role> = [Role::Owner, Role::Admin].into_iter().filter(|r| domain::permits(*r, Action::ManageInvites) && *r >= item.role).collect();
            let mut check = Expr::condition("attribute_exists(PK) AND #role IN (:r0, :r1)").name("#role", "role");
            for (i, placeholder) in [":r0", ":r1"].into_iter().enumerate() {
                // With one allowed role, both placeholders name it.
                let role = allowed.get(i).or(allowed.first()).copied().unwrap_or(Role::Owner);
                check = check.value(placeholder, av(&role));
            }
            tx.check(&self.table, &keys::member(&partition, inviter), check, DomainError::NotFound);
        }
        let actor = who.user_id.as_str();
        self.push_event(&mut tx, &DomainEvent::of_member(self, EventKind::MemberJoined, item.org_id, &who.user_id, item.role, actor))?;
        let accepted = DomainEvent {
            inviter: item.invited_by.clone(),
            invitation_id: Some(item.invite_id.clone()),
            ..DomainEvent::of_member(self, EventKind::InvitationAccepted, item.org_id, &who.user_id, item.role, actor)
        };
        self.push_event(&mut tx, &accepted)?;
        match tx.run(self).await {
            Ok(()) => Ok(member),
            // The org update failed: a full plan, or a domain the org does not take, which
            // answers like any unusable invitation (a read on this failure path only).
            Err(DomainError::LimitReached(what)) => {
                let org: Option<Org> = self.get(&keys::org(&partition)).await?;
                if org.is_some_and(|o| !o.settings.admits(&email)) { Err(DomainError::NotFound) } else { Err(DomainError::LimitReached(what)) }
            }
            Err(e) => Err(e),
        }
    }

    /// Declines an invitation with its token, freeing its seat.
    pub async fn decline_invite(&self, who: &Identity, token: &str) -> Result<(), DomainError> {
        let email = match (&who.email, who.email_verified) {
            (Some(e), true) => e.clone(),
            _ => return Err(DomainError::EmailNotVerified),
        };
        let item = self.token(token).await?;
        if item.email != email {
            return Err(DomainError::NotFound);
        }
        let partition = crate::scope::OrgPartition::new(item.org_id);
        let declined = DomainEvent {
            invitation_id: Some(item.invite_id.clone()),
            role: Some(item.role),
            inviter: item.invited_by.clone(),
            ..DomainEvent::new(self, EventKind::InvitationDeclined, item.org_id, who.user_id.as_str())
        };
        // Conditioned on the invitation's own spelling (the caller's matched it case-folded).
        self.close_invite(&partition, &item.invite_id, &InviteToken::hash_of(token), InviteStatus::Declined, Some(&item.email), &declined).await
    }
}
