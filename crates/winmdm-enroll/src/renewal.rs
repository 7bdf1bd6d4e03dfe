//! Certificate renewal (ROBO, `RequestType` `…/Renew`) and recovery (`…/Recovery`).
//!
//! The device sends a CMS SignedData (PKCS#7) wrapping a new PKCS#10, signed with the key
//! of its current certificate, and authenticates with that certificate in TLS. The server
//! checks that the presenter holds the current certificate (the TLS client certificate the
//! vendor's TLS layer saw, or the one in the PKCS#7 — either way the PKCS#7 signature must
//! verify with it), that this service issued it, that it is inside the renewal window,
//! and that it is the same device; then it issues a new certificate for the new key with
//! the old subject (MS-MDE2 §3.5; Microsoft Learn "Certificate renewal").

use std::time::Duration;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use cms::cert::x509::der::{Decode as _, Encode as _};
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use x509_parser::prelude::*;

use crate::csr::{self, Csr};
use crate::fault::EnrollError;
use crate::issue::{CertificateTemplate, IssuancePolicy, PendingIssuance};
use crate::wstep::{EnrollmentKind, RequestType, RstRequest};

/// When renewal is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalPolicy {
    /// How long before expiry renewal opens. Default 60 days (the documented window is 40
    /// to 60 days).
    pub window: Duration,
}

impl Default for RenewalPolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60 * 86_400),
        }
    }
}

const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";

fn bad(m: impl Into<String>) -> EnrollError {
    EnrollError::CertificateRequest(m.into())
}

fn digest_alg(oid: &str) -> Option<&'static digest::Algorithm> {
    match oid {
        "2.16.840.1.101.3.4.2.1" => Some(&digest::SHA256),
        "2.16.840.1.101.3.4.2.2" => Some(&digest::SHA384),
        "2.16.840.1.101.3.4.2.3" => Some(&digest::SHA512),
        "1.3.14.3.2.26" => Some(&digest::SHA1_FOR_LEGACY_USE_ONLY),
        _ => None,
    }
}

fn verification(
    sig_oid: &str,
    digest_oid: &str,
    ec: bool,
) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match (sig_oid, digest_oid, ec) {
        ("1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.11", "2.16.840.1.101.3.4.2.1", false) => {
            &signature::RSA_PKCS1_2048_8192_SHA256
        }
        ("1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.12", "2.16.840.1.101.3.4.2.2", false) => {
            &signature::RSA_PKCS1_2048_8192_SHA384
        }
        ("1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.13", "2.16.840.1.101.3.4.2.3", false) => {
            &signature::RSA_PKCS1_2048_8192_SHA512
        }
        ("1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.5", "1.3.14.3.2.26", false) => {
            &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
        }
        ("1.2.840.10045.4.3.2" | "1.2.840.10045.2.1", "2.16.840.1.101.3.4.2.1", true) => {
            &signature::ECDSA_P256_SHA256_ASN1
        }
        _ => return None,
    })
}

/// The checked PKCS#7: the signer's certificate and the new request.
struct Checked {
    signer_der: Vec<u8>,
    csr_der: Vec<u8>,
}

fn check_pkcs7(der: &[u8], presented: Option<&[u8]>) -> Result<Checked, EnrollError> {
    let ci = ContentInfo::from_der(der).map_err(|_| bad("the PKCS#7 is not a ContentInfo"))?;
    if ci.content_type.to_string() != SIGNED_DATA {
        return Err(bad("the PKCS#7 is not SignedData"));
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|_| bad("malformed SignedData"))?;
    let content = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| bad("SignedData without content"))?;
    let csr_der = match content.decode_as::<cms::cert::x509::der::asn1::OctetString>() {
        Ok(os) => os.as_bytes().to_vec(),
        Err(_) => content.to_der().map_err(|_| bad("content"))?,
    };
    let si = sd
        .signer_infos
        .0
        .as_slice()
        .first()
        .ok_or_else(|| bad("SignedData without a signer"))?;
    // The signer's certificate: the TLS one when given, else the embedded one; it must be
    // the one the SignerInfo names.
    let mut candidates: Vec<Vec<u8>> = Vec::new();
    if let Some(p) = presented {
        candidates.push(p.to_vec());
    } else if let Some(certs) = &sd.certificates {
        for c in certs.0.iter() {
            if let cms::cert::CertificateChoices::Certificate(c) = c {
                candidates.push(c.to_der().map_err(|_| bad("certificate"))?);
            }
        }
    }
    let signer_der = candidates
        .into_iter()
        .find(|c| {
            let Ok((_, cert)) = parse_x509_certificate(c) else {
                return false;
            };
            match &si.sid {
                SignerIdentifier::IssuerAndSerialNumber(ias) => {
                    ias.issuer.to_der().is_ok_and(|i| i == cert.tbs_certificate.issuer.as_raw())
                        && ias.serial_number.as_bytes() == cert.tbs_certificate.raw_serial()
                }
                SignerIdentifier::SubjectKeyIdentifier(ski) => cert.extensions().iter().any(|e| {
                    matches!(e.parsed_extension(), ParsedExtension::SubjectKeyIdentifier(k) if k.0 == ski.0.as_bytes())
                }),
            }
        })
        .ok_or_else(|| bad("the PKCS#7 signer is not the presented certificate"))?;
    let (_, signer) = parse_x509_certificate(&signer_der).map_err(|_| bad("signer certificate"))?;
    let digest_oid = si.digest_alg.oid.to_string();
    let sig_oid = si.signature_algorithm.oid.to_string();
    let ec = signer.public_key().algorithm.algorithm.to_id_string() == "1.2.840.10045.2.1";
    let alg = verification(&sig_oid, &digest_oid, ec).ok_or_else(|| {
        bad(format!(
            "unsupported PKCS#7 algorithms {sig_oid}/{digest_oid}"
        ))
    })?;
    let signed_bytes = match &si.signed_attrs {
        Some(attrs) => {
            let d = digest_alg(&digest_oid).ok_or_else(|| bad("digest algorithm"))?;
            let expected = digest::digest(d, &csr_der);
            let md = attrs
                .iter()
                .find(|a| a.oid.to_string() == MESSAGE_DIGEST)
                .and_then(|a| a.values.iter().next())
                .and_then(|v| {
                    v.decode_as::<cms::cert::x509::der::asn1::OctetString>()
                        .ok()
                })
                .ok_or_else(|| bad("no messageDigest"))?;
            if md.as_bytes() != expected.as_ref() {
                return Err(bad("messageDigest does not match the content"));
            }
            attrs.to_der().map_err(|_| bad("signed attributes"))?
        }
        None => csr_der.clone(),
    };
    UnparsedPublicKey::new(alg, signer.public_key().subject_public_key.data.as_ref())
        .verify(&signed_bytes, si.signature.as_bytes())
        .map_err(|_| bad("the PKCS#7 signature does not verify"))?;
    Ok(Checked {
        signer_der,
        csr_der,
    })
}

/// Checks a `Renew` or `Recovery` request and builds the template for the new
/// certificate (the old subject, the new key).
///
/// `presented` is the TLS client certificate (DER) the vendor's TLS layer verified, if
/// any; `issuer_der` the CA certificate that issued the device certificates.
///
/// # Errors
/// [`EnrollError::CertificateRequest`] for a bad PKCS#7 or CSR or a different device;
/// [`EnrollError::Authentication`] for a certificate this service did not issue;
/// [`EnrollError::NotEligibleToRenew`] outside the window or after expiry.
#[allow(clippy::too_many_arguments)]
pub fn begin_renewal(
    request: &RstRequest,
    presented: Option<&[u8]>,
    issuer_der: &[u8],
    policy: &IssuancePolicy,
    renewal: &RenewalPolicy,
    now: u64,
    random16: [u8; 16],
) -> Result<(PendingIssuance, Csr), EnrollError> {
    if request.request_type == RequestType::Issue {
        return Err(EnrollError::Unexpected("not a renewal".into()));
    }
    let checked = check_pkcs7(&request.pkcs7_der()?, presented)?;
    let csr = csr::parse(&checked.csr_der, &policy.keys)?;
    let (_, old) = parse_x509_certificate(&checked.signer_der).map_err(|_| bad("certificate"))?;
    let (_, issuer) = parse_x509_certificate(issuer_der)
        .map_err(|_| EnrollError::Internal("the issuer certificate does not parse".into()))?;
    if old.issuer().as_raw() != issuer.subject().as_raw()
        || old.verify_signature(Some(issuer.public_key())).is_err()
    {
        return Err(EnrollError::Authentication(
            "the certificate was not issued by this service".into(),
        ));
    }
    let not_after = u64::try_from(old.validity().not_after.timestamp()).unwrap_or(0);
    if now > not_after {
        return Err(EnrollError::NotEligibleToRenew(
            "the certificate has expired".into(),
        ));
    }
    if request.request_type == RequestType::Renew
        && now < not_after.saturating_sub(renewal.window.as_secs())
    {
        return Err(EnrollError::NotEligibleToRenew(
            "the renewal window has not opened".into(),
        ));
    }
    let subject_cn = old
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| bad("the current certificate has no CN"))?;
    // Same device: a device ID the request or CSR names must be the certificate's.
    let kind = request
        .context
        .enrollment_type()
        .unwrap_or(if subject_cn.contains('@') {
            EnrollmentKind::Full
        } else {
            EnrollmentKind::Device
        });
    for id in [request.context.device_id(), csr.device_id.as_deref()]
        .into_iter()
        .flatten()
    {
        if kind == EnrollmentKind::Device && !crate::issue::same_device_id(&subject_cn, id) {
            return Err(bad(format!(
                "device {id} renews the certificate of {subject_cn}"
            )));
        }
    }
    let skew = policy
        .not_before_skew
        .min(Duration::from_secs(600))
        .as_secs();
    let mut serial = random16.to_vec();
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    let device_id = (kind == EnrollmentKind::Device).then(|| subject_cn.clone());
    Ok((
        PendingIssuance {
            template: CertificateTemplate {
                subject_cn,
                serial,
                not_before: now.saturating_sub(skew),
                not_after: now.saturating_add(policy.validity.as_secs()),
                spki_der: csr.spki_der.clone(),
            },
            kind,
            device_id,
            relates_to: request.message_id.clone(),
            renews: Some(checked.signer_der),
        },
        csr,
    ))
}
