use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// Environment variable that points tests at an already running endpoint instead.
pub const ENDPOINT_ENV: &str = "TENANTRY_AWS_ENDPOINT";

/// The running local AWS endpoint.
#[derive(Debug)]
pub struct LocalAws {
    pub endpoint: String,
}

static LOCAL_AWS: OnceLock<LocalAws> = OnceLock::new();

/// The endpoint of this test binary, started on first use. It exits with the test binary.
pub fn local_aws() -> &'static LocalAws {
    LOCAL_AWS.get_or_init(|| {
        if let Ok(endpoint) = std::env::var(ENDPOINT_ENV) {
            return LocalAws { endpoint };
        }
        let port = free_port();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = std::env::var("TENANTRY_PYTHON").map(PathBuf::from).unwrap_or_else(|_| root.join(".venv/bin/python"));
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("local_aws.py");
        Command::new(&python)
            .arg(&script)
            .arg(port.to_string())
            .arg("--exit-with-parent")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the local AWS endpoint with {} (run `make venv`): {e}", python.display()));
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "the local AWS endpoint did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        LocalAws { endpoint: format!("http://127.0.0.1:{port}") }
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

/// SDK configuration for the local endpoint: dummy credentials, one region, the store's retries.
pub async fn sdk_config() -> SdkConfig {
    let endpoint = &local_aws().endpoint;
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "testkit"))
        .retry_config(store::retry_config())
        .load()
        .await
}
