//! Lambda entry point: clients and configuration are built once, during init.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    api::init_tracing();
    let platform = api::init_or_report(api::Platform::from_env().await);
    api::serve(api::init_or_report(files::handlers(&platform))).await
}
