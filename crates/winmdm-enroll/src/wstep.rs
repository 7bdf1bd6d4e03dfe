//! MS-WSTEP `RequestSecurityToken` as MS-MDE2 §3.4 profiles it: the user's token, the
//! PKCS#10 (or, for renewal, PKCS#7), and the `AdditionalContext` items.

use crate::enrollment_data::{EnrollmentData, EnrollmentDataVerifier, TokenIdentity};
use crate::fault::EnrollError;
use crate::soap::{self, Limits};
use crate::token::{self, SecurityToken};

/// The `RequestSecurityToken` action.
pub const RST_ACTION: &str =
    "http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RST/wstep";
/// WS-Trust.
pub const WST_NS: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512";
/// `ValueType` of a PKCS#10 request.
pub const PKCS10_VALUE_TYPE: &str =
    "http://schemas.microsoft.com/windows/pki/2009/01/enrollment#PKCS10";

/// What the device asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    /// A first enrollment (`…/Issue`).
    Issue,
    /// A renewal (`…/Renew`, ROBO).
    Renew,
    /// A recovery (`…/Recovery`).
    Recovery,
}

/// `EnrollmentType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentKind {
    /// `Full`: a user enrollment (added work account): user certificate, subject UPN.
    Full,
    /// `Device`: Entra join: device certificate in My/System, subject the device ID.
    Device,
}

/// `AdditionalContext`: an ordered multimap (names repeat: one `MAC` per adapter).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdditionalContext {
    items: Vec<(String, String)>,
}

impl AdditionalContext {
    /// Every item, in order.
    pub fn items(&self) -> &[(String, String)] {
        &self.items
    }

    /// The first value of `name` (case-insensitive), trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.items
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn bool(&self, name: &str) -> Option<bool> {
        self.get(name)
            .map(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }

    /// `EnrollmentType`.
    pub fn enrollment_type(&self) -> Option<EnrollmentKind> {
        match self.get("EnrollmentType")? {
            v if v.eq_ignore_ascii_case("Device") => Some(EnrollmentKind::Device),
            v if v.eq_ignore_ascii_case("Full") => Some(EnrollmentKind::Full),
            _ => None,
        }
    }

    /// `DeviceID`.
    pub fn device_id(&self) -> Option<&str> {
        self.get("DeviceID")
    }

    /// `HWDevID`.
    pub fn hw_dev_id(&self) -> Option<&str> {
        self.get("HWDevID")
    }

    /// `OSEdition` (a `PRODUCT_*` number).
    pub fn os_edition(&self) -> Option<u32> {
        self.get("OSEdition")?.parse().ok()
    }

    /// `OSVersion`.
    pub fn os_version(&self) -> Option<&str> {
        self.get("OSVersion")
    }

    /// `DeviceName`.
    pub fn device_name(&self) -> Option<&str> {
        self.get("DeviceName")
    }

    /// `DeviceType`.
    pub fn device_type(&self) -> Option<&str> {
        self.get("DeviceType")
    }

    /// `ApplicationVersion`.
    pub fn application_version(&self) -> Option<&str> {
        self.get("ApplicationVersion")
    }

    /// Every `MAC`.
    pub fn macs(&self) -> Vec<&str> {
        self.get_all("MAC").collect()
    }

    /// Every `IMEI`.
    pub fn imeis(&self) -> Vec<&str> {
        self.get_all("IMEI").collect()
    }

    /// `EnrollmentData` (the Terms-of-Use `OpaqueBlob`), unverified.
    pub fn enrollment_data(&self) -> Option<&str> {
        self.get("EnrollmentData")
    }

    /// `UXInitiated`.
    pub fn ux_initiated(&self) -> Option<bool> {
        self.bool("UXInitiated")
    }

    /// `TargetedUserLoggedIn`.
    pub fn targeted_user_logged_in(&self) -> Option<bool> {
        self.bool("TargetedUserLoggedIn")
    }

    /// `Locale`.
    pub fn locale(&self) -> Option<&str> {
        self.get("Locale")
    }

    /// `ZeroTouchProvisioning`.
    pub fn zero_touch_provisioning(&self) -> Option<&str> {
        self.get("ZeroTouchProvisioning")
    }

    /// `EmmDeviceId` (the DMClient `EntDMID`, enrollment version 5.0+).
    pub fn emm_device_id(&self) -> Option<&str> {
        self.get("EmmDeviceId")
    }
}

/// A `RequestSecurityToken`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RstRequest {
    /// `a:MessageID`, as sent.
    pub message_id: Option<String>,
    /// `a:To`.
    pub to: Option<String>,
    /// The header's security token (the Entra user token; absent for ROBO renewals,
    /// which authenticate with the TLS client certificate).
    pub token: Option<SecurityToken>,
    /// `wst:RequestType`.
    pub request_type: RequestType,
    /// The body's `BinarySecurityToken` `ValueType`.
    pub request_value_type: String,
    /// Its text, as sent (base64).
    pub request_data: String,
    /// `ac:AdditionalContext`.
    pub context: AdditionalContext,
}

impl RstRequest {
    /// The request's PKCS#10 (DER), for `Issue` and `Recovery`.
    ///
    /// # Errors
    /// [`EnrollError::CertificateRequest`] when the body carries no base64 PKCS#10.
    pub fn csr_der(&self) -> Result<Vec<u8>, EnrollError> {
        if !self.request_value_type.ends_with("#PKCS10") {
            return Err(EnrollError::CertificateRequest(format!(
                "expected a PKCS#10, got {:?}",
                self.request_value_type
            )));
        }
        token::tolerant_base64(&self.request_data)
            .map_err(|_| EnrollError::CertificateRequest("the PKCS#10 is not base64".into()))
    }

    /// The renewal's PKCS#7 (DER): base64, or (automatic renewal) possibly base64 of a
    /// base64 text.
    ///
    /// # Errors
    /// [`EnrollError::CertificateRequest`] when the body carries no PKCS#7.
    pub fn pkcs7_der(&self) -> Result<Vec<u8>, EnrollError> {
        if !self.request_value_type.ends_with("#PKCS7") {
            return Err(EnrollError::CertificateRequest(format!(
                "expected a PKCS#7, got {:?}",
                self.request_value_type
            )));
        }
        let once = token::tolerant_base64(&self.request_data)
            .map_err(|_| EnrollError::CertificateRequest("the PKCS#7 is not base64".into()))?;
        if once.first() == Some(&0x30) {
            return Ok(once);
        }
        std::str::from_utf8(&once)
            .ok()
            .and_then(|t| token::tolerant_base64(t).ok())
            .filter(|d| d.first() == Some(&0x30))
            .ok_or_else(|| EnrollError::CertificateRequest("the PKCS#7 is not DER".into()))
    }

    /// Verifies the `EnrollmentData` item (if any) for the token's user.
    ///
    /// # Errors
    /// [`EnrollError::InvalidEnrollmentData`] when the blob does not verify.
    pub fn verify_enrollment_data(
        &self,
        verifier: &dyn EnrollmentDataVerifier,
        identity: &TokenIdentity<'_>,
        now: u64,
    ) -> Result<Option<EnrollmentData>, EnrollError> {
        let Some(blob) = self.context.enrollment_data() else {
            return Ok(None);
        };
        verifier
            .verify(blob, identity, now)
            .map(Some)
            .map_err(|e| EnrollError::InvalidEnrollmentData(e.to_string()))
    }
}

/// Parses a `RequestSecurityToken` POST body.
///
/// # Errors
/// [`EnrollError::Malformed`] / [`EnrollError::Unexpected`] (`s:MessageFormat`),
/// [`EnrollError::Authentication`] for a token that cannot be read.
pub fn parse_rst(body: &[u8]) -> Result<RstRequest, EnrollError> {
    let env = soap::envelope(body, &Limits::default())?;
    let b = &env.body;
    if !b.name.eq_ignore_ascii_case("RequestSecurityToken") || b.ns != WST_NS {
        return Err(EnrollError::Unexpected(format!(
            "body is {{{}}}{}",
            b.ns, b.name
        )));
    }
    let request_type = match b.child_named("RequestType").map(|e| e.text()) {
        Some(t) if t.ends_with("/Issue") => RequestType::Issue,
        Some(t) if t.ends_with("/Renew") => RequestType::Renew,
        Some(t) if t.ends_with("/Recovery") => RequestType::Recovery,
        other => {
            return Err(EnrollError::Unexpected(format!("RequestType {other:?}")));
        }
    };
    let bst = b
        .child_named("BinarySecurityToken")
        .ok_or_else(|| EnrollError::Unexpected("no BinarySecurityToken in the body".into()))?;
    let mut context = AdditionalContext::default();
    if let Some(ac) = b.child_named("AdditionalContext") {
        for item in ac.children_named("ContextItem").take(256) {
            let name = item.attr("Name").unwrap_or_default().to_owned();
            let value = item
                .child_named("Value")
                .map(|v| v.text().to_owned())
                .unwrap_or_default();
            context.items.push((name, value));
        }
    }
    Ok(RstRequest {
        message_id: env.message_id.clone(),
        to: env.to.clone(),
        token: token::from_header(&env.header)?,
        request_type,
        request_value_type: bst.attr("ValueType").unwrap_or_default().to_owned(),
        request_data: bst.text().to_owned(),
        context,
    })
}
