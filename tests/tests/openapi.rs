//! The OpenAPI document is generated from the route tables: a route it lacks fails here.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// Routes that take no body although their method could carry one.
const BODYLESS: &[(&str, &str)] = &[
    ("POST", "/orgs/{orgId}/invites/{inviteId}/resend"),
    ("POST", "/admin/orgs/{orgId}/suspend"),
    ("POST", "/admin/orgs/{orgId}/reactivate"),
    ("POST", "/admin/orgs/{orgId}/purge"),
    ("POST", "/orgs/{orgId}/projects/{projectId}/archive"),
    ("POST", "/orgs/{orgId}/projects/{projectId}/restore"),
    ("POST", "/orgs/{orgId}/notifications/{notificationId}/read"),
    ("POST", "/orgs/{orgId}/notifications/read-all"),
    ("POST", "/orgs/{orgId}/exports"),
    ("POST", "/me/export"),
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
            assert_eq!(op["responses"]["default"]["$ref"], "#/components/responses/Problem", "{method} {path}: problem schema");
            // API Gateway's authorizer answers 401 itself, as application/json; a public route
            // has no authorizer, and says so with empty security.
            if path == "/unsubscribe" {
                assert!(op["responses"]["401"].is_null() && op["security"] == json!([]), "{method} {path}: public");
            } else {
                assert_eq!(op["responses"]["401"]["$ref"], "#/components/responses/Unauthorized", "{method} {path}: 401");
            }
            let tag = op["tags"][0].as_str().unwrap();
            assert!(
                doc["tags"].as_array().unwrap().iter().any(|t| t["name"] == tag && t["description"].is_string()),
                "{method} {path}: tag {tag} is not listed"
            );
        }
    }
    let declared: BTreeSet<(String, String)> = routes.iter().map(|r| (r.method.to_string(), r.path.to_owned())).collect();
    assert_eq!(documented, declared, "the document and the route tables disagree");

    for r in &routes {
        let op = &doc["paths"][r.path][r.method.as_str().to_ascii_lowercase()];
        let takes_body = matches!(r.method.as_str(), "POST" | "PATCH" | "PUT") && !BODYLESS.contains(&(r.method.as_str(), r.path));
        assert_eq!(op["requestBody"].is_object(), takes_body, "{} {}: request body", r.method, r.path);
        let success = op["responses"].as_object().unwrap().keys().find(|k| k.starts_with('2') || k.starts_with('3')).unwrap().clone();
        if success == "302" {
            assert!(op["responses"]["302"]["headers"]["Location"].is_object(), "{} {}: a redirect documents its Location", r.method, r.path);
        } else if success != "204" {
            let media = r.response_media;
            assert!(op["responses"][&success]["content"][media]["schema"].is_object(), "{} {}: response schema", r.method, r.path);
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
    let responses = doc["components"]["responses"].as_object().unwrap();
    for r in all {
        if let Some(name) = r.strip_prefix("#/components/responses/") {
            assert!(responses.contains_key(name), "dangling {r}");
            continue;
        }
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected ref {r}"));
        assert!(schemas.contains_key(name), "dangling {r}");
    }
    // strict input: request bodies refuse unknown properties, as the handlers do
    assert_eq!(schemas["CreateOrg"]["additionalProperties"], false);
}

#[test]
fn errors_are_documented_as_they_are_answered() {
    let doc = local_runner::server::openapi();
    let responses = &doc["components"]["responses"];
    let problem = json!({"$ref": "#/components/schemas/ApiError"});
    // a problem's `errors` (and `detail`) are left out when empty
    let api_error = &doc["components"]["schemas"]["ApiError"];
    let required: Vec<&str> = api_error["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(required, ["type", "title", "status"], "{api_error}");
    // API Gateway's own answers: {"message": …} as application/json
    assert_eq!(responses["Unauthorized"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/GatewayMessage");
    assert_eq!(doc["components"]["schemas"]["GatewayMessage"]["required"], json!(["message"]));
    for (name, r) in responses.as_object().unwrap() {
        assert_eq!(r["content"]["application/problem+json"]["schema"], problem, "{name}");
    }
    let op = |path: &str, method: &str| doc["paths"][path][method]["responses"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(op("/orgs", "post"), ["201", "400", "401", "409", "413", "415", "422", "429", "default"]);
    assert_eq!(op("/orgs/{orgId}", "patch"), ["200", "400", "401", "403", "404", "409", "412", "413", "415", "422", "429", "default"]);
    assert_eq!(op("/me", "get"), ["200", "401", "429", "default"]);
    assert_eq!(op("/orgs/{orgId}/members", "get"), ["200", "400", "401", "403", "404", "422", "429", "default"]);
    // headers the handlers always send
    let created = &doc["paths"]["/orgs"]["post"]["responses"]["201"]["headers"];
    assert!(created["Location"]["required"] == true && created["ETag"]["required"] == true, "{created}");
}

#[test]
fn parameters_say_what_the_api_accepts() {
    let doc = local_runner::server::openapi();
    let params = |path: &str, method: &str| doc["paths"][path][method]["parameters"].as_array().unwrap().clone();
    let org_id = params("/orgs/{orgId}", "get").into_iter().find(|p| p["name"] == "orgId").unwrap();
    let pattern = org_id["schema"]["pattern"].as_str().unwrap();
    assert_eq!(pattern, api::openapi::ULID_PATTERN);
    let task_id = params("/orgs/{orgId}/projects/{projectId}/tasks/{taskId}", "get").into_iter().find(|p| p["name"] == "taskId").unwrap();
    assert_eq!(task_id["schema"]["pattern"], api::openapi::ULID_PATTERN);
    // the CSV import takes text/csv, and only that
    let import = &doc["paths"]["/orgs/{orgId}/projects/{projectId}/tasks/import"]["post"]["requestBody"]["content"];
    assert_eq!(import.as_object().unwrap().keys().collect::<Vec<_>>(), ["text/csv"]);
    let unsubscribe = &doc["paths"]["/unsubscribe"]["post"];
    assert_eq!(unsubscribe["requestBody"]["content"].as_object().unwrap().keys().collect::<Vec<_>>(), ["application/x-www-form-urlencoded"]);
    assert!(unsubscribe["responses"]["200"]["content"]["text/html"].is_object());
    assert!(params("/unsubscribe", "get").iter().any(|p| p["name"] == "token" && p["in"] == "query"));
    let status = params("/orgs/{orgId}/invites", "get").into_iter().find(|p| p["name"] == "status").unwrap();
    assert_eq!(status["schema"]["enum"], json!(["pending", "accepted", "declined", "revoked", "expired"]));
    let action = params("/orgs/{orgId}/audit", "get").into_iter().find(|p| p["name"] == "action").unwrap();
    assert_eq!(action["schema"]["enum"], json!(audit::EVENT_KINDS));
    // tags come from the route tables, in their order
    let tags: Vec<&str> = doc["tags"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(tags.len(), 13, "{tags:?}");
    for t in [
        "organizations",
        "members",
        "profile",
        "platform",
        "invitations",
        "projects",
        "tasks",
        "comments",
        "notifications",
        "files",
        "chat",
        "audit",
        "exports",
    ] {
        assert!(tags.contains(&t), "{t} in {tags:?}");
    }
}

/// Links let sequences be followed (Schemathesis' stateful phase fuzzes them): create an org →
/// invite → resend or revoke; list the members → change a role → remove. Every link names an
/// operation that exists and supplies exactly its path parameters, each from the request's
/// path or from a property the response's schema has.
#[test]
fn links_chain_the_operations_on_what_an_answer_names() {
    let doc = local_runner::server::openapi();
    let links = |path: &str, method: &str, status: &str| -> Vec<String> {
        doc["paths"][path][method]["responses"][status]["links"].as_object().map(|l| l.keys().cloned().collect()).unwrap_or_default()
    };
    for (path, method, status, wanted) in [
        ("/orgs", "post", "201", vec!["getOrg", "updateOrg", "deleteOrg", "createInvite", "listMembers"]),
        ("/orgs/{orgId}/invites", "post", "201", vec!["revokeInvite", "resendInvite"]),
        ("/orgs/{orgId}/members", "get", "200", vec!["changeMemberRole", "removeMember"]),
    ] {
        let got = links(path, method, status);
        for w in wanted {
            assert!(got.iter().any(|g| g == w), "{method} {path}: no link to {w} in {got:?}");
        }
    }
    let mut operations = std::collections::HashMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (_, op) in item.as_object().unwrap() {
            operations.insert(op["operationId"].as_str().unwrap().to_owned(), path.clone());
        }
    }
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (_, op) in item.as_object().unwrap() {
            for (_, response) in op["responses"].as_object().unwrap() {
                for (name, link) in response["links"].as_object().into_iter().flatten() {
                    count += 1;
                    let target = operations.get(link["operationId"].as_str().unwrap()).unwrap_or_else(|| panic!("{path}: link {name} to nothing"));
                    let mut wanted: Vec<&str> = target.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
                    let mut given: Vec<&str> = link["parameters"].as_object().unwrap().keys().map(String::as_str).collect();
                    wanted.sort_unstable();
                    given.sort_unstable();
                    assert_eq!(given, wanted, "{path} → {target}");
                    for (param, expression) in link["parameters"].as_object().unwrap() {
                        let e = expression.as_str().unwrap();
                        let from_path = e.strip_prefix("$request.path.").is_some_and(|p| path.contains(&format!("{{{p}}}")));
                        assert!(from_path || e.starts_with("$response.body#/"), "{path} → {target}: {param} = {e}");
                    }
                }
            }
        }
    }
    assert!(count > 50, "{count} links");
}

/// The typed client (`shared/client`) is generated from a copy of the document: `make client`
/// writes it; a copy that differs from the document the routes make fails here.
#[test]
fn the_clients_copy_of_the_document_is_current() {
    let root = testkit::endpoint::repo_root().unwrap();
    let text = std::fs::read_to_string(root.join(local_runner::server::CLIENT_OPENAPI)).expect("shared/client/openapi.json (make client)");
    let copy: Value = serde_json::from_str(&text).unwrap();
    assert!(copy == local_runner::server::openapi(), "shared/client/openapi.json is stale: run `make client`");
}
