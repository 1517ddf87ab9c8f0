//! Comments on tasks, with the members they mention, and the lookups that resolve mentions
//! (by handle) and import assignees (by email) against the org's members.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::work::{CommentId, ProjectId, ProjectStatus, TaskId};
use domain::{Action, DomainError, Email, OrgId, UserId};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::entities::Member;
use crate::events::{DomainEvent, EventKind};
use crate::item::{Entity, av, from_item, n, to_item};
use crate::keys::{self, GSI2, GSI2PK, GSI2SK, GSI3, GSI3PK, GSI3SK, IndexKey};
use crate::orgs::{require, require_member};
use crate::page::{Page, PageRequest, PagedQuery, Sort};
use crate::scope::{OrgScope, ReadScope};
use crate::tasks::Task;
use crate::tx::{self, Expr, Tx};

/// A comment on a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    pub id: CommentId,
    pub task_id: TaskId,
    pub project_id: ProjectId,
    pub org_id: OrgId,
    pub author: UserId,
    /// Markdown; `@handle` mentions a member.
    pub text: String,
    /// The members the text mentions (by their handle), as resolved when it was written.
    #[serde(default)]
    pub mentions: Vec<UserId>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub edited: bool,
    pub version: u64,
}

impl Entity for Comment {
    const TYPE: &'static str = "comment";
}

/// How many lookups run at once.
const LOOKUPS_IN_FLIGHT: usize = 16;

impl Store {
    /// Comments a task: the task must still exist and its project be active.
    pub async fn create_comment(&self, scope: &OrgScope, task: &Task, text: String, mentions: Vec<UserId>) -> Result<Comment, DomainError> {
        require(scope, Action::WriteWorkload)?;
        require_member(scope)?;
        let now = self.clock.rfc3339();
        let comment = Comment {
            id: CommentId::new(),
            task_id: task.id,
            project_id: task.project_id,
            org_id: scope.org_id(),
            author: scope.user.clone(),
            text,
            mentions,
            created_at: now.clone(),
            updated_at: now,
            edited: false,
            version: 1,
        };
        let p = &scope.partition;
        let mut tx = Tx::default();
        tx.put(
            &self.table,
            to_item(&comment, &keys::comment(p, task.project_id, task.id, comment.id), &[])?,
            Some(Expr::condition("attribute_not_exists(PK)")),
            DomainError::Conflict("comment id collision"),
        )
        .check(&self.table, &keys::task(p, task.project_id, task.id), Expr::condition("attribute_exists(PK)"), DomainError::NotFound)
        .check(
            &self.table,
            &keys::project(p, task.project_id),
            Expr::condition("#status = :active").name("#status", "status").value(":active", av(&ProjectStatus::Active)),
            DomainError::Conflict("the project is archived or deleted; restore it to comment"),
        );
        let event = DomainEvent {
            comment_id: Some(comment.id),
            mentions: comment.mentions.clone(),
            excerpt: Some(crate::events::excerpt(&comment.text)),
            ..DomainEvent::of_task(self, EventKind::CommentCreated, task, scope.user.as_str())
        };
        self.push_event(&mut tx, &event)?;
        tx.run(self).await?;
        Ok(comment)
    }

    pub async fn get_comment(&self, scope: &impl ReadScope, project: ProjectId, task: TaskId, comment: CommentId) -> Result<Option<Comment>, DomainError> {
        self.get(&keys::comment(scope.partition(), project, task, comment)).await
    }

    /// A task's comments, oldest first.
    pub async fn list_comments(&self, scope: &impl ReadScope, project: ProjectId, task: TaskId, page: &PageRequest) -> Result<Page<Comment>, DomainError> {
        let partition = keys::project_pk(scope.partition(), project);
        let prefix = keys::comments_prefix(task);
        let q = PagedQuery::on_table("comments", &partition, Sort::Prefix(&prefix));
        self.query_page(&q, page).await
    }

    /// Edits the caller's own comment.
    pub async fn edit_comment(&self, scope: &OrgScope, current: &Comment, text: String, mentions: Vec<UserId>) -> Result<Comment, DomainError> {
        require(scope, Action::WriteWorkload)?;
        require_member(scope)?;
        if current.author != scope.user {
            return Err(DomainError::Forbidden("only its author edits a comment"));
        }
        let next = Comment { text, mentions, updated_at: self.clock.rfc3339(), edited: true, version: current.version + 1, ..current.clone() };
        let key = keys::comment(&scope.partition, current.project_id, current.task_id, current.id);
        self.client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(to_item(&next, &key, &[])?))
            .condition_expression("#version = :version")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", n(current.version))
            .send()
            .await
            .map_err(|e| tx::conditional(e, DomainError::Conflict("the comment changed meanwhile; reload and try again")))?;
        Ok(next)
    }

    /// Deletes a comment: its author, or an admin.
    pub async fn delete_comment(&self, scope: &OrgScope, current: &Comment) -> Result<(), DomainError> {
        crate::orgs::require_own_or_admin(scope, &current.author, "only its author or an admin deletes a comment")?;
        let key = keys::comment(&scope.partition, current.project_id, current.task_id, current.id);
        self.client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(key.to_map()))
            .condition_expression("attribute_exists(PK)")
            .send()
            .await
            .map_err(|e| tx::conditional(e, DomainError::NotFound))?;
        Ok(())
    }

    /// The members the `handles` name, in order; a handle that names no member (or, by a
    /// collision, more than one) mentions nobody.
    pub async fn members_by_handle(&self, scope: &impl ReadScope, handles: &[String]) -> Result<Vec<UserId>, DomainError> {
        let p = scope.partition();
        // Futures built in a loop, not by a closure, so that the handler's future stays `Send`
        // for every lifetime (a closure over a borrowed argument is not general enough).
        let mut lookups = Vec::with_capacity(handles.len());
        for handle in handles {
            lookups.push(self.index_lookup::<Member>(keys::member_by_handle(p, handle), 2));
        }
        let found: Vec<Result<Vec<Member>, DomainError>> = futures::stream::iter(lookups).buffered(LOOKUPS_IN_FLIGHT).collect().await;
        let mut users = Vec::new();
        for members in found {
            if let [m] = members?.as_slice()
                && !users.contains(&m.user_id)
            {
                users.push(m.user_id.clone());
            }
        }
        Ok(users)
    }

    /// The members with these email addresses (absent: not a member).
    pub async fn members_by_email(&self, scope: &impl ReadScope, emails: &[Email]) -> Result<HashMap<Email, UserId>, DomainError> {
        let p = scope.partition();
        let mut lookups = Vec::with_capacity(emails.len());
        for email in emails {
            let lookup = self.index_lookup::<Member>(keys::member_by_email(p, email), 1);
            let email = email.clone();
            lookups.push(async move { (email, lookup.await) });
        }
        let found: Vec<(Email, Result<Vec<Member>, DomainError>)> = futures::stream::iter(lookups).buffer_unordered(LOOKUPS_IN_FLIGHT).collect().await;
        let mut users = HashMap::new();
        for (email, members) in found {
            if let Some(m) = members?.into_iter().next() {
                users.insert(email, m.user_id);
            }
        }
        Ok(users)
    }

    /// The items at exactly `key` in its index (at most `limit`).
    async fn index_lookup<E: Entity>(&self, key: IndexKey, limit: i32) -> Result<Vec<E>, DomainError> {
        let (index, (pk, sk)) = match key.index {
            keys::Gsi::One => (keys::GSI1, (keys::GSI1PK, keys::GSI1SK)),
            keys::Gsi::Two => (GSI2, (GSI2PK, GSI2SK)),
            keys::Gsi::Three => (GSI3, (GSI3PK, GSI3SK)),
            keys::Gsi::Four => (keys::GSI4, (keys::GSI4PK, keys::GSI4SK)),
        };
        let out = self
            .client
            .query()
            .table_name(&*self.table)
            .index_name(index)
            .key_condition_expression("#pk = :pk AND #sk = :sk")
            .expression_attribute_names("#pk", pk)
            .expression_attribute_names("#sk", sk)
            .expression_attribute_values(":pk", AttributeValue::S(key.pk))
            .expression_attribute_values(":sk", AttributeValue::S(key.sk))
            .limit(limit)
            .send()
            .await
            .map_err(tx::unexpected)?;
        out.items.unwrap_or_default().into_iter().map(from_item).collect()
    }
}
