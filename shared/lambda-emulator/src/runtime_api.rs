//! The Lambda Runtime API (version 2018-06-01) as a function process sees it: a long-polled
//! `next`, the invocation's `response` or `error`, and `init/error`. The harness queues events
//! with [`Emulator::submit`] and awaits their [`Completed`] outcome.
//!
//! A response is buffered (one body, at most 6 MB) or streamed, as Lambda response streaming
//! posts it: `Lambda-Runtime-Function-Response-Mode: streaming`, a chunked body of up to 200 MB
//! and, for an HTTP integration (`Content-Type:
//! application/vnd.awslambda.http-integration-response`), a metadata prelude first (JSON with
//! the `statusCode`, `headers` and `cookies` of the answer, then 8 NUL bytes), then the answer's
//! body. A failure once the stream has begun is reported in the trailers
//! `Lambda-Runtime-Function-Error-Type` and `Lambda-Runtime-Function-Error-Body` (base64).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
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
pub const ERROR_BODY: &str = "lambda-runtime-function-error-body";
pub const RESPONSE_MODE: &str = "lambda-runtime-function-response-mode";
/// The content type of a streamed answer to an HTTP integration (metadata prelude, then body).
pub const HTTP_INTEGRATION_RESPONSE: &str = "application/vnd.awslambda.http-integration-response";
/// What ends the metadata prelude of a streamed HTTP answer.
pub const PRELUDE_DELIMITER: [u8; 8] = [0; 8];

/// Lambda's synchronous invocation payload limit, for requests and buffered responses alike.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;
/// The most a streamed response may carry (Lambda's default maximum).
pub const MAX_STREAMED_PAYLOAD: usize = 200 * 1024 * 1024;

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
    /// A buffered response.
    Response(Vec<u8>),
    /// A response posted in streaming mode.
    Streamed(Streamed),
    Error {
        error_type: Option<String>,
        body: Vec<u8>,
    },
}

impl Outcome {
    /// The answer's body: a buffered response's, a streamed one's past its prelude, an error's.
    pub fn body(&self) -> &[u8] {
        match self {
            Outcome::Response(body) | Outcome::Error { body, .. } => body,
            Outcome::Streamed(s) => &s.body,
        }
    }
}

/// A response streamed to the Runtime API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streamed {
    /// The metadata prelude of an HTTP integration's answer (`statusCode`, `headers`,
    /// `cookies`); `None` for another content type, or a prelude that does not parse (then
    /// `body` is everything that came).
    pub prelude: Option<serde_json::Value>,
    /// What came after the prelude.
    pub body: Vec<u8>,
    /// The failure the function reported once the stream had begun (its error trailers).
    pub error: Option<StreamError>,
}

/// A failure reported in a streamed response's trailers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    pub error_type: String,
    /// Decoded from base64 (as sent when it is not base64).
    pub body: Vec<u8>,
}

impl Streamed {
    /// The HTTP status the prelude gives.
    pub fn status(&self) -> Option<u16> {
        self.prelude.as_ref()?.get("statusCode")?.as_u64().and_then(|s| u16::try_from(s).ok())
    }

    /// Reads what was streamed with `content_type`, and the error trailers that came with it.
    /// `lambda_runtime` (1.x) writes its error "trailers" as the stream's last data chunk
    /// (`Lambda-Runtime-Function-Error-Type: …\r\nLambda-Runtime-Function-Error-Body: …\r\n`)
    /// rather than as HTTP trailers: both are read.
    pub fn parse(content_type: Option<&str>, mut data: Vec<u8>, trailers: Option<&HeaderMap>) -> Streamed {
        let mut error = trailers.and_then(|t| {
            let error_type = t.get(ERROR_TYPE)?.to_str().ok()?.to_owned();
            let body = t.get(ERROR_BODY).map(|b| decode_base64(b.as_bytes())).unwrap_or_default();
            Some(StreamError { error_type, body })
        });
        if error.is_none()
            && let Some((at, in_band)) = in_band_error(&data)
        {
            data.truncate(at);
            error = Some(in_band);
        }
        let integration = content_type.is_some_and(|c| c.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case(HTTP_INTEGRATION_RESPONSE)));
        let split = integration.then(|| data.windows(PRELUDE_DELIMITER.len()).position(|w| w == PRELUDE_DELIMITER)).flatten();
        let prelude = split.and_then(|at| serde_json::from_slice::<serde_json::Value>(&data[..at]).ok()).filter(serde_json::Value::is_object);
        let body = match (split, &prelude) {
            (Some(at), Some(_)) => data.split_off(at + PRELUDE_DELIMITER.len()),
            _ => data,
        };
        Streamed { prelude, body, error }
    }
}

/// The error "trailers" `lambda_runtime` sends as the stream's last chunk: where they begin,
/// and what they say.
fn in_band_error(data: &[u8]) -> Option<(usize, StreamError)> {
    const TYPE: &[u8] = b"Lambda-Runtime-Function-Error-Type: ";
    const BODY: &[u8] = b"\r\nLambda-Runtime-Function-Error-Body: ";
    let at = data.windows(TYPE.len()).rposition(|w| w == TYPE)?;
    let rest = data[at + TYPE.len()..].strip_suffix(b"\r\n")?;
    let split = rest.windows(BODY.len()).position(|w| w == BODY)?;
    let (error_type, body) = (&rest[..split], &rest[split + BODY.len()..]);
    if error_type.is_empty() || error_type.contains(&b'\n') || body.contains(&b'\n') {
        return None;
    }
    Some((at, StreamError { error_type: String::from_utf8_lossy(error_type).into_owned(), body: decode_base64(body) }))
}

/// Standard base64 (padded or not) decoded; the text as sent when it is not base64.
fn decode_base64(text: &[u8]) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let trimmed = text.trim_ascii();
    let digits = trimmed.strip_suffix(b"==").or_else(|| trimmed.strip_suffix(b"=")).unwrap_or(trimmed);
    let Some(values) = digits.iter().map(|c| value(*c)).collect::<Option<Vec<u8>>>() else { return text.to_vec() };
    if values.len() % 4 == 1 {
        return text.to_vec();
    }
    let mut out = Vec::with_capacity(values.len() * 3 / 4);
    for group in values.chunks(4) {
        let bits = group.iter().enumerate().fold(0u32, |acc, (i, v)| acc | (u32::from(*v) << (18 - 6 * i)));
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..group.len()]);
    }
    out
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
    /// When the last answer arrived, until the next poll.
    last_answer: Mutex<Option<Instant>>,
    /// Answer to the next poll, per invocation: the work a function does after answering
    /// (the cost ledger's write), which Lambda bills and the client does not wait for.
    after_answer: Mutex<Vec<Duration>>,
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
            last_answer: Mutex::new(None),
            after_answer: Mutex::new(Vec::new()),
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

    /// For each answer followed by a poll: the time between them (what the function did after
    /// answering; Lambda bills it).
    pub fn after_answer(&self) -> Vec<Duration> {
        self.shared.after_answer.lock().unwrap().clone()
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
    if let Some(answered) = shared.last_answer.lock().unwrap().take() {
        shared.after_answer.lock().unwrap().push(arrived.saturating_duration_since(answered));
    }
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
    *shared.last_answer.lock().unwrap() = Some(completed_at);
    let Some(f) = shared.in_flight.lock().unwrap().remove(id) else {
        return problem(StatusCode::BAD_REQUEST, "InvalidRequestID", "no invocation in flight has this request id");
    };
    let done = Completed { request_id: id.to_owned(), outcome, queued_at: f.queued_at, dispatched_at: f.dispatched_at, completed_at };
    let _ = f.reply.send(done);
    accepted()
}

/// A buffered response, or a streamed one (read to its end: the invocation is complete when
/// the stream is).
async fn response(State(shared): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let streaming = headers.get(RESPONSE_MODE).and_then(|v| v.to_str().ok()).is_some_and(|m| m.eq_ignore_ascii_case("streaming"));
    if !streaming {
        return match axum::body::to_bytes(body, MAX_PAYLOAD).await {
            Ok(body) => complete(&shared, &id, Outcome::Response(body.to_vec())),
            Err(e) => too_large_or_broken(&e.to_string(), MAX_PAYLOAD),
        };
    }
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (data, trailers) = match read_stream(body, MAX_STREAMED_PAYLOAD).await {
        Ok(read) => read,
        Err(e) => return too_large_or_broken(&e, MAX_STREAMED_PAYLOAD),
    };
    complete(&shared, &id, Outcome::Streamed(Streamed::parse(content_type.as_deref(), data, trailers.as_ref())))
}

/// A streamed body's data, up to `limit` bytes, and its trailers.
async fn read_stream(mut body: Body, limit: usize) -> Result<(Vec<u8>, Option<HeaderMap>), String> {
    use axum::body::HttpBody;
    let mut data = Vec::new();
    let mut trailers: Option<HeaderMap> = None;
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| format!("the stream broke: {e}"))?;
        match frame.into_data() {
            Ok(chunk) => {
                if data.len() + chunk.len() > limit {
                    return Err("length limit exceeded".into());
                }
                data.extend_from_slice(&chunk);
            }
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers.get_or_insert_with(HeaderMap::new).extend(t);
                }
            }
        }
    }
    Ok((data, trailers))
}

/// Lambda refuses a response over its limit (`RequestEntityTooLarge`); a body that broke off
/// is not an answer either.
fn too_large_or_broken(error: &str, limit: usize) -> Response {
    if error.contains("length limit exceeded") {
        problem(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", &format!("the response is over {limit} bytes"))
    } else {
        problem(StatusCode::BAD_REQUEST, "InvalidRequest", error)
    }
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
