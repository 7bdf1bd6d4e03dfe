//! Fuzzes `winmdm explain`'s input parser and renderer: any string must give an answer or
//! a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = std::str::from_utf8(data) {
        winmdm_cli::fuzzing::explain_one(input);
    }
});
