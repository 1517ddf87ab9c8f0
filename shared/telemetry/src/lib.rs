//! What every function reports about itself: JSON logs on stdout as CloudWatch expects them,
//! and the AWS calls and round trips of each piece of work ([`record`], [`CallCounter`]).

mod calls;
mod usage;

pub use calls::*;
pub use usage::*;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static STARTED: OnceLock<Instant> = OnceLock::new();
static INIT_TAKEN: AtomicBool = AtomicBool::new(false);

/// The INIT phase's duration (from [`init_tracing`], the first thing every function's `main`
/// does, to `first_invocation`), once per process: the first caller gets it, later ones
/// `None`. It misses the time before `main` (the runtime's start and the binary's loading).
pub fn take_init_duration(first_invocation: Instant) -> Option<Duration> {
    let started = STARTED.get()?;
    if INIT_TAKEN.swap(true, Ordering::SeqCst) {
        return None;
    }
    Some(first_invocation.saturating_duration_since(*started))
}

/// JSON logs as CloudWatch expects, level from `RUST_LOG` (default info). Marks the start of
/// the INIT phase (see [`take_init_duration`]).
pub fn init_tracing() {
    STARTED.get_or_init(Instant::now);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().json().with_env_filter(filter).with_current_span(true).with_span_list(false).without_time().with_target(false).try_init();
}
