//! Local delivery of every event source the registry declares, through the handlers Lambda
//! would call, with the event types Lambda would send:
//!
//! - the table's DynamoDB stream, read from the local endpoint's stream API, filtered per
//!   consumer as its event source mapping filters, delivered in batches; a record the
//!   handler reports in `batchItemFailures` is retried (with the records after it, as
//!   Lambda checkpoints) up to the mapping's retry limit, then set aside as a dead letter;
//! - SQS queues (each with a dead-letter queue and a redrive policy on the local endpoint):
//!   messages the handler reports failed stay on the queue and come back after their
//!   visibility timeout; the endpoint moves them to the dead-letter queue after
//!   `maxReceiveCount` receives;
//! - S3 object events of the upload bucket: the bucket notifies a queue on the local
//!   endpoint (as S3 can), whose messages are S3 events, delivered to the function;
//! - domain events, to the functions that subscribe to them: the fan-out function (one of the
//!   stream's two readers) sends each to its subscribers' queues (`EVENT_QUEUES`), delivered
//!   as declared queues are;
//! - schedules, fired at their time by the runner's clock, which `/local/clock` moves ahead.
//!
//! [`LocalEvents::pump`] makes one pass over every source; `make dev` runs it in a loop,
//! tests call it directly.

pub mod filter;
mod queue;
pub mod schedule;
mod stream;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::{Handlers, Platform};
use aws_config::SdkConfig;
use serde::Serialize;
use time::OffsetDateTime;

pub use queue::{EVENT_QUEUES_VAR, queue_env, queue_name};
pub use stream::stream_record;

/// One delivery to a handler, as `/local/events` lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub at: String,
    pub function: String,
    /// `stream`, `queue:<id>` (a domain events' queue too), `s3`, `schedule:<id>`.
    pub source: String,
    pub records: usize,
    pub failed: usize,
    /// Records given up on (retries exhausted).
    pub dead_lettered: usize,
    /// The delivery's billed duration (the handler's run and its cost ledger write, rounded up
    /// to the millisecond), as Lambda's `platform.report` would bill the invocation.
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The deliveries so far (the most recent 500).
#[derive(Clone, Default)]
pub struct EventLog(Arc<Mutex<VecDeque<Delivery>>>);

impl EventLog {
    fn push(&self, d: Delivery) {
        tracing::info!(function = %d.function, source = %d.source, records = d.records, failed = d.failed, dead_lettered = d.dead_lettered, error = ?d.error, "event delivered");
        if let Ok(mut log) = self.0.lock() {
            if log.len() >= 500 {
                log.pop_front();
            }
            log.push_back(d);
        }
    }

    pub fn all(&self) -> Vec<Delivery> {
        self.0.lock().map(|l| l.iter().cloned().collect()).unwrap_or_default()
    }
}

/// A function that events are delivered to: its handlers, and the store its deliveries are
/// metered into (as Lambda's runtime layer meters them, `api::metering`).
struct Target {
    handlers: Handlers,
    store: store::Store,
}

impl Target {
    /// Runs one delivery of `event` (its records' JSON, for the payers) metered: its output
    /// and billed milliseconds.
    async fn metered<F: std::future::Future>(&self, kind: api::EventKind, event: &serde_json::Value, work: F) -> (F::Output, u64) {
        api::metering::metered_event(&self.store, kind, event, work).await
    }
}

/// Every event source of the given functions, wired to their handlers.
pub struct LocalEvents {
    stream: Option<stream::StreamDelivery>,
    queues: Vec<queue::QueueDelivery>,
    schedules: Mutex<Vec<ScheduleState>>,
    targets: HashMap<&'static str, Target>,
    platform: Platform,
    log: EventLog,
}

struct ScheduleState {
    function: &'static str,
    id: &'static str,
    expression: schedule::Expression,
    start: OffsetDateTime,
    next: Option<OffsetDateTime>,
}

pub type Error = Box<dyn std::error::Error + Send + Sync>;

impl LocalEvents {
    /// Wires the event sources of `functions`: reads the table's stream (when the table has
    /// one and a function consumes it), subscribes S3 consumers to `upload_bucket`, and
    /// starts every schedule's clock now. The queues must exist already ([`queue_env`]
    /// creates them, the domain events' included, before the handlers that send to them are
    /// built).
    pub async fn setup(config: &SdkConfig, platform: &Platform, functions: Vec<registry::Function>, upload_bucket: &str) -> Result<LocalEvents, Error> {
        let now = platform.clock().now();
        let mut targets = HashMap::new();
        let mut schedules = Vec::new();
        let mut consumers = Vec::new();
        let mut queues = Vec::new();
        for f in functions {
            let s = &f.sources;
            let invoked = s.dynamodb_stream.is_some() || s.s3.is_some() || !s.schedules.is_empty() || !s.queues.is_empty() || s.domain_events.is_some();
            if !invoked {
                continue;
            }
            let build = f.handlers.ok_or_else(|| format!("{} has event sources but builds no handlers", f.name))?;
            let handlers = build(platform).map_err(|e| format!("{}: {e}", f.name))?;
            if let Some(src) = &s.dynamodb_stream {
                for p in &src.filters {
                    filter::validate(p).map_err(|e| format!("{}: stream filter: {e}", f.name))?;
                }
                consumers.push(stream::Consumer::new(f.name, src));
            }
            for sch in &s.schedules {
                let expression = schedule::Expression::parse(sch.expression).map_err(|e| format!("{}: schedule {}: {e}", f.name, sch.id))?;
                let next = expression.next_after(now, now);
                schedules.push(ScheduleState { function: f.name, id: sch.id, expression, start: now, next });
            }
            for q in &s.queues {
                queues.push(queue::QueueDelivery::existing(config, f.name, q, platform).await?);
            }
            if let Some(sub) = &s.domain_events {
                queues.push(queue::QueueDelivery::existing(config, f.name, &sub.queue, platform).await?);
            }
            if let Some(src) = &s.s3 {
                queues.push(queue::QueueDelivery::for_uploads(config, f.name, src, upload_bucket, platform).await?);
            }
            targets.insert(f.name, Target { handlers, store: platform.store.clone() });
        }
        let stream = if consumers.is_empty() { None } else { stream::StreamDelivery::open(config, platform.store.table_name(), consumers).await? };
        Ok(LocalEvents { stream, queues, schedules: Mutex::new(schedules), targets, platform: platform.clone(), log: EventLog::default() })
    }

    /// The clock schedules fire by.
    pub fn clock(&self) -> &domain::Clock {
        self.platform.clock()
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// One pass over every source: new stream records, queue messages and due schedules.
    /// Returns the number of deliveries made.
    pub async fn pump(&self) -> usize {
        let mut n = 0;
        if let Some(stream) = &self.stream {
            n += stream.pump(&self.targets, &self.log).await;
        }
        for q in &self.queues {
            n += q.pump(&self.targets, &self.log).await;
        }
        n + self.fire_due().await.len()
    }

    /// Pumps until a pass delivers nothing (at most `passes` passes): what a test calls to
    /// let every consequence of a change happen.
    pub async fn settle(&self, passes: usize) -> usize {
        let mut total = 0;
        for _ in 0..passes {
            let n = self.pump().await;
            total += n;
            if n == 0 {
                break;
            }
        }
        total
    }

    /// Moves the clock ahead and fires what became due; answers those deliveries.
    pub async fn advance(&self, by: Duration) -> Result<Vec<Delivery>, &'static str> {
        if !self.platform.clock().advance(by) {
            return Err("the clock of this runner cannot be moved");
        }
        Ok(self.fire_due().await)
    }

    /// The schedules and when each fires next.
    pub fn schedules(&self) -> Vec<serde_json::Value> {
        let schedules = self.schedules.lock().map(|s| s.iter().map(|s| (s.function, s.id, s.next)).collect::<Vec<_>>()).unwrap_or_default();
        schedules.into_iter().map(|(function, id, next)| serde_json::json!({"function": function, "schedule": id, "next": next.map(domain::rfc3339)})).collect()
    }

    /// Fires every schedule whose time has come, once each: a runner that slept (or a clock
    /// moved ahead by hours) fires a missed schedule once, with the latest time it was due.
    async fn fire_due(&self) -> Vec<Delivery> {
        let now = self.platform.clock().now();
        let due: Vec<(&'static str, &'static str, OffsetDateTime)> = {
            let Ok(mut schedules) = self.schedules.lock() else { return Vec::new() };
            let mut due = Vec::new();
            for s in schedules.iter_mut() {
                let Some(mut at) = s.next.filter(|t| *t <= now) else { continue };
                while let Some(following) = s.expression.next_after(s.start, at).filter(|t| *t <= now) {
                    at = following;
                }
                s.next = s.expression.next_after(s.start, now);
                due.push((s.function, s.id, at));
            }
            due
        };
        let mut fired = Vec::new();
        for (function, id, at) in due {
            let Some(target) = self.targets.get(function) else { continue };
            let Some(handler) = target.handlers.schedule.clone() else { continue };
            let event = scheduled_event(function, id, at);
            let (error, duration_ms) = match serde_json::from_value::<api::ScheduledEvent>(event.clone()) {
                Ok(typed) => {
                    let (result, ms) = target.metered(api::EventKind::Schedule, &event, handler(typed)).await;
                    (result.err(), ms)
                }
                Err(e) => (Some(format!("malformed scheduled event: {e}")), 0),
            };
            let delivery = Delivery {
                at: domain::rfc3339(now),
                function: function.into(),
                source: format!("schedule:{id}"),
                records: 1,
                failed: usize::from(error.is_some()),
                dead_lettered: 0,
                duration_ms,
                error,
            };
            self.log.push(delivery.clone());
            fired.push(delivery);
        }
        fired
    }

    /// Runs [`LocalEvents::pump`] every `every` until the process ends.
    pub fn spawn(self: &Arc<Self>, every: Duration) {
        let events = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                events.pump().await;
                tokio::time::sleep(every).await;
            }
        });
    }
}

/// The event EventBridge Scheduler sends (the infrastructure sets this input on every
/// schedule).
pub fn scheduled_event(function: &str, schedule: &str, at: OffsetDateTime) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": ulid::Ulid::new().to_string(),
        "detail-type": "Scheduled Event",
        "source": "tenantry.scheduler",
        "account": "000000000000",
        "time": domain::rfc3339(at),
        "region": testkit::endpoint::REGION,
        "resources": [format!("arn:aws:scheduler:{}:000000000000:schedule/default/{function}-{schedule}", testkit::endpoint::REGION)],
        "detail": {"schedule": schedule, "function": function},
    })
}
