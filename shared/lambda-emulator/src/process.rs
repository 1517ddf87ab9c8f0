//! A function's binary run as Lambda runs it: a fresh process with Lambda's environment,
//! pointed at an [`Emulator`], its stdout parsed for invocation log lines.

use std::collections::VecDeque;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::logs::{self, InvocationLog};
use crate::runtime_api::{Completed, Emulator, Pending};

/// Lines of output kept for error reports.
const TAIL_LINES: usize = 40;

/// The environment Lambda gives a function process (a custom runtime on `provided.al2023`),
/// for `emulator`'s function. The caller adds the function's own variables and the SDK's.
pub fn lambda_env(emulator: &Emulator, memory_mb: u32) -> Vec<(String, String)> {
    let c = emulator.config();
    let stream = format!("2026/01/01/[$LATEST]{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
    [
        ("AWS_LAMBDA_RUNTIME_API", emulator.runtime_api()),
        ("AWS_LAMBDA_FUNCTION_NAME", c.name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", c.name)),
        ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_REGION", c.region.clone()),
        ("AWS_DEFAULT_REGION", c.region.clone()),
        ("_HANDLER", "bootstrap".into()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".into()),
        ("LANG", "en_US.UTF-8".into()),
        ("TZ", ":UTC".into()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Why an invocation produced no outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// The process ended (crashed, or exited after an init error).
    Exited(String),
    /// No answer within the timeout.
    TimedOut(Duration),
    /// The emulator stopped.
    Stopped,
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Exited(status) => write!(f, "the function process exited ({status})"),
            RunError::TimedOut(d) => write!(f, "no answer within {} ms", d.as_millis()),
            RunError::Stopped => f.write_str("the emulator stopped"),
        }
    }
}

/// What a stopped process left behind.
#[derive(Debug, Clone)]
pub struct ProcessOutput {
    /// Invocation log lines (see [`logs`]), in order.
    pub invocations: Vec<InvocationLog>,
    /// The last lines of stdout and stderr.
    pub tail: Vec<String>,
    pub status: Option<ExitStatus>,
}

/// A running function process.
pub struct FunctionProcess {
    child: Child,
    pid: u32,
    spawned_at: Instant,
    exited: Option<ExitStatus>,
    tail: Arc<Mutex<VecDeque<String>>>,
    stdout: JoinHandle<Vec<InvocationLog>>,
    stderr: JoinHandle<()>,
}

impl FunctionProcess {
    /// Starts `binary` with exactly `env` (nothing inherited). Queue the first event before
    /// this to measure a cold start as Lambda sees it.
    pub fn spawn(binary: &Path, env: &[(String, String)]) -> std::io::Result<FunctionProcess> {
        let mut cmd = Command::new(binary);
        cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let spawned_at = Instant::now();
        let mut child = cmd.spawn()?;
        let pid = child.id().unwrap_or_default();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let stdout = tokio::spawn(read_lines(out, tail.clone(), true));
        let tail2 = tail.clone();
        let stderr = tokio::spawn(async move {
            read_lines(err, tail2, false).await;
        });
        Ok(FunctionProcess { child, pid, spawned_at, exited: None, tail, stdout, stderr })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    /// Waits for `pending`'s outcome, unless the process ends or `timeout` passes first.
    pub async fn wait(&mut self, pending: Pending, timeout: Duration) -> Result<Completed, RunError> {
        if let Some(status) = self.exited {
            return Err(RunError::Exited(status.to_string()));
        }
        tokio::select! {
            done = pending.wait() => done.ok_or(RunError::Stopped),
            status = self.child.wait() => {
                let status = status.map(|s| { self.exited = Some(s); s.to_string() }).unwrap_or_else(|e| e.to_string());
                Err(RunError::Exited(status))
            }
            _ = tokio::time::sleep(timeout) => Err(RunError::TimedOut(timeout)),
        }
    }

    /// Peak resident memory so far (`VmHWM`), in bytes; `None` once the process has ended.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        if self.exited.is_some() {
            return None;
        }
        crate::stats::peak_rss_bytes(self.pid)
    }

    /// CPU time used so far (every thread's), in milliseconds; `None` once the process has
    /// ended.
    pub fn cpu_ms(&self) -> Option<f64> {
        if self.exited.is_some() {
            return None;
        }
        crate::stats::cpu_ms(self.pid)
    }

    /// The last lines of output so far.
    pub fn tail(&self) -> Vec<String> {
        self.tail.lock().unwrap().iter().cloned().collect()
    }

    /// Kills the process (as Lambda does when it retires an environment) and collects its output.
    pub async fn stop(mut self) -> ProcessOutput {
        if self.exited.is_none() {
            let _ = self.child.start_kill();
        }
        let status = match self.exited {
            Some(s) => Some(s),
            None => tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.ok().and_then(Result::ok),
        };
        let invocations = tokio::time::timeout(Duration::from_secs(10), &mut self.stdout).await.ok().and_then(Result::ok).unwrap_or_default();
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.stderr).await;
        let tail = self.tail();
        ProcessOutput { invocations, tail, status }
    }
}

async fn read_lines(stream: impl AsyncRead + Unpin, tail: Arc<Mutex<VecDeque<String>>>, parse: bool) -> Vec<InvocationLog> {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    let mut found = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
        if parse && let Some(log) = logs::parse_line(&line) {
            found.push(log);
        }
        let mut t = tail.lock().unwrap();
        if t.len() == TAIL_LINES {
            t.pop_front();
        }
        t.push_back(if parse { line } else { format!("stderr: {line}") });
    }
    found
}
