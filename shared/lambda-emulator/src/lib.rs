//! A Lambda Runtime API emulator, and the benchmark harness built on it (`tenantry-bench`,
//! `make bench`): each function's release binary runs as Lambda runs it, against the local
//! AWS endpoint with a seeded table, and is measured: init, first response, warm latency,
//! peak memory, and the AWS calls each invocation made.

// A measuring tool, not a deployed function: its statistics turn counts and durations (far
// below 2^52) into floats and back, and a poisoned lock in the harness is a bug to stop on.
#![allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_possible_wrap, clippy::unwrap_used)]

pub mod logs;
pub mod model;
pub mod process;
pub mod report;
pub mod runtime_api;
pub mod scenarios;
pub mod seed;
pub mod stats;

pub use process::{FunctionProcess, ProcessOutput, RunError, lambda_env};
pub use runtime_api::{Completed, Emulator, FunctionConfig, InitError, Invocation, Outcome, Pending, StreamError, Streamed};
