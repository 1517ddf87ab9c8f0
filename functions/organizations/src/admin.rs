use api::{ApiError, ApiResult, Caller, JsonBody, PageQuery, Params};
use axum::Json;
use axum::extract::State;
use domain::{FieldError, OrgId, Plan};
use serde::Deserialize;
use store::{Org, OrgStatus, Page};

use crate::AppState;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPlan {
    plan: Plan,
}

pub async fn list(State(app): State<AppState>, Caller(who): Caller, q: PageQuery) -> ApiResult<Json<Page<Org>>> {
    let q = q.only(&["status"])?;
    let status = match q.param("status") {
        None => None,
        Some("active") => Some(OrgStatus::Active),
        Some("suspended") => Some(OrgStatus::Suspended),
        Some("deleting") => Some(OrgStatus::Deleting),
        Some(_) => return Err(ApiError::invalid(vec![FieldError::new("status", "must be active, suspended or deleting")])),
    };
    Ok(Json(app.store.list_all_orgs(&who, status, &q.page).await?))
}

async fn set_status(app: &AppState, who: &domain::Identity, p: &Params, status: OrgStatus) -> ApiResult<Json<Org>> {
    let org_id: OrgId = p.get("orgId")?;
    let scope = app.store.admin_scope(who, org_id).await?;
    Ok(Json(app.store.set_org_status(&scope, status).await?))
}

pub async fn suspend(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Json<Org>> {
    set_status(&app, &who, &p, OrgStatus::Suspended).await
}

pub async fn reactivate(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Json<Org>> {
    set_status(&app, &who, &p, OrgStatus::Active).await
}

pub async fn set_plan(State(app): State<AppState>, Caller(who): Caller, p: Params, JsonBody(input): JsonBody<SetPlan>) -> ApiResult<Json<Org>> {
    let org_id: OrgId = p.get("orgId")?;
    let scope = app.store.admin_scope(&who, org_id).await?;
    Ok(Json(app.store.set_org_plan(&scope, input.plan).await?))
}
