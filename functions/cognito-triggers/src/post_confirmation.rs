//! PostConfirmation (sign-up only): the user's profile and email claim, and a personal org
//! when configured, in one conditional transaction: a retried or duplicated trigger leaves
//! exactly one profile and still succeeds.

use aws_lambda_events::cognito::CognitoEventUserPoolsPostConfirmation;
use domain::{Identity, OrgName, UserId};
use serde_json::Value;
use store::ProfileOutcome;

use crate::{TriggerError, Triggers, answer, typed};

pub(crate) async fn handle(t: &Triggers, event: Value) -> Result<Value, TriggerError> {
    let event: CognitoEventUserPoolsPostConfirmation = typed(event)?;
    let attrs = &event.request.user_attributes;
    let user_id: UserId = attrs.get("sub").and_then(|s| s.parse().ok()).ok_or_else(|| {
        tracing::error!("confirmation event without a usable sub");
        TriggerError::MalformedEvent
    })?;
    let email = attrs.get("email").and_then(|e| e.parse().ok());
    let identity = Identity { user_id, email, email_verified: attrs.get("email_verified").is_some_and(|v| v == "true"), platform_admin: false };
    let display_name = attrs.get("name").and_then(|n| OrgName::parse("name", n).ok()).map(|n| n.as_str().to_owned());
    let personal_org = t.config.personal_org.then(|| personal_org_name(display_name.as_deref(), identity.email.as_ref()));
    match t.store.create_profile(&identity, display_name, personal_org).await {
        Ok(ProfileOutcome::Created { personal_org }) => tracing::info!(user_id = %identity.user_id, ?personal_org, "profile created"),
        Ok(ProfileOutcome::AlreadyExists) => tracing::info!(user_id = %identity.user_id, "profile exists; duplicate trigger"),
        Err(e) => {
            tracing::error!(error = %e, "profile creation failed");
            return Err(TriggerError::Unavailable);
        }
    }
    answer(&event)
}

/// "Ada's workspace", from the display name or the email's local part.
fn personal_org_name(display_name: Option<&str>, email: Option<&domain::Email>) -> OrgName {
    let who = display_name.map(str::to_owned).or_else(|| email.map(|e| e.as_str().split('@').next().unwrap_or("").to_owned())).filter(|w| !w.trim().is_empty());
    let base = match who {
        Some(w) => format!("{}'s workspace", w.chars().take(80).collect::<String>()),
        None => "My workspace".to_owned(),
    };
    OrgName::parse("name", &base).unwrap_or_else(|_| OrgName::parse("name", "My workspace").expect("a valid name"))
}
