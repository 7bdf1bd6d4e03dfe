//! The composed Windows MDM endpoint: Terms of Use, discovery, policy, enrollment (issue,
//! renew, recover) and OMA-DM management as request → response handlers on [`http`]
//! types, with device identity and enrollment security built in.
//!
//! The protocol crates (winmdm-tou, -enroll, -syncml, -entra) are each sound alone; this
//! crate decides what they decide together — which device a request is, who may replace a
//! device record, which certificate may renew, when the Terms-of-Use blob is required —
//! so a vendor's web framework only moves bytes. Like the other crates it is sans-I/O:
//! the clock, randomness and the client certificate the TLS layer verified are inputs
//! ([`Input`], [`Endpoint::with_entropy`]); storage is a [`Store`] you implement (or
//! [`MemoryStore`]); Entra keys are fetched with your HTTP client ([`keys`]).
//!
//! # Identity rules
//!
//! Every value a request carries is trusted only as far as something vouches for it:
//!
//! | question | answer | who vouches |
//! |---|---|---|
//! | who is the user? | a delegated token of a user ([`winmdm_entra::Principals::Users`]; app-only tokens are refused everywhere), with the configured scope | Entra's signature, issuer, tenant, audience |
//! | which device enrolls (Entra join, `Device`)? | the token's `deviceid` claim; the request's `DeviceID` context item and CSR extension must name the same GUID (any spelling: dashed, braced, 32 hex digits in either byte order, see [`winmdm_entra::DeviceId`]) | Entra |
//! | which device enrolls (work account, `Full`)? | the request's `DeviceID`, **unverified**: it creates a record, or replaces one of the same tenant and user (`oid`) only; another user's record is refused (SOAP fault `Authorization`) and stays untouched with its queue and history | nobody but the user |
//! | may an Entra-joined device replace its record? | yes, whichever user of its tenant enrolled it; never across tenants | Entra |
//! | how many devices per user? | at most [`EndpointConfig::max_devices_per_user`] (`MENROLL_E_DEVICECAPREACHED`) | the store, atomically |
//! | were the terms accepted? | the `OpaqueBlob` the Terms-of-Use page sealed for this tenant and user, required unless [`TermsOfUseBlob::NotRequired`] is configured | the sealing key |
//! | which device renews? | the one whose certificate signed the renewal (and matches the TLS client certificate, when one is presented) — for every enrollment type; after a renewal the previous certificate renews again only until the new one has been used once | the device's key |
//! | which device is a management message from? | the device whose current certificate the TLS layer verified, whatever `SyncHdr/Source` says; otherwise the one `Source` names, authenticated by its OMA-DM digest credentials | the device's key, or its digest secret |
//! | who is a session's user? | the `AADUserToken` alert's token, when it is a verified user token of the device's tenant with the configured scope | Entra |
//!
//! Issuance and session users are built only from [`winmdm_entra::Verified`] claims, which
//! only a validator makes.
//!
//! # Walkthrough
//!
//! The whole flow against an endpoint in memory, as Windows drives it (the testkit
//! supplies Entra's keys and a CA; the device side is written out here):
//!
//! ```
//! # use std::sync::Arc;
//! # use base64::Engine as _;
//! use winmdm_endpoint::{Components, Endpoint, EndpointConfig, Handled, Input, MemoryStore, Store};
//! use winmdm_entra::{KeyCache, KeySource, Policy, TokenVersion, Validator};
//! use winmdm_testkit::entra::{self, AccessToken, ALICE, CONTOSO, KEY_1};
//! use winmdm_testkit::pki;
//! # fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
//! #     let mut b = http::Request::builder().method(method).uri(uri);
//! #     for (k, v) in headers { b = b.header(*k, *v); }
//! #     b.body(()).unwrap().into_parts().0
//! # }
//! # fn body(h: Handled) -> (u16, String, http::HeaderMap) {
//! #     let Handled::Response(r) = h else { panic!("keys are static") };
//! #     (r.status().as_u16(), String::from_utf8(r.body().clone()).unwrap(), r.headers().clone())
//! # }
//! # fn between<'a>(s: &'a str, a: &str, b: &str) -> &'a str {
//! #     let i = s.find(a).unwrap() + a.len(); &s[i..i + s[i..].find(b).unwrap()]
//! # }
//!
//! // The endpoint: a store, a validator for Contoso's users, Terms-of-Use keys, a CA.
//! let now = entra::NOW;
//! let cache = KeyCache::new(vec![KeySource::static_jwks(
//!     entra::jwks([&KEY_1]).to_string().as_bytes(), CONTOSO.v2_issuer(), TokenVersion::V2).unwrap()]);
//! let policy = Policy::builder().allow_tenants([CONTOSO.id])
//!     .allow_audiences([entra::MDM_APP_ID]).build().unwrap();
//! let ca = &pki::INTERMEDIATE_CA;
//! let signer = winmdm_enroll::issue::LocalIssuer::new(
//!     ca.cert_der, ca.key_der, Vec::new(), ca.cert_der.to_vec()).unwrap();
//! let key = winmdm_tou::SealingKey::new("k1", &[7; 32]).unwrap();
//! let store = Arc::new(MemoryStore::new());
//! let endpoint = Endpoint::new(
//!     EndpointConfig::new("https://mdm.contoso.example"),
//!     Components {
//!         store: store.clone(),
//!         validator: Validator::new(policy, Arc::new(cache)),
//!         keyring: winmdm_tou::Keyring::new(key),
//!         terms: winmdm_tou::Terms::text("Contoso MDM", "Be nice."),
//!         signer: Arc::new(signer),
//!         issuing_ca: ca.cert_der.to_vec(),
//!     },
//! ).unwrap();
//! let input = Input::new(now);
//! // Alice adds her work account (a `Full` enrollment: her token names no device).
//! let token = AccessToken::v2(&CONTOSO, &ALICE).issued_at(now).sign();
//!
//! // 1. Terms of Use: the page, then the user accepts; the redirect carries the blob.
//! let uri = "/TermsOfUse?api-version=1.0&redirect_uri=ms-appx-web%3a%2f%2fMicrosoft.AAD.BrokerPlugin&client-request-id=1";
//! let bearer = format!("Bearer {token}");
//! let (status, page, _) = body(endpoint.handle(&parts("GET", uri, &[("authorization", &bearer)]), b"", input));
//! assert_eq!(status, 200);
//! let state = between(&page, "name=\"state\" value=\"", "\"");
//! let form = format!("state={state}&action=accept");
//! let post = parts("POST", "/TermsOfUse", &[("content-type", "application/x-www-form-urlencoded")]);
//! let (status, _, headers) = body(endpoint.handle(&post, form.as_bytes(), input));
//! assert_eq!(status, 302);
//! let location = headers["location"].to_str().unwrap();
//! let blob = url::Url::parse(location).unwrap().query_pairs()
//!     .find(|(k, _)| k == "OpaqueBlob").unwrap().1.into_owned();
//!
//! // 2. Discovery says where policy and enrollment are.
//! let (status, _, _) = body(endpoint.handle(&parts("GET", "/EnrollmentServer/Discovery.svc", &[]), b"", input));
//! assert_eq!(status, 200);
//!
//! // 3. Enrollment: the token, the blob and a CSR in a WS-Trust request.
//! let csr = &pki::DEVICE_RSA2048_CSR;
//! let rst = winmdm_testkit::requests::rst_issue(
//!     "https://mdm.contoso.example/EnrollmentServer/Enrollment.svc", &token, csr.csr_der,
//!     &[("DeviceID", csr.device_id), ("EnrollmentType", "Full"), ("EnrollmentData", &blob)]);
//! let post = parts("POST", "/EnrollmentServer/Enrollment.svc", &[("content-type", "application/soap+xml")]);
//! let (status, response, _) = body(endpoint.handle(&post, rst.as_bytes(), input));
//! assert_eq!(status, 200, "{response}");
//! // The response carries the certificate and the OMA-DM account in a provisioning document.
//! let doc = winmdm_enroll::issue::provisioning_doc_of(response.as_bytes()).unwrap();
//! assert!(doc.contains("wap-provisioningdoc"));
//! let device = store.devices().unwrap().pop().unwrap();
//! assert_eq!(device.user_oid, ALICE.oid);
//!
//! // 4. Management: the device's first OMA-DM message is challenged for its digest…
//! use winmdm_syncml::client::MessageBuilder;
//! let server = "https://mdm.contoso.example/ManagementServer/MDM.svc";
//! let hello = winmdm_syncml::encode(&MessageBuilder::new("1", 1, &device.device_id, server).alert_1201().build());
//! let post = parts("POST", "/ManagementServer/MDM.svc", &[("content-type", "application/vnd.syncml.dm+xml")]);
//! let (status, reply, _) = body(endpoint.handle(&post, hello.as_bytes(), input));
//! assert_eq!(status, 200);
//! assert!(reply.contains("<Data>407</Data>"), "{reply}");
//! // …and a message naming another device is refused before any session exists.
//! let stranger = winmdm_syncml::encode(&MessageBuilder::new("1", 1, "not-enrolled", server).alert_1201().build());
//! let (status, _, _) = body(endpoint.handle(&post, stranger.as_bytes(), input));
//! assert_eq!(status, 401);
//! # assert_eq!(store.traces_of("not-enrolled").unwrap(), 0);
//! ```
//!
//! `examples/actix-endpoint` and the reference server put this behind real web servers;
//! `docs/web-frameworks.md` says what a server must add (TLS client certificates, body
//! limits, a blocking pool for the store).
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod commands;
pub mod config;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod endpoint;
pub mod esp;
pub mod keys;
mod memory;
pub mod store;
pub mod wire;

pub use commands::CommandSpec;
pub use config::{EndpointConfig, Paths, TermsOfUseBlob};
pub use endpoint::{Checkpoints, Components, ConfigError, Endpoint, Handled, Input, Route};
pub use esp::{EspConfig, EspItem, EspPhase, EspState};
pub use memory::MemoryStore;
pub use store::{
    Admission, CheckIn, CommandRecord, Commit, CommitError, DeviceRecord, Enrolled, Queued,
    Replace, SessionWrite, StatusRecord, Store, StoreError, StoredEsp, StoredSession,
};
