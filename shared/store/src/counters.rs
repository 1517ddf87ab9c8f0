//! The org's counters (owners, members, seats), changed inside the transaction of the write
//! they account for, with the conditions that keep them honest: at least one owner, seats
//! and members within the plan's limit (`seatLimit`, compared attribute to attribute), and
//! an active org for anything but freeing a reserved seat.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::DomainError;

use crate::Store;
use crate::entities::OrgStatus;
use crate::item::{av, n};
use crate::keys;
use crate::scope::OrgPartition;
use crate::tx::{Expr, Tx};

/// Changes to an org's counters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Deltas {
    pub owners: i64,
    pub members: i64,
    /// Members plus pending invitations.
    pub seats: i64,
}

impl Store {
    /// Adds the counter update (or, with no change, the org check) to `tx`.
    pub(crate) fn org_counters(&self, tx: &mut Tx, partition: &OrgPartition, d: Deltas) {
        self.org_counters_when(tx, partition, d, None);
    }

    /// [`Store::org_counters`] with one more condition on the org item (a transaction can
    /// touch an item once).
    pub(crate) fn org_counters_when(&self, tx: &mut Tx, partition: &OrgPartition, d: Deltas, extra: Option<Expr>) {
        let mut expr = Expr::default();
        let mut sets = Vec::new();
        for (attr, placeholder, delta) in [("ownerCount", "owners", d.owners), ("memberCount", "members", d.members), ("seatsUsed", "seats", d.seats)] {
            if delta != 0 {
                sets.push(format!("#{placeholder} = #{placeholder} + :{placeholder}"));
                expr = expr.name(&format!("#{placeholder}"), attr).value(&format!(":{placeholder}"), AttributeValue::N(delta.to_string()));
            }
        }
        let frees_a_reservation = d.seats < 0 && d.members == 0 && d.owners == 0;
        let mut conditions = vec![if frees_a_reservation { "attribute_exists(PK)" } else { "#status = :active" }];
        if !frees_a_reservation {
            expr = expr.name("#status", "status").value(":active", av(&OrgStatus::Active));
        }
        let mut on_fail = DomainError::Conflict("the organization is not active");
        if d.owners < 0 {
            conditions.push("#owners > :one");
            expr = expr.value(":one", n(1));
            on_fail = DomainError::LastOwner;
        }
        if d.seats > 0 {
            conditions.push("#seats < #limit");
        } else if d.members > 0 {
            conditions.push("#members < #limit");
        }
        if d.seats > 0 || d.members > 0 {
            expr = expr.name("#limit", "seatLimit");
            on_fail = DomainError::LimitReached("members");
        }
        let extra_condition;
        if let Some(extra) = extra {
            extra_condition = format!("({})", extra.condition.unwrap_or_default());
            conditions.push(&extra_condition);
            expr.names.extend(extra.names);
            expr.values.extend(extra.values);
        }
        expr.condition = Some(conditions.join(" AND "));
        let key = keys::org(partition);
        if sets.is_empty() {
            tx.check(&self.table, &key, expr, on_fail);
        } else {
            expr.update = Some(format!("SET {}", sets.join(", ")));
            tx.update(&self.table, &key, expr, on_fail);
        }
    }
}
