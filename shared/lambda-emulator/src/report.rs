//! The results: the machine they were measured on, one row per scenario, the budgets, as
//! Markdown (`results.md`) and JSON (`results.json`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::logs::{CallSummary, CountStats};
use crate::model::ModelTime;
use crate::stats::Summary;

/// What each function should stay under. Times are reported against these, never asserted.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Budgets {
    pub init_ms: f64,
    pub peak_rss_mb: f64,
    pub zip_mb: f64,
}

pub const BUDGETS: Budgets = Budgets { init_ms: 20.0, peak_rss_mb: 32.0, zip_mb: 6.0 };

const MB: f64 = 1024.0 * 1024.0;
const WARN: &str = "⚠";

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: Option<String>,
    pub os: String,
    pub git_commit: Option<String>,
    /// UTC, RFC 3339.
    pub date: String,
}

impl Machine {
    pub fn detect(repo: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|k| k.trim().to_owned());
        let git_commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(repo)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|c| !c.is_empty());
        let distro = os_release_name(&os_release).unwrap_or_else(|| std::env::consts::OS.to_owned());
        Machine {
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpu_model: cpu_model(&cpuinfo),
            os: match kernel {
                Some(k) => format!("{distro}, kernel {k} ({})", std::env::consts::ARCH),
                None => format!("{distro} ({})", std::env::consts::ARCH),
            },
            git_commit,
            date: rfc3339_utc(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()),
        }
    }
}

/// `model name` from /proc/cpuinfo (x86), else the first `Model`/`Hardware`/`CPU part` line.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name && !v.trim().is_empty()).then(|| v.trim().to_owned())
        })
    };
    field("model name").or_else(|| field("Model")).or_else(|| field("Hardware")).or_else(|| field("CPU part").map(|p| format!("CPU part {p}")))
}

/// `PRETTY_NAME` of /etc/os-release.
pub fn os_release_name(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|l| Some(l.strip_prefix("PRETTY_NAME=")?.trim_matches('"').to_owned()))
}

/// Seconds since the epoch as `YYYY-MM-DDThh:mm:ssZ`.
pub fn rfc3339_utc(epoch_secs: u64) -> String {
    let days = (epoch_secs / 86_400) as i64;
    let secs = epoch_secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// How the invocations of a scenario were answered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Responses {
    pub total: usize,
    /// Successful answers: 2xx (HTTP), no function error (triggers), no failed records
    /// (stream and queue batches), `null` (scheduled and other EventBridge events); and the
    /// work done where the harness checks it (a purge invocation's org or project is gone, a
    /// removed member's tasks are unassigned, mentioned members are notified, due digests and
    /// held-back mail are sent, a bounced address is suppressed, an upload is processed to
    /// `ready`, a scan result is recorded, an expired upload is swept).
    pub ok: usize,
    /// Answers that are not successes without being function errors (HTTP outside 2xx,
    /// failed records, work not done).
    pub non_2xx: usize,
    /// Function errors (posted to `invocation/{id}/error`).
    pub errors: usize,
    /// HTTP status, `ok`, `error:<type>` or what else went wrong -> count.
    pub statuses: BTreeMap<String, usize>,
    /// The first answer that was not a success, shortened.
    pub first_failure: Option<String>,
}

impl Responses {
    pub fn record(&mut self, key: String, ok: bool, function_error: bool, body: &[u8]) {
        self.total += 1;
        *self.statuses.entry(key).or_default() += 1;
        if ok {
            self.ok += 1;
        } else {
            if function_error {
                self.errors += 1;
            } else {
                self.non_2xx += 1;
            }
            if self.first_failure.is_none() {
                let text = String::from_utf8_lossy(body);
                self.first_failure = Some(text.chars().take(400).collect());
            }
        }
    }
}

/// One scenario's measurements.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub function: String,
    pub scenario: String,
    /// Warm invocations that completed (the cold one not included).
    pub warm_invocations: usize,
    /// Spawn to the first `next` poll.
    pub init_ms: Option<f64>,
    /// Spawn to the first answer (the event was queued before the spawn).
    pub first_response_ms: Option<f64>,
    /// Warm invocations: event handed over to answer received.
    pub warm_ms: Option<Summary>,
    /// Warm invocations: event queued to answer received (adds the emulator's hand-over).
    pub warm_round_trip_ms: Option<Summary>,
    /// `VmHWM` just before the process was stopped.
    pub peak_rss_bytes: Option<u64>,
    /// The function's CPU time (user + system) per warm invocation, on average: what its
    /// process used over the warm invocations (`/proc/<pid>/stat`, 10 ms ticks) divided by
    /// their number. The local endpoint's time is not in it, the function's waiting neither.
    pub warm_cpu_ms: Option<f64>,
    /// AWS calls per invocation, from the function's log lines (cold invocation included).
    pub calls: CallSummary,
    pub responses: Responses,
    /// `<lambda dir>/<binary>/bootstrap.zip` (`make build`), if present.
    pub zip_bytes: Option<u64>,
    /// The native release binary the run used.
    pub binary_bytes: Option<u64>,
    /// Why the scenario could not be measured completely.
    pub error: Option<String>,
    /// Which budgets this row is over: `init`, `memory`, `zip`.
    pub over_budget: Vec<&'static str>,
    /// The local endpoint's fake model calls of the last invocation, and what they take: part
    /// of the measured durations (scenarios that call the model).
    pub model: Option<ModelTime>,
    /// Why the model's time could not be measured.
    pub model_error: Option<String>,
}

impl ScenarioResult {
    pub fn new(function: &str, scenario: &str) -> ScenarioResult {
        ScenarioResult {
            function: function.into(),
            scenario: scenario.into(),
            warm_invocations: 0,
            init_ms: None,
            first_response_ms: None,
            warm_ms: None,
            warm_round_trip_ms: None,
            peak_rss_bytes: None,
            warm_cpu_ms: None,
            calls: CallSummary::default(),
            responses: Responses::default(),
            zip_bytes: None,
            binary_bytes: None,
            error: None,
            over_budget: Vec::new(),
            model: None,
            model_error: None,
        }
    }

    pub fn peak_rss_mb(&self) -> Option<f64> {
        self.peak_rss_bytes.map(|b| b as f64 / MB)
    }

    /// Fills `over_budget` from the measurements.
    pub fn check_budgets(&mut self, budgets: &Budgets) {
        self.over_budget.clear();
        if self.init_ms.is_some_and(|v| v > budgets.init_ms) {
            self.over_budget.push("init");
        }
        if self.peak_rss_mb().is_some_and(|v| v > budgets.peak_rss_mb) {
            self.over_budget.push("memory");
        }
        if self.zip_bytes.is_some_and(|b| b as f64 / MB > budgets.zip_mb) {
            self.over_budget.push("zip");
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    /// Warm invocations asked for per scenario.
    pub iterations: usize,
    pub endpoint: String,
    pub budgets: Budgets,
    pub results: Vec<ScenarioResult>,
}

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into())
}

fn flagged(text: String, over: bool) -> String {
    if over { format!("{text} {WARN}") } else { text }
}

impl Report {
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let b = &self.budgets;
        let mut out = String::new();
        out.push_str("# Tenantry function benchmarks\n\n");
        out.push_str(&format!(
            "{} · {} core(s), {} · {} · commit {}\n\n",
            m.date,
            m.cores,
            m.cpu_model.as_deref().unwrap_or("unknown CPU"),
            m.os,
            m.git_commit.as_deref().unwrap_or("unknown"),
        ));
        out.push_str(&format!(
            "Each scenario runs the function's native release binary in a fresh process under the Lambda Runtime API \
             emulator: one cold invocation, then {} warm ones, against {} with a seeded table. \
             Budgets: init < {} ms, peak memory < {} MB, zip < {} MB per function; {WARN} marks a cell over budget \
             (times are reported, never asserted). Latencies include the local endpoint's own time (Python, loopback).\n\n",
            self.iterations, self.endpoint, b.init_ms, b.peak_rss_mb, b.zip_mb
        ));
        out.push_str(&format!(
            "| Function | Scenario | Init ms (< {}) | First response ms | p50 ms | p99 ms | Peak RSS MB (< {}) | DynamoDB calls | SES calls | S3 calls | Zip MB (< {}) | OK |\n",
            b.init_ms, b.peak_rss_mb, b.zip_mb
        ));
        out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for r in &self.results {
            let zip = match r.zip_bytes {
                Some(z) => flagged(format!("{:.2}", z as f64 / MB), r.over_budget.contains(&"zip")),
                None => "n/a (run make build)".into(),
            };
            let resp = &r.responses;
            let ok = if r.error.is_some() {
                format!("{WARN} {}/{} (incomplete)", resp.ok, resp.total)
            } else if resp.ok < resp.total {
                format!("{WARN} {}/{}", resp.ok, resp.total)
            } else {
                format!("{}/{}", resp.ok, resp.total)
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.function,
                r.scenario,
                flagged(ms(r.init_ms), r.over_budget.contains(&"init")),
                ms(r.first_response_ms),
                ms(r.warm_ms.as_ref().map(|s| s.p50)),
                ms(r.warm_ms.as_ref().map(|s| s.p99)),
                flagged(r.peak_rss_mb().map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into()), r.over_budget.contains(&"memory")),
                CountStats::display(&r.calls.dynamodb),
                CountStats::display(&r.calls.ses),
                CountStats::display(&r.calls.s3),
                zip,
                ok,
            ));
        }
        out.push_str(
            "\nInit: spawn to the first `next` poll. First response: spawn to the first answer. p50/p99: warm invocations, \
             event handed to the function to its answer. Calls: per invocation, from the functions' `request`/`trigger`/`event` \
             log lines (n/a: not logged). OK: 2xx (HTTP), no function error (triggers), no failed records (streams, queues) \
             or `null` (schedules, EventBridge events), and the invocation's work done where it is checked (its org or \
             project purged, its removed member's tasks unassigned, each mentioned member notified, its digests and \
             held-back mail sent and rescheduled, its bounced address suppressed, its upload processed to `ready` with what \
             the sample holds, its scan result recorded, its expired upload swept, its export complete) / invocations. Peak RSS: the process's \
             high-water mark over all its invocations (`VmHWM`).\n",
        );
        let with_model: Vec<&ScenarioResult> = self.results.iter().filter(|r| r.model.is_some() || r.model_error.is_some()).collect();
        if !with_model.is_empty() {
            out.push_str(
                "\n## The fake model's share\n\nThese scenarios call Bedrock, which the local endpoint answers with a deterministic fake \
                 (`shared/testkit/fake_bedrock.py`: no sleep of its own, `latencyMs` 10 as it reports). Their durations include its \
                 answers: below, the calls of the last invocation, each replayed over loopback HTTP to time it, and the p50 less \
                 those calls one after the other: everything but the model, which is the function's own work and its DynamoDB, S3 \
                 and S3 Vectors calls to the local endpoint (moto, much slower than AWS). An ingestion runs 8 embeddings at once: \
                 its calls overlap, and less than their sum is in its duration. The CPU time is the function's own work alone.\n\n",
            );
            for r in with_model {
                match (&r.model, &r.model_error) {
                    (Some(m), _) => {
                        let own = r.warm_ms.as_ref().map(|s| {
                            if m.overlapping {
                                format!("; p50 {:.1} ms (the calls overlap: less than their sum is in it)", s.p50)
                            } else {
                                format!("; p50 {:.1} ms, of which everything but the model about {:.1} ms", s.p50, (s.p50 - m.serial_p50_ms).max(0.0))
                            }
                        });
                        let cpu = r.warm_cpu_ms.map(|c| format!("; its CPU time {c:.1} ms per invocation")).unwrap_or_default();
                        out.push_str(&format!("- {} / {}: {}{}{cpu}\n", r.function, r.scenario, m.describe(), own.unwrap_or_default()));
                    }
                    (None, Some(e)) => out.push_str(&format!("- {} / {}: not measured ({})\n", r.function, r.scenario, one_line(e))),
                    (None, None) => {}
                }
            }
        }
        let problems: Vec<&ScenarioResult> = self.results.iter().filter(|r| r.error.is_some() || r.responses.first_failure.is_some()).collect();
        if !problems.is_empty() {
            out.push_str("\n## Problems\n\n");
            for r in problems {
                if let Some(e) = &r.error {
                    out.push_str(&format!("- {} / {}: {}\n", r.function, r.scenario, one_line(e)));
                }
                if let Some(f) = &r.responses.first_failure {
                    out.push_str(&format!("- {} / {}: first failed answer: `{}`\n", r.function, r.scenario, one_line(f).replace('`', "'")));
                }
            }
        }
        out
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_764_166_230), "2025-11-26T14:10:30Z");
    }

    #[test]
    fn cpu_and_os_names() {
        assert_eq!(cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: x\n").as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_model("processor\t: 0\nCPU part\t: 0xd0c\n").as_deref(), Some("CPU part 0xd0c"));
        assert_eq!(cpu_model(""), None);
        assert_eq!(os_release_name("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
    }

    fn row(init: f64, rss_mb: u64, zip: Option<u64>) -> ScenarioResult {
        let mut r = ScenarioResult::new("organizations", "get org");
        r.init_ms = Some(init);
        r.first_response_ms = Some(init + 10.0);
        r.peak_rss_bytes = Some(rss_mb * 1024 * 1024);
        r.zip_bytes = zip;
        r.warm_ms = Summary::of(&[1.0, 2.0, 3.0]);
        r.responses.record("200".into(), true, false, b"");
        r.check_budgets(&BUDGETS);
        r
    }

    #[test]
    fn budgets_mark_cells() {
        let within = row(5.0, 10, Some(3 * 1024 * 1024));
        assert!(within.over_budget.is_empty());
        let over = row(25.0, 40, Some(7 * 1024 * 1024));
        assert_eq!(over.over_budget, ["init", "memory", "zip"]);
        let report = Report {
            machine: Machine { cores: 2, cpu_model: None, os: "Linux".into(), git_commit: None, date: rfc3339_utc(0) },
            iterations: 3,
            endpoint: "moto".into(),
            budgets: BUDGETS,
            results: vec![within, over, row(1.0, 1, None)],
        };
        let md = report.markdown();
        assert!(md.contains("| organizations | get org | 5.0 | 15.0 | 2.0 | 3.0 | 10.0 | n/a | n/a | n/a | 3.00 | 1/1 |"), "{md}");
        assert!(md.contains("| 25.0 ⚠ | 35.0 | 2.0 | 3.0 | 40.0 ⚠ |"), "{md}");
        assert!(md.contains("7.00 ⚠"), "{md}");
        assert!(md.contains("n/a (run make build)"), "{md}");
        let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(json["machine"]["cores"], 2);
        assert_eq!(json["budgets"]["init_ms"], 20.0);
        assert_eq!(json["results"][1]["over_budget"][0], "init");
    }

    #[test]
    fn the_model_share_is_reported_for_the_scenarios_that_call_it() {
        use crate::model::CallTime;
        let mut turn = row(5.0, 13, None);
        turn.warm_ms = Summary::of(&[200.0, 220.0, 240.0]);
        turn.warm_cpu_ms = Some(4.5);
        let call = |operation: &str, calls, p50_ms| CallTime { operation: operation.into(), model_id: "m".into(), calls, p50_ms, p95_ms: p50_ms + 1.0 };
        turn.model = Some(ModelTime { calls: vec![call("Converse", 1, 12.0), call("InvokeModel", 1, 13.0)], serial_p50_ms: 25.0, overlapping: false });
        let mut ingest = row(5.0, 13, None);
        ingest.model = Some(ModelTime { calls: vec![call("InvokeModel", 46, 14.0)], serial_p50_ms: 644.0, overlapping: true });
        let mut failed = row(5.0, 13, None);
        failed.model_error = Some("the last invocation made no model call".into());
        let report = Report {
            machine: Machine { cores: 2, cpu_model: None, os: "Linux".into(), git_commit: None, date: rfc3339_utc(0) },
            iterations: 3,
            endpoint: "moto".into(),
            budgets: BUDGETS,
            results: vec![turn, ingest, failed, row(1.0, 1, None)],
        };
        let md = report.markdown();
        assert!(md.contains("## The fake model's share"), "{md}");
        assert!(
            md.contains("= 25.0 ms one after the other; p50 220.0 ms, of which everything but the model about 195.0 ms; its CPU time 4.5 ms per invocation"),
            "{md}"
        );
        assert!(md.contains("InvokeModel ×46 (14.0 ms p50) = 644.0 ms one after the other; p50 2.0 ms (the calls overlap"), "{md}");
        assert!(md.contains("not measured (the last invocation made no model call)"), "{md}");
        assert_eq!(md.matches("- organizations / get org:").count(), 3, "one line per scenario that calls the model");
        let plain = Report { results: vec![row(1.0, 1, None)], ..report };
        assert!(!plain.markdown().contains("fake model"));
    }

    #[test]
    fn responses_count_failures() {
        let mut r = Responses::default();
        r.record("200".into(), true, false, b"{}");
        r.record("404".into(), false, false, b"{\"type\":\"not-found\"}");
        r.record("error:Unavailable".into(), false, true, b"{}");
        assert_eq!((r.total, r.ok, r.non_2xx, r.errors), (3, 1, 1, 1));
        assert_eq!(r.first_failure.as_deref(), Some("{\"type\":\"not-found\"}"));
    }
}
