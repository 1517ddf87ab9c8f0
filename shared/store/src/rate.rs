//! Rate limits: one conditional counter per bucket and minute.
//!
//! A bucket is a fixed one-minute window: the item `RATE#…#{windowStart}` in the org's or the
//! user's partition, whose `n` one `UpdateItem` adds 1 to unless it already reached the limit
//! (`ADD n :one`, condition `attribute_not_exists(n) OR n < :limit`). That is one write unit
//! and one round trip whatever the concurrency: fifty callers at once on a limit of ten get
//! exactly ten successes, because DynamoDB serialises the writes of one item. The item expires
//! (`ttl`) a minute after its window, so idle buckets vanish. Each bucket's minute starts at an
//! offset of its own (a hash of its key), so that the tenants' windows do not all reset at
//! the same second.
//!
//! *Why not a token bucket with lazy refill:* refilling needs `min(capacity, tokens + elapsed
//! × rate)`, and DynamoDB's update expressions have no `min` or multiplication; one
//! conditional update cannot both refill and spend without reading the bucket first, and a
//! read-then-conditional-write retries under contention (n concurrent callers cost O(n²)
//! calls). The window's cost: across a window boundary a client can get up to twice its
//! limit within a few seconds; within any one window the limit is exact.
//!
//! Who is charged: every request of a signed-in caller counts against the caller's own
//! buckets (`USER#{user}`, keyed by the verified `sub`: nobody else can spend them), per org
//! it acts in. An org's buckets are charged only once the caller is authorized as one of its
//! members ([`crate::Store::authorize_with`] charges them after its check), so a non-member
//! hammering `/orgs/{victim}/…` spends only their own budget. A request refused by one bucket
//! gives back what it took from the others: nothing of it happens.
//!
//! The API layer opens a [`RateGate`] for each request and runs the handler inside
//! [`RateGate::scope`]; the authorization finds it there.

use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use domain::{ClassLimits, DomainError, Identity, OrgId, RATE_WINDOW_SECS, RateClass, RateLimits, UserId};

use crate::Store;
use crate::item::{n, s};
use crate::keys::{self, Key};
use crate::scope::{Access, OrgScope};
use crate::tx;

tokio::task_local! {
    static GATE: Arc<RateGate>;
}

/// One bucket's state after a charge, as the `RateLimit` headers report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    /// The policy's name: `org`, `user`, `org-chat`, `user-uploads`, …
    pub policy: String,
    /// The limit per window.
    pub limit: u64,
    /// Requests left in this window.
    pub remaining: u64,
    /// Seconds until the window ends.
    pub reset_secs: u64,
    /// The window's length in seconds.
    pub window_secs: u64,
}

impl Quota {
    /// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers: a structured-field list item).
    pub fn policy_header(&self) -> String {
        format!("\"{}\";q={};w={}", self.policy, self.limit, self.window_secs)
    }
    /// `RateLimit`.
    pub fn state_header(&self) -> String {
        format!("\"{}\";r={};t={}", self.policy, self.remaining, self.reset_secs)
    }
}

/// What one request has been charged.
#[derive(Debug, Clone, Default)]
enum Charge {
    #[default]
    Pending,
    Allowed(Vec<Quota>),
    Refused(Quota),
}

/// A request's rate-limit charge: whose, of which class, and once made, its outcome.
#[derive(Debug)]
pub struct RateGate {
    user: UserId,
    class: RateClass,
    charge: tokio::sync::Mutex<Charge>,
}

impl RateGate {
    pub fn new(who: &Identity, class: RateClass) -> Arc<RateGate> {
        Arc::new(RateGate { user: who.user_id.clone(), class, charge: tokio::sync::Mutex::new(Charge::Pending) })
    }

    /// Runs `work` (a request's handler) with this gate as the request's.
    pub async fn scope<F: std::future::Future>(self: &Arc<Self>, work: F) -> F::Output {
        GATE.scope(self.clone(), work).await
    }

    /// Whether the request has been charged (allowed or refused).
    pub async fn charged(&self) -> bool {
        !matches!(*self.charge.lock().await, Charge::Pending)
    }

    /// The bucket to report: the refusing one, or the one with the fewest requests left (the
    /// sooner reset first among equals).
    pub async fn headline(&self) -> Option<Quota> {
        match &*self.charge.lock().await {
            Charge::Pending => None,
            Charge::Refused(q) => Some(q.clone()),
            Charge::Allowed(qs) => qs.iter().min_by_key(|q| (q.remaining, std::cmp::Reverse(q.reset_secs))).cloned(),
        }
    }
}

/// The request's gate, when an API request is being served.
fn current() -> Option<Arc<RateGate>> {
    GATE.try_with(Arc::clone).ok()
}

/// One bucket to charge.
struct Bucket {
    class: RateClass,
    key_pk: String,
    key_sk_prefix: String,
    policy: String,
    limit: u64,
}

/// FNV-1a: a stable hash for the window offsets.
fn offset_of(text: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::try_from(h % u64::try_from(RATE_WINDOW_SECS).unwrap_or(60)).unwrap_or(0)
}

/// The start of the window holding `now` of a bucket whose windows start at `offset`.
fn window_start(now: i64, offset: i64) -> i64 {
    (now - offset).div_euclid(RATE_WINDOW_SECS) * RATE_WINDOW_SECS + offset
}

fn policy_name(side: &str, class: RateClass) -> String {
    match class {
        RateClass::General => side.to_owned(),
        other => format!("{side}-{}", other.as_str()),
    }
}

impl Store {
    /// The rate limits in force for `org` now: its plan's, or an operator's override, times
    /// the deployment's multiplier.
    pub fn rate_limits_of(&self, org: &crate::Org) -> RateLimits {
        domain::effective_rate_limits(org.plan, org.rate_override.as_ref(), self.clock.epoch()).times(self.limits.rate_limit_multiplier)
    }

    /// The per-user limits outside any org, times the deployment's multiplier.
    fn unscoped_limits(&self) -> ClassLimits {
        RateLimits { org: RateLimits::unscoped(), user: RateLimits::unscoped() }.times(self.limits.rate_limit_multiplier).user
    }

    fn user_buckets(&self, gate: &RateGate, scope: Option<OrgId>, limits: &ClassLimits) -> Vec<Bucket> {
        let scope = scope.map_or_else(|| "-".to_owned(), |o| o.to_string());
        classes(gate.class)
            .into_iter()
            .map(|class| Bucket {
                class,
                key_pk: keys::user_pk(&gate.user),
                key_sk_prefix: keys::user_rate_prefix(&scope, class.as_str()),
                policy: policy_name("user", class),
                limit: limits.of(class),
            })
            .collect()
    }

    /// Charges the request's caller outside any org (routes not under `/orgs/{orgId}`, and
    /// requests refused before their authorization). Refused: `RateLimited`.
    pub async fn charge_unscoped(&self, gate: &RateGate) -> Result<(), DomainError> {
        let mut charge = gate.charge.lock().await;
        if !matches!(*charge, Charge::Pending) {
            return Ok(());
        }
        let buckets = self.user_buckets(gate, None, &self.unscoped_limits());
        let (outcome, result) = self.charge(buckets).await;
        *charge = outcome;
        result
    }

    /// Charges the request being served (if any, and if not yet) in the org of `scope`: the
    /// caller's buckets in this org, and the org's when the caller is a member. Called by
    /// the authorization once it passed.
    pub(crate) async fn charge_in_org(&self, scope: &OrgScope) -> Result<(), DomainError> {
        let Some(gate) = current() else { return Ok(()) };
        if gate.user != scope.user {
            return Ok(()); // an authorization on someone else's behalf
        }
        let mut charge = gate.charge.lock().await;
        if !matches!(*charge, Charge::Pending) {
            return Ok(());
        }
        let limits = self.rate_limits_of(&scope.org);
        let mut buckets = self.user_buckets(&gate, Some(scope.org_id()), &limits.user);
        let org_buckets: Vec<Bucket> = if matches!(scope.access, Access::Member(_)) {
            classes(gate.class)
                .into_iter()
                .map(|class| Bucket {
                    class,
                    key_pk: keys::org_pk(&scope.partition),
                    key_sk_prefix: keys::org_rate_prefix(class.as_str()),
                    policy: policy_name("org", class),
                    limit: limits.org.of(class),
                })
                .collect()
        } else {
            Vec::new()
        };
        if gate.class == RateClass::General || org_buckets.is_empty() {
            buckets.extend(org_buckets);
            let (outcome, result) = self.charge(buckets).await;
            *charge = outcome;
            return result;
        }
        // An expensive route's limits are small: requests refused by the member's own buckets
        // must not hold the org's tokens even for a moment (others would be refused for it),
        // so the org's are charged after the member's passed (one more round trip).
        let (outcome, result) = self.charge(buckets).await;
        let Charge::Allowed(mut quotas) = outcome else {
            *charge = outcome;
            return result;
        };
        let taken = self.taken_keys(&gate, scope.org_id(), &limits.user);
        let (org_outcome, org_result) = self.charge(org_buckets).await;
        match org_outcome {
            Charge::Allowed(org_quotas) => {
                quotas.extend(org_quotas);
                *charge = Charge::Allowed(quotas);
            }
            other => {
                self.give_back(&taken).await;
                *charge = other;
            }
        }
        org_result
    }

    /// The keys of the member's buckets in this window (to give back what they took).
    fn taken_keys(&self, gate: &RateGate, org: OrgId, limits: &ClassLimits) -> Vec<Key> {
        let now = self.clock.epoch();
        self.user_buckets(gate, Some(org), limits).iter().map(|b| bucket_key(b, now).0).collect()
    }

    /// Charges every bucket at once; when one refuses, gives back what the others took.
    async fn charge(&self, buckets: Vec<Bucket>) -> (Charge, Result<(), DomainError>) {
        let now = self.clock.epoch();
        let attempts = futures::future::join_all(buckets.iter().map(|b| self.charge_one(b, now))).await;
        let mut quotas = Vec::new();
        let mut refused: Option<(Quota, RateClass)> = None;
        let mut taken = Vec::new();
        for (bucket, attempt) in buckets.iter().zip(attempts) {
            let bucket_class = bucket.class;
            match attempt {
                Ok((key, quota)) if quota.remaining != u64::MAX => {
                    taken.push(key);
                    quotas.push(quota);
                }
                Ok((_, quota)) => {
                    let quota = Quota { remaining: 0, ..quota };
                    // the first refusal of the most specific class names the refusal
                    if refused.as_ref().is_none_or(|(_, c)| *c == RateClass::General && bucket_class != RateClass::General) {
                        refused = Some((quota, bucket_class));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, bucket = %bucket.policy, "rate-limit charge failed");
                    self.give_back(&taken).await;
                    return (Charge::Pending, Err(e));
                }
            }
        }
        match refused {
            None => (Charge::Allowed(quotas), Ok(())),
            Some((quota, bucket_class)) => {
                self.give_back(&taken).await;
                let retry_after_secs = quota.reset_secs;
                (Charge::Refused(quota), Err(DomainError::RateLimited { what: bucket_class.what(), retry_after_secs }))
            }
        }
    }

    /// One bucket: its key this window and its state after the charge (`remaining` is
    /// `u64::MAX` when it refused).
    async fn charge_one(&self, bucket: &Bucket, now: i64) -> Result<(Key, Quota), DomainError> {
        let (key, start) = bucket_key(bucket, now);
        let reset_secs = u64::try_from(start + RATE_WINDOW_SECS - now).unwrap_or(1).max(1);
        let quota =
            Quota { policy: bucket.policy.clone(), limit: bucket.limit, remaining: 0, reset_secs, window_secs: u64::try_from(RATE_WINDOW_SECS).unwrap_or(60) };
        let out = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(key.to_map()))
            .update_expression("ADD #n :one SET #ttl = :ttl, #type = :type")
            .condition_expression("attribute_not_exists(#n) OR #n < :limit")
            .expression_attribute_names("#n", "n")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_names("#type", keys::TYPE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(bucket.limit))
            .expression_attribute_values(":ttl", AttributeValue::N((start + 2 * RATE_WINDOW_SECS).to_string()))
            .expression_attribute_values(":type", s("rate"))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match out {
            Ok(out) => {
                let used =
                    out.attributes.as_ref().and_then(|a| a.get("n")).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u64>().ok()).unwrap_or(bucket.limit);
                Ok((key, Quota { remaining: bucket.limit.saturating_sub(used), ..quota }))
            }
            Err(e) if tx::is_condition_failure(&e) => Ok((key, Quota { remaining: u64::MAX, ..quota })),
            Err(e) => Err(tx::unexpected(e)),
        }
    }

    /// Gives back one request to each of these buckets (of a request another bucket refused).
    async fn give_back(&self, keys: &[Key]) {
        let undo = keys.iter().map(|key| {
            self.client
                .update_item()
                .table_name(&*self.table)
                .set_key(Some(key.to_map()))
                .update_expression("ADD #n :minus")
                .condition_expression("attribute_exists(#n)")
                .expression_attribute_names("#n", "n")
                .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
                .send()
        });
        for result in futures::future::join_all(undo).await {
            if let Err(e) = result
                && !tx::is_condition_failure(&e)
            {
                tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "rate-limit give-back failed");
            }
        }
    }
}

/// A bucket's key in the window holding `now`, and the window's start.
fn bucket_key(bucket: &Bucket, now: i64) -> (Key, i64) {
    let start = window_start(now, offset_of(&format!("{}{}", bucket.key_pk, bucket.key_sk_prefix)));
    (Key { pk: bucket.key_pk.clone(), sk: format!("{}{start}", bucket.key_sk_prefix) }, start)
}

/// The classes a request of `class` counts against.
fn classes(class: RateClass) -> Vec<RateClass> {
    if class == RateClass::General { vec![RateClass::General] } else { vec![RateClass::General, class] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_a_minute_long_and_start_at_the_buckets_offset() {
        for offset in [0, 17, 59] {
            for now in [1_000_000_i64, 1_000_059, 1_000_060, 1_000_017] {
                let start = window_start(now, offset);
                assert!(start <= now && now < start + RATE_WINDOW_SECS, "{offset} {now}");
                assert_eq!(start.rem_euclid(RATE_WINDOW_SECS), offset);
            }
        }
        assert!((0..RATE_WINDOW_SECS).contains(&offset_of("ORG#01H…RATE#requests#")));
        assert_ne!(offset_of("USER#a"), offset_of("USER#b"), "two keys, two offsets (for these two)");
    }

    #[test]
    fn headers_use_the_structured_field_syntax() {
        let q = Quota { policy: "org-chat".into(), limit: 20, remaining: 3, reset_secs: 17, window_secs: 60 };
        assert_eq!(q.policy_header(), "\"org-chat\";q=20;w=60");
        assert_eq!(q.state_header(), "\"org-chat\";r=3;t=17");
    }
}
