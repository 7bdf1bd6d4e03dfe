//! The Microsoft Entra Terms-of-Use protocol for Windows MDM servers.
//!
//! During Entra join (OOBE) and when a user adds a work account, Windows opens the MDM's
//! Terms-of-Use URL in a web view with `redirect_uri`, `client-request-id`, `api-version`,
//! `mode` and the user's Entra token; the MDM shows its terms and redirects back with the
//! user's decision (Microsoft Learn "Microsoft Entra integration with MDM" § Terms of Use
//! protocol semantics, § Terms of Use endpoint processing logic, § Terms Of Use Error
//! handling, § Themes).
//!
//! * [`request`] parses the request, checking `redirect_uri` against a [`RedirectPolicy`]
//!   before anything else (no open redirects), replacing a malformed `client-request-id`,
//!   reading the theme (`CXH-HOST`) and Windows version (`User-Agent`);
//! * [`TermsOfUse`] validates the token (with `winmdm-entra`), renders accessible themed
//!   pages whose forms carry only a sealed, expiring state token, lets the vendor insert
//!   steps (a one-time PIN) and choose the terms, and answers Accept (with a sealed
//!   `OpaqueBlob`), Decline (never on organization-owned devices) or the documented error
//!   redirects ([`outcome`]);
//! * [`BlobVerifier`] checks the `OpaqueBlob` when it comes back at enrollment as the
//!   `EnrollmentData` context item (it implements `winmdm-enroll`'s
//!   [`EnrollmentDataVerifier`](winmdm_enroll::enrollment_data::EnrollmentDataVerifier)).
//!
//! Sans-I/O: requests come in as `http::request::Parts` (and the form body as bytes),
//! responses go out as `http::Response<Vec<u8>>`, `now` and randomness come from the
//! caller. Nothing is stored on the server between pages.
//!
//! ```
//! use std::sync::Arc;
//! use winmdm_enroll::enrollment_data::{EnrollmentDataVerifier, TokenIdentity};
//! use winmdm_entra::{KeyCache, KeySource, Policy, TokenVersion, Validator};
//! use winmdm_testkit::entra as tk;
//! use winmdm_tou::{Keyring, SealingKey, Submission, SystemEntropy, Terms, TermsOfUse, TouConfig};
//!
//! // The vendor's token policy and sealing key.
//! let jwks = serde_json::to_vec(&tk::jwks([&tk::KEY_1]))?;
//! let keys = KeySource::static_jwks(&jwks, tk::V2_ISSUER_TEMPLATE, TokenVersion::V2)?;
//! let policy = Policy::builder().allow_tenants([tk::CONTOSO.id]).allow_audiences([tk::MDM_APP_ID]).build()?;
//! let validator = Validator::new(policy, Arc::new(KeyCache::new(vec![keys])));
//! let keyring = Keyring::new(SealingKey::new("2026-11", &[7u8; 32])?);
//! let tou = TermsOfUse::new(TouConfig::default(), keyring, validator);
//! let rng = &mut SystemEntropy;
//!
//! // Windows opens the page.
//! let token = tk::AccessToken::v2(&tk::CONTOSO, &tk::ALICE).sign();
//! let (get, ()) = http::Request::get("https://mdm.contoso.example/TermsOfUse?redirect_uri=ms-appx-web://ContosoMdm/ToUResponse&client-request-id=34be581c-6ebd-49d6-a4e1-150eff4b7213&api-version=1.0")
//!     .header("authorization", format!("Bearer {token}"))
//!     .header("cxh-host", "FRX")
//!     .body(())?.into_parts();
//! let ctx = tou.begin(&get, tk::NOW, rng).expect("a valid request");
//! assert_eq!(ctx.object_id(), tk::ALICE.oid);
//! let page = tou.terms_page(&ctx, &Terms::text("Contoso terms", "Be nice."), tk::NOW, rng);
//! assert_eq!(page.status(), 200);
//!
//! // The user presses Accept: the form posts back the sealed state.
//! let html = String::from_utf8(page.into_body())?;
//! let state = html.split("name=\"state\" value=\"").nth(1).unwrap().split('"').next().unwrap();
//! let (post, ()) = http::Request::post("https://mdm.contoso.example/TermsOfUse").body(())?.into_parts();
//! let form = format!("state={state}&action=accept");
//! let Ok(Submission::Accept(ctx)) = tou.resume(&post, form.as_bytes(), tk::NOW + 5, rng) else { panic!() };
//! let done = tou.accept(&ctx, tk::NOW + 5, rng);
//! let location = done.headers()["location"].to_str()?;
//! assert!(location.starts_with("ms-appx-web://ContosoMdm/ToUResponse?OpaqueBlob="));
//! assert!(location.ends_with("&IsAccepted=true&client-request-id=34be581c-6ebd-49d6-a4e1-150eff4b7213"));
//!
//! // At enrollment, the blob comes back as EnrollmentData.
//! // Only URL-unreserved characters: the blob reads the same encoded or not.
//! let blob = location.split("OpaqueBlob=").nth(1).unwrap().split('&').next().unwrap();
//! let who = TokenIdentity { tenant_id: tk::CONTOSO.id, object_id: tk::ALICE.oid };
//! let data = tou.verifier().verify(blob, &who, tk::NOW + 60)?;
//! assert_eq!(data.client_request_id, "34be581c-6ebd-49d6-a4e1-150eff4b7213");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod flow;
pub mod outcome;
pub mod page;
pub mod policy;
pub mod request;
mod seal;

pub use flow::{
    BlobVerifier, MAX_BLOB_DATA_BYTES, MAX_FORM_BYTES, MAX_PROGRESS_BYTES, Submission, TermsOfUse,
    TooLarge, TouConfig, TouContext,
};
pub use outcome::{ErrorCode, TouError, Wire};
pub use page::{FieldKind, Labels, PageConfig, StepField, StepPage, Stylesheet, Terms, TermsBody};
pub use policy::{AllowedRedirect, RedirectError, RedirectPolicy};
pub use request::{Scenario, Theme, TouRequest, WindowsVersion};
pub use seal::{
    Entropy, EntropyUnavailable, KeyError, Keyring, OpenError, SealError, SealingKey, SystemEntropy,
};

/// Entry points shared by the fuzz targets (`fuzz/`) and the corpus replay tests.
#[doc(hidden)]
pub mod fuzzing {
    use std::sync::{Arc, OnceLock};

    use crate::{Keyring, SealingKey, TermsOfUse, TouConfig};

    fn endpoint() -> Option<&'static TermsOfUse> {
        static TOU: OnceLock<Option<TermsOfUse>> = OnceLock::new();
        TOU.get_or_init(|| {
            use winmdm_entra::{KeyCache, KeySource, Policy, TokenVersion, Validator};
            let keys = KeySource::static_jwks(
                br#"{"keys":[]}"#,
                "https://login.microsoftonline.com/{tenantid}/v2.0",
                TokenVersion::V2,
            )
            .ok()?;
            let policy = Policy::builder()
                .allow_tenants(["72f988bf-86f1-41af-91ab-2d7cd011db47"])
                .allow_audiences(["a1b2c3d4-0000-4000-8000-00000000a0d1"])
                .build()
                .ok()?;
            let validator = Validator::new(policy, Arc::new(KeyCache::new(vec![keys])));
            let keyring = Keyring::new(SealingKey::new("fuzz", &[3; 32]).ok()?);
            Some(TermsOfUse::new(TouConfig::default(), keyring, validator))
        })
        .as_ref()
    }

    /// One ToU exchange from arbitrary bytes: the first line is the query string, the
    /// following lines up to a blank line are headers, the rest is a form body for
    /// `resume`. Oracle: nothing panics, and every redirect stays inside the policy.
    pub fn request_one(data: &[u8]) {
        let Some(tou) = endpoint() else { return };
        let text = String::from_utf8_lossy(data);
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let query = lines.next().unwrap_or("");
        let mut b = http::Request::get("/TermsOfUse");
        if let Ok(uri) = format!("/TermsOfUse?{query}").parse::<http::Uri>() {
            b = http::Request::get(uri);
        }
        for line in lines.take(16) {
            if let Some((k, v)) = line.split_once(':')
                && let (Ok(k), Ok(v)) = (
                    http::HeaderName::from_bytes(k.trim().as_bytes()),
                    http::HeaderValue::from_str(v.trim()),
                )
            {
                b = b.header(k, v);
            }
        }
        let Ok(req) = b.body(()) else { return };
        let (parts, ()) = req.into_parts();
        let mut rng = |d: &mut [u8]| d.fill(0x5a);
        let check = |r: &http::Response<Vec<u8>>| {
            if let Some(loc) = r.headers().get(http::header::LOCATION) {
                let loc = loc.to_str().unwrap_or("");
                assert!(
                    tou.config()
                        .redirect_policy
                        .check(loc.split('?').next().unwrap_or(""))
                        .is_ok(),
                    "redirect outside the policy: {loc}"
                );
            }
        };
        match tou.begin(&parts, 1_780_000_000, &mut rng) {
            Ok(ctx) => {
                check(&tou.accept(&ctx, 1_780_000_000, &mut rng));
                check(&tou.decline(&ctx, &mut rng));
            }
            Err(r) => check(&r),
        }
        match tou.resume(&parts, body.as_bytes(), 1_780_000_000, &mut rng) {
            Ok(_) => {}
            Err(r) => check(&r),
        }
    }
}
