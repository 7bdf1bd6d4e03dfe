//! Library behind the `winmdm` command.
//!
//! The command is a vendor's debugging tool for Windows MDM traffic. Each subcommand's
//! logic lives here as plain functions so it can be tested and fuzzed without a process.
//!
//! * [`explain`] — what an enrollment error code means (`winmdm explain 0x80180014`).
//! * [`token`] — decode (`winmdm token inspect`) and validate (`winmdm token validate`)
//!   Entra access tokens.
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod explain;
pub mod token;

/// Entry points shared by the fuzz targets (`fuzz/`) and the corpus replay tests, so the
/// fuzzer and the test suite exercise exactly the same code.
pub mod fuzzing {
    /// What the `explain` fuzz target runs on each input: look it up and render the
    /// answer. Must never panic.
    pub fn explain_one(input: &str) {
        if let Ok(found) = crate::explain::explain(input) {
            let _ = crate::explain::render(&found);
        }
    }
}
