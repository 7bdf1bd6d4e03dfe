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
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod alerts;
pub mod auth;
pub mod check;
pub mod client;
mod codes;
mod decode;
pub mod dmclient;
mod encode;
mod model;
pub mod scope;
pub mod session;
pub mod status;
mod text;

pub use codes::{AlertCode, CmdId, StatusCode};
pub use decode::{
    DecodeError, Decoded, Diagnostic, Fragment, Limits, SINGLETONS, Severity, decode,
    decode_fragment, decode_with, repair_documentation_artifacts,
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

    /// Decode, check and (if it decodes) encode any bytes. Must never panic; a message
    /// it accepts passes [`assert_accepted`].
    pub fn decode_one(data: &[u8]) {
        if let Ok(d) = crate::check::check_document(data, &Limits::default()) {
            let _ = encode_fragment(&d.value);
        }
        if crate::decode(data).is_ok() {
            assert_accepted(data);
        }
    }

    /// What every message the decoder accepts satisfies, checked apart from the
    /// decoder: UTF-8 of XML `Char`s only; nothing but white space, comments and
    /// processing instructions around the one root; no element of [`crate::SINGLETONS`]
    /// twice in the header, its target and source, its credentials, or a `Status`.
    ///
    /// # Panics
    /// When the message breaks one of these (the decoder accepted what it must refuse).
    #[allow(clippy::expect_used)] // An oracle: failing loudly is its job.
    pub fn assert_accepted(data: &[u8]) {
        use quick_xml::events::Event;

        let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
        let text = std::str::from_utf8(data).expect("accepted: not UTF-8");
        assert!(
            !text.chars().any(|c| matches!(c,
                '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')),
            "accepted: a character outside Char"
        );
        let trimmed = text.trim_matches([' ', '\t', '\r', '\n']);
        assert!(
            trimmed.starts_with('<') && trimmed.ends_with('>'),
            "accepted: text before or after the root"
        );
        let table = |key: &str| {
            crate::SINGLETONS
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(&[][..], |(_, names)| *names)
        };
        // The open elements' local names, and the children each has had.
        let mut path: Vec<(String, Vec<String>)> = Vec::new();
        let mut roots = 0;
        let mut reader = quick_xml::Reader::from_str(text);
        loop {
            let event = reader.read_event().expect("accepted: quick-xml refuses it");
            let (e, opens) = match event {
                Event::Start(e) => (e, true),
                Event::Empty(e) => (e, false),
                Event::End(_) => {
                    path.pop();
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let name = e.local_name().as_ref().to_owned();
            if path.is_empty() {
                roots += 1;
            }
            let names: Vec<&str> = path.iter().map(|(n, _)| n.as_str()).collect();
            let key = match names.as_slice() {
                ["SyncML"] => "SyncML",
                ["SyncML", "SyncHdr"] => "SyncHdr",
                ["SyncML", "SyncHdr", "Target" | "Source"] => "Target/Source",
                ["SyncML", "SyncHdr", "Cred"] => "Cred",
                ["SyncML", "SyncBody", "Status"] => "Status",
                _ => "",
            };
            if let Some((_, seen)) = path.last_mut() {
                if table(key).contains(&name.as_str()) {
                    assert!(!seen.contains(&name), "accepted: two {name} in {key}");
                }
                seen.push(name.clone());
            }
            if opens {
                path.push((name, Vec::new()));
            }
        }
        assert_eq!(roots, 1, "accepted: {roots} root elements");
    }

    /// Separates the client messages in a `session` fuzz input.
    pub const SESSION_SEPARATOR: &[u8] = b"\n--next--\n";

    /// Drives a DM session with the client messages in `data` (separated by
    /// [`SESSION_SEPARATOR`]). Invariants: no panic, no reply above `MaxMsgSize`, every
    /// reply decodes to itself. Returns the final state (callers check that it survives a
    /// serde round trip).
    pub fn session_one(data: &[u8]) -> crate::session::SessionState {
        use crate::auth::Nonce;
        use crate::scope::{EnrollmentType, SessionUser};
        use crate::session::{
            Authenticated, Inbound, QueuedCommand, Session, SessionConfig, Verdict,
        };
        use crate::{Command, decode};

        let config = SessionConfig::new(EnrollmentType::Device)
            .with_max_msg_size(2048)
            .with_max_object_size(65_536);
        let mut session = Session::new(config, Nonce::from_bytes(vec![1; 16]));
        let queue = [
            Command::get(1u32, ["./DevDetail/SwV", "./Vendor/MSFT/Logs"]),
            Command::replace(1u32, "./Vendor/MSFT/Blob", "chr", "<&>".repeat(1500)),
            Command::replace(1u32, "./User/Vendor/MSFT/P", "int", "1"),
            Command::atomic(
                1u32,
                vec![
                    Command::add(1u32, "./A", "int", "1"),
                    Command::delete(1u32, ["./B"]),
                ],
            ),
        ];
        for (i, c) in queue.into_iter().enumerate() {
            let _ = session.queue(QueuedCommand::new(format!("q{i}"), c));
        }
        let mut now = 1_000u64;
        for (i, part) in split(data, SESSION_SEPARATOR).take(16).enumerate() {
            let Ok(message) = decode(part) else { continue };
            now += u64::from(part.first().copied().unwrap_or(1));
            let inbound = match session.receive(message, now) {
                Ok(i) => i,
                Err(_) => continue,
            };
            let reply = match inbound {
                Inbound::Authenticate(step) => {
                    let verdict = if i % 3 == 2 {
                        Verdict::Digest {
                            username: "u",
                            password: "p",
                        }
                    } else {
                        Verdict::Certificate
                    };
                    match step.decide(verdict, Nonce::from_bytes(vec![2; 16])) {
                        Authenticated::Yes(mut ex) => {
                            while let Some(e) = ex.poll_event() {
                                if let crate::session::Event::UserToken(_) = e {
                                    ex.set_user(Some(SessionUser {
                                        tenant_id: "t".into(),
                                        object_id: "o".into(),
                                        guest: i % 2 == 1,
                                    }));
                                }
                            }
                            ex.reply()
                        }
                        Authenticated::Challenged(r)
                        | Authenticated::Refused(r)
                        | Authenticated::Repeat(r) => r,
                    }
                }
                Inbound::Expired(r) => r,
            };
            let xml = reply.to_xml();
            // Over the limit only when nothing can be left out: the header and its status
            // (without the optional refs) already exceed it, and nothing else is sent.
            let minimal = matches!(
                reply.message.body.commands.first(),
                Some(Command::Status(s)) if s.target_ref.is_empty() && s.source_ref.is_empty()
            ) && reply.message.body.commands[1..]
                .iter()
                .all(|c| matches!(c, Command::Alert(_)));
            assert!(
                xml.len() as u64 <= session.state().max_msg_size() || minimal,
                "reply of {} bytes above MaxMsgSize {}",
                xml.len(),
                session.state().max_msg_size(),
            );
            assert!(
                decode(xml.as_bytes()).is_ok_and(|m| m == reply.message),
                "reply does not decode to itself"
            );
        }
        session.into_state()
    }

    fn split<'a>(data: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut rest = Some(data);
        std::iter::from_fn(move || {
            let r = rest?;
            match memchr::memmem::find(r, sep) {
                Some(i) => {
                    rest = Some(&r[i + sep.len()..]);
                    Some(&r[..i])
                }
                None => {
                    rest = None;
                    Some(r)
                }
            }
        })
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
