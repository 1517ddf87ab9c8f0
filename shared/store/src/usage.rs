//! Usage against the plan's limits.

use domain::{DomainError, Limits, Plan};
use serde::Serialize;

use crate::Store;
use crate::entities::{Org, UsageCounter, UsageMonth};
use crate::item::n;
use crate::keys;
use crate::scope::{OrgScope, ReadScope};
use crate::tx::Expr;

/// An org's usage with the limits of its plan.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub plan: Plan,
    pub limits: Limits,
    pub members: u64,
    pub seats_used: u64,
    pub projects: u64,
    /// Bytes of the org's uploaded files.
    pub storage_bytes: u64,
    /// Bytes reserved for uploads under way (they count against the quota until they arrive
    /// or expire).
    pub storage_reserved: u64,
    pub month: UsageMonth,
}

impl Usage {
    pub fn of(org: &Org, month: UsageMonth) -> Usage {
        Usage {
            plan: org.plan,
            limits: org.plan.limits(),
            members: org.member_count,
            seats_used: org.seats_used,
            projects: org.project_count,
            storage_bytes: org.storage_bytes,
            storage_reserved: org.storage_reserved,
            month,
        }
    }
}

impl Store {
    /// This month's metered usage (zero when nothing was metered yet).
    pub async fn usage_month(&self, scope: &impl ReadScope) -> Result<UsageMonth, DomainError> {
        let month = self.clock.month_key();
        let found: Option<UsageMonth> = self.get(&keys::usage_month(scope.partition(), &month)).await?;
        Ok(found.unwrap_or(UsageMonth { month, ..Default::default() }))
    }

    /// Adds to one of this month's counters.
    pub async fn add_usage(&self, scope: &OrgScope, counter: UsageCounter, amount: u64) -> Result<(), DomainError> {
        let month = self.clock.month_key();
        let expr = Expr::update("SET #type = :type, #month = :month ADD #counter :amount")
            .name("#type", "_type")
            .name("#month", "month")
            .name("#counter", counter.attribute())
            .value(":type", crate::item::s(<UsageMonth as crate::item::Entity>::TYPE))
            .value(":month", crate::item::s(&month))
            .value(":amount", n(amount));
        self.update_one(&keys::usage_month(&scope.partition, &month), expr, DomainError::Unavailable).await
    }
}
