//! The OpenAPI document is generated from the route tables: a route it lacks fails here.

use std::collections::BTreeSet;

use serde_json::Value;

/// Routes that take no body although their method could carry one.
const BODYLESS: &[(&str, &str)] = &[
    ("POST", "/orgs/{orgId}/invites/{inviteId}/resend"),
    ("POST", "/admin/orgs/{orgId}/suspend"),
    ("POST", "/admin/orgs/{orgId}/reactivate"),
    ("POST", "/admin/orgs/{orgId}/purge"),
];

#[test]
fn every_route_is_documented_with_its_schemas() {
    let doc = local_runner::server::openapi();
    assert_eq!(doc["openapi"], "3.1.0");
    let routes: Vec<api::RouteInfo> = registry::routes().into_iter().map(|(_, r)| r).collect();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((method.to_ascii_uppercase(), path.clone()));
            assert!(op["operationId"].is_string() && op["summary"].is_string(), "{method} {path}");
            assert!(op["responses"]["default"]["content"]["application/problem+json"].is_object(), "{method} {path}: problem schema");
        }
    }
    let declared: BTreeSet<(String, String)> = routes.iter().map(|r| (r.method.to_string(), r.path.to_owned())).collect();
    assert_eq!(documented, declared, "the document and the route tables disagree");

    for r in &routes {
        let op = &doc["paths"][r.path][r.method.as_str().to_ascii_lowercase()];
        let takes_body = matches!(r.method.as_str(), "POST" | "PATCH" | "PUT") && !BODYLESS.contains(&(r.method.as_str(), r.path));
        assert_eq!(op["requestBody"].is_object(), takes_body, "{} {}: request body", r.method, r.path);
        let success = op["responses"].as_object().unwrap().keys().find(|k| k.as_str() != "default").unwrap().clone();
        if success != "204" {
            assert!(op["responses"][&success]["content"]["application/json"]["schema"].is_object(), "{} {}: response schema", r.method, r.path);
        }
        for param in r.path.split('/').filter(|s| s.starts_with('{')) {
            let name = param.trim_matches(|c| c == '{' || c == '}');
            assert!(op["parameters"].as_array().unwrap().iter().any(|p| p["name"] == name && p["in"] == "path"), "{} {}: {name}", r.method, r.path);
        }
    }
}

#[test]
fn every_schema_reference_resolves() {
    let doc = local_runner::server::openapi();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("Org") && schemas.contains_key("ApiError"), "{:?}", schemas.keys().collect::<Vec<_>>());
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected ref {r}"));
        assert!(schemas.contains_key(name), "dangling {r}");
    }
    // strict input: request bodies refuse unknown properties, as the handlers do
    assert_eq!(schemas["CreateOrg"]["additionalProperties"], false);
}
