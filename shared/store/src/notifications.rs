//! Notifications: each member's in-app inbox in an org, their preferences, the record of the
//! mail sent for each notification, the suppression list, and the cross-org indexes the
//! notification sweep reads (tasks due, mail deferred by quiet hours, digests due).
//!
//! An inbox is one partition per member per org (`NOTIF#{org}#{user}`):
//! - `N#{source}`: a notification, where `source` is the id of what caused it (a domain
//!   event's ULID, or a reminder's id made from its task, due time and offset). Written with a
//!   condition that it does not exist, so a record delivered twice, or twice at once, makes
//!   one notification. Newest first by `source`, which sorts by time.
//! - While unread, a notification is also in the sparse index GSI1 `…#UNREAD`, by the ULID of
//!   its delivery: `?unread=true` is one query of that index.
//! - `INBOX`: the unread count and `readUpTo`, the delivery ULID up to which everything was
//!   marked read at once. Mark all read is one write; a notification delivered at or before
//!   `readUpTo` counts as read. Every change of a notification's read state and of the count
//!   is one transaction, so the count is exact and read in one GetItem.
//! - `PREFS`: the member's preferences; `DEFER#{source}`: a mail held until quiet hours end.
//!
//! Beside the inbox, `MAIL#{org}#{user}` / `{source}` records the mail sent for a
//! notification (a claim taken before sending, so one mail per notification).
//!
//! A membership's end deletes its inbox (a former member sees nothing), and every item of it
//! expires by TTL after the plan's retention.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::notify::{NotificationKind, Preferences};
use domain::work::{ProjectId, TaskId};
use domain::{DomainError, Email, OrgId, UserId};
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::entities::{Member, Org, OrgStatus};
use crate::item::{Entity, n, s, to_item};
use crate::keys::{self, Gsi, IndexKey, Key};
use crate::page::{Page, PageRequest, PagedQuery, Sort};
use crate::scope::{OrgPartition, OrgScope, ReadScope};
use crate::tasks::Task;
use crate::tx::{self, Expr, Tx};

/// One notification in a member's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// The id of what caused it (an event id, or a reminder's): unique in the inbox.
    pub id: String,
    pub kind: NotificationKind,
    pub org_id: OrgId,
    /// The user who caused it (`system` for reminders).
    pub actor: String,
    /// When it happened (RFC 3339).
    pub at: String,
    /// One line for the inbox.
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<ProjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    pub read: bool,
    /// The ULID of its delivery to the inbox (orders "unread" and "mark all read").
    #[schemars(skip)]
    #[serde(default)]
    pub(crate) delivered: String,
    #[schemars(skip)]
    #[serde(default)]
    pub(crate) ttl: i64,
}

impl Entity for Notification {
    const TYPE: &'static str = "notification";
}

/// What a new notification says; the store adds the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewNotification {
    pub id: String,
    pub kind: NotificationKind,
    pub actor: String,
    pub at: String,
    pub title: String,
    pub body: String,
    pub project_id: Option<ProjectId>,
    pub task_id: Option<TaskId>,
}

/// A notification as read for marking it read.
#[derive(Debug, Clone)]
pub struct NotificationState {
    notification: Notification,
}

/// A member's inbox counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inbox {
    #[serde(default)]
    unread: i64,
    #[serde(default)]
    read_up_to: String,
}

impl Entity for Inbox {
    const TYPE: &'static str = "inbox";
}

/// A member's preferences as stored, with the time of their next digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredPreferences {
    org_id: OrgId,
    user_id: UserId,
    preferences: Preferences,
    /// Epoch seconds of the next digest (absent when digests are off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_digest: Option<i64>,
    version: u64,
}

impl Entity for StoredPreferences {
    const TYPE: &'static str = "notification-preferences";
}

/// A mail claimed or sent for one notification.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MailRecord {
    status: String,
    /// Epoch seconds until which a claim in progress excludes others.
    locked_until: i64,
    ttl: i64,
}

impl Entity for MailRecord {
    const TYPE: &'static str = "notification-mail";
}

/// A mail waiting for the end of its recipient's quiet hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeferredMail {
    pub org_id: OrgId,
    pub user_id: UserId,
    /// What the mail is about.
    pub notification: NewNotification,
    /// Epoch seconds when it may be sent.
    pub send_at: i64,
    pub ttl: i64,
}

impl Entity for DeferredMail {
    const TYPE: &'static str = "deferred-mail";
}

/// A digest that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDigest {
    pub org_id: OrgId,
    pub user_id: UserId,
    /// Its scheduled time (epoch seconds).
    pub at: i64,
}

/// A suppressed address (bounced or complained).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Suppression {
    email: String,
    reason: String,
    at: String,
}

impl Entity for Suppression {
    const TYPE: &'static str = "suppression";
}

/// Where a sweep got to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SweepMark {
    up_to: i64,
}

impl Entity for SweepMark {
    const TYPE: &'static str = "sweep";
}

/// That an expired notification has left the unread count (so a redelivered record cannot
/// take it out twice).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CountedOut {
    at: i64,
}

impl Entity for CountedOut {
    const TYPE: &'static str = "notification-expired";
}

/// A member who may be notified in an org, established by reading their membership: the only
/// way to write to an inbox.
#[derive(Debug, Clone)]
pub struct Recipient {
    partition: OrgPartition,
    pub user_id: UserId,
    pub email: Option<Email>,
    pub display_name: Option<String>,
    /// The org's name as its members see it.
    pub org_name: String,
    /// How long the org's plan keeps notifications, in days.
    pub retention_days: u32,
}

impl Recipient {
    fn of(member: Member, org: &NotifyingOrg) -> Recipient {
        Recipient {
            partition: OrgPartition::new(org.id),
            user_id: member.user_id,
            email: member.email,
            display_name: member.display_name,
            org_name: org.name.clone(),
            retention_days: org.retention_days,
        }
    }

    pub fn org_id(&self) -> OrgId {
        self.partition.org_id()
    }
}

/// An org as its notifications need it.
#[derive(Debug, Clone)]
pub struct NotifyingOrg {
    pub id: OrgId,
    /// Its name as its members see it.
    pub name: String,
    /// How long its plan keeps notifications, in days.
    pub retention_days: u32,
    /// Suspended or being deleted: nobody is notified.
    pub active: bool,
}

/// Whether a mail may be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailClaim {
    /// Claimed: send it, then [`Store::mail_sent`] (or [`Store::release_mail`] on failure).
    Send,
    /// Already sent.
    Sent,
    /// Another delivery holds the claim: try again later.
    Busy,
}

/// How long a mail claim excludes others (longer than any send with its retries).
const MAIL_CLAIM_SECS: i64 = 60;
/// Deferred mail and mail records outlive their use by this much.
const MAIL_RECORD_SECS: i64 = 30 * 86_400;

pub(crate) fn inbox_pk(org: OrgId, user: &UserId) -> String {
    format!("NOTIF#{org}#{user}")
}
pub(crate) fn unread_pk(org: OrgId, user: &UserId) -> String {
    format!("NOTIF#{org}#{user}#UNREAD")
}
fn notification_key(org: OrgId, user: &UserId, id: &str) -> Key {
    Key { pk: inbox_pk(org, user), sk: format!("N#{id}") }
}
fn inbox_key(org: OrgId, user: &UserId) -> Key {
    Key { pk: inbox_pk(org, user), sk: "INBOX".into() }
}
fn preferences_key(org: OrgId, user: &UserId) -> Key {
    Key { pk: inbox_pk(org, user), sk: "PREFS".into() }
}
/// Outside the inbox's partition: the record of a mail outlives the inbox (the mail telling
/// a member they were removed is sent after their inbox is deleted).
fn mail_key(org: OrgId, user: &UserId, id: &str) -> Key {
    Key { pk: mail_pk(org, user), sk: id.to_owned() }
}
pub(crate) fn mail_pk(org: OrgId, user: &UserId) -> String {
    format!("MAIL#{org}#{user}")
}
fn deferred_key(org: OrgId, user: &UserId, id: &str) -> Key {
    Key { pk: inbox_pk(org, user), sk: format!("DEFER#{id}") }
}
fn suppression_key(email: &Email) -> Key {
    Key { pk: suppression_pk(email), sk: "SUPPRESS".into() }
}
pub(crate) fn suppression_pk(email: &Email) -> String {
    format!("SUPPRESS#{}", email.folded())
}
fn sweep_key(name: &str) -> Key {
    Key { pk: format!("SWEEP#{name}"), sk: "SWEEP".into() }
}
/// `YYYY-MM-DDTHH:MM:SSZ` of epoch seconds.
pub(crate) fn instant_key(epoch: i64) -> String {
    domain::epoch_rfc3339(epoch).unwrap_or_default()
}
/// The GSI4 bucket of time-based work of one kind on one UTC day.
pub(crate) fn day_bucket(kind: &str, epoch: i64) -> String {
    let key = instant_key(epoch);
    format!("{kind}#{}", key.get(..10).unwrap_or(&key))
}

const DEFERRED: &str = "DEFERRED";
const DIGEST: &str = "DIGEST";

/// Takes one notification delivered at `delivered` out of the unread count, unless the count
/// is already zero or "mark all read" passed it.
fn uncount(delivered: &str) -> Expr {
    Expr::update("ADD #unread :minus")
        .when("#unread > :zero AND (attribute_not_exists(#upTo) OR #upTo < :delivered)")
        .name("#unread", "unread")
        .name("#upTo", "readUpTo")
        .value(":minus", AttributeValue::N("-1".into()))
        .value(":zero", n(0))
        .value(":delivered", s(delivered))
}

impl Store {
    /// An org as its notifications need it (one read): `None` when it is gone.
    pub async fn notifying_org(&self, org: OrgId) -> Result<Option<NotifyingOrg>, DomainError> {
        let org: Option<Org> = self.get(&keys::org(&OrgPartition::new(org))).await?;
        Ok(org.map(|o| NotifyingOrg {
            id: o.id,
            name: o.settings.display_name.clone().unwrap_or(o.name),
            retention_days: o.plan.limits().notification_retention_days,
            active: o.status == OrgStatus::Active,
        }))
    }

    /// `user` as a recipient in `org` (read before): `None` when they are not a member (any
    /// more), or the org is not active. One read.
    pub async fn recipient_in(&self, org: &NotifyingOrg, user: &UserId) -> Result<Option<Recipient>, DomainError> {
        if !org.active {
            return Ok(None);
        }
        let member = self.get::<Member>(&keys::member(&OrgPartition::new(org.id), user)).await?;
        Ok(member.map(|m| Recipient::of(m, org)))
    }

    /// `user` as a recipient in `org`: the org and the membership, read at once.
    pub async fn recipient(&self, org: OrgId, user: &UserId) -> Result<Option<Recipient>, DomainError> {
        let member_key = keys::member(&OrgPartition::new(org), user);
        let (member, org) = futures::join!(self.get::<Member>(&member_key), self.notifying_org(org));
        Ok(match (member?, org?) {
            (Some(member), Some(org)) if org.active => Some(Recipient::of(member, &org)),
            _ => None,
        })
    }

    /// How a member is named in a notification: their display name, else their address.
    pub async fn member_name(&self, org: OrgId, user: &UserId) -> Result<Option<String>, DomainError> {
        let member = self.get::<Member>(&keys::member(&OrgPartition::new(org), user)).await?;
        Ok(member.and_then(|m| m.display_name.or_else(|| m.email.map(|e| e.as_str().to_owned()))))
    }

    /// The address of a user (their profile's), for mail to someone who is no longer a member.
    pub async fn user_email(&self, user: &UserId) -> Result<Option<Email>, DomainError> {
        Ok(self.get_user(user).await?.and_then(|p| p.email))
    }

    /// Puts `new` in the recipient's inbox, once: `false` when it is there already (a
    /// duplicate delivery).
    pub async fn deliver_notification(&self, to: &Recipient, new: &NewNotification) -> Result<bool, DomainError> {
        let org = to.org_id();
        let ttl = self.clock.epoch() + i64::from(to.retention_days) * 86_400;
        let mut notification = Notification {
            id: new.id.clone(),
            kind: new.kind,
            org_id: org,
            actor: new.actor.clone(),
            at: new.at.clone(),
            title: new.title.clone(),
            body: new.body.clone(),
            project_id: new.project_id,
            task_id: new.task_id,
            read: false,
            delivered: self.time_ulid(),
            ttl,
        };
        let key = notification_key(org, &to.user_id, &new.id);
        const DUPLICATE: DomainError = DomainError::Conflict("notification exists");
        const READ_ALREADY: DomainError = DomainError::Conflict("inbox read past it");
        for _ in 0..2 {
            let unread = !notification.read;
            let indexes = if unread { vec![IndexKey { index: Gsi::One, pk: unread_pk(org, &to.user_id), sk: notification.delivered.clone() }] } else { vec![] };
            let mut tx = Tx::default();
            tx.put(&self.table, to_item(&notification, &key, &indexes)?, Some(Expr::condition("attribute_not_exists(PK)")), DUPLICATE);
            if unread {
                tx.update(
                    &self.table,
                    &inbox_key(org, &to.user_id),
                    Expr::update("SET #type = :type, #ttl = :ttl ADD #unread :one")
                        .when("attribute_not_exists(#upTo) OR #upTo < :delivered")
                        .name("#type", keys::TYPE)
                        .name("#ttl", "ttl")
                        .name("#unread", "unread")
                        .name("#upTo", "readUpTo")
                        .value(":type", s(<Inbox as Entity>::TYPE))
                        .value(":ttl", AttributeValue::N(ttl.to_string()))
                        .value(":one", n(1))
                        .value(":delivered", s(&notification.delivered)),
                    READ_ALREADY,
                );
            }
            match tx.run(self).await {
                Ok(()) => return Ok(true),
                Err(e) if e == DUPLICATE => return Ok(false),
                // Everything was marked read after this delivery began: it arrives read.
                Err(e) if e == READ_ALREADY => notification.read = true,
                Err(e) => return Err(e),
            }
        }
        Err(DomainError::Unavailable)
    }

    /// The caller's notifications in the org, newest first; only the unread ones with
    /// `unread_only` (one query of the unread index, read together with the inbox counters).
    /// `user` is the caller (their verified identity); `scope` may be pending, so the query
    /// runs beside the authorization.
    pub async fn list_notifications(
        &self,
        scope: &impl ReadScope,
        user: &UserId,
        unread_only: bool,
        page: &PageRequest,
    ) -> Result<Page<Notification>, DomainError> {
        let org = scope.partition().org_id();
        if !unread_only {
            let pk = inbox_pk(org, user);
            let q = PagedQuery::on_table("notifications", &pk, Sort::Prefix("N#")).newest_first();
            let (listed, inbox) = futures::join!(self.query_page::<Notification>(&q, page), self.inbox(org, user));
            let (mut listed, inbox) = (listed?, inbox?);
            for item in &mut listed.items {
                item.read = item.read || item.delivered <= inbox.read_up_to;
            }
            return Ok(listed);
        }
        self.unread_page(org, user, page).await
    }

    /// A page of the unread index, newest delivery first, read with the inbox's "mark all"
    /// point: once one notification was marked read by it, so are all after it, and the
    /// listing ends there.
    async fn unread_page(&self, org: OrgId, user: &UserId, page: &PageRequest) -> Result<Page<Notification>, DomainError> {
        let pk = unread_pk(org, user);
        let q = PagedQuery::on_index("unread-notifications", Gsi::One, &pk, Sort::Prefix("")).newest_first();
        let (listed, inbox) = futures::join!(self.query_page::<Notification>(&q, page), self.inbox(org, user));
        let (mut listed, inbox) = (listed?, inbox?);
        if let Some(i) = listed.items.iter().position(|n| n.delivered <= inbox.read_up_to) {
            listed.items.truncate(i);
            listed.next_cursor = None;
        }
        Ok(listed)
    }

    async fn inbox(&self, org: OrgId, user: &UserId) -> Result<Inbox, DomainError> {
        Ok(self.get::<Inbox>(&inbox_key(org, user)).await?.unwrap_or_default())
    }

    /// How many of the caller's notifications in the org are unread: one read (beside the
    /// authorization).
    pub async fn unread_count(&self, scope: &impl ReadScope, user: &UserId) -> Result<u64, DomainError> {
        Ok(u64::try_from(self.inbox(scope.partition().org_id(), user).await?.unread).unwrap_or(0))
    }

    /// One of the caller's notifications as it stands, read beside the authorization (with
    /// the inbox's mark-all point), for [`Store::mark_notification_read`].
    pub async fn notification_state(&self, scope: &impl ReadScope, user: &UserId, id: &str) -> Result<Option<NotificationState>, DomainError> {
        let org = scope.partition().org_id();
        let key = notification_key(org, user, id);
        let (current, inbox) = futures::join!(self.get::<Notification>(&key), self.inbox(org, user));
        let (current, inbox) = (current?, inbox?);
        Ok(current.map(|mut notification| {
            notification.read = notification.read || notification.delivered <= inbox.read_up_to;
            NotificationState { notification }
        }))
    }

    /// Marks one of the caller's notifications read (again: nothing changes); one transaction
    /// of the notification and the unread count.
    pub async fn mark_notification_read(&self, scope: &OrgScope, state: NotificationState) -> Result<Notification, DomainError> {
        crate::orgs::require_member(scope)?;
        let mut current = state.notification;
        if current.read {
            return Ok(current);
        }
        let (org, user) = (scope.org_id(), &scope.user);
        if current.org_id != org {
            return Err(DomainError::NotFound);
        }
        let key = notification_key(org, user, &current.id);
        let changed = DomainError::Conflict("the notification changed meanwhile; try again");
        let mut tx = Tx::default();
        tx.update(
            &self.table,
            &key,
            Expr::update("SET #read = :true REMOVE #gpk, #gsk")
                .when("#read = :false")
                .name("#read", "read")
                .name("#gpk", keys::GSI1PK)
                .name("#gsk", keys::GSI1SK)
                .value(":true", AttributeValue::Bool(true))
                .value(":false", AttributeValue::Bool(false)),
            changed.clone(),
        )
        .update(&self.table, &inbox_key(org, user), uncount(&current.delivered), changed);
        tx.run(self).await?;
        current.read = true;
        Ok(current)
    }

    /// Marks every notification of the caller in the org read: one write.
    pub async fn mark_all_notifications_read(&self, scope: &OrgScope) -> Result<(), DomainError> {
        crate::orgs::require_member(scope)?;
        let (org, user) = (scope.org_id(), &scope.user);
        self.update_one(
            &inbox_key(org, user),
            Expr::update("SET #type = :type, #unread = :zero, #upTo = :now")
                .name("#type", keys::TYPE)
                .name("#unread", "unread")
                .name("#upTo", "readUpTo")
                .value(":type", s(<Inbox as Entity>::TYPE))
                .value(":zero", n(0))
                .value(":now", s(self.time_ulid())),
            DomainError::Unavailable,
        )
        .await
    }

    /// The caller's preferences in the org (the defaults until they set any), beside the
    /// authorization.
    pub async fn notification_preferences(&self, scope: &impl ReadScope, user: &UserId) -> Result<Preferences, DomainError> {
        self.preferences_of(scope.partition().org_id(), user).await
    }

    /// A recipient's preferences.
    pub async fn preferences_of(&self, org: OrgId, user: &UserId) -> Result<Preferences, DomainError> {
        Ok(self.get::<StoredPreferences>(&preferences_key(org, user)).await?.map(|p| p.preferences).unwrap_or_default())
    }

    /// Replaces the caller's preferences (validated); schedules their next digest.
    pub async fn set_notification_preferences(&self, scope: &OrgScope, preferences: Preferences) -> Result<Preferences, DomainError> {
        crate::orgs::require_member(scope)?;
        self.write_preferences(scope.org_id(), &scope.user, preferences.validate()?).await
    }

    async fn write_preferences(&self, org: OrgId, user: &UserId, preferences: Preferences) -> Result<Preferences, DomainError> {
        let next_digest = preferences.next_digest_after(self.clock.epoch());
        let stored = StoredPreferences { org_id: org, user_id: user.clone(), preferences, next_digest, version: 1 };
        let indexes: Vec<IndexKey> = next_digest
            .map(|at| IndexKey { index: Gsi::Four, pk: day_bucket(DIGEST, at), sk: format!("{}#{org}#{user}", instant_key(at)) })
            .into_iter()
            .collect();
        self.client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(to_item(&stored, &preferences_key(org, user), &indexes)?))
            .send()
            .await
            .map_err(tx::unexpected)?;
        Ok(stored.preferences)
    }

    /// Turns email off for one kind of notification (an unsubscribe link names the user, the
    /// org and the kind, and can change nothing else). Idempotent.
    pub async fn unsubscribe(&self, org: OrgId, user: &UserId, kind: NotificationKind) -> Result<(), DomainError> {
        let mut preferences = self.preferences_of(org, user).await?;
        if kind == NotificationKind::Digest {
            if preferences.digest.frequency == domain::notify::DigestFrequency::Off {
                return Ok(());
            }
            preferences.digest.frequency = domain::notify::DigestFrequency::Off;
            return self.write_preferences(org, user, preferences).await.map(|_| ());
        }
        let now = preferences.channel(kind);
        let next = match now {
            domain::notify::Channel::Both => domain::notify::Channel::InApp,
            domain::notify::Channel::Email => domain::notify::Channel::None,
            other => other,
        };
        if next == now {
            return Ok(());
        }
        preferences.channels.insert(kind, next);
        self.write_preferences(org, user, preferences).await.map(|_| ())
    }

    /// Claims the mail of notification `id` for `user`: one mail per notification, however
    /// often (or concurrently) it is delivered.
    pub async fn claim_mail(&self, org: OrgId, user: &UserId, id: &str) -> Result<MailClaim, DomainError> {
        let now = self.clock.epoch();
        let record = MailRecord { status: "sending".into(), locked_until: now + MAIL_CLAIM_SECS, ttl: now + MAIL_RECORD_SECS };
        let key = mail_key(org, user, id);
        let out = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(to_item(&record, &key, &[])?))
            .condition_expression("attribute_not_exists(PK) OR (#status = :sending AND #until < :now)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#until", "lockedUntil")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(MailClaim::Send),
            Err(e) if tx::is_condition_failure(&e) => {
                let held: Option<MailRecord> = self.get(&key).await?;
                Ok(if held.is_some_and(|r| r.status == "sent") { MailClaim::Sent } else { MailClaim::Busy })
            }
            Err(e) => Err(tx::unexpected(e)),
        }
    }

    /// Records the claimed mail as sent.
    pub async fn mail_sent(&self, org: OrgId, user: &UserId, id: &str) -> Result<(), DomainError> {
        self.update_one(
            &mail_key(org, user, id),
            Expr::update("SET #status = :sent").name("#status", "status").value(":sent", s("sent")),
            DomainError::Unavailable,
        )
        .await
    }

    /// Gives up a claim whose send failed, so that the retry may send.
    pub async fn release_mail(&self, org: OrgId, user: &UserId, id: &str) -> Result<(), DomainError> {
        self.client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(mail_key(org, user, id).to_map()))
            .condition_expression("#status = :sending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sending", s("sending"))
            .send()
            .await
            .map(|_| ())
            .or_else(|e| if tx::is_condition_failure(&e) { Ok(()) } else { Err(tx::unexpected(e)) })
    }

    /// Holds the mail of `notification` until `send_at` (the end of quiet hours).
    pub async fn defer_mail(&self, to: &Recipient, notification: &NewNotification, send_at: i64) -> Result<(), DomainError> {
        let org = to.org_id();
        let id = &notification.id;
        let mail = DeferredMail { org_id: org, user_id: to.user_id.clone(), notification: notification.clone(), send_at, ttl: send_at + MAIL_RECORD_SECS };
        let index = IndexKey { index: Gsi::Four, pk: day_bucket(DEFERRED, send_at), sk: format!("{}#{org}#{}#{id}", instant_key(send_at), to.user_id) };
        self.client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(to_item(&mail, &deferred_key(org, &to.user_id, id), &[index])?))
            .send()
            .await
            .map_err(tx::unexpected)?;
        Ok(())
    }

    /// Deferred mail due by `now`, from the day buckets since `since`.
    pub async fn deferred_mail_due(&self, since: i64, now: i64) -> Result<Vec<DeferredMail>, DomainError> {
        self.bucketed::<DeferredMail>(DEFERRED, since, now).await
    }

    /// Forgets a deferred mail (sent, or nothing left to send).
    pub async fn drop_deferred_mail(&self, mail: &DeferredMail) -> Result<(), DomainError> {
        self.client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(deferred_key(mail.org_id, &mail.user_id, &mail.notification.id).to_map()))
            .send()
            .await
            .map_err(tx::unexpected)?;
        Ok(())
    }

    /// Digests due by `now`, from the day buckets since `since`.
    pub async fn digests_due(&self, since: i64, now: i64) -> Result<Vec<DueDigest>, DomainError> {
        let stored = self.bucketed::<StoredPreferences>(DIGEST, since, now).await?;
        Ok(stored.into_iter().filter_map(|p| p.next_digest.map(|at| DueDigest { org_id: p.org_id, user_id: p.user_id, at })).collect())
    }

    /// Moves a digest that was sent (or had nothing to say) to its next time, once: `false`
    /// when another sweep did it first.
    pub async fn digest_done(&self, digest: &DueDigest) -> Result<bool, DomainError> {
        let key = preferences_key(digest.org_id, &digest.user_id);
        let Some(stored) = self.get::<StoredPreferences>(&key).await? else { return Ok(false) };
        if stored.next_digest != Some(digest.at) {
            return Ok(false);
        }
        let next = stored.preferences.next_digest_after(digest.at.max(self.clock.epoch()));
        let (org, user) = (digest.org_id, &digest.user_id);
        let mut expr = Expr::condition("#next = :at").name("#next", "nextDigest").value(":at", AttributeValue::N(digest.at.to_string()));
        expr = match next {
            Some(at) => expr
                .update_with("SET #next = :to, #gpk = :gpk, #gsk = :gsk")
                .name("#gpk", keys::GSI4PK)
                .name("#gsk", keys::GSI4SK)
                .value(":to", AttributeValue::N(at.to_string()))
                .value(":gpk", s(day_bucket(DIGEST, at)))
                .value(":gsk", s(format!("{}#{org}#{user}", instant_key(at)))),
            None => expr.update_with("REMOVE #next, #gpk, #gsk").name("#gpk", keys::GSI4PK).name("#gsk", keys::GSI4SK),
        };
        match self.update_one(&key, expr, DomainError::Conflict("digest moved")).await {
            Ok(()) => Ok(true),
            Err(DomainError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A recipient's unread notifications, newest first (at most `limit`), for a digest.
    pub async fn unread_notifications(&self, to: &Recipient, limit: u32) -> Result<Vec<Notification>, DomainError> {
        Ok(self.unread_page(to.org_id(), &to.user_id, &PageRequest::first(limit)).await?.items)
    }

    /// The open tasks of a recipient that fall due before `before` (overdue ones included),
    /// soonest first (at most `limit`), for a digest.
    pub async fn tasks_due_for(&self, to: &Recipient, before: i64, limit: u32) -> Result<Vec<Task>, DomainError> {
        let pk = keys::assigned_pk(&to.partition, &to.user_id);
        let below = instant_key(before);
        let q = PagedQuery::on_index("assigned", Gsi::Two, &pk, Sort::Below(&below));
        Ok(self.query_page::<Task>(&q, &PageRequest::first(limit)).await?.items)
    }

    /// Every org's open tasks due in `(after, until]` (epoch seconds), from the due-day index.
    pub async fn tasks_due_between(&self, after: i64, until: i64) -> Result<Vec<Task>, DomainError> {
        let (from, to) = (instant_key(after), instant_key(until));
        let mut tasks = Vec::new();
        let mut day = after - after.rem_euclid(86_400);
        while day <= until {
            let pk = keys::due_day_pk(&instant_key(day));
            // `>` after and `<=` until: the sort keys are `{due}#{org}#…`.
            let (low, high) = (format!("{from}#~"), format!("{to}#~"));
            let q = PagedQuery::on_index("due-day", Gsi::Four, &pk, Sort::Between(&low, &high));
            tasks.extend(self.all_pages::<Task>(&q).await?);
            day += 86_400;
        }
        Ok(tasks)
    }

    /// A task as it is now (a reminder re-reads it before it notifies).
    pub async fn task_now(&self, org: OrgId, project: ProjectId, task: TaskId) -> Result<Option<Task>, DomainError> {
        self.get(&keys::task(&OrgPartition::new(org), project, task)).await
    }

    pub(crate) async fn bucketed<E: Entity>(&self, kind: &str, since: i64, now: i64) -> Result<Vec<E>, DomainError> {
        let mut found = Vec::new();
        let mut day = since - since.rem_euclid(86_400);
        let until = format!("{}#~", instant_key(now));
        while day <= now {
            let pk = day_bucket(kind, day);
            let q = PagedQuery::on_index("bucket", Gsi::Four, &pk, Sort::Below(&until));
            found.extend(self.all_pages::<E>(&q).await?);
            day += 86_400;
        }
        Ok(found)
    }

    async fn all_pages<E: Entity>(&self, q: &PagedQuery<'_>) -> Result<Vec<E>, DomainError> {
        let mut found = Vec::new();
        let mut page = PageRequest::first(100);
        loop {
            let listed = self.query_page::<E>(q, &page).await?;
            found.extend(listed.items);
            match listed.next_cursor {
                Some(cursor) => page.cursor = Some(cursor),
                None => return Ok(found),
            }
        }
    }

    /// Where the sweep `name` got to (epoch seconds), if it ran before.
    pub async fn sweep_mark(&self, name: &str) -> Result<Option<i64>, DomainError> {
        Ok(self.get::<SweepMark>(&sweep_key(name)).await?.map(|m| m.up_to))
    }

    /// Records that the sweep `name` covered everything up to `up_to`.
    pub async fn set_sweep_mark(&self, name: &str, up_to: i64) -> Result<(), DomainError> {
        self.client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(to_item(&SweepMark { up_to }, &sweep_key(name), &[])?))
            .condition_expression("attribute_not_exists(#upTo) OR #upTo < :upTo")
            .expression_attribute_names("#upTo", "upTo")
            .expression_attribute_values(":upTo", AttributeValue::N(up_to.to_string()))
            .send()
            .await
            .map(|_| ())
            .or_else(|e| if tx::is_condition_failure(&e) { Ok(()) } else { Err(tx::unexpected(e)) })
    }

    /// Whether mail to `email` is suppressed (it bounced or complained).
    pub async fn is_suppressed(&self, email: &Email) -> Result<bool, DomainError> {
        Ok(self.get::<Suppression>(&suppression_key(email)).await?.is_some())
    }

    /// Puts `email` on the suppression list.
    pub async fn suppress(&self, email: &Email, reason: &str) -> Result<(), DomainError> {
        let item = Suppression { email: email.as_str().to_owned(), reason: reason.to_owned(), at: self.clock.rfc3339() };
        self.client.put_item().table_name(&*self.table).set_item(Some(to_item(&item, &suppression_key(email), &[])?)).send().await.map_err(tx::unexpected)?;
        Ok(())
    }

    /// A notification that DynamoDB's TTL deleted while it was unread (its stream record's old
    /// image) leaves the unread count, once however often the record is delivered: the
    /// decrement is one transaction with a marker of the expiry. Anything else (read, already
    /// counted out, marked read by "mark all", an inbox deleted since): nothing.
    pub async fn notification_expired(&self, old_image: &serde_dynamo::Item) -> Result<(), DomainError> {
        let is_notification = matches!(old_image.get(keys::TYPE), Some(serde_dynamo::AttributeValue::S(t)) if t == <Notification as Entity>::TYPE);
        let pk = match old_image.get(keys::PK) {
            Some(serde_dynamo::AttributeValue::S(pk)) if is_notification => pk.clone(),
            _ => return Ok(()),
        };
        let expired: Notification = serde_dynamo::from_item(old_image.clone()).map_err(|e| {
            tracing::error!(error = %e, "expired notification image does not parse");
            DomainError::Unavailable
        })?;
        let user = pk.strip_prefix(&format!("NOTIF#{}#", expired.org_id)).and_then(|u| u.parse::<UserId>().ok());
        let Some(user) = user.filter(|u| inbox_pk(expired.org_id, u) == pk) else { return Ok(()) };
        if expired.read {
            return Ok(());
        }
        let marker = Key { pk: pk.clone(), sk: format!("EXPIRED#{}", expired.id) };
        const COUNTED: DomainError = DomainError::Conflict("already counted out");
        let mut tx = Tx::default();
        tx.put(&self.table, to_item(&CountedOut { at: self.clock.epoch() }, &marker, &[])?, Some(Expr::condition("attribute_not_exists(PK)")), COUNTED).update(
            &self.table,
            &inbox_key(expired.org_id, &user),
            uncount(&expired.delivered),
            COUNTED,
        );
        match tx.run(self).await {
            Ok(()) | Err(DomainError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes the inbox of `user` in `org` once they are no longer a member.
    pub async fn delete_inbox(&self, org: OrgId, user: &UserId) -> Result<(), DomainError> {
        if self.recipient(org, user).await?.is_some() {
            return Ok(());
        }
        self.delete_prefix(&inbox_pk(org, user), "").await
    }
}
