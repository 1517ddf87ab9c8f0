//! A Lambda Runtime API emulator, and the benchmark harness built on it (`tenantry-bench`,
//! `make bench`): each function's release binary runs as Lambda runs it, against the local
//! AWS endpoint with a seeded table, and is measured: init, first response, warm latency,
//! peak memory, and the AWS calls each invocation made.

pub mod logs;
pub mod process;
pub mod report;
pub mod runtime_api;
pub mod scenarios;
pub mod seed;
pub mod stats;

pub use process::{FunctionProcess, ProcessOutput, RunError, lambda_env};
pub use runtime_api::{Completed, Emulator, FunctionConfig, InitError, Invocation, Outcome, Pending};
