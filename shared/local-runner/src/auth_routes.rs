//! Local-only auth routes (absent from the deployed API, where the front end talks to Cognito
//! directly): sign up, confirm, log in, refresh, against the local user pool.

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType};
use api::{ApiError, ApiResult, JsonBody};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::provision::{LocalResources, verified_email};

#[derive(Clone)]
pub struct AuthState {
    pub cognito: Client,
    pub resources: LocalResources,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    email: String,
    code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Refresh {
    refresh_token: String,
}

pub fn router(state: AuthState) -> Router {
    Router::new()
        .route("/local/auth/signup", post(signup))
        .route("/local/auth/confirm", post(confirm))
        .route("/local/auth/login", post(login))
        .route("/local/auth/refresh", post(refresh))
        .with_state(state)
}

fn email_of(raw: &str) -> ApiResult<domain::Email> {
    raw.parse().map_err(|_| ApiError::invalid(vec![domain::FieldError::new("email", "must be a valid email address")]))
}

/// Cognito's errors as the problems a client can act on.
fn cognito_error<E: ProvideErrorMetadata>(e: &E) -> ApiError {
    let message = e.message().unwrap_or("").to_owned();
    match e.code() {
        Some("UsernameExistsException") => ApiError::new(StatusCode::CONFLICT, "conflict", "Conflict").detail("an account with this email exists"),
        Some("InvalidPasswordException") | Some("InvalidParameterException") => {
            ApiError::invalid(vec![domain::FieldError::new("password", message)])
        }
        Some("NotAuthorizedException") | Some("UserNotFoundException") => {
            ApiError::unauthorized().detail("incorrect email or password")
        }
        Some("UserNotConfirmedException") => ApiError::new(StatusCode::FORBIDDEN, "not-confirmed", "Not confirmed").detail("confirm the sign-up first"),
        Some("CodeMismatchException") | Some("ExpiredCodeException") => {
            ApiError::invalid(vec![domain::FieldError::new("code", "is not the code we sent")])
        }
        code => {
            tracing::error!(?code, %message, "cognito error");
            ApiError::internal()
        }
    }
}

async fn signup(State(s): State<AuthState>, JsonBody(input): JsonBody<Credentials>) -> ApiResult<(StatusCode, Json<Value>)> {
    let email = email_of(&input.email)?;
    let out = s
        .cognito
        .sign_up()
        .client_id(&s.resources.client_id)
        .username(email.as_str())
        .password(&input.password)
        .user_attributes(AttributeType::builder().name("email").value(email.as_str()).build().expect("name is set"))
        .send()
        .await
        .map_err(|e| cognito_error(&e.into_service_error()))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "userSub": out.user_sub,
            "confirmed": out.user_confirmed,
            "next": "POST /local/auth/confirm with the code; locally no mail is sent and any code is accepted"
        })),
    ))
}

async fn confirm(State(s): State<AuthState>, JsonBody(input): JsonBody<Confirmation>) -> ApiResult<StatusCode> {
    let email = email_of(&input.email)?;
    s.cognito
        .confirm_sign_up()
        .client_id(&s.resources.client_id)
        .username(email.as_str())
        .confirmation_code(&input.code)
        .send()
        .await
        .map_err(|e| cognito_error(&e.into_service_error()))?;
    s.cognito
        .admin_update_user_attributes()
        .user_pool_id(&s.resources.user_pool_id)
        .username(email.as_str())
        .user_attributes(verified_email())
        .send()
        .await
        .map_err(|e| cognito_error(&e.into_service_error()))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn login(State(s): State<AuthState>, JsonBody(input): JsonBody<Credentials>) -> ApiResult<Json<Value>> {
    let email = email_of(&input.email)?;
    let out = s
        .cognito
        .initiate_auth()
        .client_id(&s.resources.client_id)
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", email.as_str())
        .auth_parameters("PASSWORD", &input.password)
        .send()
        .await
        .map_err(|e| cognito_error(&e.into_service_error()))?;
    tokens(out.authentication_result)
}

async fn refresh(State(s): State<AuthState>, JsonBody(input): JsonBody<Refresh>) -> ApiResult<Json<Value>> {
    let out = s
        .cognito
        .initiate_auth()
        .client_id(&s.resources.client_id)
        .auth_flow(AuthFlowType::RefreshTokenAuth)
        .auth_parameters("REFRESH_TOKEN", &input.refresh_token)
        .send()
        .await
        .map_err(|e| cognito_error(&e.into_service_error()))?;
    tokens(out.authentication_result)
}

fn tokens(result: Option<aws_sdk_cognitoidentityprovider::types::AuthenticationResultType>) -> ApiResult<Json<Value>> {
    let r = result.ok_or_else(|| ApiError::unauthorized().detail("a further challenge is required"))?;
    Ok(Json(json!({
        "idToken": r.id_token,
        "accessToken": r.access_token,
        "refreshToken": r.refresh_token,
        "expiresIn": r.expires_in,
        "tokenType": r.token_type,
    })))
}
