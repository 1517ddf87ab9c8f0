//! Chat: the org's chat settings, each member's conversations and their messages, the
//! monthly token budget (reserved before a model call, settled to the real usage after it),
//! and the record of which files' chunks are in the org's vector index.
//!
//! Items, all in the org's partition (so the org's purge deletes them):
//! - `CHAT#SETTINGS`: the settings (absent: the plan's defaults);
//! - `CONV#{user}#{conversation}`: a conversation, keyed by its owner: a caller's key names
//!   their own user id (from the verified claims), so nobody reaches another member's
//!   conversations, admins and platform operators included;
//! - `MSG#{conversation}#{message}`: its messages, in order (ULIDs);
//! - `USAGE#{month}` (the org's month, with `chatTokens`, `chatReserved` and their sum
//!   `chatCommitted`), `USAGE#{month}#USER#{user}` and `USAGE#{month}#MODEL#{model}`;
//! - `CHUNKS#{file}`: how many chunks of a file the vector index holds.
//!
//! The budget: a reservation adds the call's worst case (input estimate + max output tokens)
//! to `chatCommitted` with one conditional UpdateItem that holds only while the sum stays
//! within the plan's tokens (`chatCommitted <= limit - reservation`): concurrent calls at the
//! edge of the budget are admitted one by one, and the org never commits more than its
//! budget. Settling replaces the reservation with the real usage (which may exceed the
//! estimate of the input; by at most one call's difference). Plain UpdateItems, not
//! transactions: every chat call of an org updates the same month item, and concurrent
//! transactions on one item cancel each other (TransactionConflict) where plain updates queue.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::chat::{ChatSettings, ConversationId, MessageId};
use domain::work::FileId;
use domain::{Action, DomainError, OrgId, UserId};
use serde::{Deserialize, Serialize};

use crate::item::{Entity, from_item, n, s, to_item};
use crate::keys::{self, Key};
use crate::orgs::{require, require_member};
use crate::page::{PagedQuery, Sort};
use crate::scope::{OrgScope, ReadScope};
use crate::tx::{Expr, Tx};
use crate::{Page, PageRequest, Store, UsageMonth};

/// The org's chat settings as stored, with their version (0: never set, the defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredChatSettings {
    #[serde(flatten)]
    pub settings: ChatSettings,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl Entity for StoredChatSettings {
    const TYPE: &'static str = "chat_settings";
}

/// A conversation of one member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: ConversationId,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub title: String,
    pub created_at: String,
    pub updated_at: String,
    pub message_count: u64,
    pub version: u64,
}

impl Entity for Conversation {
    const TYPE: &'static str = "conversation";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    User,
    Assistant,
}

/// Whether a message got its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Complete,
    /// The model call failed: `error` says why; there is no answer.
    Failed,
    /// The client went away while the answer streamed: the answer is what had streamed.
    Cancelled,
}

/// Tokens of one model call (or of a turn's calls together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl TokenUsage {
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
    pub fn add(&mut self, other: TokenUsage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
    }
}

/// What an answer drew on: a chunk of a file, or a task the task tool returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Citation {
    /// `[n]` in the answer.
    pub number: u32,
    /// `file` or `task`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// The file's name, or the task's title.
    pub title: String,
    /// The page of a PDF the chunk begins on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// The API route that serves the cited file or task.
    pub link: String,
}

/// Why a message has no answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageError {
    /// The problem type's slug (`model-throttled`, `model-unavailable`, …).
    pub code: String,
    pub detail: String,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub role: ChatRole,
    pub content: String,
    pub status: MessageStatus,
    /// The model that answered (assistant) or was asked (user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Tokens of the turn's model calls (on the answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    /// Milliseconds from the request to the end of the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub citations: Vec<Citation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<MessageError>,
    pub created_at: String,
}

impl Entity for ChatMessage {
    const TYPE: &'static str = "chat_message";
}

/// A member's usage of one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserChatUsage {
    pub user_id: UserId,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub calls: u64,
    /// Tokens reserved by calls under way (signed, as the org's).
    #[serde(default)]
    pub reserved: i64,
}

impl Entity for UserChatUsage {
    const TYPE: &'static str = "usage_user";
}

/// One model's usage of one month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelChatUsage {
    pub model_id: String,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub calls: u64,
}

impl Entity for ModelChatUsage {
    const TYPE: &'static str = "usage_model";
}

/// A month's chat usage of an org: the org's total, and per model and per member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatUsageMonth {
    pub org: UsageMonth,
    pub models: Vec<ModelChatUsage>,
    pub users: Vec<UserChatUsage>,
}

/// Tokens set aside for one model call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub month: String,
    pub tokens: u64,
    pub user: UserId,
}

/// How many chunks of a file the vector index holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexedFile {
    pub file_id: FileId,
    pub chunks: u64,
    /// The ETag of the text they were made from.
    pub etag: String,
}

impl Entity for IndexedFile {
    const TYPE: &'static str = "indexed_file";
}

/// A turn to record: the user's message and, when the model answered, the answer.
pub struct Turn {
    pub question: ChatMessage,
    pub answer: Option<ChatMessage>,
    /// A title for the conversation, when it has none yet (its first message).
    pub title: Option<String>,
}

/// The most messages a conversation answers with (the newest).
pub const MESSAGES_SHOWN: u32 = 100;

fn signed(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn negative(v: u64) -> AttributeValue {
    AttributeValue::N(format!("-{v}"))
}

fn delta(actual: u64, reserved: u64) -> AttributeValue {
    if actual >= reserved { signed(actual - reserved) } else { negative(reserved - actual) }
}

/// The settings of an org that never saved any: its plan's defaults, version 0.
pub fn default_settings(plan: domain::Plan) -> StoredChatSettings {
    StoredChatSettings { settings: ChatSettings::default_for(plan), version: 0, updated_at: None }
}

impl StoredChatSettings {
    /// These settings, or the defaults of `plan` when they were never saved (read before the
    /// org's plan was known, as a read beside the authorization is).
    pub fn or_defaults_of(self, plan: domain::Plan) -> StoredChatSettings {
        if self.version == 0 { default_settings(plan) } else { self }
    }
}

impl Store {
    /// The org's chat settings (the plan's defaults, version 0, when none were saved).
    pub async fn chat_settings(&self, scope: &impl ReadScope, plan: domain::Plan) -> Result<StoredChatSettings, DomainError> {
        let found: Option<StoredChatSettings> = self.get(&keys::chat_settings(scope.partition())).await?;
        Ok(found.unwrap_or_else(|| default_settings(plan)))
    }

    /// Saves the org's chat settings (admins), on the version given by `If-Match` if any.
    pub async fn put_chat_settings(
        &self,
        scope: &OrgScope,
        current: &StoredChatSettings,
        expected: Option<u64>,
        settings: ChatSettings,
    ) -> Result<StoredChatSettings, DomainError> {
        require(scope, Action::UpdateOrg)?;
        require_member(scope)?;
        if expected.is_some_and(|v| v != current.version) {
            return Err(DomainError::StaleVersion);
        }
        // What changed (the system prompt by its length only), for the audit log.
        let changes = crate::events::field_changes(&current.settings, &settings, &["systemPrompt"]);
        let next = StoredChatSettings { settings, version: current.version + 1, updated_at: Some(self.clock.rfc3339()) };
        let item = to_item(&next, &keys::chat_settings(&scope.partition), &[])?;
        let cond = if current.version == 0 {
            Expr::condition("attribute_not_exists(PK)")
        } else {
            Expr::condition("#v = :v").name("#v", "version").value(":v", n(current.version))
        };
        let mut tx = Tx::default();
        tx.put(&self.table, item, Some(cond), DomainError::StaleVersion);
        if !changes.is_empty() {
            let event = crate::events::DomainEvent {
                changes,
                ..crate::events::DomainEvent::new(self, crate::events::EventKind::ChatSettingsChanged, scope.org_id(), scope.user.as_str())
            };
            self.push_event(&mut tx, &event)?;
        }
        tx.run(self).await?;
        Ok(next)
    }

    /// Starts a conversation of the caller.
    pub async fn create_conversation(&self, scope: &OrgScope, title: Option<String>) -> Result<Conversation, DomainError> {
        require(scope, Action::WriteWorkload)?;
        require_member(scope)?;
        let now = self.clock.rfc3339();
        let id: ConversationId = self.time_ulid().parse().map_err(|_| DomainError::Unavailable)?;
        let conv = Conversation {
            id,
            org_id: scope.org_id(),
            user_id: scope.user.clone(),
            title: title.unwrap_or_else(|| "New conversation".into()),
            created_at: now.clone(),
            updated_at: now,
            message_count: 0,
            version: 1,
        };
        self.put_new(to_item(&conv, &keys::conversation(&scope.partition, &scope.user, id), &[])?, DomainError::Conflict("conversation id collision")).await?;
        Ok(conv)
    }

    /// The caller's conversations, newest first.
    pub async fn list_conversations(&self, scope: &impl ReadScope, user: &UserId, page: &PageRequest) -> Result<Page<Conversation>, DomainError> {
        let partition = keys::org_pk(scope.partition());
        let prefix = keys::conversations_prefix(user);
        self.query_page(&PagedQuery::on_table("conversations", &partition, Sort::Prefix(&prefix)).newest_first(), page).await
    }

    /// One of `user`'s conversations.
    pub async fn get_conversation(&self, scope: &impl ReadScope, user: &UserId, id: ConversationId) -> Result<Option<Conversation>, DomainError> {
        self.get(&keys::conversation(scope.partition(), user, id)).await
    }

    /// The newest `limit` messages of a conversation, oldest first.
    pub async fn recent_messages(&self, scope: &impl ReadScope, id: ConversationId, limit: u32) -> Result<Vec<ChatMessage>, DomainError> {
        let partition = keys::org_pk(scope.partition());
        let prefix = keys::messages_prefix(id);
        let page = self
            .query_page::<ChatMessage>(&PagedQuery::on_table("messages", &partition, Sort::Prefix(&prefix)).newest_first(), &PageRequest::first(limit))
            .await?;
        let mut items = page.items;
        items.reverse();
        Ok(items)
    }

    /// Renames the caller's conversation, on the version given by `If-Match` if any.
    pub async fn rename_conversation(
        &self,
        scope: &OrgScope,
        current: &Conversation,
        expected: Option<u64>,
        title: String,
    ) -> Result<Conversation, DomainError> {
        require_member(scope)?;
        let version = expected.unwrap_or(current.version);
        let next = Conversation { title, updated_at: self.clock.rfc3339(), version: version + 1, ..current.clone() };
        let expr = Expr::update("SET #title = :title, #updated = :updated, #v = :next")
            .when("#v = :v")
            .name("#title", "title")
            .name("#updated", "updatedAt")
            .name("#v", "version")
            .value(":title", s(&next.title))
            .value(":updated", s(&next.updated_at))
            .value(":next", n(next.version))
            .value(":v", n(version));
        self.update_one(&keys::conversation(&scope.partition, &scope.user, current.id), expr, DomainError::StaleVersion).await?;
        Ok(next)
    }

    /// Deletes the caller's conversation, then its messages.
    pub async fn delete_conversation(&self, scope: &OrgScope, current: &Conversation, expected: Option<u64>) -> Result<(), DomainError> {
        require_member(scope)?;
        let version = expected.unwrap_or(current.version);
        let mut tx = Tx::default();
        let cond = Expr::condition("#v = :v").name("#v", "version").value(":v", n(version));
        tx.delete(&self.table, &keys::conversation(&scope.partition, &scope.user, current.id), Some(cond), DomainError::StaleVersion);
        tx.run(self).await?;
        self.delete_prefix(&keys::org_pk(&scope.partition), &keys::messages_prefix(current.id)).await
    }

    /// Records a turn in one transaction: the question, the answer (or the failure recorded
    /// on the question), and the conversation's count, on the conversation's current version
    /// (a rename or delete meanwhile: the turn is stored all the same if the conversation
    /// still exists).
    pub async fn record_turn(&self, scope: &OrgScope, conv: &Conversation, turn: Turn) -> Result<Conversation, DomainError> {
        let p = &scope.partition;
        let added = 1 + u64::from(turn.answer.is_some());
        let now = self.clock.rfc3339();
        let mut tx = Tx::default();
        for m in std::iter::once(&turn.question).chain(turn.answer.as_ref()) {
            tx.put(
                &self.table,
                to_item(m, &keys::message(p, conv.id, m.id), &[])?,
                Some(Expr::condition("attribute_not_exists(PK)")),
                DomainError::Conflict("message id collision"),
            );
        }
        let mut update = "ADD #count :added, #v :one SET #updated = :now".to_owned();
        let mut expr = Expr::condition("attribute_exists(PK)")
            .name("#count", "messageCount")
            .name("#v", "version")
            .name("#updated", "updatedAt")
            .value(":added", n(added))
            .value(":one", n(1))
            .value(":now", s(&now));
        if let Some(title) = &turn.title {
            update.push_str(", #title = :title");
            expr = expr.name("#title", "title").value(":title", s(title));
        }
        tx.update(&self.table, &keys::conversation(p, &conv.user_id, conv.id), expr.update_with(update), DomainError::NotFound);
        tx.run(self).await?;
        Ok(Conversation {
            message_count: conv.message_count + added,
            version: conv.version + 1,
            updated_at: now,
            title: turn.title.unwrap_or_else(|| conv.title.clone()),
            ..conv.clone()
        })
    }

    /// Reserves `tokens` of this month's budget for one call of the caller: the member's
    /// monthly tokens (when the org sets them), then the org's plan. Refused with
    /// [`DomainError::BudgetExhausted`] when either would go over.
    pub async fn reserve_tokens(&self, scope: &OrgScope, tokens: u64, user_limit: Option<u64>) -> Result<Reservation, DomainError> {
        let month = self.clock.month_key();
        let p = &scope.partition;
        let limit = scope.org.plan.limits().chat_tokens_per_month;
        let resets = self.clock.next_month_epoch();
        let exhausted = DomainError::BudgetExhausted { resets_at_epoch: resets };
        let user_key = keys::usage_user(p, &month, &scope.user);
        let mut user_expr = Expr::update("SET #type = :type, #month = :month, #user = :user ADD #reserved :r, #committed :r")
            .name("#type", "_type")
            .name("#month", "month")
            .name("#user", "userId")
            .name("#reserved", "reserved")
            .name("#committed", "committed")
            .value(":type", s(UserChatUsage::TYPE))
            .value(":month", s(&month))
            .value(":user", s(scope.user.to_string()))
            .value(":r", n(tokens));
        if let Some(user_limit) = user_limit {
            let room = user_limit.checked_sub(tokens).ok_or_else(|| exhausted.clone())?;
            user_expr = user_expr.when("attribute_not_exists(#committed) OR #committed <= :room").value(":room", n(room));
        }
        let room = limit.checked_sub(tokens);
        let org_expr = room.map(|room| {
            Expr::update("SET #type = :type, #month = :month ADD #reserved :r, #committed :r")
                .when("attribute_not_exists(#committed) OR #committed <= :room")
                .name("#type", "_type")
                .name("#month", "month")
                .name("#reserved", "chatReserved")
                .name("#committed", "chatCommitted")
                .value(":type", s(UsageMonth::TYPE))
                .value(":month", s(&month))
                .value(":r", n(tokens))
                .value(":room", n(room))
        });
        let org_key = keys::usage_month(p, &month);
        // Both at once (one round trip); whichever held is given back if the other did not.
        let org_update = async {
            match org_expr {
                Some(expr) => self.update_one(&org_key, expr, exhausted.clone()).await,
                None => Err(exhausted.clone()),
            }
        };
        let (user_result, org_result) = futures::join!(self.update_one(&user_key, user_expr, exhausted.clone()), org_update);
        if user_result.is_ok() && org_result.is_ok() {
            return Ok(Reservation { month, tokens, user: scope.user.clone() });
        }
        if user_result.is_ok() {
            let undo = Expr::update("ADD #reserved :neg, #committed :neg")
                .name("#reserved", "reserved")
                .name("#committed", "committed")
                .value(":neg", negative(tokens));
            if let Err(e) = self.update_one(&user_key, undo, DomainError::Unavailable).await {
                tracing::warn!(error = %e, "could not give back a member's token reservation");
            }
        }
        if org_result.is_ok() {
            let undo = Expr::update("ADD #reserved :neg, #committed :neg")
                .name("#reserved", "chatReserved")
                .name("#committed", "chatCommitted")
                .value(":neg", negative(tokens));
            if let Err(e) = self.update_one(&org_key, undo, DomainError::Unavailable).await {
                tracing::warn!(error = %e, "could not give back an org's token reservation");
            }
        }
        Err(user_result.err().or(org_result.err()).unwrap_or(DomainError::Unavailable))
    }

    /// Replaces a reservation with the tokens the call used (`model`'s): the org's month,
    /// the member's and the model's counters.
    pub async fn settle_tokens(&self, scope: &OrgScope, reservation: &Reservation, model: &str, used: TokenUsage) -> Result<(), DomainError> {
        let p = &scope.partition;
        let month = &reservation.month;
        let total = used.total();
        let change = delta(total, reservation.tokens);
        let org = Expr::update("SET #type = :type, #month = :month ADD #reserved :neg, #committed :change, #tokens :total, #in :in, #out :out, #calls :one")
            .name("#type", "_type")
            .name("#month", "month")
            .name("#reserved", "chatReserved")
            .name("#committed", "chatCommitted")
            .name("#tokens", "chatTokens")
            .name("#in", "chatInputTokens")
            .name("#out", "chatOutputTokens")
            .name("#calls", "chatCalls")
            .value(":type", s(UsageMonth::TYPE))
            .value(":month", s(month))
            .value(":neg", negative(reservation.tokens))
            .value(":change", change.clone())
            .value(":total", n(total))
            .value(":in", n(used.input_tokens))
            .value(":out", n(used.output_tokens))
            .value(":one", n(1));
        let user = Expr::update("ADD #reserved :neg, #committed :change, #in :in, #out :out, #calls :one")
            .name("#reserved", "reserved")
            .name("#committed", "committed")
            .name("#in", "inputTokens")
            .name("#out", "outputTokens")
            .name("#calls", "calls")
            .value(":neg", negative(reservation.tokens))
            .value(":change", change)
            .value(":in", n(used.input_tokens))
            .value(":out", n(used.output_tokens))
            .value(":one", n(1));
        let by_model = Expr::update("SET #type = :type, #month = :month, #model = :model ADD #in :in, #out :out, #calls :one")
            .name("#type", "_type")
            .name("#month", "month")
            .name("#model", "modelId")
            .name("#in", "inputTokens")
            .name("#out", "outputTokens")
            .name("#calls", "calls")
            .value(":type", s(ModelChatUsage::TYPE))
            .value(":month", s(month))
            .value(":model", s(model))
            .value(":in", n(used.input_tokens))
            .value(":out", n(used.output_tokens))
            .value(":one", n(1));
        let (org_key, user_key, model_key) = (keys::usage_month(p, month), keys::usage_user(p, month, &reservation.user), keys::usage_model(p, month, model));
        let (a, b, c) = futures::join!(
            self.update_one(&org_key, org, DomainError::Unavailable),
            self.update_one(&user_key, user, DomainError::Unavailable),
            self.update_one(&model_key, by_model, DomainError::Unavailable),
        );
        a.and(b).and(c)
    }

    /// The month's chat usage: the org's, per model and per member (one query).
    pub async fn chat_usage(&self, scope: &impl ReadScope, month: &str) -> Result<ChatUsageMonth, DomainError> {
        let partition = keys::org_pk(scope.partition());
        let prefix = keys::usage_month(scope.partition(), month).sk;
        let mut usage = ChatUsageMonth { org: UsageMonth { month: month.to_owned(), ..Default::default() }, ..Default::default() };
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_names("#sk", keys::SK)
                .expression_attribute_values(":pk", s(&partition))
                .expression_attribute_values(":prefix", s(&prefix))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(crate::tx::unexpected)?;
            for item in out.items.unwrap_or_default() {
                let kind = match item.get(keys::TYPE) {
                    Some(AttributeValue::S(t)) => t.clone(),
                    _ => continue,
                };
                match kind.as_str() {
                    t if t == UsageMonth::TYPE => usage.org = from_item(item)?,
                    t if t == UserChatUsage::TYPE => usage.users.push(from_item(item)?),
                    t if t == ModelChatUsage::TYPE => usage.models.push(from_item(item)?),
                    _ => {}
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(usage);
            }
        }
    }

    /// What the vector index holds of a file (ingestion's record).
    pub async fn indexed_file(&self, org: OrgId, file: FileId) -> Result<Option<IndexedFile>, DomainError> {
        self.get(&keys::indexed_file(&crate::scope::OrgPartition::new(org), file)).await
    }

    /// Records that the index holds `chunks` chunks of a file.
    pub async fn set_indexed_file(&self, org: OrgId, record: &IndexedFile) -> Result<(), DomainError> {
        let item = to_item(record, &keys::indexed_file(&crate::scope::OrgPartition::new(org), record.file_id), &[])?;
        self.client.put_item().table_name(&*self.table).set_item(Some(item)).send().await.map_err(crate::tx::unexpected)?;
        Ok(())
    }

    /// Forgets a file's chunks (its vectors are deleted).
    pub async fn forget_indexed_file(&self, org: OrgId, file: FileId) -> Result<(), DomainError> {
        let key: Key = keys::indexed_file(&crate::scope::OrgPartition::new(org), file);
        self.client.delete_item().table_name(&*self.table).set_key(Some(key.to_map())).send().await.map_err(crate::tx::unexpected)?;
        Ok(())
    }
}
