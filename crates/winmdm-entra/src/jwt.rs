//! Compact JWS decoding with limits (RFC 7515 §7.1), no verification.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::error::{Error, Malformed, Part};

/// A decoded, unverified compact JWS.
#[derive(Debug)]
pub(crate) struct Decoded<'a> {
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: what the signature covers.
    pub(crate) signing_input: &'a str,
    pub(crate) header: Header,
    /// The decoded claims JSON (parsed by the validator).
    pub(crate) claims_json: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

/// The header fields this crate reads. Anything else (`jku`, `x5u`, `x5c`, …) is ignored:
/// keys come only from the configured key sources, never from the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) alg: String,
    pub(crate) kid: Option<String>,
}

pub(crate) fn split(token: &str) -> Result<(&str, &str, &str), Error> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed::Segments.into());
    };
    Ok((h, c, s))
}

fn b64(segment: &str, part: Part) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Malformed::Base64(part).into())
}

pub(crate) fn object(bytes: &[u8], part: Part) -> Result<Map<String, Value>, Error> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Malformed::Json(part).into()),
    }
}

/// Only the header fields this crate reads; others are skipped without being stored.
#[derive(serde::Deserialize)]
struct RawHeader {
    alg: Option<Value>,
    kid: Option<Value>,
    crit: Option<serde::de::IgnoredAny>,
}

fn parse_header(bytes: &[u8]) -> Result<RawHeader, Error> {
    // Must be a JSON object; any other JSON value (or invalid JSON) is malformed.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Malformed::Json(Part::Header).into());
    }
    serde_json::from_slice(bytes).map_err(|_| Malformed::Json(Part::Header).into())
}

/// Decodes `token` (whose length the caller has already bounded).
pub(crate) fn decode(token: &str) -> Result<Decoded<'_>, Error> {
    let (h, c, s) = split(token)?;
    let header = parse_header(&b64(h, Part::Header)?)?;
    let alg = match header.alg {
        Some(Value::String(a)) => a,
        Some(_) => return Err(Malformed::ClaimType("alg").into()),
        None => return Err(Error::AlgorithmNotAllowed { alg: String::new() }),
    };
    let kid = match header.kid {
        Some(Value::String(k)) => Some(k),
        None | Some(Value::Null) => None,
        Some(_) => return Err(Malformed::ClaimType("kid").into()),
    };
    if header.crit.is_some() {
        return Err(Malformed::CriticalHeader.into());
    }
    let claims_json = b64(c, Part::Claims)?;
    let signature = b64(s, Part::Signature)?;
    Ok(Decoded {
        signing_input: &token[..h.len() + 1 + c.len()],
        header: Header { alg, kid },
        claims_json,
        signature,
    })
}

/// A JSON object (a token's header or claims).
pub type JsonObject = Map<String, Value>;

/// Decodes header and claims without any check, for diagnostics (`winmdm token inspect`).
///
/// **Nothing returned here is trustworthy**: the signature is not verified.
pub fn decode_unverified(token: &str) -> Result<(JsonObject, JsonObject), Error> {
    let (h, c, s) = split(token.trim())?;
    let header = object(&b64(h, Part::Header)?, Part::Header)?;
    let claims = object(&b64(c, Part::Claims)?, Part::Claims)?;
    b64(s, Part::Signature)?;
    Ok((header, claims))
}
