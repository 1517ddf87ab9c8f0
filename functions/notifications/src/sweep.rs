//! The sweep, every 15 minutes on an EventBridge Scheduler schedule:
//!
//! - due-date reminders: tasks whose reminder time (24 hours before the due time, and the due
//!   time itself for "overdue") passed since the last sweep, read from the cross-org due-day
//!   index. Each task is read again before anyone is notified (still open, still due then),
//!   and each reminder's id is made from its task, due time and offset, so however often the
//!   sweep runs (or overlaps) there is one reminder per task, due time and offset. A new due
//!   date is a new reminder; a completed or deleted task leaves the index and gets none.
//! - mail held back by quiet hours, once they end;
//! - digests whose time came (each user's local hour, in their time zone).
//!
//! The sweep records how far it got only when everything succeeded, so a failure is retried
//! by the next run; a sweep that did not run for a while catches up (up to a week).

use domain::notify::{DigestFrequency, NotificationKind};
use domain::work::Due;
use futures::StreamExt;
use store::{DueDigest, NewNotification, SYSTEM_ACTOR, Task};

use crate::AppState;
use crate::compose::reminder_id;
use crate::consumer::{deliver, send_once};

/// The schedule that runs the sweep.
pub const SWEEP_SCHEDULE: &str = "notification-sweep";
/// The sweep's mark in the table.
const MARK: &str = "notifications";
/// How often the schedule fires: the window of a first sweep.
const PERIOD_SECS: i64 = 15 * 60;
/// How far back a sweep catches up.
const MAX_CATCH_UP_SECS: i64 = 7 * 86_400;
/// The "due soon" reminder comes this long before the due time.
pub const DUE_SOON_SECS: i64 = 86_400;
/// Deferred mail and digests are looked for this far back (they stay until done).
const PENDING_LOOKBACK_SECS: i64 = 3 * 86_400;
/// At most this many lines of each list in a digest.
const DIGEST_LINES: u32 = 20;

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub reminders: usize,
    pub deferred_mail: usize,
    pub digests: usize,
    pub errors: usize,
}

/// Runs the sweep of the schedule.
pub async fn on_schedule(app: &AppState, event: api::ScheduledEvent) -> Result<(), String> {
    if event.detail.schedule != SWEEP_SCHEDULE {
        return Err(format!("unknown schedule {}", event.detail.schedule));
    }
    let report = sweep(app).await?;
    tracing::info!(reminders = report.reminders, deferred_mail = report.deferred_mail, digests = report.digests, errors = report.errors, "notification sweep");
    if report.errors > 0 { Err(format!("{} items of the notification sweep failed; the next sweep retries them", report.errors)) } else { Ok(()) }
}

/// One sweep (see the module's documentation).
pub async fn sweep(app: &AppState) -> Result<SweepReport, String> {
    let store = &app.store;
    let now = store.clock().epoch();
    let since = store.sweep_mark(MARK).await.map_err(|e| e.to_string())?.unwrap_or(now - PERIOD_SECS).max(now - MAX_CATCH_UP_SECS);
    let mut report = SweepReport::default();
    let mut tally = |results: Vec<Result<bool, String>>| {
        let mut done = 0;
        for result in results {
            match result {
                Ok(did) => done += usize::from(did),
                Err(e) => {
                    tracing::error!(error = %e, "notification sweep item failed");
                    report.errors += 1;
                }
            }
        }
        done
    };
    let mut reminders = 0;
    if since < now {
        for (offset, kind) in [(DUE_SOON_SECS, NotificationKind::DueSoon), (0, NotificationKind::Overdue)] {
            let tasks = store.tasks_due_between(since + offset, now + offset).await.map_err(|e| e.to_string())?;
            reminders += tally(at_once(tasks.into_iter().map(|task| async move { remind(app, &task, offset, kind).await })).await);
        }
    }
    let mail = store.deferred_mail_due(now - PENDING_LOOKBACK_SECS, now).await.map_err(|e| e.to_string())?;
    let deferred = tally(at_once(mail.into_iter().map(|m| async move { send_deferred(app, &m).await })).await);
    let due = store.digests_due(now - PENDING_LOOKBACK_SECS, now).await.map_err(|e| e.to_string())?;
    let digests = tally(at_once(due.into_iter().map(|d| async move { send_digest(app, &d, now).await })).await);
    report.reminders = reminders;
    report.deferred_mail = deferred;
    report.digests = digests;
    if report.errors == 0 {
        store.set_sweep_mark(MARK, now).await.map_err(|e| e.to_string())?;
    }
    Ok(report)
}

/// How many items of a sweep are worked on at once.
const ITEMS_IN_FLIGHT: usize = 8;

/// Runs `work`, [`ITEMS_IN_FLIGHT`] at a time; answers every result.
async fn at_once<F: std::future::Future<Output = Result<bool, String>>>(work: impl Iterator<Item = F>) -> Vec<Result<bool, String>> {
    futures::stream::iter(work).buffer_unordered(ITEMS_IN_FLIGHT).collect().await
}

fn epoch_of(due: &Due) -> Option<i64> {
    domain::rfc3339_epoch(&due.key())
}

/// The reminder of `offset` seconds before `indexed`'s due time, if the task (read again)
/// still calls for it. True when it was delivered.
async fn remind(app: &AppState, indexed: &Task, offset: i64, kind: NotificationKind) -> Result<bool, String> {
    let task = app.store.task_now(indexed.org_id, indexed.project_id, indexed.id).await.map_err(|e| e.to_string())?;
    let Some(task) = task.filter(|t| t.status.is_open()) else { return Ok(false) };
    let (Some(due), Some(indexed_due)) = (&task.due, &indexed.due) else { return Ok(false) };
    if due.key() != indexed_due.key() {
        // Rescheduled since the index was read: the new due time has its own reminder.
        return Ok(false);
    }
    let Some(due_at) = epoch_of(due) else { return Ok(false) };
    let fire_at = due_at - offset;
    let recipient = task.assignee.clone().unwrap_or_else(|| task.created_by.clone());
    let fire_ms = u64::try_from(fire_at.max(0)).unwrap_or(0) * 1000;
    let title = match kind {
        NotificationKind::Overdue => format!("\u{201c}{}\u{201d} is overdue", task.title),
        _ => format!("\u{201c}{}\u{201d} is due soon", task.title),
    };
    let note = NewNotification {
        id: reminder_id(&task.id.to_string(), &due.key(), offset, fire_ms),
        kind,
        actor: SYSTEM_ACTOR.into(),
        at: domain::epoch_rfc3339(fire_at).ok_or("a reminder time out of range")?,
        title,
        body: format!("Due {}.", due.as_str()),
        project_id: Some(task.project_id),
        task_id: Some(task.id),
    };
    let Some(org) = app.store.notifying_org(task.org_id).await.map_err(|e| e.to_string())? else { return Ok(false) };
    deliver(app, &org, &recipient, &note).await?;
    Ok(true)
}

/// A mail held back by quiet hours: sent (once) if its recipient is still a member.
async fn send_deferred(app: &AppState, mail: &store::DeferredMail) -> Result<bool, String> {
    let store = &app.store;
    let recipient = store.recipient(mail.org_id, &mail.user_id).await.map_err(|e| e.to_string())?;
    let sent = match recipient.as_ref().and_then(|r| r.email.as_ref().map(|e| (r, e))) {
        Some((r, email)) => {
            send_once(app, mail.org_id, &mail.user_id, email, &r.org_name, &mail.notification).await?;
            true
        }
        None => false,
    };
    store.drop_deferred_mail(mail).await.map_err(|e| e.to_string())?;
    Ok(sent)
}

/// A digest: the recipient's unread notifications and their tasks due soon or overdue; no
/// mail when there is nothing. Then the next digest is scheduled (once, whoever gets there).
async fn send_digest(app: &AppState, digest: &DueDigest, now: i64) -> Result<bool, String> {
    let store = &app.store;
    let err = |e: domain::DomainError| e.to_string();
    let mut sent = false;
    if let Some(r) = store.recipient(digest.org_id, &digest.user_id).await.map_err(err)?
        && let Some(email) = &r.email
    {
        let preferences = store.preferences_of(digest.org_id, &digest.user_id).await.map_err(err)?;
        let (period, label) = match preferences.digest.frequency {
            DigestFrequency::Weekly => (7 * 86_400, "weekly"),
            _ => (86_400, "daily"),
        };
        let (unread, due) = futures::join!(store.unread_notifications(&r, DIGEST_LINES), store.tasks_due_for(&r, now + period, DIGEST_LINES));
        let (unread, due) = (unread.map_err(err)?, due.map_err(err)?);
        if !unread.is_empty() || !due.is_empty() {
            let mut lines = Vec::new();
            if !unread.is_empty() {
                lines.push(format!("Unread notifications ({}):", unread.len()));
                lines.extend(unread.iter().map(|n| format!("\u{2022} {}", n.title)));
            }
            if !due.is_empty() {
                lines.push("Your tasks due soon or overdue:".to_owned());
                lines.extend(due.iter().map(|t| format!("\u{2022} {} (due {})", t.title, t.due.as_ref().map(Due::as_str).unwrap_or("-"))));
            }
            let note = NewNotification {
                id: format!("DIGEST#{}", digest.at),
                kind: NotificationKind::Digest,
                actor: SYSTEM_ACTOR.into(),
                at: domain::epoch_rfc3339(digest.at).ok_or("a digest time out of range")?,
                title: format!("Your {label} digest for {} ({})", r.org_name, domain::notify::local_date(&preferences, digest.at)),
                body: lines.join("\n"),
                project_id: None,
                task_id: None,
            };
            send_once(app, digest.org_id, &digest.user_id, email, &r.org_name, &note).await?;
            sent = true;
        }
    }
    store.digest_done(digest).await.map_err(err)?;
    Ok(sent)
}
