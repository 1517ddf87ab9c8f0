//! SES feedback: the stack's configuration set publishes bounces and complaints to
//! EventBridge, and a rule delivers them here. A permanent bounce or a complaint puts each
//! address concerned on the suppression list: no more mail to it (in-app notifications go on).
//! A transient bounce (a full mailbox, say) suppresses nothing. Idempotent.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use domain::Email;
use serde_json::Value;

use crate::AppState;

/// The addresses an SES event asks to suppress, with the reason.
pub fn to_suppress(event: &EventBridgeEvent<Value>) -> Vec<(String, &'static str)> {
    if event.source != "aws.ses" {
        return Vec::new();
    }
    let d = &event.detail;
    let addresses = |list: &str| -> Vec<String> {
        d.pointer(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("emailAddress").and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    };
    match d.get("eventType").and_then(Value::as_str) {
        Some("Bounce") if d.pointer("/bounce/bounceType").and_then(Value::as_str) == Some("Permanent") => {
            addresses("/bounce/bouncedRecipients").into_iter().map(|a| (a, "bounce")).collect()
        }
        Some("Complaint") => addresses("/complaint/complainedRecipients").into_iter().map(|a| (a, "complaint")).collect(),
        _ => Vec::new(),
    }
}

/// Suppresses the addresses of one SES event. An address that does not parse is skipped
/// (logged): retrying would not make it parse.
pub async fn on_feedback(app: &AppState, event: EventBridgeEvent<Value>) -> Result<(), String> {
    for (address, reason) in to_suppress(&event) {
        match address.parse::<Email>() {
            Ok(email) => app.store.suppress(&email, reason).await.map_err(|e| e.to_string())?,
            Err(_) => tracing::warn!(reason, "SES feedback for an address that does not parse; skipped"),
        }
    }
    Ok(())
}
