//! What every function reports about itself: JSON logs on stdout as CloudWatch expects them,
//! and the AWS calls and round trips of each piece of work ([`record`], [`CallCounter`]).

mod calls;
mod usage;

pub use calls::*;
pub use usage::*;

/// JSON logs as CloudWatch expects, level from `RUST_LOG` (default info).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().json().with_env_filter(filter).with_current_span(true).with_span_list(false).without_time().with_target(false).try_init();
}
