//! Usage against the plan's limits.

use domain::{DomainError, Limits, Plan};
use serde::Serialize;

use crate::Store;
use crate::chat::ChatUsageMonth;
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
    /// This month's chat: tokens against the plan's budget, and what they cost.
    pub chat: ChatUsage,
    /// The rate limits in force (per minute): the plan's `limits.rateLimits`, or a platform
    /// operator's override of them.
    pub rate_limits: domain::RateLimits,
}

/// A month's chat tokens and their cost, priced with the price table
/// ([`domain::chat::MODELS`], USD per million tokens).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatUsage {
    pub month: String,
    /// The plan's tokens per month.
    pub tokens_per_month: u64,
    /// Tokens used (input and output).
    pub tokens_used: u64,
    /// Tokens reserved by answers under way.
    pub tokens_reserved: u64,
    /// When the budget starts again (RFC 3339).
    pub resets_at: String,
    /// USD, this month so far.
    pub cost_usd: f64,
    pub by_model: Vec<ModelCost>,
    /// Every member's usage for admins; a member's own for the others.
    pub by_user: Vec<UserCost>,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelCost {
    pub model_id: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub calls: u64,
    pub cost_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserCost {
    pub user_id: domain::UserId,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub calls: u64,
}

impl ChatUsage {
    /// The month's chat usage as `viewer` may see it (admins every member, others their own).
    pub fn of(org: &Org, usage: ChatUsageMonth, resets_at: String, viewer: &OrgScope) -> ChatUsage {
        let by_model: Vec<ModelCost> = usage
            .models
            .iter()
            .map(|m| ModelCost {
                model_id: m.model_id.clone(),
                input_tokens: m.input_tokens,
                output_tokens: m.output_tokens,
                calls: m.calls,
                cost_usd: domain::chat::cost_usd(&m.model_id, m.input_tokens, m.output_tokens),
            })
            .collect();
        let everyone = domain::permits(viewer.role(), domain::Action::ManageMembers);
        let by_user = usage
            .users
            .iter()
            .filter(|u| everyone || u.user_id == *viewer.user_id())
            .map(|u| UserCost { user_id: u.user_id.clone(), input_tokens: u.input_tokens, output_tokens: u.output_tokens, calls: u.calls })
            .collect();
        ChatUsage {
            month: usage.org.month.clone(),
            tokens_per_month: org.plan.limits().chat_tokens_per_month,
            tokens_used: usage.org.chat_tokens,
            tokens_reserved: u64::try_from(usage.org.chat_reserved).unwrap_or(0),
            resets_at,
            cost_usd: by_model.iter().map(|m| m.cost_usd).sum(),
            by_model,
            by_user,
        }
    }
}

impl Usage {
    pub fn of(org: &Org, month: UsageMonth, chat: ChatUsage, rate_limits: domain::RateLimits) -> Usage {
        Usage {
            plan: org.plan,
            limits: org.plan.limits(),
            members: org.member_count,
            seats_used: org.seats_used,
            projects: org.project_count,
            storage_bytes: org.storage_bytes,
            storage_reserved: org.storage_reserved,
            month,
            chat,
            rate_limits,
        }
    }
}

impl Store {
    /// This month's metered usage with its chat usage per model and member (one query).
    pub async fn usage_with_chat(&self, scope: &impl ReadScope) -> Result<ChatUsageMonth, DomainError> {
        let month = self.clock.month_key();
        self.chat_usage(scope, &month).await
    }

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
