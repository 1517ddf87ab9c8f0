//! Lambda entry point: clients and configuration are built once, during init.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    api::init_tracing();
    let store = store::Store::from_env().await?;
    let (router, _) = organizations::router(store);
    api::run(router).await
}
