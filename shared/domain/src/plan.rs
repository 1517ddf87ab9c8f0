//! Plans and their limits: one table, read by every function that enforces one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::rate::{ClassLimits, RateLimits};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Plan {
    Free,
    Starter,
    Professional,
    Enterprise,
}

/// The limits of one plan. Seats count members plus pending invitations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub max_members: u64,
    pub max_projects: u64,
    pub storage_bytes: u64,
    pub chat_tokens_per_month: u64,
    pub max_upload_bytes: u64,
    pub invites_per_day: u64,
    /// Rows of one CSV import of tasks.
    pub import_rows: u64,
    /// Bytes of one CSV import of tasks.
    pub import_bytes: u64,
    /// Days an in-app notification is kept (then it expires).
    pub notification_retention_days: u32,
    /// Days an audit log entry is kept (then it expires).
    pub audit_retention_days: u32,
    /// The file types (MIME types, told from the bytes) that may be uploaded; any other type
    /// is quarantined.
    pub file_types: &'static [&'static str],
    /// Requests per minute, per org and per member, on the whole API and on the expensive
    /// routes.
    pub rate_limits: RateLimits,
}

/// Images, PDF and text: what every plan may upload.
const BASIC_FILE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain", "text/markdown", "text/csv"];
/// Paid plans add Word documents: every type there is.
pub(crate) const ALL_FILE_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
];

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

impl Plan {
    pub const ALL: [Plan; 4] = [Plan::Free, Plan::Starter, Plan::Professional, Plan::Enterprise];

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "FREE",
            Plan::Starter => "STARTER",
            Plan::Professional => "PROFESSIONAL",
            Plan::Enterprise => "ENTERPRISE",
        }
    }

    pub const fn limits(self) -> Limits {
        match self {
            Plan::Free => Limits {
                max_members: 5,
                max_projects: 3,
                storage_bytes: GIB,
                chat_tokens_per_month: 100_000,
                max_upload_bytes: 10 * MIB,
                invites_per_day: 20,
                import_rows: 1_000,
                import_bytes: MIB,
                notification_retention_days: 30,
                audit_retention_days: 30,
                file_types: BASIC_FILE_TYPES,
                rate_limits: RateLimits {
                    org: ClassLimits { requests: 600, chat_messages: 20, uploads: 30, invitations: 10, exports: 2, imports: 5 },
                    user: ClassLimits { requests: 300, chat_messages: 10, uploads: 15, invitations: 5, exports: 1, imports: 2 },
                },
            },
            Plan::Starter => Limits {
                max_members: 25,
                max_projects: 25,
                storage_bytes: 25 * GIB,
                chat_tokens_per_month: 2_000_000,
                max_upload_bytes: 100 * MIB,
                invites_per_day: 100,
                import_rows: 5_000,
                import_bytes: 2 * MIB,
                notification_retention_days: 90,
                audit_retention_days: 90,
                file_types: ALL_FILE_TYPES,
                rate_limits: RateLimits {
                    org: ClassLimits { requests: 1_200, chat_messages: 60, uploads: 120, invitations: 30, exports: 5, imports: 10 },
                    user: ClassLimits { requests: 300, chat_messages: 20, uploads: 30, invitations: 10, exports: 2, imports: 5 },
                },
            },
            Plan::Professional => Limits {
                max_members: 200,
                max_projects: 500,
                storage_bytes: 250 * GIB,
                chat_tokens_per_month: 20_000_000,
                max_upload_bytes: 1024 * MIB,
                invites_per_day: 500,
                import_rows: 10_000,
                import_bytes: 4 * MIB,
                notification_retention_days: 180,
                audit_retention_days: 365,
                file_types: ALL_FILE_TYPES,
                rate_limits: RateLimits {
                    org: ClassLimits { requests: 3_000, chat_messages: 200, uploads: 300, invitations: 60, exports: 10, imports: 20 },
                    user: ClassLimits { requests: 600, chat_messages: 40, uploads: 60, invitations: 20, exports: 3, imports: 5 },
                },
            },
            Plan::Enterprise => Limits {
                max_members: 10_000,
                max_projects: 100_000,
                storage_bytes: 10_240 * GIB,
                chat_tokens_per_month: 500_000_000,
                max_upload_bytes: 5 * GIB,
                invites_per_day: 5_000,
                import_rows: 20_000,
                import_bytes: 8 * MIB,
                notification_retention_days: 365,
                audit_retention_days: 730,
                file_types: ALL_FILE_TYPES,
                rate_limits: RateLimits {
                    org: ClassLimits { requests: 10_000, chat_messages: 1_000, uploads: 1_000, invitations: 200, exports: 20, imports: 60 },
                    user: ClassLimits { requests: 1_200, chat_messages: 60, uploads: 120, invitations: 40, exports: 5, imports: 10 },
                },
            },
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Plan {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Plan::ALL.into_iter().find(|p| p.as_str() == s).ok_or(())
    }
}

/// Limits of the platform rather than of an org's plan: they stop one user (or a few orgs)
/// from using the platform to send mail at scale. Set per deployment (CDK context, passed to
/// the functions' environment); these are the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformLimits {
    /// Orgs one user may create per UTC day (`ORGS_PER_USER_PER_DAY`): without it the plan's
    /// invitations per day would multiply by orgs.
    pub orgs_per_user_per_day: u64,
    /// Invitation mails one address may receive per UTC day, from all orgs together
    /// (`INVITES_PER_RECIPIENT_PER_DAY`).
    pub invites_per_recipient_per_day: u64,
    /// Multiplies every rate limit (`RATE_LIMIT_MULTIPLIER`, default 1): a local stack or a
    /// load test may be generous; production keeps the plans' numbers.
    pub rate_limit_multiplier: u64,
}

impl Default for PlatformLimits {
    fn default() -> Self {
        PlatformLimits { orgs_per_user_per_day: 5, invites_per_recipient_per_day: 10, rate_limit_multiplier: 1 }
    }
}

impl PlatformLimits {
    pub const ORGS_PER_USER_PER_DAY_ENV: &'static str = "ORGS_PER_USER_PER_DAY";
    pub const INVITES_PER_RECIPIENT_PER_DAY_ENV: &'static str = "INVITES_PER_RECIPIENT_PER_DAY";
    pub const RATE_LIMIT_MULTIPLIER_ENV: &'static str = "RATE_LIMIT_MULTIPLIER";

    /// The defaults, with each variable that `var` finds and that is a positive number.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> PlatformLimits {
        let d = PlatformLimits::default();
        let num = |name: &str, default: u64| var(name).and_then(|v| v.trim().parse::<u64>().ok()).filter(|n| *n > 0).unwrap_or(default);
        PlatformLimits {
            orgs_per_user_per_day: num(Self::ORGS_PER_USER_PER_DAY_ENV, d.orgs_per_user_per_day),
            invites_per_recipient_per_day: num(Self::INVITES_PER_RECIPIENT_PER_DAY_ENV, d.invites_per_recipient_per_day),
            rate_limit_multiplier: num(Self::RATE_LIMIT_MULTIPLIER_ENV, d.rate_limit_multiplier),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn platform_limits_come_from_the_environment_or_default() {
        let l = super::PlatformLimits::from_vars(|n| (n == "ORGS_PER_USER_PER_DAY").then(|| " 2 ".to_owned()));
        assert_eq!((l.orgs_per_user_per_day, l.invites_per_recipient_per_day), (2, 10));
        let l = super::PlatformLimits::from_vars(|_| Some("0".to_owned()));
        assert_eq!(l, super::PlatformLimits::default(), "zero or junk: the default");
    }

    use super::*;

    #[test]
    fn higher_plans_never_limit_more() {
        for pair in Plan::ALL.windows(2) {
            let (lo, hi) = (pair[0].limits(), pair[1].limits());
            assert!(hi.max_members > lo.max_members);
            assert!(hi.max_projects > lo.max_projects);
            assert!(hi.storage_bytes > lo.storage_bytes);
            assert!(hi.chat_tokens_per_month > lo.chat_tokens_per_month);
            assert!(hi.max_upload_bytes > lo.max_upload_bytes);
            assert!(hi.invites_per_day > lo.invites_per_day);
            assert!(hi.import_rows > lo.import_rows && hi.import_bytes > lo.import_bytes);
            for class in crate::RateClass::ALL {
                assert!(hi.rate_limits.org.of(class) > lo.rate_limits.org.of(class), "{class:?}");
                assert!(hi.rate_limits.user.of(class) >= lo.rate_limits.user.of(class), "{class:?}");
            }
        }
    }
}
