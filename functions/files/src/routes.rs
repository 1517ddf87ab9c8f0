//! The routes. Every file is read through a scope the authorization checked, and every object
//! key comes from the file item ([`store::StoredFile::object_key`]), never from the request.

use std::time::{Duration, SystemTime};

use api::{ApiError, ApiResult, Caller, JsonBody, PageQuery, Params, if_match, last_writer_wins, with_etag};
use aws_sdk_s3::presigning::PresigningConfig;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::files::{self, FileId};
use domain::work::{ProjectId, TaskId};
use domain::{Action, DomainError, FieldError, Identity, OrgId};
use serde::{Deserialize, Serialize};
use store::{Attachment, FileFilter, NewFile, OrgScope, Page, StoredFile};

use crate::AppState;
use crate::presign::{PresignedUpload, UploadPolicy};

/// A file to upload.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateFile {
    /// The file's name (kept as metadata only).
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// Bytes: the upload must be exactly this size.
    #[schemars(range(min = 1))]
    pub size: u64,
    /// One of the types the org's plan accepts (`limits.fileTypes` of the usage).
    pub content_type: String,
    /// A project, or a task of it, to attach the file to.
    #[serde(default)]
    pub attach_to: Option<Attachment>,
}

/// A new name.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenameFile {
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
}

/// The reserved file and how to upload its bytes.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadTicket {
    pub file: StoredFile,
    pub upload: PresignedUpload,
}

pub async fn create(State(app): State<AppState>, Caller(who): Caller, p: Params, JsonBody(input): JsonBody<CreateFile>) -> ApiResult<Response> {
    let org: OrgId = p.get("orgId")?;
    let scope = app.store.authorize(&who, org, Action::WriteWorkload).await?;
    let plan = scope.org().plan;
    let mut errors = Vec::new();
    let name = files::file_name(&input.name, "name").map_err(|e| errors.push(e)).ok();
    let content_type = files::declared_type(&input.content_type, plan, "contentType").map_err(|e| errors.push(e)).ok();
    if input.size == 0 {
        errors.push(FieldError::new("size", "must be at least 1 byte"));
    }
    let (Some(name), Some(content_type)) = (name, content_type) else { return Err(ApiError::invalid(errors)) };
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let now = app.store.clock().epoch();
    let expires = files::reservation_expiry(now, input.size);
    let file = app.store.reserve_upload(&scope, NewFile { name, content_type, size: input.size, attach_to: input.attach_to }, expires).await?;
    let key = file.object_key();
    let policy = UploadPolicy { key: &key, content_type, size: file.size, valid_for: Duration::from_secs(files::UPLOAD_VALID_SECS.unsigned_abs()) };
    let signed_at = SystemTime::UNIX_EPOCH + Duration::from_secs(now.unsigned_abs());
    let upload = app.signer.sign(&policy, signed_at).await.map_err(|e| {
        tracing::error!(error = %e, "signing the upload failed");
        ApiError::internal()
    })?;
    let location = HeaderValue::from_str(&format!("/orgs/{org}/files/{}", file.id)).map_err(|_| ApiError::internal())?;
    let mut res = with_etag(file.version, (StatusCode::CREATED, Json(UploadTicket { file, upload })).into_response());
    res.headers_mut().insert(header::LOCATION, location);
    Ok(res)
}

pub async fn list(State(app): State<AppState>, Caller(who): Caller, p: Params, q: PageQuery) -> ApiResult<Json<Page<StoredFile>>> {
    let org: OrgId = p.get("orgId")?;
    let q = q.only(&["projectId", "taskId"])?;
    let filter = match (q.param("projectId"), q.param("taskId")) {
        (None, None) => FileFilter::All,
        (Some(project), None) => FileFilter::Project(project.parse::<ProjectId>().map_err(|_| ApiError::malformed("projectId must be a project id"))?),
        (_, Some(task)) => FileFilter::Task(task.parse::<TaskId>().map_err(|_| ApiError::malformed("taskId must be a task id"))?),
    };
    let (store, page) = (&app.store, &q.page);
    let (_, listed) = store.authorize_with(&who, org, Action::ReadWorkload, |pending| async move { store.list_files(&pending, filter, page).await }).await?;
    Ok(Json(listed))
}

/// Authorizes `action` while reading the file the path names, in one round trip.
async fn file_of(app: &AppState, who: &Identity, p: &Params, action: Action) -> Result<(OrgScope, StoredFile), ApiError> {
    let org: OrgId = p.get("orgId")?;
    let id: FileId = p.get("fileId")?;
    let store = &app.store;
    let (scope, file) = store.authorize_with(who, org, action, |pending| async move { store.get_file(&pending, id).await }).await?;
    Ok((scope, file.ok_or(DomainError::NotFound)?))
}

/// The file as read with the authorization (first attempt), or read again (a retry).
async fn fresh(app: &AppState, scope: &OrgScope, read: Option<StoredFile>, id: FileId) -> Result<StoredFile, DomainError> {
    match read {
        Some(file) => Ok(file),
        None => app.store.get_file(scope, id).await?.ok_or(DomainError::NotFound),
    }
}

pub async fn get(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Response> {
    let (_, file) = file_of(&app, &who, &p, Action::ReadWorkload).await?;
    Ok(with_etag(file.version, Json(file)))
}

pub async fn rename(
    State(app): State<AppState>,
    Caller(who): Caller,
    p: Params,
    headers: axum::http::HeaderMap,
    JsonBody(input): JsonBody<RenameFile>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let name = files::file_name(&input.name, "name").map_err(|e| ApiError::invalid(vec![e]))?;
    let (scope, file) = file_of(&app, &who, &p, Action::WriteWorkload).await?;
    let mut first = Some(file.clone());
    let file = last_writer_wins(expected, || {
        let read = first.take();
        let (app, scope, name) = (&app, &scope, name.clone());
        async move {
            let current = fresh(app, scope, read, file.id).await?;
            app.store.rename_file(scope, &current, expected, name).await
        }
    })
    .await?;
    Ok(with_etag(file.version, Json(file)))
}

pub async fn delete(State(app): State<AppState>, Caller(who): Caller, p: Params, headers: axum::http::HeaderMap) -> ApiResult<StatusCode> {
    let expected = if_match(&headers)?;
    let (scope, file) = file_of(&app, &who, &p, Action::WriteWorkload).await?;
    let mut first = Some(file.clone());
    last_writer_wins(expected, || {
        let read = first.take();
        let (app, scope) = (&app, &scope);
        async move {
            let current = fresh(app, scope, read, file.id).await?;
            app.store.delete_file(scope, &current, expected).await
        }
    })
    .await?;
    // The item is gone, so nothing serves these objects any more; an object left by a failure
    // here is an orphan that no route reaches (and that an org purge deletes).
    for key in file.object_keys() {
        if let Err(e) = app.s3.delete_object().bucket(&*app.bucket).key(&key).send().await {
            tracing::warn!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), key, "deleting an object of a deleted file failed");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// What a download route serves of a ready file.
enum Part {
    Original,
    Thumbnail,
    Text,
}

async fn redirect(app: &AppState, who: &Identity, p: &Params, headers: &HeaderMap, part: Part) -> ApiResult<Response> {
    let (scope, file) = file_of(app, who, p, Action::ReadWorkload).await?;
    if file.status != files::FileStatus::Ready {
        return Err(ApiError::new(StatusCode::CONFLICT, "file-not-ready", "The file is not ready").detail(format!("the file is {}", file.status)));
    }
    // What is served, and how its handing out is recorded (`file.downloaded`, with the
    // rendition when not the original): the content and its extracted text are; a thumbnail,
    // which pages show beside every listed image, is not.
    let (key, content_type, disposition, recorded) = match part {
        Part::Original => (file.checked_key(), file.content_type.clone(), files::content_disposition(&file.name), Some(None)),
        // A JPEG the function made, shown in the page.
        Part::Thumbnail if file.has_thumbnail => (file.thumbnail_key(), "image/jpeg".to_owned(), "inline".to_owned(), None),
        Part::Text if file.has_text => {
            (file.text_key(), "text/plain; charset=utf-8".to_owned(), files::content_disposition(&format!("{}.txt", file.name)), Some(Some("text")))
        }
        _ => return Err(ApiError::not_found().detail("this file has no such rendition")),
    };
    let config = PresigningConfig::expires_in(Duration::from_secs(files::DOWNLOAD_VALID_SECS)).map_err(|_| ApiError::internal())?;
    let presigned = app
        .s3
        .get_object()
        .bucket(&*app.bucket)
        .key(key)
        .response_content_type(content_type)
        .response_content_disposition(disposition)
        .presigned(config)
        .await
        .map_err(|e| {
            tracing::error!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "presigning a download failed");
            ApiError::internal()
        })?;
    // Built before the record, so a link that cannot be answered is not recorded.
    let answer = api::redirect_or_link(headers, presigned.uri(), files::DOWNLOAD_VALID_SECS)?;
    // No link leaves unrecorded: a failed record fails the request.
    if let Some(rendition) = recorded {
        app.store.record_download(&scope, &file, rendition).await?;
    }
    Ok(answer)
}

pub async fn download(State(app): State<AppState>, Caller(who): Caller, p: Params, headers: HeaderMap) -> ApiResult<Response> {
    redirect(&app, &who, &p, &headers, Part::Original).await
}

pub async fn thumbnail(State(app): State<AppState>, Caller(who): Caller, p: Params, headers: HeaderMap) -> ApiResult<Response> {
    redirect(&app, &who, &p, &headers, Part::Thumbnail).await
}

pub async fn text(State(app): State<AppState>, Caller(who): Caller, p: Params, headers: HeaderMap) -> ApiResult<Response> {
    redirect(&app, &who, &p, &headers, Part::Text).await
}
