//! Enrollment discovery parsing on arbitrary bytes: no panic; what we emit parses back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    winmdm_enroll::fuzzing::discovery_one(data);
});
