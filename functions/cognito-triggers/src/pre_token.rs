//! PreTokenGeneration (V2 event): the caller's orgs with their role (capped, flagged when
//! truncated) and the last active org as ID-token claims, and platform operators in the
//! `platform-admin` group; one DynamoDB query. These claims are a convenience for the front
//! end: handlers authorize from DynamoDB, never from them.

use aws_lambda_events::cognito::{ClaimsAndScopeOverrideDetailsV2, CognitoEventUserPoolsPreTokenGenV2, CognitoIdTokenGenerationV2};
use domain::{Identity, UserId};
use serde_json::Value;

use crate::{TriggerError, Triggers, answer, typed};

/// At most this many orgs go into a token (tokens have a size limit); past it the claim
/// `tenantry_orgs_truncated` is `true` and the front end lists orgs with `GET /orgs`.
pub const ORG_CLAIMS_CAP: usize = 25;

pub(crate) async fn handle(t: &Triggers, event: Value) -> Result<Value, TriggerError> {
    let mut event: CognitoEventUserPoolsPreTokenGenV2 = typed(event)?;
    let user: UserId = event.request.user_attributes.get("sub").and_then(|s| s.parse().ok()).ok_or_else(|| {
        tracing::error!("token event without a usable sub");
        TriggerError::MalformedEvent
    })?;
    let view = t.store.claims_view(&user, ORG_CLAIMS_CAP).await.map_err(|e| {
        tracing::error!(error = %e, "claims lookup failed");
        TriggerError::Unavailable
    })?;

    let mut id_token = CognitoIdTokenGenerationV2::default();
    let orgs: Vec<Value> = view.memberships.iter().map(|(org, role)| Value::String(format!("{org}:{role}"))).collect();
    id_token.claims_to_add_or_override.insert("tenantry_orgs".into(), Value::Array(orgs));
    id_token.claims_to_add_or_override.insert("tenantry_orgs_truncated".into(), Value::Bool(view.truncated));
    if let Some(org) = view.last_active_org.filter(|o| view.memberships.iter().any(|(m, _)| m == o)) {
        id_token.claims_to_add_or_override.insert("tenantry_last_org".into(), Value::String(org.to_string()));
    }

    let mut groups = event.request.group_configuration.groups_to_override.clone();
    if view.platform_operator && !groups.iter().any(|g| g == Identity::PLATFORM_ADMIN_GROUP) {
        groups.push(Identity::PLATFORM_ADMIN_GROUP.to_owned());
    }
    let mut details = ClaimsAndScopeOverrideDetailsV2::default();
    details.group_override_details.groups_to_override = groups;
    details.group_override_details.iam_roles_to_override = event.request.group_configuration.iam_roles_to_override.clone();
    details.group_override_details.preferred_role = event.request.group_configuration.preferred_role.clone();
    details.id_token_generation = Some(id_token);
    event.response.claims_and_scope_override_details = Some(details);
    answer(&event)
}
