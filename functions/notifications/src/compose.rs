//! Who hears about a domain event, as which kind of notification, and what it says. Pure:
//! the consumer reads names and preferences, this decides.
//!
//! - assigned: the new assignee of a task (created with one, or reassigned);
//! - mentioned: each member a comment mentions;
//! - commented: the task's assignee and creator, unless mentioned by the same comment;
//! - invitation accepted: the inviter;
//! - role changed: the member whose role changed;
//! - removed: the member removed from the org (by mail only: they can no longer see it);
//! - due soon / overdue: from the sweep, not from events.
//!
//! Nobody is notified of their own action, and nobody twice for one event.

use domain::UserId;
use domain::notify::NotificationKind;
use sha2::{Digest, Sha256};
use store::{DomainEvent, EventKind, NewNotification};

/// One notification to make: its recipient and what it says (`actor_name` filled in by the
/// caller's lookup of the actor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub recipient: UserId,
    pub kind: NotificationKind,
}

/// The notifications an event makes, in a stable order, at most one per recipient (the most
/// specific kind wins: a mention over a comment).
pub fn notifications_for(event: &DomainEvent) -> Vec<Planned> {
    let mut planned: Vec<Planned> = Vec::new();
    let mut add = |recipient: Option<&UserId>, kind: NotificationKind| {
        if let Some(user) = recipient
            && user.as_str() != event.actor
            && !planned.iter().any(|p| &p.recipient == user)
        {
            planned.push(Planned { recipient: user.clone(), kind });
        }
    };
    match event.kind {
        EventKind::TaskCreated | EventKind::TaskUpdated | EventKind::TaskMoved => {
            let assigned = match event.kind {
                EventKind::TaskCreated => event.assignee.as_ref(),
                _ => event.change("assignee").and(event.assignee.as_ref()),
            };
            add(assigned, NotificationKind::Assigned);
        }
        EventKind::CommentCreated => {
            for user in &event.mentions {
                add(Some(user), NotificationKind::Mentioned);
            }
            add(event.assignee.as_ref(), NotificationKind::Commented);
            add(event.created_by.as_ref(), NotificationKind::Commented);
        }
        EventKind::InvitationAccepted => add(event.inviter.as_ref(), NotificationKind::InvitationAccepted),
        EventKind::MemberRoleChanged => add(event.member.as_ref(), NotificationKind::RoleChanged),
        EventKind::MemberRemoved => add(event.member.as_ref(), NotificationKind::Removed),
        EventKind::TaskUnassigned
        | EventKind::TaskDeleted
        | EventKind::MemberJoined
        | EventKind::OrgSuspended
        | EventKind::OrgReactivated
        | EventKind::FileProcessed
        | EventKind::FileDeleted => {}
        // Recorded by the audit log, nobody's notification.
        _ => {}
    }
    planned
}

/// What a notification of `kind` about `event` says: its title and body. `actor` is the
/// actor's name, `subject` the member the event is about (for invitation accepted).
pub fn content(event: &DomainEvent, kind: NotificationKind, actor: &str, subject: &str, org: &str) -> NewNotification {
    let task = event.title.as_deref().unwrap_or("a task");
    let role = event.role.map(|r| r.as_str()).unwrap_or("member");
    let (title, body) = match kind {
        NotificationKind::Assigned => (format!("{actor} assigned you \u{201c}{task}\u{201d}"), String::new()),
        NotificationKind::Mentioned => (format!("{actor} mentioned you on \u{201c}{task}\u{201d}"), event.excerpt.clone().unwrap_or_default()),
        NotificationKind::Commented => (format!("{actor} commented on \u{201c}{task}\u{201d}"), event.excerpt.clone().unwrap_or_default()),
        NotificationKind::InvitationAccepted => (format!("{subject} accepted your invitation to {org}"), format!("They joined as {role}.")),
        NotificationKind::RoleChanged => (format!("Your role in {org} is now {role}"), format!("Changed by {actor}.")),
        NotificationKind::Removed => (format!("You were removed from {org}"), format!("Removed by {actor}.")),
        NotificationKind::DueSoon => (format!("\u{201c}{task}\u{201d} is due soon"), String::new()),
        NotificationKind::Overdue => (format!("\u{201c}{task}\u{201d} is overdue"), String::new()),
        NotificationKind::Digest => (format!("Your digest for {org}"), String::new()),
    };
    NewNotification {
        id: event.id.clone(),
        kind,
        actor: event.actor.clone(),
        at: event.at.clone(),
        title,
        body,
        project_id: event.project_id,
        task_id: event.task_id,
    }
}

/// The id of the reminder of `offset_secs` before a task's due time: a ULID whose time is
/// the reminder's and whose randomness is a hash of the task, its due time and the offset,
/// so every sweep that sees it names it the same (one notification however often it runs).
pub fn reminder_id(task: &str, due_key: &str, offset_secs: i64, fire_at_ms: u64) -> String {
    let digest = Sha256::digest(format!("reminder\n{task}\n{due_key}\n{offset_secs}").as_bytes());
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]);
    ulid::Ulid::from_parts(fire_at_ms, u128::from_be_bytes(random)).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn event(kind: &str, actor: &str, extra: serde_json::Value) -> DomainEvent {
        let mut v = json!({"id": "01JAAAAAAAAAAAAAAAAAAAAAAA", "kind": kind, "orgId": "01JBBBBBBBBBBBBBBBBBBBBBBB", "actor": actor, "at": "2026-11-27T10:00:00Z", "ttl": 0});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    fn who(p: &[Planned]) -> Vec<(&str, NotificationKind)> {
        p.iter().map(|p| (p.recipient.as_str(), p.kind)).collect()
    }

    #[test]
    fn a_new_assignee_hears_of_it_unless_they_assigned_themselves() {
        let created = event("task.created", "ada", json!({"assignee": "bob", "createdBy": "ada", "title": "T"}));
        assert_eq!(who(&notifications_for(&created)), [("bob", NotificationKind::Assigned)]);
        let own = event("task.created", "bob", json!({"assignee": "bob", "createdBy": "bob"}));
        assert!(notifications_for(&own).is_empty());
        // An edit that does not touch the assignee notifies nobody.
        let edit = event("task.updated", "ada", json!({"assignee": "bob", "changes": [{"field": "title", "from": "a", "to": "b"}]}));
        assert!(notifications_for(&edit).is_empty());
        let reassigned = event("task.updated", "ada", json!({"assignee": "cy", "changes": [{"field": "assignee", "from": "bob", "to": "cy"}]}));
        assert_eq!(who(&notifications_for(&reassigned)), [("cy", NotificationKind::Assigned)]);
        let unassigned = event("task.updated", "ada", json!({"changes": [{"field": "assignee", "from": "bob", "to": null}]}));
        assert!(notifications_for(&unassigned).is_empty());
    }

    #[test]
    fn a_comment_notifies_mentions_then_assignee_and_creator_once_each() {
        let c = event("comment.created", "ada", json!({"assignee": "bob", "createdBy": "cy", "mentions": ["bob", "dan", "ada"]}));
        assert_eq!(
            who(&notifications_for(&c)),
            [("bob", NotificationKind::Mentioned), ("dan", NotificationKind::Mentioned), ("cy", NotificationKind::Commented)]
        );
    }

    #[test]
    fn membership_events_notify_the_member_or_the_inviter() {
        let role = event("member.role_changed", "ada", json!({"member": "bob", "role": "admin"}));
        assert_eq!(who(&notifications_for(&role)), [("bob", NotificationKind::RoleChanged)]);
        let left = event("member.removed", "bob", json!({"member": "bob", "role": "member"}));
        assert!(notifications_for(&left).is_empty(), "leaving is one's own action");
        let removed = event("member.removed", "ada", json!({"member": "bob", "role": "member"}));
        assert_eq!(who(&notifications_for(&removed)), [("bob", NotificationKind::Removed)]);
        let accepted = event("invitation.accepted", "bob", json!({"member": "bob", "inviter": "ada", "role": "member"}));
        assert_eq!(who(&notifications_for(&accepted)), [("ada", NotificationKind::InvitationAccepted)]);
        assert!(notifications_for(&event("member.joined", "bob", json!({"member": "bob"}))).is_empty());
    }

    #[test]
    fn reminder_ids_are_stable_per_task_due_and_offset() {
        let a = reminder_id("t1", "2026-12-01T10:00:00Z", 86_400, 1_000);
        assert_eq!(a, reminder_id("t1", "2026-12-01T10:00:00Z", 86_400, 1_000));
        assert_ne!(a, reminder_id("t1", "2026-12-02T10:00:00Z", 86_400, 1_000));
        assert_ne!(a, reminder_id("t1", "2026-12-01T10:00:00Z", 0, 1_000));
        assert_ne!(a, reminder_id("t2", "2026-12-01T10:00:00Z", 86_400, 1_000));
        assert!(a.parse::<ulid::Ulid>().is_ok());
    }
}
