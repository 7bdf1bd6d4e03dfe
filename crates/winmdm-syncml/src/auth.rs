//! OMA-DM application-layer authentication of the device: `Cred` in the `SyncHdr`, checked
//! against the credentials the provisioning document issued (w7 `APPAUTH`, level
//! `CLIENT`), and challenges (`Status` 401/407 with `Chal` and a fresh `NextNonce`).
//!
//! MD5 digest (`syncml:auth-md5`, MS-MDM §1.3.1; OMA DM Security 1.2):
//! `Cred/Data = B64(MD5(B64(MD5(username ":" password)) ":" nonce))` where `nonce` is the
//! raw bytes of the last `NextNonce` (sent base64). Basic (`syncml:auth-basic`):
//! `B64(username ":" password)` — accepted only if the vendor opts in.
//!
//! The username of a Windows client credential is looked up by the vendor (usually keyed
//! by the device ID in `SyncHdr/Source`); nothing here stores secrets.
//!
//! ```
//! use winmdm_syncml::auth::{self, Nonce};
//! let nonce = Nonce::from_bytes(b"0123456789abcdef".to_vec());
//! let cred = auth::md5_cred("dev-1", "s3cret", &nonce);          // what the device sends
//! auth::verify(&cred, "dev-1", "s3cret", &nonce, false)?;       // what the server checks
//! assert!(auth::verify(&cred, "dev-1", "wrong", &nonce, false).is_err());
//! # Ok::<(), winmdm_syncml::auth::AuthError>(())
//! ```

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest as _, Md5};

use crate::codes::StatusCode;
use crate::model::{Cred, Meta};
use crate::text::Text;

/// `Meta/Type` of MD5 digest credentials.
pub const AUTH_MD5: &str = "syncml:auth-md5";
/// `Meta/Type` of basic credentials.
pub const AUTH_BASIC: &str = "syncml:auth-basic";

/// A server nonce: raw bytes, sent base64 in `NextNonce`.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Nonce(Vec<u8>);

impl Nonce {
    /// A nonce from raw bytes. Use at least 16 bytes from a CSPRNG for new nonces.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// A nonce from its base64 form (as in `NextNonce` or the provisioning doc's
    /// `AAUTHDATA`).
    ///
    /// # Errors
    /// [`AuthError::Malformed`] when the text is not base64.
    pub fn from_b64(text: &str) -> Result<Self, AuthError> {
        STANDARD
            .decode(text.trim())
            .map(Self)
            .map_err(|_| AuthError::Malformed("nonce is not base64"))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The base64 form.
    pub fn to_b64(&self) -> String {
        STANDARD.encode(&self.0)
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", self.to_b64())
    }
}

/// Why credentials were refused. [`AuthError::status_code`] is the wire answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The message carries no `Cred`.
    #[error("no credentials")]
    Missing,
    /// The credential type is not accepted (for example basic when only digest is).
    #[error("credential type {0:?} is not accepted")]
    Unsupported(String),
    /// The credential is not well-formed (not base64, wrong format).
    #[error("malformed credential: {0}")]
    Malformed(&'static str),
    /// The credential does not match.
    #[error("credential does not match")]
    Mismatch,
}

impl AuthError {
    /// 407 (missing credentials) when none were sent, 401 (invalid credentials) otherwise;
    /// either goes back in the SyncHdr's `Status` with a `Chal` and a fresh nonce.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::Missing => StatusCode::MISSING_CREDENTIALS,
            _ => StatusCode::INVALID_CREDENTIALS,
        }
    }
}

/// `B64(MD5(B64(MD5(username ":" password)) ":" nonce))`.
pub fn md5_digest(username: &str, password: &str, nonce: &Nonce) -> String {
    let inner = STANDARD.encode(Md5::digest(format!("{username}:{password}").as_bytes()));
    let mut outer = Md5::new();
    outer.update(inner.as_bytes());
    outer.update(b":");
    outer.update(nonce.as_bytes());
    STANDARD.encode(outer.finalize())
}

fn cred_of(kind: &str, data: String) -> Cred {
    Cred {
        meta: Some(Box::new(Meta {
            format: Some(Text::from("b64")),
            r#type: Some(Text::from(kind)),
            ..Meta::default()
        })),
        data: Text::from(data),
    }
}

/// MD5 digest credentials (what a device sends; for simulators and tests).
pub fn md5_cred(username: &str, password: &str, nonce: &Nonce) -> Cred {
    cred_of(AUTH_MD5, md5_digest(username, password, nonce))
}

/// Basic credentials.
pub fn basic_cred(username: &str, password: &str) -> Cred {
    cred_of(
        AUTH_BASIC,
        STANDARD.encode(format!("{username}:{password}")),
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks `cred` against the expected username, password and current nonce. Basic
/// credentials are accepted only with `allow_basic` (they travel reusable; MS-MDM clients
/// use digest). The comparison is constant-time.
///
/// # Errors
/// See [`AuthError`].
pub fn verify(
    cred: &Cred,
    username: &str,
    password: &str,
    nonce: &Nonce,
    allow_basic: bool,
) -> Result<(), AuthError> {
    let meta = cred.meta.as_deref();
    // OMA: Type defaults to basic, Format to b64 when absent.
    let kind = meta
        .and_then(|m| m.r#type.as_deref())
        .map_or(AUTH_BASIC, str::trim);
    if let Some(format) = meta.and_then(|m| m.format.as_deref())
        && format.trim() != "b64"
    {
        return Err(AuthError::Malformed("credential format is not b64"));
    }
    let expected = match kind {
        AUTH_MD5 => md5_digest(username, password, nonce),
        AUTH_BASIC if allow_basic => STANDARD.encode(format!("{username}:{password}")),
        other => return Err(AuthError::Unsupported(other.to_owned())),
    };
    let sent = cred.data.trim();
    if STANDARD.decode(sent).is_err() {
        return Err(AuthError::Malformed("credential data is not base64"));
    }
    if constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(AuthError::Mismatch)
    }
}

/// Checks the message's `SyncHdr/Cred` (see [`verify`]).
///
/// # Errors
/// [`AuthError::Missing`] when the header has no `Cred`, else as [`verify`].
pub fn verify_header(
    message: &crate::SyncMl,
    username: &str,
    password: &str,
    nonce: &Nonce,
    allow_basic: bool,
) -> Result<(), AuthError> {
    let cred = message.header.cred.as_deref().ok_or(AuthError::Missing)?;
    verify(cred, username, password, nonce, allow_basic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_changes_with_each_input() {
        let n = Nonce::from_bytes(vec![1, 2, 3]);
        let d = md5_digest("u", "p", &n);
        assert_ne!(d, md5_digest("u", "q", &n));
        assert_ne!(d, md5_digest("v", "p", &n));
        assert_ne!(d, md5_digest("u", "p", &Nonce::from_bytes(vec![1, 2, 4])));
        assert_eq!(STANDARD.decode(&d).unwrap().len(), 16);
    }
}
