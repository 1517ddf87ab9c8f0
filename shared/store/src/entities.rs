//! The entities of the table. Their key composition lives in `keys.rs`; their attributes here.

use domain::{Email, OrgId, OrgSettings, Plan, Role, Slug, UserId};
use serde::{Deserialize, Serialize};

use crate::item::Entity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrgStatus {
    Active,
    Suspended,
    /// Deleted by its owner; unreachable, its items being purged.
    Deleting,
}

/// An organization, with its plan, settings and the counters its limits are checked against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub slug: Slug,
    pub plan: Plan,
    pub status: OrgStatus,
    pub settings: OrgSettings,
    pub created_by: UserId,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
    /// Owners among the members; never below one.
    pub owner_count: u64,
    pub member_count: u64,
    /// Members plus pending invitations: what the plan's member limit counts.
    pub seats_used: u64,
    /// The plan's member limit, kept on the item so that conditions compare attributes and
    /// a plan change takes effect atomically.
    pub seat_limit: u64,
    pub project_count: u64,
    /// Bytes of the org's uploaded files (their actual sizes).
    pub storage_bytes: u64,
    /// Bytes reserved for uploads that have not arrived yet.
    #[serde(default)]
    pub storage_reserved: u64,
    /// A platform operator's override of the plan's rate limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_override: Option<domain::RateOverride>,
}

impl Entity for Org {
    const TYPE: &'static str = "org";
}

/// Makes a slug unique across the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlugClaim {
    pub slug: Slug,
    pub org_id: OrgId,
}

impl Entity for SlugClaim {
    const TYPE: &'static str = "slug";
}

/// A user's membership in one organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub joined_at: String,
    /// How comments mention the member (`@handle`): derived once, when they join, from their
    /// email's local part (or name) and their user id, so it never changes.
    #[serde(default)]
    pub handle: String,
}

impl Member {
    pub(crate) fn new(org_id: OrgId, user_id: UserId, role: Role, email: Option<Email>, display_name: Option<String>, joined_at: String) -> Member {
        let handle = domain::work::member_handle(email.as_ref().map(Email::as_str), display_name.as_deref(), user_id.as_str());
        Member { org_id, user_id, role, email, display_name, joined_at, handle }
    }

    /// The member's handle (derived for a membership stored before handles existed).
    pub fn handle(&self) -> String {
        if self.handle.is_empty() {
            domain::work::member_handle(self.email.as_ref().map(Email::as_str), self.display_name.as_deref(), self.user_id.as_str())
        } else {
            self.handle.clone()
        }
    }
}

impl Entity for Member {
    const TYPE: &'static str = "member";
}

/// A user's profile, keyed by the Cognito `sub`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    pub user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_org: Option<OrgId>,
    /// The org created for the user at sign-up, when the platform does that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_org: Option<OrgId>,
    /// Set by the platform's operators; adds the `platform-admin` group to the user's tokens.
    #[serde(default)]
    pub platform_operator: bool,
    pub version: u64,
}

impl Entity for UserProfile {
    const TYPE: &'static str = "user";
}

/// Metered usage of one organization in one calendar month (UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageMonth {
    pub month: String,
    /// Chat tokens used (input and output).
    #[serde(default)]
    pub chat_tokens: u64,
    #[serde(default)]
    pub chat_input_tokens: u64,
    #[serde(default)]
    pub chat_output_tokens: u64,
    /// Tokens reserved by chat calls under way (signed: an update applied twice by a retry
    /// must not make the item unreadable).
    #[serde(default)]
    pub chat_reserved: i64,
    /// Model calls.
    #[serde(default)]
    pub chat_calls: u64,
    #[serde(default)]
    pub emails_sent: u64,
    #[serde(default)]
    pub invites_sent: u64,
}

impl Entity for UsageMonth {
    const TYPE: &'static str = "usage";
}

/// A metered counter of [`UsageMonth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageCounter {
    ChatTokens,
    EmailsSent,
    InvitesSent,
}

impl UsageCounter {
    pub(crate) fn attribute(self) -> &'static str {
        match self {
            UsageCounter::ChatTokens => "chatTokens",
            UsageCounter::EmailsSent => "emailsSent",
            UsageCounter::InvitesSent => "invitesSent",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InviteStatus {
    Pending,
    Accepted,
    Declined,
    Revoked,
    /// Set when an expired invitation is swept; expiry is also checked in code.
    Expired,
}

/// An invitation to join an org with a role. Only the SHA-256 of its token is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invite {
    pub id: String,
    pub org_id: OrgId,
    pub email: Email,
    pub role: Role,
    pub invited_by: UserId,
    pub status: InviteStatus,
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: String,
    /// `expires_at` as epoch seconds, compared in code.
    pub expires_epoch: i64,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub token_hash: String,
    /// Whether the last email was accepted by the mail service.
    pub delivered: bool,
    pub sends: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent_at: Option<String>,
    /// Epoch seconds of the last sends in the current hour window (resend limit).
    #[serde(default)]
    pub recent_sends: Vec<i64>,
    pub version: u64,
    /// The org's name when the invitation was sent (shown to the invitee).
    pub org_name: String,
}

impl Invite {
    /// Pending and not past its expiry, whatever TTL has or has not swept.
    pub fn is_open(&self, now_epoch: i64) -> bool {
        self.status == InviteStatus::Pending && now_epoch < self.expires_epoch
    }

    /// The invitation as stored just before its email goes out: counted as a send, assumed
    /// delivered until the mail service says otherwise.
    /// At most [`crate::RESENDS_PER_HOUR`] sends of one invitation in any hour, however they
    /// are asked for (a resend, or inviting the same address again).
    pub(crate) fn may_send_again(&self, now_epoch: i64) -> Result<(), domain::DomainError> {
        let recent: Vec<i64> = self.recent_sends.iter().copied().filter(|t| now_epoch - t < 3600).collect();
        if recent.len() < crate::RESENDS_PER_HOUR {
            return Ok(());
        }
        let oldest = recent.iter().min().copied().unwrap_or(now_epoch);
        Err(domain::DomainError::RateLimited {
            what: "sends of this invitation",
            retry_after_secs: u64::try_from((oldest + 3600 - now_epoch).max(1)).unwrap_or(1),
        })
    }

    pub(crate) fn about_to_send(mut self, now_epoch: i64) -> Invite {
        self.recent_sends.retain(|t| now_epoch - t < 3600);
        self.recent_sends.push(now_epoch);
        self.sends += 1;
        self.delivered = true;
        self.last_sent_at = Some(crate::invites::rfc3339_of(now_epoch));
        self
    }
}

impl Entity for Invite {
    const TYPE: &'static str = "invite";
}
