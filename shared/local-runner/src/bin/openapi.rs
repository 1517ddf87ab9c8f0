//! `make client`: writes the API's OpenAPI document, as the local runner serves it at
//! `/openapi.json`, to `shared/client/openapi.json`, which the typed client is generated from.
//! A test fails when the file is stale.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(root) = testkit::endpoint::repo_root() else {
        eprintln!("run this from inside the repository");
        return ExitCode::FAILURE;
    };
    let path = root.join(local_runner::server::CLIENT_OPENAPI);
    let text = match serde_json::to_string_pretty(&local_runner::server::openapi()) {
        Ok(text) => text + "\n",
        Err(e) => {
            eprintln!("cannot render the document: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {}", local_runner::server::CLIENT_OPENAPI);
    ExitCode::SUCCESS
}
