//! The emulator's Runtime API, spoken to with raw HTTP requests and by a real `lambda_runtime`
//! function (the `lambda-emulator-echo` binary).

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_emulator::runtime_api::PREFIX;
use lambda_emulator::{Emulator, FunctionConfig, FunctionProcess, Invocation, Outcome, RunError, lambda_env};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(30);

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

async fn http(emulator: &Emulator, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(emulator.addr()).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n", emulator.runtime_api(), body.len());
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())).collect();
    Reply { status, headers, body: body.to_owned() }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis().try_into().unwrap()
}

async fn emulator(name: &str) -> Emulator {
    Emulator::start(FunctionConfig::new(name, Duration::from_secs(10))).await.unwrap()
}

#[tokio::test]
async fn next_blocks_until_an_event_and_carries_lambdas_headers() {
    let emu = emulator("fake").await;
    let emu = std::sync::Arc::new(emu);
    let poll = {
        let emu = emu.clone();
        tokio::spawn(async move { http(&emu, "GET", &format!("{PREFIX}/invocation/next"), &[], "").await })
    };
    emu.wait_first_next().await;
    assert!(emu.first_next().is_some());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!poll.is_finished(), "next answered without an event");

    let pending = emu.submit(Invocation {
        payload: br#"{"hello":"world"}"#.to_vec(),
        client_context: Some(r#"{"custom":{"k":"v"}}"#.into()),
        cognito_identity: Some(r#"{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"}"#.into()),
    });
    let reply = tokio::time::timeout(WAIT, poll).await.unwrap().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, r#"{"hello":"world"}"#);
    let h = &reply.headers;
    assert_eq!(h["lambda-runtime-aws-request-id"], pending.request_id);
    let deadline: u64 = h["lambda-runtime-deadline-ms"].parse().unwrap();
    assert!(deadline > now_ms(), "the deadline is in the future");
    assert_eq!(h["lambda-runtime-invoked-function-arn"], "arn:aws:lambda:us-east-1:123456789012:function:fake");
    assert!(h["lambda-runtime-trace-id"].starts_with("Root=1-"));
    assert_eq!(h["lambda-runtime-client-context"], r#"{"custom":{"k":"v"}}"#);
    assert!(h["lambda-runtime-cognito-identity"].contains("pool-1"));
    assert_eq!(emu.next_calls(), 1);

    let id = pending.request_id.clone();
    let posted = http(&emu, "POST", &format!("{PREFIX}/invocation/{id}/response"), &[("Content-Type", "application/json")], r#"{"ok":true}"#).await;
    assert_eq!(posted.status, 202);
    let done = tokio::time::timeout(WAIT, pending.wait()).await.unwrap().unwrap();
    assert_eq!(done.request_id, id);
    assert_eq!(done.outcome, Outcome::Response(br#"{"ok":true}"#.to_vec()));
    assert!(done.dispatched_at >= done.queued_at && done.completed_at >= done.dispatched_at);

    // The invocation is finished: answering it again is refused.
    let again = http(&emu, "POST", &format!("{PREFIX}/invocation/{id}/response"), &[], "{}").await;
    assert_eq!(again.status, 400);
    assert!(again.body.contains("InvalidRequestID"));
}

#[tokio::test]
async fn events_without_client_context_omit_those_headers() {
    let emu = emulator("fake").await;
    let pending = emu.submit(Invocation::json(&json!({"n": 1})));
    let reply = http(&emu, "GET", &format!("{PREFIX}/invocation/next"), &[], "").await;
    assert_eq!(reply.headers["lambda-runtime-aws-request-id"], pending.request_id);
    assert!(!reply.headers.contains_key("lambda-runtime-client-context"));
    assert!(!reply.headers.contains_key("lambda-runtime-cognito-identity"));
}

#[tokio::test]
async fn invocation_errors_are_recorded_with_their_type() {
    let emu = emulator("fake").await;
    let pending = emu.submit(Invocation::json(&json!({})));
    let reply = http(&emu, "GET", &format!("{PREFIX}/invocation/next"), &[], "").await;
    let id = &reply.headers["lambda-runtime-aws-request-id"];
    let body = r#"{"errorType":"Boom","errorMessage":"it broke"}"#;
    let posted = http(&emu, "POST", &format!("{PREFIX}/invocation/{id}/error"), &[("Lambda-Runtime-Function-Error-Type", "Runtime.Unhandled")], body).await;
    assert_eq!(posted.status, 202);
    let done = pending.wait().await.unwrap();
    assert_eq!(done.outcome, Outcome::Error { error_type: Some("Runtime.Unhandled".into()), body: body.as_bytes().to_vec() });
}

#[tokio::test]
async fn init_errors_are_recorded() {
    let emu = emulator("fake").await;
    assert!(emu.init_error().is_none());
    let body = r#"{"errorType":"Runtime.InitError","errorMessage":"no table"}"#;
    let posted = http(&emu, "POST", &format!("{PREFIX}/init/error"), &[("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")], body).await;
    assert_eq!(posted.status, 202);
    let e = emu.init_error().unwrap();
    assert_eq!(e.error_type.as_deref(), Some("Runtime.InitError"));
    assert_eq!(e.body, body.as_bytes());
}

#[tokio::test]
async fn a_functions_init_failure_is_reported_as_lambda_asks() {
    // What every function's `main` does when it cannot build its platform or handlers
    // (`api::init_or_report`), against the Runtime API.
    let emu = emulator("fake").await;
    let api = emu.runtime_api();
    tokio::task::spawn_blocking(move || api::report_init_error_to(&api, "TABLE_NAME is not set")).await.unwrap().unwrap();
    let e = emu.init_error().expect("the init error was reported");
    assert_eq!(e.error_type.as_deref(), Some("Runtime.InitError"));
    let body: serde_json::Value = serde_json::from_slice(&e.body).unwrap();
    assert_eq!((body["errorType"].as_str(), body["errorMessage"].as_str()), (Some("Runtime.InitError"), Some("TABLE_NAME is not set")));
    // Nothing listening: the failure to report is an error, not a hang or a panic.
    assert!(api::report_init_error_to("127.0.0.1:9", "x").is_err());
}

#[tokio::test]
async fn unknown_request_ids_are_refused() {
    let emu = emulator("fake").await;
    let reply = http(&emu, "POST", &format!("{PREFIX}/invocation/not-a-request/error"), &[], "{}").await;
    assert_eq!(reply.status, 400);
}

fn echo() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lambda-emulator-echo"))
}

#[tokio::test]
async fn a_lambda_runtime_function_runs_under_the_emulator() {
    let emu = emulator("echo").await;
    let before = now_ms();
    let first = emu.submit(Invocation {
        payload: br#"{"n":0}"#.to_vec(),
        client_context: Some(r#"{"custom":{"tenant":"t1"},"environment":{}}"#.into()),
        cognito_identity: Some(r#"{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"}"#.into()),
    });
    let mut process = FunctionProcess::spawn(echo(), &lambda_env(&emu, 128)).unwrap();
    let done = process.wait(first, WAIT).await.unwrap();
    assert!(emu.first_next().unwrap() >= process.spawned_at());
    let Outcome::Response(body) = &done.outcome else { panic!("{:?}", done.outcome) };
    let seen: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(seen["payload"], json!({"n": 0}));
    assert_eq!(seen["requestId"], done.request_id.as_str());
    assert!(seen["deadline"].as_u64().unwrap() >= before + 10_000, "deadline = dispatch + the 10 s timeout");
    assert_eq!(seen["functionArn"], "arn:aws:lambda:us-east-1:123456789012:function:echo");
    assert!(seen["traceId"].as_str().unwrap().starts_with("Root=1-"));
    assert_eq!(seen["clientContext"]["custom"]["tenant"], "t1");
    assert_eq!(seen["identity"]["identityPoolId"], "pool-1");
    assert_eq!((seen["functionName"].as_str(), seen["memory"].as_i64(), seen["version"].as_str()), (Some("echo"), Some(128), Some("$LATEST")));
    assert_eq!(seen["logGroup"], "/aws/lambda/echo");

    // Warm invocations reuse the process; an error is posted to the error endpoint.
    for n in 1..=3 {
        let done = process.wait(emu.submit(Invocation::json(&json!({ "n": n }))), WAIT).await.unwrap();
        assert!(matches!(done.outcome, Outcome::Response(_)));
    }
    let failed = process.wait(emu.submit(Invocation::json(&json!({"fail": "asked to"}))), WAIT).await.unwrap();
    let Outcome::Error { body, .. } = &failed.outcome else { panic!("{:?}", failed.outcome) };
    assert!(String::from_utf8_lossy(body).contains("asked to"));
    let after = process.wait(emu.submit(Invocation::json(&json!({"n": 9}))), WAIT).await.unwrap();
    assert!(matches!(after.outcome, Outcome::Response(_)), "the process survives a function error");
    assert!(emu.next_calls() >= 6);

    assert!(process.peak_rss_bytes().unwrap() > 0);
    let output = process.stop().await;
    assert_eq!(output.invocations.len(), 6);
    assert!(output.invocations.iter().all(|l| l.counts.dynamodb == Some(2) && l.counts.s3 == Some(0)));
}

#[tokio::test]
async fn a_function_whose_init_fails() {
    let emu = emulator("echo").await;
    let first = emu.submit(Invocation::json(&json!({})));
    let mut env = lambda_env(&emu, 128);
    env.push(("ECHO_INIT_FAIL".into(), "1".into()));
    let mut process = FunctionProcess::spawn(echo(), &env).unwrap();
    let err = process.wait(first, WAIT).await.unwrap_err();
    assert!(matches!(err, RunError::Exited(_)), "{err:?}");
    let init = emu.init_error().expect("the init error was reported");
    assert_eq!(init.error_type.as_deref(), Some("Runtime.InitError"));
    assert!(emu.first_next().is_none());
    assert!(process.peak_rss_bytes().is_none());
    let output = process.stop().await;
    assert!(output.tail.iter().any(|l| l.contains("init failed on purpose")), "{:?}", output.tail);
    assert_eq!(output.status.and_then(|s| s.code()), Some(3));
}

/// A request with a chunked body (each of `chunks` one chunk) and `trailers` after the last,
/// as a runtime posts a streamed response.
async fn chunked(emulator: &Emulator, path: &str, headers: &[(&str, &str)], chunks: &[&[u8]], trailers: &[(&str, &str)]) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(emulator.addr()).await.unwrap();
    let mut request = format!("POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n", emulator.runtime_api()).into_bytes();
    for (k, v) in headers {
        request.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    for chunk in chunks {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n");
    for (k, v) in trailers {
        request.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    stream.write_all(&request).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    Reply { status, headers: HashMap::new(), body: body.to_owned() }
}

const STREAMING: [(&str, &str); 3] = [
    ("Lambda-Runtime-Function-Response-Mode", "streaming"),
    ("Content-Type", "application/vnd.awslambda.http-integration-response"),
    ("Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"),
];

#[tokio::test]
async fn a_streamed_http_answer_is_read_to_its_end_with_the_status_of_its_prelude() {
    let emu = emulator("fake").await;
    let pending = emu.submit(Invocation::json(&json!({})));
    let next = http(&emu, "GET", &format!("{PREFIX}/invocation/next"), &[], "").await;
    let id = &next.headers["lambda-runtime-aws-request-id"];
    let prelude = br#"{"statusCode":201,"headers":{"content-type":"application/json","etag":"\"3\""},"cookies":[]}"#;
    let chunks: [&[u8]; 4] = [prelude, &[0; 8], br#"{"answer":"#, br#""[local model] You asked"}"#];
    let posted = chunked(&emu, &format!("{PREFIX}/invocation/{id}/response"), &STREAMING, &chunks, &[]).await;
    assert_eq!(posted.status, 202, "{}", posted.body);
    let done = tokio::time::timeout(WAIT, pending.wait()).await.unwrap().unwrap();
    let Outcome::Streamed(s) = &done.outcome else { panic!("{:?}", done.outcome) };
    assert_eq!(s.status(), Some(201));
    assert_eq!(s.prelude.as_ref().unwrap()["headers"]["etag"], "\"3\"");
    assert_eq!(s.body, br#"{"answer":"[local model] You asked"}"#);
    assert_eq!(s.error, None);
    assert_eq!(done.outcome.body(), s.body.as_slice());
}

#[tokio::test]
async fn a_stream_that_fails_reports_its_error_in_trailers() {
    let emu = emulator("fake").await;
    let pending = emu.submit(Invocation::json(&json!({})));
    let next = http(&emu, "GET", &format!("{PREFIX}/invocation/next"), &[], "").await;
    let id = &next.headers["lambda-runtime-aws-request-id"];
    let chunks: [&[u8]; 3] = [br#"{"statusCode":200,"headers":{"content-type":"text/event-stream"},"cookies":[]}"#, &[0; 8], b"event: delta\ndata: {}\n\n"];
    // "the model went away", base64.
    let trailers = [("Lambda-Runtime-Function-Error-Type", "Runtime.StreamError"), ("Lambda-Runtime-Function-Error-Body", "dGhlIG1vZGVsIHdlbnQgYXdheQ==")];
    let posted = chunked(&emu, &format!("{PREFIX}/invocation/{id}/response"), &STREAMING, &chunks, &trailers).await;
    assert_eq!(posted.status, 202, "{}", posted.body);
    let done = tokio::time::timeout(WAIT, pending.wait()).await.unwrap().unwrap();
    let Outcome::Streamed(s) = &done.outcome else { panic!("{:?}", done.outcome) };
    assert_eq!((s.status(), s.body.as_slice()), (Some(200), b"event: delta\ndata: {}\n\n".as_slice()));
    let e = s.error.as_ref().expect("the trailers' error");
    assert_eq!((e.error_type.as_str(), e.body.as_slice()), ("Runtime.StreamError", b"the model went away".as_slice()));
}

#[tokio::test]
async fn a_buffered_answer_over_six_megabytes_is_refused() {
    let emu = emulator("fake").await;
    let _pending = emu.submit(Invocation::json(&json!({})));
    let next = http(&emu, "GET", &format!("{PREFIX}/invocation/next"), &[], "").await;
    let id = &next.headers["lambda-runtime-aws-request-id"];
    let big = "x".repeat(lambda_emulator::runtime_api::MAX_PAYLOAD + 1);
    let posted = http(&emu, "POST", &format!("{PREFIX}/invocation/{id}/response"), &[], &big).await;
    assert_eq!(posted.status, 413);
    assert!(posted.body.contains("RequestEntityTooLarge"), "{}", posted.body);
}

#[tokio::test]
async fn a_lambda_runtime_function_streams_its_answer() {
    let emu = emulator("echo").await;
    let first = emu.submit(Invocation::json(&json!({"stream": ["event: delta\n", "data: {}\n\n"], "status": 201})));
    let mut process = FunctionProcess::spawn(echo(), &lambda_env(&emu, 128)).unwrap();
    let done = process.wait(first, WAIT).await.unwrap();
    let Outcome::Streamed(s) = &done.outcome else { panic!("{:?}", done.outcome) };
    assert_eq!(s.status(), Some(201));
    assert_eq!(s.prelude.as_ref().unwrap()["headers"]["content-type"], "text/event-stream");
    assert_eq!(s.body, b"event: delta\ndata: {}\n\n");
    assert_eq!(s.error, None);
    // lambda_runtime sends a failure once the stream has begun as the stream's last chunk.
    let failed = process.wait(emu.submit(Invocation::json(&json!({"stream": ["partial"], "streamError": true}))), WAIT).await.unwrap();
    let Outcome::Streamed(s) = &failed.outcome else { panic!("{:?}", failed.outcome) };
    assert_eq!((s.status(), s.body.as_slice()), (Some(200), b"partial".as_slice()));
    let e = s.error.as_ref().expect("the stream's error");
    assert_eq!(e.error_type, "Runtime.StreamError");
    assert!(!e.body.is_empty() && !String::from_utf8_lossy(&e.body).contains("Lambda-Runtime"), "{:?}", String::from_utf8_lossy(&e.body));
    // Buffered answers still work in the same process.
    let after = process.wait(emu.submit(Invocation::json(&json!({"n": 1}))), WAIT).await.unwrap();
    assert!(matches!(after.outcome, Outcome::Response(_)), "{:?}", after.outcome);
    process.stop().await;
}
