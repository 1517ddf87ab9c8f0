//! Many simultaneous role changes and removals can never leave an org without an owner.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use domain::{Action, Role};
use serde_json::json;
use testkit::{ApiCall, Caller};

#[tokio::test]
async fn concurrent_demotions_and_departures_keep_an_owner() {
    let store = testkit::fresh_store().await;
    let router = organizations::router(store.clone()).0;
    let owners: Vec<Caller> = (0..8).map(|i| Caller::new(&format!("owner{i}"))).collect();
    let created = ApiCall::post("/orgs").by(&owners[0]).json(json!({"name": "Many Owners"})).send(&router).await.expect(201);
    let org = created.body["id"].as_str().unwrap().to_owned();
    let admin = store.admin_scope(&testkit::operator(&store, "op").await.identity(), org.parse().unwrap()).await.unwrap();
    store.set_org_plan(&admin, domain::Plan::Starter).await.unwrap();
    let scope = store.authorize(&owners[0].identity(), org.parse().unwrap(), Action::ManageMembers).await.unwrap();
    for o in &owners[1..] {
        store.add_member(&scope, &o.identity().user_id, Role::Owner, None, None).await.unwrap();
    }

    // Every owner at once: half leave, the others demote the next owner and then leave.
    let tasks = owners.iter().enumerate().map(|(i, me)| {
        let router = router.clone();
        let next = owners[(i + 1) % owners.len()].clone();
        let (me, org) = (me.clone(), org.clone());
        tokio::spawn(async move {
            if i % 2 == 0 {
                ApiCall::patch(&format!("/orgs/{org}/members/{}", next.sub)).by(&me).json(json!({"role": "member"})).send(&router).await;
            }
            ApiCall::delete(&format!("/orgs/{org}/members/{}", me.sub)).by(&me).send(&router).await.status
        })
    });
    let statuses: Vec<u16> = futures::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    assert!(statuses.iter().all(|s| [204, 404, 409].contains(s)), "{statuses:?}");

    let org_id = org.parse().unwrap();
    let remaining = testkit::scan_all(&store).await;
    let owners_left = remaining
        .iter()
        .filter(|i| i.get("_type").and_then(|t| t.as_s().ok()).map(String::as_str) == Some("member"))
        .filter(|i| i.get("orgId").and_then(|v| v.as_s().ok()) == Some(&org))
        .filter(|i| i.get("role").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("owner"))
        .count();
    assert!(owners_left >= 1, "no owner left: {statuses:?}");
    let op = testkit::operator(&store, "op").await.identity();
    let org_item = store.authorize(&op, org_id, Action::ReadOrg).await.unwrap();
    assert_eq!(org_item.org().owner_count, owners_left as u64, "owner counter matches the members");
}
