//! MS-WSTEP `RequestSecurityToken` as MS-MDE2 §3.4 profiles it: the user's token, the
//! PKCS#10 (or, for renewal, PKCS#7), and the `AdditionalContext` items.

use crate::enrollment_data::{EnrollmentData, EnrollmentDataVerifier, TokenIdentity};
use crate::fault::EnrollError;
use std::borrow::Cow;

use crate::soap::{self, Limits, Scanner, SoapError, Step, Tag};
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
///
/// Held as one string (names and values back to back) and their ends, so reading a
/// request allocates twice for its context however many items it has.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AdditionalContext {
    text: String,
    /// Where each item's name and value end in `text`; an item starts where the
    /// previous one ended.
    ends: Vec<(usize, usize)>,
}

impl core::fmt::Debug for AdditionalContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.items()).finish()
    }
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for AdditionalContext {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut c = Self::default();
        for (n, v) in iter {
            c.push(n.as_ref(), v.as_ref());
        }
        c
    }
}

impl AdditionalContext {
    /// Appends an item.
    pub fn push(&mut self, name: &str, value: &str) {
        self.text.push_str(name);
        let name_end = self.text.len();
        self.text.push_str(value);
        self.ends.push((name_end, self.text.len()));
    }

    /// How many items.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// No items.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Every item (name, value), in order.
    pub fn items(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.ends.iter().enumerate().map(|(i, &(name_end, end))| {
            let start = i.checked_sub(1).map_or(0, |p| self.ends[p].1);
            (
                self.text.get(start..name_end).unwrap_or_default(),
                self.text.get(name_end..end).unwrap_or_default(),
            )
        })
    }

    /// The first value of `name` (case-insensitive), trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.items()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.items()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
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

    /// Verifies the `EnrollmentData` item — the Terms-of-Use page's `OpaqueBlob` — for
    /// the token's user. It is required: a request without one did not come through the
    /// Terms-of-Use page, and is refused.
    ///
    /// # Errors
    /// [`EnrollError::Authorization`] when the request has no `EnrollmentData`;
    /// [`EnrollError::InvalidEnrollmentData`] when the blob does not verify.
    pub fn verify_enrollment_data(
        &self,
        verifier: &dyn EnrollmentDataVerifier,
        identity: &TokenIdentity<'_>,
        now: u64,
    ) -> Result<EnrollmentData, EnrollError> {
        self.verify_enrollment_data_if_present(verifier, identity, now)?
            .ok_or_else(|| {
                EnrollError::Authorization(
                    "the Terms of Use were not accepted (no EnrollmentData)".into(),
                )
            })
    }

    /// For flows without a Terms-of-Use page only (the vendor opted out explicitly):
    /// verifies the `EnrollmentData` item if there is one, and is `Ok(None)` without it.
    ///
    /// # Errors
    /// [`EnrollError::InvalidEnrollmentData`] when a blob is present and does not verify.
    pub fn verify_enrollment_data_if_present(
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

/// `wst:RequestType`'s (trimmed) text read.
fn request_type(text: Option<&str>) -> Result<RequestType, EnrollError> {
    match text {
        Some(t) if t.ends_with("/Issue") => Ok(RequestType::Issue),
        Some(t) if t.ends_with("/Renew") => Ok(RequestType::Renew),
        Some(t) if t.ends_with("/Recovery") => Ok(RequestType::Recovery),
        other => Err(EnrollError::Unexpected(format!("RequestType {other:?}"))),
    }
}

/// Where an element sits in a `RequestSecurityToken`, for the streaming reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Nothing read from it.
    Other,
    Envelope,
    Header,
    MessageId,
    To,
    Security,
    HeaderToken,
    UsernameToken,
    Username,
    Password,
    Body,
    /// The body's first element.
    Request,
    RequestType,
    RequestToken,
    AdditionalContext,
    ContextItem,
    Value,
}

/// Text read so far: borrowed while it is one piece (the usual case), owned after.
fn append<'a>(dst: &mut Cow<'a, str>, piece: Cow<'a, str>) {
    if dst.is_empty() {
        *dst = piece;
    } else {
        dst.to_mut().push_str(&piece);
    }
}

/// A `UsernameToken`'s user name and password, as read.
type Credentials<'a> = (Option<Cow<'a, str>>, Option<Cow<'a, str>>);

/// What the streaming reader keeps of a `RequestSecurityToken`.
#[derive(Default)]
struct RstParts<'a> {
    root_is_envelope: bool,
    root_ns: &'a str,
    seen_header: bool,
    seen_body: bool,
    /// The body's first element: namespace and local name.
    request: Option<(&'a str, &'a str)>,
    message_id: Option<Cow<'a, str>>,
    to: Option<Cow<'a, str>>,
    seen_security: bool,
    /// The header token's `ValueType` and text.
    header_token: Option<(Cow<'a, str>, Cow<'a, str>)>,
    /// `Username` and `Password`, when the header carries a `UsernameToken`.
    username_token: Option<Credentials<'a>>,
    request_type: Option<Cow<'a, str>>,
    request_token: Option<(Cow<'a, str>, Cow<'a, str>)>,
    seen_context: bool,
    context: Vec<(Cow<'a, str>, Option<Cow<'a, str>>)>,
    seen_action: bool,
    seen_token_type: bool,
    /// The first singleton of the envelope, its header or its security header that
    /// appeared twice (reported after the checks the tree reader makes first).
    envelope_duplicate: Option<&'static str>,
    /// The first singleton of the request that appeared twice.
    request_duplicate: Option<&'static str>,
}

impl<'a> RstParts<'a> {
    /// The text buffer an element of `role` collects into.
    fn text_of(&mut self, role: Role) -> Option<&mut Cow<'a, str>> {
        match role {
            Role::MessageId => self.message_id.as_mut(),
            Role::To => self.to.as_mut(),
            Role::HeaderToken => self.header_token.as_mut().map(|t| &mut t.1),
            Role::Username => self.username_token.as_mut().and_then(|u| u.0.as_mut()),
            Role::Password => self.username_token.as_mut().and_then(|u| u.1.as_mut()),
            Role::RequestType => self.request_type.as_mut(),
            Role::RequestToken => self.request_token.as_mut().map(|t| &mut t.1),
            Role::Value => self.context.last_mut().and_then(|c| c.1.as_mut()),
            _ => None,
        }
    }

    /// The role of an element opening under `parent`, recording what it starts.
    fn open(&mut self, parent: Option<Role>, tag: &Tag<'a>) -> Result<Role, SoapError> {
        let name = tag.local_name();
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        Ok(match parent {
            None => {
                self.root_is_envelope = is("Envelope");
                self.root_ns = tag.ns;
                Role::Envelope
            }
            Some(Role::Envelope) if is("Header") => {
                if self.seen_header {
                    self.envelope_duplicate.get_or_insert("Header");
                    return Ok(Role::Other);
                }
                self.seen_header = true;
                Role::Header
            }
            Some(Role::Envelope) if is("Body") => {
                if self.seen_body {
                    self.envelope_duplicate.get_or_insert("Body");
                    return Ok(Role::Other);
                }
                self.seen_body = true;
                Role::Body
            }
            Some(Role::Header) if is("Action") => {
                if self.seen_action {
                    self.envelope_duplicate.get_or_insert("Action");
                }
                self.seen_action = true;
                Role::Other
            }
            Some(Role::Header) if is("MessageID") => {
                if self.message_id.is_some() {
                    self.envelope_duplicate.get_or_insert("MessageID");
                    return Ok(Role::Other);
                }
                self.message_id = Some(Cow::Borrowed(""));
                Role::MessageId
            }
            Some(Role::Header) if is("To") => {
                if self.to.is_some() {
                    self.envelope_duplicate.get_or_insert("To");
                    return Ok(Role::Other);
                }
                self.to = Some(Cow::Borrowed(""));
                Role::To
            }
            Some(Role::Header) if is("Security") => {
                if self.seen_security {
                    self.envelope_duplicate.get_or_insert("Security");
                    return Ok(Role::Other);
                }
                self.seen_security = true;
                Role::Security
            }
            Some(Role::Security) if is("BinarySecurityToken") => {
                if self.header_token.is_some() {
                    self.envelope_duplicate.get_or_insert("BinarySecurityToken");
                    return Ok(Role::Other);
                }
                let value_type = tag.attr("ValueType")?.unwrap_or_default();
                self.header_token = Some((value_type, Cow::Borrowed("")));
                Role::HeaderToken
            }
            Some(Role::Security) if is("UsernameToken") => {
                if self.username_token.is_some() {
                    self.envelope_duplicate.get_or_insert("UsernameToken");
                    return Ok(Role::Other);
                }
                self.username_token = Some((None, None));
                Role::UsernameToken
            }
            Some(Role::UsernameToken) => match &mut self.username_token {
                Some((user @ None, _)) if is("Username") => {
                    *user = Some(Cow::Borrowed(""));
                    Role::Username
                }
                Some((_, password @ None)) if is("Password") => {
                    *password = Some(Cow::Borrowed(""));
                    Role::Password
                }
                _ => Role::Other,
            },
            Some(Role::Body) => {
                if self.request.is_some() {
                    self.envelope_duplicate.get_or_insert("Body content");
                    return Ok(Role::Other);
                }
                self.request = Some((tag.ns, name));
                Role::Request
            }
            Some(Role::Request) if is("TokenType") => {
                if self.seen_token_type {
                    self.request_duplicate.get_or_insert("TokenType");
                }
                self.seen_token_type = true;
                Role::Other
            }
            Some(Role::Request) if is("RequestType") => {
                if self.request_type.is_some() {
                    self.request_duplicate.get_or_insert("RequestType");
                    return Ok(Role::Other);
                }
                self.request_type = Some(Cow::Borrowed(""));
                Role::RequestType
            }
            Some(Role::Request) if is("BinarySecurityToken") => {
                if self.request_token.is_some() {
                    self.request_duplicate.get_or_insert("BinarySecurityToken");
                    return Ok(Role::Other);
                }
                let value_type = tag.attr("ValueType")?.unwrap_or_default();
                self.request_token = Some((value_type, Cow::Borrowed("")));
                Role::RequestToken
            }
            Some(Role::Request) if is("AdditionalContext") => {
                if self.seen_context {
                    self.request_duplicate.get_or_insert("AdditionalContext");
                    return Ok(Role::Other);
                }
                self.seen_context = true;
                Role::AdditionalContext
            }
            Some(Role::AdditionalContext) if self.context.len() < 256 && is("ContextItem") => {
                let name = tag.attr("Name")?.unwrap_or_default();
                self.context.push((name, None));
                Role::ContextItem
            }
            Some(Role::ContextItem) if is("Value") => match self.context.last_mut() {
                Some((_, value @ None)) => {
                    *value = Some(Cow::Borrowed(""));
                    Role::Value
                }
                _ => Role::Other,
            },
            Some(_) => Role::Other,
        })
    }
}

/// Parses a `RequestSecurityToken` POST body.
///
/// One pass over the document keeps only what the request carries (no tree is built);
/// it reads exactly what [`soap::envelope`] and [`token::from_header`] would read from
/// the tree (a test and the `enroll_rst` fuzz target hold the two readings equal).
///
/// # Errors
/// [`EnrollError::Malformed`] / [`EnrollError::Unexpected`] (`s:MessageFormat`),
/// [`EnrollError::Authentication`] for a token that cannot be read.
pub fn parse_rst(body: &[u8]) -> Result<RstRequest, EnrollError> {
    let mut scanner = Scanner::new(body, &Limits::default())?;
    let mut parts = RstParts::default();
    let mut roles: Vec<Role> = Vec::with_capacity(16);
    while let Some(step) = scanner.next()? {
        match step {
            Step::Open(tag) => {
                let role = parts.open(roles.last().copied(), &tag)?;
                if !tag.empty {
                    roles.push(role);
                }
            }
            Step::Close => {
                roles.pop();
            }
            Step::Text(t) => {
                if let Some(dst) = roles.last().and_then(|r| parts.text_of(*r)) {
                    append(dst, t);
                }
            }
            Step::Char(c) => {
                if let Some(dst) = roles.last().and_then(|r| parts.text_of(*r)) {
                    dst.to_mut().push(c);
                }
            }
        }
    }
    // The same checks, in the same order, as a reading through the tree.
    if !parts.root_is_envelope {
        return Err(SoapError::NotSoap("root is not Envelope").into());
    }
    if !matches!(parts.root_ns, soap::SOAP12 | soap::SOAP11) {
        return Err(SoapError::NotSoap("unknown envelope namespace").into());
    }
    if let Some(name) = parts.envelope_duplicate {
        return Err(SoapError::Duplicate(name).into());
    }
    if !parts.seen_body {
        return Err(SoapError::NotSoap("no Body").into());
    }
    let Some((ns, name)) = parts.request else {
        return Err(SoapError::NotSoap("empty Body").into());
    };
    if !name.eq_ignore_ascii_case("RequestSecurityToken") || ns != WST_NS {
        return Err(EnrollError::Unexpected(format!("body is {{{ns}}}{name}")));
    }
    if let Some(name) = parts.request_duplicate {
        return Err(SoapError::Duplicate(name).into());
    }
    let request_type = request_type(parts.request_type.as_deref().map(str::trim))?;
    let Some((request_value_type, request_data)) = parts.request_token else {
        return Err(EnrollError::Unexpected(
            "no BinarySecurityToken in the body".into(),
        ));
    };
    let mut context = AdditionalContext {
        text: String::with_capacity(
            parts
                .context
                .iter()
                .map(|(n, v)| n.len() + v.as_ref().map_or(0, |v| v.len()))
                .sum(),
        ),
        ends: Vec::with_capacity(parts.context.len()),
    };
    for (name, value) in &parts.context {
        context.push(name, value.as_deref().map_or("", str::trim));
    }
    let token = match (parts.header_token, parts.username_token) {
        (Some((value_type, text)), _) => {
            Some(token::from_parts(value_type.into_owned(), text.trim())?)
        }
        (None, Some((user, password))) => Some(SecurityToken::UsernameToken {
            username: user.as_deref().map_or("", str::trim).to_owned(),
            password: password.as_deref().map_or("", str::trim).to_owned(),
        }),
        (None, None) => None,
    };
    Ok(RstRequest {
        message_id: parts.message_id.map(Cow::into_owned),
        to: parts.to.map(|t| t.trim().to_owned()),
        token,
        request_type,
        request_value_type: request_value_type.into_owned(),
        request_data: request_data.trim().to_owned(),
        context,
    })
}

/// [`parse_rst`] through the tree ([`soap::envelope`]): the reference the streaming
/// reader is tested against.
#[doc(hidden)]
pub fn parse_rst_via_tree(body: &[u8]) -> Result<RstRequest, EnrollError> {
    let env = soap::envelope(body, &Limits::default())?;
    let b = &env.body;
    if !b.name.eq_ignore_ascii_case("RequestSecurityToken") || b.ns != WST_NS {
        return Err(EnrollError::Unexpected(format!(
            "body is {{{}}}{}",
            b.ns, b.name
        )));
    }
    for name in [
        "TokenType",
        "RequestType",
        "BinarySecurityToken",
        "AdditionalContext",
    ] {
        soap::single(b, name)?;
    }
    let request_type = request_type(b.child_named("RequestType").map(|e| e.text()))?;
    let bst = b
        .child_named("BinarySecurityToken")
        .ok_or_else(|| EnrollError::Unexpected("no BinarySecurityToken in the body".into()))?;
    let mut context = AdditionalContext::default();
    if let Some(ac) = b.child_named("AdditionalContext") {
        for item in ac.children_named("ContextItem").take(256) {
            let name = item.attr("Name").unwrap_or_default();
            let value = item.child_named("Value").map_or("", |v| v.text());
            context.push(name, value);
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
