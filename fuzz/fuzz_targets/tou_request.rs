//! The Terms-of-Use endpoint on arbitrary requests: no panic, and no redirect ever leaves
//! the `redirect_uri` policy (no open redirect).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    winmdm_tou::fuzzing::request_one(data);
});
