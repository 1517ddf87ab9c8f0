//! The OpenAPI 3.1 document, generated from the route tables (never written by hand): every
//! route with its parameters, request and response schemas, the problem+json error schema,
//! and the Cognito bearer token.

use serde_json::{Map, Value, json};

use crate::{ApiError, RouteInfo};

/// The document for `routes`.
pub fn document(title: &str, version: &str, routes: &[RouteInfo]) -> Value {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.definitions_path = "#/components/schemas/".into();
    let mut generator = settings.into_generator();
    let problem = generator.subschema_for::<ApiError>();

    let mut paths: Map<String, Value> = Map::new();
    for route in routes {
        let mut parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if route.paginated {
            parameters.push(json!({"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}}));
            parameters.push(json!({"name": "cursor", "in": "query", "required": false, "schema": {"type": "string"}, "description": "nextCursor of the previous page"}));
        }
        for name in route.query {
            parameters.push(json!({"name": name, "in": "query", "required": false, "schema": {"type": "string"}}));
        }
        let (status, body) = route.response;
        let success = match body {
            Some(schema) => json!({"description": "Success", "content": {"application/json": {"schema": schema(&mut generator)}}}),
            None => json!({"description": "Success, no content"}),
        };
        let problem_response = json!({"description": "A problem (RFC 9457)", "content": {"application/problem+json": {"schema": problem}}});
        let mut responses = Map::new();
        responses.insert(status.to_string(), success);
        responses.insert("default".into(), problem_response);
        let mut operation = json!({
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [tag_of(route.path)],
            "parameters": parameters,
            "responses": responses,
            "security": [{"cognito": []}],
        });
        if let Some(schema) = route.request {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": schema(&mut generator)}}});
        }
        let entry = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        entry[route.method.as_str().to_ascii_lowercase()] = operation;
    }
    let schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"cognito": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "A Cognito ID token"}}
        }
    })
}

fn tag_of(path: &str) -> &str {
    match path.split('/').nth(1).unwrap_or("") {
        "admin" => "platform",
        "me" => "profile",
        "invites" => "invitations",
        _ if path.contains("/invites") => "invitations",
        _ if path.contains("/members") || path.contains("transfer-ownership") => "members",
        _ => "organizations",
    }
}
