//! Replays every fuzz target over its seed corpus (`fuzz/corpus/<target>/`) and the crashes
//! found and fixed (`fuzz/regressions/<target>/`), on stable and without fuzzing, so a fixed
//! crash stays fixed.

use std::fs;
use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.expect("a directory entry").path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn every_target_replays_its_corpus_and_regressions() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    for (name, target) in fuzzing::TARGETS {
        assert!(fuzz.join("fuzz_targets").join(format!("{name}.rs")).is_file(), "no fuzz target file for {name}");
        let corpus = inputs(&fuzz.join("corpus").join(name));
        assert!(!corpus.is_empty(), "the corpus of {name} is empty");
        for file in corpus.iter().chain(&inputs(&fuzz.join("regressions").join(name))) {
            let data = fs::read(file).expect("a corpus file");
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                panic!("{name} panicked on {}", file.display());
            }
        }
    }
}
