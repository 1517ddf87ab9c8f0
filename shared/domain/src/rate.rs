//! Rate limits (OWASP API4): requests per minute per org and per member, on the whole API and
//! on the expensive routes, by plan; an operator's override of an org's limits.

use serde::{Deserialize, Serialize};

use crate::{DomainError, FieldError};

/// The length of a rate-limit window, in seconds: every limit is per minute.
pub const RATE_WINDOW_SECS: i64 = 60;

/// What a route costs beyond an ordinary request. Every request counts against the `General`
/// buckets; a route of another class counts against that class's buckets too. A route's class
/// is declared in its route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RateClass {
    /// Any request.
    General,
    /// A chat message (a model call).
    ChatMessages,
    /// A presigned upload (storage reserved, an S3 object to process).
    Uploads,
    /// An invitation mailed (created or resent).
    Invitations,
    /// An export of data.
    Exports,
    /// A CSV import.
    Imports,
}

impl RateClass {
    pub const ALL: [RateClass; 6] =
        [RateClass::General, RateClass::ChatMessages, RateClass::Uploads, RateClass::Invitations, RateClass::Exports, RateClass::Imports];

    /// Its name in keys and in the `RateLimit` headers' policy names.
    pub fn as_str(self) -> &'static str {
        match self {
            RateClass::General => "requests",
            RateClass::ChatMessages => "chat",
            RateClass::Uploads => "uploads",
            RateClass::Invitations => "invitations",
            RateClass::Exports => "exports",
            RateClass::Imports => "imports",
        }
    }

    /// What a refusal says is too many.
    pub fn what(self) -> &'static str {
        match self {
            RateClass::General => "requests",
            RateClass::ChatMessages => "chat messages",
            RateClass::Uploads => "uploads",
            RateClass::Invitations => "invitations",
            RateClass::Exports => "exports",
            RateClass::Imports => "imports",
        }
    }
}

/// Per-minute limits of each class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClassLimits {
    pub requests: u64,
    pub chat_messages: u64,
    pub uploads: u64,
    pub invitations: u64,
    pub exports: u64,
    pub imports: u64,
}

impl ClassLimits {
    pub fn of(&self, class: RateClass) -> u64 {
        match class {
            RateClass::General => self.requests,
            RateClass::ChatMessages => self.chat_messages,
            RateClass::Uploads => self.uploads,
            RateClass::Invitations => self.invitations,
            RateClass::Exports => self.exports,
            RateClass::Imports => self.imports,
        }
    }

    fn map(self, f: impl Fn(u64) -> u64) -> ClassLimits {
        ClassLimits {
            requests: f(self.requests),
            chat_messages: f(self.chat_messages),
            uploads: f(self.uploads),
            invitations: f(self.invitations),
            exports: f(self.exports),
            imports: f(self.imports),
        }
    }

    fn all(&self) -> [u64; 6] {
        RateClass::ALL.map(|c| self.of(c))
    }
}

/// Requests per minute an org may make (all its members together), and each member of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimits {
    /// The whole org, per minute.
    pub org: ClassLimits,
    /// Each member, per minute, in this org.
    pub user: ClassLimits,
}

/// The most any explicit limit may be.
pub const MAX_RATE_LIMIT: u64 = 1_000_000;
/// The largest multiplier an operator may set.
pub const MAX_RATE_MULTIPLIER: u64 = 1_000;

impl RateLimits {
    /// Every limit times `factor` (saturating).
    pub fn times(self, factor: u64) -> RateLimits {
        RateLimits { org: self.org.map(|n| n.saturating_mul(factor)), user: self.user.map(|n| n.saturating_mul(factor)) }
    }

    /// The limits a user has outside any org (their profile, their list of orgs, creating an
    /// org, answering an invitation): the Free plan's per-member limits.
    pub fn unscoped() -> ClassLimits {
        crate::Plan::Free.limits().rate_limits.user
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        let mut errors = Vec::new();
        for (side, limits) in [("org", &self.org), ("user", &self.user)] {
            for (class, n) in RateClass::ALL.iter().zip(limits.all()) {
                if n == 0 || n > MAX_RATE_LIMIT {
                    errors.push(FieldError::new(format!("limits.{side}.{}", class.as_str()), format!("must be 1 to {MAX_RATE_LIMIT}")));
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(DomainError::Invalid(errors)) }
    }
}

/// A platform operator's override of an org's rate limits: a multiplier of the plan's, or
/// explicit numbers, until an optional expiry (then the plan's apply again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<RateLimits>,
    /// RFC 3339; absent: until changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Who set it (a platform operator's user id) and when (RFC 3339).
    pub set_by: String,
    pub set_at: String,
}

impl RateOverride {
    /// Whether it applies at `now_epoch` (epoch seconds).
    pub fn active(&self, now_epoch: i64) -> bool {
        self.expires_at.as_deref().and_then(crate::rfc3339_epoch).is_none_or(|at| now_epoch < at)
    }

    /// The limits of `plan` under this override.
    pub fn apply(&self, plan: RateLimits) -> RateLimits {
        match (&self.limits, self.multiplier) {
            (Some(explicit), _) => *explicit,
            (None, Some(m)) => plan.times(m),
            (None, None) => plan,
        }
    }
}

/// The limits in force for an org of `plan` with `override_` at `now_epoch`.
pub fn effective_rate_limits(plan: crate::Plan, override_: Option<&RateOverride>, now_epoch: i64) -> RateLimits {
    let limits = plan.limits().rate_limits;
    match override_ {
        Some(o) if o.active(now_epoch) => o.apply(limits),
        _ => limits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Plan;

    fn with(multiplier: Option<u64>, limits: Option<RateLimits>, expires_at: Option<&str>) -> RateOverride {
        RateOverride { multiplier, limits, expires_at: expires_at.map(str::to_owned), set_by: "op".into(), set_at: "2026-01-01T00:00:00Z".into() }
    }

    #[test]
    fn an_override_multiplies_or_replaces_until_it_expires() {
        let free = Plan::Free.limits().rate_limits;
        let now = crate::rfc3339_epoch("2026-01-01T00:00:00Z").unwrap();
        let m = with(Some(3), None, Some("2026-01-01T01:00:00Z"));
        assert_eq!(effective_rate_limits(Plan::Free, Some(&m), now).org.requests, free.org.requests * 3);
        assert_eq!(effective_rate_limits(Plan::Free, Some(&m), now + 3600), free, "expired: the plan's again");
        let explicit = RateLimits { org: free.org.map(|_| 7), user: free.user.map(|_| 5) };
        let e = with(None, Some(explicit), None);
        assert_eq!(effective_rate_limits(Plan::Free, Some(&e), now + 10_000_000), explicit, "no expiry: until changed");
        assert_eq!(effective_rate_limits(Plan::Free, None, now), free);
    }

    #[test]
    fn explicit_limits_are_validated() {
        let free = Plan::Free.limits().rate_limits;
        assert!(free.validate().is_ok());
        let bad = RateLimits { org: ClassLimits { exports: 0, ..free.org }, ..free };
        let Err(DomainError::Invalid(errors)) = bad.validate() else { panic!("zero accepted") };
        assert_eq!(errors[0].field, "limits.org.exports");
    }

    #[test]
    fn a_member_never_gets_more_than_the_org() {
        for plan in Plan::ALL {
            let l = plan.limits().rate_limits;
            for class in RateClass::ALL {
                assert!(l.user.of(class) <= l.org.of(class), "{plan} {class:?}");
                assert!(l.user.of(class) > 0, "{plan} {class:?}");
            }
        }
    }
}
