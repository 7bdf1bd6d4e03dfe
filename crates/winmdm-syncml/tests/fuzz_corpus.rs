//! Replays the committed SyncML fuzz corpora through the fuzz targets' entry points.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let d = std::fs::read(&p).unwrap();
            (p, d)
        })
        .collect()
}

#[test]
fn decode_corpus_replays_without_panic() {
    let files = corpus("syncml_decode");
    assert!(files.len() >= 15, "seed corpus missing");
    for (path, data) in files {
        let r = std::panic::catch_unwind(|| winmdm_syncml::fuzzing::decode_one(&data));
        assert!(r.is_ok(), "{} panics", path.display());
    }
}

#[test]
fn roundtrip_corpus_holds() {
    let files = corpus("syncml_roundtrip");
    assert!(files.len() >= 15, "seed corpus missing");
    for (path, data) in files {
        let r = std::panic::catch_unwind(|| winmdm_syncml::fuzzing::roundtrip_one(&data));
        assert!(r.is_ok(), "{} breaks the round trip", path.display());
    }
}
