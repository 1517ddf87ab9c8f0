//! Writes the manifests the infrastructure and the Makefile read (`make manifest`):
//! `infra/functions.json` and `infra/routes.json`, rendered from the registry.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(root) = testkit::endpoint::repo_root() else {
        eprintln!("run this from inside the repository");
        return ExitCode::FAILURE;
    };
    for (file, text) in [("infra/functions.json", registry::render_functions()), ("infra/routes.json", registry::render_routes())] {
        let path = root.join(file);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {file}");
    }
    ExitCode::SUCCESS
}
