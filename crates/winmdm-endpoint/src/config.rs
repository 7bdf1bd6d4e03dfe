//! What the vendor decides: URLs, certificate lifetimes, who may enroll, what a new device
//! is sent first.

use std::time::Duration;

use winmdm_enroll::discovery::DiscoveryConfig;
use winmdm_tou::TouConfig;

use crate::commands::CommandSpec;

/// The paths of the device-facing routes, under [`EndpointConfig::public_url`]. The
/// defaults are the ones Windows derives from the discovery host and the ones every MDM
/// registers in Entra.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Paths {
    /// The Terms-of-Use page (registered in Entra as the MDM's terms of use URL).
    pub terms_of_use: String,
    /// MS-MDE2 discovery (GET probe and POST `Discover`).
    pub discovery: String,
    /// MS-XCEP `GetPolicies`.
    pub policy: String,
    /// MS-WSTEP `RequestSecurityToken`: issue, renew and recover.
    pub enrollment: String,
    /// OMA-DM (SyncML 1.2) management.
    pub management: String,
}

impl Default for Paths {
    fn default() -> Self {
        Self {
            terms_of_use: "/TermsOfUse".into(),
            discovery: "/EnrollmentServer/Discovery.svc".into(),
            policy: "/EnrollmentServer/Policy.svc".into(),
            enrollment: "/EnrollmentServer/Enrollment.svc".into(),
            management: "/ManagementServer/MDM.svc".into(),
        }
    }
}

/// Whether an enrollment must carry the `OpaqueBlob` the Terms-of-Use page returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TermsOfUseBlob {
    /// Required (the default): Windows sends it as the `EnrollmentData` context item of
    /// every enrollment that went through the page, and an enrollment without it never
    /// saw (or never accepted) the terms. Refused with `Authorization`.
    #[default]
    Required,
    /// Checked when present, not required: for flows that have no Terms-of-Use page
    /// (an MDM registered without one). Choose this explicitly; it is never implied.
    NotRequired,
}

/// The endpoint's configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EndpointConfig {
    /// How devices reach the server: `https://mdm.example.com` (no trailing slash).
    pub public_url: String,
    /// Route paths.
    pub paths: Paths,
    /// The provisioning document's `PROVIDER-ID` (also the OMA-DM server ID).
    pub provider_id: String,
    /// The MDM's display name in Windows' settings.
    pub name: String,
    /// How long device certificates are valid.
    pub certificate_validity: Duration,
    /// How long before expiry a certificate may be renewed.
    pub renewal_window: Duration,
    /// Accept ECDSA P-256 keys in CSRs (Windows sends RSA; some third-party clients do not).
    pub allow_ecdsa: bool,
    /// Whether the Terms-of-Use blob is required.
    pub terms_of_use_blob: TermsOfUseBlob,
    /// The most devices one user (tenant and object ID) may have enrolled at once;
    /// more are refused with `MENROLL_E_DEVICECAPREACHED`. `None`: no limit.
    pub max_devices_per_user: Option<u32>,
    /// A delegated permission (`scp`) every user token must carry — at the Terms-of-Use
    /// page, policy, enrollment and as a session's `AADUserToken`. `None`: any user token
    /// the validator accepts. Entra gives Windows a token for the MDM application with the
    /// scopes the tenant consented to; requiring one (`mdm_delegation`, say) refuses tokens
    /// that were issued for the application but not for enrollment.
    pub required_scope: Option<String>,
    /// Commands queued for every new device (its first session sends them).
    pub initial_commands: Vec<CommandSpec>,
    /// The Terms-of-Use flow's settings (redirect allow-list, lifetimes, page).
    pub terms_of_use: TouConfig,
    /// The discovery answer. [`EndpointConfig::new`] fills it for Federated
    /// authentication with this endpoint's policy and enrollment URLs; change it for
    /// another authentication policy or an `AuthenticationServiceUrl`.
    pub discovery: DiscoveryConfig,
    /// How long an idle management session is kept before it is abandoned.
    pub session_idle_timeout: Duration,
    /// Wrong digest credentials a device may send within [`Self::auth_failure_window`]
    /// before digest authentication is refused for it until the window passes (HTTP 403
    /// with `Retry-After`). Certificate authentication is never locked out.
    pub max_auth_failures: u32,
    /// The window failures are counted in.
    pub auth_failure_window: Duration,
    /// Accept digest credentials from a device that has presented its current
    /// certificate on the management route. Off by default: once a device has proven it
    /// authenticates with its certificate, digest credentials alone do not authenticate it
    /// (someone who learned them cannot use them) and wrong digests for it are not counted
    /// (nobody can lock it out). Turn it on if your TLS layer may stop passing client
    /// certificates (a load balancer that terminates TLS).
    pub allow_digest_after_certificate: bool,
    /// The Enrollment Status Page for devices that join Entra in OOBE (`Device`
    /// enrollments whose request does not say `NotInOobe` true): what must be delivered
    /// before the page releases the user, its time-out and failure text (see
    /// [`crate::esp`]). `None` (the default): no page (Windows skips it by default).
    pub esp: Option<crate::esp::EspConfig>,
}

impl EndpointConfig {
    /// A configuration for a server at `public_url` with the defaults: 365-day
    /// certificates renewable in their last 60 days, the Terms-of-Use blob required, no
    /// device cap, no required scope.
    pub fn new(public_url: &str) -> Self {
        let public_url = public_url.trim_end_matches('/').to_owned();
        let paths = Paths::default();
        let discovery = discovery_for(&public_url, &paths);
        Self {
            public_url,
            paths,
            provider_id: "winmdm".into(),
            name: "winmdm".into(),
            certificate_validity: Duration::from_secs(365 * 86_400),
            renewal_window: Duration::from_secs(60 * 86_400),
            allow_ecdsa: false,
            terms_of_use_blob: TermsOfUseBlob::Required,
            max_devices_per_user: None,
            required_scope: None,
            initial_commands: Vec::new(),
            terms_of_use: TouConfig::default(),
            discovery,
            session_idle_timeout: Duration::from_secs(600),
            max_auth_failures: 10,
            auth_failure_window: Duration::from_secs(15 * 60),
            allow_digest_after_certificate: false,
            esp: None,
        }
    }

    /// The full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }

    /// The OMA-DM server URL the provisioning document names.
    pub fn management_url(&self) -> String {
        self.url(&self.paths.management)
    }
}

/// Federated discovery pointing at this endpoint's policy and enrollment services.
pub(crate) fn discovery_for(public_url: &str, paths: &Paths) -> DiscoveryConfig {
    let mut d = DiscoveryConfig::federated(format!("{public_url}{}", paths.enrollment));
    d.policy_service_url = Some(format!("{public_url}{}", paths.policy));
    d
}
