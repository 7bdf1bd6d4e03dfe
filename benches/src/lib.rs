//! Shared helpers for winmdm's criterion benches (see `benches/`).
//!
//! Every bench measures a winmdm operation beside its *ceiling* — the raw library
//! operation it cannot beat (a bare quick-xml event scan, a bare aws-lc-rs verify or
//! sign) — in the same run, and reports the ratio. Run `cargo bench -p winmdm-benches`.

/// The reference SyncML message for the codec benches,
/// [`winmdm_testkit::samples::SYNCML_4K_CLIENT`] (bundled with the testkit).
pub fn syncml_4k_client() -> Vec<u8> {
    winmdm_testkit::samples::SYNCML_4K_CLIENT
        .as_bytes()
        .to_vec()
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
