//! Domain events and notifications on the local AWS endpoint: events written with their
//! changes, delivered by the table's stream to the notifications function (its registry
//! entry, its filter, its handler), in-app inboxes and mail (with RFC 8058 headers) made once
//! however a record is delivered, reminders, quiet hours, digests and unsubscribe links.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::HashMap;
use std::time::Duration;

use domain::notify::{NotificationKind, UnsubscribeToken};
use domain::work::{Due, ProjectName, TaskStatus, TaskTitle};
use domain::{Action, Clock, OrgName, Role};
use local_runner::events::LocalEvents;
use notifications::AppState;
use serde_json::{Value, json};
use store::{DomainEvent, EventKind, NewOrg, OrgLabels, OrgScope, Store, TaskDraft, TaskPatch};
use testkit::{ApiCall, Caller, SentMail};
use time::macros::datetime;

const APP_URL: &str = "https://app.example.com";

struct World {
    store: Store,
    app: AppState,
    router: axum::Router,
    owner: Caller,
    scope: OrgScope,
}

/// The platform the function is built from: the runner's variables plus the API's URL.
fn platform(store: &Store, config: &aws_config::SdkConfig) -> api::Platform {
    let vars = HashMap::from([("API_URL".to_owned(), "https://api.example.com".to_owned())]);
    local_runner::provision::platform(config, store.clone(), APP_URL, vars)
}

impl World {
    async fn new(clock: Clock) -> World {
        let store = testkit::fresh_store_with_stream().await.with_clock(clock);
        let config = testkit::sdk_config().await;
        local_runner::provision::mail_identity(&config).await;
        let platform = platform(&store, &config);
        let ses = aws_sdk_sesv2::Client::new(&config);
        let mailer = notifications::Mailer::new(ses, notifications::MailConfig::from_vars(|n| platform.var(n)).unwrap());
        let app = AppState::new(store.clone(), mailer);
        let router = notifications::router(app.clone()).0;
        let owner = Caller::new("owner");
        let scope = store.create_org(&owner.identity(), None, NewOrg { name: OrgName::parse("name", "Acme").unwrap(), slug: None }).await.unwrap();
        let scope = store.authorize(&owner.identity(), scope.org_id(), Action::ManageMembers).await.unwrap();
        World { store, app, router, owner, scope }
    }

    async fn join(&self, role: Role) -> Caller {
        let who = Caller::new("member");
        self.store.add_member(&self.scope, &who.identity().user_id, role, who.identity().email, None).await.unwrap();
        who
    }

    /// Every event item in the table, oldest first.
    async fn events(&self) -> Vec<DomainEvent> {
        testkit::domain_events(&self.store).await
    }

    async fn inbox(&self, who: &Caller, unread: bool) -> Value {
        let mut call = ApiCall::get(&format!("/orgs/{}/notifications", self.scope.org_id())).by(who);
        if unread {
            call = call.query("unread", "true");
        }
        call.send(&self.router).await.expect(200).body
    }

    async fn unread(&self, who: &Caller) -> u64 {
        let res = ApiCall::get(&format!("/orgs/{}/notifications/unread-count", self.scope.org_id())).by(who).send(&self.router).await.expect(200);
        res.body["unread"].as_u64().unwrap()
    }

    async fn prefs(&self, who: &Caller, body: Value) {
        ApiCall::put(&format!("/orgs/{}/notification-preferences", self.scope.org_id())).by(who).json(body).send(&self.router).await.expect(200);
    }
}

async fn mail_to(who: &Caller) -> Vec<SentMail> {
    testkit::sent_mail(&testkit::local_aws().endpoint).await.unwrap().into_iter().filter(|m| m.is_to(&who.email)).collect()
}

fn title(t: &str) -> TaskTitle {
    TaskTitle::parse("title", t).unwrap()
}

#[tokio::test]
async fn every_change_writes_its_event_in_its_own_transaction_and_a_refused_change_writes_none() {
    let w = World::new(Clock::offset()).await;
    let bob = w.join(Role::Member).await;
    let project = w.store.create_project(&w.scope, ProjectName::parse("name", "P").unwrap(), String::new()).await.unwrap();
    let draft = TaskDraft { assignee: Some(bob.identity().user_id), ..TaskDraft::new(title("Ship it")) };
    let task = w.store.create_task(&w.scope, &project, draft, None, &OrgLabels::default()).await.unwrap();
    // A write refused by its condition (a stale version) leaves no event behind.
    let stale = store::Task { version: task.version + 5, ..task.clone() };
    let patch = TaskPatch { status: Some(TaskStatus::Done), ..TaskPatch::default() };
    assert!(w.store.update_task(&w.scope, &project, &stale, &patch, None, &OrgLabels::default()).await.is_err());
    w.store.create_comment(&w.scope, &task, "hello @bob".into(), vec![bob.identity().user_id]).await.unwrap();
    let member = w.store.get_member(&w.scope, &bob.identity().user_id).await.unwrap().unwrap();
    w.store.change_role(&w.scope, &member, Role::Admin).await.unwrap();

    let events = w.events().await;
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::OrgCreated, EventKind::MemberJoined, EventKind::TaskCreated, EventKind::CommentCreated, EventKind::MemberRoleChanged]);
    let created = &events[2];
    assert_eq!((created.org_id, created.actor.as_str(), created.task_id), (w.scope.org_id(), w.owner.identity().user_id.as_str(), Some(task.id)));
    assert_eq!(created.assignee, Some(bob.identity().user_id.clone()));
    assert!(created.change("title").is_some(), "what changed: {:?}", created.changes);
    assert_eq!(events[3].mentions, [bob.identity().user_id.clone()]);
    assert_eq!((events[4].role, events[4].previous_role), (Some(Role::Admin), Some(Role::Member)));
    assert!(events.iter().all(|e| e.ttl > w.store.clock().epoch()), "events expire");
}

#[tokio::test]
async fn a_mention_reaches_the_inbox_and_the_mailbox_once_through_the_stream_however_often_it_is_delivered() {
    let w = World::new(Clock::offset()).await;
    let config = testkit::sdk_config().await;
    let function = registry::function("notifications").expect("notifications is registered");
    let events = LocalEvents::setup(&config, &platform(&w.store, &config), vec![function], "").await.unwrap();
    let bob = w.join(Role::Member).await;
    let project = w.store.create_project(&w.scope, ProjectName::parse("name", "P").unwrap(), String::new()).await.unwrap();
    events.settle(10).await;
    assert!(events.log().all().is_empty(), "the filter lets through only kinds of events that notify: {:?}", events.log().all());
    let task = w.store.create_task(&w.scope, &project, TaskDraft::new(title("Launch <b>plan</b>")), None, &OrgLabels::default()).await.unwrap();
    events.settle(10).await;
    let before = events.log().all().len();
    assert!(w.inbox(&bob, false).await["items"].as_array().unwrap().is_empty(), "an unassigned task notifies nobody");

    w.store.create_comment(&w.scope, &task, "@bob can you look?".into(), vec![bob.identity().user_id.clone()]).await.unwrap();
    events.settle(10).await;
    let deliveries = &events.log().all()[before..];
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!((deliveries[0].source.as_str(), deliveries[0].records, deliveries[0].failed), ("stream", 1, 0));

    let inbox = w.inbox(&bob, false).await;
    let items = inbox["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{inbox}");
    assert_eq!(items[0]["kind"], "mentioned");
    assert_eq!(items[0]["read"], false);
    assert!(items[0]["title"].as_str().unwrap().contains("Launch <b>plan</b>"));
    assert_eq!(w.unread(&bob).await, 1);
    assert!(w.inbox(&w.owner, false).await["items"].as_array().unwrap().is_empty(), "nobody hears of their own comment");

    let mails = mail_to(&bob).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(mail.subject.contains("mentioned you"), "{}", mail.subject);
    assert!(mail.body.contains("Launch &lt;b&gt;plan&lt;/b&gt;") && !mail.body.contains("<b>plan"), "escaped: {}", mail.body);
    let unsubscribe = mail.header("List-Unsubscribe").expect("List-Unsubscribe");
    assert!(unsubscribe.starts_with("<https://api.example.com/unsubscribe?token=") && unsubscribe.ends_with('>'), "{unsubscribe}");
    assert_eq!(mail.header("List-Unsubscribe-Post"), Some("List-Unsubscribe=One-Click"));

    // The same event delivered again, and twice at once: still one notification, one mail.
    let event = w.events().await.into_iter().find(|e| e.kind == EventKind::CommentCreated).unwrap();
    notifications::on_event(&w.app, &event).await.unwrap();
    let (a, b) = futures::join!(notifications::on_event(&w.app, &event), notifications::on_event(&w.app, &event));
    assert!(a.is_ok() || b.is_ok(), "{a:?} {b:?}");
    if a.is_err() || b.is_err() {
        // The loser of a concurrent mail claim reports the record failed; its retry is a no-op.
        notifications::on_event(&w.app, &event).await.unwrap();
    }
    assert_eq!(w.inbox(&bob, false).await["items"].as_array().unwrap().len(), 1);
    assert_eq!(w.unread(&bob).await, 1);
    assert_eq!(mail_to(&bob).await.len(), 1);
}

#[tokio::test]
async fn a_poison_record_is_the_only_one_reported_failed() {
    let w = World::new(Clock::offset()).await;
    let bob = w.join(Role::Member).await;
    let member = w.store.get_member(&w.scope, &bob.identity().user_id).await.unwrap().unwrap();
    w.store.change_role(&w.scope, &member, Role::Admin).await.unwrap();
    let good = w.events().await.into_iter().find(|e| e.kind == EventKind::MemberRoleChanged).unwrap();
    let image: serde_dynamo::Item = serde_dynamo::to_item(&good).unwrap();
    let mut image = serde_json::to_value(&image).unwrap();
    image["_type"] = json!({"S": "event"});
    let mut poison = image.clone();
    poison["kind"] = json!({"S": "task.exploded"});
    let record = |id: &str, seq: &str, image: &Value| {
        json!({"eventID": id, "eventName": "INSERT", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "eventVersion": "1.1",
               "dynamodb": {"Keys": {"PK": {"S": "EVENT#x"}, "SK": {"S": "EVENT"}}, "NewImage": image, "SequenceNumber": seq, "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES"}})
    };
    let event = json!({"Records": [record("good", "100", &image), record("poison", "200", &poison)]});
    let platform = platform(&w.store, &testkit::sdk_config().await);
    let handlers = notifications::handlers(&platform).unwrap();
    let answer = handlers.invoke(event, lambda_runtime::Context::default()).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": [{"itemIdentifier": "200"}]}));
    let inbox = w.inbox(&bob, false).await;
    assert_eq!(inbox["items"][0]["kind"], "role_changed", "the good record was handled: {inbox}");
}

#[tokio::test]
async fn unread_listing_mark_one_and_mark_all_keep_the_count_exact() {
    let w = World::new(Clock::offset()).await;
    let bob = w.join(Role::Viewer).await;
    let project = w.store.create_project(&w.scope, ProjectName::parse("name", "P").unwrap(), String::new()).await.unwrap();
    let task = w.store.create_task(&w.scope, &project, TaskDraft::new(title("T")), None, &OrgLabels::default()).await.unwrap();
    for i in 0..3 {
        w.store.create_comment(&w.scope, &task, format!("ping {i}"), vec![bob.identity().user_id.clone()]).await.unwrap();
    }
    for e in w.events().await {
        notifications::on_event(&w.app, &e).await.unwrap();
    }
    assert_eq!(w.unread(&bob).await, 3);
    let all = w.inbox(&bob, false).await;
    let ids: Vec<String> = all["items"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|p| p[0] > p[1]), "newest first: {ids:?}");

    let path = format!("/orgs/{}/notifications/{}/read", w.scope.org_id(), ids[1]);
    let read = ApiCall::post(&path).by(&bob).send(&w.router).await.expect(200);
    assert_eq!(read.body["read"], true);
    ApiCall::post(&path).by(&bob).send(&w.router).await.expect(200);
    assert_eq!(w.unread(&bob).await, 2, "marking read twice counts once");
    let unread: Vec<Value> = w.inbox(&bob, true).await["items"].as_array().unwrap().clone();
    assert_eq!(unread.iter().map(|n| n["id"].as_str().unwrap()).collect::<Vec<_>>(), [ids[0].as_str(), ids[2].as_str()]);

    ApiCall::post(&format!("/orgs/{}/notifications/read-all", w.scope.org_id())).by(&bob).send(&w.router).await.expect(204);
    assert_eq!(w.unread(&bob).await, 0);
    assert!(w.inbox(&bob, true).await["items"].as_array().unwrap().is_empty());
    assert!(w.inbox(&bob, false).await["items"].as_array().unwrap().iter().all(|n| n["read"] == true));
    // A notification after "mark all" is unread again.
    w.store.create_comment(&w.scope, &task, "again".into(), vec![bob.identity().user_id.clone()]).await.unwrap();
    let last = w.events().await.pop().unwrap();
    notifications::on_event(&w.app, &last).await.unwrap();
    assert_eq!(w.unread(&bob).await, 1);
    assert_eq!(w.inbox(&bob, true).await["items"].as_array().unwrap().len(), 1);

    // Someone else's notification id is not found in the caller's inbox.
    let path = format!("/orgs/{}/notifications/{}/read", w.scope.org_id(), ids[0]);
    ApiCall::post(&path).by(&w.owner).send(&w.router).await.expect_problem(404, "not-found");
}

#[tokio::test]
async fn a_removed_member_loses_the_inbox_gets_one_mail_and_nothing_after() {
    let w = World::new(Clock::offset()).await;
    let bob = w.join(Role::Member).await;
    let project = w.store.create_project(&w.scope, ProjectName::parse("name", "P").unwrap(), String::new()).await.unwrap();
    let draft = TaskDraft { assignee: Some(bob.identity().user_id.clone()), ..TaskDraft::new(title("T")) };
    let task = w.store.create_task(&w.scope, &project, draft, None, &OrgLabels::default()).await.unwrap();
    w.store.ensure_user(&bob.identity()).await.unwrap();
    for e in w.events().await {
        notifications::on_event(&w.app, &e).await.unwrap();
    }
    assert_eq!(w.unread(&bob).await, 1);
    let seen = w.events().await.len();
    let member = w.store.get_member(&w.scope, &bob.identity().user_id).await.unwrap().unwrap();
    w.store.remove_member(&w.scope, &member).await.unwrap();
    // Said before the removal was processed, heard after it: nothing reaches a former member.
    w.store.create_comment(&w.scope, &task, "after".into(), vec![bob.identity().user_id.clone()]).await.unwrap();
    for e in &w.events().await[seen..] {
        notifications::on_event(&w.app, e).await.unwrap();
        notifications::on_event(&w.app, e).await.unwrap();
    }
    let mails = mail_to(&bob).await;
    let subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(subjects[0].contains("assigned you") && subjects[1].contains("removed from Acme"), "{subjects:?}");
    // Their inbox is gone, and the route refuses them.
    let leftovers = testkit::scan_all(&w.store)
        .await
        .into_iter()
        .filter(|i| i["PK"].as_s().unwrap().starts_with(&format!("NOTIF#{}#{}", w.scope.org_id(), bob.identity().user_id)))
        .count();
    assert_eq!(leftovers, 0);
    ApiCall::get(&format!("/orgs/{}/notifications", w.scope.org_id())).by(&bob).send(&w.router).await.expect_problem(404, "not-found");
}

#[tokio::test]
async fn reminders_come_once_per_due_time_reschedule_with_it_and_stop_when_done() {
    let start = datetime!(2026-12-01 09:00 UTC);
    let clock = Clock::fixed(start);
    let w = World::new(clock.clone()).await;
    let bob = w.join(Role::Member).await;
    let project = w.store.create_project(&w.scope, ProjectName::parse("name", "P").unwrap(), String::new()).await.unwrap();
    let due = |s: &str| Some(Due::parse("due", s).unwrap());
    let draft = TaskDraft { assignee: Some(bob.identity().user_id.clone()), due: due("2026-12-02T12:00:00Z"), ..TaskDraft::new(title("Report")) };
    let task = w.store.create_task(&w.scope, &project, draft, None, &OrgLabels::default()).await.unwrap();
    let other = TaskDraft { assignee: Some(bob.identity().user_id.clone()), due: due("2026-12-02T13:00:00Z"), ..TaskDraft::new(title("Done soon")) };
    let other = w.store.create_task(&w.scope, &project, other, None, &OrgLabels::default()).await.unwrap();
    let kinds = |inbox: Value| -> Vec<(String, String)> {
        inbox["items"].as_array().unwrap().iter().map(|n| (n["kind"].as_str().unwrap().to_owned(), n["title"].as_str().unwrap().to_owned())).collect()
    };
    notifications::sweep(&w.app).await.unwrap();
    assert!(kinds(w.inbox(&bob, false).await).is_empty(), "nothing due within 24 hours yet");

    // 12:10 the day before: "due soon", within the sweep's 15 minutes.
    clock.advance(Duration::from_secs(3 * 3600 + 10 * 60));
    let report = notifications::sweep(&w.app).await.unwrap();
    assert_eq!(report.reminders, 1);
    assert_eq!(kinds(w.inbox(&bob, false).await), [("due_soon".to_owned(), "\u{201c}Report\u{201d} is due soon".to_owned())]);
    // A sweep that covers the same window again (its mark lost, say) makes no second one.
    notifications::sweep(&w.app).await.unwrap();
    assert_eq!(kinds(w.inbox(&bob, false).await).len(), 1);

    // The other task is completed before its reminder: none. The first moves a day later.
    let patch = TaskPatch { status: Some(TaskStatus::Done), ..TaskPatch::default() };
    w.store.update_task(&w.scope, &project, &other, &patch, None, &OrgLabels::default()).await.unwrap();
    let later = TaskPatch { due: Some(due("2026-12-03T12:00:00Z")), ..TaskPatch::default() };
    w.store.update_task(&w.scope, &project, &task, &later, None, &OrgLabels::default()).await.unwrap();
    clock.advance(Duration::from_secs(86_400));
    notifications::sweep(&w.app).await.unwrap();
    let got = kinds(w.inbox(&bob, false).await);
    assert_eq!(got.iter().filter(|(k, _)| k == "due_soon").count(), 2, "the new due time has its own reminder: {got:?}");
    assert!(got.iter().all(|(k, _)| k != "overdue"), "the old due time passed, but the task moved: {got:?}");
    clock.advance(Duration::from_secs(86_400));
    notifications::sweep(&w.app).await.unwrap();
    let got = kinds(w.inbox(&bob, false).await);
    assert_eq!(got.iter().filter(|(k, _)| k == "overdue").count(), 1, "{got:?}");
    assert!(!got.iter().any(|(_, t)| t.contains("Done soon")), "a completed task gets no reminder: {got:?}");
}

#[tokio::test]
async fn quiet_hours_hold_mail_until_they_end_in_the_users_time_zone_across_dst() {
    // 2026-11-01 is the day New York leaves daylight time (06:00 UTC). 05:30 UTC is 01:30 EDT,
    // inside quiet hours 22:00–07:00 local; they end at 07:00 EST = 12:00 UTC.
    let clock = Clock::fixed(datetime!(2026-11-01 05:30 UTC));
    let w = World::new(clock.clone()).await;
    let bob = w.join(Role::Member).await;
    w.prefs(&bob, json!({"timeZone": "America/New_York", "quietHours": {"start": "22:00", "end": "07:00"}})).await;
    let member = w.store.get_member(&w.scope, &bob.identity().user_id).await.unwrap().unwrap();
    w.store.change_role(&w.scope, &member, Role::Admin).await.unwrap();
    for e in w.events().await {
        notifications::on_event(&w.app, &e).await.unwrap();
    }
    assert_eq!(w.inbox(&bob, false).await["items"][0]["kind"], "role_changed", "in-app is not held back");
    assert!(mail_to(&bob).await.is_empty(), "no mail in quiet hours");
    clock.advance(Duration::from_secs(6 * 3600 + 20 * 60)); // 11:50 UTC, 06:50 EST
    notifications::sweep(&w.app).await.unwrap();
    assert!(mail_to(&bob).await.is_empty(), "quiet hours end at 07:00 EST, an hour later than in EDT");
    clock.advance(Duration::from_secs(15 * 60)); // 12:05 UTC
    notifications::sweep(&w.app).await.unwrap();
    notifications::sweep(&w.app).await.unwrap();
    let mails = mail_to(&bob).await;
    assert_eq!(mails.len(), 1, "sent once when quiet hours ended");
    assert!(mails[0].subject.contains("role in Acme is now admin"), "{}", mails[0].subject);
}

#[tokio::test]
async fn a_daily_digest_comes_at_the_local_hour_with_what_is_unread_and_due_and_not_when_empty() {
    // 07:30 EST on 2026-11-02; the digest is at 08:00 local = 13:00 UTC.
    let clock = Clock::fixed(datetime!(2026-11-02 12:30 UTC));
    let w = World::new(clock.clone()).await;
    let bob = w.join(Role::Member).await;
    let quiet = w.join(Role::Member).await;
    for who in [&bob, &quiet] {
        w.prefs(who, json!({"timeZone": "America/New_York", "digest": {"frequency": "daily", "hour": 8}, "channels": {"assigned": "in_app"}})).await;
    }
    let project = w.store.create_project(&w.scope, ProjectName::parse("name", "P").unwrap(), String::new()).await.unwrap();
    let draft = TaskDraft {
        assignee: Some(bob.identity().user_id.clone()),
        due: Some(Due::parse("due", "2026-11-02T20:00:00Z").unwrap()),
        ..TaskDraft::new(title("Budget"))
    };
    w.store.create_task(&w.scope, &project, draft, None, &OrgLabels::default()).await.unwrap();
    for e in w.events().await {
        notifications::on_event(&w.app, &e).await.unwrap();
    }
    assert!(mail_to(&bob).await.is_empty(), "assignments are in-app only for them");
    clock.advance(Duration::from_secs(35 * 60)); // 13:05 UTC
    let report = notifications::sweep(&w.app).await.unwrap();
    assert_eq!(report.digests, 1, "one digest sent; the other had nothing to say");
    let mails = mail_to(&bob).await;
    let digests: Vec<&SentMail> = mails.iter().filter(|m| m.subject.contains("daily digest")).collect();
    assert_eq!(digests.len(), 1, "{:?}", mails.iter().map(|m| &m.subject).collect::<Vec<_>>());
    assert!(digests[0].subject.contains("2026-11-02"), "{}", digests[0].subject);
    assert!(digests[0].body.contains("Budget"), "{}", digests[0].body);
    assert!(mail_to(&quiet).await.is_empty(), "no mail when there is nothing");
    notifications::sweep(&w.app).await.unwrap();
    assert_eq!(mail_to(&bob).await.iter().filter(|m| m.subject.contains("daily digest")).count(), 1, "once a day");
}

#[tokio::test]
async fn an_unsubscribe_link_changes_one_kind_for_one_user_and_nothing_else() {
    let w = World::new(Clock::offset()).await;
    let bob = w.join(Role::Member).await;
    let eve = w.join(Role::Member).await;
    let key = w.store.derived_key("unsubscribe");
    let token = UnsubscribeToken { user: bob.identity().user_id, org: w.scope.org_id(), kind: NotificationKind::Mentioned }.sign(&key);
    // The page changes nothing; a POST without the one-click body is refused.
    let page = ApiCall::get("/unsubscribe").query("token", &token).send(&w.router).await.expect(200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.body.as_str().unwrap().contains("mentions"), "{}", page.body);
    let path = format!("/orgs/{}/notification-preferences", w.scope.org_id());
    let prefs = |who: &Caller| {
        let call = ApiCall::get(&path).by(who);
        let router = w.router.clone();
        async move { call.send(&router).await }
    };
    assert_eq!(prefs(&bob).await.expect(200).body["channels"], json!({}));
    ApiCall::post("/unsubscribe").query("token", &token).raw_body("unsubscribe=everything").send(&w.router).await.expect_problem(400, "malformed-request");
    // A tampered token, or one signed with another key, is refused.
    let mut forged = token.clone();
    forged.replace_range(..1, if forged.starts_with('A') { "B" } else { "A" });
    ApiCall::post("/unsubscribe").query("token", &forged).raw_body("List-Unsubscribe=One-Click").send(&w.router).await.expect_problem(400, "malformed-request");
    let other_key = UnsubscribeToken { user: eve.identity().user_id, org: w.scope.org_id(), kind: NotificationKind::Assigned }.sign(b"another key");
    ApiCall::post("/unsubscribe")
        .query("token", &other_key)
        .raw_body("List-Unsubscribe=One-Click")
        .send(&w.router)
        .await
        .expect_problem(400, "malformed-request");

    ApiCall::post("/unsubscribe").query("token", &token).raw_body("List-Unsubscribe=One-Click").send(&w.router).await.expect(200);
    ApiCall::post("/unsubscribe").query("token", &token).raw_body("List-Unsubscribe=One-Click").send(&w.router).await.expect(200);
    assert_eq!(prefs(&bob).await.expect(200).body["channels"], json!({"mentioned": "in_app"}));
    assert_eq!(prefs(&eve).await.expect(200).body["channels"], json!({}), "another user is untouched");
    assert_eq!(prefs(&w.owner).await.expect(200).body["channels"], json!({}));
}

#[tokio::test]
async fn suppressed_addresses_get_no_mail_but_keep_their_inbox() {
    let w = World::new(Clock::offset()).await;
    let bob = w.join(Role::Member).await;
    w.store.suppress(&bob.identity().email.unwrap(), "bounce").await.unwrap();
    let member = w.store.get_member(&w.scope, &bob.identity().user_id).await.unwrap().unwrap();
    w.store.change_role(&w.scope, &member, Role::Admin).await.unwrap();
    for e in w.events().await {
        notifications::on_event(&w.app, &e).await.unwrap();
    }
    assert!(mail_to(&bob).await.is_empty());
    assert_eq!(w.unread(&bob).await, 1);
}

#[tokio::test]
async fn preferences_are_validated_and_stay_with_the_member_and_org() {
    let w = World::new(Clock::offset()).await;
    let bob = w.join(Role::Viewer).await;
    let path = format!("/orgs/{}/notification-preferences", w.scope.org_id());
    let bad = ApiCall::put(&path).by(&bob).json(json!({"timeZone": "Mars/Olympus", "digest": {"frequency": "weekly", "hour": 30}})).send(&w.router).await;
    let bad = bad.expect_problem(422, "validation-failed");
    let fields: Vec<&str> = bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"timeZone") && fields.contains(&"digest.hour"), "{fields:?}");
    w.prefs(&bob, json!({"timeZone": "Europe/Berlin", "channels": {"commented": "both"}})).await;
    let got = ApiCall::get(&path).by(&bob).send(&w.router).await.expect(200).body;
    assert_eq!((got["timeZone"].as_str(), got["channels"]["commented"].as_str()), (Some("Europe/Berlin"), Some("both")));
    let outsider = Caller::new("outsider");
    ApiCall::get(&path).by(&outsider).send(&w.router).await.expect_problem(404, "not-found");
}

#[tokio::test]
async fn ses_bounces_and_complaints_suppress_the_address_through_the_bus_handler() {
    let w = World::new(Clock::offset()).await;
    let platform = platform(&w.store, &testkit::sdk_config().await);
    let handlers = notifications::handlers(&platform).unwrap();
    let fixture =
        |name: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(testkit::events_dir().join("eventbridge").join(name)).unwrap()).unwrap() };
    let gone: domain::Email = "gone.user@example.com".parse().unwrap();
    let annoyed: domain::Email = "annoyed@example.com".parse().unwrap();
    assert!(!w.store.is_suppressed(&gone).await.unwrap());
    for name in ["ses-bounce.json", "ses-complaint.json", "ses-bounce.json"] {
        assert_eq!(api::event_kind(&fixture(name)), api::EventKind::Bus);
        handlers.invoke(fixture(name), lambda_runtime::Context::default()).await.unwrap();
    }
    assert!(w.store.is_suppressed(&gone).await.unwrap(), "a permanent bounce suppresses (case-folded)");
    assert!(w.store.is_suppressed(&annoyed).await.unwrap(), "a complaint suppresses");
    // A transient bounce does not.
    let mut transient = fixture("ses-bounce.json");
    transient["detail"]["bounce"]["bounceType"] = json!("Transient");
    transient["detail"]["bounce"]["bouncedRecipients"][0]["emailAddress"] = json!("full.mailbox@example.com");
    handlers.invoke(transient, lambda_runtime::Context::default()).await.unwrap();
    assert!(!w.store.is_suppressed(&"full.mailbox@example.com".parse().unwrap()).await.unwrap());
}

#[tokio::test]
async fn an_unread_notification_that_expires_leaves_the_unread_count_once() {
    let w = World::new(Clock::offset()).await;
    let bob = w.join(Role::Member).await;
    let project = w.store.create_project(&w.scope, ProjectName::parse("name", "P").unwrap(), String::new()).await.unwrap();
    let task = w.store.create_task(&w.scope, &project, TaskDraft::new(title("T")), None, &OrgLabels::default()).await.unwrap();
    for text in ["one", "two"] {
        w.store.create_comment(&w.scope, &task, text.into(), vec![bob.identity().user_id.clone()]).await.unwrap();
    }
    for e in w.events().await {
        notifications::on_event(&w.app, &e).await.unwrap();
    }
    assert_eq!(w.unread(&bob).await, 2);
    // DynamoDB's TTL deletes the older one: its stream record is a REMOVE by the service.
    let items = testkit::scan_all(&w.store).await;
    let mut notes: Vec<_> = items.into_iter().filter(|i| i.get("_type").and_then(|v| v.as_s().ok()).is_some_and(|t| t == "notification")).collect();
    notes.sort_by_key(|i| i["SK"].as_s().unwrap().clone());
    let old = notes.remove(0);
    w.store.client().delete_item().table_name(w.store.table_name()).key("PK", old["PK"].clone()).key("SK", old["SK"].clone()).send().await.unwrap();
    let image: serde_dynamo::Item = serde_dynamo::Item::from(old.clone());
    let image = serde_json::to_value(&image).unwrap();
    let record = |by_ttl: bool| {
        let mut r = json!({"eventID": "ttl-1", "eventName": "REMOVE", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "eventVersion": "1.1",
               "dynamodb": {"Keys": {"PK": image["PK"], "SK": image["SK"]}, "OldImage": image, "SequenceNumber": "300", "SizeBytes": 200, "StreamViewType": "NEW_AND_OLD_IMAGES"}});
        if by_ttl {
            r["userIdentity"] = json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
        }
        r
    };
    let filters = registry::function("notifications").unwrap().sources.dynamodb_stream.unwrap().filters;
    assert!(local_runner::events::filter::passes(&filters, &record(true)), "the registry's filter lets TTL deletions through");
    assert!(!local_runner::events::filter::passes(&filters, &record(false)), "and no other deletion");
    let handlers = notifications::handlers(&platform(&w.store, &testkit::sdk_config().await)).unwrap();
    for _ in 0..2 {
        let answer = handlers.invoke(json!({"Records": [record(true)]}), lambda_runtime::Context::default()).await.unwrap();
        assert_eq!(answer, json!({"batchItemFailures": []}));
    }
    assert_eq!(w.unread(&bob).await, 1, "counted out once, however often the record comes");
    assert_eq!(w.inbox(&bob, true).await["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn preferences_with_an_unknown_field_are_refused_whole() {
    let w = World::new(Clock::offset()).await;
    let path = format!("/orgs/{}/notification-preferences", w.scope.org_id());
    for body in [
        json!({"timezone": "Europe/Paris"}),
        json!({"digest": {"frequency": "daily", "hours": 9}}),
        json!({"quietHours": {"start": "22:00", "end": "07:00", "tz": "x"}}),
    ] {
        ApiCall::put(&path).by(&w.owner).json(body).send(&w.router).await.expect_problem(400, "malformed-request");
    }
    let got = ApiCall::get(&path).by(&w.owner).send(&w.router).await.expect(200).body;
    assert_eq!(got["timeZone"], "UTC", "nothing was stored");
}
