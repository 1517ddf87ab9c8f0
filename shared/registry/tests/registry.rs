//! The registry is the one list of functions: every crate under `functions/` is in it (and
//! nothing else is), and the manifests the infrastructure and the Makefile read are current.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::BTreeSet;

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
        let invoked_by_events =
            f.sources.dynamodb_stream.is_some() || f.sources.s3.is_some() || !f.sources.schedules.is_empty() || !f.sources.queues.is_empty();
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
