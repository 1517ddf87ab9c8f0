//! The domain-event fan-out. The table's stream has two readers already (notifications and
//! this function: DynamoDB Streams throttles a third), so the functions that subscribe to
//! domain events (the registry's `domain_events`) receive them from this one: its mapping also
//! lets through the INSERTs of event items of every subscribed kind, and each event is sent to
//! the queue of every subscriber of its kind, as the body of one message (the event as
//! [`store::DomainEvent`] serializes).
//!
//! Forwarding is at least once: a record whose forward fails is reported alone and retried by
//! the stream, and sent again to every queue of its kind, those that took it included. So a
//! subscriber may see an event twice and is idempotent on its id; nothing is lost short of the
//! mapping's retries running out (then the record waits in its failure queue, alarmed).

use serde::{Deserialize, Serialize};
use store::DomainEvent;

/// The environment variable listing the subscribers' queues: a JSON array of
/// `{"kinds": [...], "queueUrl": "..."}` (set by the stack, or the local runner).
pub const EVENT_QUEUES_ENV: &str = "EVENT_QUEUES";

/// SQS takes at most 10 messages per SendMessageBatch.
const BATCH: usize = 10;

/// One subscriber's queue and the kinds it takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventQueue {
    pub kinds: Vec<String>,
    pub queue_url: String,
}

/// Reads [`EVENT_QUEUES_ENV`]'s value. Refused rather than read in part: a queue left out would
/// lose its subscriber's events without a trace.
pub fn parse_queues(text: &str) -> Result<Vec<EventQueue>, String> {
    let queues: Vec<EventQueue> = serde_json::from_str(text).map_err(|e| format!("{EVENT_QUEUES_ENV} is not a list of {{kinds, queueUrl}}: {e}"))?;
    match queues.iter().find(|q| q.kinds.is_empty() || q.queue_url.trim().is_empty()) {
        Some(q) => Err(format!("{EVENT_QUEUES_ENV}: every queue has a URL and at least one kind ({q:?})")),
        None => Ok(queues),
    }
}

/// The subscribers' queues and the client that sends to them.
#[derive(Clone)]
pub struct FanOut {
    sqs: aws_sdk_sqs::Client,
    queues: std::sync::Arc<Vec<EventQueue>>,
}

impl FanOut {
    pub fn new(sqs: aws_sdk_sqs::Client, queues: Vec<EventQueue>) -> FanOut {
        FanOut { sqs, queues: std::sync::Arc::new(queues) }
    }

    pub fn queues(&self) -> &[EventQueue] {
        &self.queues
    }

    /// Sends every event (with the id of the stream record that carried it) to the queue of
    /// each subscriber of its kind, up to 10 per call; answers the records of the events that
    /// some queue did not take, in the order given. An event is sent once per queue however
    /// many records carry it (its id is the batch entry's, which SQS wants unique).
    pub async fn forward(&self, events: &[(String, DomainEvent)]) -> Vec<String> {
        let mut failed_events: Vec<&str> = Vec::new();
        for queue in self.queues.iter() {
            let mut seen = std::collections::HashSet::new();
            let mine: Vec<&DomainEvent> =
                events.iter().map(|(_, e)| e).filter(|e| queue.kinds.iter().any(|k| k == e.kind.as_str()) && seen.insert(e.id.as_str())).collect();
            for chunk in mine.chunks(BATCH) {
                failed_events.extend(self.send(queue, chunk).await);
            }
        }
        let unrouted = events.iter().filter(|(_, e)| !self.queues.iter().any(|q| q.kinds.iter().any(|k| k == e.kind.as_str()))).count();
        if unrouted > 0 {
            tracing::warn!(events = unrouted, "domain events no subscriber's queue takes; not forwarded");
        }
        events.iter().filter(|(_, e)| failed_events.contains(&e.id.as_str())).map(|(record, _)| record.clone()).collect()
    }

    /// One SendMessageBatch of up to 10 events to `queue`; answers the ids of those it did not
    /// take (all of them when the call itself failed).
    async fn send<'e>(&self, queue: &EventQueue, events: &[&'e DomainEvent]) -> Vec<&'e str> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        let mut unsent = Vec::new();
        let mut entries = Vec::new();
        for e in events {
            let entry = serde_json::to_string(e)
                .map_err(|err| err.to_string())
                .and_then(|body| SendMessageBatchRequestEntry::builder().id(&e.id).message_body(body).build().map_err(|err| err.to_string()));
            match entry {
                Ok(entry) => entries.push(entry),
                Err(error) => {
                    tracing::error!(event_id = %e.id, error, "domain event not serialized");
                    unsent.push(e.id.as_str());
                }
            }
        }
        if entries.is_empty() {
            return unsent;
        }
        match self.sqs.send_message_batch().queue_url(&queue.queue_url).set_entries(Some(entries)).send().await {
            Ok(out) => {
                for f in out.failed() {
                    tracing::error!(queue = %queue.queue_url, event_id = %f.id(), code = %f.code(), message = ?f.message(), "domain event not forwarded");
                    unsent.extend(events.iter().find(|e| e.id == f.id()).map(|e| e.id.as_str()));
                }
            }
            Err(e) => {
                tracing::error!(queue = %queue.queue_url, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "domain events not forwarded");
                unsent.extend(events.iter().map(|e| e.id.as_str()));
            }
        }
        unsent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_queues_are_read_whole_or_refused() {
        let queues = parse_queues(r#"[{"kinds": ["file.processed", "file.deleted"], "queueUrl": "https://sqs/q"}]"#).unwrap();
        assert_eq!(queues, [EventQueue { kinds: vec!["file.processed".into(), "file.deleted".into()], queue_url: "https://sqs/q".into() }]);
        assert_eq!(parse_queues("[]").unwrap(), []);
        for bad in ["", "{}", r#"[{"kinds": [], "queueUrl": "u"}]"#, r#"[{"kinds": ["a"], "queueUrl": " "}]"#, r#"[{"kinds": ["a"], "url": "u"}]"#] {
            assert!(parse_queues(bad).is_err(), "{bad}");
        }
    }
}
