//! OMA-DM 1.2 SyncML for Windows MDM servers ([MS-MDM]).
//!
//! * [`decode`] / [`decode_with`] / [`decode_fragment`] — namespace-aware, order-preserving,
//!   limited ([`Limits`]), tolerant of what real clients and the documentation get wrong
//!   (reported as [`Diagnostic`]s), refusing DTDs and WBXML with typed [`DecodeError`]s;
//! * [`encode`] — the model back to XML in the recommended element order;
//! * the typed model ([`SyncMl`], [`Command`], [`Item`], …) with builders for the commands
//!   a server sends;
//! * [`alerts`] — Microsoft's alerts as typed values (1224 LoginStatus and AADUserToken,
//!   1226 unenroll and app results, 1201, 1222, 1223, 1225, …);
//! * [`status`] — the `Status` a server owes for each client command, and the client's
//!   `Status`/`Results` as typed outcomes;
//! * [`auth`] — OMA-DM MD5 digest (and opt-in basic) device credentials and challenges;
//! * [`scope`] — which commands may be sent now (Entra user/device scope rules);
//! * [`session`] — the sans-I/O DM session: authentication, correlation, scopes, large
//!   objects, persistence between requests;
//! * [`client`] — the device side, for tests and simulators;
//! * [`check`] — conformance diagnostics (duplicate or zero `CmdID`, missing header fields, …).
//!
//! ```
//! use winmdm_syncml::alerts::{KnownAlert, LoginStatus};
//! let msg = winmdm_syncml::decode(br#"<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr>
//!   <VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>1</MsgID>
//!   <Target><LocURI>https://mdm.example/</LocURI></Target><Source><LocURI>dev</LocURI></Source>
//!   </SyncHdr><SyncBody><Alert><CmdID>2</CmdID><Data>1224</Data><Item><Meta>
//!   <Type xmlns="syncml:metinf">com.microsoft/MDM/LoginStatus</Type>
//!   <Format xmlns="syncml:metinf">chr</Format></Meta><Data>user</Data></Item></Alert>
//!   <Final/></SyncBody></SyncML>"#)?;
//! let winmdm_syncml::Command::Alert(alert) = &msg.body.commands[0] else { unreachable!() };
//! assert_eq!(KnownAlert::from_alert(alert), KnownAlert::LoginStatus(LoginStatus::User));
//! # Ok::<(), winmdm_syncml::DecodeError>(())
//! ```
//!
//! WBXML (`application/vnd.syncml.dm+wbxml`) is not supported: such a body gets
//! [`DecodeError::Wbxml`] (answer HTTP 415).
//!
//! Specifications: [MS-MDM] §2.2–§3 (revision 15.0); OMA SyncML RepPro 1.2 and MetInf 1.2;
//! OMA DM RepPro 1.2; Microsoft Learn "OMA DM protocol support" and "Microsoft Entra
//! integration with MDM".
//!
//! [MS-MDM]: https://learn.microsoft.com/openspecs/windows_protocols/ms-mdm
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod alerts;
pub mod auth;
pub mod check;
pub mod client;
mod codes;
mod decode;
mod encode;
mod model;
pub mod scope;
pub mod session;
pub mod status;
mod text;

pub use codes::{AlertCode, CmdId, StatusCode};
pub use decode::{
    DecodeError, Decoded, Diagnostic, Fragment, Limits, Severity, decode, decode_fragment,
    decode_with, repair_documentation_artifacts,
};
pub use encode::{
    encode, encode_body, encode_command, encode_fragment, encode_header, encode_into,
    encoded_item_len,
};
pub use model::*;
pub use text::Text;

/// The media type of SyncML over HTTP (XML encoding).
pub const CONTENT_TYPE: &str = "application/vnd.syncml.dm+xml";
/// The media type of WBXML-encoded SyncML (not supported).
pub const CONTENT_TYPE_WBXML: &str = "application/vnd.syncml.dm+wbxml";

/// Entry points shared by the fuzz targets (`fuzz/`) and the corpus replay tests.
#[doc(hidden)]
pub mod fuzzing {
    use crate::{Limits, decode_fragment, encode_fragment};

    /// Decode, check and (if it decodes) encode any bytes. Must never panic.
    pub fn decode_one(data: &[u8]) {
        if let Ok(d) = crate::check::check_document(data, &Limits::default()) {
            let _ = encode_fragment(&d.value);
        }
    }

    /// The round-trip oracle: whatever decodes must encode to something that decodes to
    /// the same model.
    pub fn roundtrip_one(data: &[u8]) {
        let Ok(first) = decode_fragment(data, &Limits::default()) else {
            return;
        };
        let xml = encode_fragment(&first.value);
        let second = decode_fragment(xml.as_bytes(), &Limits::default());
        assert!(
            second.as_ref().is_ok_and(|s| s.value == first.value),
            "round trip changed the model:\ninput: {:?}\nencoded: {xml}\nsecond: {second:?}",
            String::from_utf8_lossy(data)
        );
    }
}
