//! MS-MDE2 discovery (§3.1): the `GET` probe and `Discover` → `DiscoverResponse`.
//!
//! Windows first sends `GET /EnrollmentServer/Discovery.svc` (empty body, user agent
//! `ENROLLClient`) and expects 200; then it posts `Discover`. The answer names the
//! authentication policy, the protocol version both sides speak
//! (`min(RequestVersion, configured maximum)`), and the policy and enrollment URLs. The
//! enrollment URL carries the discovery attributes (OS edition, version, device type,
//! application version) as query parameters, as the Entra integration doc recommends, and
//! [`DiscoveryAttributes::from_uri`] reads them back at enrollment.

use crate::fault::EnrollError;
use crate::soap::{self, Envelope, Limits, escape};

/// The `Discover` action.
pub const DISCOVER_ACTION: &str =
    "http://schemas.microsoft.com/windows/management/2012/01/enrollment/IDiscoveryService/Discover";
/// The `DiscoverResponse` action.
pub const DISCOVER_RESPONSE_ACTION: &str = "http://schemas.microsoft.com/windows/management/2012/01/enrollment/IDiscoveryService/DiscoverResponse";
/// The discovery namespace (requests also use it with a trailing slash).
pub const DISCOVERY_NS: &str = "http://schemas.microsoft.com/windows/management/2012/01/enrollment";

/// An authentication policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthPolicy {
    /// `Federated` (Entra and other identity providers).
    Federated,
    /// `OnPremise` (user name and password).
    OnPremise,
    /// `Certificate`.
    Certificate,
}

impl AuthPolicy {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Federated => "Federated",
            Self::OnPremise => "OnPremise",
            Self::Certificate => "Certificate",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            x if x.eq_ignore_ascii_case("Federated") => Some(Self::Federated),
            x if x.eq_ignore_ascii_case("OnPremise") => Some(Self::OnPremise),
            x if x.eq_ignore_ascii_case("Certificate") => Some(Self::Certificate),
            _ => None,
        }
    }
}

/// A protocol version (`major.minor`), compared numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u16, pub u16);

impl Version {
    /// Parses `5.0`, `9`, ` 4.0 `.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (a, b) = s.split_once('.').unwrap_or((s, "0"));
        Some(Self(a.parse().ok()?, b.parse().ok()?))
    }
}

impl core::fmt::Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// A `Discover` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverRequest {
    /// `a:MessageID`, as sent.
    pub message_id: Option<String>,
    /// `EmailAddress` (absent in Entra flows).
    pub email_address: Option<String>,
    /// `RequestVersion`.
    pub request_version: Option<Version>,
    /// `DeviceType`.
    pub device_type: Option<String>,
    /// `ApplicationVersion`.
    pub application_version: Option<String>,
    /// `OSEdition` (a `PRODUCT_*` number).
    pub os_edition: Option<u32>,
    /// `AuthPolicies/AuthPolicy`, in order.
    pub auth_policies: Vec<AuthPolicy>,
}

/// Parses a `Discover` POST body (SOAP 1.1 or 1.2; the namespace with or without its
/// trailing slash; any `RequestVersion`).
///
/// # Errors
/// [`EnrollError::Malformed`] / [`EnrollError::Unexpected`] (answered `s:MessageFormat`).
pub fn parse_discover(body: &[u8]) -> Result<DiscoverRequest, EnrollError> {
    let env = soap::envelope(body, &Limits::default())?;
    from_envelope(&env)
}

fn from_envelope(env: &Envelope) -> Result<DiscoverRequest, EnrollError> {
    let b = &env.body;
    if !b.name.eq_ignore_ascii_case("Discover") || b.ns.trim_end_matches('/') != DISCOVERY_NS {
        return Err(EnrollError::Unexpected(format!(
            "body is {{{}}}{}",
            b.ns, b.name
        )));
    }
    let req = b
        .child_named("request")
        .ok_or_else(|| EnrollError::Unexpected("Discover without request".into()))?;
    let text = |n: &str| {
        req.child_named(n)
            .map(|e| e.text().to_owned())
            .filter(|t| !t.is_empty())
    };
    let request_version = match text("RequestVersion") {
        Some(v) => Some(
            Version::parse(&v)
                .ok_or_else(|| EnrollError::Unexpected(format!("RequestVersion {v:?}")))?,
        ),
        None => None,
    };
    Ok(DiscoverRequest {
        message_id: env.message_id.clone(),
        email_address: text("EmailAddress"),
        request_version,
        device_type: text("DeviceType"),
        application_version: text("ApplicationVersion"),
        os_edition: text("OSEdition").and_then(|v| v.parse().ok()),
        auth_policies: req
            .child_named("AuthPolicies")
            .map(|p| {
                p.children_named("AuthPolicy")
                    .filter_map(|e| AuthPolicy::parse(e.text()))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The server's discovery answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// The policy offered. Default `Federated`.
    pub auth_policy: AuthPolicy,
    /// The oldest protocol version served; older clients get a fault. Default 3.0.
    pub min_version: Version,
    /// The newest protocol version served. Default 5.0.
    pub max_version: Version,
    /// `EnrollmentPolicyServiceUrl` (XCEP), if offered.
    pub policy_service_url: Option<String>,
    /// `EnrollmentServiceUrl` (WSTEP).
    pub enrollment_service_url: String,
    /// `AuthenticationServiceUrl` (Federated without Entra; the Entra flows skip it).
    pub authentication_service_url: Option<String>,
    /// Append the discovery attributes to the enrollment URL (default true).
    pub attributes_in_url: bool,
}

impl DiscoveryConfig {
    /// Federated, versions 3.0–5.0, attributes in the URL.
    pub fn federated(enrollment_service_url: impl Into<String>) -> Self {
        Self {
            auth_policy: AuthPolicy::Federated,
            min_version: Version(3, 0),
            max_version: Version(5, 0),
            policy_service_url: None,
            enrollment_service_url: enrollment_service_url.into(),
            authentication_service_url: None,
            attributes_in_url: true,
        }
    }
}

/// The discovery attributes carried in the enrollment URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiscoveryAttributes {
    /// `OSEdition`.
    pub os_edition: Option<u32>,
    /// `RequestVersion` (the version agreed).
    pub version: Option<Version>,
    /// `DeviceType`.
    pub device_type: Option<String>,
    /// `ApplicationVersion`.
    pub application_version: Option<String>,
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl DiscoveryAttributes {
    /// Reads the attributes back from an enrollment request URI (path and query).
    pub fn from_uri(uri: &http::Uri) -> Self {
        let mut out = Self::default();
        for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
            let v: String = v.chars().take(64).collect();
            match &*k {
                "OSEdition" => out.os_edition = v.parse().ok(),
                "Version" => out.version = Version::parse(&v),
                "DeviceType" => out.device_type = Some(v),
                "ApplicationVersion" => out.application_version = Some(v),
                _ => {}
            }
        }
        out
    }

    fn query(&self) -> String {
        let mut q = Vec::new();
        if let Some(e) = self.os_edition {
            q.push(format!("OSEdition={e}"));
        }
        if let Some(v) = self.version {
            q.push(format!("Version={v}"));
        }
        if let Some(d) = &self.device_type {
            q.push(format!("DeviceType={}", encode(d)));
        }
        if let Some(a) = &self.application_version {
            q.push(format!("ApplicationVersion={}", encode(a)));
        }
        q.join("&")
    }
}

/// The `GET` probe's answer: 200, empty body.
pub fn probe_response() -> http::Response<Vec<u8>> {
    let mut r = http::Response::new(Vec::new());
    r.headers_mut().insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from_static("0"),
    );
    r
}

/// Builds the `DiscoverResponse` for `request`.
///
/// # Errors
/// [`EnrollError::NotSupported`] for a `RequestVersion` below the minimum;
/// [`EnrollError::Unexpected`] when the client does not accept the configured policy.
pub fn discover_response(
    config: &DiscoveryConfig,
    request: &DiscoverRequest,
) -> Result<String, EnrollError> {
    let requested = request.request_version.unwrap_or(Version(1, 0));
    if requested < config.min_version {
        return Err(EnrollError::NotSupported(format!(
            "RequestVersion {requested} < {}",
            config.min_version
        )));
    }
    if !request.auth_policies.is_empty() && !request.auth_policies.contains(&config.auth_policy) {
        return Err(EnrollError::Unexpected(format!(
            "client does not accept {}",
            config.auth_policy.as_str()
        )));
    }
    let version = requested.min(config.max_version);
    let mut enrollment_url = config.enrollment_service_url.clone();
    if config.attributes_in_url {
        let attrs = DiscoveryAttributes {
            os_edition: request.os_edition,
            version: Some(version),
            device_type: request.device_type.clone(),
            application_version: request.application_version.clone(),
        };
        let q = attrs.query();
        if !q.is_empty() {
            enrollment_url.push(if enrollment_url.contains('?') {
                '&'
            } else {
                '?'
            });
            enrollment_url.push_str(&q);
        }
    }
    let opt = |name: &str, v: &Option<String>| {
        v.as_ref()
            .map_or(String::new(), |u| format!("<{name}>{}</{name}>", escape(u)))
    };
    let relates = request.message_id.as_ref().map_or(String::new(), |m| {
        format!("<a:RelatesTo>{}</a:RelatesTo>", escape(m))
    });
    Ok(format!(
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:a=\"http://www.w3.org/2005/08/addressing\">\
         <s:Header><a:Action s:mustUnderstand=\"1\">{DISCOVER_RESPONSE_ACTION}</a:Action>{relates}</s:Header>\
         <s:Body><DiscoverResponse xmlns=\"{DISCOVERY_NS}\"><DiscoverResult>\
         <AuthPolicy>{policy}</AuthPolicy><EnrollmentVersion>{version}</EnrollmentVersion>{pol}\
         <EnrollmentServiceUrl>{enr}</EnrollmentServiceUrl>{auth}\
         </DiscoverResult></DiscoverResponse></s:Body></s:Envelope>",
        policy = config.auth_policy.as_str(),
        pol = opt("EnrollmentPolicyServiceUrl", &config.policy_service_url),
        enr = escape(&enrollment_url),
        auth = opt(
            "AuthenticationServiceUrl",
            &config.authentication_service_url
        ),
    ))
}
