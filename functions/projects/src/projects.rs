use api::{ApiResult, Caller, JsonBody, PageQuery, Params, if_match, with_etag};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::work::{ProjectId, ProjectStatus};
use domain::{Action, DomainError, FieldError, Identity, OrgId};
use store::{OrgScope, Page, Project, ProjectPatch};

use crate::AppState;
use crate::input::{CreateProject, UpdateProject};
use api::last_writer_wins;

pub async fn create(State(app): State<AppState>, Caller(who): Caller, p: Params, JsonBody(input): JsonBody<CreateProject>) -> ApiResult<Response> {
    let org_id: OrgId = p.get("orgId")?;
    let (name, description) = input.validate()?;
    let scope = app.store.authorize(&who, org_id, Action::WriteWorkload).await?;
    let project = app.store.create_project(&scope, name, description).await?;
    let mut res = with_etag(project.version, (StatusCode::CREATED, Json(&project)).into_response());
    if let Ok(v) = HeaderValue::from_str(&format!("/orgs/{org_id}/projects/{}", project.id)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

pub async fn list(State(app): State<AppState>, Caller(who): Caller, p: Params, q: PageQuery) -> ApiResult<Json<Page<Project>>> {
    let org_id: OrgId = p.get("orgId")?;
    let q = q.only(&["status"])?;
    let status = match q.param("status") {
        None => None,
        Some("active") => Some(ProjectStatus::Active),
        Some("archived") => Some(ProjectStatus::Archived),
        Some(_) => return Err(api::ApiError::invalid(vec![FieldError::new("status", "must be active or archived")])),
    };
    let store = &app.store;
    let page = &q.page;
    let (_, listed) =
        store.authorize_with(&who, org_id, Action::ReadWorkload, |pending| async move { store.list_projects(&pending, status, page).await }).await?;
    Ok(Json(listed))
}

/// The org and project a path names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProjectPath {
    pub org: OrgId,
    pub project: ProjectId,
}

impl ProjectPath {
    pub fn of(p: &Params) -> ApiResult<ProjectPath> {
        Ok(ProjectPath { org: p.get("orgId")?, project: p.get("projectId")? })
    }
}

/// Authorizes `action` while reading the project, in one round trip.
pub(crate) async fn project_of(app: &AppState, who: &Identity, path: ProjectPath, action: Action) -> Result<(OrgScope, Project), DomainError> {
    let store = &app.store;
    let (scope, project) = store.authorize_with(who, path.org, action, |pending| async move { store.get_project(&pending, path.project).await }).await?;
    Ok((scope, project.ok_or(DomainError::NotFound)?))
}

pub async fn get(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Response> {
    let (_, project) = project_of(&app, &who, ProjectPath::of(&p)?, Action::ReadWorkload).await?;
    Ok(with_etag(project.version, Json(project)))
}

async fn change(app: &AppState, who: &Identity, p: &Params, headers: &HeaderMap, patch: ProjectPatch) -> ApiResult<Response> {
    let expected = if_match(headers)?;
    let path = ProjectPath::of(p)?;
    let project = last_writer_wins(expected, || async {
        let (scope, current) = project_of(app, who, path, Action::WriteWorkload).await?;
        app.store.update_project(&scope, &current, expected, patch.clone()).await
    })
    .await?;
    Ok(with_etag(project.version, Json(project)))
}

pub async fn update(
    State(app): State<AppState>,
    Caller(who): Caller,
    p: Params,
    headers: HeaderMap,
    JsonBody(input): JsonBody<UpdateProject>,
) -> ApiResult<Response> {
    let patch = input.validate()?;
    change(&app, &who, &p, &headers, patch).await
}

pub async fn archive(State(app): State<AppState>, Caller(who): Caller, p: Params, headers: HeaderMap) -> ApiResult<Response> {
    change(&app, &who, &p, &headers, ProjectPatch { status: Some(ProjectStatus::Archived), ..Default::default() }).await
}

pub async fn restore(State(app): State<AppState>, Caller(who): Caller, p: Params, headers: HeaderMap) -> ApiResult<Response> {
    change(&app, &who, &p, &headers, ProjectPatch { status: Some(ProjectStatus::Active), ..Default::default() }).await
}

pub async fn delete(State(app): State<AppState>, Caller(who): Caller, p: Params, headers: HeaderMap) -> ApiResult<StatusCode> {
    let expected = if_match(&headers)?;
    let path = ProjectPath::of(&p)?;
    last_writer_wins(expected, || async {
        let (scope, current) = project_of(&app, &who, path, Action::ManageWorkload).await?;
        app.store.delete_project(&scope, &current, expected).await
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
