//! The fake model's share of a chat scenario's latency. The local endpoint answers Bedrock
//! Runtime with a fake (`shared/testkit/fake_bedrock.py`): deterministic, with no sleep of its
//! own, but each call still takes its time (Python parsing the request, hashing an embedding,
//! the answer's JSON). A chat invocation's duration includes those calls; to tell Tenantry's
//! own time from the model's, the harness reads the fake's transcript of the scenario's last
//! invocation (every Converse, ConverseStream and InvokeModel call it made, with its request)
//! and sends each distinct kind of call again, [`REPLAYS`] times, timing the answer: the
//! model's time is what those calls take, end to end over loopback HTTP.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::stats::percentile;

/// The fake's transcript (see its docstring), on the endpoint's port.
pub const TRANSCRIPT_PATH: &str = "/_fake/bedrock/transcript";
/// Times each kind of call is replayed.
pub const REPLAYS: usize = 20;
const TIMEOUT: Duration = Duration::from_secs(30);

/// One kind of model call an invocation made (by operation and model), and what one takes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallTime {
    /// `Converse`, `ConverseStream` or `InvokeModel`.
    pub operation: String,
    pub model_id: String,
    /// Calls of this kind the invocation made.
    pub calls: usize,
    /// One call, replayed [`REPLAYS`] times.
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// The model calls of one invocation and their time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelTime {
    pub calls: Vec<CallTime>,
    /// Every call one after the other, at its p50: the model's share of an invocation whose
    /// calls do not overlap (a turn: the question's embedding, then the model).
    pub serial_p50_ms: f64,
    /// The invocation makes some of its calls at once (an ingestion's embeddings): they take
    /// less of its duration than their sum.
    pub overlapping: bool,
}

impl ModelTime {
    /// `InvokeModel ×1 (2.1 ms) + Converse ×1 (3.4 ms) = 5.5 ms`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self.calls.iter().map(|c| format!("{} ×{} ({:.1} ms p50)", c.operation, c.calls, c.p50_ms)).collect();
        format!("{} = {:.1} ms one after the other", parts.join(" + "), self.serial_p50_ms)
    }
}

/// `host:port` of an `http://host:port` endpoint.
pub fn authority(endpoint: &str) -> &str {
    endpoint.trim_start_matches("http://").trim_end_matches('/')
}

/// An HTTP/1.1 request on a new connection (`Connection: close`), read to its end: the status
/// and the body (a chunked body is left as sent).
pub async fn request(authority: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await.map_err(|e| format!("connecting to {authority}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut message = head.into_bytes();
        message.extend_from_slice(body);
        stream.write_all(&message).await.map_err(|e| format!("{method} {path}: {e}"))?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.map_err(|e| format!("{method} {path}: {e}"))?;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| format!("{method} {path}: no HTTP answer"))?;
        let status_line = String::from_utf8_lossy(&raw[..split]).lines().next().unwrap_or_default().to_owned();
        let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("{method} {path}: answered {status_line:?}"))?;
        Ok((status, raw[split + 4..].to_vec()))
    };
    tokio::time::timeout(TIMEOUT, exchange).await.map_err(|_| format!("{method} {path}: no answer within {} s", TIMEOUT.as_secs()))?
}

/// Empties the fake's transcript.
pub async fn clear_transcript(authority: &str) -> Result<(), String> {
    match request(authority, "DELETE", TRANSCRIPT_PATH, &[], b"").await? {
        (200..=299, _) => Ok(()),
        (status, _) => Err(format!("DELETE {TRANSCRIPT_PATH} answered {status}")),
    }
}

/// The fake's transcript, oldest call first.
pub async fn transcript(authority: &str) -> Result<Vec<Value>, String> {
    match request(authority, "GET", TRANSCRIPT_PATH, &[], b"").await? {
        (200, body) => serde_json::from_slice(&body).map_err(|e| format!("the transcript is not a JSON array: {e}")),
        (status, _) => Err(format!("GET {TRANSCRIPT_PATH} answered {status}")),
    }
}

/// The path of a Bedrock Runtime operation on `model` (its id percent-encoded, as the SDKs
/// send it).
pub fn runtime_path(operation: &str, model: &str) -> Option<String> {
    let op = match operation {
        "Converse" => "converse",
        "ConverseStream" => "converse-stream",
        "InvokeModel" => "invoke",
        _ => return None,
    };
    let encoded: String = model
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    Some(format!("/model/{encoded}/{op}"))
}

/// Replays the calls of a transcript (one invocation's): the first call of each operation and
/// model, [`REPLAYS`] times each, with a Bedrock API key (the fake takes any).
pub async fn time_calls(authority: &str, calls: &[Value]) -> Result<ModelTime, String> {
    let mut kinds: BTreeMap<(String, String), (usize, &Value)> = BTreeMap::new();
    for call in calls {
        let operation = call["operation"].as_str().unwrap_or_default().to_owned();
        let model = call["modelId"].as_str().unwrap_or_default().to_owned();
        kinds.entry((operation, model)).or_insert((0, call)).0 += 1;
    }
    let mut out = ModelTime::default();
    for ((operation, model), (count, call)) in kinds {
        let path = runtime_path(&operation, &model).ok_or_else(|| format!("the transcript holds an unknown operation {operation:?}"))?;
        let body = match &call["request"] {
            Value::String(text) => text.clone().into_bytes(),
            other => other.to_string().into_bytes(),
        };
        let headers = [("Content-Type", "application/json"), ("Accept", "application/json"), ("Authorization", "Bearer tenantry-bench")];
        let mut samples = Vec::with_capacity(REPLAYS);
        for _ in 0..REPLAYS {
            let started = Instant::now();
            let (status, answer) = request(authority, "POST", &path, &headers, &body).await?;
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
            if status != 200 {
                return Err(format!(
                    "replaying {operation} on {model} answered {status}: {}",
                    String::from_utf8_lossy(&answer).chars().take(200).collect::<String>()
                ));
            }
        }
        let p50 = percentile(&samples, 50.0).unwrap_or_default();
        out.serial_p50_ms += p50 * count as f64;
        out.calls.push(CallTime { operation, model_id: model, calls: count, p50_ms: p50, p95_ms: percentile(&samples, 95.0).unwrap_or_default() });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_paths_encode_the_model_as_the_sdks_do() {
        assert_eq!(runtime_path("Converse", "us.amazon.nova-lite-v1:0").as_deref(), Some("/model/us.amazon.nova-lite-v1%3A0/converse"));
        assert_eq!(runtime_path("InvokeModel", "amazon.titan-embed-text-v2:0").as_deref(), Some("/model/amazon.titan-embed-text-v2%3A0/invoke"));
        assert_eq!(runtime_path("ConverseStream", "m").as_deref(), Some("/model/m/converse-stream"));
        assert_eq!(runtime_path("CountTokens", "m"), None);
        assert_eq!(authority("http://127.0.0.1:4566/"), "127.0.0.1:4566");
    }

    #[test]
    fn model_time_reads_as_the_calls_one_after_the_other() {
        let t = ModelTime {
            calls: vec![
                CallTime { operation: "Converse".into(), model_id: "m".into(), calls: 1, p50_ms: 3.4, p95_ms: 4.0 },
                CallTime { operation: "InvokeModel".into(), model_id: "e".into(), calls: 2, p50_ms: 2.0, p95_ms: 2.5 },
            ],
            serial_p50_ms: 7.4,
            overlapping: false,
        };
        assert_eq!(t.describe(), "Converse ×1 (3.4 ms p50) + InvokeModel ×2 (2.0 ms p50) = 7.4 ms one after the other");
    }
}
