//! The routes: exports of an org (owners), the caller's own export, and erasure.

use std::collections::BTreeMap;

use api::{ApiError, ApiResult, Caller, PageQuery, Params, RouteTable};
use aws_sdk_s3::presigning::PresigningConfig;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::{Action, OrgId};
use http::Method;
use serde::Serialize;
use store::{ExportJob, ExportKind, ExportStatus, ExportTarget, Page};

use crate::{AppState, DOWNLOAD_VALID};

/// An export job as its requester sees it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportView {
    pub id: String,
    /// `org`: an org's data; `user`: the caller's own data.
    pub kind: ExportKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OrgId>,
    /// queued, running, complete, failed, or withdrawn (deleted: it held data of a user who
    /// erased their account).
    pub status: ExportStatus,
    /// Records written so far per section (files: file contents).
    pub counts: BTreeMap<String, u64>,
    /// Bytes of the zip written so far.
    pub bytes: u64,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A complete export's zip: a presigned GET valid 5 minutes (read the job again for a new one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download: Option<Download>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Download {
    pub url: String,
    pub expires_in_seconds: u64,
}

impl ExportView {
    fn of(job: ExportJob) -> ExportView {
        ExportView {
            id: job.id,
            kind: job.kind,
            org_id: job.org_id,
            status: job.status,
            counts: job.counts,
            bytes: job.bytes,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            error: job.error,
            download: None,
        }
    }
}

pub fn routes() -> RouteTable<AppState> {
    RouteTable::default()
        .tag("exports", "Exports of an organization's data (owners) and of a user's own data, and account erasure")
        .route(Method::POST, "/orgs/{orgId}/exports", "startOrgExport", "Start an export of the organization's data as one zip (owner; one at a time)", start_org)
        .returns::<ExportView>(202)
        .rate_class(domain::RateClass::Exports)
        .route(Method::GET, "/orgs/{orgId}/exports", "listOrgExports", "The organization's exports, newest first (owner)", list_org)
        .returns::<Page<ExportView>>(200)
        .paginated(&[])
        .route(Method::GET, "/orgs/{orgId}/exports/{exportId}", "getOrgExport", "An export's progress; when complete, a download link valid 5 minutes (owner)", get_org)
        .returns::<ExportView>(200)
        .route(Method::POST, "/me/export", "startMyExport", "Start an export of the caller's own data across their organizations (one at a time)", start_mine)
        .returns::<ExportView>(202)
        .rate_class(domain::RateClass::Exports)
        .route(Method::GET, "/me/export", "getMyExport", "The caller's latest export; when complete, a download link valid 5 minutes", get_mine)
        .returns::<ExportView>(200)
        .route(
            Method::DELETE,
            "/me",
            "eraseMe",
            "Erase the caller's account: memberships, personal data, conversations, notifications, exports and the sign-in (refused while they are the last owner of an organization)",
            crate::erase::erase_route,
        )
        .no_content()
}

async fn started(app: &AppState, job: ExportJob) -> ApiResult<(StatusCode, Json<ExportView>)> {
    if let Err(e) = app.enqueue(&ExportTarget::of(&job)).await {
        // Nothing will run it: end it, releasing the lock, so that the caller can try again.
        if let Ok(Some(mut scope)) = app.store.export_scope(&ExportTarget::of(&job)).await {
            let _ = app.store.finish_export(&mut scope, Err("could not be queued".into())).await;
        }
        return Err(e.into());
    }
    Ok((StatusCode::ACCEPTED, Json(ExportView::of(job))))
}

async fn start_org(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<(StatusCode, Json<ExportView>)> {
    let org: OrgId = p.get("orgId")?;
    let scope = app.store.authorize(&who, org, Action::ExportOrg).await?;
    let job = app.store.start_org_export(&scope).await?;
    started(&app, job).await
}

async fn start_mine(State(app): State<AppState>, Caller(who): Caller) -> ApiResult<(StatusCode, Json<ExportView>)> {
    let job = app.store.start_user_export(&who).await?;
    started(&app, job).await
}

async fn list_org(State(app): State<AppState>, Caller(who): Caller, p: Params, page: PageQuery) -> ApiResult<Json<Page<ExportView>>> {
    let org: OrgId = p.get("orgId")?;
    let page = page.only(&[])?;
    let store = &app.store;
    let (_, found) = store.authorize_with(&who, org, Action::ExportOrg, |pending| async move { store.list_org_exports(&pending, &page.page).await }).await?;
    Ok(Json(Page { items: found.items.into_iter().map(ExportView::of).collect(), next_cursor: found.next_cursor }))
}

async fn get_org(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Json<ExportView>> {
    let org: OrgId = p.get("orgId")?;
    let id: String = p.get("exportId")?;
    let store = &app.store;
    let (_, job) = store.authorize_with(&who, org, Action::ExportOrg, |pending| async move { store.org_export(&pending, &id).await }).await?;
    Ok(Json(with_download(&app, job).await?))
}

async fn get_mine(State(app): State<AppState>, Caller(who): Caller) -> ApiResult<Json<ExportView>> {
    let job = app.store.latest_user_export(&who.user_id).await?.ok_or_else(|| ApiError::not_found().detail("you have not exported your data"))?;
    Ok(Json(with_download(&app, job).await?))
}

/// The job's view, with a presigned download when it is complete.
async fn with_download(app: &AppState, job: ExportJob) -> ApiResult<ExportView> {
    let complete = job.status == ExportStatus::Complete;
    let key = job.object_key.clone();
    let file_name = format!("tenantry-export-{}.zip", job.id);
    let mut view = ExportView::of(job);
    if complete {
        let config = PresigningConfig::expires_in(DOWNLOAD_VALID).map_err(|_| ApiError::internal())?;
        let presigned = app
            .s3
            .get_object()
            .bucket(&*app.export_bucket)
            .key(key)
            .response_content_type("application/zip")
            .response_content_disposition(format!("attachment; filename=\"{file_name}\""))
            .presigned(config)
            .await
            .map_err(|e| {
                tracing::error!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "presigning an export download failed");
                ApiError::internal()
            })?;
        view.download = Some(Download { url: presigned.uri().to_owned(), expires_in_seconds: DOWNLOAD_VALID.as_secs() });
    }
    Ok(view)
}
