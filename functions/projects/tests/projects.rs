//! The projects routes driven with API Gateway REST proxy events, on the local AWS endpoint.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use axum::Router;
use domain::{Action, Plan, Role};
use serde_json::{Value, json};
use store::Store;
use testkit::{ApiCall, ApiResponse, Caller};

struct World {
    router: Router,
    store: Store,
    owner: Caller,
    org: String,
}

impl World {
    /// An org (on `plan`) owned by a fresh caller.
    async fn new(plan: Plan) -> World {
        let store = testkit::fresh_store().await;
        let router = projects::router(store.clone()).0;
        let owner = Caller::new("owner");
        let name = domain::OrgName::parse("name", "Workload Co").unwrap();
        let scope = store.create_org(&owner.identity(), None, store::NewOrg { name, slug: None }).await.unwrap();
        let world = World { router, store, owner, org: scope.org_id().to_string() };
        world.set_plan(plan).await;
        world
    }

    async fn set_plan(&self, plan: Plan) {
        let operator = testkit::operator(&self.store, "op").await;
        let admin = self.store.admin_scope(&operator.identity(), self.org.parse().unwrap()).await.unwrap();
        self.store.set_org_plan(&admin, plan).await.unwrap();
    }

    /// A new member of the org with `role`.
    async fn join(&self, name: &str, role: Role) -> Caller {
        let who = Caller::new(name);
        let scope = self.store.authorize(&self.owner.identity(), self.org.parse().unwrap(), Action::ManageMembers).await.unwrap();
        self.store.add_member(&scope, &who.identity().user_id, role, who.identity().email, None).await.unwrap();
        who
    }

    async fn send(&self, call: ApiCall) -> ApiResponse {
        call.send(&self.router).await
    }

    async fn project(&self, name: &str) -> String {
        let res = self.send(ApiCall::post(&format!("/orgs/{}/projects", self.org)).by(&self.owner).json(json!({ "name": name }))).await.expect(201);
        res.body["id"].as_str().unwrap().to_owned()
    }

    fn tasks(&self, project: &str) -> String {
        format!("/orgs/{}/projects/{project}/tasks", self.org)
    }

    async fn task(&self, project: &str, body: Value) -> Value {
        self.send(ApiCall::post(&self.tasks(project)).by(&self.owner).json(body)).await.expect(201).body
    }

    /// Every page of a listing, `limit` at a time: the ids in order.
    async fn all_pages(&self, by: &Caller, path: &str, query: &[(&str, &str)], limit: usize) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut call = ApiCall::get(path).by(by).query("limit", &limit.to_string());
            for (k, v) in query {
                call = call.query(k, v);
            }
            if let Some(c) = &cursor {
                call = call.query("cursor", c);
            }
            let res = self.send(call).await.expect(200);
            let items = res.body["items"].as_array().unwrap();
            assert!(items.len() <= limit);
            ids.extend(items.iter().map(|t| t["id"].as_str().unwrap().to_owned()));
            match res.body["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return ids,
            }
            assert!(!items.is_empty() || cursor.is_none(), "an empty page with a cursor");
        }
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_board_column_lists_in_manual_order_across_pages() {
    let w = World::new(Plan::Starter).await;
    let project = w.project("Board").await;
    let mut order = Vec::new();
    for i in 0..7 {
        order.push(id(&w.task(&project, json!({ "title": format!("task {i}") })).await));
    }
    assert_eq!(w.all_pages(&w.owner, &w.tasks(&project), &[("status", "todo")], 2).await, order, "created tasks append to the column");

    // Move the last task between the first two, and the first to the bottom.
    let moved = w
        .send(ApiCall::post(&format!("{}/{}/move", w.tasks(&project), order[6])).by(&w.owner).json(json!({ "after": order[0], "before": order[1] })))
        .await
        .expect(200);
    assert_eq!(moved.body["version"], 2);
    let last = order[6].clone();
    order.pop();
    order.insert(1, last);
    w.send(ApiCall::post(&format!("{}/{}/move", w.tasks(&project), order[0])).by(&w.owner).json(json!({ "after": order[6] }))).await.expect(200);
    let first = order.remove(0);
    order.push(first);
    assert_eq!(w.all_pages(&w.owner, &w.tasks(&project), &[("status", "todo")], 3).await, order);

    // Into another column: it leaves this one.
    w.send(ApiCall::post(&format!("{}/{}/move", w.tasks(&project), order[2])).by(&w.owner).json(json!({ "status": "in_progress" }))).await.expect(200);
    let doing = order.remove(2);
    assert_eq!(w.all_pages(&w.owner, &w.tasks(&project), &[("status", "todo")], 4).await, order);
    assert_eq!(w.all_pages(&w.owner, &w.tasks(&project), &[("status", "in_progress")], 4).await, vec![doing.clone()]);
    // Without a status: every task, in the order they were created.
    let all = w.all_pages(&w.owner, &w.tasks(&project), &[], 3).await;
    assert_eq!(all.len(), 7);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted);

    // Neighbours that are not in the column are refused.
    w.send(ApiCall::post(&format!("{}/{}/move", w.tasks(&project), order[0])).by(&w.owner).json(json!({ "status": "todo", "after": doing })))
        .await
        .expect_problem(422, "validation-failed");
}

#[tokio::test]
async fn moving_to_the_top_again_and_again_renumbers_the_column_instead_of_growing_ranks() {
    let w = World::new(Plan::Starter).await;
    let project = w.project("Churn").await;
    let mut order = Vec::new();
    for i in 0..4 {
        order.push(id(&w.task(&project, json!({ "title": format!("t{i}") })).await));
    }
    // Always move the bottom task above the top one: each new rank sits below the last.
    let mut longest = 0;
    for _ in 0..400 {
        let bottom = order.pop().unwrap();
        let moved = w.send(ApiCall::post(&format!("{}/{bottom}/move", w.tasks(&project))).by(&w.owner).json(json!({ "before": order[0] }))).await.expect(200);
        longest = longest.max(moved.body["rank"].as_str().unwrap().len());
        order.insert(0, bottom);
    }
    assert!(longest > store::REBALANCE_AT, "the ranks did grow ({longest} characters)");
    let listed = w.send(ApiCall::get(&w.tasks(&project)).by(&w.owner).query("status", "todo")).await.expect(200).body;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.iter().map(id).collect::<Vec<_>>(), order, "renumbering keeps the order");
    assert!(items.iter().all(|t| t["rank"].as_str().unwrap().len() <= store::REBALANCE_AT), "{listed}");
    assert!(items.iter().any(|t| t["version"].as_u64().unwrap() > 1), "moves still bump versions");
}

#[tokio::test]
async fn my_tasks_and_due_ranges_page_completely_by_due_date() {
    let w = World::new(Plan::Starter).await;
    let member = w.join("member", Role::Member).await;
    let (a, b) = (w.project("A").await, w.project("B").await);
    let me = member.sub.as_str();
    let mk = |project: &str, title: &str, due: Option<&str>, assignee: Option<&str>| {
        let mut body = json!({ "title": title });
        if let Some(d) = due {
            body["due"] = json!(d);
        }
        if let Some(u) = assignee {
            body["assignee"] = json!(u);
        }
        (project.to_owned(), body)
    };
    let specs = [
        mk(&a, "late", Some("2026-12-20"), Some(me)),
        mk(&b, "soon", Some("2026-12-02T09:00:00+02:00"), Some(me)),
        mk(&a, "undated", None, Some(me)),
        mk(&b, "first", Some("2026-12-01"), Some(me)),
        mk(&a, "someone else's", Some("2026-12-03"), None),
        mk(&b, "mid", Some("2026-12-10T00:00:00Z"), Some(me)),
    ];
    let mut ids = std::collections::HashMap::new();
    for (project, body) in specs {
        let title = body["title"].as_str().unwrap().to_owned();
        ids.insert(title, id(&w.task(&project, body).await));
    }
    let want = |titles: &[&str]| titles.iter().map(|t| ids[*t].clone()).collect::<Vec<_>>();
    let org_tasks = format!("/orgs/{}/tasks", w.org);
    assert_eq!(w.all_pages(&member, &org_tasks, &[("assignee", "me")], 2).await, want(&["first", "soon", "mid", "late", "undated"]));

    // Closing a task takes it out of "my tasks" and out of the due index.
    w.send(ApiCall::patch(&format!("{}/{}", w.tasks(&a), ids["late"])).by(&member).json(json!({ "status": "done" }))).await.expect(200);
    assert_eq!(w.all_pages(&member, &org_tasks, &[("assignee", "me")], 10).await, want(&["first", "soon", "mid", "undated"]));

    // Due between: from the start of Dec 1 to before Dec 10 (a date-only due is due at the end of its day).
    let range = [("dueAfter", "2026-12-01"), ("dueBefore", "2026-12-10")];
    assert_eq!(w.all_pages(&member, &org_tasks, &range, 1).await, want(&["first", "soon", "someone else's"]));
    assert_eq!(w.all_pages(&member, &org_tasks, &[("dueAfter", "2026-12-02T07:00:00Z")], 2).await, want(&["soon", "someone else's", "mid"]));
    assert_eq!(w.all_pages(&member, &org_tasks, &[("dueBefore", "2026-12-02")], 2).await, want(&["first"]));
    w.send(ApiCall::get(&org_tasks).by(&member)).await.expect_problem(422, "validation-failed");
    w.send(ApiCall::get(&org_tasks).by(&member).query("dueAfter", "tomorrow")).await.expect_problem(422, "validation-failed");
    w.send(ApiCall::get(&org_tasks).by(&member).query("assignee", "me").query("dueAfter", "2026-12-01")).await.expect_problem(422, "validation-failed");
}

#[tokio::test]
async fn concurrent_patches_with_the_same_if_match_let_exactly_one_through() {
    let w = World::new(Plan::Starter).await;
    let project = w.project("Race").await;
    let task = w.task(&project, json!({ "title": "contended" })).await;
    let path = format!("{}/{}", w.tasks(&project), id(&task));
    let patches = (0..20).map(|i| w.send(ApiCall::patch(&path).by(&w.owner).header("If-Match", "\"1\"").json(json!({ "title": format!("edit {i}") }))));
    let results = futures::future::join_all(patches).await;
    let ok: Vec<_> = results.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), 1, "{:?}", results.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(results.iter().filter(|r| r.status != 200).all(|r| r.status == 412 && r.header("content-type") == Some("application/problem+json")));
    let now = w.send(ApiCall::get(&path).by(&w.owner)).await.expect(200);
    assert_eq!(now.body["title"], ok[0].body["title"], "the one that got through is what is stored");
    assert_eq!(now.header("etag"), Some("\"2\""));
    // Without If-Match, concurrent edits of different fields all land (last writer wins, field by field).
    let edits = [json!({ "priority": "high" }), json!({ "description": "spec" }), json!({ "labels": ["bug"] })];
    let results = futures::future::join_all(edits.iter().map(|b| w.send(ApiCall::patch(&path).by(&w.owner).json(b.clone())))).await;
    assert!(results.iter().all(|r| r.status == 200), "{:?}", results.iter().map(|r| (r.status, r.body.clone())).collect::<Vec<_>>());
    let now = w.send(ApiCall::get(&path).by(&w.owner)).await.expect(200);
    assert_eq!((now.body["priority"].as_str(), now.body["description"].as_str(), now.body["labels"][0].as_str()), (Some("high"), Some("spec"), Some("bug")));
    w.send(ApiCall::delete(&path).by(&w.owner).header("If-Match", "\"2\"")).await.expect_problem(412, "stale-version");
    w.send(ApiCall::patch(&path).by(&w.owner).header("If-Match", "nonsense").json(json!({ "title": "x" }))).await.expect_problem(400, "malformed-request");
}

#[tokio::test]
async fn the_active_project_limit_holds_under_concurrent_creates_and_plan_changes() {
    let w = World::new(Plan::Free).await;
    let limit = Plan::Free.limits().max_projects;
    let path = format!("/orgs/{}/projects", w.org);
    let creates = (0..20).map(|i| w.send(ApiCall::post(&path).by(&w.owner).json(json!({ "name": format!("p{i}") }))));
    let results = futures::future::join_all(creates).await;
    let created: Vec<String> = results.iter().filter(|r| r.status == 201).map(|r| id(&r.body)).collect();
    assert_eq!(created.len() as u64, limit, "{:?}", results.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(results.iter().filter(|r| r.status != 201).all(|r| r.status == 409 && r.body["type"].as_str().unwrap().ends_with("/plan-limit-reached")));
    let usage = |w: &World| {
        let org = w.org.clone();
        let store = w.store.clone();
        let owner = w.owner.identity();
        async move { store.authorize(&owner, org.parse().unwrap(), Action::ReadUsage).await.unwrap().org().project_count }
    };
    assert_eq!(usage(&w).await, limit);

    // Archiving frees a place; restoring takes it back, within the limit.
    w.send(ApiCall::post(&format!("{path}/{}/archive", created[0])).by(&w.owner)).await.expect(200);
    let extra = id(&w.send(ApiCall::post(&path).by(&w.owner).json(json!({ "name": "extra" }))).await.expect(201).body);
    w.send(ApiCall::post(&format!("{path}/{}/restore", created[0])).by(&w.owner)).await.expect_problem(409, "plan-limit-reached");
    assert_eq!(w.all_pages(&w.owner, &path, &[("status", "archived")], 5).await, vec![created[0].clone()]);
    assert_eq!(w.all_pages(&w.owner, &path, &[("status", "active")], 2).await.len() as u64, limit);
    assert_eq!(w.all_pages(&w.owner, &path, &[], 2).await.len() as u64, limit + 1);

    // A higher plan, more projects; back down: nothing is deleted, nothing new is allowed.
    w.set_plan(Plan::Starter).await;
    w.send(ApiCall::post(&format!("{path}/{}/restore", created[0])).by(&w.owner)).await.expect(200);
    w.send(ApiCall::post(&path).by(&w.owner).json(json!({ "name": "one more" }))).await.expect(201);
    w.set_plan(Plan::Free).await;
    w.send(ApiCall::post(&path).by(&w.owner).json(json!({ "name": "refused" }))).await.expect_problem(409, "plan-limit-reached");
    assert_eq!(w.all_pages(&w.owner, &path, &[("status", "active")], 10).await.len() as u64, limit + 2);
    // Deleting an active project frees its place.
    w.send(ApiCall::delete(&format!("{path}/{extra}")).by(&w.owner)).await.expect(204);
    assert_eq!(usage(&w).await, limit + 1);
    w.send(ApiCall::get(&format!("{path}/{extra}")).by(&w.owner)).await.expect_problem(404, "not-found");
}

#[tokio::test]
async fn members_change_their_own_projects_and_admins_any() {
    let w = World::new(Plan::Starter).await;
    let (member, other, admin, viewer) =
        (w.join("member", Role::Member).await, w.join("other", Role::Member).await, w.join("admin", Role::Admin).await, w.join("viewer", Role::Viewer).await);
    let path = format!("/orgs/{}/projects", w.org);
    let mine = w.send(ApiCall::post(&path).by(&member).json(json!({ "name": "Mine", "description": "# Plan" }))).await.expect(201);
    assert_eq!(mine.header("etag"), Some("\"1\""));
    let p = format!("{path}/{}", id(&mine.body));
    w.send(ApiCall::patch(&p).by(&member).header("If-Match", "\"1\"").json(json!({ "name": "Still mine" }))).await.expect(200);
    w.send(ApiCall::patch(&p).by(&other).json(json!({ "name": "Taken" }))).await.expect_problem(403, "forbidden");
    w.send(ApiCall::post(&format!("{p}/archive")).by(&other)).await.expect_problem(403, "forbidden");
    w.send(ApiCall::patch(&p).by(&viewer).json(json!({ "name": "Viewed" }))).await.expect_problem(403, "forbidden");
    w.send(ApiCall::patch(&p).by(&admin).json(json!({ "description": "by an admin" }))).await.expect(200);
    w.send(ApiCall::delete(&p).by(&member)).await.expect_problem(403, "forbidden");
    w.send(ApiCall::get(&p).by(&viewer)).await.expect(200);
    // An archived project is read-only.
    let project = id(&mine.body);
    let task = w.send(ApiCall::post(&w.tasks(&project)).by(&member).json(json!({ "title": "before" }))).await.expect(201).body;
    w.send(ApiCall::post(&format!("{p}/archive")).by(&member)).await.expect(200);
    w.send(ApiCall::post(&w.tasks(&project)).by(&member).json(json!({ "title": "after" }))).await.expect_problem(409, "conflict");
    w.send(ApiCall::patch(&format!("{}/{}", w.tasks(&project), id(&task))).by(&member).json(json!({ "title": "x" }))).await.expect_problem(409, "conflict");
    w.send(ApiCall::get(&format!("{}/{}", w.tasks(&project), id(&task))).by(&viewer)).await.expect(200);
    w.send(ApiCall::delete(&format!("{}/{}", w.tasks(&project), id(&task))).by(&member)).await.expect_problem(409, "conflict");
    w.send(ApiCall::delete(&p).by(&admin)).await.expect(204);
    // Deleted: the project and what was in it answer 404 at once, before any purge.
    let task_path = format!("{}/{}", w.tasks(&project), id(&task));
    for path in [p.clone(), task_path.clone(), format!("{task_path}/history"), format!("{task_path}/comments"), w.tasks(&project)] {
        w.send(ApiCall::get(&path).by(&member)).await.expect_problem(404, "not-found");
    }
}

#[tokio::test]
async fn every_change_to_a_task_is_in_its_history() {
    let w = World::new(Plan::Starter).await;
    let member = w.join("member", Role::Member).await;
    let project = w.project("History").await;
    let task = w.task(&project, json!({ "title": "t", "priority": "low", "labels": ["Bug", "bug", "ui"] })).await;
    assert_eq!(task["labels"], json!(["bug", "ui"]), "labels are lowercased and de-duplicated");
    let path = format!("{}/{}", w.tasks(&project), id(&task));
    w.send(ApiCall::patch(&path).by(&w.owner).json(json!({ "assignee": member.sub, "due": "2026-12-24", "priority": "urgent" }))).await.expect(200);
    w.send(ApiCall::patch(&path).by(&member).json(json!({ "due": null, "status": "blocked" }))).await.expect(200);
    // No change: no write, no history.
    w.send(ApiCall::patch(&path).by(&member).json(json!({ "status": "blocked" }))).await.expect(200);
    let history = w.send(ApiCall::get(&format!("{path}/history")).by(&member)).await.expect(200).body;
    let entries = history["items"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{history}");
    assert_eq!(entries[0]["action"], "created");
    let fields = |e: &Value| e["changes"].as_array().unwrap().iter().map(|c| c["field"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(fields(&entries[1]), ["priority", "assignee", "due"]);
    assert_eq!(entries[1]["actor"], w.owner.sub.as_str());
    assert_eq!(entries[1]["changes"][0], json!({ "field": "priority", "from": "low", "to": "urgent" }));
    assert_eq!(entries[2]["changes"], json!([{ "field": "status", "from": "todo", "to": "blocked" }, { "field": "due", "from": "2026-12-24", "to": null }]));
    assert_eq!(entries[2]["actor"], member.sub.as_str());
    let labels = w.send(ApiCall::get(&format!("/orgs/{}/labels", w.org)).by(&member)).await.expect(200).body;
    assert_eq!(labels["labels"], json!(["bug", "ui"]));
}

#[tokio::test]
async fn assignees_must_be_members_and_tenants_never_meet() {
    let a = World::new(Plan::Starter).await;
    let b = World::new(Plan::Starter).await;
    let a_member = a.join("a-member", Role::Member).await;
    let b_member = b.join("b-member", Role::Member).await;
    let project = a.project("A's").await;
    let task = a.task(&project, json!({ "title": "A's task" })).await;
    let path = format!("{}/{}", a.tasks(&project), id(&task));

    let refused = a.send(ApiCall::patch(&path).by(&a.owner).json(json!({ "assignee": b_member.sub }))).await.expect_problem(422, "validation-failed");
    assert_eq!(refused.body["errors"][0]["field"], "assignee");
    a.send(ApiCall::post(&a.tasks(&project)).by(&a.owner).json(json!({ "title": "x", "assignee": "nobody-at-all" })))
        .await
        .expect_problem(422, "validation-failed");
    a.send(ApiCall::patch(&path).by(&a.owner).json(json!({ "assignee": a_member.sub }))).await.expect(200);

    // Org B's people reach nothing of org A's, whichever way they ask.
    let comment = a.send(ApiCall::post(&format!("{path}/comments")).by(&a.owner).json(json!({ "text": "hi" }))).await.expect(201).body;
    let calls = [
        ApiCall::get(&format!("/orgs/{}/projects", a.org)),
        ApiCall::get(&format!("/orgs/{}/projects/{project}", a.org)),
        ApiCall::patch(&format!("/orgs/{}/projects/{project}", a.org)).json(json!({ "name": "mine now" })),
        ApiCall::get(&a.tasks(&project)),
        ApiCall::get(&path),
        ApiCall::patch(&path).json(json!({ "assignee": b_member.sub })),
        ApiCall::get(&format!("{path}/history")),
        ApiCall::get(&format!("{path}/comments")),
        ApiCall::delete(&format!("{path}/comments/{}", id(&comment))),
        ApiCall::get(&format!("/orgs/{}/tasks", a.org)).query("assignee", "me"),
    ];
    for call in calls {
        for who in [&b.owner, &b_member] {
            let res = a.send(call.clone().by(who)).await;
            assert_eq!(res.status, 404, "{:?} by org B: {}", call, res.body);
        }
    }
    // Nor through their own org's paths: ids of A's items under B's org name nothing.
    b.send(ApiCall::get(&format!("/orgs/{}/projects/{project}/tasks/{}", b.org, id(&task))).by(&b.owner)).await.expect_problem(404, "not-found");
    let still = a.send(ApiCall::get(&path).by(&a.owner)).await.expect(200);
    assert_eq!(still.body["assignee"], a_member.sub.as_str());
}

#[tokio::test]
async fn comments_mention_members_by_handle_and_only_their_authors_edit_them() {
    let w = World::new(Plan::Starter).await;
    let (member, admin) = (w.join("mentioned", Role::Member).await, w.join("admin", Role::Admin).await);
    let outsider = World::new(Plan::Free).await.owner;
    let project = w.project("Talk").await;
    let task = w.task(&project, json!({ "title": "t" })).await;
    // The handle `GET /orgs/{orgId}/members` shows.
    let scope = w.store.authorize(&w.owner.identity(), w.org.parse().unwrap(), Action::ReadMembers).await.unwrap();
    let listed = w.store.list_members(&scope, &store::PageRequest::first(100)).await.unwrap();
    let handle = listed.items.iter().find(|m| m.user_id == member.identity().user_id).unwrap().handle.clone();
    assert!(!handle.is_empty());
    let outsider_handle = domain::work::member_handle(Some(&outsider.email), None, &outsider.sub);
    let comments = format!("{}/{}/comments", w.tasks(&project), id(&task));
    let text = format!("@{handle}, can you look? cc @{outsider_handle} and mail me at someone@{handle}.com");
    let c = w.send(ApiCall::post(&comments).by(&w.owner).json(json!({ "text": text }))).await.expect(201).body;
    assert_eq!(c["mentions"], json!([member.sub]), "the member is mentioned; a non-member and an email address are not");
    let c_path = format!("{comments}/{}", id(&c));
    w.send(ApiCall::patch(&c_path).by(&member).json(json!({ "text": "not mine" }))).await.expect_problem(403, "forbidden");
    let edited = w.send(ApiCall::patch(&c_path).by(&w.owner).json(json!({ "text": "no mentions now" }))).await.expect(200).body;
    assert_eq!((edited["mentions"].clone(), edited["edited"].clone()), (json!([]), json!(true)));
    let theirs = w.send(ApiCall::post(&comments).by(&member).json(json!({ "text": "mine" }))).await.expect(201).body;
    w.send(ApiCall::delete(&format!("{comments}/{}", id(&theirs))).by(&admin)).await.expect(204);
    w.send(ApiCall::delete(&c_path).by(&member)).await.expect_problem(403, "forbidden");
    w.send(ApiCall::post(&comments).by(&member).json(json!({ "text": "   " }))).await.expect_problem(422, "validation-failed");
    let listed = w.all_pages(&member, &comments, &[], 1).await;
    assert_eq!(listed, vec![id(&c)]);
}

const CSV_HEADER: &str = "title,description,status,priority,assignee email,due,labels\n";

fn csv_call(w: &World, project: &str, body: String) -> ApiCall {
    ApiCall::post(&format!("{}/import", w.tasks(project))).by(&w.owner).header("content-type", "text/csv").raw_body(body)
}

#[tokio::test]
async fn a_csv_with_a_bad_row_imports_nothing_and_a_good_one_imports_once() {
    let w = World::new(Plan::Starter).await;
    let member = w.join("importer", Role::Member).await;
    let project = w.project("Import").await;
    let bad =
        format!("{CSV_HEADER}Write spec,,todo,high,{},2026-12-01,docs\nShip,,shipped,,,,\nReview,,done,low,stranger@example.com,next week,\n", member.email);
    let res = w.send(csv_call(&w, &project, bad)).await.expect_problem(422, "validation-failed");
    let errors: Vec<(u64, String)> =
        res.body["errors"].as_array().unwrap().iter().map(|e| (e["row"].as_u64().unwrap(), e["field"].as_str().unwrap().to_owned())).collect();
    assert_eq!(errors, [(3, "status".to_owned()), (4, "due".to_owned())], "{}", res.body);
    // Cells that parse, with an assignee who is not a member.
    let stranger = format!("{CSV_HEADER}Fine,,,,{},,\nAlso fine,,,,stranger@example.com,,\n", member.email);
    let res = w.send(csv_call(&w, &project, stranger)).await.expect_problem(422, "validation-failed");
    assert_eq!((res.body["errors"][0]["row"].clone(), res.body["errors"][0]["field"].clone()), (json!(3), json!("assignee")));
    assert!(w.all_pages(&w.owner, &w.tasks(&project), &[], 50).await.is_empty(), "nothing imported");

    let rows: String = (0..70)
        .map(|i| format!("Task {i},,{},medium,{},2026-12-{:02},import;batch\n", if i % 2 == 0 { "todo" } else { "blocked" }, member.email, i % 28 + 1))
        .collect();
    let good = format!("{CSV_HEADER}{rows}");
    let first = w.send(csv_call(&w, &project, good.clone()).header("Idempotency-Key", "upload-1")).await.expect(201);
    assert_eq!(first.body, json!({ "imported": 70, "replayed": false }));
    let again = w.send(csv_call(&w, &project, good.clone()).header("Idempotency-Key", "upload-1")).await.expect(201);
    assert_eq!(again.body, json!({ "imported": 70, "replayed": true }));
    let todo = w.all_pages(&w.owner, &w.tasks(&project), &[("status", "todo")], 100).await;
    assert_eq!(todo.len(), 35);
    assert_eq!(w.all_pages(&w.owner, &w.tasks(&project), &[], 100).await.len(), 70, "a retried upload doubles nothing");
    // The column keeps the file's order.
    let titles: Vec<String> = w.send(ApiCall::get(&w.tasks(&project)).by(&w.owner).query("status", "todo").query("limit", "3")).await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles, ["Task 0", "Task 2", "Task 4"]);
    let mine = w.all_pages(&member, &format!("/orgs/{}/tasks", w.org), &[("assignee", "me")], 100).await;
    assert_eq!(mine.len(), 70);
    w.send(csv_call(&w, &project, format!("{CSV_HEADER}Other,,,,,,\n")).header("Idempotency-Key", "upload-1")).await.expect_problem(409, "conflict");

    // Too many rows: refused before the file is read to its end.
    let huge: String = std::iter::once(CSV_HEADER.to_owned()).chain((0..100_000).map(|i| format!("t{i},,,,,,\n"))).collect();
    assert!(huge.len() < usize::try_from(Plan::Starter.limits().import_bytes).unwrap());
    w.send(csv_call(&w, &project, huge)).await.expect_problem(413, "payload-too-large");
    // Not CSV.
    w.send(ApiCall::post(&format!("{}/import", w.tasks(&project))).by(&w.owner).json(json!({}))).await.expect_problem(415, "unsupported-media-type");
}

#[tokio::test]
async fn an_import_with_a_different_assignee_on_every_row_fits_its_transactions() {
    // Each row writes a task, its history entry and its domain event, and each distinct
    // assignee adds a membership check: the rows per transaction keep that under 100 items.
    let w = World::new(Plan::Professional).await;
    let mut emails = Vec::new();
    for i in 0..30 {
        emails.push(w.join(&format!("assignee{i}"), Role::Member).await.email);
    }
    let project = w.project("Spread").await;
    let rows: String = (0..60).map(|i| format!("Row {i},,,,{},,\n", emails[i % emails.len()])).collect();
    let res = w.send(csv_call(&w, &project, format!("{CSV_HEADER}{rows}"))).await.expect(201);
    assert_eq!(res.body, json!({ "imported": 60, "replayed": false }));
    assert_eq!(w.all_pages(&w.owner, &w.tasks(&project), &[], 100).await.len(), 60);
}
