//! Windows MDM enrollment for MDM servers.
//!
//! `winmdm-enroll` is the enrollment half of [winmdm](https://github.com/winmdm/winmdm):
//! the protocols a Windows device speaks after the Terms-of-Use page and before OMA-DM
//! management ([MS-MDE2] discovery, [MS-XCEP] policy, [MS-WSTEP] issuance and renewal).
//!
//! * [`discovery`] — the `GET` probe and `Discover` → `DiscoverResponse`;
//! * [`xcep`] — `GetPolicies` → `GetPoliciesResponse` from a typed certificate policy;
//! * [`wstep`] — `RequestSecurityToken`: token, PKCS#10 or PKCS#7, `AdditionalContext`;
//! * [`csr`] — Windows CSRs parsed permissively, proof of possession verified;
//! * [`issue`] — issuance in two steps through a [`issue::CertificateSigner`], and the
//!   RSTRC with the [`provisioning`] document;
//! * [`renewal`] — ROBO renewal and recovery;
//! * [`fault`] — errors and their one mapping to SOAP faults;
//! * [`enrollment_data`] — the trait through which the Terms-of-Use `OpaqueBlob` is
//!   verified (implemented by `winmdm-tou`);
//! * [`hresult`] — the `HRESULT`s Windows shows when enrollment fails.
//!
//! ```
//! use winmdm_enroll::hresult::HResult;
//!
//! // What a device reports in its event log when the MDM refused the OS edition:
//! let code: HResult = "0x80180014".parse()?;
//! assert_eq!(code, HResult::MENROLL_E_DEVICENOTSUPPORTED);
//! let entry = code.entry().expect("documented code");
//! assert_eq!(entry.message_id, Some("idErrorMDMNotSupported"));
//! assert_eq!(entry.errortype, Some("DeviceNotSupported"));
//! # Ok::<(), winmdm_enroll::hresult::ParseHResultError>(())
//! ```
//!
//! This crate stores nothing and performs no I/O: bytes in, XML out; time and randomness
//! come from the caller.
//!
//! Sources: Microsoft Learn "Microsoft Entra integration with MDM" § Error codes (the
//! included table `mdm-enrollment-error-codes.md`, 2023-04-06); [MS-MDE2] §2.2.10 (SOAP
//! fault subcodes, `errortype` values and `MENROLL_E_CUSTOMSERVERERROR`).
//!
//! [MS-MDE2]: https://learn.microsoft.com/openspecs/windows_protocols/ms-mde2
//! [MS-XCEP]: https://learn.microsoft.com/openspecs/windows_protocols/ms-xcep
//! [MS-WSTEP]: https://learn.microsoft.com/openspecs/windows_protocols/ms-wstep
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod csr;
pub mod discovery;
pub mod enrollment_data;
pub mod fault;
pub mod hresult;
pub mod issue;
pub mod provisioning;
pub mod renewal;
pub mod soap;
pub mod token;
pub mod wstep;
pub mod xcep;
mod xmlwf;

/// The HTTP response for a SOAP body: `application/soap+xml; charset=utf-8` and a
/// `Content-Length` (never chunked, as Windows requires).
pub fn soap_response(status: http::StatusCode, xml: String) -> http::Response<Vec<u8>> {
    let len = xml.len();
    let mut r = http::Response::new(xml.into_bytes());
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/soap+xml; charset=utf-8"),
    );
    r.headers_mut()
        .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    r
}

/// Entry points shared by the fuzz targets (`fuzz/`) and the corpus replay tests.
#[doc(hidden)]
pub mod fuzzing {
    /// Discovery: parse, and answer when it parses. Must never panic; what it accepts
    /// passes [`assert_accepted`].
    pub fn discovery_one(data: &[u8]) {
        match crate::discovery::parse_discover(data) {
            Ok(req) => {
                assert_accepted(data);
                let config = crate::discovery::DiscoveryConfig::federated("https://mdm.example/e");
                match crate::discovery::discover_response(&config, &req) {
                    Ok(xml) => assert!(
                        crate::soap::envelope(xml.as_bytes(), &Default::default()).is_ok(),
                        "our response does not parse"
                    ),
                    Err(e) => {
                        let _ = e.fault().to_xml(req.message_id.as_deref(), "t");
                    }
                }
            }
            Err(e) => {
                let xml = e.fault().to_xml(None, "t");
                assert!(
                    crate::fault::parse_fault(xml.as_bytes()).is_ok(),
                    "our fault does not parse"
                );
            }
        }
    }

    /// WSTEP: parse, read every context item, and try the CSR. Must never panic, and
    /// the streaming reader must read what the tree reads.
    pub fn rst_one(data: &[u8]) {
        let streamed = crate::wstep::parse_rst(data);
        let tree = crate::wstep::parse_rst_via_tree(data);
        match (&streamed, &tree) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "the streaming and tree readings differ"),
            (Err(a), Err(b)) => {
                let (a, b) = (a.fault(), b.fault());
                assert_eq!(
                    (a.subcode, a.errortype),
                    (b.subcode, b.errortype),
                    "the streaming and tree readings fail differently"
                );
            }
            _ => assert_eq!(
                streamed.is_ok(),
                tree.is_ok(),
                "one reading failed: streamed {streamed:?}, tree {tree:?}"
            ),
        }
        if let Ok(r) = streamed {
            assert_accepted(data);
            let c = &r.context;
            let _ = (
                c.enrollment_type(),
                c.device_id(),
                c.os_edition(),
                c.macs(),
                c.imeis(),
                c.ux_initiated(),
            );
            if let Ok(der) = r.csr_der() {
                let _ = crate::csr::inspect(&der);
            }
            let _ = r.pkcs7_der();
        }
    }

    /// What every accepted SOAP request satisfies, checked apart from the reader: UTF-8
    /// of XML `Char`s only; nothing but white space, comments and processing
    /// instructions around the one root; every prefix used declared; no element of
    /// [`crate::soap::SINGLETONS`] twice where the table puts it.
    ///
    /// # Panics
    /// When the document breaks one of these (the reader accepted what it must refuse).
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
        // Names: one colon at most, a declared prefix.
        let declared = |p: &str| p == "xml" || text.contains(&format!("xmlns:{p}"));
        let mut reader = quick_xml::Reader::from_str(text);
        let (mut roots, mut depth) = (0, 0usize);
        loop {
            let event = reader.read_event().expect("accepted: quick-xml refuses it");
            let (e, opens) = match event {
                Event::Start(e) => (e, true),
                Event::Empty(e) => (e, false),
                Event::End(_) => {
                    depth -= 1;
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            if depth == 0 {
                roots += 1;
            }
            if opens {
                depth += 1;
            }
            let mut names = vec![e.name().as_ref().to_owned()];
            for a in e.attributes().with_checks(false).flatten() {
                names.push(a.key.as_ref().to_owned());
            }
            for n in names {
                assert!(n.matches(':').count() <= 1, "accepted: the name {n}");
                if let Some((p, _)) = n.split_once(':') {
                    assert!(
                        p == "xmlns" || declared(p),
                        "accepted: undeclared prefix in {n}"
                    );
                }
            }
        }
        assert_eq!(roots, 1, "accepted: {roots} root elements");
        let root = crate::soap::parse(data, &crate::soap::Limits::default())
            .expect("accepted, but the tree reader refuses it");
        assert_singletons(&root);
    }

    /// No singleton twice, on the paths [`crate::soap::SINGLETONS`] names.
    fn assert_singletons(root: &crate::soap::Element) {
        fn once(parent: &crate::soap::Element, key: &str) {
            let names = crate::soap::SINGLETONS
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(&[][..], |(_, names)| *names);
            for name in names {
                let n = parent
                    .children
                    .iter()
                    .filter(|c| c.name.eq_ignore_ascii_case(name))
                    .count();
                assert!(n <= 1, "accepted: {n} {name} in {key}");
            }
        }
        once(root, "Envelope");
        if let Some(header) = root.child_named("Header") {
            once(header, "Header");
            if let Some(security) = header.child_named("Security") {
                once(security, "Security");
            }
        }
        if let Some(body) = root.child_named("Body") {
            assert!(
                body.children.len() <= 1,
                "accepted: a Body with several elements"
            );
            if let Some(rst) = body.child_named("RequestSecurityToken") {
                once(rst, "RequestSecurityToken");
            }
        }
    }

    /// CSR parsing and verification. Must never panic.
    pub fn csr_one(data: &[u8]) {
        let _ = crate::csr::inspect(data);
        let _ = crate::csr::parse(
            data,
            &crate::csr::KeyPolicy {
                min_rsa_bits: 1024,
                allow_ecdsa: true,
            },
        );
    }
}
