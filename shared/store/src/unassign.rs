//! A member who leaves (or is removed) stops being anyone's assignee: their open tasks are
//! unassigned by a consumer of the membership's removal on the table's stream, so the removal
//! itself stays one small transaction however many tasks they had. A task assigned in a
//! transaction that committed before the removal is in the assignee index when the consumer
//! reads it; one assigned after is refused by its transaction's membership check.

use domain::{DomainError, OrgId, UserId};

use crate::Store;
use crate::entities::{Member, Org};
use crate::keys::{self};
use crate::page::{PageRequest, PagedQuery, Sort};
use crate::scope::OrgPartition;
use crate::tasks::{Expect, FieldChange, HistoryOf, SYSTEM_ACTOR, Task, TaskAction};
use crate::tx::Tx;

/// A user who is no longer a member of an org, established by reading that: the only way to
/// unassign their tasks.
#[derive(Debug)]
pub struct RemovedMember {
    partition: OrgPartition,
    user: UserId,
}

impl RemovedMember {
    pub fn org_id(&self) -> OrgId {
        self.partition.org_id()
    }
    pub fn user_id(&self) -> &UserId {
        &self.user
    }
}

impl Store {
    /// `user`'s standing as a former member of `org`: `None` when they are a member again (or
    /// the org is gone, or being purged), so there is nothing to unassign.
    pub async fn removed_member(&self, org: OrgId, user: &UserId) -> Result<Option<RemovedMember>, DomainError> {
        let partition = OrgPartition::new(org);
        let (member_key, org_key) = (keys::member(&partition, user), keys::org(&partition));
        let (member, org_item) = futures::join!(self.get::<Member>(&member_key), self.get::<Org>(&org_key));
        let live = org_item?.is_some_and(|o| o.status != crate::entities::OrgStatus::Deleting);
        Ok((member?.is_none() && live).then(|| RemovedMember { partition, user: user.clone() }))
    }

    /// Unassigns one task of the removed member, if it is still theirs and open (the index is
    /// eventually consistent: the task is read as it is now). True when it was unassigned.
    async fn unassign_one(&self, removed: &RemovedMember, indexed: &Task) -> Result<bool, DomainError> {
        let p = &removed.partition;
        let Some(task) = self.get::<Task>(&keys::task(p, indexed.project_id, indexed.id)).await? else { return Ok(false) };
        if task.assignee.as_ref() != Some(&removed.user) || !task.status.is_open() {
            return Ok(false);
        }
        let next = Task { assignee: None, version: task.version + 1, updated_at: self.clock.rfc3339(), ..task.clone() };
        let change = FieldChange { field: "assignee".into(), from: serde_json::Value::from(removed.user.to_string()), to: serde_json::Value::Null };
        let mut tx = Tx::default();
        let history = HistoryOf { action: TaskAction::Unassigned, changes: vec![change], actor: SYSTEM_ACTOR, id: None };
        self.push_task_write(&mut tx, p, &next, Expect::Version(task.version), history)?;
        // Changed meanwhile (StaleVersion): the record's retry reads it again.
        tx.run(self).await?;
        Ok(true)
    }

    /// Unassigns every open task of the removed member, each with a history entry by
    /// `system`; answers how many. Idempotent: a task already unassigned (or reassigned) is
    /// left alone.
    pub async fn unassign_removed(&self, removed: &RemovedMember) -> Result<usize, DomainError> {
        let p = &removed.partition;
        let partition = keys::assigned_pk(p, &removed.user);
        let mut page = PageRequest::first(100);
        let mut unassigned = 0;
        loop {
            let q = PagedQuery::on_index("assigned", keys::Gsi::Two, &partition, Sort::Prefix(""));
            let listed = self.query_page::<Task>(&q, &page).await?;
            // The tasks of a page concurrently: each is read and written on its own.
            let results = futures::future::join_all(listed.items.iter().map(|indexed| self.unassign_one(removed, indexed))).await;
            for result in results {
                unassigned += usize::from(result?);
            }
            match listed.next_cursor {
                Some(cursor) => page.cursor = Some(cursor),
                None => return Ok(unassigned),
            }
        }
    }
}
