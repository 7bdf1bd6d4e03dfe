//! Replays the committed `tou_request` fuzz corpus through the fuzz target's entry point
//! (no panic; no redirect outside the policy).

use std::path::PathBuf;

#[test]
fn tou_request_corpus_replays() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/tou_request");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "seed corpus missing");
    for path in files {
        let data = std::fs::read(&path).unwrap();
        let r = std::panic::catch_unwind(|| winmdm_tou::fuzzing::request_one(&data));
        assert!(r.is_ok(), "{} fails", path.display());
    }
}
