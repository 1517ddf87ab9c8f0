//! Memberships that ended (the member item removed: the member left, was removed, or the org
//! was purged): that user's open tasks in the org are unassigned. Idempotent; a record that
//! fails is reported alone and retried.

use aws_lambda_events::dynamodb::EventRecord;
use domain::{DomainError, OrgId, UserId};
use serde::Deserialize;
use store::Store;

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

/// Unassigns the open tasks of `user`, who left `org`; answers how many.
pub async fn unassign(store: &Store, org: OrgId, user: &UserId) -> Result<usize, DomainError> {
    match store.removed_member(org, user).await? {
        Some(removed) => store.unassign_removed(&removed).await,
        None => Ok(0),
    }
}
