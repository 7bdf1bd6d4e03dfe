//! Shared helpers for winmdm's criterion benches (see `benches/`).
//!
//! Every bench measures a winmdm operation beside its *ceiling* — the raw library
//! operation it cannot beat (a bare quick-xml event scan, a bare aws-lc-rs verify or
//! sign) — in the same run, and reports the ratio. Run `cargo bench -p winmdm-benches`.

use std::path::PathBuf;

/// The reference SyncML message for the codec benches: `shared/bench/syncml-4k-client.xml`,
/// found by walking up from this package (or from `WINMDM_BENCH_DIR`).
///
/// # Panics
/// When the file cannot be found: a bench without its input is meaningless.
pub fn syncml_4k_client() -> Vec<u8> {
    let path = bench_file("syncml-4k-client.xml");
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn bench_file(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("WINMDM_BENCH_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|a| a.join("shared").join("bench").join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found above {}; set WINMDM_BENCH_DIR",
                here.display()
            )
        })
}

/// The ceiling for XML decoding (DESIGN.md): a `quick_xml::Reader` over the byte slice,
/// `read_event()` in a loop counting events, no unescaping, no namespace resolution.
pub fn ceiling_xml_event_scan(xml: &[u8]) -> usize {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut events = 0usize;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) | Err(_) => break,
            Ok(_) => events += 1,
        }
    }
    events
}
