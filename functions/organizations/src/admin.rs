use api::{ApiError, ApiResult, Caller, JsonBody, PageQuery, Params};
use axum::Json;
use axum::extract::State;
use domain::{FieldError, OrgId, Plan, RateLimits, RateOverride};
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

/// An org's rate limits as operators see them.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgRateLimits {
    pub org_id: OrgId,
    pub plan: Plan,
    /// The plan's limits (per minute).
    pub plan_limits: RateLimits,
    /// The operators' override, if one is set (expired or not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#override: Option<RateOverride>,
    /// The limits in force now.
    pub effective: RateLimits,
}

/// An override of an org's rate limits: a `multiplier` of the plan's or explicit `limits`,
/// optionally until `expiresAt`. Neither: back to the plan's.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetLimits {
    #[serde(default)]
    multiplier: Option<u64>,
    #[serde(default)]
    limits: Option<RateLimits>,
    /// RFC 3339, in the future.
    #[serde(default)]
    expires_at: Option<String>,
}

fn rate_view(store: &store::Store, org: &Org) -> OrgRateLimits {
    OrgRateLimits {
        org_id: org.id,
        plan: org.plan,
        plan_limits: org.plan.limits().rate_limits,
        r#override: org.rate_override.clone(),
        effective: store.rate_limits_of(org),
    }
}

pub async fn get_limits(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Json<OrgRateLimits>> {
    let org_id: OrgId = p.get("orgId")?;
    let scope = app.store.admin_scope(&who, org_id).await?;
    if scope.org().status == OrgStatus::Deleting {
        return Err(ApiError::not_found());
    }
    Ok(Json(rate_view(&app.store, scope.org())))
}

pub async fn set_limits(State(app): State<AppState>, Caller(who): Caller, p: Params, JsonBody(input): JsonBody<SetLimits>) -> ApiResult<Json<OrgRateLimits>> {
    let org_id: OrgId = p.get("orgId")?;
    let now = app.store.clock().epoch();
    let mut errors = Vec::new();
    if input.multiplier.is_some() && input.limits.is_some() {
        errors.push(FieldError::new("multiplier", "give a multiplier or explicit limits, not both"));
    }
    if let Some(m) = input.multiplier
        && !(1..=domain::MAX_RATE_MULTIPLIER).contains(&m)
    {
        errors.push(FieldError::new("multiplier", format!("must be 1 to {}", domain::MAX_RATE_MULTIPLIER)));
    }
    if let Some(limits) = &input.limits
        && let Err(domain::DomainError::Invalid(bad)) = limits.validate()
    {
        errors.extend(bad);
    }
    if let Some(at) = &input.expires_at {
        match domain::rfc3339_epoch(at) {
            Some(epoch) if epoch > now => {}
            Some(_) => errors.push(FieldError::new("expiresAt", "must be in the future")),
            None => errors.push(FieldError::new("expiresAt", "must be an RFC 3339 date-time")),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let scope = app.store.admin_scope(&who, org_id).await?;
    let rate = (input.multiplier.is_some() || input.limits.is_some()).then(|| RateOverride {
        multiplier: input.multiplier,
        limits: input.limits,
        expires_at: input.expires_at.clone(),
        set_by: who.user_id.to_string(),
        set_at: app.store.clock().rfc3339(),
    });
    let org = app.store.set_org_rate_override(&scope, rate).await?;
    Ok(Json(rate_view(&app.store, &org)))
}
