//! SQS queues on the local endpoint, consumed as Lambda's SQS event source mapping does
//! with `ReportBatchItemFailures`; among them the queue of the upload bucket's object events,
//! which the bucket notifies as on AWS (each message's body is one S3 event, or S3's test
//! event when the notification is configured), and the queues of the domain events'
//! subscribers, which the fan-out function fills from the table's stream (each message's body
//! is one event).

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};
use serde_json::{Value, json};

use super::{Delivery, Error, EventLog, Target};

/// The local queue of a function's declared queue.
pub fn queue_name(table: &str, function: &str, id: &str) -> String {
    format!("{table}-{function}-{id}")
}

/// The environment variable that tells a function its queue's URL: `QUEUE_URL_<ID>`.
pub fn queue_url_var(id: &str) -> String {
    format!("QUEUE_URL_{}", id.to_ascii_uppercase().replace('-', "_"))
}

/// The environment variable that tells the fan-out function its subscribers' queues, as the
/// infrastructure sets it: a JSON array of `{"kinds": [...], "queueUrl": "..."}`.
pub const EVENT_QUEUES_VAR: &str = "EVENT_QUEUES";

/// Creates every declared queue of `functions` and every domain-event subscriber's queue (each
/// with its dead-letter queue and redrive policy), and answers the environment that names them:
/// `QUEUE_URL_<ID>` for the declared queues, and [`EVENT_QUEUES_VAR`] when one of the functions
/// fans the domain events out (a subscriber only consumes its queue, as on AWS).
pub async fn queue_env(config: &SdkConfig, table: &str, functions: &[registry::Function]) -> Result<HashMap<String, String>, Error> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut env = HashMap::new();
    let mut subscribers = Vec::new();
    for f in functions {
        for q in &f.sources.queues {
            let url = create_with_dlq(&sqs, &queue_name(table, f.name, q.id), q.max_receive_count, q.visibility_timeout_seconds).await?;
            env.insert(queue_url_var(q.id), url);
        }
        if let Some(sub) = &f.sources.domain_events {
            let q = &sub.queue;
            let url = create_with_dlq(&sqs, &queue_name(table, f.name, q.id), q.max_receive_count, q.visibility_timeout_seconds).await?;
            subscribers.push(json!({ "kinds": sub.kinds, "queueUrl": url }));
        }
    }
    if functions.iter().any(|f| f.sources.fan_out) {
        env.insert(EVENT_QUEUES_VAR.to_owned(), Value::Array(subscribers).to_string());
    }
    Ok(env)
}

async fn create_with_dlq(sqs: &aws_sdk_sqs::Client, name: &str, max_receive_count: u32, visibility: u32) -> Result<String, Error> {
    let dlq = sqs.create_queue().queue_name(format!("{name}-dlq")).send().await?.queue_url.ok_or("no dead-letter queue url")?;
    let dlq_arn = queue_arn(sqs, &dlq).await?;
    let policy = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}).to_string();
    let url = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .attributes(QueueAttributeName::VisibilityTimeout, visibility.to_string())
        .send()
        .await?
        .queue_url
        .ok_or("no queue url")?;
    Ok(url)
}

/// A batch as Lambda takes it from SQS: 1 to 10 messages.
fn batch_size(q: &registry::Queue) -> i32 {
    i32::try_from(q.batch_size.clamp(1, 10)).unwrap_or(10)
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, Error> {
    let attrs = sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::QueueArn).send().await?;
    Ok(attrs.attributes.and_then(|mut a| a.remove(&QueueAttributeName::QueueArn)).ok_or("no queue arn")?)
}

pub(super) struct QueueDelivery {
    sqs: aws_sdk_sqs::Client,
    url: String,
    arn: String,
    function: &'static str,
    source: String,
    batch_size: i32,
}

impl QueueDelivery {
    /// A declared queue of `function`, or its domain events' queue ([`queue_env`] created both).
    pub async fn existing(config: &SdkConfig, function: &'static str, q: &registry::Queue, platform: &api::Platform) -> Result<QueueDelivery, Error> {
        let sqs = aws_sdk_sqs::Client::new(config);
        let url = sqs.get_queue_url().queue_name(queue_name(platform.store.table_name(), function, q.id)).send().await?.queue_url.ok_or("no queue url")?;
        let arn = queue_arn(&sqs, &url).await?;
        Ok(QueueDelivery { sqs, url, arn, function, source: format!("queue:{}", q.id), batch_size: batch_size(q) })
    }

    /// Subscribes `function` to the upload bucket's object events through the source's queue
    /// (with its dead-letter queue), as the stack does on AWS.
    pub async fn for_uploads(
        config: &SdkConfig,
        function: &'static str,
        src: &registry::S3Source,
        bucket: &str,
        platform: &api::Platform,
    ) -> Result<QueueDelivery, Error> {
        use aws_sdk_s3::types::{
            Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
        };
        let sqs = aws_sdk_sqs::Client::new(config);
        let q = &src.queue;
        let url = create_with_dlq(&sqs, &queue_name(platform.store.table_name(), function, q.id), q.max_receive_count, q.visibility_timeout_seconds).await?;
        let arn = queue_arn(&sqs, &url).await?;
        let mut queue = QueueConfiguration::builder().queue_arn(&arn);
        for e in &src.events {
            queue = queue.events(Event::from(*e));
        }
        if !src.prefix.is_empty() {
            let rule = FilterRule::builder().name(FilterRuleName::Prefix).value(src.prefix).build();
            queue = queue.filter(NotificationConfigurationFilter::builder().key(S3KeyFilter::builder().filter_rules(rule).build()).build());
        }
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build());
        s3.put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(NotificationConfiguration::builder().queue_configurations(queue.build()?).build())
            .send()
            .await?;
        Ok(QueueDelivery { sqs, url, arn, function, source: "s3".into(), batch_size: batch_size(q) })
    }

    /// Receives one batch and delivers it; deletes what the handler did not report failed.
    pub async fn pump(&self, targets: &HashMap<&'static str, Target>, log: &EventLog) -> usize {
        let Some(target) = targets.get(self.function) else { return 0 };
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(self.batch_size)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(queue = %self.url, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "receiving failed");
                return 0;
            }
        };
        if messages.is_empty() {
            return 0;
        }
        let done = self.deliver_queue(target, &messages, log).await;
        if !done.is_empty() {
            let entries: Vec<DeleteMessageBatchRequestEntry> = done
                .iter()
                .enumerate()
                .filter_map(|(i, (_, receipt))| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(receipt).build().ok())
                .collect();
            if let Err(e) = self.sqs.delete_message_batch().queue_url(&self.url).set_entries(Some(entries)).send().await {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "deleting delivered messages failed");
            }
        }
        1
    }

    /// SQS events: the messages the handler did not report failed are done.
    async fn deliver_queue(&self, target: &Target, messages: &[aws_sdk_sqs::types::Message], log: &EventLog) -> Vec<(String, String)> {
        let Some(handler) = target.handlers.queue.clone() else { return Vec::new() };
        let records: Vec<Value> = messages.iter().map(|m| self.lambda_message(m)).collect();
        let raw = json!({ "Records": records });
        let (failed, ms, error) = match serde_json::from_value::<aws_lambda_events::sqs::SqsEvent>(raw.clone()) {
            Ok(event) => {
                let (failed, ms) = target.metered(api::EventKind::Queue, &raw, handler(event)).await;
                (failed, ms, None)
            }
            Err(e) => (messages.iter().filter_map(|m| m.message_id.clone()).collect(), 0, Some(format!("malformed SQS event: {e}"))),
        };
        self.log(log, messages.len(), failed.len(), ms, error);
        messages
            .iter()
            .filter(|m| m.message_id.as_ref().is_some_and(|id| !failed.contains(id)))
            .filter_map(|m| Some((m.message_id.clone()?, m.receipt_handle.clone()?)))
            .collect()
    }

    fn log(&self, log: &EventLog, records: usize, failed: usize, duration_ms: u64, error: Option<String>) {
        log.push(Delivery {
            at: domain::rfc3339(time::OffsetDateTime::now_utc()),
            function: self.function.into(),
            source: self.source.clone(),
            records,
            failed,
            dead_lettered: 0,
            duration_ms,
            error,
        });
    }

    /// A message as Lambda's SQS event carries it.
    fn lambda_message(&self, m: &aws_sdk_sqs::types::Message) -> Value {
        let attributes: serde_json::Map<String, Value> =
            m.attributes.as_ref().map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect()).unwrap_or_default();
        json!({
            "messageId": m.message_id,
            "receiptHandle": m.receipt_handle,
            "body": m.body,
            "md5OfBody": m.md5_of_body,
            "attributes": attributes,
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": testkit::endpoint::REGION,
        })
    }
}
