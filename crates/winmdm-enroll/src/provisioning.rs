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
///
/// `Debug` shows the digest user names but never the secrets or the nonce.
#[derive(Clone, PartialEq, Eq)]
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

impl std::fmt::Debug for ProvisioningConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisioningConfig")
            .field("provider_id", &self.provider_id)
            .field("name", &self.name)
            .field("dm_server_url", &self.dm_server_url)
            .field(
                "client_auth",
                &(&self.client_auth.0, "[secret redacted]", "[nonce redacted]"),
            )
            .field("server_auth", &(&self.server_auth.0, "[secret redacted]"))
            .field("renewal", &self.renewal)
            .field("poll", &self.poll)
            .field("ent_dm_id", &self.ent_dm_id)
            .field("ent_device_name", &self.ent_device_name)
            .field("upn", &self.upn)
            .field("extra", &self.extra)
            .finish()
    }
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
    let mut out = String::with_capacity(40);
    push_thumbprint(&mut out, der);
    out
}

fn push_thumbprint(out: &mut String, der: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    for b in digest.as_ref() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

/// Writes the document straight into a string: the fixed structure as literals, values
/// escaped (base64 and hex need no escaping), no intermediate tree.
struct Writer<'a>(&'a mut String);

impl Writer<'_> {
    fn open(&mut self, r#type: &str) -> &mut Self {
        self.0.push_str("<characteristic type=\"");
        escape_into(self.0, r#type);
        self.0.push_str("\">");
        self
    }

    fn open_thumbprint(&mut self, der: &[u8]) -> &mut Self {
        self.0.push_str("<characteristic type=\"");
        push_thumbprint(self.0, der);
        self.0.push_str("\">");
        self
    }

    fn close(&mut self) -> &mut Self {
        self.0.push_str("</characteristic>");
        self
    }

    fn empty(&mut self, r#type: &str) -> &mut Self {
        self.open(r#type).close()
    }

    /// `name` is one of ours (nothing to escape); `value` is escaped.
    fn parm(&mut self, name: &str, value: &str) -> &mut Self {
        self.0.push_str("<parm name=\"");
        self.0.push_str(name);
        self.0.push_str("\" value=\"");
        escape_into(self.0, value);
        self.0.push_str("\"/>");
        self
    }

    fn typed(&mut self, name: &str, value: impl core::fmt::Display, datatype: &str) -> &mut Self {
        let _ = write!(
            self.0,
            "<parm name=\"{name}\" value=\"{value}\" datatype=\"{datatype}\"/>"
        );
        self
    }

    fn typed_text(&mut self, name: &str, value: &str, datatype: &str) -> &mut Self {
        self.0.push_str("<parm name=\"");
        self.0.push_str(name);
        self.0.push_str("\" value=\"");
        escape_into(self.0, value);
        self.0.push_str("\" datatype=\"");
        self.0.push_str(datatype);
        self.0.push_str("\"/>");
        self
    }

    fn certificate(&mut self, der: &[u8]) -> &mut Self {
        use base64::Engine as _;
        self.open_thumbprint(der);
        self.0
            .push_str("<parm name=\"EncodedCertificate\" value=\"");
        base64::engine::general_purpose::STANDARD.encode_string(der, self.0);
        self.0.push_str("\"/>");
        self.close()
    }
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
    let mut out = String::with_capacity(
        3072 + 2
            * (certs.root.len()
                + certs.issued.len()
                + certs.intermediates.iter().map(Vec::len).sum::<usize>()),
    );
    build_into(&mut out, config, certs, kind);
    out
}

/// [`build`], appending to `out`.
pub fn build_into(
    out: &mut String,
    config: &ProvisioningConfig,
    certs: &Certificates<'_>,
    kind: EnrollmentKind,
) {
    let store = match kind {
        EnrollmentKind::Full => "User",
        EnrollmentKind::Device => "System",
    };
    out.push_str("<wap-provisioningdoc version=\"1.1\">");
    let mut w = Writer(out);
    w.open("CertificateStore")
        .open("Root")
        .open("System")
        .certificate(certs.root)
        .close()
        .close()
        .close();
    if !certs.intermediates.is_empty() {
        w.open("CertificateStore").open("CA").open("System");
        for i in certs.intermediates {
            w.certificate(i);
        }
        w.close().close().close();
    }
    w.open("CertificateStore")
        .open("My")
        .open(store)
        .certificate(certs.issued)
        .empty("PrivateKeyContainer")
        .close();
    if let Some(r) = &config.renewal {
        let period = r.renew_period_days.clamp(1, 1000);
        w.open("WSTEP")
            .open("Renew")
            .typed("ROBOSupport", "true", "boolean")
            .typed("RenewPeriod", period, "integer")
            .typed(
                "RetryInterval",
                r.retry_interval_days.clamp(1, period),
                "integer",
            );
        if let Some(url) = &r.server_url {
            w.parm("ServerURL", url);
        }
        w.close().close();
    }
    w.close().close();
    let (cname, csecret, cnonce) = &config.client_auth;
    let (sname, ssecret) = &config.server_auth;
    w.open("APPLICATION")
        .parm("APPID", "w7")
        .parm("PROVIDER-ID", &config.provider_id)
        .parm("NAME", &config.name)
        .parm("ADDR", &config.dm_server_url)
        .parm("CONNRETRYFREQ", "6")
        .parm("INITIALBACKOFFTIME", "30000")
        .parm("MAXBACKOFFTIME", "120000");
    w.0.push_str("<parm name=\"BACKCOMPATRETRYDISABLED\"/>");
    w.parm("DEFAULTENCODING", "application/vnd.syncml.dm+xml")
        .parm("ROLE", "32")
        .parm(
            "SSLCLIENTCERTSEARCHCRITERIA",
            &search_criteria(certs.subject_cn, kind),
        );
    for (level, name, secret) in [("CLIENT", cname, csecret), ("APPSRV", sname, ssecret)] {
        w.open("APPAUTH")
            .parm("AAUTHLEVEL", level)
            .parm("AAUTHTYPE", "DIGEST")
            .parm("AAUTHNAME", name)
            .parm("AAUTHSECRET", secret)
            .parm("AAUTHDATA", cnonce)
            .close();
    }
    w.close();
    let p = config.poll.normalized();
    w.open("DMClient")
        .open("Provider")
        .open(&config.provider_id)
        .typed_text("EntDMID", &config.ent_dm_id, "string");
    if let Some(n) = &config.ent_device_name {
        w.typed_text("EntDeviceName", n, "string");
    }
    if let Some(u) = &config.upn {
        w.typed_text("UPN", u, "string");
    }
    w.open("Poll")
        .typed("IntervalForFirstSetOfRetries", p.interval_first, "integer")
        .typed("NumberOfFirstRetries", p.number_first, "integer")
        .typed(
            "IntervalForSecondSetOfRetries",
            p.interval_second,
            "integer",
        )
        .typed("NumberOfSecondRetries", p.number_second, "integer")
        .typed(
            "IntervalForRemainingScheduledRetries",
            p.interval_remaining,
            "integer",
        )
        .typed(
            "NumberOfRemainingScheduledRetries",
            p.number_remaining,
            "integer",
        )
        .typed("PollOnLogin", p.poll_on_login, "boolean")
        .close()
        .close()
        .close()
        .close();
    for c in &config.extra {
        c.write(out);
    }
    out.push_str("</wap-provisioningdoc>");
}
