//! The audit log on the local AWS endpoint: the chain after 1,000 mixed actions (API actions
//! that emit events, and events of the kinds the store does not emit yet fed through the
//! consumer as the fan-out delivers them), the exact break after a direct table edit,
//! concurrent appenders, redelivery, expiry, erasure, the filters, and who may read what.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::{Action, Role};
use serde_json::{Value, json};
use store::{DomainEvent, NewOrg, Store};
use testkit::{ApiCall, Caller};

struct World {
    store: Store,
    router: axum::Router,
    owner: Caller,
    admin: Caller,
    member: Caller,
    operator: Caller,
    org: String,
}

async fn world_on(store: Store) -> World {
    let config = testkit::sdk_config().await;
    let platform = local_runner::provision::platform(&config, store.clone(), "https://app.example.com", Default::default());
    let (router, _) = local_runner::server::functions(&platform).unwrap();
    let (owner, admin, member) = (Caller::new("owner"), Caller::new("admin"), Caller::new("member"));
    for c in [&owner, &admin, &member] {
        store.ensure_user(&c.identity()).await.unwrap();
    }
    let org = org_of(&store, &owner, "Audited").await;
    let scope = store.authorize(&owner.identity(), org.parse().unwrap(), Action::ManageMembers).await.unwrap();
    for (c, role) in [(&admin, Role::Admin), (&member, Role::Member)] {
        store.add_member(&scope, &c.identity().user_id, role, c.identity().email, None).await.unwrap();
    }
    let operator = testkit::operator(&store, "auditor").await;
    World { store, router, owner, admin, member, operator, org }
}

async fn world() -> World {
    world_on(testkit::fresh_store().await).await
}

async fn org_of(store: &Store, owner: &Caller, name: &str) -> String {
    let new = NewOrg { name: domain::OrgName::parse("name", name).unwrap(), slug: None };
    store.create_org(&owner.identity(), None, new).await.unwrap().org_id().to_string()
}

/// A domain event as the store writes it, with the request behind it.
fn event(kind: &str, org: &str, actor: &str, fields: Value) -> DomainEvent {
    let mut e = json!({
        "id": ulid::Ulid::new().to_string(), "kind": kind, "orgId": org, "actor": actor, "at": "2026-11-27T10:00:00Z", "ttl": 4_000_000_000i64,
        "request": {"requestId": format!("req-{}", ulid::Ulid::new()), "sourceIp": "203.0.113.7", "userAgent": "curl/8.5"}
    });
    e.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    serde_json::from_value(e).unwrap()
}

/// Delivers `events` to the consumer as SQS delivers the fan-out's messages, 10 a batch;
/// answers the ids of the messages it reported failed.
async fn deliver(store: &Store, events: &[DomainEvent]) -> Vec<String> {
    let mut failed = Vec::new();
    for batch in events.chunks(10) {
        let records: Vec<Value> = batch
            .iter()
            .map(|e| json!({"messageId": format!("m-{}", e.id), "body": serde_json::to_string(e).unwrap(), "eventSource": "aws:sqs", "attributes": {}, "messageAttributes": {}}))
            .collect();
        let sqs: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(json!({ "Records": records })).unwrap();
        failed.extend(audit::on_queue(store, sqs).await);
    }
    failed
}

/// The org's entry items, oldest first.
async fn entry_items(store: &Store, org: &str) -> Vec<HashMap<String, AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = store
            .client()
            .query()
            .table_name(store.table_name())
            .key_condition_expression("PK = :pk AND begins_with(SK, :e)")
            .expression_attribute_values(":pk", AttributeValue::S(format!("ORG#{org}#AUDIT")))
            .expression_attribute_values(":e", AttributeValue::S("ENTRY#".into()))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(k) => start = Some(k),
            None => return items,
        }
    }
}

fn seq_of(item: &HashMap<String, AttributeValue>) -> u64 {
    item["seq"].as_n().unwrap().parse().unwrap()
}

async fn entry_item(store: &Store, org: &str, seq: u64) -> HashMap<String, AttributeValue> {
    entry_items(store, org).await.into_iter().find(|i| seq_of(i) == seq).unwrap()
}

fn key_of(item: &HashMap<String, AttributeValue>) -> HashMap<String, AttributeValue> {
    HashMap::from([("PK".to_owned(), item["PK"].clone()), ("SK".to_owned(), item["SK"].clone())])
}

async fn set_attribute(store: &Store, item: &HashMap<String, AttributeValue>, name: &str, value: AttributeValue) {
    store
        .client()
        .update_item()
        .table_name(store.table_name())
        .set_key(Some(key_of(item)))
        .update_expression("SET #a = :v")
        .expression_attribute_names("#a", name)
        .expression_attribute_values(":v", value)
        .send()
        .await
        .unwrap();
}

async fn put_back(store: &Store, item: HashMap<String, AttributeValue>) {
    store.client().put_item().table_name(store.table_name()).set_item(Some(item)).send().await.unwrap();
}

async fn delete_item(store: &Store, item: &HashMap<String, AttributeValue>) {
    store.client().delete_item().table_name(store.table_name()).set_key(Some(key_of(item))).send().await.unwrap();
}

impl World {
    async fn get(&self, caller: &Caller, path: &str, query: &[(&str, &str)]) -> testkit::ApiResponse {
        let mut call = ApiCall::get(path).by(caller);
        for (k, v) in query {
            call = call.query(k, v);
        }
        call.send(&self.router).await
    }

    async fn verify(&self, query: &[(&str, &str)]) -> Value {
        self.get(&self.owner, &format!("/orgs/{}/audit/verify", self.org), query).await.expect(200).body
    }

    /// Every entry of the org through the listing, newest first.
    async fn all_entries(&self, query: &[(&str, &str)]) -> Vec<Value> {
        let mut entries = Vec::new();
        let mut cursor = String::new();
        loop {
            let mut q = query.to_vec();
            q.push(("limit", "100"));
            q.push(("cursor", &cursor));
            let page = self.get(&self.admin, &format!("/orgs/{}/audit", self.org), &q).await.expect(200).body;
            entries.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["nextCursor"].as_str() {
                Some(c) => cursor = c.to_owned(),
                None => return entries,
            }
        }
    }
}

/// 1,000 actions of every audited kind: role changes, suspensions and task deletions through
/// the API (their events read back from the table, as the stream carries them), the other
/// kinds as events fed to the consumer; actors with and without profiles, `system` and
/// `platform`.
async fn thousand_actions(w: &World) -> usize {
    let org = w.org.clone();
    let member = w.member.sub.clone();
    for i in 0..30 {
        let role = if i % 2 == 0 { "viewer" } else { "member" };
        ApiCall::patch(&format!("/orgs/{org}/members/{member}")).by(&w.owner).json(json!({"role": role})).send(&w.router).await.expect(200);
    }
    for action in ["suspend", "reactivate"].iter().cycle().take(10) {
        ApiCall::post(&format!("/admin/orgs/{org}/{action}")).by(&w.operator).send(&w.router).await.expect(200);
    }
    let project = ApiCall::post(&format!("/orgs/{org}/projects")).by(&w.owner).json(json!({"name": "Audited"})).send(&w.router).await.expect(201).body;
    let project = project["id"].as_str().unwrap().to_owned();
    for i in 0..20 {
        let task = ApiCall::post(&format!("/orgs/{org}/projects/{project}/tasks"))
            .by(&w.admin)
            .json(json!({"title": format!("T{i}")}))
            .send(&w.router)
            .await
            .expect(201)
            .body;
        let task = task["id"].as_str().unwrap();
        ApiCall::delete(&format!("/orgs/{org}/projects/{project}/tasks/{task}")).by(&w.admin).send(&w.router).await.expect(204);
    }
    let mut events = testkit::domain_events(&w.store).await;
    let from_api = events.iter().filter(|e| audit::is_audited(e.kind)).count();
    assert!(from_api >= 60, "the API's actions emitted their events: {from_api}");
    let actors = [w.owner.sub.as_str(), w.admin.sub.as_str(), "system", "platform", "ghost-user-without-profile"];
    let mut i = 0;
    while events.iter().filter(|e| audit::is_audited(e.kind)).count() < 1000 {
        let kind = audit::EVENT_KINDS[i % audit::EVENT_KINDS.len()];
        if kind == "user.erased" {
            i += 1;
            continue;
        }
        let fields = json!({"member": w.member.sub, "role": "admin", "previousRole": "member", "fileId": ulid::Ulid::new().to_string(),
                            "title": format!("thing {i}"), "changes": [{"field": "name", "from": "a", "to": format!("b{i}")}]});
        events.push(event(kind, &org, actors[i % actors.len()], fields));
        i += 1;
    }
    // Events of kinds the log leaves out (task.created) arrive too: ignored.
    assert!(deliver(&w.store, &events).await.is_empty(), "no message failed");
    events.iter().filter(|e| audit::is_audited(e.kind)).count()
}

#[tokio::test]
async fn the_chain_verifies_after_1000_actions_and_breaks_exactly_where_the_table_was_edited() {
    let w = world().await;
    let recorded = thousand_actions(&w).await;
    assert_eq!(recorded, 1000);

    let started = std::time::Instant::now();
    let v = w.verify(&[]).await;
    println!("verifying 1,000 entries through the API took {:?} on the local endpoint", started.elapsed());
    assert_eq!(v, json!({"valid": true, "entries": 1000, "firstSeq": 1, "lastSeq": 1000, "headSeq": 1000}));

    // Resumable in pieces, with the same verdict.
    let (mut cursor, mut calls) = (String::new(), 0);
    let last = loop {
        let v = w.verify(&[("limit", "300"), ("cursor", &cursor)]).await;
        calls += 1;
        match v["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break v,
        }
    };
    assert_eq!((calls, &last["valid"], &last["entries"], &last["lastSeq"]), (4, &json!(true), &json!(1000), &json!(1000)));

    // The listing shows what was recorded: request meta, email at the time, targets, change.
    let entries = w.all_entries(&[]).await;
    assert_eq!(entries.len(), 1000);
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=1000).rev().collect::<Vec<_>>(), "newest first, contiguous");
    let role_change = entries.iter().find(|e| e["action"] == "member.role_changed" && e["actor"] == w.owner.sub.as_str()).unwrap();
    assert_eq!(role_change["actorEmail"], w.owner.email.as_str());
    assert_eq!(role_change["targets"]["member"], w.member.sub.as_str());
    assert!(role_change["change"]["role"].is_string() && role_change["change"]["previousRole"].is_string(), "{role_change}");
    let synthetic = entries.iter().find(|e| e["action"] == "invitation.revoked").unwrap();
    assert_eq!(synthetic["request"]["sourceIp"], "203.0.113.7");
    assert_eq!(synthetic["request"]["userAgent"], "curl/8.5");
    assert!(synthetic["change"]["changes"].is_array());
    for e in entries.iter().filter(|e| e["actor"] == "system" || e["actor"] == "platform" || e["actor"] == "ghost-user-without-profile") {
        assert!(e["actorEmail"].is_null(), "no email for {}", e["actor"]);
    }
    let times: Vec<&str> = entries.iter().map(|e| e["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|t| t[0] >= t[1]), "times are monotonic along the chain");

    // A field edited in the table: the chain breaks at exactly that entry.
    let original = entry_item(&w.store, &w.org, 500).await;
    set_attribute(&w.store, &original, "action", AttributeValue::S("org.updated".into())).await;
    let v = w.verify(&[]).await;
    assert_eq!((&v["valid"], &v["brokenAt"]["seq"]), (&json!(false), &json!(500)), "{v}");
    put_back(&w.store, original.clone()).await;
    assert_eq!(w.verify(&[]).await["valid"], true, "restored");

    // Targets edited (the user agent of the request, say), then the email of an entry.
    let target = entry_item(&w.store, &w.org, 321).await;
    set_attribute(&w.store, &target, "targets", AttributeValue::S(r#"{"member":"someone-else"}"#.into())).await;
    assert_eq!(w.verify(&[]).await["brokenAt"]["seq"], 321);
    put_back(&w.store, target).await;
    let with_email = entry_items(&w.store, &w.org).await.into_iter().find(|i| i.contains_key("actorEmail") && seq_of(i) > 600).unwrap();
    let seq = seq_of(&with_email);
    set_attribute(&w.store, &with_email, "actorEmail", AttributeValue::S("mallory@example.com".into())).await;
    let v = w.verify(&[]).await;
    assert_eq!((&v["brokenAt"]["seq"], v["brokenAt"]["reason"].as_str().unwrap().contains("email")), (&json!(seq), true), "{v}");
    put_back(&w.store, with_email).await;

    // An entry deleted: the break is at its seq; the last one deleted: at the head's.
    let gone = entry_item(&w.store, &w.org, 700).await;
    delete_item(&w.store, &gone).await;
    let v = w.verify(&[]).await;
    assert_eq!((&v["valid"], &v["brokenAt"]["seq"], &v["lastSeq"]), (&json!(false), &json!(700), &json!(699)), "{v}");
    put_back(&w.store, gone).await;
    let newest = entry_item(&w.store, &w.org, 1000).await;
    delete_item(&w.store, &newest).await;
    assert_eq!(w.verify(&[]).await["brokenAt"]["seq"], 1000);
    put_back(&w.store, newest).await;
    let first = entry_item(&w.store, &w.org, 1).await;
    delete_item(&w.store, &first).await;
    assert_eq!(w.verify(&[]).await["brokenAt"]["seq"], 1, "the first entry had not expired: deleted");
    put_back(&w.store, first).await;
    assert_eq!(w.verify(&[]).await["valid"], true);

    // No route edits or deletes an entry.
    for method in ["PUT", "PATCH", "DELETE", "POST"] {
        let status = ApiCall::new(method, &format!("/orgs/{}/audit", w.org)).by(&w.owner).json(json!({})).send(&w.router).await.status;
        assert_eq!(status, 405, "{method}");
    }
}

#[tokio::test]
async fn concurrent_appenders_never_fork_the_chain() {
    let w = world().await;
    let writers = (0..8).map(|n| {
        let store = w.store.clone();
        let org = w.org.clone();
        let actor = w.admin.sub.clone();
        async move {
            let mut seqs = Vec::new();
            for i in 0..10 {
                let e = event("file.downloaded", &org, &actor, json!({"title": format!("w{n}-{i}")}));
                match audit::record(&store, &e).await.unwrap() {
                    Some(store::Recorded::Appended(seq)) => seqs.push(seq),
                    other => panic!("{other:?}"),
                }
            }
            seqs
        }
    });
    let mut seqs: Vec<u64> = futures::future::join_all(writers).await.into_iter().flatten().collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=80).collect::<Vec<_>>(), "every append got its own seq, none twice");
    let items = entry_items(&w.store, &w.org).await;
    assert_eq!(items.iter().map(seq_of).collect::<Vec<_>>(), (1..=80).collect::<Vec<_>>(), "stored in chain order");
    let v = w.verify(&[]).await;
    assert_eq!(v, json!({"valid": true, "entries": 80, "firstSeq": 1, "lastSeq": 80, "headSeq": 80}));
}

#[tokio::test]
async fn a_redelivered_event_is_recorded_once() {
    let w = world().await;
    let e = event("ownership.transferred", &w.org, &w.owner.sub, json!({"member": w.admin.sub}));
    assert!(deliver(&w.store, &[e.clone(), e.clone()]).await.is_empty(), "one batch holding it twice");
    assert!(deliver(&w.store, std::slice::from_ref(&e)).await.is_empty(), "and again later");
    let twice = futures::join!(audit::record(&w.store, &e), audit::record(&w.store, &e));
    assert_eq!((twice.0.unwrap(), twice.1.unwrap()), (Some(store::Recorded::Duplicate), Some(store::Recorded::Duplicate)));
    let entries = w.all_entries(&[]).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["eventId"], e.id.as_str());
    // A message that is not an event is reported failed (its queue's dead-letter queue keeps it).
    let poison: aws_lambda_events::sqs::SqsEvent =
        serde_json::from_value(json!({"Records": [{"messageId": "poison", "body": "{\"not\": \"an event\"}", "attributes": {}, "messageAttributes": {}}]}))
            .unwrap();
    assert_eq!(audit::on_queue(&w.store, poison).await, ["poison"]);
}

#[tokio::test]
async fn tenants_read_only_their_own_audit_log_and_admins_only() {
    let w = world().await;
    deliver(&w.store, &[event("org.updated", &w.org, &w.owner.sub, json!({"title": "Audited"}))]).await;
    let other_owner = Caller::new("b-owner");
    store_user(&w.store, &other_owner).await;
    let org_b = org_of(&w.store, &other_owner, "Org B").await;
    let b_admin = Caller::new("b-admin");
    store_user(&w.store, &b_admin).await;
    let scope = w.store.authorize(&other_owner.identity(), org_b.parse().unwrap(), Action::ManageMembers).await.unwrap();
    w.store.add_member(&scope, &b_admin.identity().user_id, Role::Admin, b_admin.identity().email, None).await.unwrap();
    deliver(&w.store, &[event("org.updated", &org_b, &other_owner.sub, json!({"title": "Org B"}))]).await;

    let (list, verify) = (format!("/orgs/{}/audit", w.org), format!("/orgs/{}/audit/verify", w.org));
    for caller in [&b_admin, &other_owner] {
        w.get(caller, &list, &[]).await.expect_problem(404, "not-found");
        w.get(caller, &verify, &[]).await.expect_problem(404, "not-found");
    }
    w.get(&w.member, &list, &[]).await.expect_problem(403, "forbidden");
    w.get(&w.member, &verify, &[]).await.expect_problem(403, "forbidden");
    w.get(&w.admin, &verify, &[]).await.expect_problem(403, "forbidden");
    let a = w.get(&w.admin, &list, &[]).await.expect(200).body;
    assert_eq!(a["items"].as_array().unwrap().len(), 1);
    assert_eq!(a["items"][0]["orgId"], w.org.as_str());
    // A cursor of org A's listing is refused on org B's, also for the actor index they share.
    let mut cursors = Vec::new();
    deliver(&w.store, &[event("org.updated", &w.org, &w.owner.sub, json!({"title": "again"}))]).await;
    for q in [vec![("limit", "1")], vec![("limit", "1"), ("actor", w.owner.sub.as_str())]] {
        let page = w.get(&w.admin, &list, &q).await.expect(200).body;
        cursors.push(page["nextCursor"].as_str().unwrap().to_owned());
    }
    for cursor in &cursors {
        w.get(&b_admin, &format!("/orgs/{org_b}/audit"), &[("cursor", cursor)]).await.expect_problem(400, "invalid-cursor");
    }
    // Platform operators: /admin/audit, across orgs; nobody else.
    w.get(&w.owner, "/admin/audit", &[]).await.expect_problem(403, "forbidden");
    w.get(&w.operator, &list, &[]).await.expect_problem(403, "forbidden");
    let everyone = w.get(&w.operator, "/admin/audit", &[]).await.expect(200).body;
    let orgs: std::collections::BTreeSet<&str> = everyone["items"].as_array().unwrap().iter().map(|e| e["orgId"].as_str().unwrap()).collect();
    assert_eq!(orgs, [w.org.as_str(), org_b.as_str()].into_iter().collect());
    let b_only = w.get(&w.operator, "/admin/audit", &[("orgId", &org_b)]).await.expect(200).body;
    assert_eq!(b_only["items"].as_array().unwrap().len(), 1);
    let owner_everywhere = w.get(&w.operator, "/admin/audit", &[("actor", &w.owner.sub)]).await.expect(200).body;
    assert_eq!(owner_everywhere["items"].as_array().unwrap().len(), 2);
    w.get(&w.operator, "/admin/audit", &[("from", "2020-01-01T00:00:00Z"), ("to", "2026-01-01T00:00:00Z")]).await.expect_problem(422, "validation-failed");
}

async fn store_user(store: &Store, c: &Caller) {
    store.ensure_user(&c.identity()).await.unwrap();
}

#[tokio::test]
async fn filters_by_actor_action_and_time() {
    let clock = domain::Clock::fixed(time::macros::datetime!(2026-03-01 09:00:00 UTC));
    let w = world_on(testkit::fresh_store().await.with_clock(clock.clone())).await;
    let (owner, admin) = (w.owner.sub.clone(), w.admin.sub.clone());
    for (kind, actor) in [("org.updated", &owner), ("member.joined", &admin), ("org.updated", &admin), ("file.deleted", &owner)] {
        deliver(&w.store, &[event(kind, &w.org, actor, json!({}))]).await;
        clock.advance(std::time::Duration::from_secs(3600));
    }
    let actions = |entries: Vec<Value>| entries.iter().map(|e| format!("{} {}", e["seq"], e["action"].as_str().unwrap())).collect::<Vec<_>>();
    assert_eq!(actions(w.all_entries(&[("actor", &admin)]).await), ["3 org.updated", "2 member.joined"]);
    assert_eq!(actions(w.all_entries(&[("action", "org.updated")]).await), ["3 org.updated", "1 org.updated"]);
    assert_eq!(actions(w.all_entries(&[("action", "org.updated"), ("actor", &owner)]).await), ["1 org.updated"]);
    let range = [("from", "2026-03-01T10:00:00Z"), ("to", "2026-03-01T12:00:00Z")];
    assert_eq!(actions(w.all_entries(&range).await), ["3 org.updated", "2 member.joined"], "from inclusive, to exclusive");
    assert_eq!(actions(w.all_entries(&[("from", "2026-03-01T11:00:00+01:00")]).await), ["4 file.deleted", "3 org.updated", "2 member.joined"], "any offset");
    let list = format!("/orgs/{}/audit", w.org);
    for (k, v) in [("action", "task.created"), ("action", "nope"), ("actor", "a#b"), ("from", "yesterday"), ("colour", "red")] {
        let status = w.get(&w.admin, &list, &[(k, v)]).await.status;
        assert!(status == 422 || status == 400, "{k}={v}: {status}");
    }
    w.get(&w.admin, &list, &[("from", "2026-03-02T00:00:00Z"), ("to", "2026-03-01T00:00:00Z")]).await.expect_problem(422, "validation-failed");
}

#[tokio::test]
async fn expired_entries_start_the_chain_later_but_a_deleted_one_still_breaks_it() {
    let clock = domain::Clock::fixed(time::macros::datetime!(2026-03-01 09:00:00 UTC));
    let w = world_on(testkit::fresh_store().await.with_clock(clock.clone())).await;
    // A free plan keeps entries 30 days.
    let batch = |n: usize| (0..n).map(|i| event("file.downloaded", &w.org, &w.owner.sub, json!({"title": format!("f{i}")}))).collect::<Vec<_>>();
    deliver(&w.store, &batch(3)).await;
    clock.advance(std::time::Duration::from_secs(10 * 86_400));
    deliver(&w.store, &batch(3)).await;
    clock.advance(std::time::Duration::from_secs(25 * 86_400));
    // Day 35: the first three expired; DynamoDB's TTL deletes them (here: by hand).
    let items = entry_items(&w.store, &w.org).await;
    delete_item(&w.store, &items[1]).await;
    let v = w.verify(&[]).await;
    assert_eq!(v, json!({"valid": true, "entries": 3, "firstSeq": 4, "lastSeq": 6, "headSeq": 6}), "expired entries are not checked, deleted or not");
    for item in &items[..3] {
        delete_item(&w.store, item).await;
    }
    assert_eq!(w.verify(&[]).await, json!({"valid": true, "entries": 3, "firstSeq": 4, "lastSeq": 6, "headSeq": 6}), "older entries expired");
    // Entry 4 has not expired (day 40): deleting it is a break, not an expiry.
    delete_item(&w.store, &items[3]).await;
    let v = w.verify(&[]).await;
    assert_eq!((&v["valid"], &v["brokenAt"]["seq"]), (&json!(false), &json!(4)), "{v}");
}

#[tokio::test]
async fn erasure_removes_the_users_email_and_the_chains_still_verify() {
    let w = world().await;
    let leaver = Caller::new("leaver");
    store_user(&w.store, &leaver).await;
    let org_b = org_of(&w.store, &leaver, "Leaver's").await;
    let scope = w.store.authorize(&w.owner.identity(), w.org.parse().unwrap(), Action::ManageMembers).await.unwrap();
    w.store.add_member(&scope, &leaver.identity().user_id, Role::Member, leaver.identity().email, None).await.unwrap();
    let mut events = Vec::new();
    for org in [&w.org, &org_b] {
        events.push(event("file.downloaded", org, &leaver.sub, json!({"title": "report.pdf"})));
        events.push(event("org.updated", org, &w.owner.sub, json!({"title": "x"})));
    }
    assert!(deliver(&w.store, &events).await.is_empty());
    let with_email = |entries: &[Value], actor: &str| entries.iter().filter(|e| e["actor"] == actor && e["actorEmail"].is_string()).count();
    assert_eq!(with_email(&w.all_entries(&[]).await, &leaver.sub), 1);

    // The account is erased: one user.erased per org (as DELETE /me emits them), redelivered.
    let erased: Vec<DomainEvent> = [&w.org, &org_b].iter().map(|org| event("user.erased", org, &leaver.sub, json!({}))).collect();
    assert!(deliver(&w.store, &erased).await.is_empty());
    assert!(deliver(&w.store, &erased[..1]).await.is_empty(), "a redelivery scrubs again, records nothing");
    let entries = w.all_entries(&[]).await;
    assert_eq!(entries.len(), 3, "its own entry recorded once");
    assert_eq!(with_email(&entries, &leaver.sub), 0, "the erased user's email is gone");
    assert_eq!(with_email(&entries, &w.owner.sub), 1, "others' stay");
    let erased_entry = entries.iter().find(|e| e["action"] == "user.erased").unwrap();
    assert!(erased_entry["actorEmail"].is_null());
    let leaver_entry = entries.iter().find(|e| e["actor"] == leaver.sub.as_str() && e["action"] == "file.downloaded").unwrap();
    assert!(leaver_entry["emailDigest"].is_string(), "the commitment stays");
    let items = entry_items(&w.store, &org_b).await;
    assert!(items.iter().all(|i| i["actor"].as_s().unwrap() != &leaver.sub || !i.contains_key("actorEmail") && !i.contains_key("emailNonce")));
    assert_eq!(w.verify(&[]).await["valid"], true);
    let v = ApiCall::get(&format!("/orgs/{org_b}/audit/verify")).by(&leaver).send(&w.router).await.expect(200).body;
    assert_eq!((&v["valid"], &v["entries"]), (&json!(true), &json!(3)));
}

#[tokio::test]
async fn an_api_action_reaches_the_log_through_the_stream_and_the_fan_out() {
    // As `make dev` wires it: the table's stream to org-purge's mapping (its filter takes the
    // audited kinds), its fan-out to the audit queue, the queue to the audit function.
    let store = testkit::fresh_store_with_stream().await;
    let config = testkit::sdk_config().await;
    let functions = vec![registry::function("org-purge").unwrap(), registry::function("audit").unwrap()];
    let env = local_runner::events::queue_env(&config, store.table_name(), &functions).await.unwrap();
    let platform = local_runner::provision::platform(&config, store.clone(), "https://app.example.com", env);
    let events = local_runner::events::LocalEvents::setup(&config, &platform, functions, "").await.unwrap();
    let w = World { router: local_runner::server::functions(&platform).unwrap().0, ..world_on(store).await };
    ApiCall::patch(&format!("/orgs/{}/members/{}", w.org, w.member.sub)).by(&w.owner).json(json!({"role": "viewer"})).send(&w.router).await.expect(200);
    let project = ApiCall::post(&format!("/orgs/{}/projects", w.org)).by(&w.owner).json(json!({"name": "P"})).send(&w.router).await.expect(201).body;
    ApiCall::post(&format!("/orgs/{}/projects/{}/tasks", w.org, project["id"].as_str().unwrap()))
        .by(&w.owner)
        .json(json!({"title": "not audited"}))
        .send(&w.router)
        .await
        .expect(201);
    events.settle(20).await;
    let actions: Vec<String> = w.all_entries(&[]).await.iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect();
    assert!(actions.contains(&"member.role_changed".to_owned()), "{actions:?}: {:?}", events.log().all());
    assert!(!actions.contains(&"task.created".to_owned()), "{actions:?}");
    assert_eq!(w.verify(&[]).await["valid"], true);
}
