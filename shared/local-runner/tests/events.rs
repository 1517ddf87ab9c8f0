//! Local delivery of each event source, with functions declared here the way the registry
//! declares them: the stream (filter, batch failures, retries, dead letters), SQS queues
//! (batch item failures, redelivery, the dead-letter queue), upload events for objects written
//! through presigned requests, domain events through the registry's fan-out, and schedules
//! fired by the clock.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use api::{Handlers, Platform};
use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::s3::S3Event;
use aws_lambda_events::sqs::SqsEvent;
use local_runner::events::{EVENT_QUEUES_VAR, LocalEvents, queue_env};
use registry::{EventSubscription, Function, Queue, S3Source, Schedule, Sources, StreamSource};
use serde_json::json;

/// What each handler received, by test (handlers are plain function pointers, as in the
/// registry, so they record into a static keyed by the table they run on).
fn seen() -> &'static Mutex<HashMap<String, Vec<String>>> {
    static SEEN: OnceLock<Mutex<HashMap<String, Vec<String>>>> = OnceLock::new();
    SEEN.get_or_init(Default::default)
}

fn record(table: &str, what: String) {
    seen().lock().unwrap().entry(table.to_owned()).or_default().push(what);
}

fn seen_by(table: &str) -> Vec<String> {
    seen().lock().unwrap().get(table).cloned().unwrap_or_default()
}

fn function(name: &'static str, sources: Sources, handlers: fn(&Platform) -> Result<Handlers, String>) -> Function {
    Function {
        name,
        description: "test",
        memory_mb: 128,
        timeout_seconds: 10,
        sizing_reason: "test",
        environment: Default::default(),
        permissions: Default::default(),
        sources,
        routes: None,
        handlers: Some(handlers),
    }
}

async fn platform(store: &store::Store, extra: HashMap<String, String>) -> Platform {
    let config = testkit::sdk_config().await;
    local_runner::provision::platform(&config, store.clone(), "https://app.example.com", extra)
}

/// Stream handler: records each item's `name`; fails records whose name is `poison`.
fn stream_handlers(p: &Platform) -> Result<Handlers, String> {
    let table = p.store.table_name().to_owned();
    Ok(Handlers {
        stream: Some(api::handler(move |event: StreamEvent| {
            let table = table.clone();
            async move {
                let mut failed = Vec::new();
                for r in &event.records {
                    let image: serde_json::Value = serde_dynamo::from_item(r.change.new_image.clone()).unwrap_or_default();
                    let name = image["name"].as_str().unwrap_or("").to_owned();
                    record(&table, format!("{}:{name}", r.event_name));
                    if name == "poison" {
                        failed.push(r.event_id.clone());
                    }
                }
                failed
            }
        })),
        ..Default::default()
    })
}

async fn put(store: &store::Store, pk: &str, kind: &str, name: &str) {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    store
        .client()
        .put_item()
        .table_name(store.table_name())
        .item("PK", S(pk.into()))
        .item("SK", S("X".into()))
        .item("_type", S(kind.into()))
        .item("name", S(name.into()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn stream_records_are_filtered_batched_retried_and_set_aside() {
    let store = testkit::fresh_store_with_stream().await;
    let sources = Sources {
        dynamodb_stream: Some(StreamSource {
            filters: vec![json!({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"_type": {"S": ["widget"]}}}})],
            batch_size: 2,
            maximum_retry_attempts: 2,
            bisect_batch_on_error: false,
        }),
        ..Default::default()
    };
    let p = platform(&store, HashMap::new()).await;
    let config = testkit::sdk_config().await;
    let events = LocalEvents::setup(&config, &p, vec![function("widgets", sources, stream_handlers)], "").await.unwrap();
    put(&store, "A", "widget", "a").await;
    put(&store, "B", "gadget", "b").await; // filtered out
    put(&store, "C", "widget", "poison").await;
    put(&store, "D", "widget", "d").await;
    put(&store, "A", "widget", "a2").await; // a MODIFY: filtered out
    events.settle(20).await;

    let table = store.table_name();
    // batch 1 = [a, poison]: `a` is done, `poison` fails; from then on the batch is
    // [poison, d], retried twice more (maximumRetryAttempts 2), then set aside, so `d` is
    // seen with every attempt of that batch and never again after.
    assert_eq!(seen_by(table), ["INSERT:a", "INSERT:poison", "INSERT:poison", "INSERT:d", "INSERT:poison", "INSERT:d"]);
    let log = events.log().all();
    assert_eq!(log.iter().map(|d| d.dead_lettered).sum::<usize>(), 2, "the failed record and the one after it are set aside: {log:?}");
    assert!(log.iter().all(|d| d.source == "stream" && d.function == "widgets"));
}

/// Queue handler: records bodies; fails `poison`.
fn queue_handlers(p: &Platform) -> Result<Handlers, String> {
    let table = p.store.table_name().to_owned();
    Ok(Handlers {
        queue: Some(api::handler(move |event: SqsEvent| {
            let table = table.clone();
            async move {
                let mut failed = Vec::new();
                for m in &event.records {
                    let body = m.body.clone().unwrap_or_default();
                    record(&table, body.clone());
                    assert_eq!(m.event_source.as_deref(), Some("aws:sqs"));
                    if body == "poison" {
                        failed.extend(m.message_id.clone());
                    }
                }
                failed
            }
        })),
        ..Default::default()
    })
}

#[tokio::test]
async fn queue_messages_that_fail_come_back_and_end_in_the_dead_letter_queue() {
    let store = testkit::fresh_store().await;
    let config = testkit::sdk_config().await;
    // Visibility 0: a failed message is visible again at once, so no test waits.
    let sources = Sources { queues: vec![Queue { id: "jobs", batch_size: 10, max_receive_count: 2, visibility_timeout_seconds: 0 }], ..Default::default() };
    let functions = vec![function("jobs", sources, queue_handlers)];
    let env = queue_env(&config, store.table_name(), &functions).await.unwrap();
    let url = env.get("QUEUE_URL_JOBS").expect("the function is told its queue").clone();
    let p = platform(&store, env).await;
    assert_eq!(p.var("QUEUE_URL_JOBS").as_deref(), Some(url.as_str()));
    let events = LocalEvents::setup(&config, &p, functions, "").await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&config);
    for body in ["one", "poison", "two"] {
        sqs.send_message().queue_url(&url).message_body(body).send().await.unwrap();
    }
    events.settle(6).await;

    let mut got = seen_by(store.table_name());
    got.sort();
    assert_eq!(got, ["one", "poison", "poison", "two"], "delivered, and the failed one again until its receives run out");
    let left =
        sqs.get_queue_attributes().queue_url(&url).attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages).send().await.unwrap();
    let count = |a: Option<HashMap<aws_sdk_sqs::types::QueueAttributeName, String>>| {
        a.and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)).unwrap_or_default()
    };
    assert_eq!(count(left.attributes), "0");
    let dlq = sqs
        .get_queue_url()
        .queue_name(format!("{}-dlq", local_runner::events::queue_name(store.table_name(), "jobs", "jobs")))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dead = sqs.receive_message().queue_url(&dlq).send().await.unwrap().messages.unwrap_or_default();
    assert_eq!(dead.iter().filter_map(|m| m.body.as_deref()).collect::<Vec<_>>(), ["poison"]);
}

/// Upload handler: records the object keys of the S3 events in the queue's messages (and
/// S3's test event, which the bucket sends when its notification is configured).
fn upload_handlers(p: &Platform) -> Result<Handlers, String> {
    let table = p.store.table_name().to_owned();
    Ok(Handlers {
        queue: Some(api::handler(move |event: SqsEvent| {
            let table = table.clone();
            async move {
                for m in &event.records {
                    let body: serde_json::Value = serde_json::from_str(m.body.as_deref().unwrap_or("")).unwrap();
                    if body.get("Records").is_none() {
                        record(&table, format!("test event {}", body["Event"].as_str().unwrap_or("?")));
                        continue;
                    }
                    let s3: S3Event = serde_json::from_value(body).unwrap();
                    for r in &s3.records {
                        let name = r.event_name.clone().unwrap_or_default();
                        record(&table, format!("{name} {}", r.s3.object.key.clone().unwrap_or_default()));
                    }
                }
                Vec::new()
            }
        })),
        ..Default::default()
    })
}

/// A PUT of `body` to a presigned URL, as a browser does it (plain HTTP/1.1 on loopback).
async fn put_presigned(url: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("a loopback http URL");
    let (authority, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let head = format!("PUT /{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn objects_uploaded_through_presigned_urls_reach_the_upload_consumer() {
    let store = testkit::fresh_store().await;
    let config = testkit::sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
    let bucket = format!("{}-uploads", store.table_name());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let queue = Queue { id: "uploads", batch_size: 5, max_receive_count: 3, visibility_timeout_seconds: 30 };
    let sources = Sources { s3: Some(S3Source { events: vec!["s3:ObjectCreated:*"], prefix: "uploads/", queue }), ..Default::default() };
    let p = platform(&store, HashMap::new()).await;
    let events = LocalEvents::setup(&config, &p, vec![function("files", sources, upload_handlers)], &bucket).await.unwrap();
    let presign = aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    for key in ["uploads/report.pdf", "elsewhere/skip.txt"] {
        let url = s3.put_object().bucket(&bucket).key(key).presigned(presign.clone()).await.unwrap();
        assert_eq!(put_presigned(url.uri(), b"%PDF-1.7 hello").await, 200, "{key}");
    }
    events.settle(5).await;
    let seen: Vec<String> = seen_by(store.table_name()).into_iter().filter(|s| !s.starts_with("test event")).collect();
    assert_eq!(seen, ["ObjectCreated:Put uploads/report.pdf"], "only the prefix the function subscribed to: {:?}", events.log().all());
}

/// Schedule handler: records the schedule and its time.
fn schedule_handlers(p: &Platform) -> Result<Handlers, String> {
    let table = p.store.table_name().to_owned();
    Ok(Handlers {
        schedule: Some(api::handler(move |event: api::ScheduledEvent| {
            let table = table.clone();
            async move {
                record(&table, format!("{} {}", event.detail.schedule, event.time.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()));
                Ok(())
            }
        })),
        ..Default::default()
    })
}

#[tokio::test]
async fn schedules_fire_at_their_time_by_the_clock() {
    let start = time::macros::datetime!(2026-11-27 07:30 UTC);
    let store = testkit::fresh_store().await.with_clock(domain::Clock::fixed(start));
    let config = testkit::sdk_config().await;
    let sources = Sources {
        schedules: vec![
            Schedule { id: "digest", expression: "cron(0 8 * * ? *)", description: "daily digest" },
            Schedule { id: "sweep", expression: "rate(1 hour)", description: "hourly sweep" },
        ],
        ..Default::default()
    };
    let p = platform(&store, HashMap::new()).await;
    let events = LocalEvents::setup(&config, &p, vec![function("jobs", sources, schedule_handlers)], "").await.unwrap();
    assert_eq!(events.pump().await, 0, "nothing is due at the start");
    assert_eq!(events.advance(Duration::from_secs(29 * 60)).await.unwrap().len(), 0);
    assert_eq!(events.advance(Duration::from_secs(60)).await.unwrap().len(), 1, "08:00: the digest");
    assert_eq!(events.advance(Duration::from_secs(30 * 60)).await.unwrap().len(), 1, "08:30: the sweep");
    // A jump of a day fires each once, with the latest time it was due.
    assert_eq!(events.advance(Duration::from_secs(86_400)).await.unwrap().len(), 2);
    let mut got = seen_by(store.table_name());
    got[2..].sort();
    assert_eq!(got, ["digest 2026-11-27T08:00:00Z", "sweep 2026-11-27T08:30:00Z", "digest 2026-11-28T08:00:00Z", "sweep 2026-11-28T08:30:00Z"]);
}

/// Subscriber handler: records the kind and id of the domain event each message carries.
fn subscriber_handlers(p: &Platform) -> Result<Handlers, String> {
    let table = p.store.table_name().to_owned();
    Ok(Handlers {
        queue: Some(api::handler(move |event: SqsEvent| {
            let table = table.clone();
            async move {
                for m in &event.records {
                    let e: store::DomainEvent = serde_json::from_str(m.body.as_deref().unwrap_or("")).expect("a message body is one domain event");
                    record(&table, format!("{} {}", e.kind.as_str(), e.id));
                }
                Vec::new()
            }
        })),
        ..Default::default()
    })
}

/// Writes a domain event item of `kind`, as the store does in a change's transaction; answers
/// its id.
async fn put_event(store: &store::Store, kind: &str) -> String {
    let id = ulid::Ulid::new().to_string();
    let item = json!({
        "PK": format!("EVENT#{id}"), "SK": "EVENT", "_type": "event",
        "id": id, "kind": kind, "orgId": domain::OrgId::new(), "actor": "system", "at": "2026-11-27T10:00:00Z", "ttl": 1_800_000_000,
    });
    let item: HashMap<String, aws_sdk_dynamodb::types::AttributeValue> = serde_dynamo::to_item(item).unwrap();
    store.client().put_item().table_name(store.table_name()).set_item(Some(item)).send().await.unwrap();
    id
}

#[tokio::test]
async fn a_subscriber_receives_the_domain_events_of_its_kinds_through_the_fan_out() {
    let store = testkit::fresh_store_with_stream().await;
    let config = testkit::sdk_config().await;
    // The registry's fan-out, with the filter its subscribers give it; a subscriber declared
    // here takes one of their kinds, and not the others.
    let all = registry::all();
    let fan_out = all.iter().find(|f| f.sources.fan_out).expect("a function fans the domain events out").clone();
    let kinds = registry::subscribed_kinds(&all);
    let (mine, others) = kinds.split_first().expect("someone subscribes to domain events");
    let unsubscribed = store::EventKind::ALL.iter().map(|k| k.as_str()).find(|k| !kinds.contains(k)).expect("a kind nobody takes");
    let queue = Queue { id: "inbox", batch_size: 10, max_receive_count: 3, visibility_timeout_seconds: 30 };
    let sources = Sources { domain_events: Some(EventSubscription { kinds: vec![*mine], queue }), ..Default::default() };
    let functions = vec![fan_out.clone(), function("subscriber", sources, subscriber_handlers)];
    let env = queue_env(&config, store.table_name(), &functions).await.unwrap();
    let queues: serde_json::Value = serde_json::from_str(env.get(EVENT_QUEUES_VAR).expect("the fan-out is told the queues")).unwrap();
    assert_eq!(queues[0]["kinds"], json!([mine]));
    assert!(env.keys().all(|k| !k.starts_with("QUEUE_URL_")), "a subscriber only consumes its queue: {env:?}");
    let p = platform(&store, env).await;
    let events = LocalEvents::setup(&config, &p, functions, "").await.unwrap();

    let delivered = put_event(&store, mine).await;
    for kind in others.iter().chain([&unsubscribed]) {
        put_event(&store, kind).await;
    }
    events.settle(10).await;

    assert_eq!(seen_by(store.table_name()), [format!("{mine} {delivered}")], "{:?}", events.log().all());
    let log = events.log().all();
    let fanned: usize = log.iter().filter(|d| d.function == fan_out.name && d.source == "stream").map(|d| d.records).sum();
    assert_eq!(fanned, 1 + others.len(), "the fan-out's filter takes the subscribed kinds only: {log:?}");
    let received: Vec<_> = log.iter().filter(|d| d.function == "subscriber").map(|d| (d.source.as_str(), d.records, d.failed)).collect();
    assert_eq!(received, [("queue:inbox", 1, 0)]);
}
