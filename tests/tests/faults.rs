//! Faults injected at the local endpoint (`testkit::faults`): AWS failing the way it fails.
//!
//! - A write DynamoDB keeps throttling is retried by the SDK (with backoff, `store::retry_config`)
//!   and then answered 503 `application/problem+json` with `Retry-After`, never 500, and leaves
//!   the table as it was; one throttled twice succeeds.
//! - Mail that SES keeps throttling leaves the invitation standing, answered `delivered: false`.
//! - A stream consumer whose write fails reports the record in `batchItemFailures`, and the
//!   redelivery succeeds.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use domain::{Action, OrgName};
use local_runner::events::LocalEvents;
use serde_json::{Value, json};
use store::{NewOrg, Store};
use testkit::{ApiCall, Caller, faults};

/// The table but the cost ledger (`COSTS#`, written after each answer, whose failures are
/// carried to the next write by design), as comparable text.
async fn table_without_ledger(store: &Store) -> BTreeMap<String, Value> {
    let key = |i: &HashMap<String, AttributeValue>| format!("{:?}/{:?}", i.get("PK"), i.get("SK"));
    testkit::scan_all(store).await.into_iter().filter(|i| !testkit::is_ledger_item(i)).map(|i| (key(&i), serde_dynamo::from_item(i).unwrap())).collect()
}

async fn org_of(store: &Store, owner: &Caller) -> domain::OrgId {
    store.ensure_user(&owner.identity()).await.unwrap();
    let org = store.create_org(&owner.identity(), None, NewOrg { name: OrgName::parse("name", "Faulty").unwrap(), slug: None }).await.unwrap();
    org.org_id()
}

#[tokio::test]
async fn throttled_writes_are_retried_then_answered_503_with_retry_after_and_write_nothing() {
    testkit::init_tracing();
    let store = testkit::fresh_store().await;
    let config = testkit::sdk_config().await;
    let (_, router) = local_runner::server::metered_stack(&config, store.clone()).unwrap();
    let owner = Caller::new("owner");
    let org = org_of(&store, &owner).await;
    let table = store.table_name().to_owned();
    let project = ApiCall::post(&format!("/orgs/{org}/projects")).by(&owner).json(json!({"name": "Kept"})).send(&router).await.expect(201).body["id"].clone();
    let project = project.as_str().unwrap();

    // One write route of each function that has them.
    let routes: Vec<(&str, String, Value)> = vec![
        ("POST", "/orgs".into(), json!({"name": "Another"})),
        ("PATCH", format!("/orgs/{org}"), json!({"name": "Renamed"})),
        ("POST", format!("/orgs/{org}/projects"), json!({"name": "New"})),
        ("POST", format!("/orgs/{org}/projects/{project}/tasks"), json!({"title": "New task"})),
        ("POST", format!("/orgs/{org}/invites"), json!({"email": "guest@example.com", "role": "member"})),
        ("POST", format!("/orgs/{org}/conversations"), json!({})),
        ("POST", format!("/orgs/{org}/files"), json!({"name": "a.txt", "size": 10, "contentType": "text/plain"})),
    ];
    for (method, path, body) in routes {
        let before = table_without_ledger(&store).await;
        faults::throttle_writes(&table, 1_000).await;
        let call = match method {
            "POST" => ApiCall::post(&path),
            _ => ApiCall::patch(&path),
        };
        let res = call.by(&owner).json(body).send(&router).await;
        assert_eq!(res.status, 503, "{method} {path}: {}", res.body);
        assert_eq!(res.header("content-type"), Some(api::PROBLEM_JSON), "{method} {path}");
        assert_eq!(res.header("retry-after"), Some("2"), "{method} {path}");
        assert_eq!(res.body["type"], json!("https://tenantry.dev/problems/unavailable"), "{method} {path}");
        // The SDK tried each write its configured number of times before giving up.
        let fired = faults::fired(&table).await;
        assert!(fired >= 5, "{method} {path}: {fired} throttled attempts");
        assert_eq!(table_without_ledger(&store).await, before, "{method} {path} wrote something");
        faults::clear(&table).await;
    }

    // SES throttling past the SDK's retries: the invitation stands, undelivered (it can be
    // resent or its link shared), and the answer says so.
    faults::inject(
        json!({"service": "ses", "operation": "SendEmail", "code": "TooManyRequestsException", "times": 1_000, "contains": "throttled@example.com"}),
    )
    .await;
    let res = ApiCall::post(&format!("/orgs/{org}/invites"))
        .by(&owner)
        .json(json!({"email": "throttled@example.com", "role": "member"}))
        .send(&router)
        .await
        .expect(201);
    assert_eq!(res.body["delivered"], json!(false), "{}", res.body);
    assert!(faults::fired("throttled@example.com").await >= 5, "SES was retried");
    faults::clear("throttled@example.com").await;
    let pending = ApiCall::get(&format!("/orgs/{org}/invites")).by(&owner).send(&router).await.expect(200);
    assert!(pending.body["items"].as_array().unwrap().iter().any(|i| i["email"] == json!("throttled@example.com")), "{}", pending.body);

    // Throttled twice, then accepted: the SDK's retries absorb it and the client never knows.
    faults::throttle_writes(&table, 2).await;
    ApiCall::post(&format!("/orgs/{org}/projects")).by(&owner).json(json!({"name": "Retried"})).send(&router).await.expect(201);
    assert_eq!(faults::fired(&table).await, 2);
    faults::clear(&table).await;
}

#[tokio::test]
async fn a_consumers_failed_record_is_reported_and_succeeds_when_redelivered() {
    testkit::init_tracing();
    let store = testkit::fresh_store_with_stream().await;
    let config = testkit::sdk_config().await;
    // The upload bucket the purge empties (tests do not provision).
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
    s3.create_bucket().bucket(local_runner::provision::upload_bucket(store.table_name())).send().await.unwrap();
    let platform = local_runner::provision::platform(&config, store.clone(), "https://app.example.com", Default::default());
    let purge = registry::function("org-purge").expect("org-purge is registered");
    let events = LocalEvents::setup(&config, &platform, vec![purge], "").await.expect("event sources wired");
    let owner = Caller::new("owner");
    let org = org_of(&store, &owner).await;
    let table = store.table_name().to_owned();
    events.settle(10).await;
    let earlier = events.log().all().len();

    store.delete_org(&store.authorize(&owner.identity(), org, Action::DeleteOrg).await.unwrap()).await.unwrap();
    // The purge's first write is throttled on every one of the SDK's attempts.
    faults::throttle_writes(&table, 5).await;
    events.settle(20).await;
    assert_eq!(faults::fired(&table).await, 5);
    let deliveries = events.log().all().split_off(earlier);
    assert!(deliveries[0].failed >= 1 && deliveries[0].dead_lettered == 0, "the first delivery reports its failed record: {deliveries:?}");
    assert!(deliveries[1..].iter().any(|d| d.failed == 0), "redelivered: {deliveries:?}");
    assert!(deliveries.iter().all(|d| d.dead_lettered == 0), "{deliveries:?}");
    let left = testkit::scan_all(&store)
        .await
        .iter()
        .filter(|i| !testkit::is_ledger_item(i) && i.get("PK").and_then(|v| v.as_s().ok()).is_some_and(|pk| pk.contains(&org.to_string())))
        .count();
    assert_eq!(left, 0, "the redelivery purged the org");
    faults::clear(&table).await;
}
