//! Writes with conditions: single conditional operations and transactions whose
//! `CancellationReasons` map to domain errors, never to 500s.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem, Update};
use domain::DomainError;

use crate::Store;
use crate::item::Item;
use crate::keys::Key;

/// An update and/or condition expression with its placeholders.
#[derive(Debug, Clone, Default)]
pub(crate) struct Expr {
    pub update: Option<String>,
    pub condition: Option<String>,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl Expr {
    pub fn update(update: impl Into<String>) -> Self {
        Expr { update: Some(update.into()), ..Default::default() }
    }
    pub fn condition(condition: impl Into<String>) -> Self {
        Expr { condition: Some(condition.into()), ..Default::default() }
    }
    /// Sets the update expression (of a condition built first).
    pub fn update_with(mut self, update: impl Into<String>) -> Self {
        self.update = Some(update.into());
        self
    }
    pub fn when(mut self, condition: impl Into<String>) -> Self {
        self.condition = Some(condition.into());
        self
    }
    pub fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names.insert(placeholder.to_owned(), attribute.to_owned());
        self
    }
    pub fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }
    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }
    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// A transaction under construction. Each operation carries the domain error it stands for
/// when its condition fails.
#[derive(Default)]
pub(crate) struct Tx {
    items: Vec<TransactWriteItem>,
    on_fail: Vec<DomainError>,
}

/// Conflicting transactions are retried after a random delay ("full jitter") under a cap that
/// doubles each time, 40 ms to 1.28 s: many writers of one item (the last free bytes of a
/// quota, say) spread out instead of colliding again in step.
const CONFLICT_RETRIES: u32 = 6;

impl Tx {
    pub fn put(&mut self, table: &str, item: Item, cond: Option<Expr>, on_fail: DomainError) -> &mut Self {
        let cond = cond.unwrap_or_default();
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .set_condition_expression(cond.condition.clone())
            .set_expression_attribute_names(cond.names())
            .set_expression_attribute_values(cond.values())
            .build()
            .expect("table and item are set");
        self.push(TransactWriteItem::builder().put(put).build(), on_fail)
    }

    pub fn update(&mut self, table: &str, key: &Key, expr: Expr, on_fail: DomainError) -> &mut Self {
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(key.to_map()))
            .set_update_expression(expr.update.clone())
            .set_condition_expression(expr.condition.clone())
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .expect("table, key and update are set");
        self.push(TransactWriteItem::builder().update(update).build(), on_fail)
    }

    pub fn delete(&mut self, table: &str, key: &Key, cond: Option<Expr>, on_fail: DomainError) -> &mut Self {
        let cond = cond.unwrap_or_default();
        let delete = Delete::builder()
            .table_name(table)
            .set_key(Some(key.to_map()))
            .set_condition_expression(cond.condition.clone())
            .set_expression_attribute_names(cond.names())
            .set_expression_attribute_values(cond.values())
            .build()
            .expect("table and key are set");
        self.push(TransactWriteItem::builder().delete(delete).build(), on_fail)
    }

    pub fn check(&mut self, table: &str, key: &Key, cond: Expr, on_fail: DomainError) -> &mut Self {
        let check = ConditionCheck::builder()
            .table_name(table)
            .set_key(Some(key.to_map()))
            .set_condition_expression(cond.condition.clone())
            .set_expression_attribute_names(cond.names())
            .set_expression_attribute_values(cond.values())
            .build()
            .expect("table, key and condition are set");
        self.push(TransactWriteItem::builder().condition_check(check).build(), on_fail)
    }

    fn push(&mut self, item: TransactWriteItem, on_fail: DomainError) -> &mut Self {
        self.items.push(item);
        self.on_fail.push(on_fail);
        self
    }

    /// Runs the transaction. A failed condition becomes the error its operation carries; a
    /// conflict with a concurrent transaction is retried (nothing was written), then reported
    /// as a conflict.
    pub async fn run(self, store: &Store) -> Result<(), DomainError> {
        store.hold_for_charge().await?;
        let mut attempt = 0;
        loop {
            let result = store.client.transact_write_items().set_transact_items(Some(self.items.clone())).send().await;
            let err = match result {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            let codes = cancellation_codes(&err);
            if let Some(codes) = codes {
                if let Some(i) = codes.iter().position(|c| c == "ConditionalCheckFailed") {
                    return Err(self.on_fail[i].clone());
                }
                if codes.iter().any(|c| c == "TransactionConflict") && attempt < CONFLICT_RETRIES {
                    attempt += 1;
                    let cap = 20u64 << attempt.min(6);
                    tokio::time::sleep(Duration::from_millis(getrandom::u64().unwrap_or(cap) % (cap + 1))).await;
                    continue;
                }
                if codes.iter().any(|c| c == "TransactionConflict") {
                    return Err(DomainError::Conflict("a concurrent change got there first; try again"));
                }
                tracing::error!(?codes, "transaction cancelled");
                return Err(DomainError::Unavailable);
            }
            return Err(unexpected(err));
        }
    }
}

fn cancellation_codes<R>(err: &SdkError<TransactWriteItemsError, R>) -> Option<Vec<String>> {
    match err.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(e) => {
            Some(e.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect())
        }
        _ => None,
    }
}

/// Maps an error of a single conditional operation: a failed condition becomes `on_fail`.
pub(crate) fn conditional<E, R>(err: SdkError<E, R>, on_fail: DomainError) -> DomainError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let is_ccf = err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException");
    if is_ccf { on_fail } else { unexpected(err) }
}

/// Whether a single operation failed its condition.
pub(crate) fn is_condition_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

/// The unprocessed part of a batch (DynamoDB's answer to throttling) is retried after a
/// growing delay, 50 ms to 800 ms, at most eight times; then the batch fails as unavailable.
pub(crate) struct BatchBackoff {
    attempt: u32,
}

impl BatchBackoff {
    pub const MAX_RETRIES: u32 = 8;

    pub fn new() -> Self {
        BatchBackoff { attempt: 0 }
    }

    /// The delay before the next retry, or `None` once the retries are used up.
    pub fn next_delay(&mut self) -> Option<std::time::Duration> {
        self.attempt += 1;
        (self.attempt <= Self::MAX_RETRIES).then(|| std::time::Duration::from_millis(25 << self.attempt.min(5)))
    }

    /// Waits before the next retry; `Unavailable` once the retries are used up.
    pub async fn wait(&mut self) -> Result<(), DomainError> {
        let delay = self.next_delay().ok_or(DomainError::Unavailable)?;
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

/// Any other storage error: logged in full, reported as unavailable.
pub(crate) fn unexpected<E, R>(err: SdkError<E, R>) -> DomainError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = err.as_service_error().and_then(|e| e.code()).map(str::to_owned);
    tracing::error!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err), ?code, "storage error");
    DomainError::Unavailable
}

#[cfg(test)]
mod backoff_tests {
    use super::BatchBackoff;

    #[test]
    fn unprocessed_batches_are_retried_with_growing_delays_a_bounded_number_of_times() {
        let mut b = BatchBackoff::new();
        let delays: Vec<u128> = std::iter::from_fn(|| b.next_delay()).map(|d| d.as_millis()).collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 800, 800, 800]);
        assert_eq!(b.next_delay(), None, "and then no more");
    }
}
