//! PKCS#10 certificate requests as real Windows clients make them.
//!
//! Windows 10 requests put `<GUID>!<DeviceID>` plus a NUL byte in a PrintableString CN
//! (characters illegal for that type) and sign with OIW `sha1WithRSA` (1.3.14.3.2.29);
//! Windows 11 requests use a UTF8String CN and `sha256WithRSA`; both carry the DeviceID
//! extension 1.3.6.1.4.1.311.66.1.0 (the ID and a NUL). Strict parsers reject them, so
//! this one is permissive about names, strict about what matters: the proof-of-possession
//! signature is verified (with aws-lc-rs), and the key must meet the policy. Only the
//! public key is taken into a certificate; every other field comes from server policy.

use core::fmt::Write as _;

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::der_parser::oid::Oid;
use x509_parser::prelude::FromDer as _;
use x509_parser::public_key::PublicKey;

use crate::fault::EnrollError;

/// The DeviceID extension Windows puts in its requests.
pub const DEVICE_ID_EXTENSION_OID: &str = "1.3.6.1.4.1.311.66.1.0";
/// The largest CSR accepted.
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// A request's public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with this modulus size in bits.
    Rsa(u32),
    /// ECDSA on P-256.
    P256,
    /// ECDSA on P-384.
    P384,
    /// Anything else.
    Other,
}

/// Which keys are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Smallest RSA modulus. Default 2048.
    pub min_rsa_bits: u32,
    /// Accept P-256 and P-384 keys. Default false (Windows makes RSA keys).
    pub allow_ecdsa: bool,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            min_rsa_bits: 2048,
            allow_ecdsa: false,
        }
    }
}

/// A parsed, signature-checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Csr {
    /// The DER.
    pub der: Vec<u8>,
    /// The subject as text (RFC 4514-ish, lossy for illegal characters).
    pub subject: String,
    /// The CN, with illegal characters kept and NULs removed.
    pub common_name: Option<String>,
    /// The key.
    pub key: KeyKind,
    /// The SubjectPublicKeyInfo, DER (what goes into the certificate).
    pub spki_der: Vec<u8>,
    /// The signature algorithm's OID.
    pub signature_algorithm: String,
    /// The DeviceID extension's value (NULs and white space removed).
    pub device_id: Option<String>,
    /// Every requested extension: OID, critical, value length.
    pub extensions: Vec<(String, bool, usize)>,
}

/// The dotted form of an OID, in one allocation (`Oid::to_id_string` makes one string
/// per arc and joins them).
fn oid_str(oid: &Oid<'_>) -> String {
    let Some(arcs) = oid.iter() else {
        return oid.to_id_string();
    };
    let mut out = String::with_capacity(24);
    for (i, arc) in arcs.enumerate() {
        if i > 0 {
            out.push('.');
        }
        let _ = write!(out, "{arc}");
    }
    out
}

/// The text of a name or value: lossy UTF-8, NULs removed, trimmed.
fn clean(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        // The usual case: nothing to replace or remove.
        Ok(s) if !bytes.contains(&0) => s.trim().to_owned(),
        _ => String::from_utf8_lossy(bytes)
            .chars()
            .filter(|c| *c != '\0')
            .collect::<String>()
            .trim()
            .to_owned(),
    }
}

/// The DeviceID extension's text: a DER string, or raw bytes (as Windows writes it).
fn device_id_value(value: &[u8]) -> String {
    // A DER string type wrapping the value (UTF8String, PrintableString, IA5String, BMP…)?
    if let [tag, len, rest @ ..] = value
        && matches!(tag, 0x0c | 0x13 | 0x16 | 0x04)
        && usize::from(*len) == rest.len()
    {
        return clean(rest);
    }
    clean(value)
}

fn verification_algorithm(
    sig_oid: &str,
    key: KeyKind,
) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match (sig_oid, key) {
        ("1.2.840.113549.1.1.5" | "1.3.14.3.2.29", KeyKind::Rsa(_)) => {
            &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
        }
        ("1.2.840.113549.1.1.11", KeyKind::Rsa(_)) => &signature::RSA_PKCS1_2048_8192_SHA256,
        ("1.2.840.113549.1.1.12", KeyKind::Rsa(_)) => &signature::RSA_PKCS1_2048_8192_SHA384,
        ("1.2.840.113549.1.1.13", KeyKind::Rsa(_)) => &signature::RSA_PKCS1_2048_8192_SHA512,
        ("1.2.840.10045.4.3.2", KeyKind::P256) => &signature::ECDSA_P256_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", KeyKind::P256) => &signature::ECDSA_P256_SHA384_ASN1,
        ("1.2.840.10045.4.3.2", KeyKind::P384) => &signature::ECDSA_P384_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", KeyKind::P384) => &signature::ECDSA_P384_SHA384_ASN1,
        _ => return None,
    })
}

/// Parses a request and verifies its proof-of-possession signature and key policy.
///
/// # Errors
/// [`EnrollError::CertificateRequest`] for anything wrong with it.
pub fn parse(der: &[u8], policy: &KeyPolicy) -> Result<Csr, EnrollError> {
    let (csr, signature) = inspect(der)?;
    let bad = |m: &str| EnrollError::CertificateRequest(m.to_owned());
    match csr.key {
        KeyKind::Rsa(bits) if bits < policy.min_rsa_bits => {
            return Err(bad(&format!("RSA key of {bits} bits is too weak")));
        }
        KeyKind::P256 | KeyKind::P384 if !policy.allow_ecdsa => {
            return Err(bad("ECDSA keys are not accepted"));
        }
        KeyKind::Other => return Err(bad("unsupported key type")),
        _ => {}
    }
    signature.map_err(|m| bad(&m))?;
    Ok(csr)
}

/// Parses a request without judging it: its fields, and whether its signature verifies
/// (`Err` with the reason otherwise). For tools (`winmdm csr inspect`).
///
/// # Errors
/// [`EnrollError::CertificateRequest`] when it is not a PKCS#10 request at all.
pub fn inspect(der: &[u8]) -> Result<(Csr, Result<(), String>), EnrollError> {
    let bad = |m: &str| EnrollError::CertificateRequest(m.to_owned());
    if der.len() > MAX_CSR_BYTES {
        return Err(bad("request too large"));
    }
    let (rest, req) =
        X509CertificationRequest::from_der(der).map_err(|_| bad("not a PKCS#10 request"))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the request"));
    }
    let info = &req.certification_request_info;
    let spki = &info.subject_pki;
    let key = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => KeyKind::Rsa(u32::try_from(rsa.key_size()).unwrap_or(0)),
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| oid_str(&o));
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => KeyKind::P256,
                Some("1.3.132.0.34") => KeyKind::P384,
                _ => KeyKind::Other,
            }
        }
        _ => KeyKind::Other,
    };
    let sig_oid = oid_str(&req.signature_algorithm.algorithm);
    let signature = match verification_algorithm(&sig_oid, key) {
        None => Err(format!("unsupported signature algorithm {sig_oid}")),
        Some(alg) => UnparsedPublicKey::new(alg, spki.subject_public_key.data.as_ref())
            .verify(info.raw, req.signature_value.data.as_ref())
            .map_err(|_| "the signature does not verify (no proof of possession)".to_owned()),
    };

    let common_name = info.subject.iter_common_name().next().map(|cn| {
        cn.as_str()
            .map(|s| clean(s.as_bytes()))
            .unwrap_or_else(|_| clean(cn.attr_value().data))
    });
    let mut subject = String::new();
    for (i, a) in info.subject.iter_attributes().enumerate() {
        if i > 0 {
            subject.push_str(", ");
        }
        let oid = oid_str(a.attr_type());
        subject.push_str(match oid.as_str() {
            "2.5.4.3" => "CN",
            "2.5.4.10" => "O",
            "2.5.4.11" => "OU",
            "2.5.4.6" => "C",
            other => other,
        });
        subject.push('=');
        subject.push_str(
            &a.as_str()
                .map(|s| clean(s.as_bytes()))
                .unwrap_or_else(|_| clean(a.attr_value().data)),
        );
    }
    let mut extensions = Vec::new();
    let mut device_id = None;
    for attr in info.attributes() {
        if let ParsedCriAttribute::ExtensionRequest(er) = attr.parsed_attribute() {
            for ext in &er.extensions {
                let oid = oid_str(&ext.oid);
                if oid == DEVICE_ID_EXTENSION_OID {
                    device_id = Some(device_id_value(ext.value)).filter(|d| !d.is_empty());
                }
                extensions.push((oid, ext.critical, ext.value.len()));
            }
        }
    }
    Ok((
        Csr {
            der: der.to_vec(),
            subject,
            common_name,
            key,
            spki_der: spki.raw.to_vec(),
            signature_algorithm: sig_oid,
            device_id,
            extensions,
        },
        signature,
    ))
}
