use api::{ApiError, ApiResult, Caller, JsonBody, PageQuery, Params, if_match, with_etag};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use domain::{Action, FieldError, OrgId, OrgName, OrgSettingsPatch, Role, Slug};
use serde::{Deserialize, Serialize};
use store::{MyOrg, NewOrg, Org, OrgScope, Usage};

use crate::AppState;

/// What [`OrgName::parse`] accepts: something besides spaces, no control characters.
const NAME_PATTERN: &str = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    /// 1 to 100 characters, not only spaces, no control characters.
    #[schemars(length(min = 1, max = 100), regex(pattern = NAME_PATTERN))]
    name: String,
    /// 3 to 48 of a-z, 0-9 and '-', not at either end; derived from the name when absent.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{1,46}[a-z0-9]$"))]
    slug: Option<String>,
}

/// At least one of `name` and `settings`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 1))]
pub struct UpdateOrg {
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 100), regex(pattern = NAME_PATTERN))]
    name: Option<String>,
    #[serde(default)]
    #[schemars(with = "OrgSettingsPatch")]
    settings: Option<OrgSettingsPatch>,
}

/// An org as its members see it: the org and the caller's role.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgView {
    #[serde(flatten)]
    org: Org,
    role: Option<Role>,
}

impl OrgView {
    fn of(scope: &OrgScope, org: Org) -> OrgView {
        OrgView { org, role: scope.is_member().then(|| scope.role()) }
    }
}

pub async fn create(State(app): State<AppState>, Caller(who): Caller, JsonBody(input): JsonBody<CreateOrg>) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let name = OrgName::parse("name", &input.name).map_err(|e| errors.push(e)).ok();
    let slug = match input.slug {
        Some(s) => s.parse::<Slug>().map(Some).map_err(|e| errors.push(FieldError::new("slug", e.0))).unwrap_or(None),
        None => None,
    };
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        return Err(ApiError::invalid(errors));
    };
    let profile_name = app.store.get_user(&who.user_id).await?.and_then(|p| p.display_name);
    let scope = app.store.create_org(&who, profile_name, NewOrg { name, slug }).await?;
    let location = format!("/orgs/{}", scope.org_id());
    let mut res = with_etag(scope.org().version, (StatusCode::CREATED, Json(OrgView::of(&scope, scope.org().clone()))));
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

pub async fn list_mine(State(app): State<AppState>, Caller(who): Caller, q: PageQuery) -> ApiResult<Json<store::Page<MyOrg>>> {
    let q = q.only(&[])?;
    Ok(Json(app.store.list_my_orgs(&who.user_id, &q.page).await?))
}

pub async fn get(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Response> {
    let org_id: OrgId = p.get("orgId")?;
    let scope = app.store.authorize(&who, org_id, Action::ReadOrg).await?;
    Ok(with_etag(scope.org().version, Json(OrgView::of(&scope, scope.org().clone()))))
}

pub async fn update(
    State(app): State<AppState>,
    Caller(who): Caller,
    p: Params,
    headers: HeaderMap,
    JsonBody(input): JsonBody<UpdateOrg>,
) -> ApiResult<Response> {
    let org_id: OrgId = p.get("orgId")?;
    let expected = if_match(&headers)?;
    let scope = app.store.authorize(&who, org_id, Action::UpdateOrg).await?;
    if input.name.is_none() && input.settings.is_none() {
        return Err(ApiError::invalid(vec![FieldError::new("body", "give a name or settings to change")]));
    }
    let mut errors = Vec::new();
    let name = input.name.map(|n| OrgName::parse("name", &n)).transpose().map_err(|e| errors.push(e)).ok().flatten();
    let settings = match input.settings {
        Some(patch) => {
            let mut settings = scope.org().settings.clone();
            match patch.apply(&mut settings, "settings.") {
                Ok(()) => Some(settings),
                Err(e) => {
                    errors.extend(e);
                    None
                }
            }
        }
        None => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let org = app.store.update_org(&scope, expected, name, settings).await?;
    Ok(with_etag(org.version, Json(OrgView::of(&scope, org))))
}

pub async fn delete(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<StatusCode> {
    let org_id: OrgId = p.get("orgId")?;
    let scope = app.store.authorize(&who, org_id, Action::DeleteOrg).await?;
    app.store.delete_org(&scope).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn usage(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Json<Usage>> {
    let org_id: OrgId = p.get("orgId")?;
    let store = &app.store;
    let (scope, month) = store.authorize_with(&who, org_id, Action::ReadUsage, |pending| async move { store.usage_with_chat(&pending).await }).await?;
    let resets = domain::epoch_rfc3339(store.clock().next_month_epoch()).unwrap_or_default();
    let chat = store::ChatUsage::of(scope.org(), month.clone(), resets, &scope);
    Ok(Json(Usage::of(scope.org(), month.org, chat, store.rate_limits_of(scope.org()))))
}
