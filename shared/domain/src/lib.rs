//! Tenantry's domain: identifiers, roles and permissions, plans and limits,
//! organization settings and domain errors. Nothing here knows about AWS.

pub mod chat;
mod error;
pub mod files;
mod ids;
pub mod notify;
mod plan;
pub mod prices;
mod rate;
mod role;
mod settings;
pub mod task_csv;
mod time_fmt;
pub mod work;

pub use error::{DomainError, FieldError};
pub use ids::{Email, IdError, OrgId, Slug, UserId};
pub use plan::{Limits, Plan, PlatformLimits};
pub use rate::{ClassLimits, MAX_RATE_LIMIT, MAX_RATE_MULTIPLIER, RATE_WINDOW_SECS, RateClass, RateLimits, RateOverride, effective_rate_limits};
pub use role::{Action, Identity, Role, check_removal, check_role_change, permits};
pub use settings::{OrgName, OrgSettings, OrgSettingsPatch};
pub use time_fmt::{Clock, epoch_rfc3339, rfc3339, rfc3339_epoch};
