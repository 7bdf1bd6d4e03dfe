//! Microsoft Entra ID access-token validation for Windows MDM servers, and app-only token
//! acquisition for Microsoft Graph.
//!
//! An MDM server meets Entra tokens at three points: the Terms-of-Use page (the user's
//! bearer token), the enrollment endpoint (the JWT inside the WS-Trust
//! `BinarySecurityToken`) and management sessions (the user token in `Authorization` and
//! in alert 1224 `AADUserToken`). This crate validates them **tenant-safely**: a validly
//! signed token from another tenant, for another app, or signed by a key that belongs to
//! another tenant is refused, each with its own error. It also acquires app-only tokens
//! (client credentials) for the Graph calls an MDM must make.
//!
//! * [`Policy`] — what is accepted, decided explicitly (tenants, audiences, versions,
//!   scopes, skew, algorithms);
//! * [`KeyCache`] — a sans-I/O cache of OIDC metadata and signing keys following
//!   Microsoft's rollover guidance; keys are pre-parsed for fast verification;
//! * [`Validator`] — applies a policy with a cache and returns [`Verified`]`<`[`EntraClaims`]`>`;
//! * [`app_token`] — client-credentials requests (secret or certificate assertion),
//!   response parsing, an expiring per-tenant cache policy;
//! * [`http_response`] — the one mapping of errors to HTTP (401 / 503);
//! * [`manual`] — the security model, in prose.
//!
//! The crate does no I/O of its own: time is a parameter, HTTP requests and responses are
//! `http` values. The `reqwest` feature adds ready async drivers.
//!
//! ```
//! use std::sync::Arc;
//! use rustls_pki_types::UnixTime;
//! use std::time::Duration;
//! use winmdm_entra::{KeyCache, KeySource, Policy, TokenVersion, Validator};
//! use winmdm_testkit::entra::{self as tk, AccessToken, CONTOSO, ALICE};
//!
//! // Keys: a fixed JWKS here; in production `KeySource::entra(.., "common", V2)`.
//! let jwks = tk::jwks([&tk::KEY_1]).to_string();
//! let source = KeySource::static_jwks(jwks.as_bytes(), tk::V2_ISSUER_TEMPLATE, TokenVersion::V2)?;
//! let policy = Policy::builder()
//!     .allow_tenants([CONTOSO.id])
//!     .allow_audiences([tk::MDM_APP_ID])
//!     .require_scope("mdm_delegation")
//!     .build()?;
//! let validator = Validator::new(policy, Arc::new(KeyCache::new(vec![source])));
//!
//! let now = UnixTime::since_unix_epoch(Duration::from_secs(tk::NOW));
//! let claims = validator.validate(&AccessToken::v2(&CONTOSO, &ALICE).sign(), now)?;
//! assert_eq!(claims.object_id, ALICE.oid);
//! assert_eq!(claims.upn.as_deref(), Some(ALICE.upn));
//!
//! // A correctly signed token from another tenant is refused.
//! let other = tk::broken(tk::Broken::WrongTenant);
//! assert!(matches!(validator.validate(&other, now),
//!     Err(winmdm_entra::Error::TenantNotAllowed { .. })));
//! # Ok::<(), winmdm_entra::Error>(())
//! ```
//!
//! # Features
//! * `reqwest` — async drivers on reqwest (rustls with aws-lc-rs): [`fetch`] for the key
//!   cache and [`app_token::AppTokenProvider`].
//!
//! # Specifications
//! Microsoft identity platform: access tokens (validation steps, v1/v2 formats), signing key
//! rollover, OIDC metadata, client-credentials flow and certificate credentials; RFC 7515
//! (JWS), RFC 7517 (JWK), RFC 7519 (JWT), RFC 6750 (bearer token errors).
//!
// Without the feature the items are not compiled in: link to the published docs instead.
#![cfg_attr(
    not(feature = "reqwest"),
    doc = "[`fetch`]: https://docs.rs/winmdm-entra/latest/winmdm_entra/fetch/index.html",
    doc = "[`app_token::AppTokenProvider`]: https://docs.rs/winmdm-entra/latest/winmdm_entra/app_token/struct.AppTokenProvider.html"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod app_token;
mod cache;
mod claims;
mod device_id;
mod error;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod fetch;
mod jwt;
mod keys;
pub mod manual;
mod policy;
mod secret;
mod validator;

pub use cache::{
    CacheConfig, FetchId, FetchKind, FetchRequest, JitterFn, KeyCache, KeySource,
    MAX_METADATA_BYTES, SourceStatus,
};
pub use claims::{EntraClaims, Verified};
pub use device_id::{DeviceId, DeviceIdError};
pub use error::{Error, ErrorKind, Malformed, Part, http_response};
pub use jwt::{JsonObject, decode_unverified};
pub use keys::{Jwk, KeySet, MAX_JWKS_BYTES, MAX_KEYS, MIN_RSA_BITS};
pub use policy::{
    DEFAULT_CLOCK_SKEW, DEFAULT_MAX_TOKEN_LEN, Policy, PolicyBuilder, Principals, Ready,
    WantsAudiences, WantsTenants,
};
pub use secret::SecretString;
pub use validator::Validator;

/// Entra access-token formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TokenVersion {
    /// v1.0: `iss` `https://sts.windows.net/{tid}/`, `ver` `1.0`.
    V1,
    /// v2.0: `iss` `https://login.microsoftonline.com/{tid}/v2.0`, `ver` `2.0`.
    V2,
}

/// JWS signature algorithms this crate can verify (all RSA: Entra signs with RS256).
/// `none` and the HMAC algorithms are deliberately not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (what Entra uses).
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
}

impl Algorithm {
    /// Every algorithm.
    pub const ALL: [Self; 6] = [
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
    ];

    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
        }
    }

    /// The algorithm with this exact JWS name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Entry points shared by the fuzz targets (`fuzz/`) and the corpus replay tests.
#[doc(hidden)]
pub mod fuzzing {
    use rustls_pki_types::UnixTime;

    use crate::Validator;

    /// What the `token` fuzz target runs on each input: validate at a fixed time,
    /// decode without verification, and map any error to the wire. Must never panic.
    pub fn token_one(validator: &Validator, data: &[u8], now_secs: u64) {
        let Ok(input) = std::str::from_utf8(data) else {
            return;
        };
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now_secs));
        if let Err(e) = validator.validate(input, now) {
            let _ = (crate::http_response(&e), e.code(), e.to_string());
        }
        let _ = crate::decode_unverified(input);
        let _ = crate::KeySet::parse(data);
    }
}
