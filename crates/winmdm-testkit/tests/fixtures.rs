//! Committed fixtures equal what the code mints today, and the corpus loader reads the
//! published samples.

use winmdm_testkit::{fixtures, samples};

#[test]
fn committed_fixtures_are_fresh() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    for (path, want) in fixtures::files() {
        let got = std::fs::read_to_string(root.join(&path))
            .unwrap_or_else(|e| panic!("{path}: {e}; run crates/winmdm-testkit/regen-testdata.sh"));
        assert_eq!(
            got, want,
            "{path} is stale; run crates/winmdm-testkit/regen-testdata.sh"
        );
    }
}

#[test]
fn sample_corpus_loads() {
    let all = samples::load().expect("the bundled corpus parses");
    assert_eq!(all.len(), 36);
    assert_eq!(all.first().unwrap().number, 1);
    assert_eq!(all.last().unwrap().number, 36);
    for s in &all {
        assert!(
            s.provenance.starts_with("<!--") || s.provenance.starts_with('#'),
            "{}: provenance line {:?}",
            s.file_name,
            s.provenance
        );
        assert!(!s.body.contains(&s.provenance), "{}", s.file_name);
    }
    let nwf: Vec<u32> = all
        .iter()
        .filter(|s| s.not_well_formed)
        .map(|s| s.number)
        .collect();
    assert_eq!(nwf, [10, 13, 25]);
    // Line 2 of several files is an XML declaration, legal only once line 1 is gone.
    let s24 = samples::get(24).unwrap().unwrap();
    assert!(s24.body.trim_start().starts_with("<"), "{}", s24.body);
    // A fragment yields its XML element without the prose and placeholders around it.
    for n in [22, 23, 32, 34, 35] {
        let s = samples::get(n).unwrap().unwrap();
        assert!(s.fragment);
        let parts = s.xml_parts();
        assert_eq!(parts.len(), 1, "{n}: {parts:?}");
        assert!(
            parts[0].trim_start().starts_with("<SyncBody>"),
            "{}",
            parts[0]
        );
        assert!(parts[0].trim_end().ends_with("</SyncBody>"), "{}", parts[0]);
        assert!(!parts[0].contains("..."), "{}", parts[0]);
        assert!(parts[0].contains("<Alert>"));
    }
}
