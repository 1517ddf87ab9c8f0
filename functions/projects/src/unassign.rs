//! The stream consumer: a membership that ended (its item removed: the member left, was
//! removed, or the org was purged) unassigns that user's open tasks in the org. Idempotent;
//! a record that fails is reported alone and retried.

use api::RecordFailures;
use aws_lambda_events::dynamodb::{Event as StreamEvent, EventRecord};
use domain::{OrgId, UserId};
use serde::Deserialize;

use crate::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndedMembership {
    #[serde(rename = "_type")]
    kind: String,
    org_id: OrgId,
    user_id: UserId,
}

/// The org and user of a record of a removed membership (the filter lets only those through;
/// anything else is not ours).
pub fn member_of(record: &EventRecord) -> Option<(OrgId, UserId)> {
    if record.event_name != "REMOVE" {
        return None;
    }
    let m: EndedMembership = serde_dynamo::from_item(record.change.old_image.clone()).ok()?;
    (m.kind == "member").then_some((m.org_id, m.user_id))
}

pub async fn on_stream(app: &AppState, event: StreamEvent) -> RecordFailures {
    let mut failed = Vec::new();
    for record in &event.records {
        let Some((org, user)) = member_of(record) else {
            tracing::warn!(event_id = %record.event_id, "stream record that is not an ended membership; skipped");
            continue;
        };
        let result = async {
            match app.store.removed_member(org, &user).await? {
                Some(removed) => app.store.unassign_removed(&removed).await,
                None => Ok(0),
            }
        }
        .await;
        match result {
            Ok(n) => tracing::info!(org_id = %org, unassigned = n, "ended membership: open tasks unassigned"),
            Err(e) => {
                tracing::error!(org_id = %org, error = %e, "could not unassign an ended membership's tasks");
                failed.push(record.event_id.clone());
            }
        }
    }
    failed
}
