//! Enrollment `HRESULT`s: an open newtype with the documented table.
//!
//! Windows reports enrollment failures as 32-bit `HRESULT`s. [`HResult`] holds any value
//! (unknown codes round-trip unchanged); the documented ones have named constants and an
//! [`ErrorEntry`] in [`ENROLLMENT_ERRORS`] carrying the symbolic name exactly as
//! Microsoft's table spells it, the corrected spelling where the table has a typo, the
//! Windows message ID and English message, and — where MS-MDE2 defines them — the SOAP
//! fault subcode and the `deviceenrollmentserviceerror/errortype` that make Windows show
//! that code.
//!
//! Codes with facility 25 (`0x8019xxxx`, `FACILITY_HTTP`) are HTTP statuses wrapped by
//! the client: `0x801900C8` means the server answered **200** with a body the device could
//! not use. [`HResult::http_status`] decodes them.
//!
//! One documented error is not an `HRESULT` at all: the Terms-of-Use page returns the
//! string `rejectedTermsOfUse`; it is in the table with [`Code::Text`].

use core::fmt;
use core::str::FromStr;

/// A Windows `HRESULT` as the device reports it (for example `0x80180014`).
///
/// An open newtype: every `u32` is a valid value, named constants cover the documented
/// enrollment codes, and `Debug` prints the name when there is one.
///
/// ```
/// use winmdm_enroll::hresult::HResult;
/// assert_eq!(format!("{:?}", HResult::MENROLL_E_DEVICECAPREACHED),
///            "HResult(0x80180013 MENROLL_E_DEVICECAPREACHED)");
/// assert_eq!(format!("{}", HResult(0x1234_5678)), "0x12345678");
/// assert_eq!(HResult::from_i32(-2145910764), HResult::MENROLL_E_DEVICENOTSUPPORTED);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HResult(pub u32);

/// Facility code of `HRESULT`s that wrap an HTTP status (`HRESULT_FROM_HTTP`).
pub const FACILITY_HTTP: u16 = 25;

macro_rules! hresults {
    ($($(#[$doc:meta])* $name:ident = $value:literal;)*) => {
        impl HResult {
            $($(#[$doc])* pub const $name: Self = Self($value);)*
        }
    };
}

hresults! {
    /// The enrollment request was malformed (SOAP fault `s:MessageFormat`).
    MENROLL_E_DEVICE_MESSAGE_FORMAT_ERROR = 0x8018_0001;
    /// The token or credentials were not accepted (SOAP fault `s:Authentication`).
    MENROLL_E_DEVICE_AUTHENTICATION_ERROR = 0x8018_0002;
    /// The user or tenant may not enroll (SOAP fault `s:Authorization`).
    MENROLL_E_DEVICE_AUTHORIZATION_ERROR = 0x8018_0003;
    /// The certificate request was refused (SOAP fault `s:CertificateRequest`).
    /// Spelled `CERTIFCATEREQUEST` in Microsoft's table.
    MENROLL_E_DEVICE_CERTIFCATEREQUEST_ERROR = 0x8018_0004;
    /// Corrected spelling of [`Self::MENROLL_E_DEVICE_CERTIFCATEREQUEST_ERROR`].
    MENROLL_E_DEVICE_CERTIFICATEREQUEST_ERROR = 0x8018_0004;
    /// Generic enrollment-server failure (SOAP fault `s:EnrollmentServer`).
    MENROLL_E_DEVICE_CONFIGMGRSERVER_ERROR = 0x8018_0005;
    /// Internal service failure (SOAP fault `a:InternalServiceFault`). Microsoft's error
    /// table repeats the name of `0x80180005` for this code; MS-MDE2 names it this way.
    MENROLL_E_DEVICE_INTERNALSERVICE_ERROR = 0x8018_0006;
    /// Invalid WS-Security header (SOAP fault `a:InvalidSecurity`).
    MENROLL_E_DEVICE_INVALIDSECURITY_ERROR = 0x8018_0007;
    /// Unknown enrollment failure.
    MENROLL_E_DEVICE_UNKNOWN_ERROR = 0x8018_0008;
    /// Another enrollment is in progress on the device.
    MENROLL_E_ENROLLMENT_IN_PROGRESS = 0x8018_0009;
    /// The device is already enrolled.
    MENROLL_E_DEVICE_ALREADY_ENROLLED = 0x8018_000A;
    /// The discovery server's certificate is outside its validity period.
    MENROLL_E_DISCOVERY_SEC_CERT_DATE_INVALID = 0x8018_000D;
    /// A password is needed.
    MENROLL_E_PASSWORD_NEEDED = 0x8018_000E;
    /// The web authentication broker failed.
    MENROLL_E_WAB_ERROR = 0x8018_000F;
    /// The device could not reach the server.
    MENROLL_E_CONNECTIVITY = 0x8018_0010;
    /// The server's TLS certificate is invalid.
    MENROLL_E_INVALIDSSLCERT = 0x8018_0012;
    /// The account has reached its device limit (`errortype` `DeviceCapReached`).
    MENROLL_E_DEVICECAPREACHED = 0x8018_0013;
    /// The device is not supported (`errortype` `DeviceNotSupported`).
    MENROLL_E_DEVICENOTSUPPORTED = 0x8018_0014;
    /// The feature is not supported (`errortype` `NotSupported`).
    MENROLL_E_NOTSUPPORTED = 0x8018_0015;
    /// The certificate is not eligible for renewal (`errortype` `NotEligibleToRenew`).
    MENROLL_E_NOTELIGIBLETORENEW = 0x8018_0016;
    /// The service is in maintenance (`errortype` `InMaintenance`).
    MENROLL_E_INMAINTENANCE = 0x8018_0017;
    /// The user has no license (`errortype` `UserLicense`).
    MENROLL_E_USERLICENSE = 0x8018_0018;
    /// The enrollment data (Terms-of-Use blob) is invalid (`errortype` `InvalidEnrollmentData`).
    MENROLL_E_ENROLLMENTDATAINVALID = 0x8018_0019;
    /// A vendor-defined error whose `s:Reason/s:Text` Windows shows to the user
    /// (`errortype` `CustomServerError`; Windows 10 20H2 and later, MS-MDE2 §2.2.10).
    MENROLL_E_CUSTOMSERVERERROR = 0x8018_0032;
    /// Device registration: malformed message.
    DSREG_E_DEVICE_MESSAGE_FORMAT_ERROR = 0x801C_0001;
    /// Device registration: authentication failed.
    DSREG_E_DEVICE_AUTHENTICATION_ERROR = 0x801C_0002;
    /// Device registration: authorization failed.
    DSREG_E_DEVICE_AUTHORIZATION_ERROR = 0x801C_0003;
    /// Device registration: internal service error.
    DSREG_E_DEVICE_INTERNALSERVICE_ERROR = 0x801C_0006;
    /// Device registration: the discovery redirection is not trusted.
    DSREG_E_DISCOVERY_REDIRECTION_NOT_TRUSTED = 0x801C_000B;
    /// Device registration: discovery failed.
    DSREG_E_DISCOVERY_FAILED = 0x801C_000C;
    /// Device registration: quota exceeded. Spelled `EXCCEEDED` in Microsoft's table.
    DSREG_E_DEVICE_REGISTRATION_QUOTA_EXCCEEDED = 0x801C_000E;
    /// Corrected spelling of [`Self::DSREG_E_DEVICE_REGISTRATION_QUOTA_EXCCEEDED`].
    DSREG_E_DEVICE_REGISTRATION_QUOTA_EXCEEDED = 0x801C_000E;
    /// Device registration: a reboot is required.
    DSREG_E_DEVICE_REQUIRES_REBOOT = 0x801C_000F;
    /// Device registration: AIK validation failed.
    DSREG_E_DEVICE_AIK_VALIDATION_ERROR = 0x801C_0010;
    /// Device registration: attestation failed.
    DSREG_E_DEVICE_ATTESTATION_ERROR = 0x801C_0011;
    /// Device registration: bad discovery message.
    DSREG_E_DISCOVERY_BAD_MESSAGE_ERROR = 0x801C_0012;
    /// Device registration: tenant ID not found.
    DSREG_E_TENANTID_NOT_FOUND = 0x801C_0013;
    /// Device registration: user SID not found.
    DSREG_E_USERSID_NOT_FOUND = 0x801C_0014;
}

impl HResult {
    /// The `HRESULT` whose two's-complement `i32` form is `value` (event logs and
    /// PowerShell often print the negative decimal).
    pub const fn from_i32(value: i32) -> Self {
        Self(value as u32)
    }

    /// The value as `i32` (negative for failures).
    pub const fn as_i32(self) -> i32 {
        self.0 as i32
    }

    /// Whether the severity bit is set (a failure code).
    pub const fn is_failure(self) -> bool {
        self.0 & 0x8000_0000 != 0
    }

    /// The facility field (bits 16–26).
    pub const fn facility(self) -> u16 {
        ((self.0 >> 16) & 0x7FF) as u16
    }

    /// The code field (low 16 bits).
    pub const fn code(self) -> u16 {
        (self.0 & 0xFFFF) as u16
    }

    /// The HTTP status wrapped in a `0x8019xxxx` (`FACILITY_HTTP`) failure, if this is one.
    ///
    /// ```
    /// # use winmdm_enroll::hresult::HResult;
    /// assert_eq!(HResult(0x801900C8).http_status(), Some(200));
    /// assert_eq!(HResult(0x80190191).http_status(), Some(401));
    /// assert_eq!(HResult::MENROLL_E_CONNECTIVITY.http_status(), None);
    /// ```
    pub const fn http_status(self) -> Option<u16> {
        if self.is_failure() && self.facility() == FACILITY_HTTP {
            Some(self.code())
        } else {
            None
        }
    }

    /// The documented table entry for this code, if any.
    pub fn entry(self) -> Option<&'static ErrorEntry> {
        ENROLLMENT_ERRORS
            .iter()
            .find(|e| e.code == Code::HResult(self))
    }

    /// The preferred symbolic name: the corrected spelling where Microsoft's table has a
    /// typo, otherwise the name as documented.
    pub fn name(self) -> Option<&'static str> {
        self.entry().map(ErrorEntry::preferred_name)
    }
}

impl fmt::Debug for HResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "HResult({:#010x} {name})", self.0),
            None => write!(f, "HResult({:#010x})", self.0),
        }
    }
}

impl fmt::Display for HResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

impl fmt::LowerHex for HResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl fmt::UpperHex for HResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::UpperHex::fmt(&self.0, f)
    }
}

impl From<u32> for HResult {
    fn from(value: u32) -> Self {
        Self(value)
    }
}

impl From<HResult> for u32 {
    fn from(value: HResult) -> Self {
        value.0
    }
}

/// Why a string is not an `HRESULT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseHResultError {
    /// The input was empty (or only white space).
    #[error("empty HRESULT")]
    Empty,
    /// The input is longer than any written form of a 32-bit value.
    #[error("HRESULT text too long ({len} bytes)")]
    TooLong {
        /// Length of the trimmed input in bytes.
        len: usize,
    },
    /// The input is neither hexadecimal nor decimal digits.
    #[error("not a number")]
    NotANumber,
    /// The number does not fit in 32 bits (as `u32` or `i32`).
    #[error("out of range for a 32-bit HRESULT")]
    OutOfRange,
}

impl FromStr for HResult {
    type Err = ParseHResultError;

    /// Parses the forms people paste from event logs and tickets:
    ///
    /// * `0x80180014` / `0X80180014` — hexadecimal with prefix;
    /// * `80180014` — exactly eight hexadecimal digits without prefix (an eight-digit
    ///   decimal is never a failure code, so this reading is unambiguous for failures);
    /// * `2149056532` — unsigned decimal;
    /// * `-2145910764` — the signed `i32` decimal.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ParseHResultError::Empty);
        }
        if s.len() > 16 {
            return Err(ParseHResultError::TooLong { len: s.len() });
        }
        let hex = |digits: &str| {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ParseHResultError::NotANumber);
            }
            u32::from_str_radix(digits, 16)
                .map(Self)
                .map_err(|_| ParseHResultError::OutOfRange)
        };
        if let Some(digits) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            return hex(digits);
        }
        if s.len() == 8
            && s.bytes().all(|b| b.is_ascii_hexdigit())
            && (s.as_bytes().first().is_some_and(|&b| b >= b'8')
                || !s.bytes().all(|b| b.is_ascii_digit()))
        {
            // Eight hex digits that are a failure code or contain a letter: the hex form
            // without its prefix. (An all-decimal string below 80000000 is read as decimal
            // further down: it is not a failure code either way.)
            return hex(s);
        }
        if let Some(neg) = s.strip_prefix('-') {
            if neg.is_empty() || !neg.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseHResultError::NotANumber);
            }
            return s
                .parse::<i32>()
                .map(Self::from_i32)
                .map_err(|_| ParseHResultError::OutOfRange);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseHResultError::NotANumber);
        }
        s.parse::<u32>()
            .map(Self)
            .map_err(|_| ParseHResultError::OutOfRange)
    }
}

/// The identity of a documented enrollment error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// A numeric `HRESULT`.
    HResult(HResult),
    /// A string error code (the Terms-of-Use page's `rejectedTermsOfUse`).
    Text(&'static str),
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HResult(h) => fmt::Display::fmt(h, f),
            Self::Text(t) => write!(f, "\"{t}\""),
        }
    }
}

/// Where a table entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// Microsoft Learn "Microsoft Entra integration with MDM", § Error codes
    /// (`includes/mdm-enrollment-error-codes.md`, 2023-04-06).
    EntraIntegrationDoc,
    /// [MS-MDE2] §2.2.10 (revision 18.0).
    MsMde2,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EntraIntegrationDoc => {
                "Microsoft Entra integration with MDM, \"Error codes\" (2023-04-06)"
            }
            Self::MsMde2 => "[MS-MDE2] section 2.2.10",
        })
    }
}

/// One documented enrollment error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorEntry {
    /// The code.
    pub code: Code,
    /// The symbolic name exactly as the source spells it.
    pub name: &'static str,
    /// The corrected spelling when the source's name is a typo or a copy of another
    /// row's name.
    pub corrected_name: Option<&'static str>,
    /// The Windows UI string ID (for example `idErrorMDMNotSupported`), when documented.
    pub message_id: Option<&'static str>,
    /// The English message Windows shows; `{0}` stands for the error code.
    pub message: &'static str,
    /// The SOAP 1.2 fault subcode that maps to this code (MS-MDE2 §2.2.10), if any.
    pub fault_subcode: Option<&'static str>,
    /// The `deviceenrollmentserviceerror/errortype` that maps to this code, if any.
    pub errortype: Option<&'static str>,
    /// Where the row comes from.
    pub source: Source,
}

impl ErrorEntry {
    /// The corrected name if there is one, else the documented name.
    pub fn preferred_name(&self) -> &'static str {
        self.corrected_name.unwrap_or(self.name)
    }

    /// Every name this entry answers to: the documented one, the corrected one, and the
    /// `errortype` value.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        core::iter::once(self.name)
            .chain(self.corrected_name)
            .chain(self.errortype)
    }

    /// Whether `query` names this entry. Case-insensitive; the `MENROLL_E_` / `DSREG_E_`
    /// prefix may be left out.
    pub fn matches_name(&self, query: &str) -> bool {
        let query = query.trim();
        if query.is_empty() {
            return false;
        }
        self.names().any(|name| {
            name.eq_ignore_ascii_case(query)
                || ["MENROLL_E_", "DSREG_E_"].iter().any(|prefix| {
                    name.len() == prefix.len() + query.len()
                        && name[..prefix.len()].eq_ignore_ascii_case(prefix)
                        && name[prefix.len()..].eq_ignore_ascii_case(query)
                })
        })
    }
}

/// Every entry whose name matches `query` (see [`ErrorEntry::matches_name`]). A name the
/// documentation gives to several codes returns all of them, in table order.
///
/// ```
/// use winmdm_enroll::hresult::{lookup_name, Code, HResult};
/// let hits: Vec<_> = lookup_name("MENROLL_E_DEVICE_CONFIGMGRSERVER_ERROR").collect();
/// assert_eq!(hits.len(), 2); // the table gives 0x80180005 and 0x80180006 this name
/// assert_eq!(hits[1].code, Code::HResult(HResult::MENROLL_E_DEVICE_INTERNALSERVICE_ERROR));
/// ```
pub fn lookup_name(query: &str) -> impl Iterator<Item = &'static ErrorEntry> + '_ {
    ENROLLMENT_ERRORS
        .iter()
        .filter(move |e| e.matches_name(query))
}

const M_CONNECTIVITY: &str = "There was an error communicating with the server. You can try to do this again or contact your system administrator with the error code {0}";
const M_AUTHENTICATION: &str = "There was a problem authenticating your account or device. You can try to do this again or contact your system administrator with the error code {0}.";
const M_AUTHORIZATION: &str = "This user isn't authorized to enroll. You can try to do this again or contact your system administrator with the error code {0}.";
const M_CERTIFICATE: &str = "There was a certificate error. You can try to do this again or contact your system administrator with the error code {0}.";
const M_NOT_SUPPORTED: &str =
    "This feature isn't supported. Contact your system administrator with the error code {0}.";
const M_DEVICE_LIMIT: &str = "Looks like there are too many devices or users for this account. Contact your system administrator with the error code {0}.";

const ID_CONNECTIVITY: Option<&str> = Some("idErrorServerConnectivity");
const ID_AUTHENTICATION: Option<&str> = Some("idErrorAuthenticationFailure");
const ID_AUTHORIZATION: Option<&str> = Some("idErrorAuthorizationFailure");
const ID_CERTIFICATE: Option<&str> = Some("idErrorMDMCertificateError");

const fn row(
    code: HResult,
    name: &'static str,
    message_id: Option<&'static str>,
    message: &'static str,
) -> ErrorEntry {
    ErrorEntry {
        code: Code::HResult(code),
        name,
        corrected_name: None,
        message_id,
        message,
        fault_subcode: None,
        errortype: None,
        source: Source::EntraIntegrationDoc,
    }
}

const fn corrected(mut entry: ErrorEntry, name: &'static str) -> ErrorEntry {
    entry.corrected_name = Some(name);
    entry
}

const fn subcode(mut entry: ErrorEntry, subcode: &'static str) -> ErrorEntry {
    entry.fault_subcode = Some(subcode);
    entry
}

const fn errortype(mut entry: ErrorEntry, errortype: &'static str) -> ErrorEntry {
    entry.errortype = Some(errortype);
    entry
}

/// The enrollment error table: every row of the Entra integration doc's table, in its
/// order, plus `MENROLL_E_CUSTOMSERVERERROR` from MS-MDE2.
pub static ENROLLMENT_ERRORS: &[ErrorEntry] = &[
    subcode(
        row(
            HResult::MENROLL_E_DEVICE_MESSAGE_FORMAT_ERROR,
            "MENROLL_E_DEVICE_MESSAGE_FORMAT_ERROR",
            ID_CONNECTIVITY,
            M_CONNECTIVITY,
        ),
        "s:MessageFormat",
    ),
    subcode(
        row(
            HResult::MENROLL_E_DEVICE_AUTHENTICATION_ERROR,
            "MENROLL_E_DEVICE_AUTHENTICATION_ERROR",
            ID_AUTHENTICATION,
            M_AUTHENTICATION,
        ),
        "s:Authentication",
    ),
    subcode(
        row(
            HResult::MENROLL_E_DEVICE_AUTHORIZATION_ERROR,
            "MENROLL_E_DEVICE_AUTHORIZATION_ERROR",
            ID_AUTHORIZATION,
            M_AUTHORIZATION,
        ),
        "s:Authorization",
    ),
    subcode(
        corrected(
            row(
                HResult::MENROLL_E_DEVICE_CERTIFCATEREQUEST_ERROR,
                "MENROLL_E_DEVICE_CERTIFCATEREQUEST_ERROR",
                ID_CERTIFICATE,
                M_CERTIFICATE,
            ),
            "MENROLL_E_DEVICE_CERTIFICATEREQUEST_ERROR",
        ),
        "s:CertificateRequest",
    ),
    subcode(
        row(
            HResult::MENROLL_E_DEVICE_CONFIGMGRSERVER_ERROR,
            "MENROLL_E_DEVICE_CONFIGMGRSERVER_ERROR",
            ID_CONNECTIVITY,
            M_CONNECTIVITY,
        ),
        "s:EnrollmentServer",
    ),
    subcode(
        corrected(
            row(
                HResult::MENROLL_E_DEVICE_INTERNALSERVICE_ERROR,
                "MENROLL_E_DEVICE_CONFIGMGRSERVER_ERROR",
                ID_CONNECTIVITY,
                M_CONNECTIVITY,
            ),
            "MENROLL_E_DEVICE_INTERNALSERVICE_ERROR",
        ),
        "a:InternalServiceFault",
    ),
    subcode(
        row(
            HResult::MENROLL_E_DEVICE_INVALIDSECURITY_ERROR,
            "MENROLL_E_DEVICE_INVALIDSECURITY_ERROR",
            ID_AUTHENTICATION,
            M_AUTHENTICATION,
        ),
        "a:InvalidSecurity",
    ),
    row(
        HResult::MENROLL_E_DEVICE_UNKNOWN_ERROR,
        "MENROLL_E_DEVICE_UNKNOWN_ERROR",
        ID_CONNECTIVITY,
        M_CONNECTIVITY,
    ),
    row(
        HResult::MENROLL_E_ENROLLMENT_IN_PROGRESS,
        "MENROLL_E_ENROLLMENT_IN_PROGRESS",
        Some("idErrorAlreadyInProgress"),
        "Another enrollment is in progress. You can try to do this again or contact your system administrator with the error code {0}.",
    ),
    row(
        HResult::MENROLL_E_DEVICE_ALREADY_ENROLLED,
        "MENROLL_E_DEVICE_ALREADY_ENROLLED",
        Some("idErrorMDMAlreadyEnrolled"),
        "This device is already enrolled. You can contact your system administrator with the error code {0}.",
    ),
    row(
        HResult::MENROLL_E_DISCOVERY_SEC_CERT_DATE_INVALID,
        "MENROLL_E_DISCOVERY_SEC_CERT_DATE_INVALID",
        ID_CERTIFICATE,
        M_CERTIFICATE,
    ),
    row(
        HResult::MENROLL_E_PASSWORD_NEEDED,
        "MENROLL_E_PASSWORD_NEEDED",
        ID_AUTHENTICATION,
        M_AUTHENTICATION,
    ),
    row(
        HResult::MENROLL_E_WAB_ERROR,
        "MENROLL_E_WAB_ERROR",
        ID_AUTHENTICATION,
        M_AUTHENTICATION,
    ),
    row(
        HResult::MENROLL_E_CONNECTIVITY,
        "MENROLL_E_CONNECTIVITY",
        ID_CONNECTIVITY,
        M_CONNECTIVITY,
    ),
    row(
        HResult::MENROLL_E_INVALIDSSLCERT,
        "MENROLL_E_INVALIDSSLCERT",
        ID_CERTIFICATE,
        M_CERTIFICATE,
    ),
    errortype(
        row(
            HResult::MENROLL_E_DEVICECAPREACHED,
            "MENROLL_E_DEVICECAPREACHED",
            Some("idErrorDeviceLimit"),
            M_DEVICE_LIMIT,
        ),
        "DeviceCapReached",
    ),
    errortype(
        row(
            HResult::MENROLL_E_DEVICENOTSUPPORTED,
            "MENROLL_E_DEVICENOTSUPPORTED",
            Some("idErrorMDMNotSupported"),
            M_NOT_SUPPORTED,
        ),
        "DeviceNotSupported",
    ),
    errortype(
        row(
            HResult::MENROLL_E_NOTSUPPORTED,
            "MENROLL_E_NOTSUPPORTED",
            Some("idErrorMDMNotSupported"),
            M_NOT_SUPPORTED,
        ),
        "NotSupported",
    ),
    errortype(
        row(
            HResult::MENROLL_E_NOTELIGIBLETORENEW,
            "MENROLL_E_NOTELIGIBLETORENEW",
            Some("idErrorMDMRenewalRejected"),
            "The server did not accept the request. You can try to do this again or contact your system administrator with the error code {0}.",
        ),
        "NotEligibleToRenew",
    ),
    errortype(
        row(
            HResult::MENROLL_E_INMAINTENANCE,
            "MENROLL_E_INMAINTENANCE",
            Some("idErrorMDMAccountMaintenance"),
            "The service is in maintenance. You can try to do this again later or contact your system administrator with the error code {0}.",
        ),
        "InMaintenance",
    ),
    errortype(
        row(
            HResult::MENROLL_E_USERLICENSE,
            "MENROLL_E_USERLICENSE",
            Some("idErrorMDMLicenseError"),
            "There was an error with your license. You can try to do this again or contact your system administrator with the error code {0}.",
        ),
        "UserLicense",
    ),
    errortype(
        row(
            HResult::MENROLL_E_ENROLLMENTDATAINVALID,
            "MENROLL_E_ENROLLMENTDATAINVALID",
            Some("idErrorInvalidServerConfig"),
            "Looks like the server isn't correctly configured. You can try to do this again or contact your system administrator with the error code {0}.",
        ),
        "InvalidEnrollmentData",
    ),
    ErrorEntry {
        code: Code::Text("rejectedTermsOfUse"),
        name: "rejectedTermsOfUse",
        corrected_name: None,
        message_id: Some("idErrorRejectedTermsOfUse"),
        message: "Your organization requires that you agree to the Terms of Use. Please try again or ask your support person for more information.",
        fault_subcode: None,
        errortype: None,
        source: Source::EntraIntegrationDoc,
    },
    row(
        HResult::DSREG_E_DEVICE_MESSAGE_FORMAT_ERROR,
        "DSREG_E_DEVICE_MESSAGE_FORMAT_ERROR",
        ID_CONNECTIVITY,
        M_CONNECTIVITY,
    ),
    row(
        HResult::DSREG_E_DEVICE_AUTHENTICATION_ERROR,
        "DSREG_E_DEVICE_AUTHENTICATION_ERROR",
        ID_AUTHENTICATION,
        M_AUTHENTICATION,
    ),
    row(
        HResult::DSREG_E_DEVICE_AUTHORIZATION_ERROR,
        "DSREG_E_DEVICE_AUTHORIZATION_ERROR",
        ID_AUTHORIZATION,
        M_AUTHORIZATION,
    ),
    row(
        HResult::DSREG_E_DEVICE_INTERNALSERVICE_ERROR,
        "DSREG_E_DEVICE_INTERNALSERVICE_ERROR",
        ID_CONNECTIVITY,
        M_CONNECTIVITY,
    ),
    row(
        HResult::DSREG_E_DISCOVERY_REDIRECTION_NOT_TRUSTED,
        "DSREG_E_DISCOVERY_REDIRECTION_NOT_TRUSTED",
        Some("idErrorUntrustedServer"),
        "The server being contacted isn't trusted. Contact your system administrator with the error code {0}.",
    ),
    row(
        HResult::DSREG_E_DISCOVERY_FAILED,
        "DSREG_E_DISCOVERY_FAILED",
        ID_CONNECTIVITY,
        M_CONNECTIVITY,
    ),
    corrected(
        row(
            HResult::DSREG_E_DEVICE_REGISTRATION_QUOTA_EXCCEEDED,
            "DSREG_E_DEVICE_REGISTRATION_QUOTA_EXCCEEDED",
            Some("idErrorDeviceLimit"),
            M_DEVICE_LIMIT,
        ),
        "DSREG_E_DEVICE_REGISTRATION_QUOTA_EXCEEDED",
    ),
    row(
        HResult::DSREG_E_DEVICE_REQUIRES_REBOOT,
        "DSREG_E_DEVICE_REQUIRES_REBOOT",
        Some("idErrorDeviceRequiresReboot"),
        "A reboot is required to complete device registration.",
    ),
    row(
        HResult::DSREG_E_DEVICE_AIK_VALIDATION_ERROR,
        "DSREG_E_DEVICE_AIK_VALIDATION_ERROR",
        Some("idErrorInvalidCertificate"),
        "Looks like you have an invalid certificate. Contact your system administrator with the error code {0}.",
    ),
    row(
        HResult::DSREG_E_DEVICE_ATTESTATION_ERROR,
        "DSREG_E_DEVICE_ATTESTATION_ERROR",
        ID_AUTHENTICATION,
        M_AUTHENTICATION,
    ),
    row(
        HResult::DSREG_E_DISCOVERY_BAD_MESSAGE_ERROR,
        "DSREG_E_DISCOVERY_BAD_MESSAGE_ERROR",
        ID_CONNECTIVITY,
        M_CONNECTIVITY,
    ),
    row(
        HResult::DSREG_E_TENANTID_NOT_FOUND,
        "DSREG_E_TENANTID_NOT_FOUND",
        ID_AUTHENTICATION,
        M_AUTHENTICATION,
    ),
    row(
        HResult::DSREG_E_USERSID_NOT_FOUND,
        "DSREG_E_USERSID_NOT_FOUND",
        ID_AUTHENTICATION,
        M_AUTHENTICATION,
    ),
    ErrorEntry {
        code: Code::HResult(HResult::MENROLL_E_CUSTOMSERVERERROR),
        name: "MENROLL_E_CUSTOMSERVERERROR",
        corrected_name: None,
        message_id: None,
        message: "Windows shows the text of the SOAP fault's s:Reason/s:Text sent by the server.",
        fault_subcode: None,
        errortype: Some("CustomServerError"),
        source: Source::MsMde2,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        let want = HResult::MENROLL_E_DEVICENOTSUPPORTED;
        for s in [
            "0x80180014",
            "0X80180014",
            "80180014",
            "2149056532",
            "-2145910764",
            "  0x80180014\n",
        ] {
            assert_eq!(s.parse::<HResult>(), Ok(want), "{s:?}");
        }
        assert_eq!("0x801c000e".parse::<HResult>(), Ok(HResult(0x801C_000E)));
        assert_eq!("12345678".parse::<HResult>(), Ok(HResult(12_345_678)));
        assert_eq!("".parse::<HResult>(), Err(ParseHResultError::Empty));
        assert_eq!("0x".parse::<HResult>(), Err(ParseHResultError::NotANumber));
        assert_eq!("-".parse::<HResult>(), Err(ParseHResultError::NotANumber));
        assert_eq!(
            "0x+1".parse::<HResult>(),
            Err(ParseHResultError::NotANumber)
        );
        assert_eq!(
            "0x100000000".parse::<HResult>(),
            Err(ParseHResultError::OutOfRange)
        );
        assert_eq!(
            "-2147483649".parse::<HResult>(),
            Err(ParseHResultError::OutOfRange)
        );
        assert_eq!(
            "99999999999".parse::<HResult>(),
            Err(ParseHResultError::OutOfRange)
        );
        assert!(matches!(
            "0x00000000000000001".parse::<HResult>(),
            Err(ParseHResultError::TooLong { .. })
        ));
        assert_eq!(
            "MENROLL".parse::<HResult>(),
            Err(ParseHResultError::NotANumber)
        );
    }

    #[test]
    fn table_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for e in ENROLLMENT_ERRORS {
            assert!(seen.insert(e.code), "duplicate row for {}", e.code);
            if let Code::HResult(h) = e.code {
                assert!(h.is_failure());
                assert_eq!(h.entry(), Some(e));
            }
        }
        // 22 MENROLL rows + rejectedTermsOfUse + 13 DSREG rows + CUSTOMSERVERERROR.
        assert_eq!(ENROLLMENT_ERRORS.len(), 37);
    }

    #[test]
    fn http_facility() {
        assert_eq!(HResult(0x8019_00C8).http_status(), Some(200));
        assert_eq!(HResult(0x0019_00C8).http_status(), None);
        assert_eq!(HResult(0x8019_00C8).facility(), FACILITY_HTTP);
    }

    #[test]
    fn debug_prints_preferred_name() {
        assert_eq!(
            format!("{:?}", HResult(0x8018_0006)),
            "HResult(0x80180006 MENROLL_E_DEVICE_INTERNALSERVICE_ERROR)"
        );
        assert_eq!(format!("{:?}", HResult(1)), "HResult(0x00000001)");
    }
}
