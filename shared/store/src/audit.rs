//! The audit log: every security-relevant domain event of an org, recorded as an entry of a
//! hash chain in the org's audit partition (`ORG#{org}#AUDIT`).
//!
//! - **Entries** (`ENTRY#{time}#{seq}`): the action (the event's kind), the recording time
//!   (RFC 3339 with milliseconds, never before the previous entry's), the actor and their email
//!   at that time, the targets and the change (the event's fields other than its envelope), the
//!   request behind it (id, source IP, user agent) and the event's id.
//! - **Chain.** Each entry's `hash` is SHA-256 over a canonical serialization of its fields and
//!   the previous entry's hash (genesis: 64 zeros). The email is committed to as
//!   `emailDigest = sha256(emailNonce || actorEmail)`, so erasure can remove the email and its
//!   nonce and the chain still verifies, while an edited email no longer matches its digest.
//! - **Append** is one transaction: the head (`HEAD`: the last entry's seq, hash, time and
//!   expiry) moves from seq n to n + 1 on the condition that it is still at n, the entry is put,
//!   and the event is marked recorded (`SEEN#{eventId}`). Two writers cannot both extend n: one
//!   fails the head's condition, re-reads it and tries again. A redelivered event fails the
//!   marker's condition: recorded once.
//! - **Expiry.** An entry expires (TTL) after its plan's retention, never before the previous
//!   entry (`ttl` is monotonic along the chain), and each entry carries the previous entry's
//!   expiry (`prevTtl`, covered by its hash): verification tells an entry that expired from one
//!   that was deleted.
//!
//! No route edits or deletes an entry; erasure removes only an actor's email and its nonce.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::{DomainError, Identity, OrgId, Plan, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::events::{DomainEvent, EventKind, RequestMeta};
use crate::item::{Entity, Item, from_item, n, s, to_item};
use crate::keys::{self, GSI1, GSI1PK, GSI2, GSI2PK, GSI2SK, PK, SK};
use crate::page::{Filter, Page, PageRequest, PagedQuery, QueryBinding, Sort};
use crate::scope::OrgPartition;
use crate::tx::{Expr, Tx};
use crate::{Store, tx};

/// The previous hash of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// How long the consumer remembers that it recorded an event: longer than a message can live
/// in its queue and dead-letter queue (SQS keeps messages 14 days at most).
pub const SEEN_RETENTION_SECS: i64 = 15 * 86_400;
/// Entries one verification reads by default, and at most (`limit`); a longer chain is verified
/// over several calls, each resuming where the last stopped (`cursor`).
pub const VERIFY_DEFAULT_LIMIT: u32 = 10_000;
pub const VERIFY_MAX_LIMIT: u32 = 50_000;
/// Attempts of one append when other writers keep extending the chain first.
const APPEND_ATTEMPTS: u32 = 25;
/// Days the platform-wide feed reads by default, and at most.
pub const FEED_DEFAULT_DAYS: i64 = 7;
pub const FEED_MAX_DAYS: i64 = 31;
const DAY: i64 = 86_400;

const SEEN: DomainError = DomainError::Conflict("audit: event recorded already");
const MOVED: DomainError = DomainError::Conflict("audit: the chain moved on");

/// An entry as stored. `targets` and `change` are canonical JSON text, so that what the hash
/// covers reads back byte for byte.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredEntry {
    org_id: OrgId,
    seq: u64,
    time: String,
    occurred_at: String,
    action: String,
    actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    actor_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email_nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email_digest: Option<String>,
    targets: String,
    change: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<RequestMeta>,
    event_id: String,
    ttl: i64,
    prev_ttl: i64,
    prev_hash: String,
    hash: String,
}

impl Entity for StoredEntry {
    const TYPE: &'static str = "audit";
}

/// The chain's head.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    seq: u64,
    hash: String,
    time: String,
    ttl: i64,
}

impl Entity for Head {
    const TYPE: &'static str = "audit-head";
}

/// One entry of an org's audit log, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub org_id: OrgId,
    /// Its place in the org's chain, from 1.
    pub seq: u64,
    /// When it was recorded: RFC 3339 UTC with milliseconds, never before the previous entry's.
    pub time: String,
    /// When the change happened (the event's time).
    pub occurred_at: String,
    /// The domain event's kind (`member.role_changed`, …).
    pub action: String,
    /// A user id, `system` or `platform`.
    pub actor: String,
    /// The actor's email when it was recorded (removed when the user erases their account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_email: Option<String>,
    /// What the action was done to: the event's fields other than its envelope and its change.
    pub targets: Value,
    /// What changed: the event's `changes`, and each `previousX` with its `x`.
    pub change: Value,
    /// The API request behind it: id, source IP, user agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestMeta>,
    /// The domain event's id.
    pub event_id: String,
    /// SHA-256 of the email's nonce and the email: what the chain covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_digest: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// What recording an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Appended as the entry with this seq.
    Appended(u64),
    /// It was recorded before (a redelivery).
    Duplicate,
}

/// The filters of an org's audit log (each optional; times are RFC 3339, `from` inclusive,
/// `to` exclusive).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<UserId>,
    pub action: Option<EventKind>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A verification's answer.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditVerification {
    /// No break in what was checked (the whole chain unless `nextCursor` is set).
    pub valid: bool,
    /// Entries checked, over this call and the calls it resumes.
    pub entries: u64,
    /// The first entry checked (0: none). Above 1, older entries expired.
    pub first_seq: u64,
    /// The last entry checked (0: none).
    pub last_seq: u64,
    /// The head's seq: the last entry the chain has.
    pub head_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at: Option<ChainBreak>,
    /// More entries to check: call again with `cursor` set to this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Where the chain breaks, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainBreak {
    pub seq: u64,
    pub reason: String,
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    hex(&h.finalize())
}

/// JSON with the keys of every object sorted and no insignificant white space: one text per
/// value, whatever order its maps were built in.
pub fn canonical_json(value: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&map[k], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// The event's fields outside its envelope, split into its targets and its change: `changes`
/// and every `previousX` with its `x` are the change, the rest the targets. Generic, so that a
/// new kind or a new field needs nothing here.
pub fn targets_and_change(event: &DomainEvent) -> (Value, Value) {
    let Ok(Value::Object(mut fields)) = serde_json::to_value(event) else { return (Value::Object(Map::new()), Value::Object(Map::new())) };
    for envelope in ["id", "kind", "orgId", "actor", "at", "ttl", "request"] {
        fields.remove(envelope);
    }
    let mut change = Map::new();
    if let Some(changes) = fields.remove("changes") {
        change.insert("changes".into(), changes);
    }
    let previous: Vec<String> = fields.keys().filter(|k| k.starts_with("previous") && k.len() > "previous".len()).cloned().collect();
    for key in previous {
        let rest = &key["previous".len()..];
        let current = format!("{}{}", rest[..1].to_ascii_lowercase(), &rest[1..]);
        if let Some(v) = fields.remove(&key) {
            change.insert(key.clone(), v);
        }
        if let Some(v) = fields.remove(&current) {
            change.insert(current, v);
        }
    }
    (Value::Object(fields), Value::Object(change))
}

/// `t` as the audit log writes times: RFC 3339 UTC with milliseconds, so that they sort as text.
fn time_ms(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second(), t.millisecond())
}

/// A time bound of a query (RFC 3339, any offset or precision) in the entries' format.
pub fn parse_time_bound(value: &str) -> Option<String> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).ok().map(time_ms)
}

fn epoch_of(time: &str) -> i64 {
    time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339).map(time::OffsetDateTime::unix_timestamp).unwrap_or(0)
}

impl StoredEntry {
    /// What the hash covers, canonical: every field but the email and its nonce (their digest
    /// stands for them) and the hash itself.
    fn hashed(&self) -> String {
        let targets: Value = serde_json::from_str(&self.targets).unwrap_or(Value::String(self.targets.clone()));
        let change: Value = serde_json::from_str(&self.change).unwrap_or(Value::String(self.change.clone()));
        let covered = serde_json::json!({
            "v": 1,
            "orgId": self.org_id.to_string(),
            "seq": self.seq,
            "time": self.time,
            "occurredAt": self.occurred_at,
            "action": self.action,
            "actor": self.actor,
            "emailDigest": self.email_digest,
            "targets": targets,
            "change": change,
            "request": self.request,
            "eventId": self.event_id,
            "ttl": self.ttl,
            "prevTtl": self.prev_ttl,
            "prevHash": self.prev_hash,
        });
        canonical_json(&covered)
    }

    fn compute_hash(&self) -> String {
        sha256_hex(&[self.hashed().as_bytes()])
    }

    fn view(self) -> AuditEntry {
        let parse = |text: String| serde_json::from_str(&text).unwrap_or(Value::String(text));
        AuditEntry {
            org_id: self.org_id,
            seq: self.seq,
            time: self.time,
            occurred_at: self.occurred_at,
            action: self.action,
            actor: self.actor,
            actor_email: self.actor_email,
            targets: parse(self.targets),
            change: parse(self.change),
            request: self.request,
            event_id: self.event_id,
            email_digest: self.email_digest,
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

fn email_digest(nonce: &str, email: &str) -> String {
    sha256_hex(&[nonce.as_bytes(), email.as_bytes()])
}

/// The part of a verification carried from one call to the next (in its signed cursor).
#[derive(Debug, Clone, Default)]
struct Progress {
    prev: Option<(u64, String, i64)>,
    first: u64,
    count: u64,
}

impl Store {
    /// Records `event` in its org's audit log, once: a redelivered event is a
    /// [`Recorded::Duplicate`]. The actor's email is read from their profile now (none for
    /// `system`, `platform`, a user who is gone, and `user.erased`). Appends that lose to other
    /// writers re-read the head and try again after a random delay, a bounded number of times.
    pub async fn record_audit(&self, event: &DomainEvent) -> Result<Recorded, DomainError> {
        let p = OrgPartition::new(event.org_id);
        let actor_user = (event.kind != EventKind::UserErased && event.actor != crate::SYSTEM_ACTOR && event.actor != crate::PLATFORM_ACTOR)
            .then(|| event.actor.parse::<UserId>().ok())
            .flatten();
        let profile = async {
            match &actor_user {
                Some(user) => self.get_user(user).await.map(|p| p.and_then(|p| p.email)),
                None => Ok(None),
            }
        };
        let (head_key, org_key) = (keys::audit_head(&p), keys::org(&p));
        let (head, org, email) = futures::join!(self.get::<Head>(&head_key), self.get::<crate::Org>(&org_key), profile);
        let (mut head, org, email) = (head?, org?, email?);
        let retention = i64::from(org.map_or(Plan::Free, |o| o.plan).limits().audit_retention_days) * DAY;
        let (targets, change) = targets_and_change(event);
        let (targets, change) = (canonical_json(&targets), canonical_json(&change));
        for attempt in 0..APPEND_ATTEMPTS {
            if attempt > 0 {
                let cap = 10u64 << attempt.min(6);
                tokio::time::sleep(std::time::Duration::from_millis(getrandom::u64().unwrap_or(cap) % (cap + 1))).await;
                head = self.get::<Head>(&keys::audit_head(&p)).await?;
            }
            let last = head.clone().unwrap_or_default();
            let now = time_ms(self.clock.now());
            let time = if last.time > now { last.time.clone() } else { now };
            let ttl = (epoch_of(&time) + retention).max(last.ttl);
            let (actor_email, email_nonce, digest) = match &email {
                Some(email) => {
                    let mut bytes = [0u8; 16];
                    getrandom::fill(&mut bytes).map_err(|_| DomainError::Unavailable)?;
                    let nonce = hex(&bytes);
                    let digest = email_digest(&nonce, email.as_str());
                    (Some(email.as_str().to_owned()), Some(nonce), Some(digest))
                }
                None => (None, None, None),
            };
            let mut entry = StoredEntry {
                org_id: event.org_id,
                seq: last.seq + 1,
                time,
                occurred_at: event.at.clone(),
                action: event.kind.as_str().to_owned(),
                actor: event.actor.clone(),
                actor_email,
                email_nonce,
                email_digest: digest,
                targets: targets.clone(),
                change: change.clone(),
                request: event.request.clone(),
                event_id: event.id.clone(),
                ttl,
                prev_ttl: last.ttl,
                prev_hash: if last.seq == 0 { GENESIS_HASH.to_owned() } else { last.hash.clone() },
                hash: String::new(),
            };
            entry.hash = entry.compute_hash();
            match self.append(&p, &entry, head.as_ref()).await {
                Ok(()) => return Ok(Recorded::Appended(entry.seq)),
                Err(e) if e == SEEN => return Ok(Recorded::Duplicate),
                Err(e) if e == MOVED => continue,
                Err(e) => return Err(e),
            }
        }
        tracing::warn!(org_id = %event.org_id, event_id = event.id, "the audit chain stayed contended");
        Err(DomainError::Conflict("the audit chain stayed contended; try again"))
    }

    /// One append: the marker, the head's move from the seq read, the entry.
    async fn append(&self, p: &OrgPartition, entry: &StoredEntry, head: Option<&Head>) -> Result<(), DomainError> {
        let mut seen = HashMap::new();
        let seen_key = keys::audit_seen(p, &entry.event_id);
        seen.insert(PK.to_owned(), s(seen_key.pk.clone()));
        seen.insert(SK.to_owned(), s(seen_key.sk));
        seen.insert(keys::TYPE.to_owned(), s("audit-seen"));
        seen.insert("ttl".to_owned(), AttributeValue::N((self.clock.epoch() + SEEN_RETENTION_SECS).to_string()));
        let mut tx = Tx::default();
        // The marker first: when a redelivery also finds the chain moved on, the duplicate wins.
        tx.put(&self.table, seen, Some(Expr::condition("attribute_not_exists(PK)")), SEEN);
        let read = head.map_or(0, |h| h.seq);
        let condition = if head.is_some() { "#seq = :read" } else { "attribute_not_exists(#seq)" };
        let mut expr = Expr::update("SET #seq = :seq, #hash = :hash, #time = :time, #ttl = :ttl, #type = :type")
            .when(condition)
            .name("#seq", "seq")
            .name("#hash", "hash")
            .name("#time", "time")
            .name("#ttl", "ttl")
            .name("#type", keys::TYPE)
            .value(":seq", n(entry.seq))
            .value(":hash", s(entry.hash.clone()))
            .value(":time", s(entry.time.clone()))
            .value(":ttl", AttributeValue::N(entry.ttl.to_string()))
            .value(":type", s(<Head as Entity>::TYPE));
        if head.is_some() {
            expr = expr.value(":read", n(read));
        }
        tx.update(&self.table, &keys::audit_head(p), expr, MOVED);
        let item = to_item(entry, &keys::audit_entry(p, &entry.time, entry.seq), &keys::audit_indexes(p, &entry.actor, &entry.time, entry.seq))?;
        tx.put(&self.table, item, Some(Expr::condition("attribute_not_exists(PK)")), MOVED);
        tx.run(self).await
    }

    /// Removes the email (and its nonce) from every entry whose actor is `actor`, in every org:
    /// what erasing a user's account asks of the audit log. The entries' hashes cover only the
    /// email's digest, so the chains still verify. Safe to repeat; answers how many entries
    /// changed.
    pub async fn scrub_audit_emails(&self, actor: &UserId) -> Result<usize, DomainError> {
        let mut start: Option<Item> = None;
        let mut scrubbed = 0;
        loop {
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .index_name(GSI1)
                .key_condition_expression("#pk = :pk")
                .filter_expression("attribute_exists(#email) OR attribute_exists(#nonce)")
                .projection_expression("#k, #s")
                .expression_attribute_names("#pk", GSI1PK)
                .expression_attribute_names("#email", "actorEmail")
                .expression_attribute_names("#nonce", "emailNonce")
                .expression_attribute_names("#k", PK)
                .expression_attribute_names("#s", SK)
                .expression_attribute_values(":pk", s(keys::audit_by_actor_pk(actor.as_str())))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(tx::unexpected)?;
            for item in out.items.unwrap_or_default() {
                let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) = (item.get(PK), item.get(SK)) else { continue };
                let key = keys::Key { pk: pk.clone(), sk: sk.clone() };
                let expr = Expr::update("REMOVE #email, #nonce").when("attribute_exists(PK) AND #actor = :actor");
                let expr = expr.name("#email", "actorEmail").name("#nonce", "emailNonce").name("#actor", "actor").value(":actor", s(actor.as_str()));
                match self.update_one(&key, expr, DomainError::NotFound).await {
                    Ok(()) => scrubbed += 1,
                    // Expired and deleted meanwhile.
                    Err(DomainError::NotFound) => {}
                    Err(e) => return Err(e),
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(scrubbed);
            }
        }
    }

    /// An org's audit log, newest first (admins and owners): all of it, or one actor's entries
    /// (one query of the actor index), one action's (a filter on the org's entries), in a time
    /// range (the key condition).
    pub async fn list_audit(&self, who: &Identity, org: OrgId, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>, DomainError> {
        let (_, page) =
            self.authorize_with(who, org, domain::Action::ReadAudit, |pending| async move { self.audit_page(&pending.partition, filter, page).await }).await?;
        Ok(page)
    }

    async fn audit_page(&self, p: &OrgPartition, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>, DomainError> {
        let from = filter.from.clone().unwrap_or_default();
        let to = filter.to.clone().unwrap_or_else(|| "~".into());
        let action = filter.action.map(|a| Filter {
            expression: "#fa = :fa".into(),
            names: vec![("#fa".into(), "action".into())],
            values: vec![(":fa".into(), s(a.as_str()))],
        });
        let page = match &filter.actor {
            Some(actor) => {
                let pk = keys::audit_by_actor_pk(actor.as_str());
                let (low, high) = (keys::audit_by_actor_sk(p.org_id(), &from), keys::audit_by_actor_sk(p.org_id(), &to));
                let q = PagedQuery::on_index("audit-by-actor", keys::Gsi::One, &pk, Sort::Between(&low, &high)).newest_first().filtered(action);
                self.query_page::<StoredEntry>(&q, page).await?
            }
            None => {
                let pk = keys::org_audit_pk(p);
                let (low, high) = (format!("{}{from}", keys::AUDIT_ENTRY_PREFIX), format!("{}{to}", keys::AUDIT_ENTRY_PREFIX));
                let q = PagedQuery::on_table("audit", &pk, Sort::Between(&low, &high)).newest_first().filtered(action);
                self.query_page::<StoredEntry>(&q, page).await?
            }
        };
        Ok(Page { items: page.items.into_iter().map(StoredEntry::view).collect(), next_cursor: page.next_cursor })
    }

    /// The audit log for platform operators: one org's (optionally one actor's), one actor's
    /// across orgs, or every org's by time (newest first, one index partition per day, from
    /// `to` back to `from`, at most [`FEED_MAX_DAYS`] days).
    pub async fn list_platform_audit(
        &self,
        who: &Identity,
        org: Option<OrgId>,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>, DomainError> {
        if !who.platform_admin {
            return Err(DomainError::Forbidden("platform operators only"));
        }
        let listing = async {
            match (org, &filter.actor) {
                (Some(org), _) => self.audit_page(&OrgPartition::new(org), filter, page).await,
                (None, Some(actor)) => self.actor_audit_page(actor, filter, page).await,
                (None, None) => self.audit_feed_page(filter, page).await,
            }
        };
        let (operator, listed) = futures::join!(self.is_platform_operator(who), listing);
        if !operator? {
            return Err(DomainError::Forbidden("platform operators only"));
        }
        listed
    }

    /// One actor's entries in every org (by org, then newest first), the time range a filter.
    async fn actor_audit_page(&self, actor: &UserId, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>, DomainError> {
        let pk = keys::audit_by_actor_pk(actor.as_str());
        let mut f = Filter::default();
        let mut terms = Vec::new();
        if let Some(from) = &filter.from {
            terms.push("#ft >= :from");
            f.values.push((":from".into(), s(from.clone())));
        }
        if let Some(to) = &filter.to {
            terms.push("#ft < :to");
            f.values.push((":to".into(), s(to.clone())));
        }
        if !terms.is_empty() {
            f.names.push(("#ft".into(), "time".into()));
        }
        if let Some(action) = filter.action {
            terms.push("#fa = :fa");
            f.names.push(("#fa".into(), "action".into()));
            f.values.push((":fa".into(), s(action.as_str())));
        }
        f.expression = terms.join(" AND ");
        let filter = (!terms.is_empty()).then_some(f);
        let q = PagedQuery::on_index("audit-actor-everywhere", keys::Gsi::One, &pk, Sort::Prefix("")).newest_first().filtered(filter);
        let page = self.query_page::<StoredEntry>(&q, page).await?;
        Ok(Page { items: page.items.into_iter().map(StoredEntry::view).collect(), next_cursor: page.next_cursor })
    }

    /// Every org's entries, newest first, day partition by day partition.
    async fn audit_feed_page(&self, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>, DomainError> {
        let now = self.clock.now();
        let to = filter.to.clone().unwrap_or_else(|| time_ms(now + time::Duration::milliseconds(1)));
        let to_epoch = epoch_of(&to);
        let from = filter.from.clone().unwrap_or_else(|| time_ms(time::OffsetDateTime::from_unix_timestamp(to_epoch - FEED_DEFAULT_DAYS * DAY).unwrap_or(now)));
        if to_epoch - epoch_of(&from) > FEED_MAX_DAYS * DAY {
            return Err(DomainError::invalid("from", "the platform-wide feed reads at most 31 days: narrow from and to, or name an org or an actor"));
        }
        let (first_day, last_day) = (from.get(..10).unwrap_or("").to_owned(), to.get(..10).unwrap_or("").to_owned());
        let binding = QueryBinding { query: "audit-feed", partition: "AUDIT#FEED", partition_attribute: "feed" };
        let (mut day, mut start) = match page.cursor.as_deref() {
            Some(c) => {
                let mut k = self.cursor_key.decode(&binding, c)?;
                k.remove("feed");
                let day = match k.remove("day") {
                    Some(AttributeValue::S(d)) if d >= first_day && d <= last_day => d,
                    _ => return Err(DomainError::InvalidCursor),
                };
                let start = (!k.is_empty()).then_some(k);
                if start.as_ref().is_some_and(|k| k.get(GSI2PK).and_then(|v| v.as_s().ok()) != Some(&keys::audit_day_pk(&day))) {
                    return Err(DomainError::InvalidCursor);
                }
                (day, start)
            }
            None => (last_day.clone(), None),
        };
        let limit = page.effective_limit();
        let mut items = Vec::new();
        let (low, high) = (from.clone(), to.clone());
        loop {
            let remaining = limit - u32::try_from(items.len()).unwrap_or(limit);
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .index_name(GSI2)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
                .expression_attribute_names("#pk", GSI2PK)
                .expression_attribute_names("#sk", GSI2SK)
                .expression_attribute_values(":pk", s(keys::audit_day_pk(&day)))
                .expression_attribute_values(":low", s(low.clone()))
                .expression_attribute_values(":high", s(high.clone()))
                .scan_index_forward(false)
                .limit(i32::try_from(remaining).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(tx::unexpected)?;
            for item in out.items.unwrap_or_default() {
                items.push(from_item::<StoredEntry>(item)?.view());
            }
            let previous_day = time::Date::parse(&day, time::macros::format_description!("[year]-[month]-[day]"))
                .ok()
                .and_then(|d| d.previous_day())
                .map(|d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()))
                .filter(|d| *d >= first_day);
            let next = match (out.last_evaluated_key, previous_day) {
                (Some(k), _) => Some((day.clone(), Some(k))),
                (None, Some(d)) => Some((d, None)),
                (None, None) => None,
            };
            let Some((next_day, next_start)) = next else { return Ok(Page { items, next_cursor: None }) };
            if items.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
                let mut k: HashMap<String, AttributeValue> = next_start.unwrap_or_default();
                k.insert("feed".into(), s("AUDIT#FEED"));
                k.insert("day".into(), s(next_day));
                return Ok(Page { items, next_cursor: self.cursor_key.encode(&binding, &k) });
            }
            day = next_day;
            start = next_start;
        }
    }

    /// Recomputes an org's chain (owners): every entry's hash from its fields and the previous
    /// hash, its email against its digest, the seqs contiguous, the last entry the head's.
    /// Reads at most `limit` entries; a longer chain answers `nextCursor` to resume from.
    pub async fn verify_audit(&self, who: &Identity, org: OrgId, limit: u32, cursor: Option<&str>) -> Result<AuditVerification, DomainError> {
        let (scope, head) = self
            .authorize_with(who, org, domain::Action::VerifyAudit, |pending| async move { self.get::<Head>(&keys::audit_head(&pending.partition)).await })
            .await?;
        let p = &scope.partition;
        let pk = keys::org_audit_pk(p);
        let binding = QueryBinding { query: "audit-verify", partition: &pk, partition_attribute: PK };
        let (mut progress, mut start) = match cursor {
            Some(c) => {
                let mut k = self.cursor_key.decode(&binding, c)?;
                let mut take = |name: &str| k.remove(name).and_then(|v| v.as_s().ok().cloned());
                let prev = match (take("seq").and_then(|v| v.parse().ok()), take("hash"), take("pttl").and_then(|v| v.parse().ok())) {
                    (Some(seq), Some(hash), Some(ttl)) => Some((seq, hash, ttl)),
                    _ => return Err(DomainError::InvalidCursor),
                };
                let first = take("first").and_then(|v| v.parse().ok()).ok_or(DomainError::InvalidCursor)?;
                let count = take("count").and_then(|v| v.parse().ok()).ok_or(DomainError::InvalidCursor)?;
                (Progress { prev, first, count }, Some(k))
            }
            None => (Progress::default(), None),
        };
        let head = head.unwrap_or_default();
        let now = self.clock.epoch();
        let limit = limit.clamp(1, VERIFY_MAX_LIMIT);
        let mut read: u32 = 0;
        let answer = |progress: &Progress, broken: Option<ChainBreak>, next_cursor: Option<String>| AuditVerification {
            valid: broken.is_none(),
            entries: progress.count,
            first_seq: progress.first,
            last_seq: progress.prev.as_ref().map_or(0, |p| p.0),
            head_seq: head.seq,
            broken_at: broken,
            next_cursor,
        };
        let broken = |seq: u64, reason: &str| Some(ChainBreak { seq, reason: reason.to_owned() });
        loop {
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :entry)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":entry", s(keys::AUDIT_ENTRY_PREFIX))
                .consistent_read(true)
                .limit(i32::try_from((limit - read).min(1_000)).unwrap_or(1_000))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(tx::unexpected)?;
            for item in out.items.unwrap_or_default() {
                read += 1;
                let sk = item.get(SK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                let entry: StoredEntry = match from_item(item) {
                    Ok(e) => e,
                    Err(_) => {
                        let seq = progress.prev.as_ref().map_or(0, |p| p.0) + 1;
                        return Ok(answer(&progress, broken(seq, "an entry does not parse"), None));
                    }
                };
                if entry.seq > head.seq {
                    // Appended after the head was read: the next verification covers it.
                    return Ok(self.verify_end(&progress, &head, answer));
                }
                match &progress.prev {
                    None if entry.ttl <= now => continue, // expired, not yet deleted by TTL
                    None => {
                        if entry.seq > 1 && entry.prev_ttl > now {
                            return Ok(answer(&progress, broken(entry.seq - 1, "entry missing (deleted before it expired)"), None));
                        }
                        if entry.seq == 1 && entry.prev_hash != GENESIS_HASH {
                            return Ok(answer(&progress, broken(1, "the first entry does not start from the genesis hash"), None));
                        }
                        progress.first = entry.seq;
                    }
                    Some((seq, hash, ttl)) => {
                        if entry.seq <= *seq {
                            return Ok(answer(&progress, broken(entry.seq, "seq out of order (the chain forked or was edited)"), None));
                        }
                        if entry.seq != seq + 1 {
                            return Ok(answer(&progress, broken(seq + 1, "entry missing"), None));
                        }
                        if entry.prev_hash != *hash || entry.prev_ttl != *ttl {
                            return Ok(answer(&progress, broken(entry.seq, "does not follow the previous entry"), None));
                        }
                    }
                }
                if entry.compute_hash() != entry.hash {
                    return Ok(answer(&progress, broken(entry.seq, "its contents do not match its hash"), None));
                }
                match (&entry.actor_email, &entry.email_nonce, &entry.email_digest) {
                    (None, None, _) => {}
                    (Some(email), Some(nonce), Some(digest)) if email_digest(nonce, email) == *digest => {}
                    _ => return Ok(answer(&progress, broken(entry.seq, "its email does not match its digest"), None)),
                }
                if sk != keys::audit_entry_sk(&entry.time, entry.seq) {
                    return Ok(answer(&progress, broken(entry.seq, "its key does not match its time and seq"), None));
                }
                progress.count += 1;
                progress.prev = Some((entry.seq, entry.hash, entry.ttl));
            }
            match out.last_evaluated_key {
                None => return Ok(self.verify_end(&progress, &head, answer)),
                Some(mut k) if read >= limit => {
                    if let Some((seq, hash, ttl)) = &progress.prev {
                        k.insert("seq".into(), s(seq.to_string()));
                        k.insert("hash".into(), s(hash.clone()));
                        k.insert("pttl".into(), s(ttl.to_string()));
                    } else {
                        // Nothing checked yet (expired entries only): start over past them.
                        return Ok(answer(&progress, None, None));
                    }
                    k.insert("first".into(), s(progress.first.to_string()));
                    k.insert("count".into(), s(progress.count.to_string()));
                    return Ok(answer(&progress, None, self.cursor_key.encode(&binding, &k)));
                }
                Some(k) => start = Some(k),
            }
        }
    }

    /// The end of the chain: its last entry must be the head's.
    fn verify_end(
        &self,
        progress: &Progress,
        head: &Head,
        answer: impl Fn(&Progress, Option<ChainBreak>, Option<String>) -> AuditVerification,
    ) -> AuditVerification {
        let now = self.clock.epoch();
        let broken = |seq: u64, reason: &str| Some(ChainBreak { seq, reason: reason.to_owned() });
        match &progress.prev {
            None if head.seq > 0 && head.ttl > now => answer(progress, broken(head.seq, "entry missing (the head records it)"), None),
            None => answer(progress, None, None),
            Some((seq, _, _)) if *seq < head.seq => answer(progress, broken(seq + 1, "entry missing (the head records a later one)"), None),
            Some((_, hash, _)) if *hash != head.hash => answer(progress, broken(head.seq, "the last entry is not the one the head records"), None),
            Some(_) => answer(progress, None, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"q":2,"p":"x"}],"x":null}}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":{"x":null,"y":[1,{"p":"x","q":2}]},"b":1}"#);
        let reparsed: Value = serde_json::from_str(&canonical_json(&a)).unwrap();
        assert_eq!(canonical_json(&reparsed), canonical_json(&a), "stable through a round trip");
    }

    #[test]
    fn times_have_milliseconds_and_sort_as_text() {
        assert_eq!(parse_time_bound("2026-03-01T10:00:00+02:00").unwrap(), "2026-03-01T08:00:00.000Z");
        assert_eq!(parse_time_bound("2026-03-01T08:00:00.1234Z").unwrap(), "2026-03-01T08:00:00.123Z");
        assert!(parse_time_bound("yesterday").is_none());
        assert!(parse_time_bound("2026-03-01T08:00:00.000Z").unwrap() < parse_time_bound("2026-03-01T08:00:00.001Z").unwrap());
    }

    #[test]
    fn an_event_splits_into_its_targets_and_its_change() {
        let event: DomainEvent = serde_json::from_value(serde_json::json!({
            "id": "01J0000000000000000000000A", "kind": "member.role_changed", "orgId": "01J0000000000000000000000B",
            "actor": "u1", "at": "2026-01-01T00:00:00Z", "ttl": 1, "member": "u2", "role": "admin", "previousRole": "member",
            "request": {"requestId": "r1", "sourceIp": "203.0.113.9"}
        }))
        .unwrap();
        let (targets, change) = targets_and_change(&event);
        assert_eq!(targets, serde_json::json!({"member": "u2"}));
        assert_eq!(change, serde_json::json!({"role": "admin", "previousRole": "member"}));
    }

    #[test]
    fn the_email_digest_commits_to_the_email() {
        let d = email_digest("00ff", "ada@example.com");
        assert_eq!(d.len(), 64);
        assert_ne!(d, email_digest("00ff", "eve@example.com"));
        assert_ne!(d, email_digest("00fe", "ada@example.com"));
    }
}
