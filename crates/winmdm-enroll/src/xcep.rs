//! MS-XCEP `GetPolicies` as MS-MDE2 §3.3 profiles it: the certificate policy the device
//! uses to make its key and CSR (minimal key length, hash algorithm, validity and renewal
//! period, `policySchema` 3).

use crate::fault::EnrollError;
use crate::soap::{self, Limits, escape};
use crate::token::{self, SecurityToken};

/// The `GetPolicies` action.
pub const GET_POLICIES_ACTION: &str =
    "http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy/IPolicy/GetPolicies";
/// The `GetPoliciesResponse` action.
pub const GET_POLICIES_RESPONSE_ACTION: &str =
    "http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy/IPolicy/GetPoliciesResponse";
/// The XCEP namespace.
pub const XCEP_NS: &str = "http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy";

/// A `GetPolicies` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetPoliciesRequest {
    /// `a:MessageID`, as sent.
    pub message_id: Option<String>,
    /// The security token (validate it before answering).
    pub token: Option<SecurityToken>,
    /// `client/lastUpdate`, when not nil.
    pub last_update: Option<String>,
    /// `client/preferredLanguage`, when not nil.
    pub preferred_language: Option<String>,
}

/// Parses a `GetPolicies` POST body.
///
/// # Errors
/// [`EnrollError::Malformed`] / [`EnrollError::Unexpected`] (`s:MessageFormat`),
/// [`EnrollError::Authentication`] for a token that cannot be read.
pub fn parse_get_policies(body: &[u8]) -> Result<GetPoliciesRequest, EnrollError> {
    let env = soap::envelope(body, &Limits::default())?;
    let b = &env.body;
    if !b.name.eq_ignore_ascii_case("GetPolicies") || b.ns != XCEP_NS {
        return Err(EnrollError::Unexpected(format!(
            "body is {{{}}}{}",
            b.ns, b.name
        )));
    }
    let client = b.child_named("client");
    let val = |n: &str| {
        client
            .and_then(|c| c.child_named(n))
            .filter(|e| e.attr("nil").is_none_or(|v| v != "true"))
            .map(|e| e.text().to_owned())
            .filter(|t| !t.is_empty())
    };
    Ok(GetPoliciesRequest {
        message_id: env.message_id.clone(),
        token: token::from_header(&env.header)?,
        last_update: val("lastUpdate"),
        preferred_language: val("preferredLanguage"),
    })
}

/// A hash algorithm for the CSR's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// SHA-256 (`2.16.840.1.101.3.4.2.1`).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    fn oid(self) -> (&'static str, &'static str) {
        match self {
            Self::Sha256 => ("2.16.840.1.101.3.4.2.1", "szOID_NIST_sha256"),
            Self::Sha384 => ("2.16.840.1.101.3.4.2.2", "szOID_NIST_sha384"),
            Self::Sha512 => ("2.16.840.1.101.3.4.2.3", "szOID_NIST_sha512"),
        }
    }
}

/// The certificate policy served to devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePolicy {
    /// The template's common name.
    pub common_name: String,
    /// Minimal key length in bits (RSA). Default 2048.
    pub min_key_length: u32,
    /// The CSR's hash algorithm. Default SHA-256.
    pub hash: HashAlgorithm,
    /// Certificate validity in seconds. Default one year.
    pub validity_secs: u64,
    /// How long before expiry the device renews, in seconds. Default 60 days.
    pub renewal_secs: u64,
    /// Key storage providers the device may use, in preference order.
    pub crypto_providers: Vec<String>,
}

impl Default for CertificatePolicy {
    fn default() -> Self {
        Self {
            common_name: "winmdm".into(),
            min_key_length: 2048,
            hash: HashAlgorithm::Sha256,
            validity_secs: 365 * 86_400,
            renewal_secs: 60 * 86_400,
            crypto_providers: vec![
                "Microsoft Platform Crypto Provider".into(),
                "Microsoft Software Key Storage Provider".into(),
            ],
        }
    }
}

/// Builds the `GetPoliciesResponse`.
pub fn get_policies_response(policy: &CertificatePolicy, relates_to: Option<&str>) -> String {
    let relates = relates_to.map_or(String::new(), |m| {
        format!("<a:RelatesTo>{}</a:RelatesTo>", escape(m))
    });
    let providers: String = policy
        .crypto_providers
        .iter()
        .map(|p| format!("<provider>{}</provider>", escape(p)))
        .collect();
    let (oid, oid_name) = policy.hash.oid();
    format!(
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:a=\"http://www.w3.org/2005/08/addressing\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
         <s:Header><a:Action s:mustUnderstand=\"1\">{GET_POLICIES_RESPONSE_ACTION}</a:Action>{relates}</s:Header>\
         <s:Body><GetPoliciesResponse xmlns=\"{XCEP_NS}\"><response><policyID/>\
         <policyFriendlyName xsi:nil=\"true\"/><nextUpdateHours xsi:nil=\"true\"/><policiesNotChanged xsi:nil=\"true\"/>\
         <policies><policy><policyOIDReference>0</policyOIDReference><cAs xsi:nil=\"true\"/><attributes>\
         <commonName>{cn}</commonName><policySchema>3</policySchema>\
         <certificateValidity><validityPeriodSeconds>{validity}</validityPeriodSeconds><renewalPeriodSeconds>{renewal}</renewalPeriodSeconds></certificateValidity>\
         <permission><enroll>true</enroll><autoEnroll>false</autoEnroll></permission>\
         <privateKeyAttributes><minimalKeyLength>{keylen}</minimalKeyLength><keySpec xsi:nil=\"true\"/><keyUsageProperty xsi:nil=\"true\"/>\
         <permissions xsi:nil=\"true\"/><algorithmOIDReference xsi:nil=\"true\"/><cryptoProviders>{providers}</cryptoProviders></privateKeyAttributes>\
         <revision><majorRevision>101</majorRevision><minorRevision>0</minorRevision></revision>\
         <supersededPolicies xsi:nil=\"true\"/><privateKeyFlags xsi:nil=\"true\"/><subjectNameFlags xsi:nil=\"true\"/>\
         <enrollmentFlags xsi:nil=\"true\"/><generalFlags xsi:nil=\"true\"/><hashAlgorithmOIDReference>0</hashAlgorithmOIDReference>\
         <rARequirements xsi:nil=\"true\"/><keyArchivalAttributes xsi:nil=\"true\"/><extensions xsi:nil=\"true\"/>\
         </attributes></policy></policies></response><cAs xsi:nil=\"true\"/>\
         <oIDs><oID><value>{oid}</value><group>4</group><oIDReferenceID>0</oIDReferenceID><defaultName>{oid_name}</defaultName></oID></oIDs>\
         </GetPoliciesResponse></s:Body></s:Envelope>",
        cn = escape(&policy.common_name),
        validity = policy.validity_secs,
        renewal = policy.renewal_secs,
        keylen = policy.min_key_length,
    )
}
