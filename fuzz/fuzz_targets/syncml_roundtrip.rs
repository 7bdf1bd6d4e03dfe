//! The round-trip oracle: whatever decodes must encode to XML that decodes to the same
//! model (panics otherwise, so the fuzzer reports it).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    winmdm_syncml::fuzzing::roundtrip_one(data);
});
