//! `make dev`: Tenantry on this machine, with no AWS account and no network.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use local_runner::auth_routes::AuthState;
use local_runner::events::{self, LocalEvents};
use local_runner::jwt::TokenVerifier;
use local_runner::{control, provision, server};
use store::{CursorKey, Store};
use testkit::endpoint as local_aws;

const DEFAULT_PORT: u16 = 8080;

#[tokio::main]
async fn main() -> ExitCode {
    api::init_tracing();
    let port = std::env::var("TENANTRY_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(DEFAULT_PORT);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            eprintln!("Port {port} is already in use: Tenantry (or something else) is running at http://{addr}.");
            eprintln!("Stop it with Ctrl-C in its terminal, or pick another port: TENANTRY_PORT=8081 make dev");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };

    let aws_port = local_aws::free_port();
    let mut aws = match local_aws::spawn(&local_aws::python(), aws_port, true, true) {
        Ok(child) => child,
        Err(e) => {
            eprintln!("cannot start the local AWS endpoint with {}: {e} (run `make venv`)", local_aws::python().display());
            return ExitCode::FAILURE;
        }
    };
    if !local_aws::wait_for(aws_port, Duration::from_secs(60)) {
        eprintln!("the local AWS endpoint did not start");
        let _ = aws.kill();
        return ExitCode::FAILURE;
    }
    let endpoint = format!("http://127.0.0.1:{aws_port}");
    let result = run(listener, &endpoint).await;
    let _ = aws.kill();
    let _ = aws.wait();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenantry-local: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(listener: tokio::net::TcpListener, endpoint: &str) -> Result<(), provision::Error> {
    let config = local_aws::sdk_config(endpoint).await;
    let resources = provision::provision(&config, endpoint, "tenantry-local").await?;
    let verifier = TokenVerifier::fetch(endpoint, &resources.user_pool_id, &resources.issuer(), &resources.client_id).await?;
    let secret = ulid::Ulid::new().to_string();
    // The clock runs with the system's, and `/local/clock` moves it ahead to fire schedules.
    let clock = domain::Clock::offset();
    let store = Store::new(store::dynamodb_client(&config), resources.table.clone(), CursorKey::new(secret)).with_clock(clock).with_limits(local_limits());
    // Links in mail open the console this runner serves at /app unless told otherwise.
    let app_url = match std::env::var("TENANTRY_APP_URL") {
        Ok(url) => url,
        Err(_) => format!("http://{}/app", listener.local_addr()?),
    };
    let functions = registry::all();
    let mut vars = events::queue_env(&config, &resources.table, &functions).await?;
    // Links that call the API itself (unsubscribe) point at this runner.
    vars.insert("API_URL".into(), format!("http://{}", listener.local_addr()?));
    let platform = provision::platform(&config, store.clone(), &app_url, vars);
    let (routed, routes) = server::functions(&platform)?;
    // Every request's usage goes to the cost ledger, as on Lambda (settled before the answer
    // here: nothing is frozen between requests, but the demo reads its cost right after).
    let routed = server::metered(routed, &platform);
    let events = Arc::new(LocalEvents::setup(&config, &platform, functions, &resources.upload_bucket).await?);
    events.spawn(Duration::from_millis(250));
    let triggers = cognito_triggers::Triggers { store: store.clone(), config: cognito_triggers::TriggerConfig::from_env() };
    let auth = AuthState { cognito: aws_sdk_cognitoidentityprovider::Client::new(&config), resources: resources.clone(), triggers: Arc::new(triggers) };
    let cors = std::env::var(server::ALLOWED_ORIGINS_ENV).unwrap_or_else(|_| server::DEFAULT_ALLOWED_ORIGINS.into());
    let app = server::app(routed, verifier, auth, control::router(Arc::clone(&events)));
    let addr = listener.local_addr()?;
    println!();
    println!("  Tenantry is running locally ({} routes).", routes.len());
    println!("  API:     http://{addr}");
    println!("  Docs:    http://{addr}/docs  (OpenAPI: http://{addr}/openapi.json)");
    println!("  Sign up: POST http://{addr}/local/auth/signup  {{\"email\":…,\"password\":…}}");
    println!("  Events:  stream (and its domain-event fan-out), queues, uploads and schedules delivered locally; GET http://{addr}/local/events");
    println!("  Clock:   POST http://{addr}/local/clock  {{\"advanceSeconds\":3600}} fires what becomes due");
    println!("  CORS:    {} ({})", if cors.trim().is_empty() { "off" } else { cors.as_str() }, server::ALLOWED_ORIGINS_ENV);
    println!("  AWS:     {endpoint} (in memory; everything is gone when you stop)");
    println!("  Table:   {} (DynamoDB on the AWS endpoint above)", resources.table);
    println!("  Stop:    Ctrl-C");
    println!();
    server::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// The platform limits of the local stack: the environment's (`RATE_LIMIT_MULTIPLIER` and the
/// others), the rate limits 100 times the plans' unless it says otherwise, so that the demo,
/// the contract check and a front end under development do not trip them.
fn local_limits() -> domain::PlatformLimits {
    domain::PlatformLimits::from_vars(|name| {
        std::env::var(name).ok().or_else(|| (name == domain::PlatformLimits::RATE_LIMIT_MULTIPLIER_ENV).then(|| "100".to_owned()))
    })
}
