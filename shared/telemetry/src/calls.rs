//! Counting AWS calls and their round trips, per request, with an SDK interceptor (not by
//! reading the code). Work runs inside [`record`]; every SDK call it makes, to any service
//! whose client carries [`CallCounter`], is noted with its start and end. Calls that overlap
//! in time are one round trip of latency.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// One SDK call.
#[derive(Debug, Clone)]
pub struct Call {
    pub service: String,
    pub operation: String,
    pub start: Instant,
    pub end: Instant,
    /// The capacity the service reported for the call (DynamoDB's `ConsumedCapacity`, noted
    /// by the store's interceptor), zero when it reported none.
    pub consumed: Consumed,
    /// The payer attributed when the call ended ([`attribute`]); `None` before any was.
    pub payer: Option<String>,
}

/// Read and write request units one call consumed, as the service reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Consumed {
    pub read: f64,
    pub write: f64,
}

impl Storable for Consumed {
    type Storer = StoreReplace<Self>;
}

/// The calls of one piece of work (a request, say). Recordings nest: a call made inside
/// an inner [`record`] is noted by the outer ones too.
#[derive(Debug, Clone, Default)]
pub struct Calls {
    own: Arc<Mutex<Vec<Call>>>,
    payers: Arc<Mutex<Vec<String>>>,
    outer: Option<Box<Calls>>,
}

impl Calls {
    pub fn all(&self) -> Vec<Call> {
        self.own.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The payers attributed during the work, in order, each once.
    pub fn payers(&self) -> Vec<String> {
        self.payers.lock().map(|p| p.clone()).unwrap_or_default()
    }

    fn current_payer(&self) -> Option<String> {
        self.payers.lock().ok().and_then(|p| p.last().cloned())
    }

    fn attribute(&self, payer: &str) {
        if let Ok(mut p) = self.payers.lock() {
            p.retain(|x| x != payer);
            p.push(payer.to_owned());
        }
        if let Some(outer) = &self.outer {
            outer.attribute(payer);
        }
    }

    fn push(&self, call: Call) {
        if let Ok(mut c) = self.own.lock() {
            c.push(call.clone());
        }
        if let Some(outer) = &self.outer {
            outer.push(call);
        }
    }

    /// Calls to one service (by its SDK service name, e.g. `DynamoDB`, `SESv2`, `S3`).
    pub fn count(&self, service: &str) -> usize {
        self.all().iter().filter(|c| c.service.eq_ignore_ascii_case(service)).count()
    }

    /// Round trips of latency to `service`: calls whose intervals overlap count once.
    pub fn rounds(&self, service: &str) -> usize {
        let mut calls: Vec<Call> = self.all().into_iter().filter(|c| c.service.eq_ignore_ascii_case(service)).collect();
        calls.sort_by_key(|c| c.start);
        let mut rounds = 0;
        let mut current_end: Option<Instant> = None;
        for c in calls {
            match current_end {
                Some(end) if c.start < end => current_end = Some(end.max(c.end)),
                _ => {
                    rounds += 1;
                    current_end = Some(c.end);
                }
            }
        }
        rounds
    }
}

tokio::task_local! {
    static CURRENT: Calls;
}

/// Runs `work`, recording the SDK calls it makes.
pub async fn record<F: Future>(work: F) -> (F::Output, Calls) {
    let outer = CURRENT.try_with(|c| c.clone()).ok().map(Box::new);
    let calls = Calls { own: Arc::default(), payers: Arc::default(), outer };
    let out = CURRENT.scope(calls.clone(), work).await;
    (out, calls)
}

/// The service of a [`note`]: units a call's answer reported that no interceptor reads.
pub(crate) const NOTED: &str = "noted";

/// Notes `n` of a ledger unit (one of [`crate::unit::ALL`]) that the current work used, as
/// the service's answer reported it (Bedrock's embedding tokens, in the answer's body): it is
/// counted like a call's units, for the payer of the moment. Outside [`record`] it does
/// nothing.
pub fn note(unit: &'static str, n: f64) {
    let _ = CURRENT.try_with(|calls| {
        let now = Instant::now();
        let payer = calls.current_payer();
        calls.push(Call { service: NOTED.into(), operation: unit.into(), start: now, end: now, consumed: Consumed { read: n, write: 0.0 }, payer });
    });
}

/// Spawns `work` inside the current recording, if any: the calls it makes (and the payers it
/// attributes) are the current work's, as if it ran inline. For work that outlives its
/// handler's return, such as the producer of a streamed answer (whose meter waits for the
/// answer's end).
pub fn spawn<F>(work: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match CURRENT.try_with(Calls::clone) {
        Ok(calls) => tokio::spawn(CURRENT.scope(calls, work)),
        Err(_) => tokio::spawn(work),
    }
}

/// Attributes the rest of the current work (and, at the end, the calls made before any
/// attribution) to `payer`: an org id once its authorization check passed, or a bucket such
/// as [`PLATFORM`]. Outside [`record`] it does nothing.
pub fn attribute(payer: &str) {
    let _ = CURRENT.try_with(|calls| calls.attribute(payer));
}

/// The payer of work done for the platform itself (operators, scheduled jobs).
pub const PLATFORM: &str = "platform";
/// The payer of work no org or operator can be charged for (sign-in, a stranger's 404).
pub const UNATTRIBUTED: &str = "unattributed";

#[derive(Debug, Clone, Copy)]
struct Started(Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

/// The interceptor: add it to every SDK client a function builds.
#[derive(Debug, Default, Clone, Copy)]
pub struct CallCounter;

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_execution(&self, _: &BeforeSerializationInterceptorContextRef<'_>, cfg: &mut ConfigBag) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started(Instant::now()));
        Ok(())
    }

    fn read_after_execution(&self, _: &FinalizerInterceptorContextRef<'_>, _: &RuntimeComponents, cfg: &mut ConfigBag) -> Result<(), BoxError> {
        let end = Instant::now();
        let start = cfg.load::<Started>().map(|s| s.0).unwrap_or(end);
        let (service, operation) = cfg.load::<Metadata>().map(|m| (m.service().to_owned(), m.name().to_owned())).unwrap_or_default();
        let consumed = cfg.load::<Consumed>().copied().unwrap_or_default();
        let _ = CURRENT.try_with(|calls| {
            let payer = calls.current_payer();
            calls.push(Call { service, operation, start, end, consumed, payer });
        });
        Ok(())
    }
}

/// Notes a call as the interceptor would (tests of the usage sums).
#[cfg(test)]
pub(crate) fn push_for_test(service: &str, operation: &str, consumed: Consumed) {
    let now = Instant::now();
    let _ = CURRENT.try_with(|calls| {
        let payer = calls.current_payer();
        calls.push(Call { service: service.into(), operation: operation.into(), start: now, end: now, consumed, payer });
    });
}
