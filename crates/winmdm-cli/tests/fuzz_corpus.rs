//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the same entry
//! points the fuzz targets call, on stable, in the ordinary test run.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn explain_corpus_replays_without_panic() {
    let files = corpus("explain");
    assert!(files.len() >= 10, "seed corpus is missing");
    for (name, data) in files {
        let result = std::panic::catch_unwind(|| {
            if let Ok(input) = std::str::from_utf8(&data) {
                winmdm_cli::fuzzing::explain_one(input);
            }
        });
        assert!(result.is_ok(), "{name} panics");
    }
}
