use std::sync::OnceLock;
use std::time::Duration;

use crate::endpoint as local_aws;
use aws_config::SdkConfig;

/// Environment variable that points tests at an already running endpoint instead.
pub const ENDPOINT_ENV: &str = "TENANTRY_AWS_ENDPOINT";

/// The running local AWS endpoint.
#[derive(Debug)]
pub struct LocalAws {
    pub endpoint: String,
    /// The endpoint's process when this binary started it (it stops itself when the binary
    /// exits: `--exit-with-parent`).
    #[allow(dead_code)]
    process: Option<std::sync::Mutex<std::process::Child>>,
}

static LOCAL_AWS: OnceLock<LocalAws> = OnceLock::new();

/// The endpoint of this test binary, started on first use. It exits with the test binary.
pub fn local_aws() -> &'static LocalAws {
    LOCAL_AWS.get_or_init(|| {
        if let Ok(endpoint) = std::env::var(ENDPOINT_ENV) {
            return LocalAws { endpoint, process: None };
        }
        let port = local_aws::free_port();
        let python = local_aws::python();
        let child = local_aws::spawn(&python, port, true, true)
            .unwrap_or_else(|e| panic!("cannot start the local AWS endpoint with {} (run `make venv`): {e}", python.display()));
        assert!(local_aws::wait_for(port, Duration::from_secs(60)), "the local AWS endpoint did not start");
        LocalAws { endpoint: format!("http://127.0.0.1:{port}"), process: Some(std::sync::Mutex::new(child)) }
    })
}

/// SDK configuration for this binary's local endpoint.
pub async fn sdk_config() -> SdkConfig {
    local_aws::sdk_config(&local_aws().endpoint).await
}
