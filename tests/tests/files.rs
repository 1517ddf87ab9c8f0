//! Files on the local AWS endpoint: reservations against the storage quota, presigned POST
//! uploads that S3 (the endpoint's wrapper, verifying as AWS does) holds to the reserved key,
//! size and type, the bucket's object events delivered through the upload queue to the files
//! function, processing (sniffing, thumbnails, text, bombs and corrupt files), the malware
//! gate, downloads, deletion and the sweep of uploads that never arrived.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::s3::S3Event;
use domain::{Action, Clock, OrgName, Plan, Role};
use files::AppState;
use local_runner::events::LocalEvents;
use serde_json::{Value, json};
use store::{NewOrg, OrgScope, Store};
use testkit::browser::{self, HttpAnswer};
use testkit::{ApiCall, Caller};

struct World {
    store: Store,
    app: AppState,
    router: axum::Router,
    events: LocalEvents,
    owner: Caller,
    scope: OrgScope,
    s3: aws_sdk_s3::Client,
}

impl World {
    async fn new(clock: Clock) -> World {
        World::with_vars(clock, &[]).await
    }

    /// With these function variables besides the local runner's.
    async fn with_vars(clock: Clock, vars: &[(&str, &str)]) -> World {
        let store = testkit::fresh_store().await.with_clock(clock);
        let config = testkit::sdk_config().await;
        let vars = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let platform = local_runner::provision::platform(&config, store.clone(), "https://app.example.com", vars);
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
        let bucket = local_runner::provision::upload_bucket(store.table_name());
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let events = LocalEvents::setup(&config, &platform, vec![registry::function("files").unwrap()], &bucket).await.unwrap();
        let app = AppState::from_platform(&platform).unwrap();
        let router = files::routes().into_router(app.clone()).0;
        let owner = Caller::new("owner");
        let scope = store.create_org(&owner.identity(), None, NewOrg { name: OrgName::parse("name", "Acme").unwrap(), slug: None }).await.unwrap();
        World { store, app, router, events, owner, scope, s3 }
    }

    fn path(&self, rest: &str) -> String {
        format!("/orgs/{}/files{rest}", self.scope.org_id())
    }

    async fn join(&self, role: Role) -> Caller {
        let who = Caller::new("member");
        let scope = self.store.authorize(&self.owner.identity(), self.scope.org_id(), Action::ManageMembers).await.unwrap();
        self.store.add_member(&scope, &who.identity().user_id, role, who.identity().email, None).await.unwrap();
        who
    }

    /// Reserves an upload; answers the ticket (file and presigned POST).
    async fn reserve(&self, who: &Caller, name: &str, content_type: &str, size: usize) -> Value {
        let body = json!({"name": name, "size": size, "contentType": content_type});
        ApiCall::post(&self.path("")).by(who).json(body).send(&self.router).await.expect(201).body
    }

    /// Uploads `bytes` with the ticket's presigned POST, as a browser does.
    async fn upload(ticket: &Value, bytes: &[u8]) -> HttpAnswer {
        let fields: BTreeMap<String, String> = serde_json::from_value(ticket["upload"]["fields"].clone()).unwrap();
        browser::post_form(ticket["upload"]["url"].as_str().unwrap(), &fields, "upload.bin", bytes).await.unwrap()
    }

    /// Reserves, uploads and lets the upload's event be processed; answers the file.
    async fn put_file(&self, who: &Caller, name: &str, content_type: &str, bytes: &[u8]) -> Value {
        let ticket = self.reserve(who, name, content_type, bytes.len()).await;
        let answer = World::upload(&ticket, bytes).await;
        assert!((200..300).contains(&answer.status), "upload refused: {} {}", answer.status, answer.text());
        self.events.settle(10).await;
        self.file(who, ticket["file"]["id"].as_str().unwrap()).await
    }

    async fn file(&self, who: &Caller, id: &str) -> Value {
        ApiCall::get(&self.path(&format!("/{id}"))).by(who).send(&self.router).await.expect(200).body
    }

    async fn usage(&self) -> (u64, u64) {
        let org = self.store.authorize(&self.owner.identity(), self.scope.org_id(), Action::ReadUsage).await.unwrap();
        (org.org().storage_bytes, org.org().storage_reserved)
    }

    /// Follows a download route's redirect.
    async fn fetch(&self, who: &Caller, id: &str, what: &str) -> HttpAnswer {
        let res = ApiCall::get(&self.path(&format!("/{id}/{what}"))).by(who).send(&self.router).await.expect(302);
        browser::get(res.header("location").unwrap()).await.unwrap()
    }

    async fn objects(&self) -> Vec<String> {
        let out = self.s3.list_objects_v2().bucket(&*self.app.bucket).send().await.unwrap();
        let mut keys: Vec<String> = out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
        keys.sort();
        keys
    }
}

#[tokio::test]
async fn an_image_uploads_straight_to_s3_and_becomes_ready_with_a_thumbnail_and_exact_quota() {
    let w = World::new(Clock::offset()).await;
    let png = media::samples::png(640, 480);
    let ticket = w.reserve(&w.owner, "cat photo.png", "image/png", png.len()).await;
    assert_eq!(ticket["file"]["status"], "uploading");
    assert_eq!(ticket["upload"]["method"], "POST");
    assert_eq!(w.usage().await, (0, png.len() as u64), "reserved, not yet used");
    let key = ticket["upload"]["fields"]["key"].as_str().unwrap().to_owned();
    assert_eq!(key, format!("uploads/{}/{}", w.scope.org_id(), ticket["file"]["id"].as_str().unwrap()), "the key is built from ids");

    let answer = World::upload(&ticket, &png).await;
    assert!((200..300).contains(&answer.status), "{} {}", answer.status, answer.text());
    w.events.settle(10).await;
    let file = w.file(&w.owner, ticket["file"]["id"].as_str().unwrap()).await;
    assert_eq!(file["status"], "ready", "{file}");
    assert_eq!((file["width"].as_u64(), file["height"].as_u64()), (Some(640), Some(480)));
    assert_eq!(file["detectedType"], "image/png");
    assert_eq!(file["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(w.usage().await, (png.len() as u64, 0), "the reservation settled to the actual size");

    let thumb = w.fetch(&w.owner, file["id"].as_str().unwrap(), "thumbnail").await;
    assert_eq!(thumb.status, 200);
    assert_eq!(&thumb.body[..3], &[0xFF, 0xD8, 0xFF], "a JPEG thumbnail");
    // A script asks for the link itself (it cannot follow the redirect across origins) and puts
    // it in an <img src>: the same presigned GET, as JSON, not cached.
    let res = ApiCall::get(&w.path(&format!("/{}/thumbnail", file["id"].as_str().unwrap())))
        .by(&w.owner)
        .header("accept", "application/json")
        .send(&w.router)
        .await
        .expect(200);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(res.header("location"), None);
    let link = &res.body;
    assert_eq!(link["expiresInSeconds"], domain::files::DOWNLOAD_VALID_SECS);
    let linked = browser::get(link["url"].as_str().unwrap()).await.unwrap();
    assert_eq!(linked.body, thumb.body, "the link serves the thumbnail");
    let original = w.fetch(&w.owner, file["id"].as_str().unwrap(), "download").await;
    assert_eq!(original.body, png);
    assert_eq!(original.header("content-type"), Some("image/png"));
    let disposition = original.header("content-disposition").unwrap();
    assert!(disposition.starts_with("attachment;") && disposition.contains("filename*=UTF-8''cat%20photo.png"), "{disposition}");
    let objects = w.objects().await;
    assert!(!objects.contains(&key), "the processed upload is deleted; the checked copy stays: {objects:?}");
}

#[tokio::test]
async fn s3_refuses_a_size_a_key_or_a_type_other_than_the_reserved_ones() {
    let w = World::new(Clock::offset()).await;
    let ticket = w.reserve(&w.owner, "a.txt", "text/plain", 10).await;
    let fields: BTreeMap<String, String> = serde_json::from_value(ticket["upload"]["fields"].clone()).unwrap();
    let url = ticket["upload"]["url"].as_str().unwrap();
    // The client lies about the size: S3 refuses the body, not trust.
    let larger = browser::post_form(url, &fields, "a.txt", b"twenty bytes of text").await.unwrap();
    assert_eq!(larger.status, 400, "{}", larger.text());
    assert!(larger.text().contains("EntityTooLarge"), "{}", larger.text());
    // Another key (a guess at another org's object) under the same signature.
    let mut elsewhere = fields.clone();
    elsewhere.insert("key".into(), format!("uploads/{}/{}", domain::OrgId::new(), domain::files::FileId::new()));
    assert_eq!(browser::post_form(url, &elsewhere, "a.txt", b"0123456789").await.unwrap().status, 403);
    let mut retyped = fields.clone();
    retyped.insert("Content-Type".into(), "text/html".into());
    assert_eq!(browser::post_form(url, &retyped, "a.txt", b"0123456789").await.unwrap().status, 403);
    w.events.settle(10).await;
    assert!(w.objects().await.is_empty(), "nothing was stored");
    assert_eq!(w.file(&w.owner, ticket["file"]["id"].as_str().unwrap()).await["status"], "uploading");
}

#[tokio::test]
async fn concurrent_reservations_for_the_last_free_bytes_let_exactly_those_that_fit_through() {
    let w = World::new(Clock::offset()).await;
    let limits = Plan::Free.limits();
    // Fill the quota with the largest uploads until less than one is left.
    let max = limits.max_upload_bytes;
    let full = limits.storage_bytes / max;
    for i in 0..full {
        let body = json!({"name": format!("fill{i}.txt"), "size": max, "contentType": "text/plain"});
        ApiCall::post(&w.path("")).by(&w.owner).json(body).send(&w.router).await.expect(201);
    }
    let left = limits.storage_bytes - full * max;
    let piece = left / 3 + 1; // two fit, the third would not
    let calls = (0..20).map(|i| {
        let body = json!({"name": format!("part{i}.txt"), "size": piece, "contentType": "text/plain"});
        let call = ApiCall::post(&w.path("")).by(&w.owner).json(body);
        let router = w.router.clone();
        async move { call.send(&router).await.status }
    });
    let statuses = futures::future::join_all(calls).await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 2, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "the others are refused by the plan limit: {statuses:?}");
    assert_eq!(w.usage().await, (0, full * max + 2 * piece));
}

#[tokio::test]
async fn a_renamed_executable_is_quarantined_and_cannot_be_downloaded() {
    let w = World::new(Clock::offset()).await;
    let file = w.put_file(&w.owner, "holiday.png", "image/png", &media::samples::exe()).await;
    assert_eq!(file["status"], "quarantined", "{file}");
    assert!(file["reason"].as_str().unwrap().contains("portable-executable"), "{file}");
    let id = file["id"].as_str().unwrap();
    ApiCall::get(&w.path(&format!("/{id}/download"))).by(&w.owner).send(&w.router).await.expect_problem(409, "file-not-ready");
}

#[tokio::test]
async fn decompression_bombs_and_corrupt_documents_fail_that_file_and_nothing_else() {
    let w = World::new(Clock::offset()).await;
    let bomb = w.put_file(&w.owner, "huge.png", "image/png", &media::samples::png_bomb(20_000, 20_000)).await;
    assert_eq!(bomb["status"], "failed", "{bomb}");
    assert!(bomb["reason"].as_str().unwrap().contains("20000"), "{bomb}");
    let corrupt = w.put_file(&w.owner, "broken.pdf", "application/pdf", &media::samples::corrupt_pdf()).await;
    assert_eq!(corrupt["status"], "failed", "{corrupt}");
    let pdf = w.put_file(&w.owner, "report.pdf", "application/pdf", &media::samples::pdf(&["First page", "Second page"])).await;
    assert_eq!((pdf["status"].as_str(), pdf["pages"].as_u64()), (Some("ready"), Some(2)), "{pdf}");
    let text = w.fetch(&w.owner, pdf["id"].as_str().unwrap(), "text").await;
    assert!(text.text().contains("First page") && text.text().contains("Second page"), "{}", text.text());
}

/// The S3 event of `key` as the bucket sent it (a repeat of a delivered one).
fn event_of(key: &str, sequencer: &str, size: u64) -> S3Event {
    let encoded: String = key.replace(' ', "+");
    serde_json::from_value(json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-11-27T00:00:00.000Z",
        "eventName": "ObjectCreated:Post", "userIdentity": {"principalId": "AWS:X"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "1", "x-amz-id-2": "2"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "c", "bucket": {"name": "b", "ownerIdentity": {"principalId": "X"}, "arn": "arn:aws:s3:::b"},
               "object": {"key": encoded, "size": size, "eTag": "0", "sequencer": sequencer}}
    }]}))
    .unwrap()
}

#[tokio::test]
async fn repeated_reordered_and_unknown_events_change_nothing() {
    let w = World::new(Clock::offset()).await;
    let bytes = b"hello, world\n".to_vec();
    let file = w.put_file(&w.owner, "notes.txt", "text/plain", &bytes).await;
    assert_eq!(file["status"], "ready");
    let before = (w.usage().await, file["version"].as_u64());
    let key = format!("uploads/{}/{}", w.scope.org_id(), file["id"].as_str().unwrap());
    // The same event again, and an older one: dropped.
    files::on_upload_event(&w.app, event_of(&key, file["sequencer"].as_str().unwrap(), bytes.len() as u64)).await.unwrap();
    files::on_upload_event(&w.app, event_of(&key, "0000000000000001", 99)).await.unwrap();
    let again = w.file(&w.owner, file["id"].as_str().unwrap()).await;
    assert_eq!((w.usage().await, again["version"].as_u64()), before, "{again}");
    // An object no file owns (never reserved): dropped, and the stray object deleted.
    let stray = format!("uploads/{}/{}", w.scope.org_id(), domain::files::FileId::new());
    w.s3.put_object().bucket(&*w.app.bucket).key(&stray).body(b"x".to_vec().into()).send().await.unwrap();
    w.events.settle(10).await;
    assert!(!w.objects().await.contains(&stray), "the stray object is deleted");
    // A key with a space arrives form-encoded and is decoded.
    assert_eq!(files::decode_key("uploads/a+b%2B").as_deref(), Some("uploads/a b+"));
}

#[tokio::test]
async fn members_delete_their_own_files_admins_any_and_the_bytes_come_back() {
    let w = World::new(Clock::offset()).await;
    let alice = w.join(Role::Member).await;
    let bob = w.join(Role::Member).await;
    let file = w.put_file(&alice, "a.txt", "text/plain", b"alice's text").await;
    let id = file["id"].as_str().unwrap();
    ApiCall::delete(&w.path(&format!("/{id}"))).by(&bob).send(&w.router).await.expect(403);
    ApiCall::patch(&w.path(&format!("/{id}"))).by(&alice).json(json!({"name": "b.txt"})).send(&w.router).await.expect(200);
    assert_eq!(w.usage().await.0, 12);
    ApiCall::delete(&w.path(&format!("/{id}"))).by(&alice).send(&w.router).await.expect(204);
    assert_eq!(w.usage().await, (0, 0));
    assert!(w.objects().await.is_empty(), "the object and its derived text are gone: {:?}", w.objects().await);
    ApiCall::get(&w.path(&format!("/{id}"))).by(&alice).send(&w.router).await.expect(404);
}

#[tokio::test]
async fn an_upload_that_never_arrives_frees_its_reservation() {
    let w = World::new(Clock::offset()).await;
    let ticket = w.reserve(&w.owner, "never.txt", "text/plain", 100).await;
    assert_eq!(w.usage().await, (0, 100));
    assert_eq!(files::sweep(&w.app).await.unwrap(), 0, "not expired yet");
    w.store.clock().advance(Duration::from_secs(2 * 3600));
    assert_eq!(files::sweep(&w.app).await.unwrap(), 1);
    assert_eq!(w.usage().await, (0, 0));
    ApiCall::get(&w.path(&format!("/{}", ticket["file"]["id"].as_str().unwrap()))).by(&w.owner).send(&w.router).await.expect(404);
}

/// A GuardDuty Malware Protection scan result of `key`.
fn scan_event(bucket: &str, key: &str, etag: &str, result: &str) -> aws_lambda_events::eventbridge::EventBridgeEvent<Value> {
    serde_json::from_value(json!({
        "version": "0", "id": "1", "detail-type": "GuardDuty Malware Protection Object Scan Result", "source": "aws.guardduty",
        "account": "123456789012", "time": "2026-11-27T00:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"schemaVersion": "1.0", "scanStatus": "COMPLETED", "resourceType": "S3_OBJECT",
                   "s3ObjectDetails": {"bucketName": bucket, "objectKey": key, "eTag": etag, "s3Throttled": false},
                   "scanResultDetails": {"scanResultStatus": result, "threats": null}}
    }))
    .unwrap()
}

#[tokio::test]
async fn with_the_malware_gate_a_file_is_ready_only_after_a_clean_scan_in_either_order() {
    let w = World::with_vars(Clock::offset(), &[(files::MALWARE_PROTECTION_ENV, "true")]).await;
    let clean = w.put_file(&w.owner, "a.txt", "text/plain", b"clean text").await;
    assert_eq!((clean["status"].as_str(), clean["reason"].as_str()), (Some("processing"), Some("awaiting the malware scan")), "{clean}");
    let key = format!("uploads/{}/{}", w.scope.org_id(), clean["id"].as_str().unwrap());
    let bucket = w.app.bucket.to_string();
    files::on_scan_result(&w.app, scan_event(&bucket, &key, "stale-etag", "THREATS_FOUND")).await.unwrap();
    assert_eq!(w.file(&w.owner, clean["id"].as_str().unwrap()).await["status"], "processing", "a result of another upload is ignored");
    files::on_scan_result(&w.app, scan_event(&bucket, &key, clean["etag"].as_str().unwrap(), "NO_THREATS_FOUND")).await.unwrap();
    assert_eq!(w.file(&w.owner, clean["id"].as_str().unwrap()).await["status"], "ready");

    // The scan first (threats), then the upload's event: quarantined, never ready.
    let ticket = w.reserve(&w.owner, "b.txt", "text/plain", 10).await;
    World::upload(&ticket, b"0123456789").await;
    let id = ticket["file"]["id"].as_str().unwrap();
    let key = format!("uploads/{}/{}", w.scope.org_id(), id);
    let head = w.s3.head_object().bucket(&bucket).key(&key).send().await.unwrap();
    let etag = head.e_tag().unwrap().trim_matches('"').to_owned();
    files::on_scan_result(&w.app, scan_event(&bucket, &key, &etag, "THREATS_FOUND")).await.unwrap();
    w.events.settle(10).await;
    let infected = w.file(&w.owner, id).await;
    assert_eq!(infected["status"], "quarantined", "{infected}");
    ApiCall::get(&w.path(&format!("/{id}/download"))).by(&w.owner).send(&w.router).await.expect_problem(409, "file-not-ready");
}

/// The domain events of `kind` in the table, oldest first.
async fn events_of(store: &Store, kind: store::EventKind) -> Vec<store::DomainEvent> {
    let mut found: Vec<store::DomainEvent> = testkit::scan_all(store)
        .await
        .into_iter()
        .filter_map(|item| store::DomainEvent::from_image(&serde_dynamo::Item::from(item)).unwrap())
        .filter(|e| e.kind == kind)
        .collect();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

#[tokio::test]
async fn granted_uploads_and_handed_out_download_links_are_recorded_with_their_request_and_refusals_are_not() {
    use store::EventKind::{FileDownloaded, FileUploadStarted};
    let w = World::new(Clock::offset()).await;
    let viewer = w.join(Role::Viewer).await;
    let pdf = w.put_file(&w.owner, "report.pdf", "application/pdf", &media::samples::pdf(&["Quarterly numbers"])).await;
    let id: domain::files::FileId = pdf["id"].as_str().unwrap().parse().unwrap();
    let started = events_of(&w.store, FileUploadStarted).await;
    assert_eq!(started.len(), 1);
    assert_eq!((started[0].file_id, started[0].title.as_deref(), started[0].actor.as_str()), (Some(id), Some("report.pdf"), w.owner.sub.as_str()));
    let request = started[0].request.clone().expect("made through the API");
    assert_eq!((request.source_ip.as_deref(), request.user_agent.as_deref()), (Some("203.0.113.10"), Some("testkit")));
    assert!(!request.request_id.is_empty());

    // Refused: a viewer's upload, an upload over the plan's size: no event.
    ApiCall::post(&w.path("")).by(&viewer).json(json!({"name": "v.txt", "size": 1, "contentType": "text/plain"})).send(&w.router).await.expect(403);
    let huge = Plan::Free.limits().max_upload_bytes + 1;
    ApiCall::post(&w.path("")).by(&w.owner).json(json!({"name": "big.pdf", "size": huge, "contentType": "application/pdf"})).send(&w.router).await.expect(409);
    assert_eq!(events_of(&w.store, FileUploadStarted).await.len(), 1);

    // The original and the extracted text are recorded, by whoever got the link; a
    // thumbnail, or a link refused, is not.
    assert_eq!(w.fetch(&viewer, &id.to_string(), "download").await.status, 200);
    assert_eq!(w.fetch(&w.owner, &id.to_string(), "text").await.status, 200);
    // A link handed out as JSON is recorded as well.
    ApiCall::get(&w.path(&format!("/{id}/download"))).by(&viewer).header("accept", "application/json").send(&w.router).await.expect(200);
    ApiCall::get(&w.path(&format!("/{id}/thumbnail"))).by(&w.owner).send(&w.router).await.expect(404);
    ApiCall::get(&w.path(&format!("/{id}/download"))).by(&Caller::new("stranger")).send(&w.router).await.expect(404);
    let downloads = events_of(&w.store, FileDownloaded).await;
    let seen: Vec<(&str, Option<&str>)> = downloads.iter().map(|d| (d.actor.as_str(), d.rendition.as_deref())).collect();
    assert_eq!(seen, [(viewer.sub.as_str(), None), (w.owner.sub.as_str(), Some("text")), (viewer.sub.as_str(), None)]);
    assert!(downloads.iter().all(|d| d.file_id == Some(id) && d.org_id == w.scope.org_id() && d.request.is_some()));
    assert_ne!(downloads[0].request.as_ref().unwrap().request_id, downloads[1].request.as_ref().unwrap().request_id, "each its own request");
}

#[tokio::test]
async fn a_stranger_can_neither_reserve_list_read_download_nor_delete_another_orgs_files() {
    let w = World::new(Clock::offset()).await;
    let file = w.put_file(&w.owner, "secret.txt", "text/plain", b"top secret").await;
    let id = file["id"].as_str().unwrap();
    let stranger = Caller::new("stranger");
    let body = json!({"name": "x.txt", "size": 1, "contentType": "text/plain"});
    ApiCall::post(&w.path("")).by(&stranger).json(body).send(&w.router).await.expect(404);
    ApiCall::get(&w.path("")).by(&stranger).send(&w.router).await.expect(404);
    for rest in ["", "/download", "/thumbnail", "/text"] {
        ApiCall::get(&w.path(&format!("/{id}{rest}"))).by(&stranger).send(&w.router).await.expect(404);
    }
    ApiCall::delete(&w.path(&format!("/{id}"))).by(&stranger).send(&w.router).await.expect(404);
    // The stranger's own org cannot name the file either: keys come from the scope.
    let theirs = w.store.create_org(&stranger.identity(), None, NewOrg { name: OrgName::parse("name", "Other").unwrap(), slug: None }).await.unwrap();
    ApiCall::get(&format!("/orgs/{}/files/{id}/download", theirs.org_id())).by(&stranger).send(&w.router).await.expect(404);
    // A presigned download of the file cannot be turned into another object.
    let res = ApiCall::get(&w.path(&format!("/{id}/download"))).by(&w.owner).send(&w.router).await.expect(302);
    let url = res.header("location").unwrap().replace(id, &domain::files::FileId::new().to_string());
    assert_eq!(browser::get(&url).await.unwrap().status, 403, "the signature covers the key");
}

#[tokio::test]
async fn a_scan_or_a_rename_landing_while_a_file_is_processed_loses_neither_and_a_scan_may_come_first() {
    use domain::files::FileStatus;
    use store::{Arrival, Outcome};
    let w = World::new(Clock::offset()).await;
    let scope = w.store.authorize(&w.owner.identity(), w.scope.org_id(), Action::WriteWorkload).await.unwrap();
    let ready = || Outcome { status: Some(FileStatus::Ready), has_text: true, ..Default::default() };
    let reserve = |name: &'static str| {
        let new = store::NewFile { name: name.into(), content_type: "text/plain", size: 10, attach_to: None };
        w.store.reserve_upload(&scope, new, w.store.clock().epoch() + 3600)
    };
    // The scan is recorded, and the file renamed, between the event's arrival and the end of
    // its processing: both writes and the processing's result survive.
    let file = reserve("a.txt").await.unwrap();
    let Arrival::Process(processing) = w.store.begin_processing(&file, "0A", "etag-a", 10).await.unwrap() else { panic!("not processed") };
    w.store.record_scan(&processing, "etag-a", store::SCAN_CLEAN).await.unwrap().unwrap();
    let now = w.store.get_file(&scope, file.id).await.unwrap().unwrap();
    w.store.rename_file(&scope, &now, None, "b.txt".into()).await.unwrap();
    let done = w.store.finish_processing(&processing, ready(), true).await.unwrap().unwrap();
    assert_eq!((done.status, done.name.as_str(), done.has_text), (FileStatus::Ready, "b.txt", true), "{done:?}");

    // A clean scan before the upload's event: kept, and the file is ready once processed.
    let early = reserve("c.txt").await.unwrap();
    w.store.record_scan(&early, "etag-c", store::SCAN_CLEAN).await.unwrap().unwrap();
    let now = w.store.get_file(&scope, early.id).await.unwrap().unwrap();
    let Arrival::Process(processing) = w.store.begin_processing(&now, "0B", "etag-c", 10).await.unwrap() else { panic!("not processed") };
    let done = w.store.finish_processing(&processing, ready(), true).await.unwrap().unwrap();
    assert_eq!(done.status, FileStatus::Ready, "{done:?}");

    // Threats found after processing quarantine a ready file.
    let quarantined = w.store.record_scan(&done, "etag-c", store::SCAN_THREATS).await.unwrap().unwrap();
    assert_eq!(quarantined.status, FileStatus::Quarantined);
    // A result for another upload of the key, once the processed one has its own, changes nothing.
    assert_eq!(w.store.record_scan(&quarantined, "etag-other", store::SCAN_CLEAN).await.unwrap(), None);
}

#[tokio::test]
async fn a_second_post_with_the_same_upload_cannot_change_what_a_ready_file_serves() {
    let w = World::new(Clock::offset()).await;
    let exe = media::samples::exe();
    let text = vec![b'a'; exe.len()];
    let ticket = w.reserve(&w.owner, "notes.txt", "text/plain", text.len()).await;
    let id = ticket["file"]["id"].as_str().unwrap().to_owned();
    assert_eq!(World::upload(&ticket, &text).await.status / 100, 2);
    w.events.settle(10).await;
    assert_eq!(w.file(&w.owner, &id).await["status"], "ready");
    // The presigned POST is still valid: the same size, other bytes, to the same key.
    assert_eq!(World::upload(&ticket, &exe).await.status / 100, 2);
    assert_eq!(w.fetch(&w.owner, &id, "download").await.body, text, "downloads serve the checked bytes, not the new upload");
    w.events.settle(10).await;
    let file = w.file(&w.owner, &id).await;
    assert_eq!(file["status"], "quarantined", "the new bytes are checked in their turn: {file}");
    ApiCall::get(&w.path(&format!("/{id}/download"))).by(&w.owner).send(&w.router).await.expect_problem(409, "file-not-ready");
    assert_eq!(w.usage().await, (exe.len() as u64, 0), "the same size, counted once");
}

#[tokio::test]
async fn a_file_stuck_processing_is_given_up_by_the_sweep() {
    use domain::files::FileStatus;
    use store::{Arrival, Outcome};
    let w = World::new(Clock::offset()).await;
    let scope = w.store.authorize(&w.owner.identity(), w.scope.org_id(), Action::WriteWorkload).await.unwrap();
    let reserve = |name: &'static str| {
        let new = store::NewFile { name: name.into(), content_type: "text/plain", size: 10, attach_to: None };
        w.store.reserve_upload(&scope, new, w.store.clock().epoch() + 3600)
    };
    // One whose processing never finished (its message went to the dead-letter queue), one
    // processed with the malware gate on whose scan never came.
    let lost = reserve("lost.txt").await.unwrap();
    let Arrival::Process(_) = w.store.begin_processing(&lost, "01", "etag-l", 10).await.unwrap() else { panic!("not processed") };
    let unscanned = reserve("unscanned.txt").await.unwrap();
    let Arrival::Process(p) = w.store.begin_processing(&unscanned, "02", "etag-u", 10).await.unwrap() else { panic!("not processed") };
    let waiting = w.store.finish_processing(&p, Outcome { status: Some(FileStatus::Ready), ..Default::default() }, true).await.unwrap().unwrap();
    assert_eq!(waiting.status, FileStatus::Processing);
    assert_eq!(files::give_up_stalled(&w.app).await.unwrap(), 0, "not stalled yet");
    w.store.clock().advance(Duration::from_secs(store::PROCESSING_DEADLINE_SECS.unsigned_abs() + 60));
    assert_eq!(files::give_up_stalled(&w.app).await.unwrap(), 2);
    let lost = w.store.get_file(&scope, lost.id).await.unwrap().unwrap();
    let unscanned = w.store.get_file(&scope, unscanned.id).await.unwrap().unwrap();
    assert_eq!((lost.status, unscanned.status), (FileStatus::Failed, FileStatus::Quarantined), "{lost:?} {unscanned:?}");
    assert_eq!(files::give_up_stalled(&w.app).await.unwrap(), 0, "once");
}
