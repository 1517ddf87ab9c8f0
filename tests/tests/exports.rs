//! Exports on the local AWS endpoint: an org of 10,000 tasks and 50 files exported across
//! passes that hand over (a zero time slice: every pass stops after its first part) and passes
//! killed part-way (redelivered from the last checkpoint), the zip read back with every record
//! exactly once and every file byte-identical; one export at a time; a user's own export; and
//! another org's owner or a plain member can neither start, read nor download an org's export.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::time::Duration;

use domain::{Action, Clock, OrgName, Role};
use exports::AppState;
use local_runner::events::LocalEvents;
use serde_json::Value;
use store::{NewOrg, OrgScope, Store};
use testkit::{ApiCall, Caller};

pub struct World {
    pub store: Store,
    pub app: AppState,
    pub router: axum::Router,
    pub events: LocalEvents,
    pub owner: Caller,
    pub scope: OrgScope,
    pub s3: aws_sdk_s3::Client,
    pub upload_bucket: String,
    pub export_bucket: String,
}

impl World {
    pub async fn new() -> World {
        let store = testkit::fresh_store().await.with_clock(Clock::offset());
        let config = testkit::sdk_config().await;
        let function = registry::function("exports").unwrap();
        let mut vars = local_runner::events::queue_env(&config, store.table_name(), std::slice::from_ref(&function)).await.unwrap();
        // Every pass hands over after its first part.
        vars.insert(exports::SLICE_SECONDS_ENV.into(), "0".into());
        let platform = local_runner::provision::platform(&config, store.clone(), "https://app.example.com", vars);
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
        let upload_bucket = local_runner::provision::upload_bucket(store.table_name());
        let export_bucket = local_runner::provision::export_bucket(store.table_name());
        s3.create_bucket().bucket(&upload_bucket).send().await.unwrap();
        local_runner::provision::private_bucket(&s3, &export_bucket).await.unwrap();
        let events = LocalEvents::setup(&config, &platform, vec![function], &upload_bucket).await.unwrap();
        let app = AppState::from_platform(&platform).unwrap();
        let router = exports::routes().into_router(app.clone()).0;
        let owner = Caller::new("owner");
        let scope = store.create_org(&owner.identity(), None, NewOrg { name: OrgName::parse("name", "Acme").unwrap(), slug: None }).await.unwrap();
        World { store, app, router, events, owner, scope, s3, upload_bucket, export_bucket }
    }

    pub async fn join(&self, name: &str, role: Role) -> Caller {
        let who = Caller::new(name);
        let scope = self.store.authorize(&self.owner.identity(), self.scope.org_id(), Action::ManageMembers).await.unwrap();
        self.store.add_member(&scope, &who.identity().user_id, role, who.identity().email, None).await.unwrap();
        self.store.ensure_user(&who.identity()).await.unwrap();
        who
    }

    /// A ready file of `scope`'s org with these bytes (as upload and processing leave it).
    pub async fn ready_file(&self, scope: &OrgScope, name: &str, bytes: Vec<u8>) -> String {
        let size = bytes.len() as u64;
        let new = store::NewFile { name: name.into(), content_type: "application/octet-stream", size, attach_to: None };
        let file = self.store.reserve_upload(scope, new, self.store.clock().epoch() + 3600).await.unwrap();
        let store::Arrival::Process(file) = self.store.begin_processing(&file, "0001", "etag", size).await.unwrap() else { panic!("not processed") };
        self.s3.put_object().bucket(&self.upload_bucket).key(file.checked_key()).body(bytes.into()).send().await.unwrap();
        let outcome = store::Outcome { status: Some(domain::files::FileStatus::Ready), ..Default::default() };
        self.store.finish_processing(&file, outcome, false).await.unwrap().unwrap().id.to_string()
    }

    /// Delivers the work queue's messages until the job is finished.
    pub async fn run_to_end(&self) {
        for _ in 0..200 {
            if self.events.pump().await == 0 {
                return;
            }
        }
        panic!("the export did not finish");
    }

    /// Downloads a complete export through its presigned link.
    pub async fn download(view: &Value) -> Vec<u8> {
        let url = view["download"]["url"].as_str().expect("a download link");
        let answer = testkit::browser::get(url).await.unwrap();
        assert_eq!(answer.status, 200, "download: {}", answer.text());
        answer.body
    }
}

/// The zip's entries: name → bytes.
pub fn entries(zip: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        let name = f.name().unwrap().into_owned();
        assert!(out.insert(name.clone(), data).is_none(), "{name} twice in the zip");
    }
    out
}

pub fn lines(bytes: &[u8]) -> Vec<Value> {
    std::str::from_utf8(bytes).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_org_of_10000_tasks_and_50_files_exports_across_timeouts_with_every_record_once() {
    let w = World::new().await;
    let member = w.join("member", Role::Member).await;
    let scope = w.store.authorize(&w.owner.identity(), w.scope.org_id(), Action::ManageMembers).await.unwrap();
    let project = w.store.create_project(&scope, domain::work::ProjectName::parse("name", "Big").unwrap(), String::new()).await.unwrap();
    let draft = store::TaskDraft::new(domain::work::TaskTitle::parse("title", "the first").unwrap());
    let first = w.store.create_task(&scope, &project, draft, None, &store::OrgLabels::default()).await.unwrap();
    let drafts: Vec<store::TaskDraft> =
        (1..10_000).map(|i| store::TaskDraft::new(domain::work::TaskTitle::parse("title", &format!("task {i}")).unwrap())).collect();
    let outcome = w.store.import_tasks(&scope, &project, drafts, &BTreeMap::new(), &store::OrgLabels::default(), None).await.unwrap();
    assert_eq!(outcome.imported, 9_999);
    w.store.create_comment(&scope, &first, "a comment".into(), Vec::new()).await.unwrap();
    // 50 files of 40 to 400 KB of incompressible bytes: about 11 MB, three parts or more.
    let mut files = BTreeMap::new();
    for i in 0..50u64 {
        let bytes = noise(40_000 + usize::try_from(i).unwrap() * 7_400, i + 1);
        let id = w.ready_file(&scope, &format!("file {i}.bin"), bytes.clone()).await;
        files.insert(id, bytes);
    }

    // Other orgs' owners and plain members can neither start nor read it.
    let other = Caller::new("other");
    w.store.create_org(&other.identity(), None, NewOrg { name: OrgName::parse("name", "Other").unwrap(), slug: None }).await.unwrap();
    let path = format!("/orgs/{}/exports", w.scope.org_id());
    ApiCall::post(&path).by(&other).send(&w.router).await.expect_problem(404, "not-found");
    ApiCall::post(&path).by(&member).send(&w.router).await.expect_problem(403, "forbidden");

    let job = ApiCall::post(&path).by(&w.owner).send(&w.router).await.expect(202).body;
    assert_eq!(job["status"], "queued");
    let id = job["id"].as_str().unwrap().to_owned();
    // One at a time.
    ApiCall::post(&path).by(&w.owner).send(&w.router).await.expect_problem(409, "conflict");

    // Two passes killed part-way (as a Lambda timeout kills them): a pass checkpoints after
    // its first part, so each of these gets some way and dies somewhere after it.
    let target = store::ExportTarget { kind: store::ExportKind::Org, org_id: Some(w.scope.org_id()), user_id: None, export_id: id.clone() };
    for cut in [Duration::from_millis(1_500), Duration::from_millis(2_500)] {
        let _ = tokio::time::timeout(cut, exports::run_pass(&w.app, &target)).await;
        // The killed pass's lease runs out.
        w.store.clock().advance(Duration::from_secs(3600));
    }
    // Then the queue (the job's message, and the messages of passes that hand over).
    w.run_to_end().await;

    let view = ApiCall::get(&format!("{path}/{id}")).by(&w.owner).send(&w.router).await.expect(200).body;
    assert_eq!(view["status"], "complete", "{view}");
    let job = w.store.org_export(&scope, &id).await.unwrap();
    assert!(job.passes >= 3, "{} passes", job.passes);
    // Others cannot read it, nor get its link.
    ApiCall::get(&format!("{path}/{id}")).by(&other).send(&w.router).await.expect_problem(404, "not-found");
    ApiCall::get(&format!("{path}/{id}")).by(&member).send(&w.router).await.expect_problem(403, "forbidden");
    ApiCall::get(&path).by(&member).send(&w.router).await.expect_problem(403, "forbidden");

    let zip = World::download(&view).await;
    let entries = entries(&zip);
    let tasks = lines(&entries["tasks.jsonl"]);
    assert_eq!(tasks.len(), 10_000);
    let ids: HashSet<&str> = tasks.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 10_000, "every task exactly once");
    assert_eq!(lines(&entries["history.jsonl"]).len(), 10_000, "one history entry per imported task");
    assert_eq!(lines(&entries["comments.jsonl"]).len(), 1);
    assert_eq!(lines(&entries["projects.jsonl"]).len(), 1);
    assert_eq!(lines(&entries["members.jsonl"]).len(), 2);
    let listed = lines(&entries["files.jsonl"]);
    assert_eq!(listed.len(), 50);
    for (id, bytes) in &files {
        let name = entries.keys().find(|k| k.starts_with(&format!("files/{id}/"))).unwrap_or_else(|| panic!("file {id} missing"));
        assert_eq!(&entries[name], bytes, "{name} byte-identical");
    }
    assert_eq!(entries.keys().filter(|k| k.starts_with("files/")).count(), 50);
    let org = lines(&entries["org.json"]);
    assert_eq!(org[0]["name"], "Acme");
    for section in ["invitations.jsonl", "notification-settings.jsonl", "conversations.jsonl", "audit.jsonl", "manifest.json"] {
        assert!(entries.contains_key(section), "{section} missing");
    }
    let manifest: Value = serde_json::from_slice(&entries["manifest.json"]).unwrap();
    assert_eq!(manifest["counts"]["tasks"], 10_000);
    assert_eq!(manifest["counts"]["file-contents"], 50);
    assert_eq!(view["counts"]["tasks"], 10_000);
    // No key or secret leaves.
    assert!(tasks.iter().all(|t| t.get("PK").is_none() && t.get("GSI1PK").is_none()));

    // A redelivered message of the finished job does nothing; a new export may start.
    assert_eq!(exports::run_pass(&w.app, &target).await.unwrap(), exports::PassOutcome::NothingToDo);
    ApiCall::post(&path).by(&w.owner).send(&w.router).await.expect(202);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_own_export_holds_their_data_across_orgs_and_nobody_elses() {
    let w = World::new().await;
    let member = w.join("member", Role::Member).await;
    let scope = w.store.authorize(&member.identity(), w.scope.org_id(), Action::ReadOrg).await.unwrap();
    let owner_scope = w.store.authorize(&w.owner.identity(), w.scope.org_id(), Action::ManageMembers).await.unwrap();
    let project = w.store.create_project(&owner_scope, domain::work::ProjectName::parse("name", "P").unwrap(), String::new()).await.unwrap();
    let draft = store::TaskDraft::new(domain::work::TaskTitle::parse("title", "T").unwrap());
    let task = w.store.create_task(&owner_scope, &project, draft, None, &store::OrgLabels::default()).await.unwrap();
    w.store.create_comment(&scope, &task, "mine".into(), Vec::new()).await.unwrap();
    w.store.create_comment(&owner_scope, &task, "the owner's".into(), Vec::new()).await.unwrap();
    // A second org of the member's own.
    w.store.create_org(&member.identity(), None, NewOrg { name: OrgName::parse("name", "Mine").unwrap(), slug: None }).await.unwrap();

    ApiCall::get("/me/export").by(&member).send(&w.router).await.expect_problem(404, "not-found");
    ApiCall::post("/me/export").by(&member).send(&w.router).await.expect(202);
    ApiCall::post("/me/export").by(&member).send(&w.router).await.expect_problem(409, "conflict");
    w.run_to_end().await;
    let view = ApiCall::get("/me/export").by(&member).send(&w.router).await.expect(200).body;
    assert_eq!(view["status"], "complete", "{view}");
    // Nobody else sees it.
    ApiCall::get("/me/export").by(&w.owner).send(&w.router).await.expect_problem(404, "not-found");
    let entries = entries(&World::download(&view).await);
    let profile = lines(&entries["profile.json"]);
    assert_eq!(profile[0]["userId"], member.sub.as_str());
    let memberships = lines(&entries["memberships.jsonl"]);
    assert_eq!(memberships.len(), 2);
    assert!(memberships.iter().all(|m| m["userId"] == member.sub.as_str()));
    let comments = lines(&entries["comments.jsonl"]);
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0]["text"], "mine");
    for section in ["conversations.jsonl", "notifications.jsonl", "notification-settings.jsonl", "manifest.json"] {
        assert!(entries.contains_key(section), "{section} missing");
    }
}
