use api::{ApiError, ApiResult, Caller, JsonBody};
use axum::Json;
use axum::extract::State;
use domain::{FieldError, OrgName};
use serde::{Deserialize, Deserializer};
use store::UserProfile;

use crate::AppState;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(extend("required" = ["displayName"]))]
pub struct UpdateMe {
    /// `null` clears the name; absent is an error (nothing else is editable).
    #[serde(default, deserialize_with = "present")]
    display_name: Option<Option<String>>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

pub async fn get(State(app): State<AppState>, Caller(who): Caller) -> ApiResult<Json<UserProfile>> {
    Ok(Json(app.store.ensure_user(&who).await?))
}

pub async fn update(State(app): State<AppState>, Caller(who): Caller, JsonBody(input): JsonBody<UpdateMe>) -> ApiResult<Json<UserProfile>> {
    let Some(name) = input.display_name else {
        return Err(ApiError::invalid(vec![FieldError::new("displayName", "is required (null clears it)")]));
    };
    // Display names follow the same rules as org names.
    let name = name.map(|n| OrgName::parse("displayName", &n).map(|n| n.as_str().to_owned())).transpose().map_err(|e| ApiError::invalid(vec![e]))?;
    Ok(Json(app.store.set_display_name(&who, name).await?))
}
