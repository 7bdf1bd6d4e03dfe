//! Replays the committed `token` fuzz corpus through the fuzz target's entry point, and
//! checks that the corpus's valid tokens still validate (so the corpus keeps reaching
//! deep into the validator).

use std::path::PathBuf;
use std::sync::Arc;

use winmdm_entra::{KeyCache, KeySource, Policy, TokenVersion, Validator};
use winmdm_testkit::entra as tk;

fn validator() -> Validator {
    // The same construction as fuzz/fuzz_targets/token.rs.
    let jwks = std::fs::read(format!(
        "{}/../winmdm-testkit/testdata/entra/jwks-common-v2.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let v2 = KeySource::static_jwks(&jwks, tk::V2_ISSUER_TEMPLATE, TokenVersion::V2).unwrap();
    let v1 = KeySource::static_jwks(&jwks, tk::V1_ISSUER_TEMPLATE, TokenVersion::V1).unwrap();
    let policy = Policy::builder()
        .allow_tenants([tk::CONTOSO.id])
        .allow_audiences([tk::MDM_APP_ID, tk::MDM_APP_ID_URI])
        .accept_v1()
        .build()
        .unwrap();
    Validator::new(policy, Arc::new(KeyCache::new(vec![v2, v1])))
}

#[test]
fn token_corpus_replays_without_panic() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/token");
    let v = validator();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 15, "seed corpus missing");
    for path in &files {
        let data = std::fs::read(path).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            winmdm_entra::fuzzing::token_one(&v, &data, tk::NOW)
        }));
        assert!(r.is_ok(), "{} panics", path.display());
    }
    let valid = std::fs::read_to_string(dir.join("v2-contoso-alice")).unwrap();
    let now = rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(tk::NOW));
    v.validate(&valid, now).unwrap();
}
