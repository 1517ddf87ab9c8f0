//! The registry is the one list of functions: every crate under `functions/` is in it (and
//! nothing else is), and the manifests the infrastructure and the Makefile read are current.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::BTreeSet;

use serde_json::json;

fn root() -> std::path::PathBuf {
    testkit::endpoint::repo_root().expect("the tests run inside the repository")
}

#[test]
fn every_function_crate_has_an_entry_and_every_entry_a_crate() {
    let crates: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .expect("functions/")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let entries: BTreeSet<String> = registry::all().iter().map(|f| f.name.to_owned()).collect();
    let missing: Vec<_> = crates.difference(&entries).collect();
    let orphans: Vec<_> = entries.difference(&crates).collect();
    assert!(missing.is_empty(), "function crates without a registry entry: {missing:?} (add them to shared/registry/src/lib.rs)");
    assert!(orphans.is_empty(), "registry entries without a crate under functions/: {orphans:?}");
}

#[test]
fn every_function_crate_builds_the_binary_its_entry_names() {
    for f in registry::all() {
        let manifest = std::fs::read_to_string(root().join("functions").join(f.name).join("Cargo.toml")).expect("Cargo.toml");
        assert!(manifest.contains(&format!("name = \"{}\"", f.name)), "functions/{}/Cargo.toml names another package", f.name);
        assert!(root().join("functions").join(f.name).join("src/main.rs").is_file(), "functions/{} has no src/main.rs (its Lambda binary)", f.name);
    }
}

#[test]
fn sources_agree_with_what_each_function_provides() {
    for f in registry::all() {
        assert_eq!(f.sources.http, f.routes.is_some(), "{}: `http` and a route table go together", f.name);
        let invoked_by_events = f.sources.dynamodb_stream.is_some()
            || f.sources.s3.is_some()
            || !f.sources.schedules.is_empty()
            || !f.sources.queues.is_empty()
            || f.sources.domain_events.is_some();
        if f.sources.http || invoked_by_events {
            assert!(f.handlers.is_some(), "{}: an invoked function builds its handlers", f.name);
        }
        if let Some(stream) = &f.sources.dynamodb_stream {
            assert!(!stream.filters.is_empty(), "{}: a stream consumer filters its records", f.name);
            assert!(stream.filters.iter().all(serde_json::Value::is_object), "{}: filters are pattern objects", f.name);
        }
        for s in &f.sources.schedules {
            assert!(s.expression.starts_with("rate(") || s.expression.starts_with("cron("), "{}: schedule {} is {}", f.name, s.id, s.expression);
        }
        assert!(f.memory_mb >= 128 && f.timeout_seconds >= 1, "{}: sizing", f.name);
    }
    let names: BTreeSet<_> = registry::all().iter().map(|f| f.name).collect();
    assert_eq!(names.len(), registry::all().len(), "names are unique");
}

#[test]
fn subscribed_domain_events_reach_their_subscribers_through_the_one_fan_out() {
    let all = registry::all();
    let fan_outs: Vec<_> = all.iter().filter(|f| f.sources.fan_out).collect();
    assert!(fan_outs.len() <= 1, "one function fans the domain events out, else each event reaches a subscriber twice");
    for f in &all {
        // Only the fan-out is told the subscribers' queues and may send to them.
        let fans = f.sources.fan_out;
        assert_eq!(f.environment.event_queues, fans, "{}: EVENT_QUEUES goes with fan_out", f.name);
        assert_eq!(f.permissions.send_to_event_queues, fans, "{}: sending to the subscribers' queues goes with fan_out", f.name);
    }
    let known: Vec<&str> = store::EventKind::ALL.iter().map(|k| k.as_str()).collect();
    let subscribers: Vec<_> = all.iter().filter_map(|f| f.sources.domain_events.as_ref().map(|s| (f, s))).collect();
    for (f, sub) in &subscribers {
        assert!(!sub.kinds.is_empty(), "{}: a subscription names its kinds", f.name);
        for kind in &sub.kinds {
            assert!(known.contains(kind), "{}: {kind} is no kind the store writes ({known:?})", f.name);
        }
        let other_queues = f.sources.queues.iter().map(|q| q.id).chain(f.sources.s3.as_ref().map(|s| s.queue.id));
        assert!(!other_queues.into_iter().any(|id| id == sub.queue.id), "{}: the events' queue {} has an id of its own", f.name, sub.queue.id);
        assert!(sub.queue.visibility_timeout_seconds >= 6 * f.timeout_seconds, "{}: visibility timeout 6 times the function's", f.name);
    }
    if subscribers.is_empty() {
        return;
    }
    let fan_out = fan_outs.first().expect("subscribers need a fan-out");
    let stream = fan_out.sources.dynamodb_stream.as_ref().expect("the fan-out reads the table's stream");
    assert!(stream.filters.len() <= 5, "{}: {} filters; a mapping takes at most 5", fan_out.name, stream.filters.len());
    // One filter, on the INSERTs of event items of exactly the subscribed kinds.
    let kinds = registry::subscribed_kinds(&all);
    let mut expected: Vec<&str> = subscribers.iter().flat_map(|(_, s)| s.kinds.iter().copied()).collect();
    expected.sort_unstable();
    expected.dedup();
    assert_eq!(kinds, expected);
    let on_events: Vec<_> = stream.filters.iter().filter(|p| p.pointer("/dynamodb/NewImage/_type/S/0") == Some(&json!("event"))).collect();
    assert_eq!(
        on_events,
        [&json!({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"_type": {"S": ["event"]}, "kind": {"S": kinds}}}})],
        "{}: one filter for the subscribed events",
        fan_out.name
    );
}

#[test]
fn without_subscribers_the_fan_out_takes_no_events() {
    let all: Vec<_> = registry::all().into_iter().filter(|f| f.sources.domain_events.is_none()).collect();
    assert!(registry::subscribed_kinds(&all).is_empty());
    assert_eq!(registry::fan_out_filter(&all), None);
    assert_eq!(registry::fan_out_filter(&[]), None);
}

#[test]
fn the_committed_manifests_are_current() {
    for (file, text) in [("infra/functions.json", registry::render_functions()), ("infra/routes.json", registry::render_routes())] {
        let committed = std::fs::read_to_string(root().join(file)).unwrap_or_default();
        assert!(committed == text, "{file} is stale: run `make manifest`");
    }
}

#[test]
fn every_route_is_served_by_exactly_one_function() {
    let mut seen = BTreeSet::new();
    for (function, r) in registry::routes() {
        assert!(seen.insert((r.method.as_str().to_owned(), r.path)), "{} {} is declared twice ({function})", r.method, r.path);
    }
}

/// The names in a crate's `[dependencies]` (not its dev-dependencies).
fn dependencies(crate_dir: &str) -> Vec<String> {
    let manifest = std::fs::read_to_string(root().join(crate_dir).join("Cargo.toml")).expect("Cargo.toml");
    let Some(start) = manifest.find("\n[dependencies]") else { return Vec::new() };
    let section = &manifest[start + "\n[dependencies]".len()..];
    let section = section.split("\n[").next().unwrap_or("");
    section.lines().filter_map(|l| l.split(['=', '.']).next()).map(str::trim).filter(|n| !n.is_empty() && !n.starts_with('#')).map(str::to_owned).collect()
}

#[test]
fn dependencies_point_one_way() {
    let functions: Vec<&str> = registry::all().iter().map(|f| f.name).collect();
    // The shared crates never depend on a function, the runner or the registry (testkit
    // included: the local endpoint's launcher lives in it, and every test links it).
    for shared in ["shared/domain", "shared/telemetry", "shared/store", "shared/api", "shared/mail", "shared/testkit"] {
        let deps = dependencies(shared);
        for f in functions.iter().chain(&["local-runner", "registry", "lambda-emulator"]) {
            assert!(!deps.iter().any(|d| d == f), "{shared} depends on {f}");
        }
    }
    // A function depends on no other function.
    for f in &functions {
        let deps = dependencies(&format!("functions/{f}"));
        for other in functions.iter().filter(|o| *o != f) {
            assert!(!deps.iter().any(|d| d == other), "functions/{f} depends on {other}");
        }
        assert!(!deps.iter().any(|d| d == "testkit" || d == "local-runner" || d == "registry"), "functions/{f} links test or runner code");
    }
    // The Cognito triggers answer within 5 s and link no web framework.
    let triggers = dependencies("functions/cognito-triggers");
    for web in ["api", "axum", "lambda_http", "tower"] {
        assert!(!triggers.iter().any(|d| d == web), "cognito-triggers depends on {web}");
    }
}
