//! One Lambda function, whatever invokes it: its HTTP router and its event handlers, built
//! once at init from a [`Platform`], and [`serve`], which tells the event kinds apart the way
//! their shapes do (a REST proxy request, DynamoDB stream records, SQS messages, S3
//! notifications, an EventBridge scheduled event) and hands each to its handler.
//!
//! The local runner and the benchmark's Lambda emulator call the same handlers with the same
//! event types, so a handler cannot tell them from Lambda.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use axum::Router;
use domain::Clock;
use lambda_http::lambda_runtime::{self, LambdaEvent};
use lambda_http::request::LambdaRequest;
use lambda_http::tower::{Service, ServiceExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::Store;
use tracing::Instrument;

/// A boxed future, as event handlers return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A handler of one event kind.
pub type Handler<E, R> = Arc<dyn Fn(E) -> BoxFuture<'static, R> + Send + Sync>;

/// Wraps an async function as a [`Handler`].
pub fn handler<E, R, F, Fut>(f: F) -> Handler<E, R>
where
    F: Fn(E) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    Arc::new(move |event| Box::pin(f(event)))
}

/// What a scheduled invocation carries in `detail` (the schedule's input, set by the
/// infrastructure): which schedule fired. The event's `time` is the scheduled time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleDetail {
    pub schedule: String,
    #[serde(default)]
    pub function: String,
}

/// A scheduled invocation.
pub type ScheduledEvent = EventBridgeEvent<ScheduleDetail>;

/// Why a stream or queue batch handler failed on a record, to be retried (a poison record
/// fails alone, never its batch).
pub type RecordFailures = Vec<String>;

/// Every way a function is invoked, each optional.
#[derive(Clone, Default)]
pub struct Handlers {
    /// API Gateway REST proxy requests: the function's routes with their state, not yet
    /// finished (the local runner merges several functions' routes; [`serve`] finishes them).
    pub http: Option<Router>,
    /// DynamoDB stream records (after the event source mapping's filter): the ids of the
    /// records that failed (`eventID`s; Lambda's `batchItemFailures` takes the sequence
    /// number, which [`serve`] looks up).
    pub stream: Option<Handler<StreamEvent, RecordFailures>>,
    /// SQS messages: the message ids that failed. The upload bucket's object events arrive
    /// this way too (each message's body is one S3 event), through the queue the bucket
    /// notifies.
    pub queue: Option<Handler<SqsEvent, RecordFailures>>,
    /// EventBridge Scheduler invocations. An error fails the invocation (retried by the
    /// schedule's retry policy).
    pub schedule: Option<Handler<ScheduledEvent, Result<(), String>>>,
    /// Other EventBridge events delivered by a rule (SES bounces and complaints, say). An
    /// error fails the invocation (retried by EventBridge, then the rule's dead-letter queue).
    pub bus: Option<Handler<EventBridgeEvent<Value>, Result<(), String>>>,
}

/// A configuration lookup by name.
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// What every function builds its handlers from: one AWS configuration per process shared by
/// every client, the store, the clock, and the environment.
#[derive(Clone)]
pub struct Platform {
    pub aws: aws_config::SdkConfig,
    pub store: Store,
    env: Arc<Lookup>,
}

impl Platform {
    pub fn new(aws: aws_config::SdkConfig, store: Store, env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Platform { aws, store, env: Arc::new(env) }
    }

    /// The Lambda environment: one SDK configuration (standard retries), the store on it.
    pub async fn from_env() -> Result<Platform, store::ConfigError> {
        let aws = store::aws_config_from_env().await;
        let store = Store::from_config(&aws).await?;
        crate::metering::install(store.clone());
        Ok(Platform::new(aws, store, |name| std::env::var(name).ok()))
    }

    /// The clock every write is stamped with and schedules fire by: the store's.
    pub fn clock(&self) -> &Clock {
        self.store.clock()
    }

    /// A configuration value (the process environment on Lambda; the runner's values locally).
    /// Blank counts as unset.
    pub fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.trim().is_empty())
    }
}

/// The kind of an incoming Lambda event, told by its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Http,
    Stream,
    Queue,
    S3,
    Schedule,
    /// An EventBridge event other than a schedule's.
    Bus,
    Unknown,
}

/// Tells an event's kind from its shape.
pub fn event_kind(event: &Value) -> EventKind {
    if event.get("httpMethod").is_some() && event.get("requestContext").is_some() {
        return EventKind::Http;
    }
    if event.get("detail-type").is_some() && event.get("detail").is_some() {
        // A schedule's input names the schedule (the infrastructure sets it).
        let scheduled = event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") && event.pointer("/detail/schedule").is_some();
        return if scheduled { EventKind::Schedule } else { EventKind::Bus };
    }
    let source = event.pointer("/Records/0/eventSource").or_else(|| event.pointer("/Records/0/EventSource")).and_then(Value::as_str);
    match source {
        Some("aws:dynamodb") => EventKind::Stream,
        Some("aws:sqs") => EventKind::Queue,
        Some("aws:s3") => EventKind::S3,
        _ => EventKind::Unknown,
    }
}

/// Who an event's usage is charged to: the orgs its records belong to (a stream record's
/// `orgId` or `ORG#` key, a queued domain event's `orgId`, an upload's key), the platform for
/// schedules; HTTP requests are attributed by their authorization instead.
pub fn payers_of(kind: EventKind, event: &Value) -> Vec<String> {
    let org_of_key = |pk: &str| pk.strip_prefix("ORG#").map(|r| r.split('#').next().unwrap_or(r).to_owned());
    let mut out: Vec<String> = Vec::new();
    let records = event.get("Records").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    match kind {
        EventKind::Schedule | EventKind::Bus => out.push(telemetry::PLATFORM.to_owned()),
        EventKind::Stream => {
            for r in records {
                let org = ["/dynamodb/NewImage/orgId/S", "/dynamodb/OldImage/orgId/S"]
                    .iter()
                    .find_map(|p| r.pointer(p).and_then(Value::as_str).map(str::to_owned))
                    .or_else(|| r.pointer("/dynamodb/Keys/PK/S").and_then(Value::as_str).and_then(org_of_key));
                out.extend(org);
            }
        }
        EventKind::Queue => {
            for r in records {
                let Some(body) = r.get("body").and_then(Value::as_str).and_then(|b| serde_json::from_str::<Value>(b).ok()) else { continue };
                let upload =
                    |b: &Value| b.pointer("/Records/0/s3/object/key").and_then(Value::as_str).and_then(store::parse_upload_key).map(|(org, _)| org.to_string());
                let org = ["/orgId", "/detail/orgId"].iter().find_map(|p| body.pointer(p).and_then(Value::as_str).map(str::to_owned)).or_else(|| upload(&body));
                out.extend(org);
            }
        }
        _ => {}
    }
    out.retain(|p| p == telemetry::PLATFORM || p.parse::<domain::OrgId>().is_ok());
    out.sort();
    out.dedup();
    out
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("this function has no handler for {0:?} events")]
    NoHandler(EventKind),
    #[error("malformed {0:?} event: {1}")]
    Malformed(EventKind, String),
    #[error("{0}")]
    Failed(String),
}

impl Handlers {
    /// Answers one invocation (the raw event JSON Lambda delivers) with the JSON Lambda
    /// expects back.
    pub async fn invoke(&self, event: Value, context: lambda_runtime::Context) -> Result<Value, InvokeError> {
        let kind = event_kind(&event);
        for payer in payers_of(kind, &event) {
            telemetry::attribute(&payer);
        }
        let malformed = |e: serde_json::Error| InvokeError::Malformed(kind, e.to_string());
        match kind {
            EventKind::Http => {
                let router = self.http.clone().ok_or(InvokeError::NoHandler(kind))?;
                let request: LambdaRequest = serde_json::from_value(event).map_err(malformed)?;
                let mut adapter = lambda_http::Adapter::from(router);
                let response = adapter
                    .ready()
                    .await
                    .map_err(|e| InvokeError::Failed(e.to_string()))?
                    .call(LambdaEvent::new(request, context))
                    .await
                    .map_err(|e| InvokeError::Failed(e.to_string()))?;
                serde_json::to_value(response).map_err(malformed)
            }
            EventKind::Stream => {
                let handler = self.stream.clone().ok_or(InvokeError::NoHandler(kind))?;
                let records: StreamEvent = serde_json::from_value(event).map_err(malformed)?;
                let sequence: std::collections::HashMap<String, Option<String>> =
                    records.records.iter().map(|r| (r.event_id.clone(), r.change.sequence_number.clone())).collect();
                let failed = handler(records).await;
                let mut response = DynamoDbEventResponse::default();
                response.batch_item_failures = failed
                    .into_iter()
                    .map(|id| {
                        let mut f = DynamoDbBatchItemFailure::default();
                        f.item_identifier = sequence.get(&id).cloned().flatten().or(Some(id));
                        f
                    })
                    .collect();
                serde_json::to_value(response).map_err(malformed)
            }
            EventKind::Queue => {
                let handler = self.queue.clone().ok_or(InvokeError::NoHandler(kind))?;
                let messages: SqsEvent = serde_json::from_value(event).map_err(malformed)?;
                let failed = handler(messages).await;
                let mut response = SqsBatchResponse::default();
                response.batch_item_failures = failed
                    .into_iter()
                    .map(|id| {
                        let mut f = aws_lambda_events::sqs::BatchItemFailure::default();
                        f.item_identifier = id;
                        f
                    })
                    .collect();
                serde_json::to_value(response).map_err(malformed)
            }
            EventKind::Schedule => {
                let handler = self.schedule.clone().ok_or(InvokeError::NoHandler(kind))?;
                handler(serde_json::from_value(event).map_err(malformed)?).await.map_err(InvokeError::Failed)?;
                Ok(Value::Null)
            }
            EventKind::Bus => {
                let handler = self.bus.clone().ok_or(InvokeError::NoHandler(kind))?;
                handler(serde_json::from_value(event).map_err(malformed)?).await.map_err(InvokeError::Failed)?;
                Ok(Value::Null)
            }
            // S3 notifications sent straight to a function: the stack sends them to a queue.
            EventKind::S3 | EventKind::Unknown => Err(InvokeError::NoHandler(kind)),
        }
    }
}

/// Runs a function on the Lambda runtime: every invocation goes to [`Handlers::invoke`].
/// A REST request logs its `request` line in the router; every other event logs one `event`
/// line with its kind, records, failures and the AWS calls it made.
pub async fn serve(handlers: Handlers) -> Result<(), lambda_runtime::Error> {
    let handlers = &Handlers { http: handlers.http.clone().map(crate::finish), ..handlers };
    metered_runtime(lambda_runtime::service_fn(move |event: LambdaEvent<Value>| async move {
        let kind = event_kind(&event.payload);
        let result = if kind == EventKind::Http { handlers.invoke(event.payload, event.context).await } else { invoke_logged(handlers, kind, event).await };
        result.map_err(|e| {
            tracing::error!(error = %e, "invocation failed");
            lambda_runtime::Error::from(e.to_string())
        })
    }))
    .await
}

/// The Lambda runtime as `lambda_runtime::run` builds it (its tracing layer), with the
/// metering layer around everything: each invocation's usage goes to the cost ledger after
/// its answer was posted (see [`crate::metering`]).
async fn metered_runtime<F, A, R, B, St, D, E>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: lambda_runtime::tower::Service<LambdaEvent<A>, Response = R>,
    F::Future: Future<Output = Result<R, F::Error>>,
    F::Error: Into<lambda_runtime::Diagnostic> + std::fmt::Debug,
    A: for<'de> Deserialize<'de>,
    R: lambda_runtime::IntoFunctionResponse<B, St>,
    B: Serialize,
    St: futures::Stream<Item = Result<D, E>> + Unpin + Send + 'static,
    D: Into<axum::body::Bytes> + Send,
    E: Into<lambda_runtime::Error> + Send + std::fmt::Debug,
{
    lambda_runtime::Runtime::new(handler).layer(lambda_runtime::layers::TracingLayer::new()).layer(crate::metering::MeterLayer::default()).run().await
}

/// The streamed body of an answer.
type ByteStream = Pin<Box<dyn futures::Stream<Item = Result<axum::body::Bytes, lambda_runtime::Error>> + Send>>;

/// [`serve`] for a function whose HTTP answers stream (Lambda response streaming, which API
/// Gateway REST's `STREAM` transfer mode invokes): an HTTP request's answer leaves as it is
/// produced, its status and headers first (the runtime's metadata prelude); every other
/// event is answered as [`serve`] answers it, buffered. When the client goes away, the
/// runtime stops reading the body, and the stream's producer sees it closed.
pub async fn serve_streaming(handlers: Handlers) -> Result<(), lambda_runtime::Error> {
    use futures::StreamExt;
    use lambda_http::lambda_runtime::{FunctionResponse, StreamResponse};
    let handlers = &Handlers { http: handlers.http.clone().map(crate::finish), ..handlers };
    metered_runtime(lambda_runtime::service_fn(move |event: LambdaEvent<Value>| async move {
        let kind = event_kind(&event.payload);
        let failed = |e: String| {
            tracing::error!(error = %e, "invocation failed");
            lambda_runtime::Error::from(e)
        };
        if kind == EventKind::Http {
            let router = handlers.http.clone().ok_or_else(|| failed(InvokeError::NoHandler(kind).to_string()))?;
            let request: LambdaRequest = serde_json::from_value(event.payload).map_err(|e| failed(InvokeError::Malformed(kind, e.to_string()).to_string()))?;
            let mut adapter = lambda_http::StreamAdapter::from(router);
            let response = adapter
                .ready()
                .await
                .map_err(|e| failed(e.to_string()))?
                .call(LambdaEvent::new(request, event.context))
                .await
                .map_err(|e| failed(e.to_string()))?;
            let stream: ByteStream = Box::pin(response.stream.map(|chunk| chunk.map_err(|e| lambda_runtime::Error::from(format!("{e:?}")))));
            return Ok(FunctionResponse::StreamingResponse(StreamResponse { metadata_prelude: response.metadata_prelude, stream }));
        }
        invoke_logged(handlers, kind, event).await.map(FunctionResponse::BufferedResponse).map_err(|e| failed(e.to_string()))
    }))
    .await
}

/// [`Handlers::invoke`] for a non-HTTP event, in an `event` span, counting its AWS calls.
async fn invoke_logged(handlers: &Handlers, kind: EventKind, event: LambdaEvent<Value>) -> Result<Value, InvokeError> {
    let records = event.payload.get("Records").and_then(Value::as_array).map_or(1, Vec::len);
    let span = tracing::info_span!("event", kind = ?kind, request_id = %event.context.request_id);
    async move {
        let started = std::time::Instant::now();
        let (result, calls) = telemetry::record(handlers.invoke(event.payload, event.context)).await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (dynamodb_calls, ses_calls, s3_calls, aws_rounds) = (calls.count("DynamoDB"), calls.count("SESv2"), calls.count("S3"), calls.rounds("DynamoDB"));
        match &result {
            Ok(answer) => {
                let failed = answer.get("batchItemFailures").and_then(Value::as_array).map_or(0, Vec::len);
                tracing::info!(records, failed, elapsed_ms, dynamodb_calls, ses_calls, s3_calls, aws_rounds, "event");
            }
            Err(e) => tracing::warn!(records, error = %e, elapsed_ms, dynamodb_calls, ses_calls, s3_calls, aws_rounds, "event"),
        }
        result
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_kinds_are_told_by_shape() {
        assert_eq!(event_kind(&json!({"httpMethod": "GET", "requestContext": {}, "path": "/orgs"})), EventKind::Http);
        assert_eq!(event_kind(&json!({"Records": [{"eventSource": "aws:dynamodb"}]})), EventKind::Stream);
        assert_eq!(event_kind(&json!({"Records": [{"eventSource": "aws:sqs"}]})), EventKind::Queue);
        assert_eq!(event_kind(&json!({"Records": [{"eventSource": "aws:s3"}]})), EventKind::S3);
        assert_eq!(event_kind(&json!({"detail-type": "Scheduled Event", "detail": {"schedule": "x"}})), EventKind::Schedule);
        assert_eq!(event_kind(&json!({"detail-type": "Email Bounced", "source": "aws.ses", "detail": {"eventType": "Bounce"}})), EventKind::Bus);
        assert_eq!(event_kind(&json!({"Records": []})), EventKind::Unknown);
        assert_eq!(event_kind(&json!({"triggerSource": "PreSignUp_SignUp"})), EventKind::Unknown);
    }

    #[test]
    fn events_are_charged_to_the_orgs_of_their_records() {
        let org = domain::OrgId::new().to_string();
        let other = domain::OrgId::new().to_string();
        let stream = json!({"Records": [
            {"eventSource": "aws:dynamodb", "dynamodb": {"Keys": {"PK": {"S": format!("ORG#{org}")}, "SK": {"S": "MEMBER#u"}}}},
            {"eventSource": "aws:dynamodb", "dynamodb": {"Keys": {"PK": {"S": "EVENT#1"}}, "NewImage": {"orgId": {"S": other}}}},
            {"eventSource": "aws:dynamodb", "dynamodb": {"Keys": {"PK": {"S": "USER#u"}}}}
        ]});
        let mut both = vec![org.clone(), other.clone()];
        both.sort();
        assert_eq!(payers_of(EventKind::Stream, &stream), both);
        let queue = json!({"Records": [{"eventSource": "aws:sqs", "body": json!({"orgId": org}).to_string()}]});
        assert_eq!(payers_of(EventKind::Queue, &queue), vec![org.clone()]);
        let schedule = json!({"detail-type": "Scheduled Event", "detail": {"schedule": "digest"}});
        assert_eq!(payers_of(EventKind::Schedule, &schedule), vec![telemetry::PLATFORM.to_owned()]);
        let forged = json!({"Records": [{"eventSource": "aws:sqs", "body": json!({"orgId": "ORG#x"}).to_string()}]});
        assert!(payers_of(EventKind::Queue, &forged).is_empty());
    }

    #[tokio::test]
    async fn a_failed_stream_record_is_reported_by_its_sequence_number() {
        let handlers = Handlers {
            stream: Some(handler(|e: StreamEvent| async move { e.records.iter().filter(|r| r.event_name == "REMOVE").map(|r| r.event_id.clone()).collect() })),
            ..Default::default()
        };
        let record = |id: &str, name: &str, seq: &str| {
            json!({"eventID": id, "eventName": name, "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                   "dynamodb": {"Keys": {"PK": {"S": "A"}}, "SequenceNumber": seq, "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES"}})
        };
        let event = json!({"Records": [record("e1", "INSERT", "100"), record("e2", "REMOVE", "200")]});
        let out = handlers.invoke(event, lambda_runtime::Context::default()).await.expect("answered");
        assert_eq!(out, json!({"batchItemFailures": [{"itemIdentifier": "200"}]}));
    }

    #[tokio::test]
    async fn an_event_without_its_handler_is_refused() {
        let handlers = Handlers::default();
        let err = handlers.invoke(json!({"Records": [{"eventSource": "aws:sqs"}]}), lambda_runtime::Context::default()).await.unwrap_err();
        assert!(matches!(err, InvokeError::NoHandler(EventKind::Queue)));
    }
}
