//! Deleting an org purges it asynchronously: the table's stream carries the deletion to the
//! `org-purge` consumer (its registry entry, its filter, its handler), a pass that runs out of
//! time continues through the stream, and the hourly schedule resumes what the stream did
//! not deliver.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::HashMap;
use std::time::Duration;

use domain::{Action, Identity, OrgName, Plan, Role, UserId};
use local_runner::events::LocalEvents;
use store::{NewOrg, OrgScope, Store};

fn person(name: &str) -> Identity {
    let c = testkit::Caller::new(name);
    Identity { user_id: c.sub.parse().unwrap(), email: Some(c.email.parse().unwrap()), email_verified: true, platform_admin: false }
}

/// An org with `members` members besides its owner, on the Enterprise plan.
async fn org_with(store: &Store, members: usize) -> (Identity, OrgScope) {
    let owner = person(&format!("owner-{}", ulid::Ulid::new().to_string().to_ascii_lowercase()));
    let scope = store.create_org(&owner, None, NewOrg { name: OrgName::parse("name", "Doomed").unwrap(), slug: None }).await.unwrap();
    let operator = Identity { platform_admin: true, ..person("operator") };
    store.ensure_user(&operator).await.unwrap();
    store.set_platform_operator(&operator.user_id, true).await.unwrap();
    let admin = store.admin_scope(&operator, scope.org_id()).await.unwrap();
    store.set_org_plan(&admin, Plan::Enterprise).await.unwrap();
    let scope = store.authorize(&owner, scope.org_id(), Action::ManageMembers).await.unwrap();
    let adds = (0..members).map(|i| {
        let scope = &scope;
        async move {
            let user: UserId = testkit::Caller::new(&format!("m{i}-{}", scope.org_id())).sub.parse().unwrap();
            store.add_member(scope, &user, Role::Member, None, None).await.unwrap();
        }
    });
    futures::future::join_all(adds).await;
    (owner, scope)
}

/// Items left in the org's partitions.
/// The items of `org` left in the table, but its cost ledger (`COSTS#ORG#…`, kept outside the
/// org's partition so that a purge leaves what the org cost; the event deliveries here are
/// metered into it).
async fn left_of(store: &Store, org: domain::OrgId) -> usize {
    let org = org.to_string();
    testkit::scan_all(store)
        .await
        .iter()
        .filter(|i| !testkit::is_ledger_item(i) && i.get("PK").and_then(|v| v.as_s().ok()).is_some_and(|pk| pk.contains(&org)))
        .count()
}

/// Every DynamoDB call the purge made is one its registry entry grants.
fn assert_permitted(calls: &telemetry::Calls) {
    let granted = registry::function("org-purge").unwrap().permissions.dynamodb;
    let ops: Vec<String> = calls.all().into_iter().filter(|c| c.service == "DynamoDB").map(|c| c.operation).collect();
    assert!(!ops.is_empty(), "the purge made DynamoDB calls");
    for op in &ops {
        assert!(granted.contains(&op.as_str()), "org-purge calls {op}, which its registry entry does not grant ({granted:?})");
    }
}

/// The upload bucket of the stack on `store`'s table (made here: tests do not provision).
fn uploads(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build())
}

async fn events_for(store: &Store, extra: HashMap<String, String>) -> LocalEvents {
    let config = testkit::sdk_config().await;
    uploads(&config).create_bucket().bucket(local_runner::provision::upload_bucket(store.table_name())).send().await.unwrap();
    let platform = local_runner::provision::platform(&config, store.clone(), "https://app.example.com", extra);
    let purge = registry::function("org-purge").expect("org-purge is registered");
    LocalEvents::setup(&config, &platform, vec![purge], "").await.expect("event sources wired")
}

#[tokio::test]
async fn deleting_an_org_reaches_the_purge_consumer_through_the_stream() {
    let store = testkit::fresh_store_with_stream().await;
    let events = events_for(&store, HashMap::new()).await;
    let (_, survivor) = org_with(&store, 2).await;
    let (owner, doomed) = org_with(&store, 5).await;
    let org = doomed.org_id();
    // Everything up to here is on the stream; none of it is an org being deleted. (The
    // mapping also takes the domain events it fans out to subscribers, the audit log's
    // member.joined among them: they purge nothing.)
    let before = (left_of(&store, org).await, left_of(&store, survivor.org_id()).await);
    events.settle(10).await;
    assert_eq!((left_of(&store, org).await, left_of(&store, survivor.org_id()).await), before, "nothing purged: {:?}", events.log().all());
    let earlier = events.log().all().len();

    store.delete_org(&doomed).await.unwrap();
    assert!(left_of(&store, org).await > 5, "deletion itself purges nothing");
    events.settle(10).await;

    assert_eq!(left_of(&store, org).await, 0, "the consumer purged the org");
    let deliveries = events.log().all().split_off(earlier);
    // First the org becoming `deleting` with its org.deletion_requested event; then the
    // memberships the purge removed, which the same consumer reads as ended memberships and
    // leaves alone (their org is being deleted).
    assert_eq!((deliveries[0].source.as_str(), deliveries[0].records, deliveries[0].failed), ("stream", 2, 0), "{deliveries:?}");
    assert_eq!(deliveries[1..].iter().map(|d| d.records).sum::<usize>(), 6, "the owner and five members: {deliveries:?}");
    assert!(deliveries.iter().all(|d| d.failed == 0 && d.dead_lettered == 0), "{deliveries:?}");
    assert!(store.authorize(&owner, org, Action::ReadOrg).await.is_err());
    assert!(left_of(&store, survivor.org_id()).await >= 3, "the other org is untouched");
}

#[tokio::test]
async fn a_purge_deletes_the_orgs_objects_and_only_its_own() {
    let store = testkit::fresh_store_with_stream().await;
    let events = events_for(&store, HashMap::new()).await;
    let s3 = uploads(&testkit::sdk_config().await);
    let bucket = local_runner::provision::upload_bucket(store.table_name());
    let (_, survivor) = org_with(&store, 0).await;
    let (_, doomed) = org_with(&store, 0).await;
    let file = domain::files::FileId::new();
    let key_of = |org: domain::OrgId| [format!("uploads/{org}/{file}"), format!("derived/{org}/{file}/thumbnail.jpg")];
    for key in key_of(doomed.org_id()).into_iter().chain(key_of(survivor.org_id())) {
        s3.put_object().bucket(&bucket).key(key).body(b"bytes".to_vec().into()).send().await.unwrap();
    }
    events.settle(5).await;
    store.delete_org(&doomed).await.unwrap();
    let (_, calls) = telemetry::record(events.settle(10)).await;
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let mut left: Vec<String> = listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
    left.sort();
    let mut kept = key_of(survivor.org_id()).to_vec();
    kept.sort();
    assert_eq!(left, kept, "the deleted org's objects are gone, the other org's stay");
    let granted = registry::function("org-purge").unwrap().permissions.s3;
    let s3_calls: Vec<String> = calls.all().into_iter().filter(|c| c.service == "S3").map(|c| c.operation).collect();
    assert!(!s3_calls.is_empty());
    for op in s3_calls {
        // ListObjectsV2 is authorised as s3:ListBucket, DeleteObjects as s3:DeleteObject.
        let action = match op.as_str() {
            "ListObjectsV2" => "s3:ListBucket",
            "DeleteObjects" => "s3:DeleteObject",
            other => panic!("org-purge calls S3 {other}"),
        };
        assert!(granted.contains(&action), "{op} needs {action}, which org-purge is not granted");
    }
}

#[tokio::test]
async fn a_large_org_is_purged_over_several_passes_through_the_stream() {
    let store = testkit::fresh_store_with_stream().await;
    // No time for more than one page per pass.
    let events = events_for(&store, HashMap::from([(org_purge::PASS_SECONDS_ENV.to_owned(), "0".to_owned())])).await;
    let (_, doomed) = org_with(&store, 230).await;
    let org = doomed.org_id();
    events.settle(5).await;
    store.delete_org(&doomed).await.unwrap();
    // Each pass deletes a page; the removed memberships come back as records too.
    let (_, calls) = telemetry::record(events.settle(80)).await;
    assert_eq!(left_of(&store, org).await, 0);
    assert_permitted(&calls);
    let passes = events.log().all().iter().filter(|d| d.source == "stream").count();
    assert!(passes >= 3, "230 members take three 100-item pages, each pass one page: {passes} deliveries");
}

#[tokio::test]
async fn the_hourly_sweep_purges_what_the_stream_never_delivered() {
    // No stream on this table: the deletion's record is lost, as if it went to the DLQ.
    let store = testkit::fresh_store().await.with_clock(domain::Clock::fixed(time::macros::datetime!(2026-11-27 10:00 UTC)));
    let events = events_for(&store, HashMap::new()).await;
    let (_, doomed) = org_with(&store, 3).await;
    let org = doomed.org_id();
    store.delete_org(&doomed).await.unwrap();
    events.settle(5).await;
    assert!(left_of(&store, org).await > 3, "nothing was delivered yet");
    assert_eq!(events.advance(Duration::from_secs(59 * 60)).await.unwrap().len(), 0, "not due before the hour");
    assert!(left_of(&store, org).await > 3);
    let (fired, calls) = telemetry::record(events.advance(Duration::from_secs(60))).await;
    assert_eq!(fired.unwrap().len(), 1, "due at the hour");
    assert_permitted(&calls);
    assert_eq!(left_of(&store, org).await, 0);
    let sweep = events.log().all().into_iter().find(|d| d.source == "schedule:resume-purges").expect("the sweep ran");
    assert_eq!(sweep.failed, 0);
}

#[tokio::test]
async fn orgs_in_one_batch_share_the_invocations_deadline() {
    let store = testkit::fresh_store_with_stream().await;
    // No time for more than the first org's first page per invocation.
    let events = events_for(&store, HashMap::from([(org_purge::PASS_SECONDS_ENV.to_owned(), "0".to_owned())])).await;
    let (_, first) = org_with(&store, 120).await;
    let (_, second) = org_with(&store, 120).await;
    // Until the stream is quiet: the members' member.joined events go through the fan-out.
    events.settle(100).await;
    store.delete_org(&first).await.unwrap();
    store.delete_org(&second).await.unwrap();
    events.settle(30).await;
    assert_eq!(left_of(&store, first.org_id()).await + left_of(&store, second.org_id()).await, 0, "both purged in the end");
    let deliveries = events.log().all();
    assert!(
        deliveries.iter().any(|d| d.source == "stream" && d.records >= 2 && d.failed >= 1),
        "the second org of a batch waited for a retry instead of running past the deadline: {deliveries:?}"
    );
}

/// A project of `scope`'s org with `tasks` tasks, each with a comment.
async fn project_with(store: &Store, scope: &OrgScope, tasks: usize) -> store::Project {
    let project = store.create_project(scope, domain::work::ProjectName::parse("name", "Doomed project").unwrap(), String::new()).await.unwrap();
    for i in 0..tasks {
        let draft = store::TaskDraft::new(domain::work::TaskTitle::parse("title", &format!("task {i}")).unwrap());
        let last = store.last_rank(scope, project.id, domain::work::TaskStatus::Todo).await.unwrap();
        let task = store.create_task(scope, &project, draft, last.as_deref(), &store::OrgLabels::default()).await.unwrap();
        store.create_comment(scope, &task, format!("comment {i}"), Vec::new()).await.unwrap();
    }
    project
}

/// Items left in a project's partition.
async fn left_in_project(store: &Store, project: domain::work::ProjectId) -> usize {
    let project = format!("#PROJECT#{project}");
    testkit::scan_all(store).await.iter().filter(|i| i.get("PK").and_then(|v| v.as_s().ok()).is_some_and(|pk| pk.ends_with(&project))).count()
}

#[tokio::test]
async fn deleting_a_project_reaches_the_purge_consumer_and_spares_the_rest() {
    let store = testkit::fresh_store_with_stream().await;
    // One page per pass: the project's purge continues through the stream.
    let events = events_for(&store, HashMap::from([(org_purge::PASS_SECONDS_ENV.to_owned(), "0".to_owned())])).await;
    let (owner, scope) = org_with(&store, 0).await;
    let doomed = project_with(&store, &scope, 40).await;
    let kept = project_with(&store, &scope, 2).await;
    events.settle(10).await;
    // The mapping also takes the audited domain events (the org's creation, say): no failures.
    assert!(events.log().all().iter().all(|d| d.failed == 0 && d.dead_lettered == 0), "{:?}", events.log().all());
    let before = left_in_project(&store, kept.id).await;
    assert!(left_in_project(&store, doomed.id).await > 100, "tasks, comments and history");

    let scope = store.authorize(&owner, scope.org_id(), Action::ManageWorkload).await.unwrap();
    let earlier = events.log().all().len();
    store.delete_project(&scope, &doomed, None).await.unwrap();
    assert!(store.get_project(&scope, doomed.id).await.unwrap().is_none(), "gone at once");
    let (_, calls) = telemetry::record(events.settle(20)).await;
    assert_permitted(&calls);
    assert_eq!(left_in_project(&store, doomed.id).await, 0, "the consumer purged the project");
    assert_eq!(left_in_project(&store, kept.id).await, before, "the other project is untouched");
    assert!(store.awaiting_purge().await.unwrap().is_empty(), "its marker is gone too");
    let passes = events.log().all().split_off(earlier).iter().filter(|d| d.source == "stream" && d.failed == 0).count();
    assert!(passes >= 2, "120-odd items take two 100-item pages: {passes} deliveries");

    // Deleting the org purges the remaining project's partition with it.
    store.delete_org(&store.authorize(&owner, scope.org_id(), Action::DeleteOrg).await.unwrap()).await.unwrap();
    events.settle(20).await;
    assert_eq!(left_in_project(&store, kept.id).await, 0);
    assert_eq!(left_of(&store, scope.org_id()).await, 0);
}
