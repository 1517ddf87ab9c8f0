//! `tenantry-bench` (`make bench`): starts the local AWS endpoint, provisions and seeds it,
//! runs every scenario of `scenarios::SCENARIOS` against the functions' release binaries
//! under the Runtime API emulator, and writes `<target>/bench/results.{md,json}`.

// A measuring tool, not a deployed function: its statistics turn counts and durations (far
// below 2^52) into floats and back, and a poisoned lock in the harness is a bug to stop on.
#![allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_possible_wrap, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use lambda_emulator::logs::CallSummary;
use lambda_emulator::model;
use lambda_emulator::report::{BUDGETS, Machine, Report, ScenarioResult};
use lambda_emulator::scenarios::{self, EventSpec, FunctionDef, Kind, PerInvocation, Prepared, SCENARIOS, Scenario, Templates, Who};
use lambda_emulator::seed::{self, Fixture, Upload};
use lambda_emulator::stats::Summary;
use lambda_emulator::{Completed, Emulator, FunctionConfig, FunctionProcess, Invocation, Outcome, Streamed, lambda_env};
use local_runner::provision;
use testkit::endpoint as local_aws;

type Error = Box<dyn std::error::Error + Send + Sync>;

const TABLE: &str = "tenantry-bench";
const CURSOR_SECRET: &str = "bench-secret";
/// The front end's address functions link to (as `make dev` defaults it).
const APP_URL: &str = "http://localhost:3000";
/// The API's own address, for functions that link to it (unsubscribe links; `make dev`'s).
const API_URL: &str = "http://localhost:8080";
/// The SES configuration set the stack publishes bounces and complaints of.
const SES_CONFIGURATION_SET: &str = "tenantry-bench-mail";
/// Lambda's init phase limit.
const INIT_LIMIT: Duration = Duration::from_secs(10);

const USAGE: &str =
    "usage: tenantry-bench [--iterations N] [--members N] [--purge-members N] [--only TEXT] [--target-dir DIR] [--lambda-dir DIR] [--out DIR] [--events DIR]

  --iterations N    warm invocations per scenario (default 200; env BENCH_ITERATIONS)
  --members N       members seeded into the benchmark org besides its owner (default 25)
  --purge-members N members of the org each purge invocation purges, besides its owner (default 10)
  --only TEXT       run only scenarios whose function or name contains TEXT (repeatable)
  --target-dir DIR  where cargo put the release binaries (default $CARGO_TARGET_DIR or target)
  --lambda-dir DIR  cargo-lambda output with <binary>/bootstrap.zip (default <target dir>/lambda)
  --out DIR         where results.md and results.json go (default <target dir>/bench)
  --events DIR      the sample events (default events/)";

struct Args {
    root: PathBuf,
    iterations: usize,
    members: usize,
    purge_members: usize,
    only: Vec<String>,
    target_dir: PathBuf,
    lambda_dir: PathBuf,
    out_dir: PathBuf,
    events_dir: PathBuf,
}

impl Args {
    fn parse() -> Result<Args, String> {
        // Found at run time, as the venv and the endpoint's script are (`local_aws`).
        let root = testkit::endpoint::repo_root()
            .ok_or("run tenantry-bench inside the repository: no folder above this one holds shared/testkit/local_aws.py (or set TENANTRY_ROOT)")?;
        let mut iterations = std::env::var("BENCH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
        let mut members = 25;
        let mut purge_members = 10;
        let mut only = Vec::new();
        let mut target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
        let (mut lambda_dir, mut out_dir) = (None, None);
        let mut events_dir = root.join("events");
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"));
            match arg.as_str() {
                "--iterations" => iterations = value("--iterations")?.parse().map_err(|_| "--iterations takes a number")?,
                "--members" => members = value("--members")?.parse().map_err(|_| "--members takes a number")?,
                "--purge-members" => purge_members = value("--purge-members")?.parse().map_err(|_| "--purge-members takes a number")?,
                "--only" => only.push(value("--only")?),
                "--target-dir" => target_dir = PathBuf::from(value("--target-dir")?),
                "--lambda-dir" => lambda_dir = Some(PathBuf::from(value("--lambda-dir")?)),
                "--out" => out_dir = Some(PathBuf::from(value("--out")?)),
                "--events" => events_dir = PathBuf::from(value("--events")?),
                "-h" | "--help" => return Err(USAGE.into()),
                other => return Err(format!("unknown argument {other}\n\n{USAGE}")),
            }
        }
        if iterations == 0 {
            return Err("--iterations must be at least 1".into());
        }
        Ok(Args {
            root,
            iterations,
            members,
            purge_members,
            only,
            lambda_dir: lambda_dir.unwrap_or_else(|| target_dir.join("lambda")),
            out_dir: out_dir.unwrap_or_else(|| target_dir.join("bench")),
            target_dir,
            events_dir,
        })
    }

    fn selects(&self, s: &Scenario) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| s.function.contains(o.as_str()) || s.name.contains(o.as_str()))
    }
}

/// Stops the local endpoint however the run ends.
struct Endpoint(std::process::Child);

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tenantry-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<ExitCode, Error> {
    let started = Instant::now();
    let scenarios: Vec<&Scenario> = SCENARIOS.iter().filter(|s| args.selects(s)).collect();
    if scenarios.is_empty() {
        return Err(format!("no scenario matches {:?}", args.only).into());
    }
    let release = args.target_dir.join("release");
    let mut missing: Vec<&str> = scenarios.iter().map(|s| s.function).filter(|f| !release.join(f).is_file()).collect();
    missing.dedup();
    if !missing.is_empty() {
        return Err(format!(
            "no release build of {} in {} (cargo build --release --locked{})",
            missing.join(", "),
            release.display(),
            missing.iter().map(|f| format!(" -p {f}")).collect::<String>()
        )
        .into());
    }
    let templates = Templates::load(&args.events_dir)?;
    let unmeasured = scenarios::unbenchmarked();
    if !unmeasured.is_empty() {
        eprintln!("tenantry-bench: warning: no scenario for {} (functions of the registry this run does not measure)", unmeasured.join(", "));
    }

    let python = local_aws::python();
    if !python.exists() {
        return Err(format!("{} not found: run `make venv` first", python.display()).into());
    }
    let port = local_aws::free_port();
    let _endpoint = Endpoint(local_aws::spawn(&python, port, true, true)?);
    if !local_aws::wait_for(port, Duration::from_secs(60)) {
        return Err(format!("the local AWS endpoint did not start on port {port}").into());
    }
    let endpoint = format!("http://127.0.0.1:{port}");
    let config = local_aws::sdk_config(&endpoint).await;
    // The user pool, the SES identity and the upload bucket; its (streamed) table stays
    // unused, see `seed`.
    let resources = local_runner::provision::provision(&config, &endpoint, TABLE).await?;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let s3vectors = aws_sdk_s3vectors::Client::new(&config);
    // Buckets by path on the local endpoint, as the functions address them there.
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
    eprintln!(
        "tenantry-bench: local endpoint {endpoint}; {} scenario(s), 1 cold + {} warm invocations each, an org with {} members per scenario, \
         and for each org-purge invocation an org of {} (or a project of {} tasks) deleted just before it",
        scenarios.len(),
        args.iterations,
        args.members + 1,
        args.purge_members + 1,
        seed::DELETED_PROJECT_TASKS
    );

    let ctx = Ctx {
        endpoint: &endpoint,
        user_pool_id: &resources.user_pool_id,
        upload_bucket: &resources.upload_bucket,
        export_bucket: &resources.export_bucket,
        vector_buckets: &resources.vector_buckets,
        s3: &s3,
        templates: &templates,
        iterations: args.iterations,
        purge_members: args.purge_members,
    };
    let mut results = Vec::new();
    for (k, s) in scenarios.iter().enumerate() {
        let def = s.def();
        // A fresh table per scenario: scenarios do not see each other's writes.
        let table = format!("{TABLE}-{:02}", k + 1);
        let seeded = Instant::now();
        seed::create_table(&dynamo, &table).await?;
        let store = store::Store::new(dynamo.clone(), table.as_str(), store::CursorKey::new(CURSOR_SECRET));
        let invitations = if s.who() == Some(Who::Invitee) { args.iterations + 1 } else { 0 };
        let mut fixture = seed::seed(&store, args.members, invitations, s.needs_workload()).await?;
        if s.needs_inbox() {
            seed::inbox(&store, &fixture).await?;
        }
        let mut comments = String::new();
        if let Some((batches, per_batch)) = s.comment_events(args.iterations + 1) {
            fixture.comment_events = seed::comment_events(&store, &fixture, batches, per_batch).await?;
            comments = format!(", {} comment events", batches * per_batch);
        }
        let mut chat = String::new();
        if let EventSpec::ChatTurn { indexed_chunks, .. } = s.event {
            fixture.conversation_id = Some(seed::conversation(&store, &fixture, seed::CONVERSATION_TURNS).await?);
            chat = format!(", a conversation of {} turns", seed::CONVERSATION_TURNS);
            if indexed_chunks > 0 {
                let corpus = seed::corpus(&store, &s3vectors, &resources.vector_buckets, &fixture, indexed_chunks).await?;
                chat.push_str(&format!(" and {} chunks of {} documents in the org's vector index", corpus.chunks, corpus.files));
                fixture.corpus = Some(corpus);
            }
        }
        if s.per_invocation == PerInvocation::ReadyDocument {
            fixture.document = Some(seed::DocumentText(seed::document_text(0, seed::DOCUMENT_PAGES).into()));
        }
        if let Some(sample) = s.sample() {
            let file = seed::SampleFile::new(sample);
            if s.per_invocation == PerInvocation::ScanResult {
                fixture.upload = Some(seed::upload(&store, &s3, &resources.upload_bucket, &fixture, &file, true).await?);
            }
            fixture.sample = Some(file);
        }
        if seeded.elapsed() > Duration::from_secs(2) {
            let workload = if s.needs_workload() { " and the projects workload" } else { "" };
            eprintln!("  (seeded {table} with {invitations} invitations{workload}{comments}{chat} in {:.1} s)", seeded.elapsed().as_secs_f64());
        }
        let mut result = run_scenario(&ctx, s, &def, &release.join(def.binary), &store, &fixture).await;
        result.zip_bytes = std::fs::metadata(args.lambda_dir.join(def.binary).join("bootstrap.zip")).ok().map(|m| m.len());
        result.binary_bytes = std::fs::metadata(release.join(def.binary)).ok().map(|m| m.len());
        result.check_budgets(&BUDGETS);
        eprintln!("{}", progress(&result));
        results.push(result);
    }

    let report = Report {
        machine: Machine::detect(&args.root),
        iterations: args.iterations,
        endpoint: "the local AWS endpoint (moto server)".into(),
        budgets: BUDGETS,
        results,
    };
    std::fs::create_dir_all(&args.out_dir)?;
    let md = report.markdown();
    std::fs::write(args.out_dir.join("results.md"), &md)?;
    std::fs::write(args.out_dir.join("results.json"), report.json() + "\n")?;
    println!("{md}");
    eprintln!("tenantry-bench: wrote {} and results.json in {:.0} s", args.out_dir.join("results.md").display(), started.elapsed().as_secs_f64());
    let incomplete = report.results.iter().filter(|r| r.error.is_some()).count();
    let failed_answers: usize = report.results.iter().map(|r| r.responses.total - r.responses.ok).sum();
    if failed_answers > 0 {
        eprintln!("tenantry-bench: warning: {failed_answers} invocation(s) did not succeed (see the OK column)");
    }
    if incomplete > 0 {
        eprintln!("tenantry-bench: {incomplete} scenario(s) could not be measured completely");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

struct Ctx<'a> {
    endpoint: &'a str,
    user_pool_id: &'a str,
    /// The bench stack's upload bucket (`provision` made it).
    upload_bucket: &'a str,
    /// The bench stack's exports bucket (`provision` made it).
    export_bucket: &'a str,
    /// The bench stack's vector buckets (`provision` made them).
    vector_buckets: &'a store::VectorBuckets,
    /// On the local endpoint, buckets addressed by path.
    s3: &'a aws_sdk_s3::Client,
    templates: &'a Templates,
    iterations: usize,
    /// Members of each org a purge invocation purges, besides its owner.
    purge_members: usize,
}

/// The function's own environment: the table and cursor secret, what the registry says the
/// infrastructure sets on it (with the local stack's values, `provision::function_vars`),
/// and the SDK's settings for the local endpoint.
fn function_env(ctx: &Ctx, def: &FunctionDef, table: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("TABLE_NAME", table),
        ("CURSOR_SECRET", CURSOR_SECRET),
        ("RUST_LOG", "info"),
        ("AWS_ENDPOINT_URL", ctx.endpoint),
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_SESSION_TOKEN", "bench"),
        // 200 warm requests of one caller a minute would pass the plans' rate limits: every
        // request still pays the limit check (its round trip is in the figures), none is refused
        ("RATE_LIMIT_MULTIPLIER", "1000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if def.environment.user_pool_id {
        env.push(("USER_POOL_ID".to_owned(), ctx.user_pool_id.to_owned()));
    }
    if def.environment.api_url {
        env.push(("API_URL".to_owned(), API_URL.to_owned()));
    }
    if def.environment.ses_configuration_set {
        env.push(("SES_CONFIGURATION_SET".to_owned(), SES_CONFIGURATION_SET.to_owned()));
    }
    if def.environment.upload_bucket {
        env.push(("UPLOAD_BUCKET".to_owned(), ctx.upload_bucket.to_owned()));
    }
    if def.environment.export_bucket {
        env.push(("EXPORT_BUCKET".to_owned(), ctx.export_bucket.to_owned()));
    }
    if def.environment.vector_buckets {
        env.push((store::vectors::VECTOR_BUCKET_PREFIX_ENV.to_owned(), ctx.vector_buckets.prefix.clone()));
        env.push((store::vectors::VECTOR_BUCKETS_ENV.to_owned(), ctx.vector_buckets.count.to_string()));
    }
    let mut vars: Vec<(String, String)> = provision::function_vars(APP_URL, def.environment.ses_from_address).into_iter().collect();
    vars.sort();
    env.extend(vars);
    env
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// How an answer reads: the key it is counted under, whether it is a success, whether it is
/// a function error. A streamed answer is read as Lambda reads it: an HTTP answer by the status
/// of its metadata prelude, and a failure reported in its trailers is a function error.
fn judge(kind: Kind, outcome: &Outcome) -> (String, bool, bool) {
    let json = |body: &[u8]| serde_json::from_slice::<serde_json::Value>(body).ok();
    let body = match outcome {
        Outcome::Error { error_type, .. } => return (format!("error:{}", error_type.as_deref().unwrap_or("unknown")), false, true),
        Outcome::Streamed(Streamed { error: Some(e), .. }) => return (format!("stream error:{}", e.error_type), false, true),
        Outcome::Streamed(s) if kind == Kind::Http => {
            let key = s.status().map(|s| s.to_string()).unwrap_or_else(|| "no prelude".into());
            return (key, s.status().is_some_and(|s| (200..300).contains(&s)), false);
        }
        Outcome::Response(body) | Outcome::Streamed(Streamed { body, .. }) => body,
    };
    match kind {
        // A 2xx status.
        Kind::Http => {
            let status = json(body).and_then(|v| v["statusCode"].as_u64());
            let key = status.map(|s| s.to_string()).unwrap_or_else(|| "unparsable".into());
            (key, status.is_some_and(|s| (200..300).contains(&s)), false)
        }
        // Any answer: a refusal is a function error.
        Kind::CognitoTrigger => ("ok".into(), true, false),
        // Every record done: `{"batchItemFailures": []}`.
        Kind::Stream | Kind::Queue => match json(body).and_then(|v| v.get("batchItemFailures")?.as_array().map(Vec::len)) {
            Some(0) => ("ok".into(), true, false),
            Some(n) => (format!("{n} failed record(s)"), false, false),
            None => ("unparsable".into(), false, false),
        },
        // Nothing to answer: `null`.
        Kind::Schedule | Kind::Bus => match json(body) {
            Some(serde_json::Value::Null) => ("ok".into(), true, false),
            _ => ("unexpected answer".into(), false, false),
        },
    }
}

/// Records one answer (see [`judge`]). `problem`: what the harness found wrong after the
/// invocation (an org it should have purged is still there), which fails a successful answer.
fn record(result: &mut ScenarioResult, kind: Kind, done: &Completed, problem: Option<String>) {
    let body = match &done.outcome {
        Outcome::Streamed(Streamed { error: Some(e), .. }) => &e.body,
        other => other.body(),
    };
    let (key, ok, function_error) = judge(kind, &done.outcome);
    match problem {
        Some(problem) if ok => result.responses.record("not done".into(), false, false, problem.as_bytes()),
        _ => result.responses.record(key, ok, function_error, body),
    }
}

/// Seeds what invocation `i` needs and builds its event.
async fn prepare(ctx: &Ctx<'_>, s: &Scenario, store: &store::Store, fixture: &Fixture, i: usize) -> Result<(Invocation, Prepared), String> {
    let prepared = match s.per_invocation {
        PerInvocation::Nothing => Prepared::default(),
        PerInvocation::DeletedOrg => {
            let org = seed::deleted_org(store, &fixture.operator, ctx.purge_members, i).await.map_err(|e| format!("seeding invocation {i}: {e}"))?;
            Prepared { deleted_org: Some(org), ..Prepared::default() }
        }
        PerInvocation::RemovedMember => {
            let member = seed::removed_member(store, fixture, i).await.map_err(|e| format!("seeding invocation {i}: {e}"))?;
            Prepared { removed_member: Some(member), ..Prepared::default() }
        }
        PerInvocation::DeletedProject => {
            let project = seed::deleted_project(store, fixture, seed::DELETED_PROJECT_TASKS, i).await.map_err(|e| format!("seeding invocation {i}: {e}"))?;
            Prepared { deleted_project: Some(project), ..Prepared::default() }
        }
        PerInvocation::CommentEvents => {
            let events = fixture
                .comment_events
                .get(i)
                .cloned()
                .ok_or_else(|| format!("invocation {i} has no comment events ({} batches seeded)", fixture.comment_events.len()))?;
            Prepared { comment_events: Some(events), ..Prepared::default() }
        }
        PerInvocation::DueDigests => {
            let due = seed::due_digests(store, fixture, i).await.map_err(|e| format!("seeding invocation {i}: {e}"))?;
            Prepared { due_digests: Some(due), ..Prepared::default() }
        }
        PerInvocation::BouncedAddress => Prepared { bounced: Some(seed::bounced_address(i)), ..Prepared::default() },
        PerInvocation::NewUpload => {
            let file = fixture.sample.as_ref().ok_or_else(|| format!("{}: no sample made", s.name))?;
            let upload = seed::upload(store, ctx.s3, ctx.upload_bucket, fixture, file, false).await.map_err(|e| format!("seeding invocation {i}: {e}"))?;
            Prepared { upload: Some(upload), sequencer: Some(seed::sequencer(i)), ..Prepared::default() }
        }
        PerInvocation::ScanResult => Prepared { scan: Some(i as u64 + 1), ..Prepared::default() },
        PerInvocation::ExpiredUpload => {
            let expired = seed::expired_upload(store, fixture, i).await.map_err(|e| format!("seeding invocation {i}: {e}"))?;
            Prepared { expired_upload: Some(expired), ..Prepared::default() }
        }
        PerInvocation::ReadyDocument => {
            let text = fixture.document.as_ref().ok_or_else(|| format!("{}: no document text made", s.name))?;
            let document =
                seed::ready_document(store, ctx.s3, ctx.upload_bucket, fixture, &text.0, i).await.map_err(|e| format!("seeding invocation {i}: {e}"))?;
            Prepared { document: Some(document), ..Prepared::default() }
        }
        PerInvocation::StartedExport => {
            let export = seed::started_export(store, fixture).await.map_err(|e| format!("seeding invocation {i}: {e}"))?;
            Prepared { export: Some(export), ..Prepared::default() }
        }
    };
    let event = ctx.templates.build(s, fixture, i, &prepared)?;
    Ok((Invocation::json(&event), prepared))
}

/// What is wrong after a successful answer: the invocation's export is not complete, its org
/// or project is still there, its removed member still has tasks, a mentioned member has no notification, a digest or
/// held-back mail is still due, a bounced address is not suppressed, the upload was not
/// processed to `ready` (with its sample's dimensions or pages), its scan result not recorded,
/// an expired upload not swept, or a document's chunks not indexed.
async fn check(store: &store::Store, fixture: &Fixture, prepared: &Prepared) -> Option<String> {
    if let Some(export) = &prepared.export {
        return match seed::export_problem(store, fixture, export).await {
            Ok(problem) => problem.map(|p| format!("answered, but {p}")),
            Err(e) => Some(format!("could not check export {}: {e}", export.export_id)),
        };
    }
    if let Some(document) = &prepared.document {
        return match seed::ingestion_problem(store, document).await {
            Ok(problem) => problem.map(|p| format!("answered, but {p}")),
            Err(e) => Some(format!("could not check the chunks of document {}: {e}", document.file_id)),
        };
    }
    if let Some(upload) = &prepared.upload {
        return match seed::processing_problem(store, upload, prepared.sequencer.as_deref()).await {
            Ok(problem) => problem.map(|p| format!("answered, but {p}")),
            Err(e) => Some(format!("could not check file {}: {e}", upload.file_id)),
        };
    }
    if let Some(n) = prepared.scan {
        let Some(upload) = &fixture.upload else { return Some("no upload was seeded".into()) };
        return match seed::scan_problem(store, upload, n).await {
            Ok(problem) => problem.map(|p| format!("answered, but {p}")),
            Err(e) => Some(format!("could not check the scan of file {}: {e}", upload.file_id)),
        };
    }
    if let Some(expired) = &prepared.expired_upload {
        return match seed::swept(store, expired).await {
            Ok(true) => None,
            Ok(false) => Some(format!("answered, but the expired upload {} is still there", expired.file_id)),
            Err(e) => Some(format!("could not check the expired upload {}: {e}", expired.file_id)),
        };
    }
    if let Some(events) = &prepared.comment_events {
        return match seed::mentions_missing(store, fixture, events).await {
            Ok(0) => None,
            Ok(n) => Some(format!("answered, but {n} of {} mentioned members have no notification", events.len())),
            Err(e) => Some(format!("could not check the notifications of the batch: {e}")),
        };
    }
    if let Some(due) = &prepared.due_digests {
        return match seed::digests_pending(store, due).await {
            Ok(0) => None,
            Ok(n) => Some(format!("answered, but {n} digests or held-back mails of {} members are still due", due.user_ids.len())),
            Err(e) => Some(format!("could not check the digests: {e}")),
        };
    }
    if let Some(address) = &prepared.bounced {
        return match seed::suppressed(store, address).await {
            Ok(true) => None,
            Ok(false) => Some(format!("answered, but {address} is not suppressed")),
            Err(e) => Some(format!("could not check the suppression of {address}: {e}")),
        };
    }
    if let Some(org) = &prepared.deleted_org {
        return match seed::purged(store, org).await {
            Ok(true) => None,
            Ok(false) => Some(format!("answered, but org {} is not purged", org.org_id)),
            Err(e) => Some(format!("could not check the purge of org {}: {e}", org.org_id)),
        };
    }
    if let Some(member) = &prepared.removed_member {
        return match seed::unassigned(store, fixture, member).await {
            Ok(true) => None,
            Ok(false) => Some(format!("answered, but removed member {} still has open tasks", member.user_id)),
            Err(e) => Some(format!("could not check the tasks of removed member {}: {e}", member.user_id)),
        };
    }
    let project = prepared.deleted_project.as_ref()?;
    match seed::project_purged(store, fixture, project).await {
        Ok(true) => None,
        Ok(false) => Some(format!("answered, but project {} is not purged", project.project_id)),
        Err(e) => Some(format!("could not check the purge of project {}: {e}", project.project_id)),
    }
}

/// What is wrong with a successful answer itself: a chat turn in an org whose index holds
/// documents that cites none of them (retrieval found nothing, and the turn measured no
/// retrieval).
fn answer_problem(s: &Scenario, outcome: &Outcome) -> Option<String> {
    let EventSpec::ChatTurn { indexed_chunks, .. } = s.event else { return None };
    if indexed_chunks == 0 {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_slice(outcome.body()).ok()?;
    let cited = answer.pointer("/answer/citations").and_then(serde_json::Value::as_array).is_some_and(|c| c.iter().any(|c| c["kind"] == "file"));
    (!cited).then(|| format!("answered, but the answer cites none of the {indexed_chunks} chunks of the org's documents (nothing was retrieved)"))
}

/// After an invocation's check: removes the objects of its upload, if it had one (answered),
/// or its document's text.
async fn tidy(ctx: &Ctx<'_>, prepared: Prepared) -> Option<Upload> {
    if let Some(document) = &prepared.document {
        seed::remove_text(ctx.s3, document).await;
    }
    let upload = prepared.upload?;
    seed::remove_objects(ctx.s3, &upload).await;
    Some(upload)
}

async fn run_scenario(ctx: &Ctx<'_>, s: &Scenario, def: &FunctionDef, binary: &Path, store: &store::Store, fixture: &Fixture) -> ScenarioResult {
    let mut result = ScenarioResult::new(def.binary, s.name);
    let timeout = Duration::from_secs(def.timeout_secs);
    let emulator = match Emulator::start(FunctionConfig::new(def.binary, timeout)).await {
        Ok(e) => e,
        Err(e) => {
            result.error = Some(format!("the emulator did not start: {e}"));
            return result;
        }
    };
    let mut env = lambda_env(&emulator, def.memory_mb);
    env.extend(function_env(ctx, def, store.table_name()));

    // The cold invocation is queued before the process exists, as Lambda holds the event
    // while the environment initializes.
    let (first, first_prepared) = match prepare(ctx, s, store, fixture, 0).await {
        Ok((e, prepared)) => (emulator.submit(e), prepared),
        Err(e) => {
            result.error = Some(e);
            return result;
        }
    };
    let mut process = match FunctionProcess::spawn(binary, &env) {
        Ok(p) => p,
        Err(e) => {
            result.error = Some(format!("could not start {}: {e}", binary.display()));
            return result;
        }
    };
    let spawned = process.spawned_at();
    let mut durations = Vec::with_capacity(ctx.iterations);
    let mut round_trips = Vec::with_capacity(ctx.iterations);
    // The last upload an invocation processed (processing scenarios).
    let mut last_upload = None;
    match process.wait(first, INIT_LIMIT + timeout).await {
        Ok(done) => {
            result.init_ms = emulator.first_next().map(|t| ms(t.saturating_duration_since(spawned)));
            result.first_response_ms = Some(ms(done.completed_at.saturating_duration_since(spawned)));
            let problem = check(store, fixture, &first_prepared).await.or_else(|| answer_problem(s, &done.outcome));
            record(&mut result, s.kind(), &done, problem);
            last_upload = tidy(ctx, first_prepared).await;
            let cpu_before = process.cpu_ms();
            for i in 1..=ctx.iterations {
                // The fake model's transcript of the last invocation alone (see `model`).
                if s.calls_the_model()
                    && i == ctx.iterations
                    && let Err(e) = model::clear_transcript(model::authority(ctx.endpoint)).await
                {
                    result.model_error = Some(e);
                }
                let (pending, prepared) = match prepare(ctx, s, store, fixture, i).await {
                    Ok((e, prepared)) => (emulator.submit(e), prepared),
                    Err(e) => {
                        result.error = Some(e);
                        break;
                    }
                };
                match process.wait(pending, timeout + Duration::from_secs(2)).await {
                    Ok(done) => {
                        durations.push(ms(done.duration()));
                        round_trips.push(ms(done.round_trip()));
                        let problem = check(store, fixture, &prepared).await.or_else(|| answer_problem(s, &done.outcome));
                        record(&mut result, s.kind(), &done, problem);
                        last_upload = tidy(ctx, prepared).await.or(last_upload);
                    }
                    Err(e) => {
                        result.error = Some(format!("warm invocation {i}: {e}"));
                        break;
                    }
                }
            }
            if let (Some(before), Some(after)) = (cpu_before, process.cpu_ms())
                && !durations.is_empty()
            {
                result.warm_cpu_ms = Some((after - before) / durations.len() as f64);
            }
        }
        Err(e) => {
            result.init_ms = emulator.first_next().map(|t| ms(t.saturating_duration_since(spawned)));
            let init_error = emulator
                .init_error()
                .map(|ie| format!("; init error {}: {}", ie.error_type.unwrap_or_default(), String::from_utf8_lossy(&ie.body)))
                .unwrap_or_default();
            result.error = Some(format!("cold invocation: {e}{init_error}"));
        }
    }
    // The last processed upload, read back once more after the run: a scenario whose file did
    // not end `ready` (with its sample's dimensions or pages) is not a measurement of processing.
    if s.per_invocation == PerInvocation::NewUpload
        && result.error.is_none()
        && let Some(upload) = &last_upload
    {
        match seed::processing_problem(store, upload, None).await {
            Ok(None) => {}
            Ok(Some(problem)) => result.error = Some(format!("after the run: {problem}")),
            Err(e) => result.error = Some(format!("after the run, reading file {} back: {e}", upload.file_id)),
        }
    }
    if s.calls_the_model() && result.error.is_none() && result.model_error.is_none() {
        let authority = model::authority(ctx.endpoint);
        match model::transcript(authority).await {
            Ok(calls) if calls.is_empty() => result.model_error = Some("the last invocation made no model call".into()),
            Ok(calls) => match model::time_calls(authority, &calls).await {
                Ok(time) => result.model = Some(model::ModelTime { overlapping: s.per_invocation == PerInvocation::ReadyDocument, ..time }),
                Err(e) => result.model_error = Some(e),
            },
            Err(e) => result.model_error = Some(e),
        }
    }
    result.warm_invocations = durations.len();
    result.warm_ms = Summary::of(&durations);
    result.warm_round_trip_ms = Summary::of(&round_trips);
    result.after_answer_ms = Summary::of(&emulator.after_answer().into_iter().map(ms).collect::<Vec<_>>());
    result.peak_rss_bytes = process.peak_rss_bytes();
    let output = process.stop().await;
    result.calls = CallSummary::of(&output.invocations);
    if let Some(e) = &mut result.error {
        let tail: Vec<&str> = output.tail.iter().rev().take(6).map(String::as_str).collect();
        if !tail.is_empty() {
            e.push_str(&format!(" | last output: {}", tail.into_iter().rev().collect::<Vec<_>>().join(" / ")));
        }
    }
    result
}

fn progress(r: &ScenarioResult) -> String {
    let f = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into());
    let mut line = format!(
        "  {:<17} {:<34} init {:>6} ms  first {:>7} ms  p50 {:>6} ms  p95 {:>6} ms  p99 {:>6} ms  cpu {:>5} ms  rss {:>5} MB  ok {}/{}",
        r.function,
        r.scenario,
        f(r.init_ms),
        f(r.first_response_ms),
        f(r.warm_ms.as_ref().map(|s| s.p50)),
        f(r.warm_ms.as_ref().map(|s| s.p95)),
        f(r.warm_ms.as_ref().map(|s| s.p99)),
        f(r.warm_cpu_ms),
        f(r.peak_rss_mb()),
        r.responses.ok,
        r.responses.total,
    );
    if let Some(a) = &r.after_answer_ms {
        line.push_str(&format!("\n    after the answer (the cost ledger's write): p50 {:.1} ms  p99 {:.1} ms", a.p50, a.p99));
    }
    if let Some(m) = &r.model {
        line.push_str(&format!("\n    the fake model, per invocation: {}", m.describe()));
    }
    if let Some(e) = &r.model_error {
        line.push_str(&format!("\n    the fake model's time could not be measured: {e}"));
    }
    if let Some(e) = &r.error {
        line.push_str(&format!("\n    error: {e}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(outcome: Outcome) -> Completed {
        let now = Instant::now();
        Completed { request_id: "r".into(), outcome, queued_at: now, dispatched_at: now, completed_at: now }
    }

    fn response(body: &str) -> Completed {
        answered(Outcome::Response(body.as_bytes().to_vec()))
    }

    #[test]
    fn answers_are_judged_as_lambda_reads_them() {
        let ok = |kind, body: &str| judge(kind, &response(body).outcome).1;
        assert!(ok(Kind::Http, r#"{"statusCode":200,"body":"{}"}"#));
        assert!(!ok(Kind::Http, r#"{"statusCode":409}"#));
        assert!(ok(Kind::Stream, r#"{"batchItemFailures":[]}"#));
        assert!(!ok(Kind::Stream, r#"{"batchItemFailures":[{"itemIdentifier":"4001"}]}"#));
        assert!(!ok(Kind::Stream, "null"));
        assert!(ok(Kind::Schedule, "null"));
        assert!(!ok(Kind::Schedule, r#"{"statusCode":200}"#));
        assert!(ok(Kind::Bus, "null"));
        assert!(!ok(Kind::Bus, r#"{"batchItemFailures":[]}"#));
        assert!(ok(Kind::CognitoTrigger, r#"{"response":{}}"#));
        let error = answered(Outcome::Error { error_type: Some("Unavailable".into()), body: b"{}".to_vec() });
        assert_eq!(judge(Kind::Stream, &error.outcome), ("error:Unavailable".into(), false, true));
    }

    #[test]
    fn functions_get_the_upload_bucket_when_the_registry_says_so() {
        let templates = Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")).unwrap();
        let ctx = Ctx {
            endpoint: "http://127.0.0.1:1",
            user_pool_id: "us-east-1_bench",
            upload_bucket: "tenantry-bench-uploads",
            export_bucket: "tenantry-bench-exports",
            vector_buckets: &store::VectorBuckets { prefix: "tenantry-bench-vectors".into(), count: 1 },
            s3: &aws_sdk_s3::Client::from_conf(aws_sdk_s3::Config::builder().behavior_version(aws_sdk_s3::config::BehaviorVersion::latest()).build()),
            templates: &templates,
            iterations: 1,
            purge_members: 0,
        };
        let bucket = |name: &str| {
            let env = function_env(&ctx, &scenarios::function(name).unwrap(), "tenantry-bench-01");
            env.into_iter().find(|(k, _)| k == "UPLOAD_BUCKET").map(|(_, v)| v)
        };
        assert_eq!(bucket("files").as_deref(), Some("tenantry-bench-uploads"));
        assert_eq!(bucket("org-purge").as_deref(), Some("tenantry-bench-uploads"));
        assert_eq!(bucket("organizations"), None);
        let exports = function_env(&ctx, &scenarios::function("exports").unwrap(), "tenantry-bench-01");
        assert!(exports.iter().any(|(k, v)| k == "EXPORT_BUCKET" && v == "tenantry-bench-exports"), "{exports:?}");
        assert!(!function_env(&ctx, &scenarios::function("files").unwrap(), "tenantry-bench-01").iter().any(|(k, _)| k == "EXPORT_BUCKET"));
        // Chat's configuration, as `chat::AppState::from_platform` reads it.
        let chat = function_env(&ctx, &scenarios::function("chat").unwrap(), "tenantry-bench-01");
        let var = |name: &str| chat.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        assert_eq!(var("UPLOAD_BUCKET").as_deref(), Some("tenantry-bench-uploads"));
        let buckets = store::VectorBuckets::from_vars(var).unwrap();
        assert_eq!((buckets.prefix.as_str(), buckets.count), ("tenantry-bench-vectors", 1));
        let files = function_env(&ctx, &scenarios::function("files").unwrap(), "tenantry-bench-01");
        assert!(!files.iter().any(|(k, _)| k == "VECTOR_BUCKET_PREFIX"), "only for functions the registry gives it to");
    }

    fn streamed(prelude: &str, body: &str, error: Option<(&str, &str)>) -> Completed {
        let mut data = prelude.as_bytes().to_vec();
        data.extend_from_slice(&[0; 8]);
        data.extend_from_slice(body.as_bytes());
        let mut s = Streamed::parse(Some(lambda_emulator::runtime_api::HTTP_INTEGRATION_RESPONSE), data, None);
        s.error = error.map(|(t, b)| lambda_emulator::StreamError { error_type: t.into(), body: b.as_bytes().to_vec() });
        answered(Outcome::Streamed(s))
    }

    #[test]
    fn a_retrieval_turn_must_cite_the_orgs_documents() {
        let retrieval = SCENARIOS.iter().find(|s| s.name == "retrieval on 10,000 chunks").unwrap();
        let turn = SCENARIOS.iter().find(|s| s.name == "chat turn").unwrap();
        let cited = streamed(r#"{"statusCode":201,"headers":{},"cookies":[]}"#, r#"{"answer":{"citations":[{"number":1,"kind":"file"}]}}"#, None);
        let uncited = streamed(r#"{"statusCode":201,"headers":{},"cookies":[]}"#, r#"{"answer":{"citations":[]}}"#, None);
        assert_eq!(answer_problem(retrieval, &cited.outcome), None);
        assert!(answer_problem(retrieval, &uncited.outcome).unwrap().contains("nothing was retrieved"));
        assert_eq!(answer_problem(turn, &uncited.outcome), None, "no documents to cite");
    }

    #[test]
    fn streamed_http_answers_are_judged_by_their_prelude() {
        let turn = streamed(r#"{"statusCode":201,"headers":{"content-type":"application/json"},"cookies":[]}"#, r#"{"answer":{}}"#, None);
        assert_eq!(judge(Kind::Http, &turn.outcome), ("201".into(), true, false));
        let busy = streamed(r#"{"statusCode":429,"headers":{},"cookies":[]}"#, r#"{"type":"model-throttled"}"#, None);
        assert_eq!(judge(Kind::Http, &busy.outcome), ("429".into(), false, false));
        let broken = streamed(r#"{"statusCode":200,"headers":{},"cookies":[]}"#, "event: delta\n", Some(("Runtime.StreamError", "the model went away")));
        assert_eq!(judge(Kind::Http, &broken.outcome), ("stream error:Runtime.StreamError".into(), false, true));
        let mut result = ScenarioResult::new("chat", "chat turn");
        record(&mut result, Kind::Http, &turn, None);
        record(&mut result, Kind::Http, &broken, None);
        assert_eq!((result.responses.ok, result.responses.errors), (1, 1));
        assert_eq!(result.responses.first_failure.as_deref(), Some("the model went away"));
        // A queue event answered in streaming mode is read by its body.
        let queue = answered(Outcome::Streamed(Streamed::parse(Some("application/json"), br#"{"batchItemFailures":[]}"#.to_vec(), None)));
        assert_eq!(judge(Kind::Queue, &queue.outcome), ("ok".into(), true, false));
        let no_prelude = answered(Outcome::Streamed(Streamed::parse(Some("application/octet-stream"), b"hello".to_vec(), None)));
        assert_eq!(judge(Kind::Http, &no_prelude.outcome), ("no prelude".into(), false, false));
    }

    #[test]
    fn a_success_that_left_its_work_undone_is_a_failure() {
        let mut result = ScenarioResult::new("org-purge", "deleted org (stream)");
        record(&mut result, Kind::Stream, &response(r#"{"batchItemFailures":[]}"#), None);
        record(&mut result, Kind::Stream, &response(r#"{"batchItemFailures":[]}"#), Some("org 01J is not purged".into()));
        record(&mut result, Kind::Stream, &response(r#"{"batchItemFailures":[{"itemIdentifier":"1"}]}"#), Some("org 01K is not purged".into()));
        let r = &result.responses;
        assert_eq!((r.total, r.ok, r.non_2xx, r.errors), (3, 1, 2, 0));
        assert_eq!(r.statuses.get("not done"), Some(&1));
        assert_eq!(r.statuses.get("1 failed record(s)"), Some(&1));
        assert_eq!(r.first_failure.as_deref(), Some("org 01J is not purged"));
    }
}
