//! The tool the model may call through Converse tool use: `list_tasks`, which reads the tasks
//! of the caller's org only (through the scope the request was authorized with; nothing in
//! the model's input names an org).

use api::ApiError;
use aws_sdk_bedrockruntime::types::{Tool, ToolConfiguration, ToolInputSchema, ToolSpecification};
use domain::work::TaskStatus;
use serde_json::{Value, json};
use store::chat::Citation;
use store::{OrgScope, PageRequest, Project, Task};

use crate::AppState;
use crate::convert::to_document;

pub const LIST_TASKS: &str = "list_tasks";
/// Tasks one call returns at most.
const MAX_TASKS: usize = 50;
/// Tasks of one call cited at most.
const MAX_CITED: usize = 10;

/// The tool configuration sent with every call.
pub fn config() -> Result<ToolConfiguration, ApiError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "project": {"type": "string", "description": "A project's name, or part of it (all projects when left out)"},
            "overdue": {"type": "boolean", "description": "Only open tasks whose due date has passed"},
            "status": {"type": "string", "enum": ["todo", "in_progress", "blocked", "done", "canceled"]}
        },
        "additionalProperties": false
    });
    let spec = ToolSpecification::builder()
        .name(LIST_TASKS)
        .description("Lists this organization's tasks: title, status, due date, assignee and project. Use it for questions about tasks, projects, deadlines and what is overdue.")
        .input_schema(ToolInputSchema::Json(to_document(&schema)))
        .build()
        .map_err(|_| ApiError::internal())?;
    ToolConfiguration::builder().tools(Tool::ToolSpec(spec)).build().map_err(|_| ApiError::internal())
}

/// Runs tool `name` with `input`: its JSON result, and the tasks it returned as citations
/// numbered from `first`.
pub async fn run(app: &AppState, scope: &OrgScope, name: &str, input: &Value, first: u32) -> (Value, Vec<Citation>) {
    if name != LIST_TASKS {
        return (json!({"error": format!("no tool named {name}")}), Vec::new());
    }
    match list_tasks(app, scope, input).await {
        Ok((tasks, projects)) => {
            let name_of = |t: &Task| projects.iter().find(|p| p.id == t.project_id).map_or(String::new(), |p| p.name.clone());
            let listed: Vec<Value> = tasks
                .iter()
                .map(|t| json!({"title": t.title, "status": t.status, "due": t.due.as_ref().map(|d| d.as_str().to_owned()), "assignee": t.assignee, "project": name_of(t)}))
                .collect();
            let citations = tasks
                .iter()
                .take(MAX_CITED)
                .zip(first..)
                .map(|(t, number)| Citation {
                    number,
                    kind: "task".into(),
                    file_id: None,
                    task_id: Some(t.id.to_string()),
                    project_id: Some(t.project_id.to_string()),
                    title: t.title.clone(),
                    page: None,
                    link: format!("/orgs/{}/projects/{}/tasks/{}", scope.org_id(), t.project_id, t.id),
                })
                .collect();
            (json!({"tasks": listed, "count": listed.len()}), citations)
        }
        Err(message) => (json!({"error": message}), Vec::new()),
    }
}

async fn list_tasks(app: &AppState, scope: &OrgScope, input: &Value) -> Result<(Vec<Task>, Vec<Project>), String> {
    let store = &app.store;
    let project_name = input.get("project").and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_lowercase);
    let overdue = input.get("overdue").and_then(Value::as_bool).unwrap_or(false);
    let status = match input.get("status").and_then(Value::as_str) {
        Some(s) => Some(s.parse::<TaskStatus>().map_err(|e| e.0.to_string())?),
        None => None,
    };
    let projects = store.list_projects(scope, None, &PageRequest::first(100)).await.map_err(|e| e.to_string())?.items;
    let chosen: Vec<&Project> = match &project_name {
        Some(name) => projects.iter().filter(|p| p.name.to_lowercase().contains(name.as_str())).collect(),
        None => projects.iter().collect(),
    };
    if project_name.is_some() && chosen.is_empty() {
        return Err(format!("no project named like {:?}", project_name.unwrap_or_default()));
    }
    let mut tasks = Vec::new();
    if overdue {
        let now = store.clock().rfc3339();
        let due = store.list_due(scope, None, Some(&now), &PageRequest::first(100)).await.map_err(|e| e.to_string())?.items;
        tasks.extend(due.into_iter().filter(|t| chosen.iter().any(|p| p.id == t.project_id)));
    } else {
        for p in &chosen {
            let page = store.list_tasks(scope, p.id, status, &PageRequest::first(100)).await.map_err(|e| e.to_string())?;
            tasks.extend(page.items);
            if tasks.len() >= MAX_TASKS {
                break;
            }
        }
    }
    if let Some(status) = status {
        tasks.retain(|t| t.status == status);
    }
    tasks.truncate(MAX_TASKS);
    Ok((tasks, projects))
}
