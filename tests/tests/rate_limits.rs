//! Rate limits on the local endpoint, through every function's routes as the local runner
//! serves them: exact under 50 concurrent callers, refilled when the clock moves on, an org's
//! budget untouched by strangers, raised by an operator's override, expensive classes apart
//! from the general budget. The store here has the plans' own limits (other tests run with
//! generous ones).

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::time::Duration;

use axum::Router;
use serde_json::{Value, json};
use testkit::{ApiCall, ApiResponse, Caller};

mod common;
use common::Fixture;

/// The fixture's org's plan.
const PLAN: domain::Plan = domain::Plan::Starter;

struct World {
    router: Router,
    store: store::Store,
    clock: domain::Clock,
    f: Fixture,
}

async fn world() -> World {
    // standing still, so that no window ends in the middle of a burst
    let clock = domain::Clock::fixed(time::OffsetDateTime::now_utc());
    let store = testkit::fresh_store().await.with_limits(domain::PlatformLimits::default()).with_clock(clock.clone());
    let config = testkit::sdk_config().await;
    local_runner::provision::mail_identity(&config).await;
    let platform = local_runner::provision::platform(&config, store.clone(), "https://app.example.com", Default::default());
    let (router, _) = local_runner::server::functions(&platform).unwrap();
    let f = Fixture::new(&store).await;
    World { router, store, clock, f }
}

impl World {
    async fn send_all(&self, calls: Vec<ApiCall>) -> Vec<ApiResponse> {
        futures::future::join_all(calls.iter().map(|c| c.send(&self.router))).await
    }

    fn import(&self, by: &Caller, title: &str) -> ApiCall {
        self.f.call("POST", "/orgs/{orgId}/projects/{projectId}/tasks/import", Some(json!(format!("title\n{title}\n")))).by(by)
    }

    fn list_projects(&self, by: &Caller) -> ApiCall {
        self.f.call("GET", "/orgs/{orgId}/projects", None).by(by)
    }

    async fn override_limits(&self, body: Value) -> ApiResponse {
        self.f.call("PUT", "/admin/orgs/{orgId}/limits", Some(body)).by(&self.f.platform).send(&self.router).await
    }
}

fn count(responses: &[ApiResponse], status: u16) -> usize {
    responses.iter().filter(|r| r.status == status).count()
}

/// A 429 is a `rate-limited` problem with `Retry-After` within the minute and the headers of
/// the bucket that refused, with nothing left in it.
fn assert_refused(r: &ApiResponse, policy: &str) {
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert!(r.body["type"].as_str().unwrap().ends_with("/rate-limited"), "{}", r.body);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert!(r.header("ratelimit-policy").unwrap().starts_with(&format!("\"{policy}\";q=")), "{:?}", r.header("ratelimit-policy"));
    assert_eq!(r.header("ratelimit").unwrap(), format!("\"{policy}\";r=0;t={retry}"));
}

#[tokio::test]
async fn the_plans_import_limit_holds_under_50_concurrent_callers_and_refills_on_time() {
    let w = world().await;
    let free = PLAN.limits().rate_limits;
    let user_imports = usize::try_from(free.user.imports).unwrap();
    // 50 imports at once by one member: exactly the plan's per-member imports a minute pass
    let calls = (0..50).map(|i| w.import(&w.f.owner, &format!("Task {i}"))).collect();
    let answers = w.send_all(calls).await;
    assert_eq!(count(&answers, 201), user_imports, "{:?}", answers.iter().map(|r| r.status).collect::<Vec<_>>());
    assert_eq!(count(&answers, 429), 50 - user_imports);
    answers.iter().filter(|r| r.status == 429).for_each(|r| assert_refused(r, "user-imports"));
    for ok in answers.iter().filter(|r| r.status == 201) {
        assert!(ok.header("ratelimit-policy").is_some() && ok.header("ratelimit").is_some(), "success carries the headers");
    }
    // nothing of a refused import happened: the project holds exactly the imported tasks
    let tasks = w.f.call("GET", "/orgs/{orgId}/projects/{projectId}/tasks", None).by(&w.f.owner).send(&w.router).await.expect(200);
    let imported = tasks.body["items"].as_array().unwrap().iter().filter(|t| t["title"].as_str().unwrap().starts_with("Task ")).count();
    assert_eq!(imported, user_imports);

    // the expensive class is apart: the general budget still serves
    let r = w.list_projects(&w.f.owner).send(&w.router).await.expect(200);
    assert!(r.header("ratelimit").is_some());
    // another member has a budget of their own; the org's is the plan's org-wide one
    let member_answers = w.send_all((0..10).map(|i| w.import(&w.f.member, &format!("M {i}"))).collect()).await;
    let org_left = usize::try_from(free.org.imports).unwrap() - user_imports;
    assert_eq!(count(&member_answers, 201), user_imports.min(org_left));

    // a minute later the buckets are full again
    assert!(w.clock.advance(Duration::from_secs(60)));
    w.import(&w.f.owner, "After the minute").send(&w.router).await.expect(201);
}

#[tokio::test]
async fn the_general_limit_is_exact_within_one_request_under_50_concurrent_callers() {
    let w = world().await;
    let mut limits = PLAN.limits().rate_limits;
    limits.user.requests = 12;
    w.override_limits(json!({"limits": limits})).await.expect(200);
    let answers = w.send_all((0..50).map(|_| w.list_projects(&w.f.viewer)).collect()).await;
    let ok = count(&answers, 200);
    assert!((11..=13).contains(&ok), "{ok} of 50 passed a limit of 12");
    assert_eq!(ok, 12, "fixed windows are exact");
    answers.iter().filter(|r| r.status == 429).for_each(|r| assert_refused(r, "user"));
    // the successes count down
    let mut left: Vec<u64> = answers
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.header("ratelimit").unwrap().split(";r=").nth(1).unwrap().split(';').next().unwrap().parse().unwrap())
        .collect();
    left.sort_unstable();
    assert_eq!(left, (0..12).collect::<Vec<u64>>());
    w.clock.advance(Duration::from_secs(60));
    w.list_projects(&w.f.viewer).send(&w.router).await.expect(200);
}

#[tokio::test]
async fn a_stranger_hammering_an_org_spends_only_their_own_budget() {
    let w = world().await;
    let mut limits = PLAN.limits().rate_limits;
    limits.org.requests = 5;
    w.override_limits(json!({"limits": limits})).await.expect(200);
    let strangers = w.send_all((0..50).map(|_| w.list_projects(&w.f.other)).collect()).await;
    assert_eq!(count(&strangers, 404), strangers.iter().filter(|r| r.status != 429).count(), "a stranger sees nothing");
    for r in strangers.iter().filter(|r| r.status == 404) {
        assert!(r.header("ratelimit-policy").unwrap().starts_with("\"user\""), "charged to the stranger: {:?}", r.header("ratelimit-policy"));
    }
    // the org's 5 are intact for its members
    let members = w.send_all((0..8).map(|_| w.list_projects(&w.f.owner)).collect()).await;
    assert_eq!(count(&members, 200), 5);
    members.iter().filter(|r| r.status == 429).for_each(|r| assert_refused(r, "org"));
}

#[tokio::test]
async fn org_claims_decide_when_the_org_is_counted_and_a_refusal_gives_the_count_back() {
    let w = world().await;
    let removed = w.f.target.identity().user_id.to_string();
    w.f.call("DELETE", &format!("/orgs/{{orgId}}/members/{removed}"), None).by(&w.f.owner).send(&w.router).await.expect(204);
    // from now on (a new window): the org's limit is 5 a minute
    let mut limits = PLAN.limits().rate_limits;
    limits.org.requests = 5;
    w.override_limits(json!({"limits": limits})).await.expect(200);
    w.clock.advance(Duration::from_secs(60));
    // a removed member's token still names the org: counted with the check, given back after it
    let former = w.send_all((0..20).map(|_| w.list_projects(&w.f.target)).collect()).await;
    assert_eq!(count(&former, 404), 20, "a former member sees nothing");
    // a token issued before its holder joined does not name the org: counted after the check
    let stale = Caller { orgs: Vec::new(), ..w.f.member.clone() };
    for _ in 0..2 {
        w.list_projects(&stale).send(&w.router).await.expect(200);
    }
    // the org's 5: 2 spent by the stale token, none by the former member
    let members = w.send_all((0..6).map(|_| w.list_projects(&w.f.owner)).collect()).await;
    assert_eq!(count(&members, 200), 3, "{:?}", members.iter().map(|r| r.status).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_operators_override_raises_the_limits_until_it_expires_and_is_recorded() {
    let w = world().await;
    let free = PLAN.limits().rate_limits;
    let answers = w.send_all((0..6).map(|i| w.import(&w.f.owner, &format!("A {i}"))).collect()).await;
    assert_eq!(count(&answers, 201), usize::try_from(free.user.imports).unwrap());

    // only operators; a bad body is a 422
    w.f.call("PUT", "/admin/orgs/{orgId}/limits", Some(json!({"multiplier": 5}))).by(&w.f.owner).send(&w.router).await.expect(403);
    w.override_limits(json!({"multiplier": 0})).await.expect_problem(422, "validation-failed");
    w.override_limits(json!({"multiplier": 2, "expiresAt": "2001-01-01T00:00:00Z"})).await.expect_problem(422, "validation-failed");

    let expires = domain::epoch_rfc3339(w.store.clock().epoch() + 3600).unwrap();
    let set = w.override_limits(json!({"multiplier": 5, "expiresAt": expires})).await.expect(200);
    assert_eq!(set.body["effective"]["user"]["imports"], free.user.imports * 5);
    assert_eq!(set.body["planLimits"]["user"]["imports"], free.user.imports);
    let read = w.f.call("GET", "/admin/orgs/{orgId}/limits", None).by(&w.f.platform).send(&w.router).await.expect(200);
    assert_eq!(read.body["override"]["multiplier"], 5);
    // the raised limit applies at once, in the same window
    let more = w.send_all((0..30).map(|i| w.import(&w.f.owner, &format!("B {i}"))).collect()).await;
    assert_eq!(count(&more, 201), usize::try_from(free.user.imports * 5 - free.user.imports).unwrap());
    // members see the limits in force with the usage
    let usage = w.f.call("GET", "/orgs/{orgId}/usage", None).by(&w.f.viewer).send(&w.router).await.expect(200);
    assert_eq!(usage.body["rateLimits"]["org"]["imports"], free.org.imports * 5);
    assert_eq!(usage.body["limits"]["rateLimits"]["org"]["imports"], free.org.imports);
    // expired: the plan's again
    w.clock.advance(Duration::from_secs(3601));
    let usage = w.f.call("GET", "/orgs/{orgId}/usage", None).by(&w.f.viewer).send(&w.router).await.expect(200);
    assert_eq!(usage.body["rateLimits"]["org"]["imports"], free.org.imports);

    // the change is a domain event
    let events: Vec<_> = testkit::scan_all(&w.store)
        .await
        .into_iter()
        .filter(|i| i.get("kind").and_then(|k| k.as_s().ok()).map(String::as_str) == Some("org.limits_changed"))
        .collect();
    assert_eq!(events.len(), 1, "one successful override, one event");
}

#[tokio::test]
async fn routes_outside_orgs_charge_the_callers_own_budget() {
    let w = world().await;
    let r = ApiCall::get("/me").by(&w.f.owner).send(&w.router).await.expect(200);
    let unscoped = domain::RateLimits::unscoped();
    assert_eq!(r.header("ratelimit-policy").unwrap(), format!("\"user\";q={};w=60", unscoped.requests));
    assert!(r.header("ratelimit").unwrap().starts_with(&format!("\"user\";r={};t=", unscoped.requests - 1)));
}
