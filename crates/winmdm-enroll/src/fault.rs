//! Enrollment errors and their one mapping to a SOAP fault (MS-MDE2 §2.2.10).
//!
//! Every fault is a SOAP 1.2 `s:Fault` sent with HTTP 500: `s:Code/s:Value` `s:Receiver`,
//! the subcode of the table below, an English `s:Reason`, and a
//! `deviceenrollmentserviceerror` detail (`errortype`, `message`, `traceid`). Internal
//! detail never reaches the wire: backend failures say "internal service error" and the
//! trace ID ties them to the server's log.
//!
//! | Cause | Subcode | `errortype` |
//! |---|---|---|
//! | malformed or empty request | `s:MessageFormat` | — |
//! | missing, invalid or expired token | `s:Authentication` | — |
//! | tenant or user not allowed | `s:Authorization` | — |
//! | bad CSR (proof of possession, weak key, device-id mismatch) | `s:CertificateRequest` | — |
//! | signer or backend failure | `a:InternalServiceFault` | — |
//! | outside the renewal window | `s:Authorization` | `NotEligibleToRenew` |
//! | device cap | `s:Authorization` | `DeviceCapReached` |
//! | no licence | `s:Authorization` | `UserLicense` |
//! | maintenance | `s:EnrollmentServer` | `InMaintenance` |
//! | unsupported device or version | `s:MessageFormat` | `DeviceNotSupported` / `NotSupported` |
//! | invalid `EnrollmentData` (ToU blob) | `s:Authorization` | `InvalidEnrollmentData` |
//! | the vendor's own reason | `s:Authorization` | `CustomServerError` (the reason is shown) |

use crate::hresult::HResult;
use crate::soap::{SoapError, escape};

/// The WSTEP response action, also used for faults.
pub const RSTRC_ACTION: &str =
    "http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RSTRC/wstep";
/// The enrollment namespace of `deviceenrollmentserviceerror`.
pub const ENROLLMENT_NS: &str = "http://schemas.microsoft.com/windows/pki/2009/01/enrollment";

/// Why an enrollment request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollError {
    // --- malformed input -------------------------------------------------------------
    /// The request could not be read.
    #[error("malformed request: {0}")]
    Malformed(#[from] SoapError),
    /// The request was read but is not what this endpoint takes.
    #[error("unexpected request: {0}")]
    Unexpected(String),
    // --- refused ---------------------------------------------------------------------
    /// No security token, or it failed validation.
    #[error("authentication failed: {0}")]
    Authentication(String),
    /// The tenant or user is not served.
    #[error("not authorized: {0}")]
    Authorization(String),
    /// The CSR failed a check.
    #[error("certificate request refused: {0}")]
    CertificateRequest(String),
    /// The `EnrollmentData` (Terms-of-Use blob) did not verify.
    #[error("invalid enrollment data: {0}")]
    InvalidEnrollmentData(String),
    /// Renewal asked outside the renewal window.
    #[error("not eligible to renew: {0}")]
    NotEligibleToRenew(String),
    /// The device's protocol version (or the device) is not supported.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// The device type is not supported.
    #[error("device not supported: {0}")]
    DeviceNotSupported(String),
    /// The vendor's device limit.
    #[error("device cap reached")]
    DeviceCapReached,
    /// The user has no licence.
    #[error("no user licence")]
    UserLicense,
    /// The service is in maintenance.
    #[error("in maintenance")]
    InMaintenance,
    /// The vendor's own reason, shown to the user (Windows 10 20H2+ / Windows 11).
    #[error("custom server error: {0}")]
    Custom(String),
    // --- backend ---------------------------------------------------------------------
    /// The signer or another backend failed (detail for logs only).
    #[error("internal error: {0}")]
    Internal(String),
}

/// A SOAP fault, ready to serialize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The subcode, with its prefix (`s:MessageFormat`, `a:InternalServiceFault`, …).
    pub subcode: &'static str,
    /// `errortype`, when one applies.
    pub errortype: Option<&'static str>,
    /// `s:Reason/s:Text` and the detail `message` (plain English, no internal detail).
    pub reason: String,
    /// The HRESULT Windows will show.
    pub hresult: HResult,
}

impl EnrollError {
    /// The one mapping to the wire.
    pub fn fault(&self) -> Fault {
        let f = |subcode, errortype, reason: &str, hresult| Fault {
            subcode,
            errortype,
            reason: reason.to_owned(),
            hresult,
        };
        match self {
            Self::Malformed(_) | Self::Unexpected(_) => f(
                "s:MessageFormat",
                None,
                "The request is not a well-formed enrollment message.",
                HResult::MENROLL_E_DEVICE_MESSAGE_FORMAT_ERROR,
            ),
            Self::Authentication(_) => f(
                "s:Authentication",
                None,
                "The security token is missing, invalid or expired.",
                HResult::MENROLL_E_DEVICE_AUTHENTICATION_ERROR,
            ),
            Self::Authorization(_) => f(
                "s:Authorization",
                None,
                "The user or tenant is not allowed to enroll.",
                HResult::MENROLL_E_DEVICE_AUTHORIZATION_ERROR,
            ),
            Self::CertificateRequest(_) => f(
                "s:CertificateRequest",
                None,
                "The certificate request was refused.",
                HResult::MENROLL_E_DEVICE_CERTIFCATEREQUEST_ERROR,
            ),
            Self::InvalidEnrollmentData(_) => f(
                "s:Authorization",
                Some("InvalidEnrollmentData"),
                "The enrollment data is not valid.",
                HResult::MENROLL_E_ENROLLMENTDATAINVALID,
            ),
            Self::NotEligibleToRenew(_) => f(
                "s:Authorization",
                Some("NotEligibleToRenew"),
                "The certificate is not eligible for renewal.",
                HResult::MENROLL_E_NOTELIGIBLETORENEW,
            ),
            Self::NotSupported(_) => f(
                "s:MessageFormat",
                Some("NotSupported"),
                "This version of the enrollment protocol is not supported.",
                HResult::MENROLL_E_NOTSUPPORTED,
            ),
            Self::DeviceNotSupported(_) => f(
                "s:MessageFormat",
                Some("DeviceNotSupported"),
                "This device is not supported.",
                HResult::MENROLL_E_DEVICENOTSUPPORTED,
            ),
            Self::DeviceCapReached => f(
                "s:Authorization",
                Some("DeviceCapReached"),
                "The user has reached the device limit.",
                HResult::MENROLL_E_DEVICECAPREACHED,
            ),
            Self::UserLicense => f(
                "s:Authorization",
                Some("UserLicense"),
                "The user has no license for device management.",
                HResult::MENROLL_E_USERLICENSE,
            ),
            Self::InMaintenance => f(
                "s:EnrollmentServer",
                Some("InMaintenance"),
                "The enrollment service is in maintenance.",
                HResult::MENROLL_E_INMAINTENANCE,
            ),
            Self::Custom(reason) => f(
                "s:Authorization",
                Some("CustomServerError"),
                &reason.chars().take(512).collect::<String>(),
                HResult::MENROLL_E_CUSTOMSERVERERROR,
            ),
            Self::Internal(_) => f(
                "a:InternalServiceFault",
                None,
                "Internal service error.",
                HResult::MENROLL_E_DEVICE_INTERNALSERVICE_ERROR,
            ),
        }
    }
}

impl Fault {
    /// The SOAP 1.2 envelope. `relates_to` is the request's `MessageID` (echoed as sent),
    /// `trace_id` ties the fault to the server's log.
    pub fn to_xml(&self, relates_to: Option<&str>, trace_id: &str) -> String {
        let relates = relates_to.map_or(String::new(), |m| {
            format!("<a:RelatesTo>{}</a:RelatesTo>", escape(m))
        });
        let errortype = self
            .errortype
            .map_or(String::new(), |t| format!("<errortype>{t}</errortype>"));
        format!(
            "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:a=\"http://www.w3.org/2005/08/addressing\">\
             <s:Header><a:Action s:mustUnderstand=\"1\">{RSTRC_ACTION}</a:Action>{relates}</s:Header>\
             <s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>{sub}</s:Value></s:Subcode></s:Code>\
             <s:Reason><s:Text xml:lang=\"en-US\">{reason}</s:Text></s:Reason>\
             <s:Detail><deviceenrollmentserviceerror xmlns=\"{ENROLLMENT_NS}\">{errortype}<message>{reason}</message><traceid>{trace}</traceid></deviceenrollmentserviceerror></s:Detail>\
             </s:Fault></s:Body></s:Envelope>",
            sub = self.subcode,
            reason = escape(&self.reason),
            trace = escape(trace_id),
        )
    }

    /// The HTTP response: 500, `application/soap+xml; charset=utf-8`, `Content-Length`.
    pub fn to_response(&self, relates_to: Option<&str>, trace_id: &str) -> http::Response<Vec<u8>> {
        crate::soap_response(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            self.to_xml(relates_to, trace_id),
        )
    }
}

/// A parsed fault (any casing; for clients, simulators and `winmdm soap decode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedFault {
    /// `s:Code/s:Value`.
    pub code: String,
    /// `s:Subcode/s:Value`.
    pub subcode: Option<String>,
    /// `s:Reason/s:Text`.
    pub reason: Option<String>,
    /// `errortype`.
    pub errortype: Option<String>,
    /// `message`.
    pub message: Option<String>,
    /// `traceid`.
    pub trace_id: Option<String>,
}

/// Reads a SOAP fault, whatever the element casing (the documentation's samples are
/// lower-cased throughout).
///
/// # Errors
/// [`SoapError`] when it is not a fault envelope.
pub fn parse_fault(xml: &[u8]) -> Result<ParsedFault, SoapError> {
    let root = crate::soap::parse(xml, &crate::soap::Limits::default())?;
    if !root.name.eq_ignore_ascii_case("Envelope") {
        return Err(SoapError::NotSoap("root is not Envelope"));
    }
    let fault = root
        .path(&["Body", "Fault"])
        .ok_or(SoapError::Missing("Fault"))?;
    let text = |p: &[&str]| fault.path(p).map(|e| e.text().to_owned());
    let detail = fault.path(&["Detail", "deviceenrollmentserviceerror"]);
    let dtext = |n: &str| {
        detail
            .and_then(|d| d.child_named(n))
            .map(|e| e.text().to_owned())
    };
    Ok(ParsedFault {
        code: text(&["Code", "Value"]).ok_or(SoapError::Missing("Code/Value"))?,
        subcode: text(&["Code", "Subcode", "Value"]),
        reason: text(&["Reason", "Text"]),
        errortype: dtext("errortype"),
        message: dtext("message"),
        trace_id: dtext("traceid"),
    })
}
