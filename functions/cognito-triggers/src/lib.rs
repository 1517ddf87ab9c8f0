//! The Cognito user-pool triggers Tenantry wires up: sign-up policy, the user profile on
//! confirmation, org claims in tokens, last login, and branded messages. Cognito calls each
//! synchronously, waits at most 5 seconds, retries, and shows a failed trigger's error
//! message to the end user: so every trigger is fast, idempotent, and fails with a short,
//! user-safe message while the details go to the log.

mod config;
mod custom_message;
mod post_authentication;
mod post_confirmation;
mod pre_sign_up;
mod pre_token;

use lambda_runtime::Diagnostic;
use serde_json::Value;
use store::Store;
use tracing::Instrument;

pub use config::TriggerConfig;
pub use pre_token::ORG_CLAIMS_CAP;

/// The triggers with what they share.
pub struct Triggers {
    pub store: Store,
    pub config: TriggerConfig,
}

/// A trigger's failure. The message is what Cognito shows the user; it never carries details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    #[error("{0}")]
    SignUpRefused(&'static str),
    #[error("We could not finish setting up your account. Please try again in a moment.")]
    Unavailable,
    #[error("The request was not understood.")]
    MalformedEvent,
}

impl From<TriggerError> for Diagnostic {
    fn from(e: TriggerError) -> Diagnostic {
        let error_type = match e {
            TriggerError::SignUpRefused(_) => "SignUpRefused",
            TriggerError::Unavailable => "Unavailable",
            TriggerError::MalformedEvent => "MalformedEvent",
        };
        Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
    }
}

impl Triggers {
    pub async fn from_env() -> Result<Triggers, store::ConfigError> {
        Ok(Triggers { store: Store::from_env().await?, config: TriggerConfig::from_env() })
    }

    /// Answers one trigger event. An unknown trigger source is answered unchanged (and logged).
    pub async fn handle(&self, event: Value) -> Result<Value, TriggerError> {
        let source = event.get("triggerSource").and_then(Value::as_str).unwrap_or("").to_owned();
        let pool = event.get("userPoolId").and_then(Value::as_str).unwrap_or("").to_owned();
        let span = tracing::info_span!("trigger", trigger_source = %source, user_pool = %pool);
        async move {
            let started = std::time::Instant::now();
            let (result, calls) = telemetry::record(self.dispatch(&source, event)).await;
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            let (dynamodb_calls, ses_calls, s3_calls, aws_rounds) =
                (calls.count("DynamoDB"), calls.count("SESv2"), calls.count("S3"), calls.rounds("DynamoDB"));
            match &result {
                Ok(_) => tracing::info!(elapsed_ms, dynamodb_calls, ses_calls, s3_calls, aws_rounds, "trigger"),
                Err(e) => tracing::warn!(error = ?e, elapsed_ms, dynamodb_calls, ses_calls, s3_calls, aws_rounds, "trigger"),
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn dispatch(&self, source: &str, event: Value) -> Result<Value, TriggerError> {
        match source {
            s if s.starts_with("PreSignUp_") => pre_sign_up::handle(self, event).await,
            "PostConfirmation_ConfirmSignUp" => post_confirmation::handle(self, event).await,
            "PostConfirmation_ConfirmForgotPassword" => Ok(event),
            s if s.starts_with("TokenGeneration_") => pre_token::handle(self, event).await,
            "PostAuthentication_Authentication" => post_authentication::handle(self, event).await,
            s if s.starts_with("CustomMessage_") => custom_message::handle(self, event).await,
            _ => {
                tracing::warn!("unknown trigger source; answered unchanged");
                Ok(event)
            }
        }
    }
}

/// Parses an event into its typed form.
fn typed<T: serde::de::DeserializeOwned>(event: Value) -> Result<T, TriggerError> {
    serde_json::from_value(event).map_err(|e| {
        tracing::error!(error = %e, "malformed trigger event");
        TriggerError::MalformedEvent
    })
}

/// Serialises a typed event back for Cognito.
fn answer<T: serde::Serialize>(event: &T) -> Result<Value, TriggerError> {
    serde_json::to_value(event).map_err(|e| {
        tracing::error!(error = %e, "could not serialise trigger answer");
        TriggerError::Unavailable
    })
}
