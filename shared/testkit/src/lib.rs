//! Test support on the local AWS endpoint: moto in server mode started once per test binary
//! on a free loopback port, a fresh table per test created from the same definition the
//! infrastructure uses, callers with claims, and API Gateway REST proxy events driven
//! through a function's router.

mod apigw;
pub mod browser;
pub mod endpoint;
pub mod faults;
mod local_aws;

pub use apigw::{ApiCall, ApiResponse, Caller, send_event};

/// The repository's `events/` folder of real-shaped sample events.
pub fn events_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}
pub use endpoint::{SentMail, sent_mail};
pub use local_aws::{LocalAws, local_aws, sdk_config};

use store::{CursorKey, Store, TableDefinition};

/// A store on a table of its own, on the local AWS endpoint.
pub async fn fresh_store() -> Store {
    new_store(false).await
}

/// [`fresh_store`] on a table with the stream the infrastructure enables, for tests of
/// stream consumers.
pub async fn fresh_store_with_stream() -> Store {
    new_store(true).await
}

async fn new_store(stream: bool) -> Store {
    init_tracing();
    let config = sdk_config().await;
    let client = store::dynamodb_client(&config);
    let name = format!("tenantry-test-{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
    let definition = TableDefinition::load();
    let created = if stream { definition.create_with_stream(&client, &name).await } else { definition.create(&client, &name).await };
    created.expect("create test table on the local endpoint");
    // Tests send bursts (concurrency tests, the matrix, round trips): the rate limits are a
    // thousand times the plans' here; the rate-limit tests set the plans' own
    // (`with_limits(PlatformLimits::default())`).
    Store::new(client, name, CursorKey::new("test-cursor-secret")).with_limits(generous_limits())
}

/// The platform limits of tests: the defaults, with rate limits a thousand times the plans'.
pub fn generous_limits() -> domain::PlatformLimits {
    domain::PlatformLimits { rate_limit_multiplier: 1_000, ..domain::PlatformLimits::default() }
}

/// Whether a table item is the cost ledger's (`COSTS#…`): written after each request and event
/// delivery, outside the orgs' partitions, and kept when an org is purged.
pub fn is_ledger_item(item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> bool {
    item.get("PK").and_then(|v| v.as_s().ok()).is_some_and(|pk| pk.starts_with("COSTS#"))
}

/// Every item of the store's table (for tests that check what is left behind).
pub async fn scan_all(store: &Store) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = store.client().scan().table_name(store.table_name()).consistent_read(true).set_exclusive_start_key(start).send().await.expect("scan");
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(k) => start = Some(k),
            None => return items,
        }
    }
}

/// The domain events the store wrote to the table (what the stream carries), oldest first.
pub async fn domain_events(store: &Store) -> Vec<store::DomainEvent> {
    let mut events: Vec<store::DomainEvent> = scan_all(store)
        .await
        .into_iter()
        .filter_map(|item| store::DomainEvent::from_image(&serde_dynamo::Item::from(item)).expect("event items parse"))
        .collect();
    events.sort_by(|a, b| a.id.cmp(&b.id));
    events
}

/// Logs of the code under test, shown for failing tests (`RUST_LOG` filters; default warn).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// Marks a user a platform operator, as whoever runs the platform does (the user must have
/// a profile).
pub async fn make_platform_operator(store: &Store, user: &domain::UserId) {
    store.set_platform_operator(user, true).await.expect("the user has a profile");
}

/// A platform operator: a caller in the `platform-admin` group whose profile says so too (the
/// store re-checks the profile on every use of the claim).
pub async fn operator(store: &Store, name: &str) -> Caller {
    let caller = Caller::platform_admin(name);
    store.ensure_user(&caller.identity()).await.expect("a profile");
    make_platform_operator(store, &caller.identity().user_id).await;
    caller
}
