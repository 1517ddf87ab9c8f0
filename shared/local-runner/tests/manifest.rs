//! `infra/routes.json` is what the route tables say (regenerate with `make routes`).

#[test]
fn the_committed_route_manifest_is_current() {
    let path = local_runner::local_aws::repo_root().join("infra/routes.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == local_runner::manifest::render(), "{} is stale: run `make routes`", path.display());
}
