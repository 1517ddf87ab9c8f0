//! The stream consumer: domain events become notifications (and an unread notification
//! that expired leaves the unread count), and the delivery of one
//! notification to one recipient (in-app, email now, email after quiet hours, or into the
//! digest), shared with the sweep's reminders.

use api::RecordFailures;
use aws_lambda_events::dynamodb::{Event as StreamEvent, EventRecord};
use domain::notify::{DigestFrequency, NotificationKind, UnsubscribeToken};
use domain::{Email, OrgId, UserId};
use futures::StreamExt;
use store::{DomainEvent, EventKind, MailClaim, NewNotification, NotifyingOrg};

use crate::AppState;
use crate::compose::{content, notifications_for};
use crate::mailer::Outgoing;

/// How many records of a batch are handled at once.
const RECORDS_IN_FLIGHT: usize = 8;

/// Handles every record of the batch; answers the ids of those that failed (retried alone,
/// then dead-lettered).
pub async fn on_stream(app: &AppState, event: StreamEvent) -> RecordFailures {
    let handled = futures::stream::iter(event.records)
        .map(|record| async move {
            let result = on_record(app, &record).await;
            (record.event_id, result)
        })
        .buffer_unordered(RECORDS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    let mut failed = Vec::new();
    for (event_id, result) in handled {
        if let Err(e) = result {
            tracing::error!(%event_id, error = %e, "domain event not handled");
            failed.push(event_id);
        }
    }
    failed
}

async fn on_record(app: &AppState, record: &EventRecord) -> Result<(), String> {
    if record.event_name == "REMOVE" {
        // An unread notification that expired (TTL) leaves the unread count.
        return app.store.notification_expired(&record.change.old_image).await.map_err(|e| e.to_string());
    }
    if record.event_name != "INSERT" {
        return Ok(());
    }
    let Some(event) = DomainEvent::from_image(&record.change.new_image)? else {
        tracing::warn!(event_id = %record.event_id, "stream record that is not a domain event; skipped");
        return Ok(());
    };
    on_event(app, &event).await
}

/// Makes the notifications of one event. Idempotent: every write and mail is keyed by the
/// event id and recipient.
pub async fn on_event(app: &AppState, event: &DomainEvent) -> Result<(), String> {
    let store = &app.store;
    let org = event.org_id;
    if event.kind == EventKind::MemberRemoved
        && let Some(member) = &event.member
    {
        // A former member sees nothing of the org's inbox.
        store.delete_inbox(org, member).await.map_err(|e| e.to_string())?;
    }
    let planned = notifications_for(event);
    if planned.is_empty() {
        return Ok(());
    }
    let subject = event.member.as_ref().map(UserId::as_str).unwrap_or(&event.actor);
    let (actor_name, subject_name, org_info) = futures::join!(name_of(app, org, &event.actor), name_of(app, org, subject), store.notifying_org(org));
    let Some(org_info) = org_info.map_err(|e| e.to_string())? else { return Ok(()) };
    // Each recipient on their own, at once: their reads and writes do not depend on another's.
    let delivered = futures::future::join_all(planned.iter().map(|p| {
        let note = content(event, p.kind, &actor_name, &subject_name, &org_info.name);
        let org_info = &org_info;
        async move { deliver(app, org_info, &p.recipient, &note).await }
    }))
    .await;
    delivered.into_iter().collect()
}

/// How a user is named in a notification: their display name or address in the org.
async fn name_of(app: &AppState, org: OrgId, user: &str) -> String {
    if user == store::SYSTEM_ACTOR || user == store::PLATFORM_ACTOR {
        return "The platform".into();
    }
    let Ok(id) = user.parse::<UserId>() else { return "Someone".into() };
    app.store.member_name(org, &id).await.ok().flatten().unwrap_or_else(|| "Someone".into())
}

/// Delivers one notification to `user` in `org` (read before) as their preferences say. A
/// former member gets nothing, except the mail telling them they were removed.
pub(crate) async fn deliver(app: &AppState, org: &NotifyingOrg, user: &UserId, note: &NewNotification) -> Result<(), String> {
    let store = &app.store;
    let err = |e: domain::DomainError| e.to_string();
    if note.kind == NotificationKind::Removed {
        if let Some(email) = store.user_email(user).await.map_err(err)? {
            send_once(app, org.id, user, &email, &org.name, note).await?;
        }
        return Ok(());
    }
    let (recipient, preferences) = futures::join!(store.recipient_in(org, user), store.preferences_of(org.id, user));
    let Some(recipient) = recipient.map_err(err)? else {
        tracing::info!(org_id = %org.id, "recipient is not a member; nothing delivered");
        return Ok(());
    };
    let preferences = preferences.map_err(err)?;
    let channel = preferences.channel(note.kind);
    if channel.in_app() {
        store.deliver_notification(&recipient, note).await.map_err(err)?;
    }
    if !channel.email() {
        return Ok(());
    }
    let Some(email) = &recipient.email else { return Ok(()) };
    match preferences.quiet_until(store.clock().epoch()) {
        // Quiet hours: the digest will carry it (when it is in the inbox and they get one),
        // else the mail waits for their end.
        Some(_) if channel.in_app() && preferences.digest.frequency != DigestFrequency::Off => Ok(()),
        Some(until) => store.defer_mail(&recipient, note, until).await.map_err(err),
        None => send_once(app, org.id, user, email, &recipient.org_name, note).await,
    }
}

/// Sends the mail of `note` to `email` once: never to a suppressed address, never twice.
pub(crate) async fn send_once(app: &AppState, org: OrgId, user: &UserId, email: &Email, org_name: &str, note: &NewNotification) -> Result<(), String> {
    let store = &app.store;
    let err = |e: domain::DomainError| e.to_string();
    if store.is_suppressed(email).await.map_err(err)? {
        tracing::info!(org_id = %org, "address suppressed (bounced or complained); no mail");
        return Ok(());
    }
    match store.claim_mail(org, user, &note.id).await.map_err(err)? {
        MailClaim::Sent => return Ok(()),
        MailClaim::Busy => return Err("another delivery is sending this mail; retried later".into()),
        MailClaim::Send => {}
    }
    let token = UnsubscribeToken { user: user.clone(), org, kind: note.kind }.sign(&app.unsubscribe_key);
    let link = match (note.project_id, note.task_id) {
        (Some(p), Some(t)) => app.mailer.app_link(&format!("/orgs/{org}/projects/{p}/tasks/{t}")),
        _ => app.mailer.app_link(&format!("/orgs/{org}/notifications")),
    };
    let lines: Vec<String> = note.body.lines().map(str::to_owned).collect();
    let what = format!("{} in {org_name}", about(note.kind));
    let outgoing = Outgoing {
        to: email,
        org_name,
        subject: &note.title,
        lines: &lines,
        link,
        link_label: "Open in the app",
        unsubscribe_token: &token,
        unsubscribe_what: &what,
    };
    match app.mailer.send(&outgoing).await {
        Ok(()) => store.mail_sent(org, user, &note.id).await.map_err(err),
        Err(e) => {
            if let Err(release) = store.release_mail(org, user, &note.id).await {
                tracing::warn!(error = %release, "could not release a mail claim; it expires by itself");
            }
            Err(e)
        }
    }
}

/// What unsubscribing from a kind stops, in words.
pub(crate) fn about(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Assigned => "task assignments",
        NotificationKind::Mentioned => "mentions",
        NotificationKind::Commented => "comments on your tasks",
        NotificationKind::DueSoon => "tasks due soon",
        NotificationKind::Overdue => "overdue tasks",
        NotificationKind::InvitationAccepted => "accepted invitations",
        NotificationKind::RoleChanged => "role changes",
        NotificationKind::Removed => "removals",
        NotificationKind::Digest => "digests",
    }
}
