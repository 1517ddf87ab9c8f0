//! PostAuthentication: record the last login, with a `user.signed_in` event in each org of
//! the user (no request: a trigger has none; a source IP Cognito may pass in
//! `userContextData` or `clientMetadata` is not taken). A storage failure is logged and the
//! login still succeeds.

use aws_lambda_events::cognito::CognitoEventUserPoolsPostAuthentication;
use domain::UserId;
use serde_json::Value;

use crate::{TriggerError, Triggers, answer, typed};

pub(crate) async fn handle(t: &Triggers, event: Value) -> Result<Value, TriggerError> {
    let event: CognitoEventUserPoolsPostAuthentication = typed(event)?;
    match event.request.user_attributes.get("sub").and_then(|s| s.parse::<UserId>().ok()) {
        Some(user) => {
            if let Err(e) = t.store.record_login(&user).await {
                tracing::warn!(error = %e, user_id = %user, "could not record the login");
            }
        }
        None => tracing::warn!("authentication event without a usable sub"),
    }
    answer(&event)
}
