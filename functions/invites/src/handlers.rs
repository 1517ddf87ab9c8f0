use api::{ApiError, ApiResult, Caller, JsonBody, PageQuery, Params};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::{Action, DomainError, Email, FieldError, OrgId, Role};
use serde::{Deserialize, Serialize};
use store::{Invite, InviteStatus, InviteToken, Member, NewInvite, Page};

use crate::AppState;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvite {
    #[schemars(email)]
    email: String,
    role: Role,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// The token from the invitation link.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,128}$"))]
    token: String,
}

/// An invitation as the API shows it: never its token hash or send log.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteView {
    id: String,
    org_id: OrgId,
    org_name: String,
    email: Email,
    role: Role,
    status: InviteStatus,
    invited_by: String,
    created_at: String,
    expires_at: String,
    delivered: bool,
    sends: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_sent_at: Option<String>,
}

impl From<Invite> for InviteView {
    fn from(i: Invite) -> InviteView {
        InviteView {
            id: i.id,
            org_id: i.org_id,
            org_name: i.org_name,
            email: i.email,
            role: i.role,
            status: i.status,
            invited_by: i.invited_by.to_string(),
            created_at: i.created_at,
            expires_at: i.expires_at,
            delivered: i.delivered,
            sends: i.sends,
            last_sent_at: i.last_sent_at,
        }
    }
}

/// Sends the mail; a failed send leaves the invitation pending, visible and marked not
/// delivered.
/// An address that bounced or complained (the notifications function's suppression list) gets
/// no mail: the invitation stands, undelivered, and can be shared another way.
async fn suppressed(app: &AppState, email: &Email) -> Result<bool, DomainError> {
    Ok(app.store.is_suppressed(email).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "could not read the suppression list; sending");
        false
    }))
}

async fn send(app: &AppState, scope: &store::OrgScope, who: &domain::Identity, invite: Invite, token: &InviteToken, suppressed: bool) -> ApiResult<Invite> {
    let inviter = who.email.as_ref().map(|e| e.to_string()).unwrap_or_else(|| "A colleague".into());
    if suppressed {
        tracing::info!(invite_id = %invite.id, "invitee's address is suppressed; no mail");
    } else if app.mailer.send_invitation(scope.org(), &invite, &inviter, &token.token).await {
        return Ok(invite);
    }
    match app.store.record_send_failure(scope, &invite).await {
        Ok(updated) => Ok(updated),
        Err(e) => {
            tracing::warn!(error = %e, invite_id = %invite.id, "could not record the failed send");
            Ok(Invite { delivered: false, ..invite })
        }
    }
}

pub async fn create(
    State(app): State<AppState>,
    Caller(who): Caller,
    p: Params,
    JsonBody(input): JsonBody<CreateInvite>,
) -> ApiResult<(StatusCode, Json<InviteView>)> {
    let org_id: OrgId = p.get("orgId")?;
    let email: Email = input.email.parse().map_err(|_| ApiError::invalid(vec![FieldError::new("email", "must be a valid email address")]))?;
    let store = &app.store;
    let lookup = email.clone();
    let app_ref = &app;
    let (scope, (ctx, suppressed)) = store
        .authorize_with(&who, org_id, Action::ManageInvites, |pending| async move {
            let (ctx, suppressed) = futures::join!(store.invite_context(&pending, &lookup), suppressed(app_ref, &lookup));
            Ok((ctx?, suppressed?))
        })
        .await?;
    let token = InviteToken::generate()?;
    let invite = store.create_invite(&scope, &ctx, NewInvite { email, role: input.role, token: &token, ttl_secs: app.mailer.config.invite_ttl_secs }).await?;
    let invite = send(&app, &scope, &who, invite, &token, suppressed).await?;
    Ok((StatusCode::CREATED, Json(invite.into())))
}

pub async fn list(State(app): State<AppState>, Caller(who): Caller, p: Params, q: PageQuery) -> ApiResult<Json<Page<InviteView>>> {
    let org_id: OrgId = p.get("orgId")?;
    let q = q.only(&["status"])?;
    let status = match q.param("status") {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<InviteStatus>(serde_json::Value::String(s.to_owned()))
                .map_err(|_| ApiError::invalid(vec![FieldError::new("status", "must be pending, accepted, declined, revoked or expired")]))?,
        ),
    };
    let store = &app.store;
    let page_request = q.page.clone();
    let (scope, page) =
        store.authorize_with(&who, org_id, Action::ManageInvites, |pending| async move { store.list_invites(&pending, status, &page_request).await }).await?;
    store.expire_stale_invites(&scope, &page.items).await?;
    Ok(Json(Page { items: page.items.into_iter().map(InviteView::from).collect(), next_cursor: page.next_cursor }))
}

async fn target(app: &AppState, who: &domain::Identity, p: &Params) -> ApiResult<(store::OrgScope, Invite)> {
    let org_id: OrgId = p.get("orgId")?;
    let id: String = p.get("inviteId")?;
    let store = &app.store;
    let (scope, invite) = store.authorize_with(who, org_id, Action::ManageInvites, |pending| async move { store.get_invite(&pending, &id).await }).await?;
    Ok((scope, invite.ok_or(DomainError::NotFound)?))
}

pub async fn resend(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Json<InviteView>> {
    let (scope, invite) = target(&app, &who, &p).await?;
    let token = InviteToken::generate()?;
    let (resent, suppressed) =
        futures::join!(app.store.resend_invite(&scope, &invite, &token, app.mailer.config.invite_ttl_secs), suppressed(&app, &invite.email));
    let invite = send(&app, &scope, &who, resent?, &token, suppressed?).await?;
    Ok(Json(invite.into()))
}

pub async fn revoke(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<StatusCode> {
    let (scope, invite) = target(&app, &who, &p).await?;
    app.store.revoke_invite(&scope, &invite).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pending(State(app): State<AppState>, Caller(who): Caller, q: PageQuery) -> ApiResult<Json<Page<InviteView>>> {
    let q = q.only(&[])?;
    let email = match (&who.email, who.email_verified) {
        (Some(e), true) => e,
        _ => return Err(DomainError::EmailNotVerified.into()),
    };
    let page = app.store.pending_invites_for(email, &q.page).await?;
    Ok(Json(Page { items: page.items.into_iter().map(InviteView::from).collect(), next_cursor: page.next_cursor }))
}

fn token_of(body: &TokenBody) -> ApiResult<&str> {
    let t = body.token.trim();
    if t.is_empty() || t.len() > 128 {
        return Err(ApiError::invalid(vec![FieldError::new("token", "must be the token from the invitation link")]));
    }
    Ok(t)
}

/// What accepting returns: the new membership.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    #[serde(flatten)]
    member: Member,
}

pub async fn accept(State(app): State<AppState>, Caller(who): Caller, JsonBody(input): JsonBody<TokenBody>) -> ApiResult<Json<Accepted>> {
    let member = app.store.accept_invite(&who, token_of(&input)?).await.map_err(not_found_alike)?;
    Ok(Json(Accepted { member }))
}

pub async fn decline(State(app): State<AppState>, Caller(who): Caller, JsonBody(input): JsonBody<TokenBody>) -> ApiResult<StatusCode> {
    app.store.decline_invite(&who, token_of(&input)?).await.map_err(not_found_alike)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Wrong, expired, revoked and used tokens answer alike, so a token cannot be probed.
fn not_found_alike(e: DomainError) -> ApiError {
    match e {
        DomainError::NotFound => ApiError::not_found().detail("no open invitation matches this token and your email address"),
        other => other.into(),
    }
}
