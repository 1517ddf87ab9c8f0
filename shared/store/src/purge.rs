//! Purging a deleted org: every item of its partitions, then the org item itself, last, so
//! that an interrupted purge leaves the org marked `deleting` and can be resumed. Running
//! it twice is harmless.

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use domain::DomainError;

use crate::entities::OrgStatus;
use crate::keys::{self, PK, SK};
use crate::scope::{AdminScope, OrgPartition};
use crate::tx::{self, Expr};
use crate::Store;

const PAGE: i32 = 100;
const BATCH: usize = 25;

impl Store {
    /// Resumes the purge of an org whose deletion was interrupted. Platform operators only.
    pub async fn resume_purge(&self, scope: &AdminScope) -> Result<(), DomainError> {
        if scope.org.status != OrgStatus::Deleting {
            return Err(DomainError::Conflict("the organization is not being deleted"));
        }
        self.purge(&scope.partition).await
    }

    pub(crate) async fn purge(&self, partition: &OrgPartition) -> Result<(), DomainError> {
        let org_key = keys::org(partition);
        for pk in [keys::org_pk(partition), keys::org_audit_pk(partition)] {
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&*self.table)
                    .key_condition_expression("#pk = :pk")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                    .projection_expression("#pk, #sk")
                    .expression_attribute_names("#sk", SK)
                    .consistent_read(true)
                    .limit(PAGE)
                    .send()
                    .await
                    .map_err(tx::unexpected)?;
                let keys: Vec<_> = out
                    .items
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|k| k.get(SK) != Some(&AttributeValue::S(org_key.sk.clone())))
                    .collect();
                if keys.is_empty() {
                    break;
                }
                for chunk in keys.chunks(BATCH) {
                    self.batch_delete(chunk.to_vec()).await?;
                }
            }
        }
        let last = Expr::condition("attribute_not_exists(PK) OR #status = :deleting")
            .name("#status", "status")
            .value(":deleting", crate::item::av(&OrgStatus::Deleting));
        self.client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(org_key.to_map()))
            .set_condition_expression(last.condition)
            .set_expression_attribute_names(Some(last.names))
            .set_expression_attribute_values(Some(last.values))
            .send()
            .await
            .map_err(|e| tx::conditional(e, DomainError::Conflict("the organization is not being deleted")))?;
        tracing::info!(org_id = %partition.org_id(), "organization purged");
        Ok(())
    }

    async fn batch_delete(&self, keys: Vec<std::collections::HashMap<String, AttributeValue>>) -> Result<(), DomainError> {
        let mut requests: Vec<WriteRequest> = keys
            .into_iter()
            .map(|k| {
                WriteRequest::builder()
                    .delete_request(DeleteRequest::builder().set_key(Some(k)).build().expect("key is set"))
                    .build()
            })
            .collect();
        let mut attempt = 0u32;
        while !requests.is_empty() {
            let out = self
                .client
                .batch_write_item()
                .request_items(self.table.to_string(), requests)
                .send()
                .await
                .map_err(tx::unexpected)?;
            requests = out.unprocessed_items.and_then(|mut u| u.remove(&*self.table)).unwrap_or_default();
            if !requests.is_empty() {
                attempt += 1;
                if attempt > 8 {
                    return Err(DomainError::Unavailable);
                }
                tokio::time::sleep(std::time::Duration::from_millis(25 << attempt.min(5))).await;
            }
        }
        Ok(())
    }
}
