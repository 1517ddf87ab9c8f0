//! Rate limits: one counter per bucket and minute.
//!
//! A bucket is a fixed one-minute window: the item `RATE#…#{windowStart}` in the org's or the
//! user's partition, whose `n` one `UpdateItem` adds 1 to. That is one write unit and one
//! round trip whatever the concurrency: DynamoDB serialises the writes of one item, so each
//! request sees its own count and fifty callers at once on a limit of ten get exactly ten
//! successes. Outside orgs the add is conditional (`n < :limit`). In an org it is
//! unconditional and returns the count, judged once the authorization has read the org's
//! limits ([`crate::Store::settle_in_org`]); a request over a limit gives its counts back. The
//! item expires (`ttl`) a minute after its window, so idle buckets vanish. Each bucket's minute
//! starts at an offset of its own (a hash of its key), so that the tenants' windows do not all
//! reset at the same second.
//!
//! *Why not a token bucket with lazy refill:* refilling needs `min(capacity, tokens + elapsed
//! × rate)`, and DynamoDB's update expressions have no `min` or multiplication; one
//! conditional update cannot both refill and spend without reading the bucket first, and a
//! read-then-conditional-write retries under contention (n concurrent callers cost O(n²)
//! calls). The window's cost: across a window boundary a client can get up to twice its
//! limit within a few seconds; within any one window the limit is exact.
//!
//! Who is charged: every request of a signed-in caller counts against the caller's own
//! buckets (keyed by the verified `sub`: nobody else can spend them), per org it acts in. An
//! org's buckets are counted concurrently with the authorization
//! ([`crate::Store::authorize_with`]) only when the caller's verified token names the org in
//! its org claims, and given back if the check refuses; otherwise (a token from before the
//! caller joined) they are charged after the check. A non-member hammering `/orgs/{victim}/…`
//! spends only their own budget. A request refused by one bucket gives back what it took from
//! the others: nothing of it happens.
//!
//! The API layer opens a [`RateGate`] for each request and runs the handler inside
//! [`RateGate::scope`]; the authorization, and the store's writes of a request outside orgs
//! ([`crate::Store::hold_for_charge`]), find it there.

use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use domain::{ClassLimits, DomainError, Identity, OrgId, RATE_WINDOW_SECS, RateClass, RateLimits, UserId};

use crate::Store;
use crate::item::{n, s};
use crate::keys::{self, Key};
use crate::scope::{Access, OrgPartition, OrgScope};
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
    /// The orgs the caller's verified token names in its org claims (`tenantry_orgs`).
    claimed: Vec<OrgId>,
    /// A write outside any org whose charge runs concurrently with the handler's reads: its
    /// writes wait for the charge ([`Store::hold_for_charge`]), so a refused request writes
    /// nothing.
    holds_writes: bool,
    charge: tokio::sync::Mutex<Charge>,
}

impl RateGate {
    /// The gate of a request by `who`, whose verified token's org claims name `claimed`.
    pub fn new(who: &Identity, class: RateClass, claimed: Vec<OrgId>) -> Arc<RateGate> {
        Arc::new(RateGate { user: who.user_id.clone(), class, claimed, holds_writes: false, charge: tokio::sync::Mutex::new(Charge::Pending) })
    }

    /// The gate of a write outside any org by `who`: charged concurrently with the handler,
    /// whose writes wait for the charge.
    pub fn holding_writes(who: &Identity, class: RateClass) -> Arc<RateGate> {
        Arc::new(RateGate { user: who.user_id.clone(), class, claimed: Vec::new(), holds_writes: true, charge: tokio::sync::Mutex::new(Charge::Pending) })
    }

    /// Whether the request was refused.
    pub async fn refused(&self) -> bool {
        matches!(*self.charge.lock().await, Charge::Refused(_))
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

/// The gate of the request being served, when `user` makes it and its token's org claims name
/// `org` (a stranger's token cannot): the org's buckets may then be counted concurrently with
/// the authorization.
pub(crate) fn claimed_gate(user: &UserId, org: OrgId) -> Option<Arc<RateGate>> {
    current().filter(|g| &g.user == user && !g.holds_writes && g.claimed.contains(&org))
}

/// One bucket's count after one request was added to it unconditionally.
#[derive(Debug)]
pub(crate) struct Count {
    key: Key,
    /// Its window's start.
    start: i64,
    /// The requests in this window, this one included.
    n: u64,
}

/// One class's counts after one request of a member was added: the member's own bucket in
/// the org and the org's.
#[derive(Debug)]
pub(crate) struct Counted {
    class: RateClass,
    member: Count,
    org: Count,
    /// For an expensive class, the member's count is the attribute `u#{user}` of the org's
    /// bucket item (one item: see [`Store::count_in_org`]).
    member_attribute: Option<String>,
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

    /// Waits, before a write of the request being served, for its charge when the charge runs
    /// concurrently with the handler (a write outside any org): the reads before it overlap
    /// the charge, the writes follow it, and a refused request writes nothing
    /// (`RateLimited`). Makes the charge itself if none is in flight (or it failed).
    pub(crate) async fn hold_for_charge(&self) -> Result<(), DomainError> {
        let Some(gate) = current().filter(|g| g.holds_writes) else { return Ok(()) };
        self.charge_unscoped(&gate).await?; // the charge in flight holds the lock until it is settled
        match &*gate.charge.lock().await {
            Charge::Refused(quota) => Err(DomainError::RateLimited { what: gate.class.what(), retry_after_secs: quota.reset_secs }),
            _ => Ok(()),
        }
    }

    /// Charges the request being served (if any, and if not yet) in the org of `scope`, once
    /// its authorization passed and nothing was counted with it (the token did not name the
    /// org): a member's request counts in the org's buckets (its own count and the org's), a
    /// platform operator's in the operator's own bucket in this org.
    pub(crate) async fn charge_in_org(&self, scope: &OrgScope) -> Result<(), DomainError> {
        let Some(gate) = current() else { return Ok(()) };
        if gate.user != scope.user || gate.holds_writes || gate.charged().await {
            return Ok(()); // an authorization on someone else's behalf, or charged (outside orgs)
        }
        if matches!(scope.access, Access::Member(_)) {
            let counted = self.count_in_org(&gate, &scope.partition).await?;
            return self.settle_in_org(&gate, scope, counted).await;
        }
        let mut charge = gate.charge.lock().await;
        if !matches!(*charge, Charge::Pending) {
            return Ok(());
        }
        let limits = self.rate_limits_of(&scope.org);
        let buckets = self.user_buckets(&gate, Some(scope.org_id()), &limits.user);
        let (outcome, result) = self.charge(buckets).await;
        *charge = outcome;
        result
    }

    /// Adds one request of the gate's caller to every bucket of the classes it counts against
    /// in the org, unconditionally (the limits are the org's, which may not be read yet), all
    /// at once, returning the counts; [`Store::settle_in_org`] then judges them and a refused
    /// request gives its counts back.
    ///
    /// `requests`: the member's own bucket (`USER#{user}` / `RATE#{org}#requests#…`) and the
    /// org's (`ORG#{org}` / `RATE#requests#…`), one `UpdateItem` each; items of constant size.
    /// An expensive class: one `UpdateItem` of the org's bucket adding to its `n` and to the
    /// member's `u#{user}` in the same item. One item orders both counts alike, so a member
    /// bursting past their own small limit never makes their own requests within it look over
    /// the org's (two items would count them in different orders); the item grows by one
    /// attribute per member who used the class in that minute.
    pub(crate) async fn count_in_org(&self, gate: &RateGate, partition: &OrgPartition) -> Result<Vec<Counted>, DomainError> {
        let now = self.clock.epoch();
        let org = partition.org_id().to_string();
        let counts = classes(gate.class).into_iter().map(|class| {
            let member = (keys::user_pk(&gate.user), keys::user_rate_prefix(&org, class.as_str()));
            let whole = (keys::org_pk(partition), keys::org_rate_prefix(class.as_str()));
            let attribute = format!("u#{}", gate.user);
            async move {
                if class == RateClass::General {
                    match futures::join!(self.count_one(member, None, now), self.count_one(whole, None, now)) {
                        (Ok((member, _)), Ok((org, _))) => Ok(Counted { class, member, org, member_attribute: None }),
                        (Ok((taken, _)), Err(e)) | (Err(e), Ok((taken, _))) => Err((Some(taken.key), e)),
                        (Err(e), Err(_)) => Err((None, e)),
                    }
                } else {
                    let (org, member) = self.count_one(whole, Some(&attribute), now).await.map_err(|e| (None, e))?;
                    let member = Count { key: org.key.clone(), start: org.start, n: member };
                    Ok(Counted { class, member, org, member_attribute: Some(attribute) })
                }
            }
        });
        let mut counted = Vec::new();
        let mut taken = Vec::new();
        let mut failed = None;
        for result in futures::future::join_all(counts).await {
            match result {
                Ok(c) => counted.push(c),
                Err((key, e)) => {
                    taken.extend(key.map(|k| (k, None)));
                    failed = Some(e);
                }
            }
        }
        if let Some(e) = failed {
            tracing::warn!(error = %e, "rate-limit count failed");
            futures::join!(self.give_back(&taken), self.give_back_counted(&counted));
            return Err(e);
        }
        Ok(counted)
    }

    /// Adds 1 to the bucket `(pk, sk prefix)` of the window holding `now`, whatever its count,
    /// and to its attribute `member` if given; answers the bucket's count and the member's.
    async fn count_one(&self, (key_pk, key_sk_prefix): (String, String), member: Option<&str>, now: i64) -> Result<(Count, u64), DomainError> {
        let (key, start) = bucket_key(&Bucket { class: RateClass::General, key_pk, key_sk_prefix, policy: String::new(), limit: 0 }, now);
        let mut update = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(key.to_map()))
            .expression_attribute_names("#n", "n")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_names("#type", keys::TYPE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", AttributeValue::N((start + 2 * RATE_WINDOW_SECS).to_string()))
            .expression_attribute_values(":type", s("rate"))
            .return_values(ReturnValue::UpdatedNew);
        update = match member {
            Some(attribute) => update.update_expression("ADD #n :one, #u :one SET #ttl = :ttl, #type = :type").expression_attribute_names("#u", attribute),
            None => update.update_expression("ADD #n :one SET #ttl = :ttl, #type = :type"),
        };
        let out = update.send().await.map_err(tx::unexpected)?;
        let count =
            |name: &str| out.attributes.as_ref().and_then(|a| a.get(name)).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u64>().ok()).unwrap_or(u64::MAX);
        let member_count = member.map_or(0, count);
        Ok((Count { key, start, n: count("n") }, member_count))
    }

    /// Judges a member's counts (from [`Store::count_in_org`]) against the org's limits: over
    /// any, the request is refused (`RateLimited`) and gives its counts back. No DynamoDB call
    /// unless refused.
    pub(crate) async fn settle_in_org(&self, gate: &RateGate, scope: &OrgScope, counted: Vec<Counted>) -> Result<(), DomainError> {
        let mut charge = gate.charge.lock().await;
        if !matches!(*charge, Charge::Pending) {
            drop(charge);
            self.give_back_counted(&counted).await; // charged meanwhile: counted twice
            return Ok(());
        }
        let limits = self.rate_limits_of(&scope.org);
        let now = self.clock.epoch();
        let window_secs = u64::try_from(RATE_WINDOW_SECS).unwrap_or(60);
        let mut verdicts = Vec::new();
        for c in &counted {
            for (side, count, limit) in [("user", &c.member, limits.user.of(c.class)), ("org", &c.org, limits.org.of(c.class))] {
                let reset_secs = u64::try_from(count.start + RATE_WINDOW_SECS - now).unwrap_or(1).max(1);
                let quota = Quota { policy: policy_name(side, c.class), limit, remaining: limit.saturating_sub(count.n), reset_secs, window_secs };
                verdicts.push((quota, c.class, count.n > limit));
            }
        }
        // the first refusal of the most specific class names the refusal
        let mut refused: Option<(Quota, RateClass)> = None;
        for (quota, class, over) in &verdicts {
            if *over && refused.as_ref().is_none_or(|(_, c)| *c == RateClass::General && *class != RateClass::General) {
                refused = Some((quota.clone(), *class));
            }
        }
        match refused {
            None => {
                *charge = Charge::Allowed(verdicts.into_iter().map(|(q, _, _)| q).collect());
                Ok(())
            }
            Some((quota, class)) => {
                *charge = Charge::Refused(Quota { remaining: 0, ..quota.clone() });
                drop(charge);
                self.give_back_counted(&counted).await;
                Err(DomainError::RateLimited { what: class.what(), retry_after_secs: quota.reset_secs })
            }
        }
    }

    /// Gives back what [`Store::count_in_org`] added: of a refused request, or of one whose
    /// authorization then failed.
    pub(crate) async fn give_back_counted(&self, counted: &[Counted]) {
        let taken: Vec<(Key, Option<String>)> = counted
            .iter()
            .flat_map(|c| match &c.member_attribute {
                Some(attribute) => vec![(c.org.key.clone(), Some(attribute.clone()))],
                None => vec![(c.member.key.clone(), None), (c.org.key.clone(), None)],
            })
            .collect();
        self.give_back(&taken).await;
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
                    taken.push((key, None));
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

    /// Gives back one request to each of these buckets (of a request another bucket refused),
    /// and to the member's attribute of it when named.
    async fn give_back(&self, taken: &[(Key, Option<String>)]) {
        let undo = taken.iter().map(|(key, member)| {
            let update = self
                .client
                .update_item()
                .table_name(&*self.table)
                .set_key(Some(key.to_map()))
                .condition_expression("attribute_exists(#n)")
                .expression_attribute_names("#n", "n")
                .expression_attribute_values(":minus", AttributeValue::N("-1".into()));
            match member {
                Some(attribute) => update.update_expression("ADD #n :minus, #u :minus").expression_attribute_names("#u", attribute),
                None => update.update_expression("ADD #n :minus"),
            }
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
