//! The end of every invocation: its usage (counted by the telemetry interceptor while it
//! ran) summed into the cost ledger, in one round trip of concurrent `UpdateItem … ADD`s
//! (two per payer: the day and the month). On Lambda this runs as a runtime layer after the
//! answer was posted to the runtime API and before the next poll, so the client never waits
//! for it; it is still billed time. Each write carries its own cost, the cost of metering, to
//! each payer it writes: the write units and the billed time per payer that the process's
//! previous ledger write measured (DynamoDB's reported capacity, the write's duration), since a
//! write cannot know its own before it is made (the first write of a process counts 3 write
//! units and no time). Carrying the measured cost into the next write instead would make every
//! write reach every payer the process ever served. A failed write never fails anything: it
//! is logged, and its usage retried with the next invocation's.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::lambda_runtime::LambdaInvocation;
use store::Store;
use telemetry::{Calls, Invocation, Units, unit};

/// The memory a function is configured with (Lambda's variable), for Lambda's GB-seconds.
pub const MEMORY_ENV: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
/// The memory assumed where Lambda sets none (the local runner): every function fits 128 MB.
pub const DEFAULT_MEMORY_MB: u64 = 128;
/// Usage kept for a later write at most this many payers (a ledger that stays unreachable
/// must not grow the process without bound).
const MAX_CARRIED_PAYERS: usize = 1_000;

static STORE: OnceLock<Store> = OnceLock::new();
/// Usage not yet in the ledger: a failed write's.
static CARRY: Mutex<BTreeMap<String, Units>> = Mutex::new(BTreeMap::new());
/// What the previous ledger write cost each payer it wrote: write units and MB-ms.
static LAST_WRITE: Mutex<(f64, f64)> = Mutex::new((FIRST_WRITE_UNITS, 0.0));
/// The write units of one payer's first write: two `ADD`s to items under 1 KB, the month's
/// also written to its index entry (GSI1, for the operators' ranking).
const FIRST_WRITE_UNITS: f64 = 3.0;

/// The store the ledger is written to (set once, by [`crate::Platform::from_env`]).
pub(crate) fn install(store: Store) {
    let _ = STORE.set(store);
}

/// The configured memory in MB.
pub fn memory_mb() -> u64 {
    std::env::var(MEMORY_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_MEMORY_MB)
}

fn merge(into: &mut BTreeMap<String, Units>, from: BTreeMap<String, Units>) {
    for (payer, units) in from {
        let sum = into.entry(payer).or_default();
        for (u, n) in units {
            *sum.entry(u).or_default() += n;
        }
    }
}

/// `yyyy-mm-dd` (UTC) of the store's clock: the ledger day.
fn day(store: &Store) -> String {
    let now = store.clock().now();
    format!("{:04}-{:02}-{:02}", now.year(), u8::from(now.month()), now.day())
}

/// The invocation that began at `started` and ends now, as Lambda bills it: its duration
/// rounded up to the millisecond, at [`memory_mb`], with `init_ms` of a cold start.
fn ended(http: bool, started: Instant, init_ms: u64) -> Invocation {
    Invocation { http, billed_ms: telemetry::billed_ms(started.elapsed()), memory_mb: memory_mb(), init_ms, default_payer: telemetry::UNATTRIBUTED }
}

/// Adds one invocation's usage (and what earlier writes left to carry) to the ledger. Runs
/// outside the invocation's telemetry (its own calls are metered by what they report).
pub async fn settle(store: &Store, calls: &Calls, invocation: &Invocation) {
    let mut usage = calls.usage(invocation);
    if let Ok(mut carry) = CARRY.lock() {
        merge(&mut usage, std::mem::take(&mut *carry));
    }
    if usage.is_empty() {
        return;
    }
    let (write_units, mb_ms) = LAST_WRITE.lock().map(|last| *last).unwrap_or((FIRST_WRITE_UNITS, 0.0));
    for units in usage.values_mut() {
        *units.entry(unit::METERING_WRITE).or_default() += write_units;
        *units.entry(unit::METERING_MB_MS).or_default() += mb_ms;
    }
    let started = Instant::now();
    let result = store.add_to_ledger(&day(store), &usage).await;
    let elapsed = started.elapsed();
    let ledger_ms = elapsed.as_secs_f64() * 1000.0;
    let mut carry = BTreeMap::new();
    match result {
        Ok(consumed) => {
            let payers = telemetry::as_f64(u64::try_from(consumed.len().max(1)).unwrap_or(1));
            let written: f64 = consumed.values().map(|c| c.write).sum();
            let share = telemetry::as_f64(telemetry::billed_ms(elapsed).saturating_mul(invocation.memory_mb)) / payers;
            if let Ok(mut last) = LAST_WRITE.lock() {
                *last = (written / payers, share);
            }
            tracing::info!(ledger_ms, payers = usage.len(), "usage metered");
        }
        Err(e) => {
            tracing::warn!(error = %e, ledger_ms, payers = usage.len(), "the cost ledger could not be written; its usage is kept for the next invocation");
            carry = usage;
        }
    }
    if let Ok(mut kept) = CARRY.lock() {
        merge(&mut kept, carry);
        if kept.len() > MAX_CARRIED_PAYERS {
            tracing::warn!(payers = kept.len(), "dropping usage that could not be written");
            kept.clear();
        }
    }
}

/// Runs [`settle`] on a task of its own, so that the work's telemetry (and any recording
/// around it, a test's say) does not count the ledger's calls as the work's.
async fn settle_apart(store: Store, calls: Calls, invocation: Invocation) {
    let _ = tokio::spawn(async move { settle(&store, &calls, &invocation).await }).await;
}

/// Axum middleware for a server that is not Lambda (the local runner, tests): meters every
/// request as an API Gateway request to a function of [`memory_mb`], and settles it before
/// answering. Use with `axum::middleware::from_fn_with_state(store, metered)` around a
/// finished router.
pub async fn metered(axum::extract::State(store): axum::extract::State<Store>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let init = telemetry::take_init_duration(started).map_or(0, telemetry::billed_ms);
    let (response, calls) = telemetry::record(next.run(req)).await;
    let invocation = move || ended(true, started, init);
    let streamed = response.headers().get(axum::http::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !streamed {
        settle_apart(store, calls, invocation()).await;
        return response;
    }
    // A streamed answer (server-sent events) is produced after the handler returned: the
    // invocation lasts until its last byte, and is settled then, as Lambda bills a streamed
    // response until its end. (A client that goes away first leaves it unsettled.)
    let (parts, body) = response.into_parts();
    let settle_at_end = Some((store, calls, invocation));
    let frames = futures::stream::unfold((body.into_data_stream(), settle_at_end), |(mut inner, mut at_end)| async move {
        use futures::StreamExt;
        if let Some(frame) = inner.next().await {
            return Some((frame, (inner, at_end)));
        }
        if let Some((store, calls, invocation)) = at_end.take() {
            settle_apart(store, calls, invocation()).await;
        }
        None
    });
    Response::from_parts(parts, axum::body::Body::from_stream(frames))
}

/// Meters one event delivery of a server that is not Lambda (the local runner's event
/// sources) as [`MeterLayer`] meters an asynchronous invocation on Lambda: the work's calls and
/// time, charged to the payers of the event's records ([`crate::function::payers_of`]), settled
/// before it returns. Answers the work's output and the billed milliseconds, the ledger's write
/// included (what Lambda's `platform.report` would bill).
pub async fn metered_event<F: Future>(store: &Store, kind: crate::function::EventKind, event: &serde_json::Value, work: F) -> (F::Output, u64) {
    let started = Instant::now();
    let payers = crate::function::payers_of(kind, event);
    let (output, calls) = telemetry::record(async move {
        for payer in &payers {
            telemetry::attribute(payer);
        }
        work.await
    })
    .await;
    settle_apart(store.clone(), calls, ended(false, started, 0)).await;
    (output, telemetry::billed_ms(started.elapsed()))
}

/// The Lambda runtime layer: around the whole invocation, the answer's post to the runtime
/// API included; settles after it.
/// (`'a`: how long the handler's futures may borrow what it was built on.)
#[derive(Clone, Default)]
pub(crate) struct MeterLayer<'a>(std::marker::PhantomData<&'a ()>);

impl<'a, S> tower::Layer<S> for MeterLayer<'a> {
    type Service = Metered<'a, S>;
    fn layer(&self, inner: S) -> Metered<'a, S> {
        Metered { inner, _borrows: std::marker::PhantomData }
    }
}

#[derive(Clone)]
pub(crate) struct Metered<'a, S> {
    inner: S,
    _borrows: std::marker::PhantomData<&'a ()>,
}

/// What the layer needs to know of an event before it runs: whether it is an HTTP request.
#[derive(serde::Deserialize)]
struct Peek {
    #[serde(rename = "httpMethod")]
    http_method: Option<serde::de::IgnoredAny>,
}

type BoxError = lambda_http::lambda_runtime::Error;

impl<'a, S> tower::Service<LambdaInvocation> for Metered<'a, S>
where
    S: tower::Service<LambdaInvocation, Response = (), Error = BoxError>,
    S::Future: 'a,
{
    type Response = ();
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<(), BoxError>> + 'a>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        let started = Instant::now();
        let init = telemetry::take_init_duration(started).map_or(0, telemetry::billed_ms);
        let http = serde_json::from_slice::<Peek>(&invocation.body).map(|p| p.http_method.is_some()).unwrap_or(false);
        let work = self.inner.call(invocation);
        Box::pin(async move {
            let (result, calls) = telemetry::record(work).await;
            if let Some(store) = STORE.get() {
                settle_apart(store.clone(), calls, ended(http, started, init)).await;
            }
            result
        })
    }
}
