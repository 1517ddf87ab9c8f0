//! Round-trip budgets, counted by the SDK interceptor on real requests: every read route
//! spends at most one DynamoDB round trip of latency (calls issued concurrently count once),
//! every write at most two. Deterministic, so asserted; times never are.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use testkit::{ApiCall, Caller};

mod common;
use common::Fixture;

/// Routes allowed over budget, each with its reason.
const EXCEPTIONS: &[(&str, &str, usize, &str)] = &[
    ("GET", "/orgs", 2, "the caller's memberships, then their orgs by key (batch get)"),
    ("POST", "/admin/orgs/{orgId}/purge", usize::MAX, "a purge pass deletes page by page"),
    ("DELETE", "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}", 4, "after the task, its comments and history are deleted, page by page"),
    ("DELETE", "/orgs/{orgId}/conversations/{conversationId}", 4, "after the conversation, its messages are deleted, page by page"),
    (
        "POST",
        "/orgs/{orgId}/conversations/{conversationId}/messages",
        5,
        "settings and history are read with the authorization; the retrieved chunks' files are checked; then the reservation, its \
settlement and the turn's record (each tool round adds a reservation and a settlement)",
    ),
    ("POST", "/me/export", 3, "the caller's memberships, then their orgs by key (batch get), then the job's transaction"),
    ("DELETE", "/me", usize::MAX, "erasure reads and rewrites the caller's data in every org, page by page"),
    (
        "POST",
        "/orgs/{orgId}/projects/{projectId}/tasks/import",
        usize::MAX,
        "assignees are looked up by email, then rows are written in transactions of 24, 4 at a time",
    ),
    (
        "GET",
        "/orgs/{orgId}/files/{fileId}/download",
        2,
        "the file with the authorization, then the put of its file.downloaded event (the link handed out is recorded)",
    ),
    (
        "GET",
        "/orgs/{orgId}/files/{fileId}/text",
        2,
        "the file with the authorization, then the put of its file.downloaded event (the link handed out is recorded)",
    ),
    ("GET", "/orgs/{orgId}/audit/verify", 2, "the chain's head is read with the authorization, then its entries page by page (1 MB, or 1,000, a page)"),
    ("GET", "/admin/costs", 2, "the month's ledger index with the operator check, then the ranked orgs by key (batch get)"),
    ("GET", "/admin/audit", 8, "every org's entries: one index partition per day, newest first, until the page is full (the default 7 days back reach 8 days)"),
];

/// Actions a function is granted that no route calls, each with the handler that does.
const NON_ROUTE_ACTIONS: &[(&str, &str, &str)] = &[("notifications", "BatchWriteItem", "the stream consumer deletes a former member's inbox")];

/// A request to `path` that succeeds, by a caller allowed to make it.
fn succeeding_call(f: &Fixture, method: &str, path: &str) -> (ApiCall, Option<Value>) {
    let body = match (method, path) {
        ("POST", "/orgs") => Some(json!({"name": "Budget Co"})),
        ("PATCH", "/orgs/{orgId}") => Some(json!({"name": "Renamed"})),
        ("PATCH", "/orgs/{orgId}/members/{userId}") => Some(json!({"role": "viewer"})),
        ("POST", "/orgs/{orgId}/transfer-ownership") => Some(json!({"userId": f.target.sub})),
        ("PATCH", "/me") => Some(json!({"displayName": "Pat"})),
        ("PUT", "/admin/orgs/{orgId}/plan") => Some(json!({"plan": "PROFESSIONAL"})),
        ("PUT", "/admin/orgs/{orgId}/limits") => Some(json!({"multiplier": 2})),
        ("POST", "/orgs/{orgId}/invites") => Some(json!({"email": f.newcomer, "role": "viewer"})),
        ("POST", "/invites/accept") | ("POST", "/invites/decline") => Some(json!({"token": f.token})),
        ("POST", "/orgs/{orgId}/projects") => Some(json!({"name": "Budget project"})),
        ("PATCH", "/orgs/{orgId}/projects/{projectId}") => Some(json!({"name": "Renamed"})),
        ("POST", "/orgs/{orgId}/projects/{projectId}/tasks") => {
            Some(json!({"title": "Budget task", "assignee": f.member.sub, "due": "2026-12-01", "labels": ["new"]}))
        }
        ("PATCH", "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}") => Some(json!({"status": "in_progress", "assignee": f.member.sub})),
        ("POST", "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/move") => Some(json!({"status": "done"})),
        ("POST", "/orgs/{orgId}/projects/{projectId}/tasks/import") => Some(json!(format!("title,assignee\nImported,{}\n", f.member.email))),
        ("POST", "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/comments")
        | ("PATCH", "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/comments/{commentId}") => Some(json!({"text": "@someone look"})),
        ("PUT", "/orgs/{orgId}/notification-preferences") => Some(json!({"timeZone": "Asia/Tokyo", "digest": {"frequency": "daily", "hour": 9}})),
        ("POST", "/unsubscribe") => Some(json!("List-Unsubscribe=One-Click")),
        ("POST", "/orgs/{orgId}/files") => {
            Some(json!({"name": "budget.pdf", "size": 1000, "contentType": "application/pdf", "attachTo": {"projectId": f.project, "taskId": f.task}}))
        }
        ("PATCH", "/orgs/{orgId}/files/{fileId}") => Some(json!({"name": "renamed.png"})),
        ("PUT", "/orgs/{orgId}/chat/settings") => Some(json!({"systemPrompt": "Be brief.", "allowedModels": ["us.amazon.nova-lite-v1:0"],
            "defaultModel": "us.amazon.nova-lite-v1:0", "temperature": 0.3, "maxOutputTokens": 512, "retrieval": true})),
        ("POST", "/orgs/{orgId}/conversations") => Some(json!({"title": "Budget"})),
        ("PATCH", "/orgs/{orgId}/conversations/{conversationId}") => Some(json!({"title": "Renamed"})),
        ("POST", "/orgs/{orgId}/conversations/{conversationId}/messages") => Some(json!({"content": "What is new?"})),
        _ => None,
    };
    // The fixture's owner is the last owner of its org, whose erasure is refused.
    let caller: &Caller = if path == "/me" && method == "DELETE" {
        &f.member
    } else if path.starts_with("/admin/") {
        &f.platform
    } else if path.starts_with("/invites/") {
        &f.invitee
    } else {
        &f.owner
    };
    let call = f.call(method, path, body.clone()).by(caller);
    (call, body)
}

/// DynamoDB's writing operations.
const WRITES: [&str; 5] = ["PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"];

#[tokio::test]
async fn every_route_keeps_its_round_trip_budget() {
    let mut report = Vec::new();
    let mut over = Vec::new();
    let mut used: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (function, route) in registry::routes() {
        {
            let method = route.method.as_str().to_owned();
            let store = testkit::fresh_store().await;
            let config = testkit::sdk_config().await;
            local_runner::provision::mail_identity(&config).await;
            let queues = local_runner::events::queue_env(&config, store.table_name(), &[registry::function("exports").unwrap()]).await.unwrap();
            let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
            local_runner::provision::private_bucket(&s3, &local_runner::provision::export_bucket(store.table_name())).await.unwrap();
            let platform = local_runner::provision::platform(&config, store.clone(), "https://app.example.com", queues);
            let (router, _) = local_runner::server::functions(&platform).unwrap();
            let fixture = Fixture::new(&store).await;
            if route.path == "/admin/orgs/{orgId}/purge" {
                continue; // needs an interrupted deletion; its budget is exempt anyway
            }
            let (call, _) = succeeding_call(&fixture, &method, route.path);
            let (res, calls) = telemetry::record(call.send(&router)).await;
            assert!((200..400).contains(&res.status), "{method} {}: {} {}", route.path, res.status, res.body);
            used.entry(function).or_default().extend(calls.all().into_iter().filter(|c| c.service == "DynamoDB").map(|c| c.operation));
            let rounds = calls.rounds("DynamoDB");
            let budget =
                EXCEPTIONS.iter().find(|(m, p, _, _)| *m == method && *p == route.path).map(|(_, _, b, _)| *b).unwrap_or(if method == "GET" { 1 } else { 2 });
            assert!(rounds >= 1, "{method} {}: no DynamoDB call was counted", route.path);
            report.push(format!("{method} {} rounds={rounds} calls={} budget={budget}", route.path, calls.count("DynamoDB")));
            if method != "GET" && !route.public && !route.path.starts_with("/orgs/{orgId}") {
                // a write outside orgs is charged concurrently with its reads; its writes wait
                let mut all = calls.all();
                all.sort_by_key(|c| c.start);
                // one UpdateItem per bucket: the general one, and the route's class's
                let buckets = if route.rate_class == domain::RateClass::General { 1 } else { 2 };
                let dynamodb: Vec<_> = all.iter().filter(|c| c.service == "DynamoDB").collect();
                let charge = &dynamodb[..buckets];
                assert!(charge.iter().all(|c| c.operation == "UpdateItem"), "{method} {}: the rate-limit charge comes first", route.path);
                let charged = charge.iter().map(|c| c.end).max().unwrap();
                let early: Vec<_> = dynamodb[buckets..].iter().filter(|c| WRITES.contains(&c.operation.as_str()) && c.start < charged).collect();
                assert!(early.is_empty(), "{method} {}: {early:?} did not wait for the rate-limit charge", route.path);
            }
            if rounds > budget {
                over.push(format!(
                    "{method} {} took {rounds} DynamoDB round trips (budget {budget}): {:?}",
                    route.path,
                    calls.all().iter().map(|c| &c.operation).collect::<Vec<_>>()
                ));
            }
        }
    }
    println!("{}", report.join("\n"));
    assert!(over.is_empty(), "over their budget:\n{}", over.join("\n"));
    // Each role's DynamoDB actions are what its function calls: every call is permitted, and
    // no batch or query action is granted that no route of the function uses. (A
    // transaction's parts are authorised as item actions, which a call log cannot show.)
    for (function, ops) in &used {
        let granted: BTreeSet<String> = registry::function(function).unwrap().permissions.dynamodb.iter().map(|a| (*a).to_owned()).collect();
        let missing: Vec<_> = ops.difference(&granted).collect();
        assert!(missing.is_empty(), "{function} calls {missing:?}, which its registry entry does not grant");
        let fully_exercised = registry::routes().iter().filter(|(f, _)| f == function).all(|(_, r)| r.path != "/admin/orgs/{orgId}/purge");
        if fully_exercised {
            for action in ["BatchGetItem", "BatchWriteItem", "Query"] {
                let elsewhere = NON_ROUTE_ACTIONS.iter().any(|(f, a, _)| f == function && *a == action);
                assert!(!granted.contains(action) || ops.contains(action) || elsewhere, "{function} is granted {action} but no route calls it");
            }
        }
    }
}

#[tokio::test]
async fn concurrent_calls_count_as_one_round_trip() {
    let store = testkit::fresh_store().await;
    let f = Fixture::new(&store).await;
    let owner = f.owner.identity();
    let org = f.org.parse().unwrap();
    let (_, calls) = telemetry::record(async {
        let (a, b) = futures::join!(store.get_user(&owner.user_id), store.authorize(&owner, org, domain::Action::ReadOrg));
        a.unwrap();
        b.unwrap();
    })
    .await;
    assert_eq!((calls.count("DynamoDB"), calls.rounds("DynamoDB")), (3, 1));
    let (_, calls) = telemetry::record(async {
        store.get_user(&owner.user_id).await.unwrap();
        store.get_user(&owner.user_id).await.unwrap();
    })
    .await;
    assert_eq!((calls.count("DynamoDB"), calls.rounds("DynamoDB")), (2, 2));
}
