//! The local AWS endpoint (moto in server mode behind the wrapper `local_aws.py`, which makes
//! it behave like AWS where tests depend on it): starting it, pointing the SDK at it, and
//! reading back what it holds (sent mail). `make dev`, the benchmarks and the tests share it.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// The region every local resource lives in.
pub const REGION: &str = "us-east-1";

/// The repository root, found at run time (never compiled in, so a moved checkout or a shared
/// build cache still works): `TENANTRY_ROOT` when set, else the nearest ancestor of the
/// working directory, then of the running executable, that holds the endpoint's script.
pub fn repo_root() -> Option<PathBuf> {
    if let Ok(root) = std::env::var("TENANTRY_ROOT") {
        return Some(PathBuf::from(root));
    }
    let holds_script = |d: &Path| d.join(SCRIPT).is_file();
    let from = |start: Option<PathBuf>| start.and_then(|s| s.ancestors().find(|d| holds_script(d)).map(Path::to_path_buf));
    from(std::env::current_dir().ok()).or_else(|| from(std::env::current_exe().ok()))
}

/// The endpoint's script, relative to the repository root.
const SCRIPT: &str = "shared/testkit/local_aws.py";

/// The virtualenv's Python (`make venv` creates it), or `TENANTRY_PYTHON`.
pub fn python() -> PathBuf {
    std::env::var("TENANTRY_PYTHON").map(PathBuf::from).unwrap_or_else(|_| repo_root().unwrap_or_default().join(".venv/bin/python"))
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

/// Starts the endpoint on `port`; with `exit_with_parent` it stops when this process does.
pub fn spawn(python: &Path, port: u16, exit_with_parent: bool, quiet: bool) -> std::io::Result<Child> {
    let root = repo_root().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{SCRIPT} not found above the working directory (run from the repository, or set TENANTRY_ROOT)"),
        )
    })?;
    let script = root.join(SCRIPT);
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

/// A plain HTTP/1.1 GET against the local endpoint (loopback only, no TLS), with the `Host`
/// header that selects the emulated service.
pub async fn http_get(endpoint: &str, path: &str, host: &str) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(authority).await.map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("bad HTTP response")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("GET {path}: {}", head.lines().next().unwrap_or("")));
    }
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return Err("chunked responses are not supported".into());
    }
    Ok(body.to_owned())
}

/// A mail the local SES accepted, as the endpoint's state API shows it (`ses.Message`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SentMail {
    pub source: String,
    pub subject: String,
    /// The HTML part when the mail has one, else the text part (moto's choice).
    pub body: String,
    pub destinations: serde_json::Value,
    /// The custom headers sent with the mail (SES v2 `Content.Simple.Headers`), in order. The
    /// wrapper records them; a message stored without them has none.
    #[serde(default)]
    pub headers: Vec<MailHeader>,
    /// The configuration set the mail was sent with (`ConfigurationSetName`).
    #[serde(default, rename = "configuration_set_name")]
    pub configuration_set: Option<String>,
    /// The text part, when the mail has one.
    #[serde(default, rename = "text_body")]
    pub text: Option<String>,
}

/// A custom header of a sent mail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct MailHeader {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Value")]
    pub value: String,
}

impl SentMail {
    pub fn is_to(&self, address: &str) -> bool {
        self.destinations["ToAddresses"].as_array().is_some_and(|a| a.iter().any(|v| v == address))
    }

    /// The value of the first custom header called `name` (compared case-insensitively, as
    /// header names are).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
    }
}

/// Every mail the local SES has accepted so far (read back from the endpoint's state API).
pub async fn sent_mail(endpoint: &str) -> Result<Vec<SentMail>, String> {
    let body = http_get(endpoint, "/moto-api/data.json", "motoapi.amazonaws.com").await?;
    let data: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    serde_json::from_value(data["ses"]["Message"].clone()).map_err(|e| e.to_string())
}

/// A plain HTTP/1.1 request with a JSON body to the local endpoint's own routes (loopback, no
/// TLS): the status and the body.
pub async fn http_json(endpoint: &str, method: &str, path: &str, body: &serde_json::Value) -> Result<(u16, serde_json::Value), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(authority).await.map_err(|e| e.to_string())?;
    let body = body.to_string();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("bad HTTP response")?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no status")?;
    Ok((status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_venv_and_the_script_are_found_from_the_working_directory() {
        // Tests run in their crate's folder, two levels below the root.
        let root = repo_root().expect("the tests run inside the repository");
        assert!(root.join(SCRIPT).is_file(), "{}", root.display());
        assert!(root.join("Makefile").is_file(), "{}", root.display());
        if std::env::var_os("TENANTRY_PYTHON").is_none() && std::env::var_os("TENANTRY_ROOT").is_none() {
            assert_eq!(python(), root.join(".venv/bin/python"));
        }
    }

    #[test]
    fn sent_mail_reads_the_recorded_headers_and_parses_messages_without_them() {
        let recorded: SentMail = serde_json::from_value(serde_json::json!({
            "id": "m1", "source": "a@x.test", "subject": "s", "body": "<p>b</p>",
            "destinations": {"ToAddresses": ["b@x.test"]},
            "headers": [
                {"Name": "List-Unsubscribe", "Value": "<https://x.test/u>"},
                {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
            ],
            "configuration_set_name": "notifications", "text_body": "b",
        }))
        .unwrap();
        assert!(recorded.is_to("b@x.test"));
        assert_eq!(recorded.header("list-unsubscribe"), Some("<https://x.test/u>"));
        assert_eq!(recorded.header("LIST-UNSUBSCRIBE-POST"), Some("List-Unsubscribe=One-Click"));
        assert_eq!(recorded.header("List-Id"), None);
        assert_eq!((recorded.configuration_set.as_deref(), recorded.text.as_deref()), (Some("notifications"), Some("b")));

        let null_fields: SentMail = serde_json::from_value(serde_json::json!({
            "source": "a@x.test", "subject": "s", "body": "b", "destinations": {},
            "headers": [], "configuration_set_name": null, "text_body": null,
        }))
        .unwrap();
        let older: SentMail = serde_json::from_value(serde_json::json!({"source": "a@x.test", "subject": "s", "body": "b", "destinations": {}})).unwrap();
        for mail in [null_fields, older] {
            assert!(mail.headers.is_empty() && mail.configuration_set.is_none() && mail.text.is_none());
            assert!(!mail.is_to("b@x.test"));
        }
    }
}
