//! Library behind the `winmdm` command.
//!
//! The command is a vendor's debugging tool for Windows MDM traffic. Each subcommand's
//! logic lives here as plain functions so it can be tested and fuzzed without a process.
//!
//! * [`explain`] — what an enrollment error code means (`winmdm explain 0x80180014`).
//! * [`token`] — decode (`winmdm token inspect`) and validate (`winmdm token validate`)
//!   Entra access tokens.
//! * [`enroll`] — inspect CSRs (`winmdm csr inspect`) and enrollment SOAP messages
//!   (`winmdm soap decode`).
//! * [`graph`] — report a device's compliance to Microsoft Graph with the MDM's app
//!   registration (`winmdm graph report-compliance`).
//! * [`simulate`] — a simulated Windows device against a server (`winmdm simulate`).
//! * [`input`] — every input read under one size cap.
//! * [`syncml`] — read (`winmdm syncml decode`) and check (`winmdm syncml check`) OMA-DM
//!   messages.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod enroll;
pub mod explain;
pub mod graph;
pub mod input;
pub mod simulate;
pub mod syncml;
pub mod token;

/// Entry points shared by the fuzz targets (`fuzz/`) and the corpus replay tests, so the
/// fuzzer and the test suite exercise exactly the same code.
pub mod fuzzing {
    /// What the `syncml` CLI path runs on a document (decode, render, check). Must never
    /// panic.
    pub fn syncml_one(data: &[u8]) {
        let _ = crate::syncml::decode_text(data);
        let _ = crate::syncml::check(data);
    }

    /// What the `explain` fuzz target runs on each input.
    pub fn explain_one(input: &str) {
        if let Ok(found) = crate::explain::explain(input) {
            let _ = crate::explain::render(&found);
        }
    }
}
