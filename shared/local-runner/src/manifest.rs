//! The route manifest: every function's routes as JSON, for the infrastructure (which
//! integrates each route with its function) and the OpenAPI document. Generated from the
//! functions' route tables, never written by hand; `infra/routes.json` is checked against it.

use serde_json::{Value, json};

/// One function and its route table.
pub struct FunctionRoutes {
    /// The crate, and the Lambda function, that serves the routes.
    pub function: &'static str,
    pub routes: Vec<api::RouteInfo>,
}

/// Every HTTP function's routes.
pub fn all() -> Vec<FunctionRoutes> {
    vec![
        FunctionRoutes { function: "organizations", routes: organizations::routes().routes().to_vec() },
        FunctionRoutes { function: "invites", routes: invites::routes().routes().to_vec() },
    ]
}

/// The manifest as JSON (stable order).
pub fn to_json(functions: &[FunctionRoutes]) -> Value {
    let mut routes: Vec<Value> = functions
        .iter()
        .flat_map(|f| {
            f.routes.iter().map(move |r| {
                json!({
                    "function": f.function,
                    "method": r.method.as_str(),
                    "path": r.path,
                    "operationId": r.operation_id,
                    "summary": r.summary,
                })
            })
        })
        .collect();
    routes.sort_by_key(|r| (r["path"].as_str().unwrap_or("").to_owned(), r["method"].as_str().unwrap_or("").to_owned()));
    json!({ "routes": routes })
}

/// The manifest as the file `infra/routes.json` holds it.
pub fn render() -> String {
    let mut s = serde_json::to_string_pretty(&to_json(&all())).expect("JSON serialises");
    s.push('\n');
    s
}
