//! PreSignUp: normalise the email, refuse blocked domains, enforce invite-only sign-up, and
//! never auto-confirm or auto-verify an address nobody proved.

use aws_lambda_events::cognito::CognitoEventUserPoolsPreSignup;
use domain::Email;
use serde_json::Value;

use crate::{TriggerError, Triggers, answer, typed};

pub(crate) async fn handle(t: &Triggers, event: Value) -> Result<Value, TriggerError> {
    let mut event: CognitoEventUserPoolsPreSignup = typed(event)?;
    let raw = event.request.user_attributes.get("email").map(String::as_str).unwrap_or("");
    let email: Email = raw.parse().map_err(|_| TriggerError::SignUpRefused("Enter a valid email address."))?;
    if t.config.is_blocked(email.domain()) {
        return Err(TriggerError::SignUpRefused("This email address cannot be used to sign up."));
    }
    if t.config.invite_only {
        let invited = t.store.has_open_invitation(&email).await.map_err(|e| {
            tracing::error!(error = %e, "invitation lookup failed");
            TriggerError::Unavailable
        })?;
        if !invited {
            return Err(TriggerError::SignUpRefused("Sign-up is by invitation only."));
        }
    }
    event.response.auto_confirm_user = false;
    event.response.auto_verify_email = false;
    event.response.auto_verify_phone = false;
    answer(&event)
}
