use api::{ApiResult, Caller, JsonBody, PageQuery, Params};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::work::{CommentId, mentioned_handles};
use domain::{Action, DomainError, Identity};
use store::{Comment, OrgScope, Page, Task};

use crate::AppState;
use crate::input::CommentBody;
use crate::tasks::TaskPath;

/// Authorizes `action`, reads the task and resolves the handles `text` mentions against the
/// org's members, concurrently.
async fn task_and_mentions(app: &AppState, who: &Identity, path: TaskPath, text: &str, action: Action) -> ApiResult<(OrgScope, Task, Vec<domain::UserId>)> {
    let store = &app.store;
    let handles = mentioned_handles(text);
    let handles = &handles;
    let (scope, (task, mentions)) = store
        .authorize_with(who, path.project.org, action, |pending| async move {
            let (task, mentions) = futures::join!(store.get_task(&pending, path.project.project, path.task), store.members_by_handle(&pending, handles));
            Ok((task?, mentions?))
        })
        .await?;
    Ok((scope, task.ok_or(DomainError::NotFound)?, mentions))
}

pub async fn create(State(app): State<AppState>, Caller(who): Caller, p: Params, JsonBody(input): JsonBody<CommentBody>) -> ApiResult<Response> {
    let path = TaskPath::of(&p)?;
    let text = input.validate()?;
    let (scope, task, mentions) = task_and_mentions(&app, &who, path, &text, Action::WriteWorkload).await?;
    let comment = app.store.create_comment(&scope, &task, text, mentions).await?;
    let mut res = (StatusCode::CREATED, Json(&comment)).into_response();
    let location = format!("/orgs/{}/projects/{}/tasks/{}/comments/{}", path.project.org, path.project.project, path.task, comment.id);
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

pub async fn list(State(app): State<AppState>, Caller(who): Caller, p: Params, q: PageQuery) -> ApiResult<Json<Page<Comment>>> {
    let path = TaskPath::of(&p)?;
    let q = q.only(&[])?;
    let store = &app.store;
    let page = &q.page;
    let (_, (task, comments)) = store
        .authorize_with(&who, path.project.org, Action::ReadWorkload, |pending| async move {
            let (project, task, comments) = futures::join!(
                store.get_project(&pending, path.project.project),
                store.get_task(&pending, path.project.project, path.task),
                store.list_comments(&pending, path.project.project, path.task, page)
            );
            Ok((project?.and(task?), comments?))
        })
        .await?;
    task.ok_or(DomainError::NotFound)?;
    Ok(Json(comments))
}

/// Authorizes `action` while reading the comment the path names (and resolving `text`'s
/// mentions, when it is an edit).
async fn comment_of(app: &AppState, who: &Identity, p: &Params, text: Option<&str>, action: Action) -> ApiResult<(OrgScope, Comment, Vec<domain::UserId>)> {
    let path = TaskPath::of(p)?;
    let comment_id: CommentId = p.get("commentId")?;
    let store = &app.store;
    let handles = text.map(mentioned_handles).unwrap_or_default();
    let handles = &handles;
    let (scope, (comment, mentions)) = store
        .authorize_with(who, path.project.org, action, |pending| async move {
            let (comment, mentions) =
                futures::join!(store.get_comment(&pending, path.project.project, path.task, comment_id), store.members_by_handle(&pending, handles));
            Ok((comment?, mentions?))
        })
        .await?;
    Ok((scope, comment.ok_or(DomainError::NotFound)?, mentions))
}

pub async fn edit(State(app): State<AppState>, Caller(who): Caller, p: Params, JsonBody(input): JsonBody<CommentBody>) -> ApiResult<Json<Comment>> {
    let text = input.validate()?;
    let (scope, current, mentions) = comment_of(&app, &who, &p, Some(&text), Action::WriteWorkload).await?;
    Ok(Json(app.store.edit_comment(&scope, &current, text, mentions).await?))
}

pub async fn delete(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<StatusCode> {
    let (scope, current, _) = comment_of(&app, &who, &p, None, Action::WriteWorkload).await?;
    app.store.delete_comment(&scope, &current).await?;
    Ok(StatusCode::NO_CONTENT)
}
