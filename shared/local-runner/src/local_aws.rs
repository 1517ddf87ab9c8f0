//! Starting the local AWS endpoint (moto in server mode, see `local_aws.py`) and pointing the
//! SDK at it.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// The region every local resource lives in.
pub const REGION: &str = "us-east-1";

/// The repository root (where `.venv` lives).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The virtualenv's Python (`make venv` creates it), or `TENANTRY_PYTHON`.
pub fn python() -> PathBuf {
    std::env::var("TENANTRY_PYTHON").map(PathBuf::from).unwrap_or_else(|_| repo_root().join(".venv/bin/python"))
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

/// Starts the endpoint on `port`; with `exit_with_parent` it stops when this process does.
pub fn spawn(python: &Path, port: u16, exit_with_parent: bool, quiet: bool) -> std::io::Result<Child> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("local_aws.py");
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(port.to_string()).stdin(Stdio::null());
    if exit_with_parent {
        cmd.arg("--exit-with-parent");
    }
    if quiet {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    cmd.spawn()
}

/// Waits until something listens on `port`.
pub fn wait_for(port: u16, timeout: Duration) -> bool {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// SDK configuration for the local endpoint: dummy credentials, one region, the store's retries.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "tenantry-local"))
        .retry_config(store::retry_config())
        .load()
        .await
}
