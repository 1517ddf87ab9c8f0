use api::{ApiError, ApiResult, Caller, JsonBody, PageQuery, Params};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::{Action, DomainError, OrgId, Role, UserId};
use serde::Deserialize;
use store::{Member, Page};

use crate::AppState;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    role: Role,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TransferOwnership {
    user_id: String,
}

pub async fn list(State(app): State<AppState>, Caller(who): Caller, p: Params, q: PageQuery) -> ApiResult<Json<Page<Member>>> {
    let org_id: OrgId = p.get("orgId")?;
    let q = q.only(&[])?;
    let store = &app.store;
    let (_, page) = store.authorize_with(&who, org_id, Action::ReadMembers, |pending| async move { store.list_members(&pending, &q.page).await }).await?;
    Ok(Json(page))
}

/// Authorizes for `action` while reading the target member in the same round trip.
async fn target_of(app: &AppState, who: &domain::Identity, p: &Params, action: Action) -> ApiResult<(store::OrgScope, Member)> {
    let org_id: OrgId = p.get("orgId")?;
    let user: UserId = p.get("userId")?;
    let store = &app.store;
    let (scope, target) = store.authorize_with(who, org_id, action, |pending| async move { store.get_member(&pending, &user).await }).await?;
    Ok((scope, target.ok_or(DomainError::NotFound)?))
}

pub async fn change_role(State(app): State<AppState>, Caller(who): Caller, p: Params, JsonBody(input): JsonBody<ChangeRole>) -> ApiResult<Json<Member>> {
    let (scope, target) = target_of(&app, &who, &p, Action::ManageMembers).await?;
    Ok(Json(app.store.change_role(&scope, &target, input.role).await?))
}

pub async fn remove(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<StatusCode> {
    // Leaving needs only membership; removing someone else needs member management.
    let leaving = p.get::<UserId>("userId").is_ok_and(|u| u == who.user_id);
    let action = if leaving { Action::ReadOrg } else { Action::ManageMembers };
    let (scope, target) = target_of(&app, &who, &p, action).await?;
    app.store.remove_member(&scope, &target).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn transfer_ownership(
    State(app): State<AppState>,
    Caller(who): Caller,
    p: Params,
    JsonBody(input): JsonBody<TransferOwnership>,
) -> ApiResult<StatusCode> {
    let org_id: OrgId = p.get("orgId")?;
    let user: UserId = input.user_id.parse().map_err(|_| ApiError::invalid(vec![domain::FieldError::new("userId", "must be a user id")]))?;
    let store = &app.store;
    let (scope, target) =
        store.authorize_with(&who, org_id, Action::TransferOwnership, |pending| async move { store.get_member(&pending, &user).await }).await?;
    let target = target.ok_or_else(|| ApiError::invalid(vec![domain::FieldError::new("userId", "is not a member of this organization")]))?;
    app.store.transfer_ownership(&scope, &target).await?;
    Ok(StatusCode::NO_CONTENT)
}
