//! CustomMessage: branded subject and HTML body for every message Cognito sends, dressed in
//! the inviting org's branding when the client metadata names an org that invited the user.
//! Cognito's code placeholder is kept (it rejects messages without it).

use aws_lambda_events::cognito::CognitoEventUserPoolsCustomMessage;
use domain::{Email, OrgId};
use mail::{Brand, Message, Value as V};
use serde_json::Value;

use crate::{TriggerError, Triggers, answer, typed};

const CONFIRM: Message = Message {
    subject: "Confirm your email for {{sender}}",
    heading: "Welcome to {{sender}}",
    html: "<p>Hello {{name}},</p><p>Your confirmation code is <strong style=\"font-size:20px;letter-spacing:2px\">{{code}}</strong>.</p><p>Enter it in {{product}} to finish signing up.</p>",
    text: "Hello {{name}},\n\nYour confirmation code is {{code}}.\nEnter it in {{product}} to finish signing up.\n",
};
const FORGOT: Message = Message {
    subject: "Reset your {{product}} password",
    heading: "Reset your password",
    html: "<p>Hello {{name}},</p><p>Your password reset code is <strong style=\"font-size:20px;letter-spacing:2px\">{{code}}</strong>.</p><p>If you did not ask for this, ignore this email.</p>",
    text: "Hello {{name}},\n\nYour password reset code is {{code}}.\nIf you did not ask for this, ignore this email.\n",
};
const ADMIN_CREATE: Message = Message {
    subject: "Your {{sender}} account",
    heading: "An account was created for you",
    html: "<p>Sign in to <a href=\"{{app_url}}\">{{product}}</a> with the username <strong>{{username}}</strong> and the temporary password <strong>{{code}}</strong>.</p>",
    text: "Sign in to {{product}} ({{app_url}}) with the username {{username}} and the temporary password {{code}}.\n",
};
const VERIFY_ATTRIBUTE: Message = Message {
    subject: "Verify your email for {{product}}",
    heading: "Verify your email",
    html: "<p>Hello {{name}},</p><p>Your verification code is <strong style=\"font-size:20px;letter-spacing:2px\">{{code}}</strong>.</p>",
    text: "Hello {{name}},\n\nYour verification code is {{code}}.\n",
};
const SIGN_IN: Message = Message {
    subject: "Your {{product}} sign-in code",
    heading: "Your sign-in code",
    html: "<p>Your sign-in code is <strong style=\"font-size:20px;letter-spacing:2px\">{{code}}</strong>.</p>",
    text: "Your sign-in code is {{code}}.\n",
};

pub(crate) async fn handle(t: &Triggers, event: Value) -> Result<Value, TriggerError> {
    let source = event.get("triggerSource").and_then(Value::as_str).unwrap_or("").to_owned();
    let message = match source.as_str() {
        "CustomMessage_SignUp" | "CustomMessage_ResendCode" => CONFIRM,
        "CustomMessage_ForgotPassword" => FORGOT,
        "CustomMessage_AdminCreateUser" => ADMIN_CREATE,
        "CustomMessage_UpdateUserAttribute" | "CustomMessage_VerifyUserAttribute" => VERIFY_ATTRIBUTE,
        "CustomMessage_Authentication" => SIGN_IN,
        _ => {
            tracing::warn!("unknown custom message source; Cognito's default message is kept");
            return Ok(event);
        }
    };
    let mut event: CognitoEventUserPoolsCustomMessage = typed(event)?;
    let attr = |name: &str| event.request.user_attributes.get(name).and_then(Value::as_str).map(str::to_owned);
    let email: Option<Email> = attr("email").and_then(|e| e.parse().ok());
    let name = attr("name").or_else(|| email.as_ref().map(|e| e.as_str().split('@').next().unwrap_or("").to_owned())).unwrap_or_default();
    let code = event.request.code_parameter.clone().unwrap_or_else(|| "{####}".into());
    let username = event.request.username_parameter.clone().unwrap_or_else(|| "{username}".into());

    let mut brand = Brand { product: t.config.product_name.clone(), org_name: None, logo_url: t.config.product_logo_url.clone() };
    let invited_to: Option<OrgId> = event.request.client_metadata.get("orgId").and_then(|o| o.parse().ok());
    if let (Some(org), Some(email)) = (invited_to, &email) {
        match t.store.invitation_branding(email, org).await {
            Ok(Some(b)) => {
                brand.org_name = Some(b.org_name);
                brand.logo_url = b.logo_url.or(brand.logo_url);
            }
            Ok(None) => tracing::info!("client metadata names an org that has not invited this address; product branding used"),
            Err(e) => tracing::warn!(error = %e, "branding lookup failed; product branding used"),
        }
    }
    let rendered =
        message.render(&brand, &[("name", V::Text(&name)), ("code", V::Raw(&code)), ("username", V::Raw(&username)), ("app_url", V::Text(&t.config.app_url))]);
    event.response.email_subject = Some(rendered.subject);
    event.response.email_message = Some(rendered.html);
    event.response.sms_message = Some(format!("Your {} code is {code}", mail::single_line(&t.config.product_name)));
    answer(&event)
}
