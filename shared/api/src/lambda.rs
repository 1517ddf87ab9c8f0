//! Running a router on Lambda, structured logs, and the layer every request passes through.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use tracing::Instrument;

use crate::ApiError;

/// JSON logs as CloudWatch expects (the same in every function).
pub use telemetry::init_tracing;

/// Serves `router` on the Lambda runtime (API Gateway REST proxy events).
pub async fn run(router: Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(router).await
}

/// Maps the staged path back to the resource path, puts request id, user id and org id on a
/// span, scopes the request's metadata (request id, source IP, user agent) around the
/// handler so that the domain events of its changes carry it, logs the outcome, and turns a
/// panic into a 500 problem.
pub(crate) async fn request_layer(mut req: Request, next: Next) -> Response {
    let raw = req.raw_http_path().to_owned();
    if !raw.is_empty() && raw != req.uri().path() {
        let rebuilt = match req.uri().query() {
            Some(q) => format!("{raw}?{q}"),
            None => raw,
        };
        if let Ok(uri) = rebuilt.parse() {
            *req.uri_mut() = uri;
        }
    }
    // Who asked and from where (API Gateway's request context): for the events of the
    // changes this request makes.
    let meta = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => {
            store::RequestMeta::new(ctx.request_id.as_deref(), ctx.identity.source_ip.as_deref(), ctx.identity.user_agent.as_deref())
        }
        _ => None,
    };
    let request_id = meta.as_ref().map(|m| m.request_id.clone()).unwrap_or_default();
    let (parts, body) = req.into_parts();
    let user_id = crate::identity::identity_of(&parts).map(|i| i.user_id.to_string()).unwrap_or_default();
    let req = Request::from_parts(parts, body);
    let path = req.uri().path().to_owned();
    let org_id = path.strip_prefix("/orgs/").or_else(|| path.strip_prefix("/admin/orgs/")).and_then(|r| r.split('/').next()).unwrap_or("").to_owned();
    let span = tracing::info_span!("request", %request_id, %user_id, %org_id, method = %req.method(), %path);
    // Operators' routes are the platform's cost (an org's own routes are charged to the org
    // once its authorization check passes).
    let operators = path.starts_with("/admin/");
    async move {
        let started = Instant::now();
        let handled = async move {
            if operators {
                telemetry::attribute(telemetry::PLATFORM);
            }
            AssertUnwindSafe(next.run(req)).catch_unwind().await
        };
        let (outcome, calls) = telemetry::record(store::with_request(meta, handled)).await;
        let response = match outcome {
            Ok(response) => response,
            Err(_) => {
                tracing::error!("handler panicked");
                ApiError::internal().into_response()
            }
        };
        let status = response.status().as_u16();
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (dynamodb_calls, ses_calls, s3_calls) = (calls.count("DynamoDB"), calls.count("SESv2"), calls.count("S3"));
        let aws_rounds = calls.rounds("DynamoDB");
        if status >= 500 {
            tracing::error!(status, elapsed_ms, dynamodb_calls, ses_calls, s3_calls, aws_rounds, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, dynamodb_calls, ses_calls, s3_calls, aws_rounds, "request");
        }
        response
    }
    .instrument(span)
    .await
}

/// The variable Lambda sets to the Runtime API's `host:port`.
pub const RUNTIME_API_ENV: &str = "AWS_LAMBDA_RUNTIME_API";

/// What a function's `main` built before its first invocation (the platform from the
/// environment, its handlers), or, when that failed (a variable missing, a setting that does
/// not parse, a service unreachable), the failure reported to the Runtime API's `init/error`
/// as Lambda asks of a custom runtime (`Runtime.InitError`): Lambda then records the reason,
/// answers the pending invocation with it and starts a fresh environment for the next one,
/// instead of seeing a process that exits without a word. The process exits with status 1.
pub fn init_or_report<T, E: std::fmt::Display>(built: Result<T, E>) -> T {
    match built {
        Ok(value) => value,
        Err(e) => {
            let message = e.to_string();
            tracing::error!(error = %message, "init failed");
            match std::env::var(RUNTIME_API_ENV) {
                Ok(api) => {
                    if let Err(why) = report_init_error_to(&api, &message) {
                        tracing::error!(error = %why, "the init error could not be reported to the Runtime API");
                    }
                }
                Err(_) => tracing::error!("{RUNTIME_API_ENV} is not set: not running on Lambda, nothing to report to"),
            }
            std::process::exit(1)
        }
    }
}

/// `POST /2018-06-01/runtime/init/error` to the Runtime API at `api` (`host:port`): the
/// error as Lambda's error JSON, typed `Runtime.InitError`. A plain HTTP/1.1 exchange, before
/// any runtime exists. Answers the Runtime API's refusal, if any.
pub fn report_init_error_to(api: &str, message: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    let body = serde_json::json!({"errorType": "Runtime.InitError", "errorMessage": message, "stackTrace": []}).to_string();
    let request = format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\nLambda-Runtime-Function-Error-Type: Runtime.InitError\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(api).map_err(|e| format!("connecting to {api}: {e}"))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).map_err(|e| e.to_string())?;
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    let status = answer.split_whitespace().nth(1).unwrap_or("");
    if status == "202" { Ok(()) } else { Err(format!("the Runtime API answered {}", answer.lines().next().unwrap_or("nothing"))) }
}
