//! The exports function: an org's data (its owners ask) or a user's own data (any user) as
//! one zip in the private exports bucket, written asynchronously and resumably; and the
//! erasure of a user's account.
//!
//! - Routes: start an org's export (`POST /orgs/{orgId}/exports`, owners: 202 with the job),
//!   list and read them (a complete one with a presigned download valid 5 minutes); start and
//!   read the caller's own export (`POST`/`GET /me/export`); erase the caller's account
//!   (`DELETE /me`, see `erase`).
//! - Queue `work`: a message `{kind, orgId | userId, exportId}` runs one pass of the job (see
//!   `worker`): until its time slice is spent, then it checkpoints and sends itself the same
//!   message again.

mod erase;
mod routes;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use api::{Handlers, Platform, RecordFailures};
use aws_lambda_events::sqs::SqsEvent;
use store::Store;

pub use erase::{Erasure, erase_user};
pub use routes::{ExportView, routes};
pub use worker::{Checkpoint, PART_SIZE, PassOutcome, run_pass};

/// The queue the jobs' messages go through.
pub const WORK_QUEUE: &str = "work";
/// Environment variable: the queue's URL (`QUEUE_URL_<ID>`, as the stack names it).
pub const WORK_QUEUE_ENV: &str = "QUEUE_URL_WORK";
/// Environment variable: the exports bucket.
pub const EXPORT_BUCKET_ENV: &str = "EXPORT_BUCKET";
/// Environment variable: the upload bucket, whose files org exports copy (and erasure
/// deletes the user's uploads from).
pub const UPLOAD_BUCKET_ENV: &str = "UPLOAD_BUCKET";
/// Environment variable: the Cognito user pool whose users erasure deletes.
pub const USER_POOL_ENV: &str = "USER_POOL_ID";
/// Environment variable: seconds one pass works before it checkpoints and hands over to the
/// next (default 600 of the function's 900 s; tests shorten it).
pub const SLICE_SECONDS_ENV: &str = "EXPORT_SLICE_SECONDS";
pub const DEFAULT_SLICE: Duration = Duration::from_secs(600);
/// How long a download link is valid.
pub const DOWNLOAD_VALID: Duration = Duration::from_secs(300);

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
}

/// What every handler shares: built once at init.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
    pub export_bucket: Arc<str>,
    pub upload_bucket: Option<Arc<str>>,
    /// The work queue (unset: exports cannot start; the local runner's tests of other
    /// functions build every function without queues).
    pub queue_url: Option<Arc<str>>,
    pub user_pool_id: Option<Arc<str>>,
    /// How long one pass works.
    pub slice: Duration,
}

impl api::RouteState for AppState {
    fn rate_store(&self) -> Option<&Store> {
        Some(&self.store)
    }
}

impl AppState {
    pub fn from_platform(platform: &Platform) -> Result<AppState, ConfigError> {
        let aws = &platform.aws;
        let export_bucket = platform.var(EXPORT_BUCKET_ENV).ok_or(ConfigError::Missing(EXPORT_BUCKET_ENV))?;
        let queue_url = platform.var(WORK_QUEUE_ENV).map(Arc::from);
        if queue_url.is_none() {
            tracing::warn!("{WORK_QUEUE_ENV} is not set: exports cannot start");
        }
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(aws).force_path_style(aws.endpoint_url().is_some()).interceptor(telemetry::CallCounter).build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(aws).interceptor(telemetry::CallCounter).build());
        let cognito = aws_sdk_cognitoidentityprovider::Client::from_conf(
            aws_sdk_cognitoidentityprovider::config::Builder::from(aws).interceptor(telemetry::CallCounter).build(),
        );
        let slice = platform.var(SLICE_SECONDS_ENV).and_then(|s| s.parse().ok()).map(Duration::from_secs).unwrap_or(DEFAULT_SLICE);
        let upload_bucket = platform.var(UPLOAD_BUCKET_ENV).map(Arc::from);
        if upload_bucket.is_none() {
            tracing::warn!("{UPLOAD_BUCKET_ENV} is not set: exports hold no file contents, erasure leaves uploads alone");
        }
        let user_pool_id = platform.var(USER_POOL_ENV).map(Arc::from);
        Ok(AppState { store: platform.store.clone(), s3, sqs, cognito, export_bucket: export_bucket.into(), upload_bucket, queue_url, user_pool_id, slice })
    }

    /// Sends the job's message to the work queue.
    pub async fn enqueue(&self, target: &store::ExportTarget) -> Result<(), domain::DomainError> {
        let body = serde_json::to_string(target).map_err(|_| domain::DomainError::Unavailable)?;
        let Some(queue_url) = &self.queue_url else {
            tracing::error!("{WORK_QUEUE_ENV} is not set: cannot enqueue an export");
            return Err(domain::DomainError::Unavailable);
        };
        self.sqs.send_message().queue_url(&**queue_url).message_body(body).send().await.map_err(|e| {
            tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not enqueue an export");
            domain::DomainError::Unavailable
        })?;
        Ok(())
    }
}

/// The work queue's batch: each message one pass of its job; a message whose pass failed is
/// reported (retried after the visibility timeout, then the dead-letter queue).
pub async fn on_queue(app: &AppState, event: SqsEvent) -> RecordFailures {
    let mut failed = Vec::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let target: store::ExportTarget = match message.body.as_deref().map(serde_json::from_str) {
            Some(Ok(t)) => t,
            _ => {
                // Retrying cannot make it parse.
                tracing::error!(message_id = %id, "an export message that does not parse: dropped");
                continue;
            }
        };
        match run_pass(app, &target).await {
            Ok(outcome) => tracing::info!(export_id = %target.export_id, ?outcome, "export pass"),
            Err(e) => {
                tracing::error!(export_id = %target.export_id, error = %e, "export pass failed");
                failed.push(id);
            }
        }
    }
    failed
}

/// Every way this function is invoked.
pub fn handlers(platform: &Platform) -> Result<Handlers, ConfigError> {
    let app = AppState::from_platform(platform)?;
    let (router, _) = routes().with_state(app.clone());
    Ok(Handlers {
        http: Some(router),
        queue: Some(api::handler(move |event| {
            let app = app.clone();
            async move { on_queue(&app, event).await }
        })),
        ..Default::default()
    })
}
