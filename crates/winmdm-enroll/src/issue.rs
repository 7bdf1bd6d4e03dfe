//! Issuance in two steps: [`begin`] checks the request and builds the certificate
//! template from server policy; any [`CertificateSigner`] signs it (a [`LocalIssuer`] on
//! rcgen is included; an HSM or a remote CA fits the same trait); [`complete`] answers
//! with the `RequestSecurityTokenResponseCollection` carrying the provisioning document.
//!
//! From the CSR only the public key is used. Subject: the device ID for `Device`
//! enrollments, the UPN for `Full`; clientAuth EKU; a random serial; `NotBefore` = now
//! minus a skew (default 5 minutes, at most 10 — never months); validity from policy.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use winmdm_entra::DeviceId;

use crate::csr::{self, Csr, KeyPolicy};
use crate::fault::{EnrollError, RSTRC_ACTION};
use crate::provisioning::{self, Certificates, ProvisioningConfig};
use crate::soap::escape_into;
use crate::wstep::{EnrollmentKind, RstRequest};
use core::fmt::Write as _;

/// Issuance policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuancePolicy {
    /// Certificate validity. Default one year.
    pub validity: Duration,
    /// How far `NotBefore` is backdated for clock skew. Default 5 minutes; capped at 10.
    pub not_before_skew: Duration,
    /// Which keys are accepted.
    pub keys: KeyPolicy,
}

impl Default for IssuancePolicy {
    fn default() -> Self {
        Self {
            validity: Duration::from_secs(365 * 86_400),
            not_before_skew: Duration::from_secs(300),
            keys: KeyPolicy::default(),
        }
    }
}

/// Who the validated token says is enrolling.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Requester {
    /// The user's UPN (the subject of `Full` enrollments).
    pub upn: Option<String>,
    /// The token's `deviceid` claim, when it has one.
    pub token_device_id: Option<String>,
}

impl Requester {
    /// The requester a validated Entra token names: its UPN and `deviceid` claim. Prefer
    /// this to filling the fields by hand: only verified claims should decide what a
    /// certificate says.
    pub fn from_verified(claims: &winmdm_entra::Verified<winmdm_entra::EntraClaims>) -> Self {
        Self {
            upn: claims.upn.clone(),
            token_device_id: claims.device_id.clone(),
        }
    }
}

/// The certificate to sign: every field from server policy, the key from the CSR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateTemplate {
    /// The subject CN.
    pub subject_cn: String,
    /// The serial number (16 random bytes, positive).
    pub serial: Vec<u8>,
    /// `NotBefore` (Unix seconds).
    pub not_before: u64,
    /// `NotAfter` (Unix seconds).
    pub not_after: u64,
    /// The device's SubjectPublicKeyInfo (DER).
    pub spki_der: Vec<u8>,
}

/// A checked request waiting for its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingIssuance {
    /// The template to sign.
    pub template: CertificateTemplate,
    /// `Full` or `Device`.
    pub kind: EnrollmentKind,
    /// The device ID (context item, CSR and token claim agree): the claim's when there is
    /// one; a GUID dashed and in lower case, whatever the request's spelling.
    pub device_id: Option<String>,
    /// The request's `MessageID` (for `RelatesTo`).
    pub relates_to: Option<String>,
    /// For a renewal or recovery: the certificate (DER) the request was signed with (and
    /// that the TLS client certificate, when presented, equals). It is the evidence of
    /// which enrollment renews: find the device by it, not by the subject.
    pub renews: Option<Vec<u8>>,
}

/// What a signer returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCertificate {
    /// The issued certificate (DER).
    pub certificate: Vec<u8>,
    /// Intermediates, issuer first (DER).
    pub intermediates: Vec<Vec<u8>>,
    /// The root (DER).
    pub root: Vec<u8>,
}

/// Signs certificate templates (a local CA key, an HSM, a remote CA).
pub trait CertificateSigner {
    /// Signs `template`.
    ///
    /// # Errors
    /// [`EnrollError::Internal`] (the detail is logged, never sent).
    fn sign(&self, template: &CertificateTemplate) -> Result<SignedCertificate, EnrollError>;
}

/// Checks an `Issue` (or `Recovery`) request and builds the template.
///
/// `random16` supplies 16 random bytes for the serial (sans-I/O: the caller's CSPRNG).
///
/// # Errors
/// [`EnrollError::CertificateRequest`] for a bad CSR, a device-ID mismatch or a missing
/// subject; [`EnrollError::Authorization`] for a `Full` enrollment without a UPN.
pub fn begin(
    request: &RstRequest,
    requester: &Requester,
    policy: &IssuancePolicy,
    now: u64,
    random16: [u8; 16],
) -> Result<(PendingIssuance, Csr), EnrollError> {
    let csr = csr::parse(&request.csr_der()?, &policy.keys)?;
    let kind = request
        .context
        .enrollment_type()
        .unwrap_or(EnrollmentKind::Full);
    let device_id = agreed_device_id(
        requester.token_device_id.as_deref(),
        [request.context.device_id(), csr.device_id.as_deref()],
    )?;
    let subject_cn = match kind {
        EnrollmentKind::Device => device_id.clone().ok_or_else(|| {
            EnrollError::CertificateRequest("no device ID for a device enrollment".into())
        })?,
        EnrollmentKind::Full => requester
            .upn
            .clone()
            .ok_or_else(|| EnrollError::Authorization("no UPN for a user enrollment".into()))?,
    };
    let skew = policy
        .not_before_skew
        .min(Duration::from_secs(600))
        .as_secs();
    let not_before = now.saturating_sub(skew);
    let mut serial = random16.to_vec();
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    Ok((
        PendingIssuance {
            template: CertificateTemplate {
                subject_cn,
                serial,
                not_before,
                not_after: now.saturating_add(policy.validity.as_secs()),
                spki_der: csr.spki_der.clone(),
            },
            kind,
            device_id,
            relates_to: request.message_id.clone(),
            renews: None,
        },
        csr,
    ))
}

/// The device ID the request names, checked: with a token claim, the claim when the
/// context item and the CSR extension name the same GUID in any of the spellings Windows
/// uses (see [`winmdm_entra::DeviceId`]); without one, the context item (else the CSR
/// extension) when the two name the same GUID. IDs that are not GUIDs must be equal but
/// for ASCII case. A GUID comes back dashed and in lower case.
fn agreed_device_id(
    claim: Option<&str>,
    named: [Option<&str>; 2],
) -> Result<Option<String>, EnrollError> {
    let named: Vec<&str> = named.into_iter().flatten().collect();
    let same = same_device_id;
    // Without a claim, read from an unambiguous spelling when there is one (32 hex digits
    // have two readings; a dashed or braced GUID has one).
    let reference = claim
        .or_else(|| named.iter().find(|n| DeviceId::is_unambiguous(n)).copied())
        .or(named.first().copied());
    if let Some(reference) = reference
        && let Some(other) = named.iter().find(|n| !same(reference, n))
    {
        return Err(EnrollError::CertificateRequest(format!(
            "device IDs disagree: {reference:?} and {other:?}"
        )));
    }
    // One spelling per device: a GUID is kept in the claim's form (dashed, lower case), so
    // that spellings of one ID cannot make several records; anything else as written.
    // Without a claim, 32 hex digits are read as Windows writes them, its in-memory bytes:
    // both published captures of real devices (testdata/real-windows in winmdm-testkit)
    // are random GUIDs (version 4, RFC 4122 variant) in that reading only.
    Ok(reference.map(|r| {
        let id = if claim.is_none() {
            DeviceId::from_windows_hex(r).or_else(|_| DeviceId::parse(r))
        } else {
            DeviceId::parse(r)
        };
        id.map_or_else(|_| r.to_owned(), |id| id.to_string())
    }))
}

/// Whether two device-ID spellings name one device: equal but for ASCII case, or one GUID
/// named by both (32 hex digits have two readings, text order and Windows' byte order; a
/// dashed or braced spelling has one).
pub(crate) fn same_device_id(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || DeviceId::readings(a).any(|id| id.is_named_by(b))
}

/// Appends `secs` as an RFC 3339 UTC time with milliseconds (`2026-01-02T03:04:05.000Z`).
fn push_rfc3339(out: &mut String, secs: u64) {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil from days (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
}

/// The `RequestSecurityTokenResponseCollection` with the provisioning document.
pub fn complete(
    pending: &PendingIssuance,
    signed: &SignedCertificate,
    config: &ProvisioningConfig,
    now: u64,
) -> String {
    let doc = provisioning::build(
        config,
        &Certificates {
            root: &signed.root,
            intermediates: &signed.intermediates,
            issued: &signed.certificate,
            subject_cn: &pending.template.subject_cn,
        },
        pending.kind,
    );
    let mut out = String::with_capacity(2048 + doc.len() * 4 / 3);
    out.push_str(
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:a=\"http://www.w3.org/2005/08/addressing\" \
         xmlns:u=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd\">\
         <s:Header><a:Action s:mustUnderstand=\"1\">",
    );
    out.push_str(RSTRC_ACTION);
    out.push_str("</a:Action>");
    if let Some(m) = &pending.relates_to {
        out.push_str("<a:RelatesTo>");
        escape_into(&mut out, m);
        out.push_str("</a:RelatesTo>");
    }
    out.push_str(
        "<o:Security s:mustUnderstand=\"1\" xmlns:o=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\">\
         <u:Timestamp u:Id=\"_0\"><u:Created>",
    );
    push_rfc3339(&mut out, now);
    out.push_str("</u:Created><u:Expires>");
    push_rfc3339(&mut out, now.saturating_add(300));
    out.push_str(
        "</u:Expires></u:Timestamp></o:Security></s:Header>\
         <s:Body><RequestSecurityTokenResponseCollection xmlns=\"http://docs.oasis-open.org/ws-sx/ws-trust/200512\">\
         <RequestSecurityTokenResponse><TokenType>http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentToken</TokenType>\
         <DispositionMessage xmlns=\"http://schemas.microsoft.com/windows/pki/2009/01/enrollment\"/>\
         <RequestedSecurityToken><BinarySecurityToken ValueType=\"http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentProvisionDoc\" \
         EncodingType=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#base64binary\" \
         xmlns=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\">",
    );
    STANDARD.encode_string(doc, &mut out);
    out.push_str(
        "</BinarySecurityToken></RequestedSecurityToken>\
         <RequestID xmlns=\"http://schemas.microsoft.com/windows/pki/2009/01/enrollment\">0</RequestID>\
         </RequestSecurityTokenResponse></RequestSecurityTokenResponseCollection></s:Body></s:Envelope>",
    );
    out
}

/// Reads the provisioning document out of a `RequestSecurityTokenResponseCollection`
/// (for simulators and tests).
///
/// # Errors
/// [`EnrollError::Malformed`] / [`EnrollError::Unexpected`].
pub fn provisioning_doc_of(rstrc: &[u8]) -> Result<String, EnrollError> {
    let env = crate::soap::envelope(rstrc, &crate::soap::Limits::default())?;
    let bst = env
        .body
        .path(&[
            "RequestSecurityTokenResponse",
            "RequestedSecurityToken",
            "BinarySecurityToken",
        ])
        .ok_or_else(|| EnrollError::Unexpected("no provisioning document".into()))?;
    let raw = crate::token::tolerant_base64(bst.text())?;
    String::from_utf8(raw)
        .map_err(|_| EnrollError::Unexpected("provisioning document is not UTF-8".into()))
}

/// A CA key held by this process, signing with rcgen and aws-lc-rs.
pub struct LocalIssuer {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    intermediates: Vec<Vec<u8>>,
    root: Vec<u8>,
    issuer_der: Vec<u8>,
}

impl core::fmt::Debug for LocalIssuer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "LocalIssuer([key redacted], {} intermediates)",
            self.intermediates.len()
        )
    }
}

impl LocalIssuer {
    /// An issuer from its CA certificate and PKCS#8 key (DER). `chain_above` lists the
    /// certificates between the issuer and the root (usually empty); `root` is the root
    /// (the issuer itself when it is the root).
    ///
    /// # Errors
    /// [`EnrollError::Internal`] when the certificate or key cannot be used.
    pub fn new(
        ca_cert_der: &[u8],
        ca_key_pkcs8_der: &[u8],
        chain_above: Vec<Vec<u8>>,
        root: Vec<u8>,
    ) -> Result<Self, EnrollError> {
        let key = rcgen::KeyPair::try_from(ca_key_pkcs8_der)
            .map_err(|e| EnrollError::Internal(format!("CA key: {e}")))?;
        let cert = rustls_pki_types::CertificateDer::from(ca_cert_der.to_vec());
        let issuer = rcgen::Issuer::from_ca_cert_der(&cert, key)
            .map_err(|e| EnrollError::Internal(format!("CA certificate: {e}")))?;
        let mut intermediates = Vec::new();
        if ca_cert_der != root.as_slice() {
            intermediates.push(ca_cert_der.to_vec());
        }
        intermediates.extend(chain_above);
        Ok(Self {
            issuer,
            intermediates,
            root,
            issuer_der: ca_cert_der.to_vec(),
        })
    }

    /// The issuing CA's certificate (DER).
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer_der
    }
}

impl CertificateSigner for LocalIssuer {
    fn sign(&self, t: &CertificateTemplate) -> Result<SignedCertificate, EnrollError> {
        let internal = |e: &dyn core::fmt::Display| EnrollError::Internal(e.to_string());
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, t.subject_cn.clone());
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&t.serial));
        let ts = |s: u64| {
            time::OffsetDateTime::from_unix_timestamp(i64::try_from(s).unwrap_or(i64::MAX))
                .map_err(|e| internal(&e))
        };
        params.not_before = ts(t.not_before)?;
        params.not_after = ts(t.not_after)?;
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let spki = rcgen::SubjectPublicKeyInfo::from_der(&t.spki_der).map_err(|e| internal(&e))?;
        let cert = params
            .signed_by(&spki, &self.issuer)
            .map_err(|e| internal(&e))?;
        Ok(SignedCertificate {
            certificate: cert.der().to_vec(),
            intermediates: self.intermediates.clone(),
            root: self.root.clone(),
        })
    }
}
