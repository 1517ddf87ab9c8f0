//! What a piece of work used, in the units AWS bills, per payer: summed from the calls it made
//! (DynamoDB's reported capacity, SES messages, S3 requests by class) and from the invocation
//! itself (Lambda billed duration × memory, INIT for a cold start, API Gateway requests).

use std::collections::BTreeMap;

use crate::{Call, Calls, PLATFORM, UNATTRIBUTED};

/// The units the cost ledger sums, by the attribute names the ledger items carry.
pub mod unit {
    /// DynamoDB read request units (on-demand), as DynamoDB reported them.
    pub const DYNAMODB_READ: &str = "dynamodbReadUnits";
    /// DynamoDB write request units (on-demand), as DynamoDB reported them.
    pub const DYNAMODB_WRITE: &str = "dynamodbWriteUnits";
    /// Lambda invocations.
    pub const LAMBDA_REQUESTS: &str = "lambdaRequests";
    /// Lambda billed duration × configured memory, in ms × MB.
    pub const LAMBDA_MB_MS: &str = "lambdaMbMs";
    /// Lambda INIT duration of cold starts × memory, in ms × MB.
    pub const LAMBDA_INIT_MB_MS: &str = "lambdaInitMbMs";
    /// API Gateway REST requests.
    pub const API_REQUESTS: &str = "apiRequests";
    /// SES messages sent.
    pub const SES_MESSAGES: &str = "sesMessages";
    /// S3 requests of class A (PUT, COPY, POST, LIST).
    pub const S3_CLASS_A: &str = "s3ClassA";
    /// S3 requests of class B (GET, HEAD and the rest but DELETE, which is free).
    pub const S3_CLASS_B: &str = "s3ClassB";
    /// Write request units of the ledger's own writes (the cost of metering).
    pub const METERING_WRITE: &str = "meteringWriteUnits";
    /// Lambda ms × MB spent writing the ledger (the cost of metering).
    pub const METERING_MB_MS: &str = "meteringMbMs";
    /// Input tokens of Bedrock's text embeddings (documents indexed, questions searched), as
    /// the model reported them ([`crate::note`]).
    pub const BEDROCK_EMBEDDING_TOKENS: &str = "bedrockEmbeddingTokens";

    /// Every unit, in the order reports list them.
    pub const ALL: &[&str] = &[
        DYNAMODB_READ,
        DYNAMODB_WRITE,
        LAMBDA_REQUESTS,
        LAMBDA_MB_MS,
        LAMBDA_INIT_MB_MS,
        API_REQUESTS,
        SES_MESSAGES,
        S3_CLASS_A,
        S3_CLASS_B,
        METERING_WRITE,
        METERING_MB_MS,
        BEDROCK_EMBEDDING_TOKENS,
    ];
}

/// Amounts by unit.
pub type Units = BTreeMap<&'static str, f64>;

/// What the invocation itself was billed, besides its calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invocation {
    /// An API Gateway request (billed by API Gateway too).
    pub http: bool,
    /// The duration Lambda bills: the function's own measurement rounded up to the ms.
    pub billed_ms: u64,
    /// The function's configured memory.
    pub memory_mb: u64,
    /// The INIT duration of the cold start this invocation followed (0 when warm), rounded
    /// up to the ms.
    pub init_ms: u64,
    /// The payer when the work attributed none ([`PLATFORM`] for operators and schedules,
    /// else [`UNATTRIBUTED`]).
    pub default_payer: &'static str,
}

/// `n` as a float, exactly below 2^53 (every count here), without a lossy cast.
pub fn as_f64(n: u64) -> f64 {
    let (high, low) = (u32::try_from(n >> 32).unwrap_or(u32::MAX), u32::try_from(n & 0xFFFF_FFFF).unwrap_or(0));
    f64::from(high) * 4_294_967_296.0 + f64::from(low)
}

/// Lambda's rounding of a measured duration: up to the next millisecond.
pub fn billed_ms(elapsed: std::time::Duration) -> u64 {
    u64::try_from(elapsed.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// The S3 request class an operation is billed in: `Some(true)` class A, `Some(false)`
/// class B, `None` free (deletes, aborts).
pub fn s3_class_a(operation: &str) -> Option<bool> {
    let op = operation.to_ascii_lowercase();
    if op.starts_with("delete") || op.starts_with("abort") {
        return None;
    }
    let class_a = ["put", "copy", "post", "list", "create", "complete", "upload", "restore"];
    Some(class_a.iter().any(|p| op.starts_with(p)))
}

fn call_units(call: &Call, units: &mut Units) {
    let mut add = |unit: &'static str, n: f64| *units.entry(unit).or_default() += n;
    match call.service.to_ascii_lowercase().as_str() {
        "dynamodb" => {
            add(unit::DYNAMODB_READ, call.consumed.read);
            add(unit::DYNAMODB_WRITE, call.consumed.write);
        }
        "sesv2" | "ses" if call.operation.eq_ignore_ascii_case("SendEmail") => add(unit::SES_MESSAGES, 1.0),
        crate::calls::NOTED => {
            if let Some(u) = unit::ALL.iter().find(|u| **u == call.operation) {
                add(u, call.consumed.read);
            }
        }
        "s3" => match s3_class_a(&call.operation) {
            Some(true) => add(unit::S3_CLASS_A, 1.0),
            Some(false) => add(unit::S3_CLASS_B, 1.0),
            None => {}
        },
        _ => {}
    }
}

impl Calls {
    /// The work's usage by payer. With one payer attributed (a request's org), everything is
    /// that payer's; with none, the default payer's; with several (an event batch carrying
    /// several orgs' records), every unit is split evenly among them. Units that came to
    /// zero are left out.
    pub fn usage(&self, invocation: &Invocation) -> BTreeMap<String, Units> {
        let payers = self.payers();
        let first = payers.first().cloned().unwrap_or_else(|| invocation.default_payer.to_owned());
        let mut out: BTreeMap<String, Units> = BTreeMap::new();
        let shared = payers.len() > 1;
        for call in self.all() {
            let payer = if shared { PLATFORM.to_owned() } else { call.payer.clone().unwrap_or_else(|| first.clone()) };
            call_units(&call, out.entry(payer).or_default());
        }
        // Several payers (an event batch carrying several orgs' records): every unit is split
        // evenly among them, the calls' too (which record a call served is not known).
        let pooled = if shared { out.remove(PLATFORM).unwrap_or_default() } else { Units::new() };
        let mut own = Units::new();
        own.insert(unit::LAMBDA_REQUESTS, 1.0);
        own.insert(unit::LAMBDA_MB_MS, as_f64(invocation.billed_ms.saturating_mul(invocation.memory_mb)));
        own.insert(unit::LAMBDA_INIT_MB_MS, as_f64(invocation.init_ms.saturating_mul(invocation.memory_mb)));
        if invocation.http {
            own.insert(unit::API_REQUESTS, 1.0);
        }
        let shares: Vec<String> = if payers.is_empty() { vec![first] } else { payers };
        let share = 1.0 / as_f64(u64::try_from(shares.len()).unwrap_or(u64::MAX));
        for payer in shares {
            let units = out.entry(payer).or_default();
            for (unit, n) in own.iter().chain(pooled.iter()) {
                *units.entry(unit).or_default() += n * share;
            }
        }
        for units in out.values_mut() {
            units.retain(|_, n| *n != 0.0);
        }
        out.retain(|_, u| !u.is_empty());
        out
    }
}

/// Whether `payer` names an org (an id) rather than a bucket.
pub fn is_bucket(payer: &str) -> bool {
    payer == PLATFORM || payer == UNATTRIBUTED
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Consumed;

    #[test]
    fn lambda_rounds_up_to_the_millisecond() {
        assert_eq!(billed_ms(std::time::Duration::from_micros(1)), 1);
        assert_eq!(billed_ms(std::time::Duration::from_micros(1000)), 1);
        assert_eq!(billed_ms(std::time::Duration::from_micros(1001)), 2);
        assert_eq!(billed_ms(std::time::Duration::ZERO), 0);
    }

    #[test]
    fn s3_operations_fall_in_their_class() {
        assert_eq!(s3_class_a("PutObject"), Some(true));
        assert_eq!(s3_class_a("ListObjectsV2"), Some(true));
        assert_eq!(s3_class_a("CopyObject"), Some(true));
        assert_eq!(s3_class_a("GetObject"), Some(false));
        assert_eq!(s3_class_a("HeadObject"), Some(false));
        assert_eq!(s3_class_a("DeleteObjects"), None);
    }

    #[tokio::test]
    async fn calls_before_the_attribution_go_to_the_first_payer_and_the_invocation_is_split() {
        let (_, calls) = crate::record(async {
            crate::calls::push_for_test("DynamoDB", "GetItem", Consumed { read: 1.0, write: 0.0 });
            crate::attribute("A");
            crate::calls::push_for_test("DynamoDB", "PutItem", Consumed { read: 0.0, write: 2.0 });
            crate::calls::push_for_test("SESv2", "SendEmail", Consumed::default());
        })
        .await;
        let inv = Invocation { http: true, billed_ms: 10, memory_mb: 128, init_ms: 0, default_payer: UNATTRIBUTED };
        let usage = calls.usage(&inv);
        assert_eq!(usage.keys().collect::<Vec<_>>(), vec!["A"]);
        let a = &usage["A"];
        assert_eq!((a[unit::DYNAMODB_READ], a[unit::DYNAMODB_WRITE], a[unit::SES_MESSAGES]), (1.0, 2.0, 1.0));
        assert_eq!((a[unit::LAMBDA_MB_MS], a[unit::API_REQUESTS], a[unit::LAMBDA_REQUESTS]), (1280.0, 1.0, 1.0));

        let (_, calls) = crate::record(async {
            crate::attribute("A");
            crate::attribute("B");
        })
        .await;
        let usage = calls.usage(&inv);
        assert_eq!((usage["A"][unit::LAMBDA_MB_MS], usage["B"][unit::LAMBDA_MB_MS]), (640.0, 640.0));
        let (_, calls) = crate::record(async {
            crate::attribute("A");
            crate::calls::push_for_test("DynamoDB", "PutItem", Consumed { read: 0.0, write: 2.0 });
            crate::attribute("B");
        })
        .await;
        let usage = calls.usage(&inv);
        assert_eq!((usage["A"][unit::DYNAMODB_WRITE], usage["B"][unit::DYNAMODB_WRITE]), (1.0, 1.0));
        assert!(!usage.contains_key(PLATFORM));
        let (_, calls) = crate::record(async {}).await;
        assert_eq!(calls.usage(&Invocation { default_payer: PLATFORM, ..inv }).keys().collect::<Vec<_>>(), vec![PLATFORM]);
    }

    #[tokio::test]
    async fn spawned_work_and_noted_units_are_the_spawners() {
        let (_, calls) = crate::record(async {
            crate::attribute("A");
            crate::spawn(async {
                crate::calls::push_for_test("DynamoDB", "PutItem", Consumed { read: 0.0, write: 3.0 });
                crate::note(unit::BEDROCK_EMBEDDING_TOKENS, 12.0);
            })
            .await
            .ok();
        })
        .await;
        let inv = Invocation { http: false, billed_ms: 1, memory_mb: 128, init_ms: 0, default_payer: UNATTRIBUTED };
        let a = &calls.usage(&inv)["A"];
        assert_eq!((a[unit::DYNAMODB_WRITE], a[unit::BEDROCK_EMBEDDING_TOKENS]), (3.0, 12.0));
        // Outside a recording, spawning and noting change nothing.
        crate::spawn(async { crate::note(unit::BEDROCK_EMBEDDING_TOKENS, 1.0) }).await.ok();
    }
}
