//! The routes. Conversations are keyed by the caller's own user id (from the verified
//! claims): a member reaches their own conversations and nobody else's; another member's id
//! in the path finds nothing (404), admins and platform operators included.

use api::{ApiError, ApiResult, Caller, JsonBody, OptionalJsonBody, PageQuery, Params, if_match, last_writer_wins, with_etag};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::chat::{self, ChatSettings, ConversationId};
use domain::{Action, DomainError, Identity, OrgId};
use serde::{Deserialize, Serialize};
use store::chat::{ChatMessage, Conversation, MESSAGES_SHOWN, StoredChatSettings};
use store::{OrgScope, Page};

use crate::AppState;

/// A new conversation.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateConversation {
    /// Its title (default: "New conversation", then the first question's beginning).
    #[serde(default)]
    #[schemars(length(min = 1, max = 200))]
    pub title: Option<String>,
}

/// A new title.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenameConversation {
    #[schemars(length(min = 1, max = 200))]
    pub title: String,
}

/// A question.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostMessage {
    #[schemars(length(min = 1, max = 16000))]
    pub content: String,
    /// One of the org's allowed models (default: the org's default model).
    #[serde(default)]
    pub model: Option<String>,
    /// Retrieve only from the files attached to this project (or its tasks).
    #[serde(default)]
    pub project_id: Option<domain::work::ProjectId>,
    /// Retrieve only from these files.
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub file_ids: Vec<domain::work::FileId>,
}

/// A conversation with its latest messages.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationWithMessages {
    #[serde(flatten)]
    pub conversation: Conversation,
    /// The latest 100, oldest first.
    pub messages: Vec<ChatMessage>,
}

pub async fn get_settings(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Response> {
    let org: OrgId = p.get("orgId")?;
    let store = &app.store;
    let (scope, stored) =
        store.authorize_with(&who, org, Action::ReadWorkload, |pending| async move { store.chat_settings(&pending, domain::Plan::Free).await }).await?;
    // Never saved: the defaults of the org's plan (known once authorized).
    let mut stored: StoredChatSettings = stored.or_defaults_of(scope.org().plan);
    if !domain::permits(scope.role(), Action::UpdateOrg) {
        // The prompt is the admins' business.
        stored.settings.system_prompt = String::new();
    }
    Ok(with_etag(stored.version, Json(stored)))
}

pub async fn put_settings(
    State(app): State<AppState>,
    Caller(who): Caller,
    p: Params,
    headers: HeaderMap,
    JsonBody(input): JsonBody<ChatSettings>,
) -> ApiResult<Response> {
    let org: OrgId = p.get("orgId")?;
    let expected = if_match(&headers)?;
    let store = &app.store;
    let (scope, read) =
        store.authorize_with(&who, org, Action::UpdateOrg, |pending| async move { store.chat_settings(&pending, domain::Plan::Free).await }).await?;
    input.validate(scope.org().plan).map_err(ApiError::invalid)?;
    let mut first = Some(read);
    let saved = last_writer_wins(expected, || {
        let read = first.take();
        let (app, scope, input) = (&app, &scope, input.clone());
        async move {
            let current = match read {
                Some(c) => c,
                None => app.store.chat_settings(scope, scope.org().plan).await?,
            };
            app.store.put_chat_settings(scope, &current, expected, input).await
        }
    })
    .await?;
    Ok(with_etag(saved.version, Json(saved)))
}

pub async fn create(
    State(app): State<AppState>,
    Caller(who): Caller,
    p: Params,
    OptionalJsonBody(input): OptionalJsonBody<CreateConversation>,
) -> ApiResult<Response> {
    let org: OrgId = p.get("orgId")?;
    let title = input.unwrap_or_default().title.map(|t| chat::title(&t, "title")).transpose().map_err(|e| ApiError::invalid(vec![e]))?;
    let scope = app.store.authorize(&who, org, Action::WriteWorkload).await?;
    let conv = app.store.create_conversation(&scope, title).await?;
    let location = HeaderValue::from_str(&format!("/orgs/{org}/conversations/{}", conv.id)).map_err(|_| ApiError::internal())?;
    let mut res = with_etag(conv.version, (StatusCode::CREATED, Json(conv)).into_response());
    res.headers_mut().insert(header::LOCATION, location);
    Ok(res)
}

pub async fn list(State(app): State<AppState>, Caller(who): Caller, p: Params, q: PageQuery) -> ApiResult<Json<Page<Conversation>>> {
    let org: OrgId = p.get("orgId")?;
    let q = q.only(&[])?;
    let (store, page, user) = (&app.store, &q.page, &who.user_id);
    let (_, listed) =
        store.authorize_with(&who, org, Action::WriteWorkload, |pending| async move { store.list_conversations(&pending, user, page).await }).await?;
    Ok(Json(listed))
}

/// Authorizes chatting (members and above) while reading the caller's conversation the path
/// names, in one round trip.
pub(crate) async fn conversation_of(app: &AppState, who: &Identity, p: &Params) -> Result<(OrgScope, Conversation), ApiError> {
    let org: OrgId = p.get("orgId")?;
    let id: ConversationId = p.get("conversationId")?;
    let (store, user) = (&app.store, &who.user_id);
    let (scope, conv) =
        store.authorize_with(who, org, Action::WriteWorkload, |pending| async move { store.get_conversation(&pending, user, id).await }).await?;
    Ok((scope, conv.ok_or(DomainError::NotFound)?))
}

/// The conversation as read with the authorization (a first attempt), or read again (a retry).
async fn fresh(app: &AppState, scope: &OrgScope, user: &domain::UserId, read: Option<Conversation>, id: ConversationId) -> Result<Conversation, DomainError> {
    match read {
        Some(c) => Ok(c),
        None => app.store.get_conversation(scope, user, id).await?.ok_or(DomainError::NotFound),
    }
}

pub async fn get(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Response> {
    let org: OrgId = p.get("orgId")?;
    let id: ConversationId = p.get("conversationId")?;
    let (store, user) = (&app.store, &who.user_id);
    // The messages are read with the conversation and the authorization, in one round trip.
    let (_, (conversation, messages)) = store
        .authorize_with(&who, org, Action::WriteWorkload, |pending| async move {
            let (conv, messages) = futures::join!(store.get_conversation(&pending, user, id), store.recent_messages(&pending, id, MESSAGES_SHOWN));
            Ok((conv?, messages?))
        })
        .await?;
    let conversation = conversation.ok_or(DomainError::NotFound)?;
    Ok(with_etag(conversation.version, Json(ConversationWithMessages { conversation, messages })))
}

pub async fn rename(
    State(app): State<AppState>,
    Caller(who): Caller,
    p: Params,
    headers: HeaderMap,
    JsonBody(input): JsonBody<RenameConversation>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let title = chat::title(&input.title, "title").map_err(|e| ApiError::invalid(vec![e]))?;
    let (scope, conv) = conversation_of(&app, &who, &p).await?;
    let mut first = Some(conv.clone());
    let renamed = last_writer_wins(expected, || {
        let read = first.take();
        let (app, scope, title, user) = (&app, &scope, title.clone(), &who.user_id);
        async move {
            let current = fresh(app, scope, user, read, conv.id).await?;
            app.store.rename_conversation(scope, &current, expected, title).await
        }
    })
    .await?;
    Ok(with_etag(renamed.version, Json(renamed)))
}

pub async fn delete(State(app): State<AppState>, Caller(who): Caller, p: Params, headers: HeaderMap) -> ApiResult<StatusCode> {
    let expected = if_match(&headers)?;
    let (scope, conv) = conversation_of(&app, &who, &p).await?;
    let mut first = Some(conv.clone());
    last_writer_wins(expected, || {
        let read = first.take();
        let (app, scope, user) = (&app, &scope, &who.user_id);
        async move {
            let current = fresh(app, scope, user, read, conv.id).await?;
            app.store.delete_conversation(scope, &current, expected).await
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether the request asks for server-sent events.
fn wants_events(headers: &HeaderMap) -> bool {
    api::accepts(headers, "text/event-stream")
}

pub async fn post_message(
    State(app): State<AppState>,
    Caller(who): Caller,
    p: Params,
    headers: HeaderMap,
    JsonBody(input): JsonBody<PostMessage>,
) -> ApiResult<Response> {
    let content = chat::message_content(&input.content, "content").map_err(|e| ApiError::invalid(vec![e]))?;
    if input.file_ids.len() > 20 {
        return Err(ApiError::invalid(vec![domain::FieldError::new("fileIds", "at most 20 files")]));
    }
    let filter = crate::retrieval::Filter { project: input.project_id.map(|p| p.to_string()), files: input.file_ids.iter().map(ToString::to_string).collect() };
    let org: OrgId = p.get("orgId")?;
    let id: ConversationId = p.get("conversationId")?;
    let (store, user) = (&app.store, &who.user_id);
    // The settings and the history are read with the conversation and the authorization.
    let (scope, (conv, settings, recent)) = store
        .authorize_with(&who, org, Action::WriteWorkload, |pending| async move {
            let (conv, settings, recent) = futures::join!(
                store.get_conversation(&pending, user, id),
                store.chat_settings(&pending, domain::Plan::Free),
                store.recent_messages(&pending, id, crate::turn::HISTORY_MESSAGES)
            );
            Ok((conv?, settings?, recent?))
        })
        .await?;
    let conv = conv.ok_or(DomainError::NotFound)?;
    let settings = settings.or_defaults_of(scope.org().plan).settings;
    let prepared = crate::turn::prepare(&app, scope, conv, settings, &recent, content, input.model, &filter).await?;
    if wants_events(&headers) { crate::turn::stream(app, prepared).await } else { crate::turn::answer(&app, prepared).await }
}
