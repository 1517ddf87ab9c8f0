//! The purge: deleting an org only marks it `deleting`, and deleting a project only leaves a
//! marker in its place (see `store::purge`); this function deletes their data,
//! asynchronously and resumably.
//!
//! It also unassigns the open tasks of members who leave (see `unassign`): the table's stream
//! serves two readers without throttling, and this function is the one that cleans up after
//! removals. For the same reason it is the domain events' fan-out (see `fan_out`): it forwards
//! the events other functions subscribe to into their queues.
//!
//! A deleted org's data outside the table goes first, while the org item still records that a
//! purge is owed (a pass that fails there is retried, and the hourly sweep finds the org): its
//! objects in the upload bucket, then its vector index (S3 Vectors), then its items.
//!
//! - Stream: the table's change records of org items that became (or stay) `deleting`, of
//!   deleted projects' markers, of removed memberships, and of the domain events someone
//!   subscribes to, selected by the event source mapping's filters. Each
//!   record's org or project is purged for at most one pass; a pass that runs out of time
//!   marks it again, which is a new record. A record that fails is reported in
//!   `batchItemFailures` and retried alone; so is an event some subscriber's queue did not take.
//! - Schedule `resume-purges`: everything still awaiting its purge gets a pass (a record lost
//!   to the dead-letter queue, say).
//! - `POST /admin/orgs/{orgId}/purge`: a platform operator runs a pass by hand.

mod fan_out;
mod unassign;

use std::time::{Duration, Instant};

use api::{ApiResult, Caller, Handlers, Params, Platform, RecordFailures, RouteTable, ScheduledEvent};
use aws_lambda_events::dynamodb::Event as StreamEvent;
use axum::Json;
use axum::extract::State;
use domain::{DomainError, OrgId};
use http::Method;
use serde::Serialize;
use store::{DomainEvent, PurgeProgress, PurgeTarget, Store, VectorBuckets};

pub use fan_out::{EVENT_QUEUES_ENV, EventQueue, FanOut, parse_queues};

/// How long one pass may run by default (the function's timeout is 300 s).
pub const DEFAULT_PASS: Duration = Duration::from_secs(240);
/// Environment variable: seconds one pass may run.
pub const PASS_SECONDS_ENV: &str = "PURGE_PASS_SECONDS";
/// How long a pass started by an operator's request may run: API Gateway gives up on a
/// request after 29 s.
pub const HTTP_PASS: Duration = Duration::from_secs(20);
/// The schedule that resumes waiting purges.
pub const RESUME_SCHEDULE: &str = "resume-purges";

/// The environment variable naming the upload bucket, whose objects of a deleted org go too.
pub const UPLOAD_BUCKET_ENV: &str = "UPLOAD_BUCKET";

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    EventQueues(String),
}

/// What every handler shares: built once at init.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// How long one pass may run.
    pub pass: Duration,
    /// The upload bucket and a client for it.
    pub uploads: Option<(aws_sdk_s3::Client, String)>,
    /// The vector buckets that hold the orgs' indexes, and a client for them.
    pub vectors: Option<(aws_sdk_s3vectors::Client, VectorBuckets)>,
    /// The subscribers' queues of the domain events this function forwards.
    pub fan_out: Option<FanOut>,
}

impl api::RouteState for AppState {
    fn rate_store(&self) -> Option<&Store> {
        Some(&self.store)
    }
}

impl AppState {
    /// From the platform's configuration; a malformed `EVENT_QUEUES` stops the function at init
    /// (better than forwarding to some subscribers and silently not to others).
    pub fn from_platform(platform: &Platform) -> Result<Self, ConfigError> {
        let pass = platform.var(PASS_SECONDS_ENV).and_then(|s| s.parse().ok()).map(Duration::from_secs).unwrap_or(DEFAULT_PASS);
        let aws = &platform.aws;
        let uploads = platform.var(UPLOAD_BUCKET_ENV).map(|bucket| {
            let config = aws_sdk_s3::config::Builder::from(aws).force_path_style(aws.endpoint_url().is_some()).interceptor(telemetry::CallCounter);
            (aws_sdk_s3::Client::from_conf(config.build()), bucket)
        });
        if uploads.is_none() {
            tracing::warn!("{UPLOAD_BUCKET_ENV} is not set: purges leave the upload bucket alone");
        }
        let vectors = VectorBuckets::from_vars(|name| platform.var(name)).map(|buckets| {
            let config = aws_sdk_s3vectors::config::Builder::from(aws).interceptor(telemetry::CallCounter);
            (aws_sdk_s3vectors::Client::from_conf(config.build()), buckets)
        });
        if vectors.is_none() {
            tracing::warn!("{} is not set: purges leave the vector indexes alone", store::vectors::VECTOR_BUCKET_PREFIX_ENV);
        }
        let fan_out = match platform.var(EVENT_QUEUES_ENV) {
            Some(text) => {
                let queues = parse_queues(&text).map_err(ConfigError::EventQueues)?;
                let sqs = aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(aws).interceptor(telemetry::CallCounter).build());
                Some(FanOut::new(sqs, queues))
            }
            None => {
                tracing::warn!("{EVENT_QUEUES_ENV} is not set: domain events are not forwarded");
                None
            }
        };
        Ok(AppState { store: platform.store.clone(), pass, uploads, vectors, fan_out })
    }

    /// Deletes `org`'s vector index (S3 Vectors), which holds what the org's documents and
    /// tasks were embedded into. An index that does not exist (never made, or deleted by an
    /// earlier pass) counts as deleted, so this is safe to repeat; `Ok(true)` when one went.
    async fn delete_vector_index(&self, org: OrgId) -> Result<bool, DomainError> {
        let Some((client, buckets)) = &self.vectors else { return Ok(false) };
        let index = buckets.index_of(org);
        match client.delete_index().vector_bucket_name(&index.bucket).index_name(&index.index).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(aws_sdk_s3vectors::operation::delete_index::DeleteIndexError::is_not_found_exception) => Ok(false),
            Err(e) => {
                let error = aws_sdk_s3vectors::error::DisplayErrorContext(&e).to_string();
                tracing::error!(org_id = %org, bucket = %index.bucket, index = %index.index, error, "deleting the org's vector index failed");
                Err(DomainError::Unavailable)
            }
        }
    }

    /// What a deleted org has outside the table: its objects, until `deadline` (`Ok(None)` when
    /// time ran out first), then its vector index. Safe to repeat.
    async fn delete_outside_table(&self, org: OrgId, deadline: Instant) -> Result<Option<usize>, DomainError> {
        let Some(objects) = self.delete_objects(org, deadline).await? else { return Ok(None) };
        if self.delete_vector_index(org).await? {
            tracing::info!(org_id = %org, "the org's vector index deleted");
        }
        Ok(Some(objects))
    }

    /// Forwards the domain events of a stream batch to their subscribers' queues; answers the
    /// records to retry. Without `EVENT_QUEUES` there is nowhere to forward to.
    async fn forward(&self, events: &[(String, DomainEvent)]) -> Vec<String> {
        match &self.fan_out {
            Some(fan_out) if !events.is_empty() => fan_out.forward(events).await,
            Some(_) => Vec::new(),
            None => {
                if !events.is_empty() {
                    tracing::warn!(events = events.len(), "domain events received with no {EVENT_QUEUES_ENV}; not forwarded");
                }
                Vec::new()
            }
        }
    }

    /// Deletes every object of `org` in the upload bucket (its uploads and what was derived
    /// from them), a page of up to 1,000 keys per call, until `deadline`: `Ok(None)` when time
    /// ran out first. Safe to repeat.
    async fn delete_objects(&self, org: OrgId, deadline: Instant) -> Result<Option<usize>, DomainError> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let Some((s3, bucket)) = &self.uploads else { return Ok(Some(0)) };
        let failed = |e: String| {
            tracing::error!(org_id = %org, error = e, "deleting the org's objects failed");
            DomainError::Unavailable
        };
        let mut deleted = 0;
        for prefix in store::org_object_prefixes(org) {
            loop {
                let listed = s3
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(&prefix)
                    .send()
                    .await
                    .map_err(|e| failed(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
                let keys: Vec<ObjectIdentifier> =
                    listed.contents().iter().filter_map(|o| ObjectIdentifier::builder().set_key(o.key().map(str::to_owned)).build().ok()).collect();
                if keys.is_empty() {
                    break;
                }
                // Every pass deletes a page at least, so that every pass progresses.
                if deleted > 0 && Instant::now() >= deadline {
                    return Ok(None);
                }
                deleted += keys.len();
                let delete = Delete::builder().set_objects(Some(keys)).quiet(true).build().map_err(|e| failed(e.to_string()))?;
                let out = s3
                    .delete_objects()
                    .bucket(bucket)
                    .delete(delete)
                    .send()
                    .await
                    .map_err(|e| failed(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
                // Keys S3 could not delete would be listed again, forever: fail the pass instead.
                if let Some(e) = out.errors().first() {
                    return Err(failed(format!("{} of the keys were not deleted, {:?}: {:?}", out.errors().len(), e.key(), e.message())));
                }
            }
        }
        Ok(Some(deleted))
    }

    /// One pass over `target`, until `deadline`: the deadline of the whole invocation, so
    /// that a batch or a sweep of several stays inside the function's timeout.
    async fn pass(&self, target: PurgeTarget, deadline: Instant) -> Result<Option<PurgeProgress>, DomainError> {
        match target {
            PurgeTarget::Org(org) => match self.store.purge_scope(org).await? {
                Some(scope) => {
                    // What lives outside the table first, while the org item records the purge.
                    match self.delete_outside_table(scope.org_id(), deadline).await? {
                        None => self.store.continue_purge(&scope).await.map(Some),
                        Some(objects) => {
                            if objects > 0 {
                                tracing::info!(org_id = %org, objects, "the org's objects deleted");
                            }
                            self.store.purge(&scope, deadline).await.map(Some)
                        }
                    }
                }
                None => Ok(None),
            },
            PurgeTarget::Project(org, project) => match self.store.project_purge_scope(org, project).await? {
                Some(scope) => self.store.purge_project(&scope, deadline).await.map(Some),
                None => Ok(None),
            },
        }
    }
}

/// The answer of the operators' route.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PurgeStatus {
    pub progress: PurgeProgress,
}

pub fn routes() -> RouteTable<AppState> {
    RouteTable::default()
        .tag("platform", "Platform operators (Cognito group platform-admin): every organization, suspension, plans, purges")
        .route(Method::POST, "/admin/orgs/{orgId}/purge", "adminResumePurge", "Run a purge pass over a deleted organization (platform operators)", resume)
        .returns::<PurgeStatus>(200)
}

async fn resume(State(app): State<AppState>, Caller(who): Caller, p: Params) -> ApiResult<Json<PurgeStatus>> {
    let org_id: OrgId = p.get("orgId")?;
    let scope = app.store.admin_scope(&who, org_id).await?;
    let scope = app.store.admin_purge_scope(&scope)?;
    let deadline = Instant::now() + app.pass.min(HTTP_PASS);
    let progress = match app.delete_outside_table(scope.org_id(), deadline).await? {
        None => app.store.continue_purge(&scope).await?,
        Some(_) => app.store.purge(&scope, deadline).await?,
    };
    Ok(Json(PurgeStatus { progress }))
}

/// What a stream record asks to purge: an org (its `id`) or a deleted project (the filter
/// lets only those through; anything else is not ours to purge).
pub use unassign::member_of;

pub fn target_of(record: &aws_lambda_events::dynamodb::EventRecord) -> Option<PurgeTarget> {
    let image: serde_json::Value = serde_dynamo::from_item(record.change.new_image.clone()).ok()?;
    let field = |name: &str| image.get(name).and_then(|v| v.as_str());
    match field("_type")? {
        "org" => Some(PurgeTarget::Org(field("id")?.parse().ok()?)),
        store::PROJECT_PURGE_TYPE => Some(PurgeTarget::Project(field("orgId")?.parse().ok()?, field("projectId")?.parse().ok()?)),
        _ => None,
    }
}

/// Forwards the batch's domain events to their subscribers first (quick, and not held up by a
/// long purge), then unassigns the tasks of every ended membership, and purges the org of
/// every other record (each org once per batch), within one deadline for the whole
/// invocation; reports the records whose forward or pass failed, an event item that does not
/// parse, and the records it had no time left for (Lambda retries them). The first org always
/// gets its pass, so every invocation progresses.
pub async fn on_stream(app: &AppState, event: StreamEvent) -> RecordFailures {
    let deadline = Instant::now() + app.pass;
    let mut seen = std::collections::HashSet::new();
    let mut failed = Vec::new();
    let mut events = Vec::new();
    let mut others = Vec::new();
    for record in &event.records {
        if record.event_name != "INSERT" {
            others.push(record);
            continue;
        }
        match DomainEvent::from_image(&record.change.new_image) {
            Ok(Some(e)) => events.push((record.event_id.clone(), e)),
            Ok(None) => others.push(record),
            // Retrying cannot make it parse, and a failed record holds up the shard with the
            // purges and unassignments behind it: dropped, with the log line.
            Err(e) => tracing::error!(event_id = %record.event_id, error = e, "a domain event that does not parse: not forwarded, dropped"),
        }
    }
    failed.extend(app.forward(&events).await);
    for record in others {
        if let Some((org, user)) = member_of(record) {
            match unassign::unassign(&app.store, org, &user).await {
                Ok(n) => tracing::info!(org_id = %org, unassigned = n, "ended membership: open tasks unassigned"),
                Err(e) => {
                    tracing::error!(org_id = %org, error = %e, "could not unassign an ended membership's tasks");
                    failed.push(record.event_id.clone());
                }
            }
            continue;
        }
        let Some(target) = target_of(record) else {
            tracing::warn!(event_id = %record.event_id, "stream record with nothing to purge; skipped");
            continue;
        };
        if !seen.insert(target) {
            continue;
        }
        if seen.len() > 1 && Instant::now() >= deadline {
            failed.push(record.event_id.clone());
            continue;
        }
        if let Err(e) = app.pass(target, deadline).await {
            tracing::error!(?target, error = %e, "purge pass failed");
            failed.push(record.event_id.clone());
        }
    }
    failed
}

/// Gives every org still awaiting its purge one pass.
pub async fn on_schedule(app: &AppState, event: ScheduledEvent) -> Result<(), String> {
    if event.detail.schedule != RESUME_SCHEDULE {
        return Err(format!("unknown schedule {}", event.detail.schedule));
    }
    let deadline = Instant::now() + app.pass;
    let targets = app.store.awaiting_purge().await.map_err(|e| e.to_string())?;
    let (mut errors, mut visited) = (0, 0);
    for target in &targets {
        // One deadline for the sweep: what it has no time for waits for the next one.
        if visited > 0 && Instant::now() >= deadline {
            break;
        }
        visited += 1;
        if let Err(e) = app.pass(*target, deadline).await {
            tracing::error!(?target, error = %e, "purge pass failed");
            errors += 1;
        }
    }
    tracing::info!(waiting = targets.len(), visited, errors, "purge sweep");
    if errors > 0 { Err(format!("{errors} of {visited} purge passes failed")) } else { Ok(()) }
}

/// Every way this function is invoked.
pub fn handlers(platform: &Platform) -> Result<Handlers, ConfigError> {
    let app = AppState::from_platform(platform)?;
    let (router, _) = routes().with_state(app.clone());
    let (stream_app, schedule_app) = (app.clone(), app);
    Ok(Handlers {
        http: Some(router),
        stream: Some(api::handler(move |event| {
            let app = stream_app.clone();
            async move { on_stream(&app, event).await }
        })),
        schedule: Some(api::handler(move |event| {
            let app = schedule_app.clone();
            async move { on_schedule(&app, event).await }
        })),
        ..Default::default()
    })
}
