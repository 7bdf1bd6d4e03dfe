//! The security token of a policy or enrollment request (`wsse:Security` in the header).
//!
//! Entra flows carry the user's access token as a `wsse:BinarySecurityToken` whose content
//! is the base64 of the JWT text, with `ValueType` `urn:ietf:params:oauth:token-type:jwt`
//! or (as some documents show) `…/DeviceEnrollmentUserToken`. Decoding is tolerant: the
//! standard or URL alphabet, padding or not, embedded white space; the result must be a
//! compact JWS. Renewal carries a PKCS#7 instead (`…#PKCS7`); on-premises a
//! `wsse:UsernameToken`.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

use crate::fault::EnrollError;
use crate::soap::Element;

/// `ValueType` of a JWT token.
pub const JWT_VALUE_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// `ValueType` of the federated user token (also seen with JWTs).
pub const USER_TOKEN_VALUE_TYPE: &str = "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentUserToken";
/// `ValueType` of a renewal's PKCS#7.
pub const PKCS7_VALUE_TYPE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#PKCS7";

/// Decodes base64 tolerantly: standard or URL alphabet, padding or not, white space.
///
/// # Errors
/// [`EnrollError::Unexpected`] when it is not base64 in either alphabet.
pub fn tolerant_base64(text: &str) -> Result<Vec<u8>, EnrollError> {
    fn strip_padding(mut b: &[u8]) -> &[u8] {
        while let [rest @ .., b'='] = b {
            b = rest;
        }
        b
    }
    let decode = |b: &[u8]| {
        STANDARD_NO_PAD
            .decode(b)
            .or_else(|_| URL_SAFE_NO_PAD.decode(b))
    };
    // Fast path: no white space to remove (the usual case), decoded in place. White
    // space makes both alphabets fail, so the slow path sees every such input.
    if let Ok(d) = decode(strip_padding(text.as_bytes())) {
        return Ok(d);
    }
    let cleaned: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    decode(strip_padding(&cleaned))
        .map_err(|_| EnrollError::Unexpected("binary security token is not base64".into()))
}

/// A request's security token.
#[derive(Clone, PartialEq, Eq)]
pub enum SecurityToken {
    /// A JWT (the Entra access token), decoded from its base64 wrapping.
    Jwt(String),
    /// A binary token of another type (`ValueType`, raw base64 text).
    Binary {
        /// `ValueType`.
        value_type: String,
        /// The element's text, as sent.
        data: String,
    },
    /// On-premises user name and password.
    UsernameToken {
        /// The user name.
        username: String,
        /// The password (redacted in `Debug`).
        password: String,
    },
}

impl fmt::Debug for SecurityToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Jwt(t) => write!(f, "Jwt([redacted; {} bytes])", t.len()),
            Self::Binary { value_type, data } => {
                write!(f, "Binary({value_type:?}, [{} bytes])", data.len())
            }
            Self::UsernameToken { username, .. } => {
                write!(f, "UsernameToken({username:?}, [redacted])")
            }
        }
    }
}

impl SecurityToken {
    /// The JWT, for a JWT token.
    pub fn jwt(&self) -> Option<&str> {
        match self {
            Self::Jwt(t) => Some(t),
            _ => None,
        }
    }
}

/// Whether `s` has the shape of a compact JWS: three segments, the first two non-empty.
/// (Only the shape: the validator checks everything else.)
fn is_compact_jws(s: &str) -> bool {
    let b = s.as_bytes();
    // One pass the compiler can vectorize (no early exit): white space or padding anywhere.
    let odd = b.iter().fold(false, |acc, &c| {
        acc | matches!(c, b' ' | b'\t' | b'\n' | b'\x0C' | b'\r' | b'=')
    });
    if odd {
        return false;
    }
    let mut parts = s.split('.');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(h), Some(p), Some(_), None) if !h.is_empty() && !p.is_empty()
    )
}

/// Reads a `BinarySecurityToken` element into a token.
///
/// # Errors
/// [`EnrollError::Authentication`] for a JWT-typed token that is not one.
pub fn from_binary(bst: &Element) -> Result<SecurityToken, EnrollError> {
    from_parts(
        bst.attr("ValueType").unwrap_or_default().to_owned(),
        bst.text(),
    )
}

/// A `BinarySecurityToken` from its `ValueType` and its (trimmed) text.
pub(crate) fn from_parts(value_type: String, text: &str) -> Result<SecurityToken, EnrollError> {
    let jwt_typed = value_type == JWT_VALUE_TYPE;
    if jwt_typed || value_type == USER_TOKEN_VALUE_TYPE {
        // The JWT text itself (some clients send it bare), or its base64.
        if is_compact_jws(text) {
            return Ok(SecurityToken::Jwt(text.to_owned()));
        }
        let decoded = tolerant_base64(text)
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .map(|t| match t.trim() {
                trimmed if trimmed.len() == t.len() => t,
                trimmed => trimmed.to_owned(),
            })
            .filter(|t| is_compact_jws(t));
        match decoded {
            Some(jwt) => return Ok(SecurityToken::Jwt(jwt)),
            // A JWT-typed token must be one; the federated user token may be any
            // opaque token of the vendor's identity provider.
            None if jwt_typed => {
                return Err(EnrollError::Authentication(
                    "token is not a base64-wrapped compact JWT".into(),
                ));
            }
            None => {}
        }
    }
    Ok(SecurityToken::Binary {
        value_type,
        data: text.to_owned(),
    })
}

/// The token in a request header's `wsse:Security`, if any.
///
/// # Errors
/// See [`from_binary`].
pub fn from_header(header: &Element) -> Result<Option<SecurityToken>, EnrollError> {
    let Some(sec) = header.child_named("Security") else {
        return Ok(None);
    };
    if let Some(bst) = sec.child_named("BinarySecurityToken") {
        return from_binary(bst).map(Some);
    }
    if let Some(ut) = sec.child_named("UsernameToken") {
        let get = |n: &str| {
            ut.child_named(n)
                .map(|e| e.text().to_owned())
                .unwrap_or_default()
        };
        return Ok(Some(SecurityToken::UsernameToken {
            username: get("Username"),
            password: get("Password"),
        }));
    }
    Ok(None)
}
