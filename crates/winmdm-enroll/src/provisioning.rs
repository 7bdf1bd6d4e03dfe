//! The `wap-provisioningdoc` an enrollment answers with (MS-MDE2 §2.2.9): certificate
//! stores, the renewal schedule, the w7 APPLICATION (OMA-DM account) and DMClient.
//!
//! Names and characteristic types are case-sensitive; w7 parameters are upper case; both
//! `APPAUTH` blocks (CLIENT and APPSRV) are always written; `DMClient/Provider/<ID>` uses
//! the same ID as `PROVIDER-ID`; the poll schedule obeys the MUST rules (no all-zero
//! schedule, `NumberOfFirstRetries` not 0, the remaining interval at least 1440 minutes).

use core::fmt::Write as _;

use crate::soap::escape_into;
use crate::wstep::EnrollmentKind;

/// A `parm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parm {
    /// `name`.
    pub name: String,
    /// `value` (absent for flags such as `BACKCOMPATRETRYDISABLED`).
    pub value: Option<String>,
    /// `datatype` (`integer`, `boolean`, `string`), when the CSP wants it explicit.
    pub datatype: Option<&'static str>,
}

/// A `characteristic`, for vendor extras (Policy, RootCATrustedCertificates,
/// ClientCertificateInstall, EnterpriseModernAppManagement, PassportForWork, DMClient,
/// CertificateStore are accessible during enrollment).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Characteristic {
    /// `type`.
    pub r#type: String,
    /// Its parameters.
    pub parms: Vec<Parm>,
    /// Nested characteristics.
    pub children: Vec<Self>,
}

/// The CSPs a provisioning document may configure during enrollment (Microsoft Learn
/// "Federated authentication device enrollment": the rest wait for OMA-DM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentCsp {
    /// `Policy`.
    Policy,
    /// `RootCATrustedCertificates`.
    RootCaTrustedCertificates,
    /// `ClientCertificateInstall`.
    ClientCertificateInstall,
    /// `EnterpriseModernAppManagement`.
    EnterpriseModernAppManagement,
    /// `PassportForWork`.
    PassportForWork,
    /// `DMClient` (beyond the provider node this crate writes).
    DmClient,
    /// `CertificateStore` (beyond the stores this crate writes).
    CertificateStore,
}

impl EnrollmentCsp {
    /// The characteristic type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Policy => "Policy",
            Self::RootCaTrustedCertificates => "RootCATrustedCertificates",
            Self::ClientCertificateInstall => "ClientCertificateInstall",
            Self::EnterpriseModernAppManagement => "EnterpriseModernAppManagement",
            Self::PassportForWork => "PassportForWork",
            Self::DmClient => "DMClient",
            Self::CertificateStore => "CertificateStore",
        }
    }
}

impl Characteristic {
    /// The top-level characteristic of a CSP usable during enrollment.
    pub fn csp(csp: EnrollmentCsp) -> Self {
        Self::new(csp.as_str())
    }

    /// A characteristic of `type`.
    pub fn new(r#type: impl Into<String>) -> Self {
        Self {
            r#type: r#type.into(),
            ..Self::default()
        }
    }

    /// Adds a string parameter.
    #[must_use]
    pub fn parm(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parms.push(Parm {
            name: name.into(),
            value: Some(value.into()),
            datatype: None,
        });
        self
    }

    /// Adds a typed parameter.
    #[must_use]
    pub fn typed(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        datatype: &'static str,
    ) -> Self {
        self.parms.push(Parm {
            name: name.into(),
            value: Some(value.into()),
            datatype: Some(datatype),
        });
        self
    }

    /// Adds a flag parameter (no value).
    #[must_use]
    pub fn flag(mut self, name: impl Into<String>) -> Self {
        self.parms.push(Parm {
            name: name.into(),
            value: None,
            datatype: None,
        });
        self
    }

    /// Adds a nested characteristic.
    #[must_use]
    pub fn child(mut self, c: Self) -> Self {
        self.children.push(c);
        self
    }

    fn write(&self, out: &mut String) {
        out.push_str("<characteristic type=\"");
        escape_into(out, &self.r#type);
        out.push_str("\">");
        for p in &self.parms {
            out.push_str("<parm name=\"");
            escape_into(out, &p.name);
            out.push('"');
            if let Some(v) = &p.value {
                out.push_str(" value=\"");
                escape_into(out, v);
                out.push('"');
            }
            if let Some(d) = p.datatype {
                out.push_str(" datatype=\"");
                out.push_str(d);
                out.push('"');
            }
            out.push_str("/>");
        }
        for c in &self.children {
            c.write(out);
        }
        out.push_str("</characteristic>");
    }
}

/// The DM client's poll schedule (DMClient `Poll`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollSchedule {
    /// Minutes between the first retries. Default 3.
    pub interval_first: u32,
    /// How many. Default 10 (never 0).
    pub number_first: u32,
    /// Minutes between the second retries. Default 15.
    pub interval_second: u32,
    /// How many. Default 8.
    pub number_second: u32,
    /// Minutes between the remaining scheduled sessions (at least 1440). Default 1440.
    pub interval_remaining: u32,
    /// How many (0: forever). Default 0.
    pub number_remaining: u32,
    /// Poll at user login. Default true.
    pub poll_on_login: bool,
}

impl Default for PollSchedule {
    fn default() -> Self {
        Self {
            interval_first: 3,
            number_first: 10,
            interval_second: 15,
            number_second: 8,
            interval_remaining: 1440,
            number_remaining: 0,
            poll_on_login: true,
        }
    }
}

impl PollSchedule {
    /// The schedule made valid: `NumberOfFirstRetries` ≥ 1, remaining interval ≥ 1440.
    pub fn normalized(mut self) -> Self {
        self.number_first = self.number_first.max(1);
        self.interval_first = self.interval_first.max(1);
        self.interval_remaining = self.interval_remaining.max(1440);
        self
    }
}

/// The ROBO renewal schedule (`CertificateStore/My/WSTEP/Renew`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalSchedule {
    /// Days before expiry to start renewing. Default 42.
    pub renew_period_days: u32,
    /// Days between retries (at most the renew period). Default 7.
    pub retry_interval_days: u32,
    /// Renewal URL (default: the discovery-derived one).
    pub server_url: Option<String>,
}

impl Default for RenewalSchedule {
    fn default() -> Self {
        Self {
            renew_period_days: 42,
            retry_interval_days: 7,
            server_url: None,
        }
    }
}

/// Everything the provisioning document configures besides the certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningConfig {
    /// `PROVIDER-ID` and the DMClient provider ID.
    pub provider_id: String,
    /// `NAME`.
    pub name: String,
    /// `ADDR`: the OMA-DM server URL.
    pub dm_server_url: String,
    /// CLIENT-level digest credentials (name, secret, base64 nonce — the nonce the
    /// device's first management session uses; give the same three to
    /// `winmdm_syncml::session`).
    pub client_auth: (String, String, String),
    /// APPSRV-level digest credentials (name, secret).
    pub server_auth: (String, String),
    /// Renewal (ROBO) schedule; `None` if the server does not renew.
    pub renewal: Option<RenewalSchedule>,
    /// The poll schedule.
    pub poll: PollSchedule,
    /// `EntDMID` (must be set for renewal to work).
    pub ent_dm_id: String,
    /// `EntDeviceName`.
    pub ent_device_name: Option<String>,
    /// `UPN` (user enrollments).
    pub upn: Option<String>,
    /// Vendor characteristics appended at the top level (start them with
    /// [`Characteristic::csp`]).
    pub extra: Vec<Characteristic>,
}

/// Certificates for the document: DER, with their SHA-1 thumbprints computed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificates<'a> {
    /// The root.
    pub root: &'a [u8],
    /// Intermediates (issuer first).
    pub intermediates: &'a [Vec<u8>],
    /// The issued device or user certificate.
    pub issued: &'a [u8],
    /// The issued certificate's subject CN (for `SSLCLIENTCERTSEARCHCRITERIA`).
    pub subject_cn: &'a str,
}

/// The upper-case hex SHA-1 thumbprint Windows names certificates by.
pub fn thumbprint(der: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

fn b64(der: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// URI-escapes a subject for `SSLCLIENTCERTSEARCHCRITERIA` (`=` is `%3d`, `,` `%2c`).
fn uri_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'@') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02x}");
        }
    }
    out
}

/// The `SSLCLIENTCERTSEARCHCRITERIA` value: `Subject=CN%3d<cn>&Stores=My%5CUser` for
/// user enrollments, `…&Stores=MY%5CSystem` for device ones.
pub fn search_criteria(subject_cn: &str, kind: EnrollmentKind) -> String {
    let store = match kind {
        EnrollmentKind::Full => "My%5CUser",
        EnrollmentKind::Device => "MY%5CSystem",
    };
    format!(
        "Subject={}&Stores={store}",
        uri_escape(&format!("CN={subject_cn}"))
    )
}

/// Builds the document.
pub fn build(
    config: &ProvisioningConfig,
    certs: &Certificates<'_>,
    kind: EnrollmentKind,
) -> String {
    let store = match kind {
        EnrollmentKind::Full => "User",
        EnrollmentKind::Device => "System",
    };
    let mut out = String::with_capacity(4096 + 2 * (certs.root.len() + certs.issued.len()));
    out.push_str("<wap-provisioningdoc version=\"1.1\">");
    Characteristic::new("CertificateStore")
        .child(
            Characteristic::new("Root").child(
                Characteristic::new("System").child(
                    Characteristic::new(thumbprint(certs.root))
                        .parm("EncodedCertificate", b64(certs.root)),
                ),
            ),
        )
        .write(&mut out);
    if !certs.intermediates.is_empty() {
        let mut ca = Characteristic::new("System");
        for i in certs.intermediates {
            ca = ca.child(Characteristic::new(thumbprint(i)).parm("EncodedCertificate", b64(i)));
        }
        Characteristic::new("CertificateStore")
            .child(Characteristic::new("CA").child(ca))
            .write(&mut out);
    }
    let mut my = Characteristic::new("My").child(
        Characteristic::new(store)
            .child(
                Characteristic::new(thumbprint(certs.issued))
                    .parm("EncodedCertificate", b64(certs.issued)),
            )
            .child(Characteristic::new("PrivateKeyContainer")),
    );
    if let Some(r) = &config.renewal {
        let mut renew = Characteristic::new("Renew")
            .typed("ROBOSupport", "true", "boolean")
            .typed(
                "RenewPeriod",
                r.renew_period_days.clamp(1, 1000).to_string(),
                "integer",
            )
            .typed(
                "RetryInterval",
                r.retry_interval_days
                    .clamp(1, r.renew_period_days.clamp(1, 1000))
                    .to_string(),
                "integer",
            );
        if let Some(url) = &r.server_url {
            renew = renew.parm("ServerURL", url.clone());
        }
        my = my.child(Characteristic::new("WSTEP").child(renew));
    }
    Characteristic::new("CertificateStore")
        .child(my)
        .write(&mut out);
    let (cname, csecret, cnonce) = &config.client_auth;
    let (sname, ssecret) = &config.server_auth;
    Characteristic::new("APPLICATION")
        .parm("APPID", "w7")
        .parm("PROVIDER-ID", config.provider_id.clone())
        .parm("NAME", config.name.clone())
        .parm("ADDR", config.dm_server_url.clone())
        .parm("CONNRETRYFREQ", "6")
        .parm("INITIALBACKOFFTIME", "30000")
        .parm("MAXBACKOFFTIME", "120000")
        .flag("BACKCOMPATRETRYDISABLED")
        .parm("DEFAULTENCODING", "application/vnd.syncml.dm+xml")
        .parm("ROLE", "32")
        .parm(
            "SSLCLIENTCERTSEARCHCRITERIA",
            search_criteria(certs.subject_cn, kind),
        )
        .child(
            Characteristic::new("APPAUTH")
                .parm("AAUTHLEVEL", "CLIENT")
                .parm("AAUTHTYPE", "DIGEST")
                .parm("AAUTHNAME", cname.clone())
                .parm("AAUTHSECRET", csecret.clone())
                .parm("AAUTHDATA", cnonce.clone()),
        )
        .child(
            Characteristic::new("APPAUTH")
                .parm("AAUTHLEVEL", "APPSRV")
                .parm("AAUTHTYPE", "DIGEST")
                .parm("AAUTHNAME", sname.clone())
                .parm("AAUTHSECRET", ssecret.clone())
                .parm("AAUTHDATA", cnonce.clone()),
        )
        .write(&mut out);
    let p = config.poll.normalized();
    let mut provider = Characteristic::new(config.provider_id.clone()).typed(
        "EntDMID",
        config.ent_dm_id.clone(),
        "string",
    );
    if let Some(n) = &config.ent_device_name {
        provider = provider.typed("EntDeviceName", n.clone(), "string");
    }
    if let Some(u) = &config.upn {
        provider = provider.typed("UPN", u.clone(), "string");
    }
    provider = provider.child(
        Characteristic::new("Poll")
            .typed(
                "IntervalForFirstSetOfRetries",
                p.interval_first.to_string(),
                "integer",
            )
            .typed(
                "NumberOfFirstRetries",
                p.number_first.to_string(),
                "integer",
            )
            .typed(
                "IntervalForSecondSetOfRetries",
                p.interval_second.to_string(),
                "integer",
            )
            .typed(
                "NumberOfSecondRetries",
                p.number_second.to_string(),
                "integer",
            )
            .typed(
                "IntervalForRemainingScheduledRetries",
                p.interval_remaining.to_string(),
                "integer",
            )
            .typed(
                "NumberOfRemainingScheduledRetries",
                p.number_remaining.to_string(),
                "integer",
            )
            .typed("PollOnLogin", p.poll_on_login.to_string(), "boolean"),
    );
    Characteristic::new("DMClient")
        .child(Characteristic::new("Provider").child(provider))
        .write(&mut out);
    for c in &config.extra {
        c.write(&mut out);
    }
    out.push_str("</wap-provisioningdoc>");
    out
}
