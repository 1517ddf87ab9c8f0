//! Lambda entry point for the five user-pool triggers: clients and configuration built once.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init_tracing();
    let triggers = cognito_triggers::Triggers::from_env().await?;
    let triggers = &triggers;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move { triggers.handle(event.payload).await })).await
}
