//! Drives a DM session with arbitrary client messages: no panic, no reply above
//! MaxMsgSize, replies decode to themselves, and the final state survives JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let state = winmdm_syncml::fuzzing::session_one(data);
    let json = serde_json::to_string(&state).expect("state serializes");
    let back: winmdm_syncml::session::SessionState =
        serde_json::from_str(&json).expect("state deserializes");
    assert_eq!(back, state, "state changed through JSON");
});
