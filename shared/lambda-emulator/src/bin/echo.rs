//! A tiny function for the emulator's own tests: answers each event with the event and the
//! invocation context it saw; `{"fail": "..."}` makes it return an error, and
//! `ECHO_INIT_FAIL=1` makes its init fail: it reports to `init/error`, as a custom runtime
//! does, and exits. `{"stream": ["a", "b"], "status": 201}` streams an HTTP answer (Lambda
//! response streaming: the metadata prelude with the status, then each piece), and with
//! `"streamError": true` the stream fails after its pieces.
//! Each invocation logs a line like the Tenantry functions do.

use lambda_runtime::streaming::Body;
use lambda_runtime::{Error, FunctionResponse, LambdaEvent, MetadataPrelude, StreamResponse, service_fn};
use serde_json::{Value, json};

async fn handle(event: LambdaEvent<Value>) -> Result<FunctionResponse<Value, Body>, Error> {
    let (payload, ctx) = event.into_parts();
    println!(r#"{{"level":"INFO","fields":{{"message":"trigger","dynamodb_calls":2,"ses_calls":0,"s3_calls":0,"aws_rounds":1}},"span":{{"name":"trigger"}}}}"#);
    if let Some(reason) = payload.get("fail").and_then(Value::as_str) {
        return Err(reason.to_owned().into());
    }
    if let Some(pieces) = payload.get("stream").and_then(Value::as_array) {
        let pieces: Vec<String> = pieces.iter().filter_map(Value::as_str).map(str::to_owned).collect();
        let fails = payload.get("streamError").and_then(Value::as_bool).unwrap_or(false);
        let status = payload.get("status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok()).unwrap_or(200);
        let mut prelude = MetadataPrelude { status_code: http::StatusCode::from_u16(status)?, ..MetadataPrelude::default() };
        prelude.headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/event-stream"));
        let (mut tx, body) = Body::channel();
        tokio::spawn(async move {
            for piece in pieces {
                if tx.send_data(piece.into()).await.is_err() {
                    return;
                }
            }
            if fails {
                // The runtime's error type, which only its channel makes: a send on a closed one.
                let (mut closed, gone) = Body::channel();
                drop(gone);
                if let Err(e) = closed.send_data("never read".into()).await {
                    tx.send_error(e);
                }
            }
        });
        return Ok(FunctionResponse::StreamingResponse(StreamResponse { metadata_prelude: prelude, stream: body }));
    }
    Ok(FunctionResponse::BufferedResponse(json!({
        "payload": payload,
        "requestId": ctx.request_id,
        "deadline": ctx.deadline,
        "functionArn": ctx.invoked_function_arn,
        "traceId": ctx.xray_trace_id,
        "clientContext": ctx.client_context,
        "identity": ctx.identity,
        "functionName": ctx.env_config.function_name,
        "memory": ctx.env_config.memory,
        "version": ctx.env_config.version,
        "logStream": ctx.env_config.log_stream,
        "logGroup": ctx.env_config.log_group,
    })))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    if std::env::var("ECHO_INIT_FAIL").is_ok_and(|v| v == "1") {
        report_init_error();
        eprintln!("echo: init failed on purpose");
        std::process::exit(3);
    }
    lambda_runtime::run(service_fn(handle)).await
}

/// `POST /2018-06-01/runtime/init/error` with a plain HTTP/1.1 request.
fn report_init_error() {
    use std::io::{Read, Write};
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else { return };
    let body = r#"{"errorType":"Runtime.InitError","errorMessage":"init failed on purpose"}"#;
    let request = format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\nLambda-Runtime-Function-Error-Type: Runtime.InitError\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Ok(mut stream) = std::net::TcpStream::connect(&api) {
        let _ = stream.write_all(request.as_bytes());
        let _ = stream.read_to_end(&mut Vec::new());
    }
}
