//! Local-only auth routes (absent from the deployed API, where the front end talks to Cognito
//! directly): sign up, confirm, log in, refresh, against the local user pool.

use api::{ApiError, ApiResult, JsonBody};
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType};
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
    /// The trigger handlers the deployed user pool calls; the local pool does not, so these
    /// routes call them with the events Cognito would send.
    pub triggers: std::sync::Arc<cognito_triggers::Triggers>,
}

impl AuthState {
    /// The event Cognito sends a trigger (common fields; `request` and `response` per source).
    fn event(&self, source: &str, user_name: &str, request: Value, response: Value) -> Value {
        json!({
            "version": if source.starts_with("TokenGeneration_") { "2" } else { "1" },
            "region": testkit::endpoint::REGION,
            "userPoolId": self.resources.user_pool_id,
            "userName": user_name,
            "callerContext": { "awsSdkVersion": "tenantry-local", "clientId": self.resources.client_id },
            "triggerSource": source,
            "request": request,
            "response": response,
        })
    }

    /// Calls a trigger as Cognito would; a refusal becomes the 400 Cognito answers with.
    async fn trigger(&self, source: &str, user_name: &str, request: Value, response: Value) -> ApiResult<Value> {
        let event = self.event(source, user_name, request, response);
        self.triggers.handle(event).await.map_err(|e| {
            let stage = source.split('_').next().unwrap_or(source);
            ApiError::new(StatusCode::BAD_REQUEST, "trigger-refused", "Refused").detail(format!("{stage} failed with error {e}"))
        })
    }

    /// The user's attributes as Cognito passes them to triggers.
    async fn attributes(&self, email: &str) -> ApiResult<serde_json::Map<String, Value>> {
        let user = self
            .cognito
            .admin_get_user()
            .user_pool_id(&self.resources.user_pool_id)
            .username(email)
            .send()
            .await
            .map_err(|e| cognito_error(&e.into_service_error()))?;
        let mut attrs: serde_json::Map<String, Value> =
            user.user_attributes().iter().filter_map(|a| a.value().map(|v| (a.name().to_owned(), Value::String(v.to_owned())))).collect();
        attrs.insert("cognito:user_status".into(), Value::String(user.user_status().map(|s| s.as_str().to_owned()).unwrap_or_default()));
        Ok(attrs)
    }
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
        .route("/local/mail", axum::routing::get(mail))
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
        Some("InvalidPasswordException") | Some("InvalidParameterException") => ApiError::invalid(vec![domain::FieldError::new("password", message)]),
        Some("NotAuthorizedException") | Some("UserNotFoundException") => ApiError::unauthorized().detail("incorrect email or password"),
        Some("UserNotConfirmedException") => ApiError::new(StatusCode::FORBIDDEN, "not-confirmed", "Not confirmed").detail("confirm the sign-up first"),
        Some("CodeMismatchException") | Some("ExpiredCodeException") => ApiError::invalid(vec![domain::FieldError::new("code", "is not the code we sent")]),
        code => {
            tracing::error!(?code, %message, "cognito error");
            ApiError::internal()
        }
    }
}

async fn signup(State(s): State<AuthState>, JsonBody(input): JsonBody<Credentials>) -> ApiResult<(StatusCode, Json<Value>)> {
    let email = email_of(&input.email)?;
    s.trigger(
        "PreSignUp_SignUp",
        email.as_str(),
        json!({ "userAttributes": { "email": input.email }, "validationData": {}, "clientMetadata": {} }),
        json!({ "autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false }),
    )
    .await?;
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
    let attrs = s.attributes(email.as_str()).await?;
    let user_name = attrs.get("sub").and_then(Value::as_str).unwrap_or(email.as_str()).to_owned();
    s.trigger("PostConfirmation_ConfirmSignUp", &user_name, json!({ "userAttributes": attrs, "clientMetadata": {} }), json!({})).await?;
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
    let Json(mut body) = tokens(out.authentication_result)?;
    let attrs = s.attributes(email.as_str()).await?;
    let user_name = attrs.get("sub").and_then(Value::as_str).unwrap_or(email.as_str()).to_owned();
    s.trigger("PostAuthentication_Authentication", &user_name, json!({ "newDeviceUsed": false, "userAttributes": attrs, "clientMetadata": {} }), json!({}))
        .await?;
    body["claims"] = token_claims(&s, &user_name, attrs).await?;
    Ok(Json(body))
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

/// What PreTokenGeneration adds to the ID token. The local user pool cannot embed claims in
/// the tokens it signs, so they are returned beside them; handlers never rely on them anyway.
async fn token_claims(s: &AuthState, user_name: &str, attrs: serde_json::Map<String, Value>) -> ApiResult<Value> {
    let answer = s
        .trigger(
            "TokenGeneration_Authentication",
            user_name,
            json!({ "userAttributes": attrs, "groupConfiguration": { "groupsToOverride": [], "iamRolesToOverride": [], "preferredRole": null }, "scopes": ["openid", "email"], "clientMetadata": {} }),
            json!({ "claimsAndScopeOverrideDetails": null }),
        )
        .await?;
    Ok(answer["response"]["claimsAndScopeOverrideDetails"]["idTokenGeneration"]["claimsToAddOrOverride"].clone())
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

/// The mail the local SES accepted (local only: there is no inbox), optionally for one
/// recipient: `GET /local/mail?to=ada@example.com`.
async fn mail(State(s): State<AuthState>, q: api::PageQuery) -> ApiResult<Json<Value>> {
    let q = q.only(&["to"])?;
    let all = testkit::endpoint::sent_mail(&s.resources.endpoint).await.map_err(|e| {
        tracing::error!(error = %e, "reading the local mail failed");
        ApiError::internal()
    })?;
    let items: Vec<Value> = all
        .into_iter()
        .filter(|m| q.param("to").is_none_or(|to| m.is_to(to)))
        .map(|m| {
            let headers: Vec<Value> = m.headers.iter().map(|h| json!({"name": h.name, "value": h.value})).collect();
            json!({
                "from": m.source,
                "to": m.destinations["ToAddresses"],
                "subject": m.subject,
                "html": m.body,
                "text": m.text,
                "headers": headers,
                "configurationSet": m.configuration_set,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}
