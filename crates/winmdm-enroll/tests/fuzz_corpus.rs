//! Replays the committed enrollment fuzz corpora through the fuzz targets' entry points.

use std::path::PathBuf;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{target}: seed corpus missing");
    for path in files {
        let data = std::fs::read(&path).unwrap();
        let r = std::panic::catch_unwind(|| f(&data));
        assert!(r.is_ok(), "{} fails", path.display());
    }
}

#[test]
fn enrollment_corpora_replay() {
    replay("enroll_discovery", winmdm_enroll::fuzzing::discovery_one);
    replay("enroll_rst", winmdm_enroll::fuzzing::rst_one);
    replay("enroll_csr", winmdm_enroll::fuzzing::csr_one);
}
