//! The functions' per-invocation log lines (tracing's JSON format, one object per line):
//! `"message":"request"` (HTTP functions; `"request failed"` for 5xx), `"trigger"` (Cognito
//! triggers) or `"event"` (stream, queue, S3 and scheduled events), with the AWS calls the
//! invocation made. A count a line does not carry is `None`.

use serde::Serialize;
use serde_json::Value;

/// The messages that close an invocation.
pub const INVOCATION_MESSAGES: [&str; 4] = ["request", "request failed", "trigger", "event"];

/// AWS calls one invocation made, as logged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CallCounts {
    pub dynamodb: Option<u64>,
    pub ses: Option<u64>,
    pub s3: Option<u64>,
    pub aws_rounds: Option<u64>,
}

/// One invocation's log line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvocationLog {
    pub message: String,
    pub status: Option<u64>,
    pub elapsed_ms: Option<f64>,
    pub counts: CallCounts,
}

/// Parses one line of a function's stdout; `None` for anything but an invocation's line.
pub fn parse_line(line: &str) -> Option<InvocationLog> {
    let value: Value = serde_json::from_str(line.trim()).ok()?;
    let fields = value.get("fields").filter(|f| f.is_object()).unwrap_or(&value);
    let message = fields.get("message").and_then(Value::as_str)?;
    if !INVOCATION_MESSAGES.contains(&message) {
        return None;
    }
    let int = |name: &str| {
        let v = fields.get(name)?;
        v.as_u64().or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)).or_else(|| v.as_str()?.parse().ok())
    };
    Some(InvocationLog {
        message: message.to_owned(),
        status: int("status"),
        elapsed_ms: fields.get("elapsed_ms").and_then(Value::as_f64),
        counts: CallCounts { dynamodb: int("dynamodb_calls"), ses: int("ses_calls"), s3: int("s3_calls"), aws_rounds: int("aws_rounds") },
    })
}

/// Per-invocation statistics of one count over the lines that carried it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountStats {
    /// Lines that carried the count.
    pub lines: usize,
    pub mean: f64,
    pub min: u64,
    pub max: u64,
}

impl CountStats {
    pub fn of(values: impl IntoIterator<Item = u64>) -> Option<CountStats> {
        let values: Vec<u64> = values.into_iter().collect();
        if values.is_empty() {
            return None;
        }
        Some(CountStats {
            lines: values.len(),
            mean: values.iter().sum::<u64>() as f64 / values.len() as f64,
            min: *values.iter().min()?,
            max: *values.iter().max()?,
        })
    }

    /// `2`, or `2.5 (2–3)` when invocations differ.
    pub fn display(stats: &Option<CountStats>) -> String {
        match stats {
            None => "n/a".into(),
            Some(s) if s.min == s.max => s.min.to_string(),
            Some(s) => format!("{:.1} ({}–{})", s.mean, s.min, s.max),
        }
    }
}

/// The calls per invocation of a run: `None` for a count no line carried.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallSummary {
    /// Invocation lines seen.
    pub lines: usize,
    pub dynamodb: Option<CountStats>,
    pub ses: Option<CountStats>,
    pub s3: Option<CountStats>,
    pub aws_rounds: Option<CountStats>,
}

impl CallSummary {
    pub fn of(logs: &[InvocationLog]) -> CallSummary {
        let stat = |f: fn(&CallCounts) -> Option<u64>| CountStats::of(logs.iter().filter_map(|l| f(&l.counts)));
        CallSummary { lines: logs.len(), dynamodb: stat(|c| c.dynamodb), ses: stat(|c| c.ses), s3: stat(|c| c.s3), aws_rounds: stat(|c| c.aws_rounds) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_with_counts() {
        let line = r#"{"level":"INFO","fields":{"message":"request","status":201,"elapsed_ms":12.5,"dynamodb_calls":3,"ses_calls":1,"s3_calls":0,"aws_rounds":2},"span":{"request_id":"r1","name":"request"}}"#;
        let log = parse_line(line).unwrap();
        assert_eq!(log.message, "request");
        assert_eq!(log.status, Some(201));
        assert_eq!(log.elapsed_ms, Some(12.5));
        assert_eq!(log.counts, CallCounts { dynamodb: Some(3), ses: Some(1), s3: Some(0), aws_rounds: Some(2) });
    }

    #[test]
    fn missing_counts_are_none() {
        let log = parse_line(r#"{"level":"INFO","fields":{"message":"request","status":200,"elapsed_ms":1.0},"span":{}}"#).unwrap();
        assert_eq!(log.counts, CallCounts::default());
        let log = parse_line(r#"{"level":"ERROR","fields":{"message":"request failed","status":500,"dynamodb_calls":1}}"#).unwrap();
        assert_eq!((log.status, log.counts.dynamodb, log.counts.ses), (Some(500), Some(1), None));
    }

    #[test]
    fn trigger_lines_and_flattened_fields() {
        let log = parse_line(r#"{"level":"INFO","fields":{"message":"trigger","dynamodb_calls":1,"ses_calls":0,"s3_calls":0,"aws_rounds":1},"span":{"name":"trigger","trigger_source":"PostAuthentication_Authentication"}}"#).unwrap();
        assert_eq!(log.counts.dynamodb, Some(1));
        let log = parse_line(r#"{"message":"trigger","dynamodb_calls":"2"}"#).unwrap();
        assert_eq!(log.counts.dynamodb, Some(2));
    }

    #[test]
    fn event_lines_of_stream_and_scheduled_invocations() {
        let line = r#"{"level":"INFO","fields":{"message":"event","records":1,"failed":0,"elapsed_ms":30.5,"dynamodb_calls":7,"ses_calls":0,"s3_calls":0,"aws_rounds":7},"span":{"kind":"Stream","request_id":"r1","name":"event"}}"#;
        let log = parse_line(line).unwrap();
        assert_eq!(log.message, "event");
        assert_eq!(log.counts, CallCounts { dynamodb: Some(7), ses: Some(0), s3: Some(0), aws_rounds: Some(7) });
        assert!(parse_line(r#"{"level":"INFO","fields":{"message":"event delivered","records":1}}"#).is_none());
    }

    #[test]
    fn other_lines_are_ignored() {
        for line in [
            "",
            "not json",
            "[1,2]",
            r#"{"level":"INFO","fields":{"message":"profile created"},"span":{"name":"trigger"}}"#,
            r#"{"level":"WARN","fields":{"message":"trigger refused or failed","dynamodb_calls":1}}"#,
            r#"{"level":"INFO","fields":{"status":200}}"#,
        ] {
            assert!(parse_line(line).is_none(), "{line}");
        }
    }

    #[test]
    fn summary_over_invocations() {
        let line = |d: u64| parse_line(&format!(r#"{{"fields":{{"message":"request","dynamodb_calls":{d},"ses_calls":0}}}}"#)).unwrap();
        let s = CallSummary::of(&[line(2), line(2), line(5)]);
        assert_eq!(s.lines, 3);
        let d = s.dynamodb.clone().unwrap();
        assert_eq!((d.lines, d.min, d.max, d.mean), (3, 2, 5, 3.0));
        assert_eq!(CountStats::display(&s.dynamodb), "3.0 (2–5)");
        assert_eq!(CountStats::display(&s.ses), "0");
        assert_eq!(s.s3, None);
        assert_eq!(CountStats::display(&s.s3), "n/a");
    }
}
