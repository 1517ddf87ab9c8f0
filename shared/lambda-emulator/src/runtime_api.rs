//! The Lambda Runtime API (version 2018-06-01) as a function process sees it: a long-polled
//! `next`, the invocation's `response` or `error`, and `init/error`. The harness queues events
//! with [`Emulator::submit`] and awaits their [`Completed`] outcome.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode};
use tokio::sync::{mpsc, oneshot, watch};

/// The API's path prefix (what `AWS_LAMBDA_RUNTIME_API` is the authority for).
pub const PREFIX: &str = "/2018-06-01/runtime";

pub const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
pub const DEADLINE_MS: &str = "lambda-runtime-deadline-ms";
pub const FUNCTION_ARN: &str = "lambda-runtime-invoked-function-arn";
pub const TRACE_ID: &str = "lambda-runtime-trace-id";
pub const CLIENT_CONTEXT: &str = "lambda-runtime-client-context";
pub const COGNITO_IDENTITY: &str = "lambda-runtime-cognito-identity";
pub const ERROR_TYPE: &str = "lambda-runtime-function-error-type";

/// Lambda's synchronous invocation payload limit, for requests and responses alike.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// The function an emulator stands in front of.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    pub name: String,
    pub region: String,
    pub account_id: String,
    /// The configured timeout: each invocation's deadline is this far from its dispatch.
    pub timeout: Duration,
}

impl FunctionConfig {
    pub fn new(name: impl Into<String>, timeout: Duration) -> FunctionConfig {
        FunctionConfig { name: name.into(), region: "us-east-1".into(), account_id: "123456789012".into(), timeout }
    }

    pub fn arn(&self) -> String {
        format!("arn:aws:lambda:{}:{}:function:{}", self.region, self.account_id, self.name)
    }
}

/// One event to deliver, with the optional context mobile SDK / Cognito Identity callers add.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub payload: Vec<u8>,
    /// JSON, sent as `Lambda-Runtime-Client-Context`.
    pub client_context: Option<String>,
    /// JSON, sent as `Lambda-Runtime-Cognito-Identity`.
    pub cognito_identity: Option<String>,
}

impl Invocation {
    pub fn json(payload: &serde_json::Value) -> Invocation {
        Invocation { payload: payload.to_string().into_bytes(), ..Invocation::default() }
    }
}

/// What the function answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Response(Vec<u8>),
    Error { error_type: Option<String>, body: Vec<u8> },
}

/// A finished invocation and when each step happened.
#[derive(Debug, Clone)]
pub struct Completed {
    pub request_id: String,
    pub outcome: Outcome,
    pub queued_at: Instant,
    /// When `next` handed the event to the function.
    pub dispatched_at: Instant,
    /// When the function's `response` or `error` arrived.
    pub completed_at: Instant,
}

impl Completed {
    /// The function's own time, as Lambda bills it: event handed over to answer received.
    pub fn duration(&self) -> Duration {
        self.completed_at.saturating_duration_since(self.dispatched_at)
    }

    /// Queued to answered, including the wait for the function to poll.
    pub fn round_trip(&self) -> Duration {
        self.completed_at.saturating_duration_since(self.queued_at)
    }
}

/// A report to `init/error`.
#[derive(Debug, Clone)]
pub struct InitError {
    pub error_type: Option<String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

/// An invocation handed to [`Emulator::submit`]; await [`Pending::wait`].
#[derive(Debug)]
pub struct Pending {
    pub request_id: String,
    rx: oneshot::Receiver<Completed>,
}

impl Pending {
    /// The outcome; `None` when the emulator stopped first.
    pub async fn wait(self) -> Option<Completed> {
        self.rx.await.ok()
    }
}

struct Queued {
    id: String,
    invocation: Invocation,
    queued_at: Instant,
    reply: oneshot::Sender<Completed>,
}

struct InFlight {
    reply: oneshot::Sender<Completed>,
    queued_at: Instant,
    dispatched_at: Instant,
}

struct Shared {
    config: FunctionConfig,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    in_flight: Mutex<HashMap<String, InFlight>>,
    first_next: watch::Sender<Option<Instant>>,
    next_calls: Mutex<usize>,
    init_error: Mutex<Option<InitError>>,
    stopped: watch::Sender<bool>,
}

/// A Runtime API on a loopback port. Dropping it stops the server and releases waiters.
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    sender: mpsc::UnboundedSender<Queued>,
    server: tokio::task::JoinHandle<()>,
}

impl Emulator {
    pub async fn start(config: FunctionConfig) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            config,
            queue: tokio::sync::Mutex::new(receiver),
            in_flight: Mutex::new(HashMap::new()),
            first_next: watch::Sender::new(None),
            next_calls: Mutex::new(0),
            init_error: Mutex::new(None),
            stopped: watch::Sender::new(false),
        });
        let router = router(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("lambda-emulator: server stopped: {e}");
            }
        });
        Ok(Emulator { addr, shared, sender, server })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn config(&self) -> &FunctionConfig {
        &self.shared.config
    }

    /// Queues an event; the function receives it on its next poll.
    pub fn submit(&self, invocation: Invocation) -> Pending {
        let id = request_id();
        let (reply, rx) = oneshot::channel();
        let queued = Queued { id: id.clone(), invocation, queued_at: Instant::now(), reply };
        // The receiver lives as long as `shared`, which this emulator holds.
        let _ = self.sender.send(queued);
        Pending { request_id: id, rx }
    }

    /// When the function first polled `next` (the end of its init), if it has.
    pub fn first_next(&self) -> Option<Instant> {
        *self.shared.first_next.borrow()
    }

    /// Waits for the first `next` poll.
    pub async fn wait_first_next(&self) -> Instant {
        let mut rx = self.shared.first_next.subscribe();
        let seen = rx.wait_for(Option::is_some).await.map(|v| *v);
        seen.ok().flatten().unwrap_or_else(Instant::now)
    }

    /// How many times the function polled `next`.
    pub fn next_calls(&self) -> usize {
        *self.shared.next_calls.lock().unwrap()
    }

    /// What the function reported to `init/error`, if anything.
    pub fn init_error(&self) -> Option<InitError> {
        self.shared.init_error.lock().unwrap().clone()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shared.stopped.send_replace(true);
        self.server.abort();
    }
}

/// A request id in the UUID form Lambda uses.
pub fn request_id() -> String {
    let v = ulid::Ulid::new().0;
    let h = format!("{v:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// An X-Ray trace header as Lambda passes it (not sampled).
pub fn trace_id(now_epoch_secs: u64) -> String {
    let r = ulid::Ulid::new().0;
    format!("Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0", now_epoch_secs as u32, r >> 32, r as u64)
}

fn epoch_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(&format!("{PREFIX}/invocation/next"), get(next))
        .route(&format!("{PREFIX}/invocation/{{id}}/response"), post(response))
        .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(error))
        .route(&format!("{PREFIX}/init/error"), post(init_error))
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD))
        .with_state(shared)
}

fn problem(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message });
    (status, [(http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, [(http::header::CONTENT_TYPE, "application/json")], r#"{"status":"OK"}"#).into_response()
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let arrived = Instant::now();
    *shared.next_calls.lock().unwrap() += 1;
    shared.first_next.send_if_modified(|v| {
        if v.is_none() {
            *v = Some(arrived);
            true
        } else {
            false
        }
    });
    let mut stopped = shared.stopped.subscribe();
    let queued = {
        let mut queue = shared.queue.lock().await;
        tokio::select! {
            q = queue.recv() => q,
            _ = stopped.wait_for(|s| *s) => None,
        }
    };
    let Some(q) = queued else {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "the emulator is stopping");
    };
    let dispatched_at = Instant::now();
    let now_ms = epoch_ms();
    let deadline = now_ms + shared.config.timeout.as_millis();
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set(REQUEST_ID, &q.id);
    set(DEADLINE_MS, &deadline.to_string());
    set(FUNCTION_ARN, &shared.config.arn());
    set(TRACE_ID, &trace_id((now_ms / 1000) as u64));
    if let Some(c) = &q.invocation.client_context {
        set(CLIENT_CONTEXT, c);
    }
    if let Some(c) = &q.invocation.cognito_identity {
        set(COGNITO_IDENTITY, c);
    }
    set("content-type", "application/json");
    shared.in_flight.lock().unwrap().insert(q.id, InFlight { reply: q.reply, queued_at: q.queued_at, dispatched_at });
    (StatusCode::OK, headers, q.invocation.payload).into_response()
}

fn complete(shared: &Shared, id: &str, outcome: Outcome) -> Response {
    let completed_at = Instant::now();
    let Some(f) = shared.in_flight.lock().unwrap().remove(id) else {
        return problem(StatusCode::BAD_REQUEST, "InvalidRequestID", "no invocation in flight has this request id");
    };
    let done = Completed { request_id: id.to_owned(), outcome, queued_at: f.queued_at, dispatched_at: f.dispatched_at, completed_at };
    let _ = f.reply.send(done);
    accepted()
}

async fn response(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    complete(&shared, &id, Outcome::Response(body.to_vec()))
}

fn error_type(headers: &HeaderMap) -> Option<String> {
    headers.get(ERROR_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    complete(&shared, &id, Outcome::Error { error_type: error_type(&headers), body: body.to_vec() })
}

async fn init_error(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    *shared.init_error.lock().unwrap() = Some(InitError { error_type: error_type(&headers), body: body.to_vec(), at: Instant::now() });
    accepted()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_look_like_lambdas() {
        let id = request_id();
        let parts: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_ne!(id, request_id());
    }

    #[test]
    fn trace_header_has_root_parent_sampled() {
        let t = trace_id(0x6745d0a0);
        assert!(t.starts_with("Root=1-6745d0a0-"), "{t}");
        assert!(t.contains(";Parent=") && t.ends_with(";Sampled=0"), "{t}");
    }

    #[test]
    fn arn_names_the_function() {
        let c = FunctionConfig::new("organizations", Duration::from_secs(10));
        assert_eq!(c.arn(), "arn:aws:lambda:us-east-1:123456789012:function:organizations");
    }
}
