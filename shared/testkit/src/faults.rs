//! Faults on demand at the local endpoint (`local_aws.py`, `Faults`): chosen calls fail the way
//! AWS fails them. Scope each fault with `contains` (a test's own table name, say): a test
//! binary's tests share one endpoint.

use serde_json::{Value, json};

use crate::endpoint::http_json;
use crate::local_aws;

const PATH: &str = "/_local_aws/faults";

/// The DynamoDB operations that write.
pub const DYNAMODB_WRITES: [&str; 5] = ["PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"];

/// Adds a fault: `{"service", "operation"?, "code", "times"?, "skip"?, "contains"?}`.
pub async fn inject(fault: Value) {
    let (status, body) = http_json(&local_aws().endpoint, "POST", PATH, &fault).await.expect("the local endpoint answers");
    assert_eq!(status, 201, "fault {fault} refused: {body}");
}

/// DynamoDB's throttling of the next `times` writes to `table`.
pub async fn throttle_writes(table: &str, times: u64) {
    inject(json!({"service": "dynamodb", "operation": DYNAMODB_WRITES, "code": "ThrottlingException", "times": times, "contains": table})).await;
}

/// How many times the faults scoped by `contains` fired.
pub async fn fired(contains: &str) -> u64 {
    let (_, body) = http_json(&local_aws().endpoint, "GET", PATH, &Value::Null).await.expect("the local endpoint answers");
    body["faults"].as_array().into_iter().flatten().filter(|f| f["contains"] == json!(contains)).filter_map(|f| f["fired"].as_u64()).sum()
}

/// Removes the faults scoped by `contains`.
pub async fn clear(contains: &str) {
    let path = format!("{PATH}?contains={contains}");
    http_json(&local_aws().endpoint, "DELETE", &path, &Value::Null).await.expect("the local endpoint answers");
}
