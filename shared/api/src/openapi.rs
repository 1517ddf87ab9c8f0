//! The OpenAPI 3.1 document, generated from the route tables (never written by hand): every
//! route with its tag, parameters, request and response schemas and headers, the error
//! answers it can give, and the Cognito bearer token (`security: []` on a public route, which
//! has no authorizer).
//!
//! Error answers per operation: 429 everywhere and 401 everywhere but on public routes (API
//! Gateway answers them itself, as `{"message": …}` in `application/json`; the functions' own
//! 401 and 429 are problems); 400, 413, 415 and 422 where a body is taken; 400 and 422 for
//! listings and constrained query parameters; 403 for anything under an org or for platform
//! operators (the caller's role; not on public routes, which have no caller); 404 wherever a
//! path names something; 409 for every write (a concurrent change can win); whatever else the
//! route table declares; and `default`, a problem, for the rest (500, 503). Every problem is
//! `application/problem+json`.
//!
//! Request schemas describe what the functions accept (serde's deserialize side), response
//! schemas what they send (the serialize side), so a field the API omits when empty is not
//! required in an answer.

use std::collections::BTreeMap;

use schemars::generate::{Contract, SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::{ApiError, RouteInfo};

/// A ULID as the API issues them (org and invitation ids).
pub const ULID_PATTERN: &str = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$";
/// A user id: the Cognito `sub`, treated as opaque.
pub const USER_ID_PATTERN: &str = "^[A-Za-z0-9_-]{1,128}$";

/// The schema of a path parameter, by the API-wide name it has in every route.
fn path_parameter(name: &str) -> Value {
    match name {
        "orgId" => json!({"type": "string", "pattern": ULID_PATTERN, "description": "an organization id (ULID)"}),
        "inviteId" => json!({"type": "string", "pattern": ULID_PATTERN, "description": "an invitation id (ULID)"}),
        "projectId" => json!({"type": "string", "pattern": ULID_PATTERN, "description": "a project id (ULID)"}),
        "taskId" => json!({"type": "string", "pattern": ULID_PATTERN, "description": "a task id (ULID)"}),
        "commentId" => json!({"type": "string", "pattern": ULID_PATTERN, "description": "a comment id (ULID)"}),
        "notificationId" => json!({"type": "string", "pattern": ULID_PATTERN, "description": "a notification id (ULID)"}),
        "userId" => json!({"type": "string", "pattern": USER_ID_PATTERN, "description": "a user id (the Cognito sub)"}),
        _ => json!({"type": "string"}),
    }
}

/// The reusable error answers, by status: (name in `components/responses`, description).
const ERRORS: &[(u16, &str, &str)] = &[
    (
        400,
        "BadRequest",
        "Malformed request: a body that is not JSON or has unknown fields, an unknown query parameter, a cursor or If-Match this API did not issue",
    ),
    (401, "Unauthorized", "No valid token: API Gateway's authorizer answers `{\"message\": \"Unauthorized\"}` as application/json"),
    (
        403,
        "Forbidden",
        "The caller's role does not allow this, the organization is suspended, the email is not verified, or the route is for platform operators",
    ),
    (404, "NotFound", "Nothing by this id that the caller may see"),
    (409, "Conflict", "Conflicts with the current state: a plan limit, the last owner, something that changed meanwhile"),
    (412, "PreconditionFailed", "If-Match names a version that is no longer current"),
    (413, "PayloadTooLarge", "The body is over 64 KiB (a CSV import: over the plan's size or row limit)"),
    (415, "UnsupportedMediaType", "The body is not of the media type the operation takes (application/json; text/csv for imports)"),
    (422, "ValidationFailed", "Invalid input; `errors` names every bad field"),
    (
        429,
        "TooManyRequests",
        "Too many requests: a limit of the API (a problem with Retry-After) or API Gateway's throttling (`{\"message\": \"Too Many Requests\"}`)",
    ),
    (503, "ServiceUnavailable", "A service the operation depends on (the model, storage) is unavailable or timed out; a problem with Retry-After"),
];

/// The error statuses `route` can answer besides `default`.
pub fn error_statuses(route: &RouteInfo) -> Vec<u16> {
    // A public route has no authorizer to refuse a token, and no caller whose role to check.
    let mut statuses = if route.public { vec![429] } else { vec![401, 429] };
    let takes_body = route.request.is_some();
    let has_query = route.paginated || !route.query.is_empty();
    if takes_body {
        statuses.extend([400, 413, 415, 422]);
    }
    if has_query {
        statuses.extend([400, 422]);
    }
    if !route.public && (route.path.contains("{orgId}") || route.path.starts_with("/admin/")) {
        statuses.push(403);
    }
    if route.path.contains('{') {
        statuses.push(404);
    }
    if route.method != http::Method::GET {
        statuses.push(409);
    }
    statuses.extend(&route.errors);
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

fn generator(contract: Contract) -> SchemaGenerator {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "#/components/schemas/".into();
    settings.contract = contract;
    settings.into_generator()
}

/// The document for `routes`.
pub fn document(title: &str, version: &str, routes: &[RouteInfo]) -> Value {
    // Requests as the functions read them, answers as they write them.
    let mut requests = generator(Contract::Deserialize);
    let mut answers = generator(Contract::Serialize);
    let problem = answers.subschema_for::<ApiError>();

    let mut paths: Map<String, Value> = Map::new();
    let mut tags: Vec<Value> = Vec::new();
    let mut bodies: Vec<(String, String, &str)> = Vec::new();
    for route in routes {
        let mut parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": path_parameter(name)}))
            .collect();
        if route.paginated {
            parameters.push(json!({"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}, "description": "page size; values over 100 count as 100"}));
            parameters.push(json!({"name": "cursor", "in": "query", "required": false, "schema": {"type": "string"}, "description": "nextCursor of the previous page; absent or empty for the first page"}));
        }
        for name in route.query {
            let mut schema = json!({"type": "string"});
            if let Some((_, values)) = route.query_values.iter().find(|(n, _)| n == name) {
                schema["enum"] = json!(values);
            }
            parameters.push(json!({"name": name, "in": "query", "required": false, "schema": schema}));
        }
        let (status, body) = route.response;
        let mut success = match body {
            Some(schema) => {
                let mut content = Map::new();
                content.insert(route.response_media.to_owned(), json!({"schema": schema(&mut answers)}));
                if let Some(events) = route.event_stream {
                    content.insert("text/event-stream".to_owned(), json!({"schema": {"type": "string", "description": events}}));
                }
                json!({"description": "Success", "content": content})
            }
            None if status == 302 => json!({"description": "Found: the answer is at Location"}),
            None => json!({"description": "Success, no content"}),
        };
        if !route.response_headers.is_empty() {
            let headers: Map<String, Value> = route
                .response_headers
                .iter()
                .map(|(name, meaning)| ((*name).to_owned(), json!({"description": meaning, "required": true, "schema": {"type": "string"}})))
                .collect();
            success["headers"] = Value::Object(headers);
        }
        if !route.public {
            let headers = success.as_object_mut().map(|o| o.entry("headers").or_insert_with(|| json!({})));
            if let Some(Value::Object(headers)) = headers {
                headers.extend(rate_limit_headers());
            }
        }
        let mut responses = Map::new();
        responses.insert(status.to_string(), success);
        if route.or_link {
            let mut link = json!({
                "description": "The link itself, to a request whose Accept names application/json (a script's fetch cannot follow the redirect across origins)",
                "content": {"application/json": {"schema": answers.subschema_for::<crate::Link>()}},
            });
            if !route.public {
                link["headers"] = Value::Object(rate_limit_headers().into_iter().collect());
            }
            responses.insert("200".into(), link);
        }
        for code in error_statuses(route) {
            let name = ERRORS
                .iter()
                .find(|(s, ..)| *s == code)
                .map(|(_, n, _)| *n)
                .unwrap_or_else(|| panic!("{} {}: no documented error {code}", route.method, route.path));
            responses.insert(code.to_string(), json!({"$ref": format!("#/components/responses/{name}")}));
        }
        responses.insert("default".into(), json!({"$ref": "#/components/responses/Problem"}));
        let mut operation = json!({
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.tag.name],
            "parameters": parameters,
            "responses": responses,
            "security": if route.public { json!([]) } else { json!([{"cognito": []}]) },
        });
        if let Some(schema) = route.request {
            let mut content = Map::new();
            content.insert(route.request_media.to_owned(), json!({"schema": schema(&mut requests)}));
            operation["requestBody"] = json!({"required": true, "content": content});
            bodies.push((route.path.to_owned(), route.method.as_str().to_ascii_lowercase(), route.request_media));
        }
        if !tags.iter().any(|t| t["name"] == route.tag.name) {
            tags.push(json!({"name": route.tag.name, "description": route.tag.description}));
        }
        let entry = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        entry[route.method.as_str().to_ascii_lowercase()] = operation;
    }

    // One set of schemas: a type both read and written keeps one name when its two schemas
    // agree; otherwise the request side's is renamed `<Name>Input`.
    let mut schemas: Map<String, Value> = answers.take_definitions(true).into_iter().collect();
    let mut input: BTreeMap<String, Value> = requests.take_definitions(true).into_iter().collect();
    let renames: BTreeMap<String, String> = input
        .iter()
        .filter(|(name, schema)| schemas.get(*name).is_some_and(|s| s != *schema))
        .map(|(name, _)| (name.clone(), format!("{name}Input")))
        .collect();
    for schema in input.values_mut() {
        rename_refs(schema, &renames);
    }
    for (path, method, media) in &bodies {
        rename_refs(&mut paths[path][method]["requestBody"]["content"][*media]["schema"], &renames);
    }
    for (name, schema) in input {
        schemas.insert(renames.get(&name).cloned().unwrap_or(name), schema);
    }
    schemas.insert(
        "GatewayMessage".into(),
        json!({"type": "object", "description": "An answer API Gateway gives itself (the authorizer's 401, throttling's 429)", "required": ["message"], "properties": {"message": {"type": "string"}}}),
    );

    let mut responses = Map::new();
    responses.insert("Problem".into(), json!({"description": "A problem (RFC 9457)", "content": {"application/problem+json": {"schema": problem}}}));
    for (status, name, description) in ERRORS {
        let mut content = json!({"application/problem+json": {"schema": problem}});
        if matches!(status, 401 | 429) {
            content["application/json"] = json!({"schema": {"$ref": "#/components/schemas/GatewayMessage"}});
        }
        let mut response = json!({"description": description, "content": content});
        if *status == 429 {
            let mut headers = Map::new();
            headers.insert(
                "Retry-After".into(),
                json!({"description": "seconds to wait (the API's own limits)", "required": false, "schema": {"type": "integer", "minimum": 0}}),
            );
            headers.extend(rate_limit_headers());
            response["headers"] = Value::Object(headers);
        }
        if *status == 503 {
            response["headers"] =
                json!({"Retry-After": {"description": "seconds to wait before trying again", "required": false, "schema": {"type": "integer", "minimum": 0}}});
        }
        responses.insert((*name).to_owned(), response);
    }

    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": responses,
            "securitySchemes": {"cognito": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "A Cognito ID token"}}
        }
    });
    add_links(&mut doc, routes);
    doc
}

/// The property of a response body (`$response.body#/...`) that holds the value of the path
/// parameter `param` of what the body describes: the member's `userId`, everything else's `id`.
fn id_field(param: &str) -> &'static str {
    if param == "userId" { "userId" } else { "id" }
}

/// The properties of a schema (through one `$ref`), if it is an object.
fn properties<'a>(doc: &'a Value, schema: &'a Value) -> Option<&'a Map<String, Value>> {
    let schema = match schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &doc["components"]["schemas"][name],
        None => schema,
    };
    schema.get("properties").and_then(Value::as_object)
}

/// OpenAPI links, so that sequences of calls can be followed (and fuzzed: Schemathesis'
/// stateful phase): from an operation that answers one thing with its id (creating it, say) to
/// every operation on that thing and below it (`POST /orgs` → `GET /orgs/{orgId}`,
/// `POST /orgs/{orgId}/invites`; `POST /orgs/{orgId}/invites` →
/// `POST /orgs/{orgId}/invites/{inviteId}/resend`), and from a listing to the operations on its
/// first item (`GET /orgs/{orgId}/members` → `PATCH /orgs/{orgId}/members/{userId}`). The
/// other path parameters come from the request (`$request.path.orgId`).
fn add_links(doc: &mut Value, routes: &[RouteInfo]) {
    let mut links: Vec<(String, String, u16, String, Value)> = Vec::new();
    for from in routes {
        let (status, Some(_)) = from.response else { continue };
        let method = from.method.as_str().to_ascii_lowercase();
        let schema = &doc["paths"][from.path][&method]["responses"][status.to_string()]["content"][from.response_media]["schema"];
        let Some(props) = properties(doc, schema) else { continue };
        // The thing answered (a creation's, a read's), or a listing's first item.
        let (base, pointer, item_props): (&str, &str, Option<&Map<String, Value>>) = if from.paginated {
            let item = props.get("items").and_then(|i| i.get("items"));
            (from.path, "/items/0", item.and_then(|i| properties(doc, i)))
        } else if from.method == http::Method::POST {
            (from.path, "", Some(props))
        } else {
            continue;
        };
        let Some(item_props) = item_props else { continue };
        for to in routes {
            let Some(rest) = to.path.strip_prefix(base).and_then(|r| r.strip_prefix("/{")) else { continue };
            let Some((param, below)) = rest.split_once('}') else { continue };
            let field = id_field(param);
            // Only the operations on that thing, not on things below another parameter.
            if below.contains('{') || !item_props.contains_key(field) {
                continue;
            }
            let mut parameters = Map::new();
            for known in base.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
                parameters.insert(known.to_owned(), json!(format!("$request.path.{known}")));
            }
            parameters.insert(param.to_owned(), json!(format!("$response.body#{pointer}/{field}")));
            links.push((
                from.path.to_owned(),
                method.clone(),
                status,
                to.operation_id.to_owned(),
                json!({"operationId": to.operation_id, "parameters": parameters}),
            ));
        }
    }
    for (path, method, status, name, link) in links {
        let response = &mut doc["paths"][path.as_str()][method.as_str()]["responses"][status.to_string()];
        if let Some(obj) = response.as_object_mut() {
            let entry = obj.entry("links").or_insert_with(|| json!({}));
            entry[name] = link;
        }
    }
}

/// The rate-limit headers (draft-ietf-httpapi-ratelimit-headers) a signed-in caller's answers
/// carry: the policy and the state of the bucket with the fewest requests left.
fn rate_limit_headers() -> Map<String, Value> {
    let mut headers = Map::new();
    headers.insert(
        "RateLimit-Policy".into(),
        json!({"description": "the limit reported: `\"<policy>\";q=<requests>;w=<seconds>` (policies `org`, `user`, `org-<class>`, `user-<class>`)", "required": false, "schema": {"type": "string"}}),
    );
    headers.insert(
        "RateLimit".into(),
        json!({"description": "its state: `\"<policy>\";r=<requests left>;t=<seconds to the window's end>`", "required": false, "schema": {"type": "string"}}),
    );
    headers
}

fn rename_refs(value: &mut Value, renames: &BTreeMap<String, String>) {
    if renames.is_empty() {
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(new) = r.strip_prefix("#/components/schemas/").and_then(|name| renames.get(name))
            {
                *r = format!("#/components/schemas/{new}");
            }
            map.values_mut().for_each(|v| rename_refs(v, renames));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_refs(v, renames)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[derive(schemars::JsonSchema)]
    #[allow(dead_code)] // only its schema is used
    struct Thing {
        name: String,
    }

    #[derive(schemars::JsonSchema)]
    #[allow(dead_code)] // only its schema is used
    struct UnsubscribeForm {
        #[serde(rename = "List-Unsubscribe")]
        list_unsubscribe: String,
    }

    /// One protected route and an RFC 8058 unsubscribe link: a public page and a public form post.
    fn routes() -> Vec<RouteInfo> {
        crate::RouteTable::<()>::default()
            .tag("things", "Things")
            .route(Method::GET, "/orgs/{orgId}/things/{thingId}", "getThing", "A thing", || async {})
            .returns::<Thing>(200)
            .route(Method::GET, "/unsubscribe", "unsubscribePage", "The confirmation page", || async {})
            .public()
            .returns_media(200, "text/html")
            .route(Method::POST, "/orgs/{orgId}/unsubscribe", "unsubscribe", "One-click unsubscribe", || async {})
            .public()
            .takes_media::<UnsubscribeForm>("application/x-www-form-urlencoded")
            .returns_media(200, "text/html")
            .routes()
            .to_vec()
    }

    fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
        &doc["paths"][path][method]
    }

    fn statuses(op: &Value) -> Vec<&str> {
        op["responses"].as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn the_builder_marks_public_routes_and_their_media() {
        let routes = routes();
        assert!(!routes[0].public);
        assert_eq!(routes[0].response_media, "application/json");
        assert!(routes[1].public && routes[2].public);
        assert_eq!((routes[1].response.0, routes[1].response_media), (200, "text/html"));
        assert_eq!(routes[2].request_media, "application/x-www-form-urlencoded");
    }

    #[test]
    fn a_public_operation_has_no_security_and_no_authorizer_errors() {
        let routes = routes();
        let doc = document("t", "1", &routes);
        let page = operation(&doc, "get", "/unsubscribe");
        assert_eq!(page["security"], json!([]));
        assert_eq!(statuses(page), ["200", "429", "default"]);
        // under an org and a write: the role's 403 goes (no caller), the rest of its shape stays
        let post = operation(&doc, "post", "/orgs/{orgId}/unsubscribe");
        assert_eq!(post["security"], json!([]));
        assert_eq!(statuses(post), ["200", "400", "404", "409", "413", "415", "422", "429", "default"]);
        assert_eq!(error_statuses(&routes[2]), [400, 404, 409, 413, 415, 422, 429]);
        // a public route may still declare a 401 or 403 of its own
        let mut declared = routes[1].clone();
        declared.errors = vec![403];
        assert_eq!(error_statuses(&declared), [403, 429]);
    }

    #[test]
    fn a_protected_operation_is_as_before_with_the_rate_limit_headers() {
        let doc = document("t", "1", &routes());
        let op = operation(&doc, "get", "/orgs/{orgId}/things/{thingId}");
        assert_eq!(
            *op,
            json!({
                "operationId": "getThing",
                "summary": "A thing",
                "tags": ["things"],
                "parameters": [
                    {"name": "orgId", "in": "path", "required": true, "schema": path_parameter("orgId")},
                    {"name": "thingId", "in": "path", "required": true, "schema": path_parameter("thingId")},
                ],
                "responses": {
                    "200": {"description": "Success", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}, "headers": rate_limit_headers()},
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                    "403": {"$ref": "#/components/responses/Forbidden"},
                    "404": {"$ref": "#/components/responses/NotFound"},
                    "429": {"$ref": "#/components/responses/TooManyRequests"},
                    "default": {"$ref": "#/components/responses/Problem"},
                },
                "security": [{"cognito": []}],
            })
        );
    }

    #[test]
    fn a_non_json_success_body_is_documented_under_its_media_type() {
        let doc = document("t", "1", &routes());
        for (method, path) in [("get", "/unsubscribe"), ("post", "/orgs/{orgId}/unsubscribe")] {
            let content = &operation(&doc, method, path)["responses"]["200"]["content"];
            assert_eq!(*content, json!({"text/html": {"schema": {"type": "string"}}}), "{method} {path}");
        }
        let body = &operation(&doc, "post", "/orgs/{orgId}/unsubscribe")["requestBody"]["content"];
        assert!(body["application/x-www-form-urlencoded"]["schema"].is_object());
    }
}
