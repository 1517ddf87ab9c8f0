//! Tenantry's single-table DynamoDB access.
//!
//! Entities are types; their keys are composed in `keys.rs` and nowhere else; keys inside an
//! organization's partition can only be built from a scope that an authorization check
//! produced (see `scope.rs`). Conditional writes and transactions map their failures to
//! [`domain::DomainError`]s; listings paginate with signed cursors.

pub mod audit;
mod authz;
pub mod chat;
mod comments;
mod counters;
mod entities;
mod erase;
mod events;
mod exports;
mod files;
mod import;
mod invites;
mod item;
mod keys;
mod ledger;
mod members;
mod metering;
mod notifications;
mod orgs;
mod page;
mod projects;
mod purge;
mod rate;
mod scope;
mod table;
mod tasks;
mod tx;
mod unassign;
mod usage;
mod users;
pub mod vectors;

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_dynamodb::Client;
use domain::{Clock, DomainError};

pub use audit::{AuditEntry, AuditFilter, AuditVerification, ChainBreak, Recorded};
pub use comments::Comment;
pub use entities::{Invite, InviteStatus, Member, Org, OrgStatus, SlugClaim, UsageCounter, UsageMonth, UserProfile};
pub use erase::{ERASED_TEXT, ERASED_USER, Erasure};
pub use events::{DomainEvent, EVENT_RETENTION_SECS, EventKind, PLATFORM_ACTOR, RequestMeta, USER_AGENT_CHARS, current_request, with_request};
pub use exports::{
    ExportJob, ExportKind, ExportObject, ExportPage, ExportRecord, ExportScope, ExportStatus, ExportTarget, LOCK_SECS, MAX_USER_EXPORT_ORGS, Section,
    SectionCursor,
};
pub use files::{
    Arrival, Attachment, DERIVED_PREFIX, FileFilter, NewFile, Outcome, PROCESSING_DEADLINE_SECS, SCAN_CLEAN, SCAN_THREATS, StoredFile, UPLOAD_PREFIX,
    org_object_prefixes, parse_upload_key, sequencer_order,
};
pub use import::{Idempotency, ImportOutcome, ImportRecord};
pub use invites::{Branding, InviteContext, InviteToken, NewInvite, RESENDS_PER_HOUR};
pub use ledger::{LedgerMonth, LedgerPeriod, PayerMonth};
pub use members::MemberChange;
pub use notifications::{DeferredMail, DueDigest, MailClaim, NewNotification, Notification, NotificationState, NotifyingOrg, Recipient};
pub use orgs::{MyOrg, NewOrg};
pub use page::{CursorKey, DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest};
pub use projects::{PROJECT_PURGE_TYPE, Project, ProjectPatch};
pub use purge::{ProjectPurgeScope, PurgeProgress, PurgeScope, PurgeTarget};
pub use rate::{Quota, RateGate};
pub use scope::{Access, AdminScope, OrgScope, PendingScope, ReadScope};
pub use table::{TABLE_JSON, TableDefinition};
pub use tasks::{FieldChange, OrgLabels, Placement, REBALANCE_AT, SYSTEM_ACTOR, Task, TaskAction, TaskDraft, TaskHistoryEntry, TaskPatch};
pub use unassign::RemovedMember;
pub use usage::{ChatUsage, ModelCost, Usage, UserCost};
pub use users::{ClaimsView, ProfileOutcome, SIGN_IN_EVENT_ORGS, SIGN_IN_EVENTS_PER_TX, SIGN_IN_EVENTS_WITH_LOGIN};
pub use vectors::{VectorBuckets, VectorIndex};

use item::{Entity, Item};
use keys::Key;

/// Environment variable naming the table.
pub const TABLE_NAME_ENV: &str = "TABLE_NAME";
/// Environment variable holding the secret that signs pagination cursors (local use).
pub const CURSOR_SECRET_ENV: &str = "CURSOR_SECRET";
/// Environment variable naming the Secrets Manager secret that signs pagination cursors.
pub const CURSOR_SECRET_ARN_ENV: &str = "CURSOR_SECRET_ARN";

/// Environment variable switching the init-time connection warm-up (default on).
pub const WARM_UP_ENV: &str = "WARM_UP";

/// The table and the client that reaches it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: Arc<str>,
    cursor_key: CursorKey,
    clock: Clock,
    limits: domain::PlatformLimits,
}

/// Why the store could not be configured at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("cannot read the cursor secret: {0}")]
    Secret(String),
}

impl Store {
    pub fn new(client: Client, table: impl Into<Arc<str>>, cursor_key: CursorKey) -> Self {
        Store { client, table: table.into(), cursor_key, clock: Clock::system(), limits: domain::PlatformLimits::default() }
    }

    /// The same store under other platform limits (a deployment's, or a test's).
    pub fn with_limits(mut self, limits: domain::PlatformLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The same store telling time by `clock` (tests, the local runner's adjustable clock).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A secret for signing tokens of the kind `label` (unsubscribe links, say), derived from
    /// the cursor secret.
    pub fn derived_key(&self, label: &str) -> Vec<u8> {
        self.cursor_key.derive(label)
    }

    /// A new ULID whose time is this store's clock (ids that sort by when they were made).
    pub(crate) fn time_ulid(&self) -> String {
        ulid::Ulid::from_parts(u64::try_from(self.clock.epoch_millis()).unwrap_or(0), ulid::Ulid::new().random()).to_string()
    }

    /// The clock every write of this store is stamped with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Builds the store from the Lambda environment: `TABLE_NAME`, the cursor secret, and the
    /// SDK's own configuration (region, credentials, `AWS_ENDPOINT_URL` for a local endpoint).
    /// Throttling is retried with exponential backoff by the SDK's standard retry mode.
    ///
    /// The cursor secret is `CURSOR_SECRET` when set (local stack, tests), else the Secrets
    /// Manager secret named by `CURSOR_SECRET_ARN`, read once during init (on AWS; the value
    /// never sits in the environment). A function that paginates nothing may have neither:
    /// it gets a random per-process key.
    pub async fn from_env() -> Result<Store, ConfigError> {
        Store::from_config(&aws_config_from_env().await).await
    }

    /// [`Store::from_env`] on a configuration the process already loaded (one per process,
    /// shared by every client).
    pub async fn from_config(config: &aws_config::SdkConfig) -> Result<Store, ConfigError> {
        let table = std::env::var(TABLE_NAME_ENV).map_err(|_| ConfigError::Missing(TABLE_NAME_ENV))?;
        let key = match (std::env::var(CURSOR_SECRET_ENV), std::env::var(CURSOR_SECRET_ARN_ENV)) {
            (Ok(secret), _) => CursorKey::new(secret),
            (Err(_), Ok(arn)) => {
                let secrets = aws_sdk_secretsmanager::Client::from_conf(
                    aws_sdk_secretsmanager::config::Builder::from(config).interceptor(::telemetry::CallCounter).build(),
                );
                let out = secrets
                    .get_secret_value()
                    .secret_id(&arn)
                    .send()
                    .await
                    .map_err(|e| ConfigError::Secret(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string()))?;
                CursorKey::new(out.secret_string().ok_or(ConfigError::Secret("the secret has no string value".into()))?)
            }
            (Err(_), Err(_)) => {
                tracing::warn!("no cursor secret configured; cursors are valid in this process only");
                CursorKey::new(ulid::Ulid::new().to_string())
            }
        };
        let limits = domain::PlatformLimits::from_vars(|name| std::env::var(name).ok());
        let store = Store::new(dynamodb_client(config), table, key).with_limits(limits);
        if std::env::var(WARM_UP_ENV).map(|v| v != "false" && v != "0").unwrap_or(true) {
            store.warm_up().await;
        }
        Ok(store)
    }

    /// Opens the connection to DynamoDB (DNS, TCP, TLS) with one read of a key no item has,
    /// so that Lambda's boosted init CPU pays for the handshake instead of the first request.
    /// On by default; `WARM_UP=false` switches it off. A failure is logged, never fatal.
    pub async fn warm_up(&self) {
        let result = self.client.get_item().table_name(&*self.table).set_key(Some(keys::warm_up().to_map())).send().await;
        if let Err(e) = result {
            tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "warm-up read failed");
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// An item with every attribute, as the table holds it (a consistent read): the image a
    /// stream record of a change to it carries (the benchmark builds the records the stream
    /// consumers receive from such images).
    async fn raw_item(&self, key: &Key) -> Result<Option<Item>, DomainError> {
        let out = self.client.get_item().table_name(&*self.table).set_key(Some(key.to_map())).consistent_read(true).send().await.map_err(tx::unexpected)?;
        Ok(out.item)
    }

    async fn get<E: Entity>(&self, key: &Key) -> Result<Option<E>, DomainError> {
        let out = self.client.get_item().table_name(&*self.table).set_key(Some(key.to_map())).consistent_read(true).send().await.map_err(tx::unexpected)?;
        out.item.map(item::from_item).transpose()
    }

    async fn put_new(&self, item: Item, on_exists: DomainError) -> Result<(), DomainError> {
        self.hold_for_charge().await?;
        self.client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(|e| tx::conditional(e, on_exists))?;
        Ok(())
    }
}

/// The process's one AWS configuration from the Lambda environment (region, credentials,
/// `AWS_ENDPOINT_URL` for a local endpoint) with the standard retries below: every client of
/// the process is built from it, so all of them retry alike.
pub async fn aws_config_from_env() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).retry_config(retry_config()).load().await
}

/// A DynamoDB client whose calls are counted and metered (see the `telemetry` crate): every
/// call asks for its consumed capacity, which the counter sums per request and payer.
pub fn dynamodb_client(config: &aws_config::SdkConfig) -> Client {
    Client::from_conf(aws_sdk_dynamodb::config::Builder::from(config).interceptor(metering::CapacityMeter).interceptor(::telemetry::CallCounter).build())
}

/// Standard retry mode (exponential backoff with jitter, throttling errors included).
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(5).with_initial_backoff(Duration::from_millis(25))
}
