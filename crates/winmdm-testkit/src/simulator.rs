//! A simulated Windows device that drives an MDM server over HTTP(S) the way Windows does
//! (feature `simulator`).
//!
//! One [`run`] goes through the whole life of a device:
//!
//! 1. signs its user in (a fixed token, or the [`emulator`](crate::emulator)'s password
//!    grant, with the device's ID as the `deviceid` claim, as after an Entra join);
//! 2. opens the Terms of Use with the token in `Authorization` and `CXH-HOST: FRX`, and
//!    accepts them; the redirect's `OpaqueBlob` is kept for enrollment;
//! 3. discovery: the `GET` probe, then `Discover`;
//! 4. `GetPolicies`;
//! 5. `RequestSecurityToken` with a PKCS#10 from a fresh RSA-2048 key (carrying the
//!    DeviceID extension, as Windows requests do) and Windows' context items, including
//!    `EnrollmentData` = the blob;
//! 6. installs the provisioning document: the certificate must be for its own key and
//!    chain to the root the document installs (signatures checked), and the document
//!    must configure the OMA-DM account (server URL, digest credentials, nonce);
//! 7. an OMA-DM session: alert 1201, 1224 LoginStatus and AADUserToken, DevInfo, answers
//!    every command (with [`winmdm_syncml::client::Device`]), presenting its certificate
//!    in TLS;
//! 8. ROBO renewal: a PKCS#7 over a new request, signed with the current key, over TLS
//!    with the current certificate; installs the new certificate;
//! 9. a second session with the new certificate;
//! 10. the 1226 unenroll alert.
//!
//! Each step is reported as a [`Step`] (what, HTTP status, time, outcome); the run stops
//! at the first failure.
//!
//! ```no_run
//! # async fn demo() {
//! use winmdm_testkit::simulator::{self, SimulatorConfig, TokenSource};
//! let config = SimulatorConfig::new(
//!     "https://127.0.0.1:8443",
//!     TokenSource::emulator("http://127.0.0.1:9000"),
//! );
//! let transcript = simulator::run(config, |step| println!("{step}")).await;
//! assert!(transcript.succeeded());
//! # }
//! ```

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use winmdm_enroll::soap::{self, Element};
use winmdm_syncml::alerts::LoginStatus;
use winmdm_syncml::auth::Nonce;
use winmdm_syncml::client::Device;
use winmdm_syncml::{Command, SyncMl};
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::entra;

/// Where the device's user token comes from.
#[derive(Clone)]
pub enum TokenSource {
    /// A ready token (a compact JWT for the MDM application).
    Fixed(String),
    /// The password grant of an Entra emulator (or any token endpoint that takes it).
    Password {
        /// The authority, such as `http://127.0.0.1:9000`.
        authority: String,
        /// The tenant segment (an ID or domain).
        tenant: String,
        /// The user.
        username: String,
        /// The password.
        password: String,
        /// The scope (`{MDM app}/.default`).
        scope: String,
    },
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(_) => f.write_str("Fixed([redacted])"),
            Self::Password {
                authority,
                tenant,
                username,
                ..
            } => f
                .debug_struct("Password")
                .field("authority", authority)
                .field("tenant", tenant)
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

impl TokenSource {
    /// [`entra::ALICE`] of [`entra::CONTOSO`] at the emulator at `authority`, for the
    /// testkit MDM application.
    pub fn emulator(authority: &str) -> Self {
        Self::Password {
            authority: authority.trim_end_matches('/').to_owned(),
            tenant: entra::CONTOSO.id.to_owned(),
            username: entra::ALICE.upn.to_owned(),
            password: entra::USER_PASSWORD.to_owned(),
            scope: format!("{}/.default", entra::MDM_APP_ID),
        }
    }
}

/// What the simulated device is and does.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// The MDM's base URL (`https://host:port`); the Terms-of-Use and discovery URLs are
    /// under it, as an MDM registers them in Entra.
    pub server: String,
    /// Extra trust roots (PEM) for the server's TLS certificate.
    pub ca_pem: Option<String>,
    /// Where the user token comes from.
    pub token: TokenSource,
    /// The Entra device ID.
    pub device_id: String,
    /// `DeviceName`.
    pub device_name: String,
    /// `OSVersion`.
    pub os_version: String,
    /// Renew the certificate after the first session (and run a second one).
    pub renew: bool,
    /// Send the 1226 unenroll alert at the end.
    pub unenroll: bool,
    /// The per-request timeout.
    pub timeout: Duration,
    /// How long to keep resending a request the server did not answer (connection
    /// failures, `503`, `429`), as Windows retries; zero: never.
    pub retry_for: Duration,
    /// Keep connections open between requests of a step (default); off, every request
    /// opens its own connection (to spread a device's requests over load-balanced
    /// instances).
    pub reuse_connections: bool,
    /// Write the device ID as published Windows 10/11 captures do — 32 hex digits of the
    /// GUID's bytes in Windows' order (`DB257C3A08778F4FB61E2749066C1F27`) — in the
    /// `DeviceID` context item, the CSR's DeviceID extension and the OMA-DM `Source`; the
    /// token's `deviceid` claim stays the dashed GUID, as Entra writes it. Off by default
    /// (the dashed GUID everywhere). `device_id` must be a GUID for this.
    pub windows_device_id: bool,
    /// The OMA-DM `SyncHdr/Source` to send instead of the device ID, as some independent
    /// clients do (a random `imei:<uuid>` each session); `None` (the default): the device
    /// ID. Takes effect when the device's OMA-DM client starts (after enrollment or a
    /// [`Simulator::reboot`]).
    pub management_source: Option<String>,
    /// Enroll as a work account added by the user (`EnrollmentType` `Full`, a user
    /// certificate) instead of joining the device to Entra (`Device`, the default). The
    /// user's token then carries no `deviceid` claim: the `DeviceID` the request names is
    /// only the device's word.
    pub work_account: bool,
    /// Answer a `Get` of several nodes with one `Status` per node (`TargetRef`), as
    /// Windows 11 does (published captures show five statuses for one `CmdRef`, the last a
    /// 404); off by default (one status per command).
    pub per_target_statuses: bool,
    /// Behave as published Windows traffic shows rather than as the specs read (see
    /// [`SimulatorConfig::windows11`]); off by default.
    pub windows11: bool,
    /// Join Entra in OOBE: after enrollment the device shows the Enrollment Status Page
    /// (steps `esp: device setup` and `esp: account setup`), reporting LoginStatus
    /// `others` until device setup is over, then the user signs in. Off by default (the
    /// user is signed in throughout).
    pub oobe: bool,
    /// A ready device key (PKCS#8 DER: RSA or ECDSA P-256) for the enrollment request
    /// instead of a fresh RSA-2048 key (load tests pre-generate them). Renewal always
    /// generates an RSA key.
    pub key_pkcs8: Option<Vec<u8>>,
}

impl SimulatorConfig {
    /// A device with a random device ID against `server`, doing everything.
    pub fn new(server: &str, token: TokenSource) -> Self {
        Self {
            server: server.trim_end_matches('/').to_owned(),
            ca_pem: None,
            token,
            device_id: random_guid(),
            device_name: "SIM-DESKTOP".to_owned(),
            os_version: "10.0.26100.2605".to_owned(),
            renew: true,
            unenroll: true,
            timeout: Duration::from_secs(30),
            retry_for: Duration::ZERO,
            reuse_connections: true,
            work_account: false,
            management_source: None,
            windows_device_id: false,
            per_target_statuses: false,
            windows11: false,
            oobe: false,
            key_pkcs8: None,
        }
    }

    /// The "Windows 11" profile: a device that behaves as published captures of real
    /// Windows do, where they differ from the specs' reading.
    ///
    /// - `DeviceID` as 32 hex digits of the GUID's bytes in Windows' order, in the context
    ///   item, the CSR and the OMA-DM `Source` ([`windows_device_id`](Self::windows_device_id));
    /// - one `Status` per target, with `TargetRef` ([`per_target_statuses`](Self::per_target_statuses));
    /// - SessionIDs in hexadecimal, counting from where an earlier boot left them (an
    ///   8-bit counter that wraps);
    /// - alert 1223 (abort) instead of a result in chunks when the result exceeds the
    ///   server's `MaxMsgSize`;
    /// - management requests to `ADDR?mode=Maintenance&Platform=WoA` with Windows'
    ///   headers: `Accept`, `Accept-Charset`, `Client-Request-Id`, and `Ms-Cv` (a
    ///   correlation vector whose last number counts the sessions).
    pub fn windows11(server: &str, token: TokenSource) -> Self {
        Self {
            windows_device_id: true,
            per_target_statuses: true,
            windows11: true,
            ..Self::new(server, token)
        }
    }
}

/// One step of a run.
#[derive(Debug, Clone)]
pub struct Step {
    /// What the device did.
    pub name: &'static str,
    /// The last HTTP status of the step, if it got that far.
    pub status: Option<u16>,
    /// How long it took.
    pub elapsed: Duration,
    /// What happened (`Err` stops the run).
    pub outcome: Result<String, String>,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self
            .status
            .map_or_else(|| "---".to_owned(), |s| s.to_string());
        let (mark, text) = match &self.outcome {
            Ok(t) => ("ok  ", t),
            Err(t) => ("FAIL", t),
        };
        write!(
            f,
            "{mark} {:<26} {status:>3} {:>8.1} ms  {text}",
            self.name,
            self.elapsed.as_secs_f64() * 1e3
        )
    }
}

/// Everything a run did.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// The device's ID.
    pub device_id: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Every OMA-DM mutation the device applied, as `Verb uri`.
    pub applied: Vec<String>,
}

impl Transcript {
    /// Whether every step succeeded (and there was at least one).
    pub fn succeeded(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.outcome.is_ok())
    }
}

struct Failure {
    status: Option<u16>,
    message: String,
}

impl Failure {
    fn new(message: impl Into<String>) -> Self {
        Self {
            status: None,
            message: message.into(),
        }
    }

    fn http(status: u16, message: impl Into<String>) -> Self {
        Self {
            status: Some(status),
            message: message.into(),
        }
    }
}

type StepResult = Result<(Option<u16>, String), Failure>;

/// What an enrolled device keeps: its key and certificate and its management account.
/// [`Simulator::saved_identity`] hands out a copy, [`Simulator::restore_identity`] puts it
/// back (to replay what a device does when a renewal response was lost).
#[derive(Clone)]
pub struct Identity {
    key_pkcs8: Vec<u8>,
    certificate: Vec<u8>,
    dm_url: String,
    username: String,
    password: String,
    nonce: Nonce,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("dm_url", &self.dm_url)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("config", &self.config)
            .field("enrolled", &self.identity.is_some())
            .finish_non_exhaustive()
    }
}

/// A simulated Windows device, step by step (see the [module documentation](self)).
pub struct Simulator {
    config: SimulatorConfig,
    token: String,
    /// The Terms-of-Use page's sealed form state.
    /// What the Terms-of-Use page asked for: its form (with the page's URL), or a redirect
    /// straight back to Windows.
    tou_next: Option<Result<(String, crate::form::Form), String>>,
    /// The `OpaqueBlob` the accept redirect carried.
    blob: String,
    enrollment_url: String,
    policy_url: String,
    identity: Option<Identity>,
    device: Option<Device>,
    applied: Vec<String>,
    /// The Windows 11 profile's correlation vector: its base, and the sessions so far.
    ms_cv: (String, u32),
    /// The user is signed in (LoginStatus `user`); in OOBE not until device setup ends.
    signed_in: bool,
}

/// Runs the device through its life against `config.server`, calling `on_step` after
/// each step. Never panics; a failure ends the run with a failed step.
pub async fn run(config: SimulatorConfig, mut on_step: impl FnMut(&Step)) -> Transcript {
    let mut sim = Simulator::new(config);
    let mut transcript = Transcript {
        device_id: sim.config.device_id.clone(),
        ..Transcript::default()
    };
    for name in sim.plan() {
        let step = sim.step(name).await;
        on_step(&step);
        let failed = step.outcome.is_err();
        transcript.steps.push(step);
        if failed {
            break;
        }
    }
    transcript.applied = sim.applied;
    transcript
}

impl Simulator {
    /// A device that has done nothing yet.
    pub fn new(config: SimulatorConfig) -> Self {
        let config_oobe = config.oobe;
        Self {
            config,
            token: String::new(),
            tou_next: None,
            blob: String::new(),
            enrollment_url: String::new(),
            policy_url: String::new(),
            identity: None,
            device: None,
            applied: Vec::new(),
            ms_cv: (correlation_base(), 0),
            signed_in: !config_oobe,
        }
    }

    /// The steps [`run`] takes, in order (give them to [`step`](Self::step) one by one
    /// to act between them).
    pub fn plan(&self) -> Vec<&'static str> {
        let mut plan: Vec<&'static str> = vec![
            "sign in",
            "terms of use: page",
            "terms of use: accept",
            "discovery: probe",
            "discovery: Discover",
            "policy: GetPolicies",
            "enrollment: RST",
        ];
        if self.config.oobe {
            plan.extend(["esp: device setup", "esp: account setup"]);
        }
        plan.push("management: session 1");
        if self.config.renew {
            plan.extend(["renewal: RST Renew", "management: session 2"]);
        }
        if self.config.unenroll {
            plan.push("management: unenroll 1226");
        }
        plan
    }

    /// Replaces the user token the device presents from now on (at policy and enrollment,
    /// and as the `AADUserToken` of its sessions), to test what a server does with another
    /// token than the one the device signed in with.
    pub fn set_user_token(&mut self, token: &str) {
        self.token = token.to_owned();
    }

    /// Restarts the device, as after a reboot: its OMA-DM client starts over (SessionID
    /// counting from 1 again, no session in progress; a session it was in stays open on
    /// the server). The step `management: reboot mid-session` sends a session's first
    /// message, takes the server's commands, and reboots before answering them.
    pub fn reboot(&mut self) {
        // Windows keeps its OMA-DM nonce across reboots (the registry holds it).
        if let (Some(device), Some(identity)) = (&self.device, &mut self.identity)
            && let Some(nonce) = device.nonce()
        {
            identity.nonce = nonce.clone();
        }
        self.device = None;
    }

    /// A soak of an enrolled device: `sessions` management sessions in a row (its
    /// SessionID, a counter modulo 256, wraps every 256), with a reboot in the middle of
    /// the session halfway through (`management: reboot mid-session`). Returns the first
    /// step that failed, if any.
    ///
    /// # Errors
    /// The failed step.
    pub async fn soak(&mut self, sessions: usize) -> Result<(), Box<Step>> {
        for n in 0..sessions {
            if n == sessions / 2 {
                let step = self.step("management: reboot mid-session").await;
                if step.outcome.is_err() {
                    return Err(Box::new(step));
                }
            }
            let step = self.step("management: session").await;
            if step.outcome.is_err() {
                return Err(Box::new(step));
            }
        }
        Ok(())
    }

    /// A copy of the enrolled identity (key, certificate, management account), if any.
    pub fn saved_identity(&self) -> Option<Identity> {
        self.identity.clone()
    }

    /// Puts back an identity from [`saved_identity`](Self::saved_identity): the device
    /// acts with that certificate again, as one whose renewal response was lost does.
    pub fn restore_identity(&mut self, identity: Identity) {
        self.identity = Some(identity);
    }

    /// The device's ID.
    pub fn device_id(&self) -> &str {
        &self.config.device_id
    }

    /// The device ID as the device writes it in its requests (see
    /// [`SimulatorConfig::windows_device_id`]).
    pub fn spelled_device_id(&self) -> String {
        match winmdm_entra::DeviceId::parse(&self.config.device_id) {
            Ok(id) if self.config.windows_device_id => id.to_windows_hex(),
            _ => self.config.device_id.clone(),
        }
    }

    /// Every mutation applied so far, as `Verb uri`.
    pub fn applied(&self) -> &[String] {
        &self.applied
    }

    /// The device's current certificate (DER), once enrolled.
    pub fn certificate(&self) -> Option<&[u8]> {
        self.identity.as_ref().map(|i| i.certificate.as_slice())
    }

    /// Takes one step of [`plan`](Self::plan) (`management: session N` runs one more
    /// session any time after enrollment).
    pub async fn step(&mut self, name: &'static str) -> Step {
        let started = Instant::now();
        match self.dispatch(name).await {
            Ok((status, text)) => Step {
                name,
                status,
                elapsed: started.elapsed(),
                outcome: Ok(text),
            },
            Err(f) => Step {
                name,
                status: f.status,
                elapsed: started.elapsed(),
                outcome: Err(f.message),
            },
        }
    }
}

pub use crate::requests::random_guid;

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

const SOAP_CT: &str = "application/soap+xml; charset=utf-8";
const USER_AGENT: &str = "ENROLLClient";
const DM_USER_AGENT: &str = "MSFT OMA DM Client/1.2.0.1";

fn text_of<'a>(root: &'a Element, path: &[&str]) -> Option<&'a str> {
    root.path(path).map(|e| e.text().trim())
}

/// A `characteristic` by its `type` under `e`.
fn characteristic<'a>(e: &'a Element, kind: &str) -> Option<&'a Element> {
    e.children_named("characteristic")
        .find(|c| c.attr("type") == Some(kind))
}

fn parm<'a>(e: &'a Element, name: &str) -> Option<&'a str> {
    e.children_named("parm")
        .find(|p| p.attr("name") == Some(name))
        .and_then(|p| p.attr("value"))
}

/// The single certificate under `CertificateStore/<store>/System|User/<thumbprint>`.
fn stored_certificates(store: &Element) -> Vec<Vec<u8>> {
    store
        .children_named("characteristic")
        .flat_map(|scope| scope.children_named("characteristic"))
        .filter_map(|c| parm(c, "EncodedCertificate"))
        .filter_map(|b64| {
            STANDARD
                .decode(b64.split_whitespace().collect::<String>())
                .ok()
        })
        .collect()
}

fn signed_by(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    child.issuer().as_raw() == issuer.subject().as_raw()
        && child.verify_signature(Some(issuer.public_key())).is_ok()
}

/// Checks the provisioning document as Windows would before installing it; returns the
/// certificate and the OMA-DM account.
fn install(
    doc: &str,
    key_spki: &[u8],
) -> Result<(Vec<u8>, String, String, String, String), String> {
    let limits = soap::Limits::default();
    let root = soap::parse(doc.as_bytes(), &limits).map_err(|e| format!("document: {e}"))?;
    // The document may address the stores in one CertificateStore or in several.
    let stores: Vec<&Element> = root
        .children_named("characteristic")
        .filter(|c| c.attr("type") == Some("CertificateStore"))
        .collect();
    if stores.is_empty() {
        return Err("no CertificateStore".into());
    }
    let in_store = |name: &str| -> Vec<Vec<u8>> {
        stores
            .iter()
            .filter_map(|s| characteristic(s, name))
            .flat_map(stored_certificates)
            .collect()
    };
    let roots = in_store("Root");
    let cas = in_store("CA");
    let mine = in_store("My");
    let [device_der] = mine.as_slice() else {
        return Err(format!("{} certificates in My, expected 1", mine.len()));
    };
    let [root_der] = roots.as_slice() else {
        return Err(format!("{} certificates in Root, expected 1", roots.len()));
    };
    fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
        X509Certificate::from_der(der)
            .map(|(_, c)| c)
            .map_err(|_| "a certificate does not parse".to_owned())
    }
    let device = parse(device_der)?;
    let root_cert = parse(root_der)?;
    if device.public_key().raw != key_spki {
        return Err("the certificate is not for the device's key".into());
    }
    // Walk up: device → intermediates (CA store) → root; every signature checked.
    let intermediates: Vec<X509Certificate<'_>> =
        cas.iter().map(|d| parse(d)).collect::<Result<_, _>>()?;
    let mut current = device;
    for _ in 0..=intermediates.len() {
        if signed_by(&current, &root_cert) {
            if !signed_by(&root_cert, &root_cert) {
                return Err("the root is not self-signed".into());
            }
            let now = i64::try_from(now()).unwrap_or(i64::MAX);
            let v = current.validity();
            if v.not_before.timestamp() > now + 300 || v.not_after.timestamp() < now {
                return Err("a certificate of the chain is not valid now".into());
            }
            let w7 = root
                .children_named("characteristic")
                .find(|c| parm(c, "APPID") == Some("w7"))
                .ok_or("no w7 APPLICATION")?;
            let addr = parm(w7, "ADDR").ok_or("no ADDR")?.to_owned();
            let client = w7
                .children_named("characteristic")
                .find(|c| {
                    c.attr("type") == Some("APPAUTH") && parm(c, "AAUTHLEVEL") == Some("CLIENT")
                })
                .ok_or("no CLIENT APPAUTH")?;
            let name = parm(client, "AAUTHNAME").ok_or("no AAUTHNAME")?.to_owned();
            let secret = parm(client, "AAUTHSECRET")
                .ok_or("no AAUTHSECRET")?
                .to_owned();
            let nonce = parm(client, "AAUTHDATA").ok_or("no AAUTHDATA")?.to_owned();
            return Ok((device_der.clone(), addr, name, secret, nonce));
        }
        let Some(next) = intermediates.iter().find(|i| signed_by(&current, i)) else {
            return Err("the certificate does not chain to the installed root".into());
        };
        current = next.clone();
    }
    Err("the chain is longer than the intermediates".into())
}

struct NewKey {
    pkcs8: Vec<u8>,
    spki: Vec<u8>,
    csr: Vec<u8>,
}

fn new_key_and_csr(device_id: &str, existing: Option<&[u8]>) -> Result<NewKey, String> {
    let key = match existing {
        Some(der) => rcgen::KeyPair::try_from(der).map_err(|e| format!("device key: {e}"))?,
        None => rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            .map_err(|e| format!("key generation: {e}"))?,
    };
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, device_id);
    // The DeviceID extension, as Windows writes it: the ID and a NUL.
    let mut value = device_id.as_bytes().to_vec();
    value.push(0);
    let der_value = [&[0x0c, u8::try_from(value.len()).unwrap_or(0)][..], &value].concat();
    params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 311, 66, 1, 0],
        der_value,
    )];
    let csr = params
        .serialize_request(&key)
        .map_err(|e| format!("CSR: {e}"))?;
    Ok(NewKey {
        pkcs8: key.serialize_der(),
        spki: rcgen::PublicKeyData::subject_public_key_info(&key),
        csr: csr.der().to_vec(),
    })
}

use crate::requests::context_items;

impl Simulator {
    fn client(&self, identity: bool) -> Result<reqwest::Client, Failure> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.config.timeout)
            .no_proxy();
        if !self.config.reuse_connections {
            b = b.pool_max_idle_per_host(0);
        }
        if let Some(ca) = &self.config.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(ca.as_bytes())
                .map_err(|e| Failure::new(format!("--ca: {e}")))?
            {
                b = b.add_root_certificate(cert);
            }
        }
        if identity && let Some(id) = &self.identity {
            let pem_text = format!(
                "{}{}",
                pem("PRIVATE KEY", &id.key_pkcs8),
                pem("CERTIFICATE", &id.certificate)
            );
            let identity = reqwest::Identity::from_pem(pem_text.as_bytes())
                .map_err(|e| Failure::new(format!("client certificate: {e}")))?;
            b = b.identity(identity);
        }
        b.build()
            .map_err(|e| Failure::new(format!("HTTP client: {e}")))
    }

    /// Sends `req`; within [`SimulatorConfig::retry_for`], resends the identical request
    /// after a transport failure, a `503` or a `429` (honouring `Retry-After`), as Windows
    /// does.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), Failure> {
        let deadline = Instant::now() + self.config.retry_for;
        let mut delay = Duration::from_millis(50);
        loop {
            let attempt = req
                .try_clone()
                .ok_or_else(|| Failure::new("a streaming body cannot be resent"))?;
            let outcome = match attempt.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(body) => Ok((status, headers, body.to_vec())),
                        Err(e) => Err(Failure::http(status, format!("HTTP body: {e}"))),
                    }
                }
                Err(e) => Err(Failure::new(format!("HTTP: {e}"))),
            };
            let retry_after = match &outcome {
                Ok((503 | 429, headers, _)) => Some(
                    headers
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map_or(delay, |s| {
                            Duration::from_secs(s).min(Duration::from_secs(5))
                        }),
                ),
                Ok(_) => None,
                Err(_) => Some(delay),
            };
            match retry_after {
                Some(wait) if Instant::now() + wait < deadline => {
                    tokio::time::sleep(wait).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                _ => return outcome,
            }
        }
    }

    async fn soap(
        &self,
        url: &str,
        body: String,
        identity: bool,
    ) -> Result<(u16, Vec<u8>), Failure> {
        let client = self.client(identity)?;
        let (status, _, body) = self
            .send(
                client
                    .post(url)
                    .header("content-type", SOAP_CT)
                    .header("user-agent", USER_AGENT)
                    .body(body),
            )
            .await?;
        if status != 200 {
            let why = winmdm_enroll::fault::parse_fault(&body).map_or_else(
                |_| String::from_utf8_lossy(&body).chars().take(200).collect(),
                |f| {
                    format!(
                        "SOAP fault {} {}: {}",
                        f.subcode.unwrap_or_default(),
                        f.errortype.unwrap_or_default(),
                        f.reason.unwrap_or_default()
                    )
                },
            );
            return Err(Failure::http(status, why));
        }
        Ok((status, body))
    }

    async fn dispatch(&mut self, name: &str) -> StepResult {
        match name {
            "sign in" => self.sign_in().await,
            "terms of use: page" => self.terms_page().await,
            "terms of use: accept" => self.terms_accept().await,
            "discovery: probe" => self.probe().await,
            "discovery: Discover" => self.discover().await,
            "policy: GetPolicies" => self.policies().await,
            "enrollment: RST" => self.enroll().await,
            "esp: device setup" => self.esp_phase(false).await,
            "esp: account setup" => {
                self.signed_in = true;
                self.esp_phase(true).await
            }
            n if n.starts_with("management: session") => self.session(None, None).await,
            "management: reboot mid-session" => {
                let step = self.session(None, Some(1)).await;
                self.reboot();
                step
            }
            "renewal: RST Renew" => self.renew().await,
            "management: unenroll 1226" => {
                self.session(Some(winmdm_syncml::alerts::unenroll_request(0u32)), None)
                    .await
            }
            _ => Err(Failure::new(format!("unknown step {name}"))),
        }
    }

    /// Sessions until the page of `account` setup (else device setup) is over: released
    /// (the step succeeds), failed (it fails with the page's error text), or never shown.
    async fn esp_phase(&mut self, account: bool) -> StepResult {
        use winmdm_syncml::client::EspPage;
        let mut seen = Vec::new();
        let mut status = None;
        for _ in 0..20 {
            let (s, _) = self.session(None, None).await?;
            status = s;
            let Some(view) = self.device.as_ref().map(Device::esp) else {
                return Err(Failure::new("no device"));
            };
            let page = if account { view.user } else { view.device };
            seen.push(match page {
                EspPage::Skipped => "not shown",
                EspPage::Waiting => "waiting",
                EspPage::InProgress => "in progress",
                EspPage::Released => "released",
                EspPage::Failed => "failed",
            });
            let progress = seen.join(" → ");
            match page {
                EspPage::Released => {
                    return Ok((
                        status,
                        format!("{progress} (after {} sessions)", seen.len()),
                    ));
                }
                EspPage::Skipped => {
                    return Ok((status, "no page: the server did not ask for one".into()));
                }
                EspPage::Failed => {
                    return Err(Failure::http(
                        s.unwrap_or(0),
                        format!(
                            "{progress}: \"{}\"",
                            view.error_text.unwrap_or_else(|| "the page failed".into())
                        ),
                    ));
                }
                EspPage::Waiting | EspPage::InProgress => {}
            }
        }
        Err(Failure::http(
            status.unwrap_or(0),
            format!("{}: still not released after 20 sessions", seen.join(" → ")),
        ))
    }

    async fn sign_in(&mut self) -> StepResult {
        match self.config.token.clone() {
            TokenSource::Fixed(t) => {
                self.token = t;
                Ok((None, "a token was given".into()))
            }
            TokenSource::Password {
                authority,
                tenant,
                username,
                password,
                scope,
            } => {
                let client = self.client(false)?;
                let url = format!("{authority}/{tenant}/oauth2/v2.0/token");
                let mut form = vec![
                    ("grant_type", "password"),
                    ("client_id", entra::WINDOWS_CLIENT_APP_ID),
                    ("username", username.as_str()),
                    ("password", password.as_str()),
                    ("scope", scope.as_str()),
                ];
                // A joined device's token names it; a work account's does not.
                if !self.config.work_account {
                    form.push(("device_id", self.config.device_id.as_str()));
                }
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish();
                let (status, _, body) = self
                    .send(
                        client
                            .post(&url)
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body(body),
                    )
                    .await?;
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let Some(token) = json["access_token"].as_str().filter(|_| status == 200) else {
                    return Err(Failure::http(
                        status,
                        format!(
                            "no token: {}",
                            json["error_description"]
                                .as_str()
                                .unwrap_or("(no description)")
                        ),
                    ));
                };
                self.token = token.to_owned();
                Ok((Some(status), format!("{username} signed in")))
            }
        }
    }

    async fn terms_page(&mut self) -> StepResult {
        let client = self.client(false)?;
        let url = format!(
            "{}/TermsOfUse?redirect_uri={}&client-request-id={}&api-version=1.0&mode=azureadjoin",
            self.config.server,
            "ms-appx-web%3A%2F%2FMicrosoft.AAD.BrokerPlugin%2Ftou",
            random_guid()
        );
        let (status, headers, body) = self
            .send(
                client
                    .get(&url)
                    .header("authorization", format!("Bearer {}", self.token))
                    .header("cxh-host", "FRX")
                    .header(
                        "user-agent",
                        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; WebView/3.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.26100",
                    ),
            )
            .await?;
        // A page that sends the user straight back (nothing to accept).
        if let Some(location) = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .filter(|l| (300..400).contains(&status) && l.starts_with("ms-appx-web://"))
        {
            let query = location.split_once('?').map_or("", |(_, q)| q);
            if let Some((_, error)) =
                url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "error")
            {
                return Err(Failure::http(status, format!("error redirect: {error}")));
            }
            self.tou_next = Some(Err(location.to_owned()));
            return Ok((Some(status), "redirected back to Windows at once".into()));
        }
        if status != 200 {
            return Err(Failure::http(status, "the Terms of Use page did not open"));
        }
        // Any vendor's page: its first form, with the button that accepts.
        let html = String::from_utf8_lossy(&body);
        let form = crate::form::first_form(&html)
            .ok_or_else(|| Failure::http(status, "no form on the Terms of Use page"))?;
        self.tou_next = Some(Ok((url, form)));
        Ok((Some(status), format!("{} bytes of HTML", body.len())))
    }

    async fn terms_accept(&mut self) -> StepResult {
        let client = self.client(false)?;
        let (status, mut location) = match self.tou_next.clone() {
            None => return Err(Failure::new("the Terms of Use page was not opened")),
            Some(Err(location)) => (302, location),
            Some(Ok((page, form))) => {
                // Submit it as a browser does, then follow the redirects (a POST answered
                // 302/303 continues with a GET) until one leads back to Windows.
                let target = url::Url::parse(&page)
                    .and_then(|p| p.join(&form.action))
                    .map_err(|e| Failure::new(format!("form action: {e}")))?;
                let encoded = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&form.fields)
                    .finish();
                let request = if form.method == "post" {
                    client
                        .post(target.as_str())
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(encoded)
                } else {
                    let mut t = target.clone();
                    t.set_query(Some(&encoded));
                    client.get(t.as_str())
                };
                let (mut status, mut headers, _) = self.send(request).await?;
                let mut current = target;
                let mut hops = 0;
                loop {
                    let next = headers
                        .get("location")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    if !(300..400).contains(&status) || next.starts_with("ms-appx-web://") {
                        break (status, next);
                    }
                    hops += 1;
                    if hops > 5 {
                        return Err(Failure::http(status, "too many redirects"));
                    }
                    current = current
                        .join(&next)
                        .map_err(|e| Failure::http(status, format!("redirect: {e}")))?;
                    (status, headers, _) = self.send(client.get(current.as_str())).await?;
                }
            }
        };
        if location.is_empty() {
            location = String::from("(none)");
        }
        if !(300..400).contains(&status) || !location.starts_with("ms-appx-web://") {
            return Err(Failure::http(
                status,
                format!("no redirect back to Windows ({location})"),
            ));
        }
        let query = location.split_once('?').map_or("", |(_, q)| q);
        let mut accepted = false;
        self.blob.clear();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "IsAccepted" => accepted = v == "true",
                "OpaqueBlob" => self.blob = v.into_owned(),
                "error" => return Err(Failure::http(status, format!("error redirect: {v}"))),
                _ => {}
            }
        }
        if !accepted || self.blob.is_empty() {
            return Err(Failure::http(status, "not accepted, or no OpaqueBlob"));
        }
        Ok((
            Some(status),
            format!("accepted; OpaqueBlob of {} bytes", self.blob.len()),
        ))
    }

    async fn probe(&mut self) -> StepResult {
        let client = self.client(false)?;
        let (status, _, _) = self
            .send(
                client
                    .get(format!(
                        "{}/EnrollmentServer/Discovery.svc",
                        self.config.server
                    ))
                    .header("user-agent", USER_AGENT),
            )
            .await?;
        if status != 200 {
            return Err(Failure::http(status, "the probe must answer 200"));
        }
        Ok((Some(status), "the discovery service is there".into()))
    }

    async fn discover(&mut self) -> StepResult {
        let url = format!("{}/EnrollmentServer/Discovery.svc", self.config.server);
        let body = format!(
            r#"<s:Envelope xmlns:a="http://www.w3.org/2005/08/addressing" xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header><a:Action s:mustUnderstand="1">http://schemas.microsoft.com/windows/management/2012/01/enrollment/IDiscoveryService/Discover</a:Action><a:MessageID>urn:uuid:{}</a:MessageID><a:ReplyTo><a:Address>http://www.w3.org/2005/08/addressing/anonymous</a:Address></a:ReplyTo><a:To s:mustUnderstand="1">{}</a:To></s:Header><s:Body><Discover xmlns="http://schemas.microsoft.com/windows/management/2012/01/enrollment"><request xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><EmailAddress>{}</EmailAddress><RequestVersion>6.0</RequestVersion><DeviceType>CIMClient_Windows</DeviceType><ApplicationVersion>{}</ApplicationVersion><OSEdition>4</OSEdition><AuthPolicies><AuthPolicy>OnPremise</AuthPolicy><AuthPolicy>Federated</AuthPolicy></AuthPolicies></request></Discover></s:Body></s:Envelope>"#,
            random_guid(),
            soap::escape(&url),
            soap::escape(self.upn().as_deref().unwrap_or("user@contoso.example")),
            soap::escape(&self.config.os_version),
        );
        let (status, resp) = self.soap(&url, body, false).await?;
        let env = soap::envelope(&resp, &soap::Limits::default())
            .map_err(|e| Failure::http(status, format!("DiscoverResponse: {e}")))?;
        let result = &["DiscoverResult"];
        let get = |name: &str| text_of(&env.body, &[result[0], name]).map(str::to_owned);
        self.enrollment_url = get("EnrollmentServiceUrl")
            .ok_or_else(|| Failure::http(status, "no EnrollmentServiceUrl"))?;
        // MS-MDE2 makes the policy service optional: without one the client skips
        // GetPolicies and uses its default certificate policy.
        self.policy_url = get("EnrollmentPolicyServiceUrl").unwrap_or_default();
        let auth = get("AuthPolicy").unwrap_or_default();
        Ok((
            Some(status),
            format!(
                "AuthPolicy {auth}, version {}",
                get("EnrollmentVersion").unwrap_or_default()
            ),
        ))
    }

    fn upn(&self) -> Option<String> {
        let (_, claims) = entra::decode_unverified(&self.token)?;
        claims["upn"]
            .as_str()
            .or_else(|| claims["preferred_username"].as_str())
            .map(str::to_owned)
    }

    fn security_header(&self) -> String {
        crate::requests::security_header(&self.token)
    }

    async fn policies(&mut self) -> StepResult {
        if self.policy_url.is_empty() {
            return Ok((
                None,
                "skipped: discovery names no EnrollmentPolicyServiceUrl (default policy)".into(),
            ));
        }
        let body = crate::requests::get_policies(&self.policy_url, &self.token);
        let (status, resp) = self.soap(&self.policy_url.clone(), body, false).await?;
        let env = soap::envelope(&resp, &soap::Limits::default())
            .map_err(|e| Failure::http(status, format!("GetPoliciesResponse: {e}")))?;
        let path = [
            "response",
            "policies",
            "policy",
            "attributes",
            "privateKeyAttributes",
            "minimalKeyLength",
        ];
        let key_length = env
            .body
            .path(&path)
            .map(|e| e.text().trim().to_owned())
            .ok_or_else(|| Failure::http(status, "no minimalKeyLength"))?;
        Ok((Some(status), format!("minimal key length {key_length}")))
    }

    fn rst(
        &self,
        request_type: &str,
        value_type: &str,
        token: &[u8],
        header: &str,
        items: &str,
    ) -> String {
        crate::requests::rst(
            &self.enrollment_url,
            request_type,
            value_type,
            token,
            header,
            items,
        )
    }

    fn installed(&mut self, status: u16, resp: &[u8], key: NewKey) -> Result<String, Failure> {
        let doc = winmdm_enroll::issue::provisioning_doc_of(resp)
            .map_err(|e| Failure::http(status, format!("no provisioning document: {e}")))?;
        let (certificate, dm_url, username, password, nonce) =
            install(&doc, &key.spki).map_err(|e| Failure::http(status, e))?;
        let nonce = Nonce::from_b64(&nonce)
            .map_err(|_| Failure::http(status, "AAUTHDATA is not base64"))?;
        let subject = X509Certificate::from_der(&certificate)
            .map(|(_, c)| c.subject().to_string())
            .unwrap_or_default();
        match &mut self.identity {
            // A renewal keeps the OMA-DM account (and the device its nonce).
            Some(id) => {
                id.key_pkcs8 = key.pkcs8;
                id.certificate = certificate;
            }
            None => {
                self.identity = Some(Identity {
                    key_pkcs8: key.pkcs8,
                    certificate,
                    dm_url,
                    username,
                    password,
                    nonce,
                });
            }
        }
        Ok(subject)
    }

    async fn enroll(&mut self) -> StepResult {
        let spelled = self.spelled_device_id();
        let key =
            new_key_and_csr(&spelled, self.config.key_pkcs8.as_deref()).map_err(Failure::new)?;
        let hw = random_guid().replace('-', "").to_ascii_uppercase();
        let items = context_items(&[
            ("UXInitiated", "true"),
            ("HWDevID", &hw),
            ("Locale", "en-US"),
            ("TargetedUserLoggedIn", "true"),
            ("OSEdition", "72"),
            ("DeviceName", &self.config.device_name),
            ("MAC", "00-15-5D-0A-1B-2C"),
            ("DeviceID", &spelled),
            (
                "EnrollmentType",
                if self.config.work_account {
                    "Full"
                } else {
                    "Device"
                },
            ),
            ("DeviceType", "CIMClient_Windows"),
            ("OSVersion", &self.config.os_version),
            ("ApplicationVersion", &self.config.os_version),
            ("NotInOobe", "false"),
            ("EnrollmentData", &self.blob),
        ]);
        let body = self.rst(
            "Issue",
            "http://schemas.microsoft.com/windows/pki/2009/01/enrollment#PKCS10",
            &key.csr,
            &self.security_header(),
            &items,
        );
        let (status, resp) = self.soap(&self.enrollment_url.clone(), body, false).await?;
        let subject = self.installed(status, &resp, key)?;
        Ok((
            Some(status),
            format!("certificate for {subject} installed; chain verified"),
        ))
    }

    async fn renew(&mut self) -> StepResult {
        let Some(id) = &self.identity else {
            return Err(Failure::new("not enrolled"));
        };
        let spelled = self.spelled_device_id();
        let key = new_key_and_csr(&spelled, None).map_err(Failure::new)?;
        let pkcs7 = renewal_pkcs7(&key.csr, &id.certificate, &id.key_pkcs8)?;
        let items = context_items(&[
            ("DeviceType", "CIMClient_Windows"),
            ("ApplicationVersion", &self.config.os_version),
            ("DeviceID", &spelled),
        ]);
        let body = self.rst(
            "Renew",
            "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#PKCS7",
            &pkcs7,
            "",
            &items,
        );
        let (status, resp) = self.soap(&self.enrollment_url.clone(), body, true).await?;
        let old_serial = X509Certificate::from_der(&id.certificate)
            .map(|(_, c)| c.raw_serial_as_string())
            .unwrap_or_default();
        self.installed(status, &resp, key)?;
        let new_serial = self
            .identity
            .as_ref()
            .and_then(|i| X509Certificate::from_der(&i.certificate).ok())
            .map(|(_, c)| c.raw_serial_as_string())
            .unwrap_or_default();
        if new_serial == old_serial {
            return Err(Failure::http(
                status,
                "the renewed certificate is the old one",
            ));
        }
        Ok((
            Some(status),
            format!("new certificate {new_serial} installed; chain verified"),
        ))
    }

    /// One management session; with `stop_after`, the device stops after that many
    /// messages were answered, leaving the session open on the server.
    async fn session(&mut self, first: Option<Command>, stop_after: Option<u32>) -> StepResult {
        let spelled = self
            .config
            .management_source
            .clone()
            .unwrap_or_else(|| self.spelled_device_id());
        let Some(id) = &self.identity else {
            return Err(Failure::new("not enrolled"));
        };
        let device = self.device.get_or_insert_with(|| {
            let mut d = Device::new(&spelled, &id.dm_url).with_digest(
                &id.username,
                &id.password,
                id.nonce.clone(),
            );
            if self.config.per_target_statuses {
                d = d.with_per_target_statuses();
            }
            if self.config.windows11 {
                // A counter an earlier boot left anywhere, so that runs cross the wrap.
                let last = u32::from(random_guid().as_bytes()[0]) * 7 % 256;
                d = d.like_windows_11().with_last_session_id(last);
            }
            for (node, value) in [
                ("./DevDetail/SwV", self.config.os_version.as_str()),
                ("./DevDetail/OEM", "Microsoft Corporation"),
                ("./DevDetail/DevTyp", "Virtual Machine"),
                (
                    "./DevDetail/Ext/Microsoft/DeviceName",
                    self.config.device_name.as_str(),
                ),
                (
                    "./DevDetail/Ext/Microsoft/OSPlatform",
                    "Windows 11 Enterprise",
                ),
            ] {
                d.set_node(node, value);
            }
            d
        });
        device.set_user_token(Some(self.token.clone()));
        device.set_login_status(Some(if self.signed_in {
            LoginStatus::User
        } else {
            LoginStatus::Others
        }));
        device.set_time(now());
        let unenrolling = first.is_some();
        if let Some(c) = first {
            device.push_first_package(c);
        }
        let already = device.applied().len();
        let mut message = device.start_session();
        let client = self.client(true)?;
        let cv = format!("{}.0.0.{}", self.ms_cv.0, self.ms_cv.1);
        self.ms_cv.1 += 1;
        let mut status = 0;
        let mut round_trips = 0;
        loop {
            round_trips += 1;
            if round_trips > 50 {
                return Err(Failure::http(
                    status,
                    "the session did not end after 50 messages",
                ));
            }
            let xml = winmdm_syncml::encode(&message);
            // Where the device sends: the session's RespURI once the server set one (as
            // Windows does), the provisioned server URL before.
            let mut url = self
                .device
                .as_ref()
                .map_or_else(String::new, |d| d.url().to_owned());
            let mut request = client
                .post(&url)
                .header("content-type", winmdm_syncml::CONTENT_TYPE)
                .header("user-agent", DM_USER_AGENT);
            if self.config.windows11 {
                // Windows adds its query to the provisioned address (not to a RespURI).
                if self.identity.as_ref().is_some_and(|i| i.dm_url == url) {
                    url.push_str(if url.contains('?') { "&" } else { "?" });
                    url.push_str("mode=Maintenance&Platform=WoA");
                }
                request = client
                    .post(&url)
                    .header("content-type", winmdm_syncml::CONTENT_TYPE)
                    .header("user-agent", DM_USER_AGENT)
                    .header(
                        "accept",
                        "application/vnd.syncml.dm+xml, application/vnd.syncml.dm+wbxml, application/octet-stream",
                    )
                    .header("accept-charset", "UTF-8")
                    .header("ms-cv", &cv);
                if round_trips == 1 {
                    request = request.header("client-request-id", "0");
                }
            }
            let (s, headers, body) = self.send(request.body(xml)).await?;
            status = s;
            if status != 200 {
                return Err(Failure::http(
                    status,
                    "the management server refused the message",
                ));
            }
            if headers.get("content-length").is_none() {
                return Err(Failure::http(
                    status,
                    "no Content-Length (Windows needs it)",
                ));
            }
            let server: SyncMl = winmdm_syncml::decode(&body)
                .map_err(|e| Failure::http(status, format!("server message: {e}")))?;
            let Some(device) = self.device.as_mut() else {
                return Err(Failure::new("no device"));
            };
            match device.respond(&server) {
                Some(next) if stop_after.is_none_or(|n| round_trips < n) => message = next,
                Some(_) => {
                    return Ok((
                        Some(status),
                        format!("stopped after {round_trips} messages, the session still open"),
                    ));
                }
                None => break,
            }
        }
        let Some(device) = self.device.as_ref() else {
            return Err(Failure::new("no device"));
        };
        if let Some(code) = device.refused() {
            return Err(Failure::http(
                status,
                format!("the server refused the session (SyncML status {})", code.0),
            ));
        }
        let new: Vec<String> = device.applied()[already..]
            .iter()
            .map(|a| format!("{} {}", a.command, a.uri))
            .collect();
        let summary = if new.is_empty() {
            "no commands".to_owned()
        } else {
            new.join(", ")
        };
        self.applied.extend(new);
        let what = if unenrolling {
            "unenrollment sent; "
        } else {
            ""
        };
        Ok((
            Some(status),
            format!("{what}{round_trips} messages; {summary}"),
        ))
    }
}

/// A correlation vector's base as Windows writes it: 16 base64 characters (12 random
/// bytes).
fn correlation_base() -> String {
    let hex = random_guid().replace('-', "");
    let bytes: Vec<u8> = (0..12)
        .filter_map(|i| u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok())
        .collect();
    STANDARD.encode(bytes)
}

fn renewal_pkcs7(csr: &[u8], cert: &[u8], key: &[u8]) -> Result<Vec<u8>, Failure> {
    // The testkit's builder panics on keys it cannot use; ours are RSA, as it expects.
    std::panic::catch_unwind(|| crate::pki::renewal_pkcs7(csr, cert, key))
        .map_err(|_| Failure::new("could not sign the renewal request"))
}
