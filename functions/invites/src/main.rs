//! Lambda entry point: clients and configuration are built once, during init.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    api::init_tracing();
    let store = store::Store::from_env().await?;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let ses = aws_sdk_sesv2::Client::from_conf(aws_sdk_sesv2::config::Builder::from(&config).interceptor(store::telemetry::CallCounter).build());
    let mailer = invites::Mailer::new(ses, invites::MailerConfig::from_env()?);
    let (router, _) = invites::router(invites::AppState { store, mailer });
    api::run(router).await
}
