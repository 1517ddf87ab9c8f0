//! Lambda event filtering, as an event source mapping applies it to each record before the
//! function sees it: a record passes when any one pattern matches.
//!
//! A pattern is a JSON object whose leaves are arrays of matchers; every key of the pattern
//! must match. A matcher is a literal (string, number, boolean, null: equality) or one of
//! `{"prefix": …}`, `{"suffix": …}`, `{"equals-ignore-case": …}`, `{"anything-but": …}`,
//! `{"exists": true|false}`, `{"numeric": [op, n, …]}`. Where the record holds an array, the
//! leaf matches when any of its elements does. Anything else is refused when the runner
//! starts ([`validate`]), as Lambda refuses it when the mapping is created.

use serde_json::Value;

/// Whether `record` passes `patterns` (an empty list lets everything through).
pub fn passes(patterns: &[Value], record: &Value) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| matches(p, Some(record)))
}

/// Checks that `pattern` is one this module understands.
pub fn validate(pattern: &Value) -> Result<(), String> {
    let Value::Object(fields) = pattern else { return Err(format!("a pattern is an object, not {pattern}")) };
    for (key, sub) in fields {
        match sub {
            Value::Object(_) => validate(sub)?,
            Value::Array(matchers) => {
                for m in matchers {
                    validate_matcher(m).map_err(|e| format!("{key}: {e}"))?;
                }
            }
            other => return Err(format!("{key}: a leaf is an array of matchers, not {other}")),
        }
    }
    Ok(())
}

fn validate_matcher(m: &Value) -> Result<(), String> {
    let Value::Object(rule) = m else { return Ok(()) };
    let (name, arg) = rule.iter().next().ok_or("empty matcher")?;
    let ok = match name.as_str() {
        "prefix" | "suffix" | "equals-ignore-case" => arg.is_string(),
        "exists" => arg.is_boolean(),
        "anything-but" => true,
        "numeric" => arg.as_array().is_some_and(|a| a.len() % 2 == 0 && !a.is_empty()),
        _ => false,
    };
    if ok && rule.len() == 1 { Ok(()) } else { Err(format!("unsupported matcher {m}")) }
}

fn matches(pattern: &Value, value: Option<&Value>) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(key, sub)| match sub {
            Value::Object(_) => matches(sub, value.and_then(|v| v.get(key))),
            Value::Array(matchers) => leaf(matchers, value.and_then(|v| v.get(key))),
            _ => false,
        }),
        _ => false,
    }
}

fn leaf(matchers: &[Value], value: Option<&Value>) -> bool {
    matchers.iter().any(|m| match value {
        Some(Value::Array(items)) => items.iter().any(|v| one(m, Some(v))),
        v => one(m, v),
    })
}

fn one(matcher: &Value, value: Option<&Value>) -> bool {
    let Value::Object(rule) = matcher else {
        return value == Some(matcher);
    };
    let Some((name, arg)) = rule.iter().next() else { return false };
    let text = value.and_then(Value::as_str);
    match name.as_str() {
        "exists" => arg.as_bool() == Some(value.is_some()),
        "prefix" => text.zip(arg.as_str()).is_some_and(|(t, p)| t.starts_with(p)),
        "suffix" => text.zip(arg.as_str()).is_some_and(|(t, s)| t.ends_with(s)),
        "equals-ignore-case" => text.zip(arg.as_str()).is_some_and(|(t, s)| t.eq_ignore_ascii_case(s)),
        "anything-but" => {
            let Some(v) = value else { return false };
            match arg {
                Value::Array(excluded) => !excluded.contains(v),
                Value::Object(_) => !one(arg, Some(v)),
                single => single != v,
            }
        }
        "numeric" => {
            let Some(n) = value.and_then(|v| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))) else {
                return false;
            };
            arg.as_array().is_some_and(|ops| {
                ops.chunks(2).all(|pair| {
                    let bound = pair.get(1).and_then(Value::as_f64).unwrap_or(f64::NAN);
                    match pair.first().and_then(Value::as_str) {
                        Some("=") => n == bound,
                        Some("<") => n < bound,
                        Some("<=") => n <= bound,
                        Some(">") => n > bound,
                        Some(">=") => n >= bound,
                        _ => false,
                    }
                })
            })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(name: &str, kind: &str, status: Option<&str>) -> Value {
        let mut image = json!({"_type": {"S": kind}, "id": {"S": "01J"}});
        if let Some(s) = status {
            image["status"] = json!({"S": s});
        }
        json!({"eventName": name, "eventSource": "aws:dynamodb", "dynamodb": {"NewImage": image, "SequenceNumber": "7"}})
    }

    #[test]
    fn the_purge_filter_selects_orgs_being_deleted() {
        let pattern = json!({"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"_type": {"S": ["org"]}, "status": {"S": ["deleting"]}}}});
        validate(&pattern).unwrap();
        let p = [pattern];
        assert!(passes(&p, &record("MODIFY", "org", Some("deleting"))));
        assert!(!passes(&p, &record("MODIFY", "org", Some("active"))));
        assert!(!passes(&p, &record("REMOVE", "org", Some("deleting"))));
        assert!(!passes(&p, &record("MODIFY", "member", Some("deleting"))));
        assert!(!passes(&p, &record("MODIFY", "org", None)));
    }

    #[test]
    fn matchers_behave_as_lambda_documents_them() {
        let r = json!({"a": "Invoice-7.pdf", "n": 42, "tags": ["x", "y"], "flag": true});
        let ok = |p: Value| passes(&[p], &r);
        assert!(ok(json!({"a": [{"prefix": "Invoice-"}]})));
        assert!(!ok(json!({"a": [{"prefix": "invoice-"}]})));
        assert!(ok(json!({"a": [{"suffix": ".pdf"}]})));
        assert!(ok(json!({"a": [{"equals-ignore-case": "INVOICE-7.PDF"}]})));
        assert!(ok(json!({"a": [{"anything-but": ["x"]}]})));
        assert!(!ok(json!({"a": [{"anything-but": "Invoice-7.pdf"}]})));
        assert!(ok(json!({"a": [{"anything-but": {"prefix": "Receipt"}}]})));
        assert!(ok(json!({"missing": [{"exists": false}]})));
        assert!(!ok(json!({"a": [{"exists": false}]})));
        assert!(ok(json!({"n": [{"numeric": [">", 40, "<=", 42]}]})));
        assert!(!ok(json!({"n": [{"numeric": ["<", 40]}]})));
        assert!(ok(json!({"tags": ["y"]})), "an array matches when one element does");
        assert!(ok(json!({"flag": [true], "n": [42]})));
        assert!(!ok(json!({"flag": [true], "n": [41]})), "every key must match");
        assert!(passes(&[json!({"a": ["nope"]}), json!({"n": [42]})], &r), "any pattern may match");
        assert!(passes(&[], &r));
    }

    #[test]
    fn unknown_matchers_are_refused() {
        assert!(validate(&json!({"a": [{"wildcard": "*.pdf"}]})).is_err());
        assert!(validate(&json!({"a": "x"})).is_err());
        assert!(validate(&json!(["x"])).is_err());
        assert!(validate(&json!({"a": [{"numeric": [">"]}]})).is_err());
    }
}
