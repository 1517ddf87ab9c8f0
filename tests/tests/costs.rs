//! The cost ledger on the local endpoint: requests in one org are metered at the source
//! (DynamoDB's reported capacity, the invocation, the API request), summed into the org's
//! ledger after each answer, and priced when read; nothing reaches another org's ledger;
//! only the owner reads an org's costs, only operators the platform's.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::BTreeMap;

use domain::{Action, OrgName};
use serde_json::{Value, json};
use store::{NewOrg, Store};
use telemetry::{Consumed, unit};
use testkit::{ApiCall, Caller};

struct World {
    store: Store,
    router: axum::Router,
    org: String,
    other_org: String,
    owner: Caller,
    member: Caller,
    other: Caller,
    operator: Caller,
}

async fn world() -> World {
    testkit::init_tracing();
    let store = testkit::fresh_store().await;
    let config = testkit::sdk_config().await;
    let (_, router) = local_runner::server::metered_stack(&config, store.clone()).unwrap();
    let (owner, member, other) = (Caller::new("owner"), Caller::new("member"), Caller::new("other"));
    let name = |n: &str| NewOrg { name: OrgName::parse("name", n).unwrap(), slug: None };
    let scope = store.create_org(&owner.identity(), None, name("Metered Org")).await.unwrap();
    let other_scope = store.create_org(&other.identity(), None, name("Other Org")).await.unwrap();
    let scope = store.authorize(&owner.identity(), scope.org_id(), Action::ManageMembers).await.unwrap();
    store.add_member(&scope, &member.identity().user_id, domain::Role::Member, member.identity().email, None).await.unwrap();
    for c in [&owner, &member, &other] {
        store.ensure_user(&c.identity()).await.unwrap();
    }
    let operator = testkit::operator(&store, "operator").await;
    World { org: scope.org_id().to_string(), other_org: other_scope.org_id().to_string(), store, router, owner, member, other, operator }
}

/// Sends `call`, answering its status and the capacity DynamoDB reported for its calls.
async fn metered(w: &World, call: ApiCall) -> (u16, Value, Consumed) {
    let (res, calls) = telemetry::record(call.send(&w.router)).await;
    let consumed = calls
        .all()
        .iter()
        .filter(|c| c.service == "DynamoDB")
        .fold(Consumed::default(), |a, c| Consumed { read: a.read + c.consumed.read, write: a.write + c.consumed.write });
    (res.status, res.body, consumed)
}

/// A service's units in a costs answer.
fn units(service: &Value) -> BTreeMap<String, f64> {
    service["units"].as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_f64().unwrap())).collect()).unwrap_or_default()
}

fn all_units(services: &Value) -> BTreeMap<String, f64> {
    services.as_array().unwrap().iter().flat_map(|s| units(s).into_iter()).collect()
}

#[tokio::test]
async fn a_known_sequence_of_requests_is_metered_into_its_org_ledger_only() {
    let w = world().await;
    let a = format!("/orgs/{}", w.org);
    let sequence = [
        (ApiCall::get(&a).by(&w.owner), 200),
        (ApiCall::patch(&a).by(&w.owner).json(json!({"name": "Renamed"})), 200),
        (ApiCall::get(&format!("{a}/members")).by(&w.owner), 200),
        (ApiCall::get(&format!("{a}/members")).by(&w.member), 200),
        // A member of the org who may not read its costs: still the org's request.
        (ApiCall::get(&format!("{a}/costs")).by(&w.member), 403),
    ];
    let mut expected = Consumed::default();
    for (call, status) in sequence {
        let (got, body, consumed) = metered(&w, call).await;
        assert_eq!(got, status, "{body}");
        expected.read += consumed.read;
        expected.write += consumed.write;
    }
    assert!(expected.read >= 5.0 && expected.write >= 1.0, "DynamoDB reported capacity: {expected:?}");

    // Another org's owner: 404 on these costs, and the request is charged to nobody's org.
    let (status, body, _) = metered(&w, ApiCall::get(&format!("{a}/costs")).by(&w.other)).await;
    assert_eq!(status, 404, "{body}");

    let (status, costs, _) = metered(&w, ApiCall::get(&format!("{a}/costs")).by(&w.owner)).await;
    assert_eq!(status, 200, "{costs}");
    let month = w.store.clock().month_key();
    assert_eq!(costs["month"], json!(month));
    let got = all_units(&costs["services"]);
    assert_eq!(got.get(unit::DYNAMODB_READ), Some(&expected.read), "{costs}");
    assert_eq!(got.get(unit::DYNAMODB_WRITE), Some(&expected.write), "{costs}");
    assert_eq!(got.get(unit::API_REQUESTS), Some(&5.0));
    assert_eq!(got.get(unit::LAMBDA_REQUESTS), Some(&5.0));
    let mb_ms = got[unit::LAMBDA_MB_MS];
    assert!(mb_ms >= 5.0 * 128.0 && mb_ms % 128.0 == 0.0, "billed ms × 128 MB, each request at least 1 ms: {mb_ms}");
    // Each request's ledger write is two small UpdateItems (its day and its month), 1 write
    // unit each and 1 for the month's index entry, which the write itself records (as the
    // previous write measured).
    assert_eq!(got.get(unit::METERING_WRITE), Some(&15.0), "{costs}");
    assert!(costs["totalUsd"].as_f64().unwrap() > 0.0);
    let days = costs["days"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{costs}");
    assert!(days[0]["day"].as_str().unwrap().starts_with(&month));
    assert_eq!(all_units(&days[0]["services"]), got, "one day so far: the day is the month");
    let dynamodb = costs["services"].as_array().unwrap().iter().find(|s| s["service"] == "dynamodb").unwrap();
    let priced = expected.read * 0.125 / 1e6 + expected.write * 0.625 / 1e6;
    assert!((dynamodb["usd"].as_f64().unwrap() - priced).abs() < 1e-9, "{dynamodb}");

    // Nothing reached the other org's ledger; the stranger's 404 is unattributed.
    let other_scope = w.store.authorize(&w.other.identity(), w.other_org.parse().unwrap(), Action::ReadCosts).await.unwrap();
    let other = w.store.org_ledger(&other_scope, &month).await.unwrap();
    assert!(other.month.units.is_empty() && other.days.is_empty(), "{other:?}");
    let unattributed = w.store.bucket_ledger(telemetry::UNATTRIBUTED, &month).await.unwrap();
    assert_eq!(unattributed.month.units.get(unit::API_REQUESTS), Some(&1.0));
    // Each write carries its own cost to its own payers only: org A's later requests never
    // write to the stranger's bucket again.
    for _ in 0..2 {
        assert_eq!(metered(&w, ApiCall::get(&format!("{a}/costs")).by(&w.owner)).await.0, 200);
    }
    let unattributed = w.store.bucket_ledger(telemetry::UNATTRIBUTED, &month).await.unwrap();
    assert_eq!(unattributed.month.units.get(unit::METERING_WRITE), Some(&3.0), "{unattributed:?}");

    // Operators: every payer ranked by cost; the org's member may not look.
    let (status, body, _) = metered(&w, ApiCall::get("/admin/costs").by(&w.member)).await;
    assert_eq!(status, 403, "{body}");
    let (status, platform, _) = metered(&w, ApiCall::get("/admin/costs").query("month", &month).by(&w.operator)).await;
    assert_eq!(status, 200, "{platform}");
    let payers = platform["payers"].as_array().unwrap();
    let ranked: Vec<f64> = payers.iter().map(|p| p["costUsd"].as_f64().unwrap()).collect();
    assert!(ranked.windows(2).all(|p| p[0] >= p[1]), "{platform}");
    let org = payers.iter().find(|p| p["payer"] == json!(w.org)).unwrap();
    assert_eq!((org["name"].as_str(), org["plan"].as_str()), (Some("Renamed"), Some("FREE")));
    // The free plan's price is 0: its margin is minus its cost.
    assert_eq!(org["revenueUsd"], json!(0.0));
    assert!((org["marginUsd"].as_f64().unwrap() + org["costUsd"].as_f64().unwrap()).abs() < 1e-9);
    assert!(payers.iter().all(|p| p["payer"] != json!(w.other_org)), "{platform}");
    assert!(payers.iter().any(|p| p["payer"] == json!(telemetry::UNATTRIBUTED)));

    // A ledger that cannot be written fails nothing: the request answers, the failure is
    // logged (last here: its usage is carried to this process's next write).
    let broken = Store::new(w.store.client().clone(), "no-such-table", store::CursorKey::new("x"));
    let config = testkit::sdk_config().await;
    let platform = local_runner::provision::platform(&config, w.store.clone(), "https://app.example.com", Default::default());
    let (functions, _) = local_runner::server::functions(&platform).unwrap();
    let router = functions.layer(axum::middleware::from_fn_with_state(broken, api::metering::metered));
    ApiCall::get(&a).by(&w.owner).send(&router).await.expect(200);
}

#[tokio::test]
async fn every_store_call_reports_the_capacity_dynamodb_computes() {
    let store = testkit::fresh_store().await;
    let item = |pk: &str, payload: usize| {
        use aws_sdk_dynamodb::types::AttributeValue::S;
        std::collections::HashMap::from([("PK".to_owned(), S(pk.into())), ("SK".to_owned(), S("X".into())), ("payload".to_owned(), S("x".repeat(payload)))])
    };
    let (_, calls) = telemetry::record(async {
        // A PutItem of an item under 1 KB: 1 write unit; of 2.5 KB: 3.
        store.client().put_item().table_name(store.table_name()).set_item(Some(item("COSTTEST#a", 100))).send().await.unwrap();
        store.client().put_item().table_name(store.table_name()).set_item(Some(item("COSTTEST#b", 2500))).send().await.unwrap();
        // A consistent GetItem of an item under 4 KB: 1 read unit.
        let key = std::collections::HashMap::from([
            ("PK".to_owned(), aws_sdk_dynamodb::types::AttributeValue::S("COSTTEST#a".into())),
            ("SK".to_owned(), aws_sdk_dynamodb::types::AttributeValue::S("X".into())),
        ]);
        store.client().get_item().table_name(store.table_name()).set_key(Some(key)).consistent_read(true).send().await.unwrap();
    })
    .await;
    let consumed: Vec<(String, f64, f64)> = calls.all().into_iter().map(|c| (c.operation, c.consumed.read, c.consumed.write)).collect();
    assert_eq!(consumed, vec![("PutItem".to_owned(), 0.0, 1.0), ("PutItem".to_owned(), 0.0, 3.0), ("GetItem".to_owned(), 1.0, 0.0)]);
}
