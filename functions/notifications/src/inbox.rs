//! The routes: the caller's inbox in an org and their preferences (any member, each their
//! own: the inbox partition is built from the org the authorization checked and the caller's
//! verified identity), and the unauthenticated unsubscribe link.

use api::{ApiError, ApiResult, Caller, JsonBody, PageQuery, Params};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::notify::{Preferences, TokenError, UnsubscribeToken};
use domain::{Action, OrgId};
use serde::Serialize;
use store::{Notification, Page};

use crate::AppState;
use crate::consumer::about;

/// The unread count.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct UnreadCount {
    pub unread: u64,
}

/// The body mail clients POST for a one-click unsubscribe (RFC 8058). Documents the body;
/// the handler compares the bytes.
#[derive(Debug, schemars::JsonSchema)]
#[allow(dead_code)]
pub struct UnsubscribeForm {
    /// Always `One-Click`.
    #[serde(rename = "List-Unsubscribe")]
    #[schemars(regex(pattern = r"^One-Click$"))]
    pub list_unsubscribe: String,
}

fn unread_flag(q: &PageQuery) -> ApiResult<bool> {
    match q.param("unread") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::malformed("unread must be true or false")),
    }
}

pub async fn list(State(app): State<AppState>, Caller(who): Caller, p: Params, q: PageQuery) -> ApiResult<Json<Page<Notification>>> {
    let org: OrgId = p.get("orgId")?;
    let q = q.only(&["unread"])?;
    let unread = unread_flag(&q)?;
    let (store, user, page) = (&app.store, &who.user_id, &q.page);
    let (_, listed) =
        store.authorize_with(&who, org, Action::ReadOrg, |pending| async move { store.list_notifications(&pending, user, unread, page).await }).await?;
    Ok(Json(listed))
}

pub async fn unread_count(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Json<UnreadCount>> {
    let org: OrgId = p.get("orgId")?;
    let (store, user) = (&app.store, &who.user_id);
    let (_, unread) = store.authorize_with(&who, org, Action::ReadOrg, |pending| async move { store.unread_count(&pending, user).await }).await?;
    Ok(Json(UnreadCount { unread }))
}

pub async fn mark_read(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Json<Notification>> {
    let org: OrgId = p.get("orgId")?;
    let id: ulid::Ulid = p.get("notificationId")?;
    let (store, user, id) = (&app.store, &who.user_id, &id.to_string());
    let (scope, state) = store.authorize_with(&who, org, Action::ReadOrg, |pending| async move { store.notification_state(&pending, user, id).await }).await?;
    Ok(Json(store.mark_notification_read(&scope, state.ok_or(domain::DomainError::NotFound)?).await?))
}

pub async fn mark_all_read(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<StatusCode> {
    let org: OrgId = p.get("orgId")?;
    let scope = app.store.authorize(&who, org, Action::ReadOrg).await?;
    app.store.mark_all_notifications_read(&scope).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_preferences(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Json<Preferences>> {
    let org: OrgId = p.get("orgId")?;
    let (store, user) = (&app.store, &who.user_id);
    let (_, preferences) =
        store.authorize_with(&who, org, Action::ReadOrg, |pending| async move { store.notification_preferences(&pending, user).await }).await?;
    Ok(Json(preferences))
}

pub async fn put_preferences(
    State(app): State<AppState>,
    Caller(who): Caller,
    p: Params,
    JsonBody(input): JsonBody<Preferences>,
) -> ApiResult<Json<Preferences>> {
    let org: OrgId = p.get("orgId")?;
    let scope = app.store.authorize(&who, org, Action::ReadOrg).await?;
    Ok(Json(app.store.set_notification_preferences(&scope, input).await?))
}

/// The token of an unsubscribe link, verified.
fn token_of(app: &AppState, q: PageQuery) -> ApiResult<UnsubscribeToken> {
    let q = q.only(&["token"])?;
    let raw = q.param("token").ok_or_else(|| ApiError::malformed("the link has no token"))?;
    UnsubscribeToken::verify(raw, &app.unsubscribe_key).map_err(|e| match e {
        TokenError::Malformed | TokenError::BadSignature => ApiError::malformed("this unsubscribe link is not valid"),
    })
}

fn html(body: String) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // Nothing on the page may be framed, cached by a proxy, or leak the token in a referrer.
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    res
}

fn page(title: &str, inner: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title></head>\
         <body style=\"font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1f2430\">\
         <h1 style=\"font-size:1.3rem\">{t}</h1>{inner}</body></html>",
        t = mail::escape_html(title)
    )
}

/// `GET /unsubscribe?token=…`: says what the link would stop, with a button; changes nothing
/// (mail scanners follow links).
pub async fn unsubscribe_page(State(app): State<AppState>, q: PageQuery) -> ApiResult<Response> {
    let raw = q.param("token").map(str::to_owned);
    let token = token_of(&app, q)?;
    let org = app.store.notifying_org(token.org).await?.map_or_else(|| "this organization".into(), |o| o.name);
    let inner = format!(
        "<p>Stop emails about {what} from {org}? You will still see them in the app.</p>\
         <form method=\"post\" action=\"?token={token}\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\" style=\"padding:.5rem 1rem\">Unsubscribe</button></form>",
        what = mail::escape_html(about(token.kind)),
        org = mail::escape_html(&org),
        token = mail::escape_html(&raw.unwrap_or_default()),
    );
    Ok(html(page("Unsubscribe", &inner)))
}

/// `POST /unsubscribe?token=…` with `List-Unsubscribe=One-Click`: turns email off for the
/// token's one user, org and kind.
pub async fn unsubscribe(State(app): State<AppState>, q: PageQuery, body: Bytes) -> ApiResult<Response> {
    let token = token_of(&app, q)?;
    if body.as_ref() != b"List-Unsubscribe=One-Click" {
        return Err(ApiError::malformed("the body must be List-Unsubscribe=One-Click"));
    }
    let (done, org) = futures::join!(app.store.unsubscribe(token.org, &token.user, token.kind), app.store.notifying_org(token.org));
    done?;
    let org = org?.map_or_else(|| "this organization".into(), |o| o.name);
    let inner = format!(
        "<p>You will no longer get emails about {} from {}. You can turn them back on in your notification settings.</p>",
        mail::escape_html(about(token.kind)),
        mail::escape_html(&org)
    );
    Ok(html(page("Unsubscribed", &inner)))
}
