//! The table's DynamoDB stream, read through the local endpoint's DynamoDB Streams API and
//! delivered to each consumer as Lambda's event source mapping would.

use std::collections::{HashMap, VecDeque};

use aws_config::SdkConfig;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::{Delivery, Error, EventLog, Target, filter};

/// One consumer's mapping: its filter, batch size and retries, and the records waiting.
pub(super) struct Consumer {
    function: &'static str,
    filters: Vec<Value>,
    batch_size: usize,
    max_retries: u32,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    records: VecDeque<Value>,
    /// Failed attempts of the batch at the head of `records`.
    attempts: u32,
}

impl Consumer {
    pub fn new(function: &'static str, source: &registry::StreamSource) -> Consumer {
        Consumer {
            function,
            filters: source.filters.clone(),
            batch_size: usize::try_from(source.batch_size.max(1)).unwrap_or(1),
            max_retries: source.maximum_retry_attempts,
            pending: Mutex::new(Pending::default()),
        }
    }
}

pub(super) struct StreamDelivery {
    client: aws_sdk_dynamodbstreams::Client,
    arn: String,
    /// Shard id → the iterator to read next.
    iterators: Mutex<HashMap<String, Option<String>>>,
    consumers: Vec<Consumer>,
}

impl StreamDelivery {
    /// Opens the table's stream from its start. `None` when the table has no stream (the
    /// runner says so: stream consumers then get nothing).
    pub async fn open(config: &SdkConfig, table: &str, consumers: Vec<Consumer>) -> Result<Option<StreamDelivery>, Error> {
        let dynamo = aws_sdk_dynamodb::Client::new(config);
        let described = dynamo.describe_table().table_name(table).send().await?;
        let Some(arn) = described.table.and_then(|t| t.latest_stream_arn) else {
            tracing::warn!(table, "the table has no stream: stream consumers receive nothing");
            return Ok(None);
        };
        let client = aws_sdk_dynamodbstreams::Client::new(config);
        let delivery = StreamDelivery { client, arn, iterators: Mutex::new(HashMap::new()), consumers };
        delivery.discover_shards().await?;
        Ok(Some(delivery))
    }

    async fn discover_shards(&self) -> Result<(), Error> {
        let described = self.client.describe_stream().stream_arn(&self.arn).send().await?;
        let shards = described.stream_description.and_then(|d| d.shards).unwrap_or_default();
        let mut iterators = self.iterators.lock().await;
        for shard in shards {
            let Some(id) = shard.shard_id else { continue };
            if iterators.contains_key(&id) {
                continue;
            }
            let it = self.client.get_shard_iterator().stream_arn(&self.arn).shard_id(&id).shard_iterator_type(ShardIteratorType::TrimHorizon).send().await?;
            iterators.insert(id, it.shard_iterator);
        }
        Ok(())
    }

    /// Reads what is new on the stream, hands each consumer the records its filter lets
    /// through, and delivers one batch per consumer.
    pub async fn pump(&self, targets: &HashMap<&'static str, Target>, log: &EventLog) -> usize {
        let records = match self.read().await {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!(error = %e, "reading the stream failed");
                Vec::new()
            }
        };
        for consumer in &self.consumers {
            let passed: Vec<Value> = records.iter().filter(|r| filter::passes(&consumer.filters, r)).cloned().collect();
            consumer.pending.lock().await.records.extend(passed);
        }
        let mut delivered = 0;
        for consumer in &self.consumers {
            if let Some(target) = targets.get(consumer.function) {
                delivered += usize::from(deliver(consumer, target, log).await);
            }
        }
        delivered
    }

    async fn read(&self) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        let mut iterators = self.iterators.lock().await;
        for iterator in iterators.values_mut() {
            let Some(it) = iterator.clone() else { continue };
            let page = self.client.get_records().shard_iterator(it).limit(1000).send().await?;
            *iterator = page.next_shard_iterator;
            out.extend(page.records.unwrap_or_default().into_iter().map(|r| stream_record(&r, &self.arn)));
        }
        Ok(out)
    }
}

/// Delivers the batch at the head of the consumer's records. Lambda's checkpointing with
/// `ReportBatchItemFailures`: the records before the first failed one are done; the rest is
/// retried, and after `maximumRetryAttempts` failed attempts set aside (on AWS: sent to the
/// mapping's on-failure destination).
async fn deliver(consumer: &Consumer, target: &Target, log: &EventLog) -> bool {
    let Some(handler) = target.handlers.stream.clone() else { return false };
    let mut pending = consumer.pending.lock().await;
    if pending.records.is_empty() {
        return false;
    }
    let n = pending.records.len().min(consumer.batch_size);
    let batch: Vec<Value> = pending.records.iter().take(n).cloned().collect();
    let raw = json!({ "Records": batch });
    let event: aws_lambda_events::dynamodb::Event = match serde_json::from_value(raw.clone()) {
        Ok(e) => e,
        Err(e) => {
            pending.records.drain(..n);
            log.push(delivery(consumer, n, n, n, 0, Some(format!("malformed stream records: {e}"))));
            return true;
        }
    };
    let ids: Vec<String> = event.records.iter().map(|r| r.event_id.clone()).collect();
    let (failed, ms) = target.metered(api::EventKind::Stream, &raw, handler(event)).await;
    let first_failed = ids.iter().position(|id| failed.contains(id));
    match first_failed {
        None => {
            pending.records.drain(..n);
            pending.attempts = 0;
            log.push(delivery(consumer, n, 0, 0, ms, None));
        }
        Some(i) => {
            pending.records.drain(..i);
            pending.attempts += 1;
            let mut given_up = 0;
            if pending.attempts > consumer.max_retries {
                given_up = n - i;
                pending.records.drain(..given_up);
                pending.attempts = 0;
                tracing::error!(function = consumer.function, records = given_up, "stream records given up after retries");
            }
            log.push(delivery(consumer, n, failed.len(), given_up, ms, None));
        }
    }
    true
}

fn delivery(consumer: &Consumer, records: usize, failed: usize, dead_lettered: usize, duration_ms: u64, error: Option<String>) -> Delivery {
    Delivery {
        at: domain::rfc3339(time::OffsetDateTime::now_utc()),
        function: consumer.function.into(),
        source: "stream".into(),
        records,
        failed,
        dead_lettered,
        duration_ms,
        error,
    }
}

/// A stream record as Lambda delivers it (DynamoDB JSON images, `eventSourceARN`), from the
/// record the DynamoDB Streams API reports.
pub fn stream_record(r: &Record, arn: &str) -> Value {
    let change = r.dynamodb.as_ref();
    let image = |m: Option<&HashMap<String, AttributeValue>>| m.map(item_json);
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": change.and_then(|c| c.approximate_creation_date_time).map(|t| t.secs()).unwrap_or(0),
        "Keys": image(change.and_then(|c| c.keys.as_ref())).unwrap_or(json!({})),
        "SequenceNumber": change.and_then(|c| c.sequence_number.clone()),
        "SizeBytes": change.and_then(|c| c.size_bytes).unwrap_or(0),
        "StreamViewType": change.and_then(|c| c.stream_view_type.as_ref()).map(|v| v.as_str().to_owned()),
    });
    if let Some(new) = image(change.and_then(|c| c.new_image.as_ref())) {
        dynamodb["NewImage"] = new;
    }
    if let Some(old) = image(change.and_then(|c| c.old_image.as_ref())) {
        dynamodb["OldImage"] = old;
    }
    json!({
        "eventID": r.event_id,
        "eventName": r.event_name.as_ref().map(|n| n.as_str().to_owned()),
        "eventVersion": r.event_version,
        "eventSource": "aws:dynamodb",
        "awsRegion": r.aws_region,
        "eventSourceARN": arn,
        "dynamodb": dynamodb,
    })
}

fn item_json(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(item.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect())
}

/// DynamoDB JSON, as Lambda's stream events carry it.
fn attribute_json(v: &AttributeValue) -> Value {
    use base64::Engine;
    let b64 = |b: &aws_sdk_dynamodbstreams::primitives::Blob| base64::engine::general_purpose::STANDARD.encode(b.as_ref());
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": b64(b) }),
        AttributeValue::Ss(s) => json!({ "SS": s }),
        AttributeValue::Ns(n) => json!({ "NS": n }),
        AttributeValue::Bs(b) => json!({ "BS": b.iter().map(b64).collect::<Vec<_>>() }),
        AttributeValue::M(m) => json!({ "M": item_json(m) }),
        AttributeValue::L(l) => json!({ "L": l.iter().map(attribute_json).collect::<Vec<_>>() }),
        AttributeValue::Null(n) => json!({ "NULL": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        _ => Value::Null,
    }
}
