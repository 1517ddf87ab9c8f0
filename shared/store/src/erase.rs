//! Erasing a user's account from the table: what the user made personal in each org they
//! belong to, their memberships (through the ordinary removal, with a `user.erased` event in
//! the same transaction), then what is theirs across orgs (invitations to their address, their
//! own exports, their profile and address claims).
//!
//! Every step is safe to repeat and finds what is left of the work: a retry after a failure
//! part-way finishes it. Memberships go last in each org, so that a retry still finds the org.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::{DomainError, Email, Identity, OrgId, Role, UserId};

use crate::Store;
use crate::counters::Deltas;
use crate::entities::{InviteStatus, Member, Org};
use crate::events::{DomainEvent, EventKind};
use crate::item::s;
use crate::keys::{self, PK, SK};
use crate::scope::{Access, OrgPartition, OrgScope};
use crate::tx::{self, Expr, Tx};

/// Who a comment's author and a history entry's actor become once their user is erased.
pub const ERASED_USER: &str = "erased-user";
/// What an erased user's comments say instead.
pub const ERASED_TEXT: &str = "[deleted: the author erased their account]";

/// The orgs of a user about to be erased.
#[derive(Debug, Clone)]
pub struct Erasure {
    /// Their memberships, each a scope to erase in.
    pub memberships: Vec<OrgScope>,
    /// Orgs where they are the last owner: the erasure is refused while there are any.
    pub last_owner_of: Vec<Org>,
}

impl Store {
    /// The caller's memberships, and the orgs they are the last owner of.
    pub async fn erasure(&self, who: &Identity) -> Result<Erasure, DomainError> {
        let mut memberships = Vec::new();
        let mut page = crate::PageRequest::first(crate::page::MAX_LIMIT);
        loop {
            let mine = self.list_my_orgs(&who.user_id, &page).await?;
            for m in mine.items {
                let partition = OrgPartition::new(m.org.id);
                memberships.push(OrgScope { partition, user: who.user_id.clone(), access: Access::Member(m.role), org: m.org });
            }
            match mine.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        let last_owner_of = memberships.iter().filter(|s| s.role() == Role::Owner && s.org.owner_count <= 1).map(|s| s.org.clone()).collect();
        Ok(Erasure { memberships, last_owner_of })
    }

    /// Erases the caller's traces in one org (their scope as a member): comments they wrote
    /// and history entries they made become tombstones, their conversations and their inbox
    /// are deleted, the org's exports are withdrawn (they hold the member list); then their
    /// membership is removed with a `user.erased` event. Answers the withdrawn exports'
    /// object keys, for the caller to delete.
    pub async fn erase_in_org(&self, scope: &OrgScope) -> Result<Vec<String>, DomainError> {
        self.hold_for_charge().await?; // DELETE /me: its rate-limit charge first
        let p = &scope.partition;
        let user = &scope.user;
        let org_pk = keys::org_pk(p);
        // Comments and history in every project (deleted projects are purged anyway).
        for project in self.all_keys(&org_pk, keys::PROJECT_PREFIX, None).await? {
            let Some(id) = sort_key(&project).and_then(|sk| sk.strip_prefix(keys::PROJECT_PREFIX)).and_then(|id| id.parse().ok()) else { continue };
            let pk = keys::project_pk(p, id);
            for key in self.all_keys(&pk, keys::COMMENT_PREFIX, Some(("author", user))).await? {
                let expr = Expr::update("SET #author = :erased, #text = :text, #mentions = :none, #erased = :true")
                    .when("#author = :user")
                    .name("#author", "author")
                    .name("#text", "text")
                    .name("#mentions", "mentions")
                    .name("#erased", "authorErased")
                    .value(":erased", s(ERASED_USER))
                    .value(":text", s(ERASED_TEXT))
                    .value(":none", AttributeValue::L(Vec::new()))
                    .value(":true", AttributeValue::Bool(true))
                    .value(":user", s(user.as_str()));
                self.update_key_if(key, expr).await?;
            }
            for key in self.all_keys(&pk, keys::HISTORY_PREFIX, Some(("actor", user))).await? {
                let expr = Expr::update("SET #actor = :erased")
                    .when("#actor = :user")
                    .name("#actor", "actor")
                    .value(":erased", s(ERASED_USER))
                    .value(":user", s(user.as_str()));
                self.update_key_if(key, expr).await?;
            }
        }
        // Conversations with their messages.
        for conversation in self.all_keys(&org_pk, &keys::conversations_prefix(user), None).await? {
            let conv = sort_key(&conversation)
                .and_then(|sk| sk.strip_prefix(&keys::conversations_prefix(user)))
                .and_then(|id| id.parse::<domain::chat::ConversationId>().ok());
            if let Some(conv) = conv {
                self.delete_prefix(&org_pk, &keys::messages_prefix(conv)).await?;
            }
            self.batch_delete(vec![conversation]).await?;
        }
        // Notifications, preferences, deferred mail and mail records.
        self.delete_prefix(&crate::notifications::inbox_pk(p.org_id(), user), "").await?;
        self.delete_prefix(&crate::notifications::unread_pk(p.org_id(), user), "").await?;
        self.delete_prefix(&crate::notifications::mail_pk(p.org_id(), user), "").await?;
        let withdrawn = self.withdraw_org_exports(p.org_id()).await?;
        // The membership, through the ordinary removal (counters, and the stream's unassignment).
        if let Some(member) = self.get::<Member>(&keys::member(p, user)).await? {
            let erased = DomainEvent { member: Some(user.clone()), ..DomainEvent::new(self, EventKind::UserErased, p.org_id(), user.as_str()) };
            self.remove_member_with(scope, &member, &[erased]).await?;
        }
        Ok(withdrawn)
    }

    /// Erases what is the user's across orgs, once they belong to none: invitations addressed
    /// to their email (freeing the seats of pending ones) with their tokens, every item of
    /// their address's partition (its claim, invitation counters), suppression of it, their own
    /// exports, and their profile's partition. Answers the export objects to delete.
    pub async fn erase_account(&self, user: &UserId, email: Option<&Email>) -> Result<Vec<String>, DomainError> {
        self.hold_for_charge().await?; // DELETE /me: its rate-limit charge first
        let profile_email = self.get_user(user).await?.and_then(|p| p.email);
        let mut emails: Vec<Email> = email.into_iter().cloned().chain(profile_email).collect();
        emails.dedup_by(|a, b| a.folded() == b.folded());
        for email in &emails {
            self.erase_invitations(email).await?;
            self.delete_prefix(&keys::email_pk(email), "").await?;
            self.delete_prefix(&crate::notifications::suppression_pk(email), "").await?;
        }
        let objects = self.delete_user_exports(user).await?;
        self.delete_prefix(&keys::user_pk(user), "").await?;
        Ok(objects)
    }

    /// Deletes every invitation addressed to `email`, in any org, with its token; a pending
    /// one's seat is freed in the same transaction.
    async fn erase_invitations(&self, email: &Email) -> Result<(), DomainError> {
        // Every invitation to the address, pending or closed.
        for invite in self.pending_to(email, keys::INVITE_PREFIX, |_| false).await? {
            let partition = OrgPartition::new(invite.org_id);
            let mut tx = Tx::default();
            tx.delete(&self.table, &keys::invite(&partition, &invite.id), Some(Expr::condition("attribute_exists(PK)")), DomainError::NotFound);
            if !invite.token_hash.is_empty() {
                tx.delete(&self.table, &keys::invite_token(&invite.token_hash), None, DomainError::NotFound);
            }
            if invite.status == InviteStatus::Pending {
                self.org_counters(&mut tx, &partition, Deltas { seats: -1, ..Deltas::default() });
            }
            match tx.run(self).await {
                Ok(()) | Err(DomainError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Keys of `pk`'s items under `prefix` (whose `attribute` is the user, when given).
    async fn all_keys(&self, pk: &str, prefix: &str, only: Option<(&str, &UserId)>) -> Result<Vec<HashMap<String, AttributeValue>>, DomainError> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&*self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":prefix", s(prefix))
                .projection_expression("#pk, #sk")
                .consistent_read(true)
                .set_exclusive_start_key(start);
            if let Some((attribute, user)) = only {
                q = q.filter_expression("#f = :f").expression_attribute_names("#f", attribute).expression_attribute_values(":f", s(user.as_str()));
            }
            let out = q.send().await.map_err(tx::unexpected)?;
            keys.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(keys);
            }
        }
    }

    /// An update of the item at `key` under its condition; a failed condition (changed
    /// meanwhile, or done already) is no error.
    async fn update_key_if(&self, key: HashMap<String, AttributeValue>, expr: Expr) -> Result<(), DomainError> {
        let result = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(key))
            .set_update_expression(expr.update)
            .set_condition_expression(expr.condition)
            .set_expression_attribute_names(Some(expr.names))
            .set_expression_attribute_values(Some(expr.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if tx::is_condition_failure(&e) => Ok(()),
            Err(e) => Err(tx::unexpected(e)),
        }
    }

    /// The org ids a user is a member of (for tests and the erasure's report).
    pub async fn member_orgs(&self, user: &UserId) -> Result<Vec<OrgId>, DomainError> {
        Ok(self
            .erasure(&Identity { user_id: user.clone(), email: None, email_verified: false, platform_admin: false })
            .await?
            .memberships
            .iter()
            .map(OrgScope::org_id)
            .collect())
    }
}

fn sort_key(key: &HashMap<String, AttributeValue>) -> Option<&str> {
    key.get(SK).and_then(|v| v.as_s().ok()).map(String::as_str)
}
