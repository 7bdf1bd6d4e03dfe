//! JSON Web Key Sets, parsed by hand: Microsoft's per-key `issuer` field is needed for the
//! key-issuer check, and keys are pre-parsed once for fast verification.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use aws_lc_rs::signature::{self, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::{Algorithm, Error};

/// Largest JWKS document accepted (Entra's are a few KiB).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most keys kept from one JWKS document.
pub const MAX_KEYS: usize = 100;
/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// One published signing key.
pub struct Jwk {
    kid: String,
    kty: String,
    issuer: Option<String>,
    material: Material,
}

enum Material {
    Rsa(Box<RsaKey>),
    /// A key type this crate does not verify with (kept so a token naming it gets
    /// [`Error::KeyTypeMismatch`] rather than [`Error::UnknownKid`]).
    Unsupported,
}

struct RsaKey {
    /// PKCS#1 `RSAPublicKey` DER.
    der: Vec<u8>,
    /// One pre-parsed key per algorithm, made on first use.
    parsed: [OnceLock<Option<ParsedPublicKey>>; Algorithm::ALL.len()],
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("kty", &self.kty)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Jwk {
    /// The key ID.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key type (`RSA`, `EC`, …).
    pub fn kty(&self) -> &str {
        &self.kty
    }

    /// Microsoft's per-key `issuer` (may contain the `{tenantid}` template).
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// Verifies `signature` over `message` with `alg`.
    pub(crate) fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), Error> {
        let Material::Rsa(rsa) = &self.material else {
            return Err(Error::KeyTypeMismatch {
                alg: alg.name(),
                kty: self.kty.clone(),
            });
        };
        let parsed = rsa.parsed[alg.index()]
            .get_or_init(|| ParsedPublicKey::new(alg.verification(), &rsa.der).ok());
        match parsed {
            Some(key) => key
                .verify_sig(message, signature)
                .map_err(|_| Error::BadSignature),
            None => Err(Error::BadSignature),
        }
    }
}

/// A set of keys by `kid`.
#[derive(Debug, Default, Clone)]
pub struct KeySet {
    keys: HashMap<String, Arc<Jwk>>,
}

impl KeySet {
    /// Parses a JWKS document. Keys that cannot be used (RSA below 2048 bits, malformed
    /// `n`/`e`, `use` other than `sig`, duplicate `kid`) are skipped; the count of
    /// skipped keys is returned beside the set.
    ///
    /// # Errors
    /// [`Error::InvalidDocument`] when the document is too large, not JSON, has no `keys`
    /// array, or holds more than [`MAX_KEYS`] keys.
    pub fn parse(document: &[u8]) -> Result<(Self, usize), Error> {
        let invalid = |reason: &str| Error::InvalidDocument {
            document: "JWKS",
            reason: reason.to_owned(),
        };
        if document.len() > MAX_JWKS_BYTES {
            return Err(invalid("document too large"));
        }
        let value: Value = serde_json::from_slice(document).map_err(|_| invalid("not JSON"))?;
        let Some(list) = value.get("keys").and_then(Value::as_array) else {
            return Err(invalid("no `keys` array"));
        };
        if list.len() > MAX_KEYS {
            return Err(invalid("too many keys"));
        }
        let mut keys = HashMap::new();
        let mut skipped = 0;
        for entry in list {
            match parse_jwk(entry) {
                Some(jwk) if !keys.contains_key(&jwk.kid) => {
                    keys.insert(jwk.kid.clone(), Arc::new(jwk));
                }
                _ => skipped += 1,
            }
        }
        Ok((Self { keys }, skipped))
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&Arc<Jwk>> {
        self.keys.get(kid)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key IDs, sorted.
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }
}

fn parse_jwk(entry: &Value) -> Option<Jwk> {
    let s = |name: &str| entry.get(name).and_then(Value::as_str);
    let kid = s("kid")?.to_owned();
    if kid.is_empty() || kid.len() > 256 {
        return None;
    }
    if s("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let kty = s("kty")?.to_owned();
    let issuer = s("issuer").map(str::to_owned);
    let material = if kty == "RSA" {
        let n = URL_SAFE_NO_PAD.decode(s("n")?.trim_end_matches('=')).ok()?;
        let e = URL_SAFE_NO_PAD.decode(s("e")?.trim_end_matches('=')).ok()?;
        let n = strip_zeros(&n);
        let e = strip_zeros(&e);
        if n.len() * 8 < MIN_RSA_BITS || n.len() > 1024 || e.is_empty() || e.len() > 8 {
            return None;
        }
        Material::Rsa(Box::new(RsaKey {
            der: rsa_public_key_der(n, e),
            parsed: Default::default(),
        }))
    } else {
        Material::Unsupported
    };
    Some(Jwk {
        kid,
        kty,
        issuer,
        material,
    })
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn der_uint(out: &mut Vec<u8>, value: &[u8]) {
    out.push(0x02);
    let pad = value.first().is_some_and(|b| b & 0x80 != 0);
    der_len(out, value.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(value);
}

/// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    der_uint(&mut body, n);
    der_uint(&mut body, e);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    der_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

impl Algorithm {
    pub(crate) fn verification(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            Self::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Self::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Self::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Self::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
            Self::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
            Self::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_matches_certificate_key() {
        let doc = winmdm_testkit::entra::jwks([&winmdm_testkit::entra::KEY_1]);
        let (set, skipped) = KeySet::parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(skipped, 0);
        let key = set.get(winmdm_testkit::entra::KEY_1.kid()).unwrap();
        let Material::Rsa(rsa) = &key.material else {
            panic!()
        };
        assert_eq!(rsa.der, winmdm_testkit::entra::KEY_1.rsa_public_key_der());
    }

    #[test]
    fn skips_unusable_keys() {
        let doc = br#"{"keys":[
            {"kty":"RSA","kid":"small","n":"AQAB","e":"AQAB"},
            {"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"},
            {"kty":"EC","kid":"ec","crv":"P-256","x":"AA","y":"AA"},
            {"kid":"nokty"}
        ]}"#;
        let (set, skipped) = KeySet::parse(doc).unwrap();
        assert_eq!(set.kids(), ["ec"]);
        assert_eq!(skipped, 3);
    }

    #[test]
    fn rejects_bad_documents() {
        let docs: [&[u8]; 4] = [b"[]", b"{}", b"not json", b"{\"keys\": 3}"];
        for doc in docs {
            assert!(matches!(
                KeySet::parse(doc),
                Err(Error::InvalidDocument { .. })
            ));
        }
        let many = format!("{{\"keys\":[{}]}}", vec!["{}"; MAX_KEYS + 1].join(","));
        assert!(KeySet::parse(many.as_bytes()).is_err());
    }
}
