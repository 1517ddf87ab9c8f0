use api::{ApiError, ApiResult, Caller, JsonBody, PageQuery, Params, if_match, with_etag};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::work::{TaskId, TaskStatus, due_bound};
use domain::{Action, DomainError, FieldError, Identity, OrgId, UserId};
use serde::Serialize;
use store::{OrgLabels, OrgScope, Page, Project, Task, TaskHistoryEntry};

use crate::AppState;
use crate::input::{CreateTask, MoveTask, UpdateTask};
use crate::projects::ProjectPath;
use api::last_writer_wins;

/// The org, project and task a path names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskPath {
    pub project: ProjectPath,
    pub task: TaskId,
}

impl TaskPath {
    pub fn of(p: &Params) -> ApiResult<TaskPath> {
        Ok(TaskPath { project: ProjectPath::of(p)?, task: p.get("taskId")? })
    }
}

/// What a task write reads with its authorization, in the same round trip.
pub(crate) struct Reads {
    pub scope: OrgScope,
    pub project: Project,
    pub task: Option<Task>,
    pub labels: OrgLabels,
    /// The last rank of the column a task goes to, when it goes to one.
    pub last_rank: Option<String>,
}

/// Authorizes `action` and reads the project, the task (when the path names one), the org's
/// labels and the last rank of `column`, concurrently.
pub(crate) async fn reads(
    app: &AppState,
    who: &Identity,
    project: ProjectPath,
    task: Option<TaskId>,
    column: Option<TaskStatus>,
    action: Action,
) -> Result<Reads, DomainError> {
    let store = &app.store;
    let (scope, (p, t, labels, last_rank)) = store
        .authorize_with(who, project.org, action, |pending| async move {
            let (p, t, labels, last) = futures::join!(
                store.get_project(&pending, project.project),
                async {
                    match task {
                        Some(id) => store.get_task(&pending, project.project, id).await,
                        None => Ok(None),
                    }
                },
                store.org_labels(&pending),
                async {
                    match column {
                        Some(status) => store.last_rank(&pending, project.project, status).await,
                        None => Ok(None),
                    }
                }
            );
            Ok((p?, t?, labels?, last?))
        })
        .await?;
    let project = p.ok_or(DomainError::NotFound)?;
    if task.is_some() && t.is_none() {
        return Err(DomainError::NotFound);
    }
    Ok(Reads { scope, project, task: t, labels, last_rank })
}

pub async fn create(State(app): State<AppState>, Caller(who): Caller, p: Params, JsonBody(input): JsonBody<CreateTask>) -> ApiResult<Response> {
    let path = ProjectPath::of(&p)?;
    let draft = input.validate()?;
    let r = reads(&app, &who, path, None, Some(draft.status), Action::WriteWorkload).await?;
    let task = app.store.create_task(&r.scope, &r.project, draft, r.last_rank.as_deref(), &r.labels).await?;
    let mut res = with_etag(task.version, (StatusCode::CREATED, Json(&task)).into_response());
    if let Ok(v) = HeaderValue::from_str(&format!("/orgs/{}/projects/{}/tasks/{}", path.org, path.project, task.id)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

fn status_param(q: &PageQuery, name: &str) -> ApiResult<Option<TaskStatus>> {
    q.param(name)
        .map(|s| s.parse::<TaskStatus>().map_err(|_| ApiError::invalid(vec![FieldError::new(name, "must be todo, in_progress, blocked, done or canceled")])))
        .transpose()
}

pub async fn list(State(app): State<AppState>, Caller(who): Caller, p: Params, q: PageQuery) -> ApiResult<Json<Page<Task>>> {
    let path = ProjectPath::of(&p)?;
    let q = q.only(&["status"])?;
    let status = status_param(&q, "status")?;
    let store = &app.store;
    let page = &q.page;
    let (_, (project, tasks)) = store
        .authorize_with(&who, path.org, Action::ReadWorkload, |pending| async move {
            let (project, tasks) = futures::join!(store.get_project(&pending, path.project), store.list_tasks(&pending, path.project, status, page));
            Ok((project?, tasks?))
        })
        .await?;
    project.ok_or(DomainError::NotFound)?;
    Ok(Json(tasks))
}

pub async fn get(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Response> {
    let path = TaskPath::of(&p)?;
    let store = &app.store;
    // The project too: a deleted project's tasks answer 404 before its purge removes them.
    let (_, (project, task)) = store
        .authorize_with(&who, path.project.org, Action::ReadWorkload, |pending| async move {
            let (project, task) = futures::join!(store.get_project(&pending, path.project.project), store.get_task(&pending, path.project.project, path.task));
            Ok((project?, task?))
        })
        .await?;
    project.ok_or(DomainError::NotFound)?;
    let task = task.ok_or(DomainError::NotFound)?;
    Ok(with_etag(task.version, Json(task)))
}

/// `If-Match` against the task as read.
fn check_version(expected: Option<u64>, task: &Task) -> Result<(), DomainError> {
    if expected.is_some_and(|v| v != task.version) { Err(DomainError::StaleVersion) } else { Ok(()) }
}

pub async fn update(
    State(app): State<AppState>,
    Caller(who): Caller,
    p: Params,
    headers: HeaderMap,
    JsonBody(input): JsonBody<UpdateTask>,
) -> ApiResult<Response> {
    let path = TaskPath::of(&p)?;
    let expected = if_match(&headers)?;
    let patch = input.validate()?;
    let task = last_writer_wins(expected, || async {
        let r = reads(&app, &who, path.project, Some(path.task), patch.status, Action::WriteWorkload).await?;
        let current = r.task.ok_or(DomainError::NotFound)?;
        check_version(expected, &current)?;
        app.store.update_task(&r.scope, &r.project, &current, &patch, r.last_rank.as_deref(), &r.labels).await
    })
    .await?;
    Ok(with_etag(task.version, Json(task)))
}

pub async fn move_task(
    State(app): State<AppState>,
    Caller(who): Caller,
    p: Params,
    headers: HeaderMap,
    JsonBody(input): JsonBody<MoveTask>,
) -> ApiResult<Response> {
    let path = TaskPath::of(&p)?;
    let expected = if_match(&headers)?;
    let (after, before) = input.neighbours()?;
    let store = &app.store;
    let project = path.project;
    let task = last_writer_wins(expected, || async {
        let (scope, (proj, current, after, before, last)) = store
            .authorize_with(&who, project.org, Action::WriteWorkload, |pending| async move {
                let get = |id: Option<TaskId>| {
                    let pending = &pending;
                    async move {
                        match id {
                            Some(id) => store.get_task(pending, project.project, id).await,
                            None => Ok(None),
                        }
                    }
                };
                // The end of the column it goes to, when no neighbour is named.
                let last = async {
                    match (input.status, after, before) {
                        (Some(status), None, None) => store.last_rank(&pending, project.project, status).await,
                        _ => Ok(None),
                    }
                };
                let (p, t, a, b, last) = futures::join!(store.get_project(&pending, project.project), get(Some(path.task)), get(after), get(before), last);
                Ok((p?, t?, a?, b?, last?))
            })
            .await?;
        let proj = proj.ok_or(DomainError::NotFound)?;
        let current = current.ok_or(DomainError::NotFound)?;
        check_version(expected, &current)?;
        let missing = |field: &str| DomainError::invalid(field, "names no task of this project");
        if after.is_none() && input.after.is_some() {
            return Err(missing("after"));
        }
        if before.is_none() && input.before.is_some() {
            return Err(missing("before"));
        }
        let status = input.status.unwrap_or(current.status);
        store.move_task(&scope, &proj, &current, store::Placement { status, after: after.as_ref(), before: before.as_ref(), last_rank: last.as_deref() }).await
    })
    .await?;
    Ok(with_etag(task.version, Json(task)))
}

pub async fn delete(State(app): State<AppState>, Caller(who): Caller, p: Params, headers: HeaderMap) -> ApiResult<StatusCode> {
    let path = TaskPath::of(&p)?;
    let expected = if_match(&headers)?;
    let store = &app.store;
    last_writer_wins(expected, || async {
        let (scope, task) =
            store
                .authorize_with(&who, path.project.org, Action::WriteWorkload, |pending| async move {
                    store.get_task(&pending, path.project.project, path.task).await
                })
                .await?;
        let task = task.ok_or(DomainError::NotFound)?;
        store.delete_task(&scope, &task, expected).await
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn history(State(app): State<AppState>, Caller(who): Caller, p: Params, q: PageQuery) -> ApiResult<Json<Page<TaskHistoryEntry>>> {
    let path = TaskPath::of(&p)?;
    let q = q.only(&[])?;
    let store = &app.store;
    let page = &q.page;
    let (_, (task, entries)) = store
        .authorize_with(&who, path.project.org, Action::ReadWorkload, |pending| async move {
            let (project, task, entries) = futures::join!(
                store.get_project(&pending, path.project.project),
                store.get_task(&pending, path.project.project, path.task),
                store.task_history(&pending, path.project.project, path.task, page)
            );
            Ok((project?.and(task?), entries?))
        })
        .await?;
    task.ok_or(DomainError::NotFound)?;
    Ok(Json(entries))
}

/// Which org-wide listing `GET /orgs/{orgId}/tasks` asks for.
enum OrgListing {
    Assigned(UserId),
    Due { after: Option<String>, before: Option<String> },
}

fn org_listing(who: &Identity, q: &PageQuery) -> ApiResult<OrgListing> {
    let (assignee, after, before) = (q.param("assignee"), q.param("dueAfter"), q.param("dueBefore"));
    let mut errors = Vec::new();
    let listing = match (assignee, after.is_some() || before.is_some()) {
        (Some(_), true) => {
            errors.push(FieldError::new("assignee", "cannot be combined with dueAfter or dueBefore"));
            None
        }
        (Some("me"), false) => Some(OrgListing::Assigned(who.user_id.clone())),
        (Some(user), false) => match user.parse::<UserId>() {
            Ok(u) => Some(OrgListing::Assigned(u)),
            Err(_) => {
                errors.push(FieldError::new("assignee", "must be me or a user id"));
                None
            }
        },
        (None, true) => {
            let mut bound = |name: &str, raw: Option<&str>| raw.and_then(|r| due_bound(name, r).map_err(|e| errors.push(e)).ok());
            let after = bound("dueAfter", after);
            let before = bound("dueBefore", before);
            Some(OrgListing::Due { after, before })
        }
        (None, false) => {
            errors.push(FieldError::new("assignee", "give assignee=me (or a user id), or dueAfter and/or dueBefore"));
            None
        }
    };
    if let Some(OrgListing::Due { after: Some(a), before: Some(b) }) = &listing
        && a >= b
    {
        errors.push(FieldError::new("dueBefore", "must be after dueAfter"));
    }
    match listing {
        Some(l) if errors.is_empty() => Ok(l),
        _ => Err(ApiError::invalid(errors)),
    }
}

pub async fn list_org(State(app): State<AppState>, Caller(who): Caller, p: Params, q: PageQuery) -> ApiResult<Json<Page<Task>>> {
    let org_id: OrgId = p.get("orgId")?;
    let q = q.only(&["assignee", "dueAfter", "dueBefore"])?;
    let listing = org_listing(&who, &q)?;
    let store = &app.store;
    let page = &q.page;
    let listing = &listing;
    let (_, tasks) = store
        .authorize_with(&who, org_id, Action::ReadWorkload, |pending| async move {
            match listing {
                OrgListing::Assigned(user) => store.list_assigned(&pending, user, page).await,
                OrgListing::Due { after, before } => store.list_due(&pending, after.as_deref(), before.as_deref(), page).await,
            }
        })
        .await?;
    Ok(Json(tasks))
}

/// The labels an org's tasks use.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Labels {
    /// Sorted; at most 100.
    pub labels: Vec<String>,
}

pub async fn labels(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Json<Labels>> {
    let org_id: OrgId = p.get("orgId")?;
    let store = &app.store;
    let (_, labels) = store.authorize_with(&who, org_id, Action::ReadWorkload, |pending| async move { store.org_labels(&pending).await }).await?;
    Ok(Json(Labels { labels: labels.names.into_iter().collect() }))
}
