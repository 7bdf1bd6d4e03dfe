//! Fuzzes SyncML decoding, conformance checking and encoding: any bytes must decode or
//! give a typed error, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    winmdm_syncml::fuzzing::decode_one(data);
    winmdm_cli::fuzzing::syncml_one(data);
});
