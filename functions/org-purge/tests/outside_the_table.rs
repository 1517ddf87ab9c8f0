//! What org-purge does beyond the table, against the local AWS endpoint: it forwards the domain
//! events others subscribe to into their queues (the stream's fan-out), and a purge deletes the
//! org's vector index.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::HashMap;

use api::{Handlers, Platform};
use domain::{Identity, OrgId, OrgName};
use serde_json::{Value, json};
use store::{DomainEvent, EventKind, NewOrg, Store, VectorBuckets};

fn platform(config: &aws_config::SdkConfig, store: &Store, vars: HashMap<String, String>) -> Platform {
    Platform::new(config.clone(), store.clone(), move |name| vars.get(name).cloned())
}

fn handlers(platform: &Platform) -> Handlers {
    org_purge::handlers(platform).expect("the configuration is valid")
}

/// An event of `kind` in `org`, as the store writes one.
fn event(kind: EventKind, org: OrgId) -> DomainEvent {
    DomainEvent {
        id: OrgId::new().to_string(),
        kind,
        org_id: org,
        actor: "system".into(),
        at: "2026-11-27T10:00:00Z".into(),
        project_id: None,
        task_id: None,
        title: Some("report.pdf".into()),
        changes: Vec::new(),
        assignee: None,
        created_by: None,
        comment_id: None,
        mentions: Vec::new(),
        excerpt: None,
        member: None,
        role: None,
        previous_role: None,
        inviter: None,
        file_id: None,
        file_status: None,
        rendition: None,
        invitation_id: None,
        export_id: None,
        request: None,
        ttl: 1_800_000_000,
    }
}

/// The INSERT record of `event`'s item, as the table's stream delivers it (its keys and
/// `_type` beside the event's fields).
fn insert_record(sequence: u32, event: &DomainEvent) -> Value {
    let mut image: serde_dynamo::Item = serde_dynamo::to_item(event).unwrap();
    image.insert("PK".into(), serde_dynamo::AttributeValue::S(format!("EVENT#{}", event.id)));
    image.insert("SK".into(), serde_dynamo::AttributeValue::S("EVENT".into()));
    image.insert("_type".into(), serde_dynamo::AttributeValue::S("event".into()));
    record(sequence, &image)
}

fn record(sequence: u32, image: &serde_dynamo::Item) -> Value {
    json!({
        "eventID": format!("record-{sequence}"),
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"PK": image.get("PK"), "SK": image.get("SK")},
            "NewImage": image,
            "SequenceNumber": sequence.to_string(),
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    })
}

/// Invokes the function with a stream batch, as Lambda does; answers the sequence numbers of
/// the records it reported failed.
async fn deliver(handlers: &Handlers, records: Vec<Value>) -> Vec<String> {
    let answer = handlers.invoke(json!({ "Records": records }), lambda_http::lambda_runtime::Context::default()).await.unwrap();
    answer["batchItemFailures"].as_array().unwrap().iter().map(|f| f["itemIdentifier"].as_str().unwrap().to_owned()).collect()
}

async fn queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue().queue_name(format!("{name}-{}", OrgId::new().to_string().to_ascii_lowercase())).send().await.unwrap().queue_url.unwrap()
}

/// Every event waiting in `url`, by id.
async fn received(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<DomainEvent> {
    let mut events = Vec::new();
    loop {
        let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            events.push(serde_json::from_str(m.body().unwrap()).expect("a message body is one domain event"));
            sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
    events.sort_by(|a: &DomainEvent, b| a.id.cmp(&b.id));
    events
}

fn queues_var(queues: &[(&[&str], &str)]) -> HashMap<String, String> {
    let list: Vec<Value> = queues.iter().map(|(kinds, url)| json!({"kinds": kinds, "queueUrl": url})).collect();
    HashMap::from([(org_purge::EVENT_QUEUES_ENV.to_owned(), Value::Array(list).to_string())])
}

#[tokio::test]
async fn domain_events_go_to_the_queue_of_every_subscriber_of_their_kind() {
    let store = testkit::fresh_store().await;
    let config = testkit::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let (ingest, audit) = (queue(&sqs, "ingest").await, queue(&sqs, "audit").await);
    let vars = queues_var(&[(&["file.processed", "file.deleted"], &ingest), (&["file.deleted", "task.created"], &audit)]);
    let handlers = handlers(&platform(&config, &store, vars));
    let org = OrgId::new();
    let (processed, deleted, created, moved) =
        (event(EventKind::FileProcessed, org), event(EventKind::FileDeleted, org), event(EventKind::TaskCreated, org), event(EventKind::TaskMoved, org));
    // Twelve events of one kind: two calls of at most ten.
    let many: Vec<DomainEvent> = (0..12).map(|_| event(EventKind::FileProcessed, org)).collect();
    let mut records = vec![insert_record(1, &processed), insert_record(2, &deleted), insert_record(3, &created), insert_record(4, &moved)];
    records.extend(many.iter().zip(5..).map(|(e, n)| insert_record(n, e)));

    let (failed, calls) = telemetry::record(deliver(&handlers, records)).await;
    assert_eq!(failed, Vec::<String>::new());
    let mut to_ingest: Vec<DomainEvent> = [processed.clone(), deleted.clone()].into_iter().chain(many).collect();
    to_ingest.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(received(&sqs, &ingest).await, to_ingest, "each body is the event as the store wrote it");
    let mut to_audit = vec![deleted, created];
    to_audit.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(received(&sqs, &audit).await, to_audit, "no subscriber takes task.moved: it goes nowhere");
    let sqs_calls: Vec<String> = calls.all().into_iter().filter(|c| c.service == "SQS").map(|c| c.operation).collect();
    // SendMessageBatch is authorised as sqs:SendMessage, which the registry grants.
    assert_eq!(sqs_calls, ["SendMessageBatch", "SendMessageBatch", "SendMessageBatch"], "ingest: 10 + 4, audit: 2");
}

#[tokio::test]
async fn a_record_whose_forward_fails_is_reported_alone() {
    let store = testkit::fresh_store().await;
    let config = testkit::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let (ingest, gone) = (queue(&sqs, "ingest").await, queue(&sqs, "gone").await);
    sqs.delete_queue().queue_url(&gone).send().await.unwrap();
    let vars = queues_var(&[(&["file.processed"], &ingest), (&["file.deleted"], &gone)]);
    let handlers = handlers(&platform(&config, &store, vars));
    let org = OrgId::new();
    let (first, lost, last) = (event(EventKind::FileProcessed, org), event(EventKind::FileDeleted, org), event(EventKind::FileProcessed, org));
    // An event item that does not parse (no org): retrying cannot help, so it is dropped (with a
    // log line) rather than holding up the shard.
    let mut poison: serde_dynamo::Item = serde_dynamo::to_item(event(EventKind::FileProcessed, org)).unwrap();
    poison.remove("orgId");
    poison.insert("_type".into(), serde_dynamo::AttributeValue::S("event".into()));
    poison.insert("PK".into(), serde_dynamo::AttributeValue::S("EVENT#poison".into()));
    poison.insert("SK".into(), serde_dynamo::AttributeValue::S("EVENT".into()));

    let mut failed = deliver(&handlers, vec![insert_record(1, &first), insert_record(2, &lost), record(3, &poison), insert_record(4, &last)]).await;
    failed.sort();
    assert_eq!(failed, ["2"], "the event its queue did not take, alone");
    let mut delivered = vec![first, last];
    delivered.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(received(&sqs, &ingest).await, delivered, "the other events were forwarded");
}

#[tokio::test]
async fn malformed_event_queues_stop_the_function_at_init() {
    let store = testkit::fresh_store().await;
    let config = testkit::sdk_config().await;
    let vars = HashMap::from([(org_purge::EVENT_QUEUES_ENV.to_owned(), r#"[{"kinds": [], "queueUrl": "x"}]"#.to_owned())]);
    assert!(org_purge::handlers(&platform(&config, &store, vars)).is_err());
    // Unset: nothing to forward to, and the purge works as before.
    assert!(org_purge::handlers(&platform(&config, &store, HashMap::new())).is_ok());
}

/// A deleted org with an owner (its `deleting` item is what the sweep resumes).
async fn deleted_org(store: &Store) -> OrgId {
    let c = testkit::Caller::new("owner");
    let owner = Identity { user_id: c.sub.parse().unwrap(), email: Some(c.email.parse().unwrap()), email_verified: true, platform_admin: false };
    let scope = store.create_org(&owner, None, NewOrg { name: OrgName::parse("name", "Doomed").unwrap(), slug: None }).await.unwrap();
    store.delete_org(&scope).await.unwrap();
    scope.org_id()
}

async fn index_exists(client: &aws_sdk_s3vectors::Client, buckets: &VectorBuckets, org: OrgId) -> bool {
    let index = buckets.index_of(org);
    match client.get_index().vector_bucket_name(&index.bucket).index_name(&index.index).send().await {
        Ok(_) => true,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found_exception()) => false,
        Err(e) => panic!("{}", aws_sdk_s3vectors::error::DisplayErrorContext(e)),
    }
}

#[tokio::test]
async fn a_purge_deletes_the_orgs_vector_index_and_no_other() {
    use aws_sdk_s3vectors::types::{DataType, DistanceMetric};
    let store = testkit::fresh_store().await;
    let config = testkit::sdk_config().await;
    let s3vectors = aws_sdk_s3vectors::Client::new(&config);
    let buckets = VectorBuckets { prefix: format!("{}-vectors", store.table_name()), count: 2 };
    for name in buckets.bucket_names() {
        s3vectors.create_vector_bucket().vector_bucket_name(name).send().await.unwrap();
    }
    // One deleted org with an index, one without (never chatted, or an earlier pass deleted
    // it), and a survivor with an index.
    let (indexed, bare, survivor) = (deleted_org(&store).await, deleted_org(&store).await, OrgId::new());
    for org in [indexed, survivor] {
        let index = buckets.index_of(org);
        s3vectors
            .create_index()
            .vector_bucket_name(&index.bucket)
            .index_name(&index.index)
            .data_type(DataType::Float32)
            .dimension(4)
            .distance_metric(DistanceMetric::Cosine)
            .send()
            .await
            .unwrap();
    }
    let vars = HashMap::from([
        (store::vectors::VECTOR_BUCKET_PREFIX_ENV.to_owned(), buckets.prefix.clone()),
        (store::vectors::VECTOR_BUCKETS_ENV.to_owned(), buckets.count.to_string()),
    ]);
    let app = org_purge::AppState::from_platform(&platform(&config, &store, vars)).unwrap();
    let sweep: api::ScheduledEvent = serde_json::from_value(json!({
        "version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "tenantry.scheduler", "account": "000000000000",
        "time": "2026-11-27T10:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"schedule": org_purge::RESUME_SCHEDULE, "function": "org-purge"},
    }))
    .unwrap();

    let (swept, calls) = telemetry::record(org_purge::on_schedule(&app, sweep)).await;
    swept.unwrap();
    assert!(!index_exists(&s3vectors, &buckets, indexed).await, "the deleted org's index is gone");
    assert!(index_exists(&s3vectors, &buckets, survivor).await, "the other org's stays");
    assert!(!index_exists(&s3vectors, &buckets, bare).await);
    assert!(store.awaiting_purge().await.unwrap().is_empty(), "both purges finished, the one without an index too");
    let ops: Vec<String> = calls.all().into_iter().filter(|c| c.service.eq_ignore_ascii_case("S3Vectors")).map(|c| c.operation).collect();
    // s3vectors:DeleteIndex is what the registry grants.
    assert_eq!(ops, ["DeleteIndex", "DeleteIndex"], "one per org; a missing index counts as deleted");
}
