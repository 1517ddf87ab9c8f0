//! The audit function: every security-relevant action of an org, recorded in a tamper-evident
//! hash chain (see `store::audit`), and the routes that read and verify it.
//!
//! - Queue `audit`: the domain events of [`EVENT_KINDS`], fanned out from the table's stream.
//!   Each is recorded once (a redelivery is recognised by its event id); `user.erased` also
//!   removes the erased user's email from every entry they are the actor of. A message that
//!   fails (a poison message included: it is evidence, kept in the dead-letter queue) is
//!   reported alone in `batchItemFailures`.
//! - `GET /orgs/{orgId}/audit` (admins): the org's entries, newest first, by actor, action and
//!   time range. `GET /orgs/{orgId}/audit/verify` (owners): the chain recomputed, and where it
//!   breaks. `GET /admin/audit` (platform operators): any org's, any actor's, or every org's
//!   entries by time. No route edits or deletes an entry.

use api::{ApiError, ApiResult, Caller, PageQuery, Params, RecordFailures, RouteTable};
use aws_lambda_events::sqs::SqsEvent;
use axum::Json;
use axum::extract::State;
use domain::{FieldError, OrgId, UserId};
use http::Method;
use store::audit::{AuditEntry, AuditFilter, AuditVerification, Recorded, VERIFY_DEFAULT_LIMIT};
use store::{DomainEvent, EventKind, Page, Store};

/// The queue through which the function receives its domain events.
pub const AUDIT_QUEUE: &str = "audit";

/// The domain events the audit log records: every kind but the everyday work on tasks and
/// comments (`task.created`, `task.updated`, `task.moved`, `task.unassigned`,
/// `comment.created`). Deleting a task, or a project, is recorded.
pub const EVENT_KINDS: [&str; 26] = [
    "user.signed_in",
    "user.erased",
    "org.created",
    "org.updated",
    "org.suspended",
    "org.reactivated",
    "org.deletion_requested",
    "org.plan_changed",
    "org.limits_changed",
    "member.joined",
    "member.removed",
    "member.role_changed",
    "ownership.transferred",
    "invitation.created",
    "invitation.resent",
    "invitation.revoked",
    "invitation.accepted",
    "invitation.declined",
    "project.deleted",
    "task.deleted",
    "file.upload_started",
    "file.processed",
    "file.downloaded",
    "file.deleted",
    "chat.settings_changed",
    "export.requested",
];

/// The kinds left out of the audit log.
pub const NOT_AUDITED: [&str; 5] = ["task.created", "task.updated", "task.moved", "task.unassigned", "comment.created"];

/// Whether the audit log records events of `kind`.
pub fn is_audited(kind: EventKind) -> bool {
    EVENT_KINDS.contains(&kind.as_str())
}

/// What every handler shares: built once at init.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
}

impl api::RouteState for AppState {
    fn rate_store(&self) -> Option<&Store> {
        Some(&self.store)
    }
}

/// The function's route table.
pub fn routes() -> RouteTable<AppState> {
    RouteTable::default()
        .tag("audit", "The audit log: every security-relevant action of an org, in a tamper-evident hash chain")
        .route(
            Method::GET,
            "/orgs/{orgId}/audit",
            "listAudit",
            "The org's audit log, newest first (admin+): by actor, action and time range (from inclusive, to exclusive, RFC 3339)",
            list,
        )
        .returns::<Page<AuditEntry>>(200)
        .paginated(&["actor", "action", "from", "to"])
        .query_values("action", &EVENT_KINDS)
        .route(
            Method::GET,
            "/orgs/{orgId}/audit/verify",
            "verifyAudit",
            "Recompute the org's audit hash chain and say where it breaks (owner); a long chain is verified over several calls (nextCursor)",
            verify,
        )
        .returns::<AuditVerification>(200)
        .query(&["limit", "cursor"])
        .route(
            Method::GET,
            "/admin/audit",
            "adminListAudit",
            "Audit entries for platform operators: one org's, one actor's across orgs, or every org's by time (at most 31 days), newest first",
            admin_list,
        )
        .returns::<Page<AuditEntry>>(200)
        .paginated(&["orgId", "actor", "action", "from", "to"])
        .query_values("action", &EVENT_KINDS)
}

/// Every way this function is invoked: its routes and its queue of domain events.
pub fn handlers(platform: &api::Platform) -> api::Handlers {
    let app = AppState { store: platform.store.clone() };
    let queue_app = app.clone();
    api::Handlers {
        http: Some(routes().with_state(app).0),
        queue: Some(api::handler(move |event| {
            let app = queue_app.clone();
            async move { on_queue(&app.store, event).await }
        })),
        ..Default::default()
    }
}

/// The filters of a listing's query string (422 naming each bad one).
fn filter(q: &PageQuery) -> Result<AuditFilter, ApiError> {
    let mut errors = Vec::new();
    let actor = q.param("actor").and_then(|a| match a.parse::<UserId>() {
        Ok(user) => Some(user),
        Err(e) => {
            errors.push(FieldError::new("actor", format!("a user id, `system` or `platform`: {e}")));
            None
        }
    });
    let action = q.param("action").and_then(|a| {
        let kind = serde_json::from_value::<EventKind>(serde_json::Value::String(a.to_owned())).ok().filter(|k| is_audited(*k));
        if kind.is_none() {
            errors.push(FieldError::new("action", "not an action the audit log records"));
        }
        kind
    });
    let mut time = |name: &str| {
        q.param(name).and_then(|t| {
            let bound = store::audit::parse_time_bound(t);
            if bound.is_none() {
                errors.push(FieldError::new(name, "an RFC 3339 date-time, such as 2026-03-01T00:00:00Z"));
            }
            bound
        })
    };
    let (from, to) = (time("from"), time("to"));
    if let (Some(from), Some(to)) = (&from, &to)
        && from >= to
    {
        errors.push(FieldError::new("to", "must be after from"));
    }
    if errors.is_empty() { Ok(AuditFilter { actor, action, from, to }) } else { Err(ApiError::invalid(errors)) }
}

async fn list(State(app): State<AppState>, Caller(who): Caller, p: Params, q: PageQuery) -> ApiResult<Json<Page<AuditEntry>>> {
    let org: OrgId = p.get("orgId")?;
    let q = q.only(&["actor", "action", "from", "to"])?;
    let filter = filter(&q)?;
    Ok(Json(app.store.list_audit(&who, org, &filter, &q.page).await?))
}

async fn verify(State(app): State<AppState>, Caller(who): Caller, p: Params, q: PageQuery) -> ApiResult<Json<AuditVerification>> {
    let org: OrgId = p.get("orgId")?;
    let q = q.only(&[])?;
    let limit = q.page.limit.unwrap_or(VERIFY_DEFAULT_LIMIT);
    Ok(Json(app.store.verify_audit(&who, org, limit, q.page.cursor.as_deref()).await?))
}

async fn admin_list(State(app): State<AppState>, Caller(who): Caller, q: PageQuery) -> ApiResult<Json<Page<AuditEntry>>> {
    let q = q.only(&["orgId", "actor", "action", "from", "to"])?;
    let org = match q.param("orgId") {
        None => None,
        Some(o) => Some(o.parse::<OrgId>().map_err(|_| ApiError::invalid(vec![FieldError::new("orgId", "not an organization id")]))?),
    };
    let filter = filter(&q)?;
    Ok(Json(app.store.list_platform_audit(&who, org, &filter, &q.page).await?))
}

/// Records each message's event; answers the ids of the messages to retry.
pub async fn on_queue(store: &Store, event: SqsEvent) -> RecordFailures {
    let mut failed = Vec::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let parsed = message.body.as_deref().map(serde_json::from_str::<DomainEvent>);
        let event = match parsed {
            Some(Ok(e)) => e,
            other => {
                // Not dropped: what it says may matter to an audit, so it goes to the
                // dead-letter queue after its receives, for someone to read.
                let error = match other {
                    Some(Err(e)) => e.to_string(),
                    _ => "no body".to_owned(),
                };
                tracing::error!(error, message_id = id, "a message that is not a domain event: left for the dead-letter queue");
                failed.push(id);
                continue;
            }
        };
        if let Err(e) = record(store, &event).await {
            tracing::warn!(error = %e, event_id = event.id, kind = event.kind.as_str(), "recording an event failed; it will be retried");
            failed.push(id);
        }
    }
    failed
}

/// Records one event (once, whatever the deliveries); an erasure then removes the user's email
/// from their entries (again on a redelivery: the removal is safe to repeat).
pub async fn record(store: &Store, event: &DomainEvent) -> Result<Option<Recorded>, domain::DomainError> {
    if !is_audited(event.kind) {
        tracing::info!(kind = event.kind.as_str(), event_id = event.id, "not an audited kind: ignored");
        return Ok(None);
    }
    let recorded = store.record_audit(event).await?;
    if event.kind == EventKind::UserErased
        && let Ok(user) = event.actor.parse::<UserId>()
    {
        let scrubbed = store.scrub_audit_emails(&user).await?;
        tracing::info!(org_id = %event.org_id, scrubbed, "erased user's email removed from the audit log");
    }
    Ok(Some(recorded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_is_audited_or_left_out_on_purpose() {
        for kind in EventKind::ALL {
            let audited = EVENT_KINDS.contains(&kind.as_str());
            let left_out = NOT_AUDITED.contains(&kind.as_str());
            assert!(audited != left_out, "{}: decide whether the audit log records it", kind.as_str());
        }
        for name in EVENT_KINDS.iter().chain(NOT_AUDITED.iter()) {
            assert!(EventKind::ALL.iter().any(|k| k.as_str() == *name), "{name} is not an event kind");
        }
    }
}
