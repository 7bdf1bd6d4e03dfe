//! Configuration: a JSON file, then environment variables and flags (see `main.rs`), over
//! defaults that need nothing at all.
//!
//! Every default can be replaced:
//! * no `entra.authority` → an embedded Entra emulator on loopback issues and publishes
//!   the tokens;
//! * no `graph.url` → an embedded Graph emulator receives compliance reports;
//! * no `ca` → a development CA generated on first start and kept in the data directory;
//! * no `tls` → a server certificate for `localhost`/`127.0.0.1` from that CA;
//! * no `admin_secret` → one generated on first start, in `<data_dir>/admin-secret`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::commands::CommandSpec;

/// A secret string: `[redacted]` in `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database, the development CA and generated secrets live.
    pub data_dir: PathBuf,
    /// The device-facing HTTPS listener.
    pub listen: SocketAddr,
    /// The admin API listener (keep it on loopback or a management network).
    pub admin_listen: SocketAddr,
    /// How devices reach the server (`https://host:port`); default `https://<listen>`.
    pub public_url: Option<String>,
    /// The admin API's bearer secret; generated on first start when absent.
    pub admin_secret: Option<Secret>,
    /// A PostgreSQL URL (`postgres://user:password@host/db`) to share storage between
    /// instances; default: SQLite in the data directory.
    pub database_url: Option<Secret>,
    /// PostgreSQL connections per instance.
    pub database_pool: usize,
    /// Where device tokens come from.
    pub entra: EntraConfig,
    /// Where compliance is reported.
    pub graph: GraphConfig,
    /// The CA that issues device certificates.
    pub ca: PemPair,
    /// The HTTPS server certificate.
    pub tls: PemPair,
    /// Enrollment policy.
    pub enrollment: EnrollmentConfig,
    /// Management policy.
    pub management: ManagementConfig,
    /// The Terms of Use shown to users.
    pub terms: TermsConfig,
    /// Connection limits and timeouts on both listeners.
    pub edge: crate::edge::EdgeConfig,
    /// The Enrollment Status Page for devices that join Entra in OOBE.
    pub esp: EspSection,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("winmdm-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 8444)),
            public_url: None,
            admin_secret: None,
            database_url: None,
            database_pool: 16,
            entra: EntraConfig::default(),
            graph: GraphConfig::default(),
            ca: PemPair::default(),
            tls: PemPair::default(),
            enrollment: EnrollmentConfig::default(),
            management: ManagementConfig::default(),
            terms: TermsConfig::default(),
            edge: crate::edge::EdgeConfig::default(),
            esp: EspSection::default(),
        }
    }
}

/// Token validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EntraConfig {
    /// The authority serving OIDC metadata and JWKS (`https://login.microsoftonline.com`,
    /// a national cloud, or another issuer with the same layout). `None`: the embedded
    /// emulator.
    pub authority: Option<String>,
    /// Tenants whose users may enroll (IDs). There is no "any tenant".
    pub tenants: Vec<String>,
    /// Accepted audiences: the MDM application's ID and ID URI.
    pub audiences: Vec<String>,
}

impl Default for EntraConfig {
    fn default() -> Self {
        use winmdm_testkit::entra;
        Self {
            authority: None,
            tenants: vec![entra::CONTOSO.id.to_owned()],
            audiences: vec![
                entra::MDM_APP_ID.to_owned(),
                entra::MDM_APP_ID_URI.to_owned(),
            ],
        }
    }
}

/// Microsoft Graph.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphConfig {
    /// The Graph base URL (`https://graph.microsoft.com/v1.0`). `None`: the embedded
    /// emulator.
    pub url: Option<String>,
    /// The token authority for app-only tokens; default: `entra.authority`.
    pub authority: Option<String>,
    /// The MDM application's client ID.
    pub client_id: String,
    /// Its client secret (default: the testkit's, for the embedded emulators).
    pub client_secret: Option<Secret>,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            url: None,
            authority: None,
            client_id: winmdm_testkit::entra::MDM_APP_ID.to_owned(),
            client_secret: None,
        }
    }
}

/// A certificate and its private key, both PEM files.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PemPair {
    /// The certificate (PEM).
    pub cert: Option<PathBuf>,
    /// The PKCS#8 private key (PEM).
    pub key: Option<PathBuf>,
}

/// Enrollment policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnrollmentConfig {
    /// Device certificate validity, days.
    pub validity_days: u64,
    /// How long before expiry renewal opens, days.
    pub renewal_window_days: u64,
    /// The DMClient provider ID.
    pub provider_id: String,
    /// The account name Windows shows.
    pub name: String,
    /// Accept ECDSA P-256/P-384 device keys (Windows makes RSA keys; simulators and
    /// load tests may not).
    pub allow_ecdsa: bool,
    /// The most devices one user may have enrolled at once (`MENROLL_E_DEVICECAPREACHED`
    /// beyond); unset: no limit.
    pub max_devices_per_user: Option<u32>,
    /// A delegated permission (`scp`) every user token must carry; unset: any user token
    /// of an allowed tenant and audience.
    pub required_scope: Option<String>,
    /// Require the Terms-of-Use blob in every enrollment (default). Turn off only for an
    /// MDM registered in Entra without a Terms-of-Use page.
    pub require_terms_blob: bool,
    /// `AuthenticationServiceUrl` in the discovery answer (Federated flows that are not
    /// Entra join sign the user in there); unset: none.
    pub authentication_service_url: Option<String>,
    /// Name the policy service (`EnrollmentPolicyServiceUrl`) in the discovery answer
    /// (default). MS-MDE2 makes it optional: without it Windows skips `GetPolicies`.
    pub advertise_policy_service: bool,
}

impl Default for EnrollmentConfig {
    fn default() -> Self {
        Self {
            validity_days: 365,
            renewal_window_days: 60,
            provider_id: "winmdm".to_owned(),
            name: "winmdm reference server".to_owned(),
            allow_ecdsa: false,
            max_devices_per_user: None,
            required_scope: None,
            require_terms_blob: true,
            authentication_service_url: None,
            advertise_policy_service: true,
        }
    }
}

/// Management policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ManagementConfig {
    /// Management requests handled at once; more get 429 with `Retry-After`.
    pub max_in_flight: usize,
    /// The `Retry-After` of a 429, seconds.
    pub retry_after_secs: u64,
    /// Commands queued for every newly enrolled device.
    pub initial_commands: Vec<CommandSpec>,
    /// Wrong digest credentials a device may send within `auth_failure_window_secs`
    /// before digest authentication is refused for it (HTTP 403) until the window passes;
    /// certificate authentication is never locked out.
    pub max_auth_failures: u32,
    /// The window failed authentications are counted in, seconds.
    pub auth_failure_window_secs: u64,
    /// Accept digest credentials from a device that has presented its certificate (off:
    /// such a device authenticates with its certificate only, and cannot be locked out).
    pub allow_digest_after_certificate: bool,
}

impl Default for ManagementConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 64,
            retry_after_secs: 5,
            max_auth_failures: 10,
            auth_failure_window_secs: 15 * 60,
            allow_digest_after_certificate: false,
            initial_commands: vec![
                CommandSpec::Get {
                    targets: vec!["./DevDetail/SwV".into(), "./DevInfo/Mod".into()],
                },
                CommandSpec::Replace {
                    target: "./Vendor/MSFT/Policy/Config/Update/ActiveHoursStart".into(),
                    format: "int".into(),
                    data: "8".into(),
                },
                CommandSpec::Exec {
                    target: "./Vendor/MSFT/Defender/QuickScan".into(),
                    format: None,
                    data: None,
                },
            ],
        }
    }
}

/// The Enrollment Status Page (`[esp]`): what a device joining Entra in OOBE must receive
/// before Windows lets the user in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EspSection {
    /// Show the page (off: Windows skips it, as by default).
    pub enabled: bool,
    /// Commands to deliver during device setup, each with a label.
    pub device: Vec<EspCommand>,
    /// Commands to deliver during account setup, after the user signs in.
    pub user: Vec<EspCommand>,
    /// Show account setup after sign-in (`SkipUserStatusPage` false).
    pub user_phase: bool,
    /// `TimeOutUntilSyncFailure`, minutes (1–1440): the page fails after it.
    pub timeout_minutes: u32,
    /// `BlockInStatusPage` flags: 1 Reset PC, 2 Try again, 4 Continue anyway (on failure);
    /// 0 lets the user leave the page.
    pub block: u8,
    /// Show the Collect logs button.
    pub allow_collect_logs: bool,
    /// The text shown when the page fails.
    pub error_text: String,
}

/// A command the page tracks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EspCommand {
    /// A name for the admin API.
    pub label: String,
    /// The command.
    pub command: CommandSpec,
}

impl Default for EspSection {
    fn default() -> Self {
        Self {
            enabled: false,
            device: vec![EspCommand {
                label: "active hours".into(),
                command: CommandSpec::Replace {
                    target: "./Device/Vendor/MSFT/Policy/Config/Update/ActiveHoursStart".into(),
                    format: "int".into(),
                    data: "8".into(),
                },
            }],
            user: Vec::new(),
            user_phase: true,
            timeout_minutes: 60,
            block: 5,
            allow_collect_logs: true,
            error_text: "Setting up this device did not finish. Contact your IT department.".into(),
        }
    }
}

impl EspSection {
    /// The endpoint's page, when enabled.
    ///
    /// # Errors
    /// A time-out outside 1–1440 minutes, or flags above 7.
    pub fn endpoint(&self) -> Result<Option<winmdm_endpoint::EspConfig>, String> {
        use winmdm_syncml::dmclient::{BlockFlags, Scope, Timeout};
        if !self.enabled {
            return Ok(None);
        }
        let timeout = Timeout::minutes(self.timeout_minutes)
            .map_err(|e| format!("esp.timeout_minutes: {e}"))?;
        if self.block > 7 {
            return Err("esp.block: flags 1, 2 and 4 only".into());
        }
        let items = self
            .device
            .iter()
            .map(|c| (Scope::Device, c))
            .chain(self.user.iter().map(|c| (Scope::User, c)))
            .map(|(scope, c)| winmdm_endpoint::EspItem {
                label: c.label.clone(),
                scope,
                command: c.command.clone(),
            })
            .collect();
        Ok(Some(winmdm_endpoint::EspConfig {
            items,
            timeout,
            block: BlockFlags(self.block),
            allow_collect_logs: self.allow_collect_logs,
            error_text: self.error_text.clone(),
            user_phase: self.user_phase,
            expected: Vec::new(),
        }))
    }
}

/// The Terms of Use.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TermsConfig {
    /// The heading.
    pub title: String,
    /// The text (plain; paragraphs separated by blank lines).
    pub text: String,
}

impl Default for TermsConfig {
    fn default() -> Self {
        Self {
            title: "Device management".to_owned(),
            text: "Your organization manages work data and settings on this device. \
                   It can see the device's model, operating system and compliance, \
                   never your personal files."
                .to_owned(),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid configuration.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A value is unusable.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads a JSON configuration file (unknown keys are errors).
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Checks values that serde cannot.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`].
    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.entra.tenants.is_empty() {
            return bad("entra.tenants is empty: name the tenants whose devices may enroll");
        }
        if self.entra.audiences.is_empty() {
            return bad("entra.audiences is empty: name the MDM application's ID and ID URI");
        }
        if self.entra.authority.is_some() && self.graph.url.is_some() {
            // External services need real credentials: the testkit secret cannot work.
            if self.graph.client_secret.is_none() {
                return bad("graph.client_secret is required with an external Graph");
            }
        }
        if self.ca.cert.is_some() != self.ca.key.is_some() {
            return bad("ca.cert and ca.key go together");
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return bad("tls.cert and tls.key go together");
        }
        if self.enrollment.validity_days == 0 {
            return bad("enrollment.validity_days must be at least 1");
        }
        if let Some(url) = &self.database_url
            && !(url.0.starts_with("postgres://") || url.0.starts_with("postgresql://"))
        {
            return bad("database_url must be a postgres:// URL");
        }
        if self.management.max_in_flight == 0 {
            return bad("management.max_in_flight must be at least 1");
        }
        if let Err(e) = self.esp.endpoint() {
            return bad(&e);
        }
        if let Some(u) = &self.public_url {
            match url::Url::parse(u) {
                Ok(p) if p.scheme() == "https" || p.scheme() == "http" => {}
                _ => return bad("public_url must be an http(s) URL"),
            }
        }
        Ok(())
    }

    /// How devices reach the server.
    pub fn public_url(&self) -> String {
        self.public_url.as_deref().map_or_else(
            || format!("https://{}", self.listen),
            |u| u.trim_end_matches('/').to_owned(),
        )
    }
}
