//! The winmdm reference MDM server: every winmdm crate composed into one axum server.
//!
//! * Device endpoints over HTTPS (rustls, aws-lc-rs): `/TermsOfUse`,
//!   `/EnrollmentServer/Discovery.svc`, `/EnrollmentServer/Policy.svc`,
//!   `/EnrollmentServer/Enrollment.svc` (issue, renew, recover),
//!   `/ManagementServer/MDM.svc`, `/healthz`. Every response carries `Content-Length`.
//! * An admin JSON API on its own listener, behind a bearer secret ([`admin`]).
//! * Storage behind a trait ([`store::Store`]); SQLite by default.
//! * Zero configuration: embedded Entra and Graph emulators, a development CA, HTTPS on
//!   loopback — each replaceable ([`config`]).
//! * `winmdm-server --demo` runs the testkit's simulated Windows device through the whole
//!   flow against a fresh server ([`demo`]).
#![allow(clippy::missing_errors_doc)]

pub mod admin;
pub mod app;
pub mod commands;
pub mod config;
pub mod demo;
pub mod edge;
pub mod pki;
pub mod store;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::UnixTime;
use tokio::net::TcpListener;
use winmdm_endpoint::{Endpoint, EndpointConfig, TermsOfUseBlob};
use winmdm_enroll::issue::CertificateSigner;
use winmdm_entra::app_token::{AppCredentials, AppTokenProvider, Credential};
use winmdm_entra::{KeyCache, KeySource, Policy, TokenVersion, Validator};
use winmdm_graph::{GraphClient, api::GraphApi};
use winmdm_testkit::emulator::EntraEmulator;
use winmdm_testkit::graph::GraphEmulator;
use winmdm_tou::{Keyring, SealingKey, Terms};

pub use app::App;
pub use config::Config;

use crate::app::PeerCertificate;
use crate::config::Secret;
use crate::store::{SqliteStore, Store};

/// A running server. Dropping it asks the listeners (and the embedded emulators) to stop;
/// [`Running::shutdown`] also waits until the listening ports are released, which a
/// restart on the same port needs.
#[derive(Debug)]
pub struct Running {
    /// How devices reach it (`https://127.0.0.1:<port>`).
    pub public_url: String,
    /// The admin API (`http://127.0.0.1:<port>`).
    pub admin_url: String,
    /// The admin API's bearer secret.
    pub admin_secret: Secret,
    /// The CA certificate devices' and clients' trust (PEM).
    pub ca_pem: String,
    /// The shared state (storage included).
    pub app: Arc<App>,
    /// The embedded Entra emulator, when no authority was configured.
    pub entra: Option<EntraEmulator>,
    /// The embedded Graph emulator, when no Graph URL was configured.
    pub graph: Option<GraphEmulator>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the listeners and the key refresher and waits until they are gone, so the
    /// ports are free when this returns. Connections already accepted finish on their own.
    pub async fn shutdown(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            // An aborted task reports cancellation; a finished one its own end. Either
            // way its listener has been dropped.
            let _ = t.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn read_or_create_secret(path: &Path, bytes: usize) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    let mut b = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| "no randomness".to_owned())?;
    let secret = app::hex(&b);
    write_secret(path, &secret).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(secret)
}

/// Writes a secret file readable by its owner only (0600 on Unix).
#[cfg(unix)]
pub(crate) fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
pub(crate) fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// Reads `<kid> <64 hex digits>` lines (the first seals, the rest only open), creating
/// the file with one random key on first start.
fn tou_keyring(path: &Path) -> Result<Keyring, String> {
    if !path.exists() {
        let mut b = [0u8; 32];
        aws_lc_rs::rand::fill(&mut b).map_err(|_| "no randomness".to_owned())?;
        write_secret(path, &format!("k1 {}\n", app::hex(&b)))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = |n: usize, why: &str| format!("{}:{n}: {why}", path.display());
    let mut keyring: Option<Keyring> = None;
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (kid, hex) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad(n, "expected `<key id> <64 hex digits>`"))?;
        let hex = hex.trim();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(
                n,
                "the key must be 64 hex digits (openssl rand -hex 32)",
            ));
        }
        let mut secret = [0u8; 32];
        for (i, byte) in secret.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad(n, "hex"))?;
        }
        let key = SealingKey::new(kid, &secret).map_err(|e| bad(n, &e.to_string()))?;
        keyring = Some(match keyring {
            None => Keyring::new(key),
            Some(k) => k.with_previous(key).map_err(|e| bad(n, &e.to_string()))?,
        });
    }
    keyring.ok_or_else(|| format!("{}: no key", path.display()))
}

/// The token resource for a Graph URL: the origin of an `https` cloud endpoint, the
/// global Graph resource otherwise (emulators).
fn graph_scope(graph_url: &str) -> String {
    match url::Url::parse(graph_url) {
        Ok(u) if u.scheme() == "https" => format!("{}/.default", u.origin().ascii_serialization()),
        _ => "https://graph.microsoft.com/.default".to_owned(),
    }
}

/// The endpoint's configuration from the server's.
fn endpoint_config(config: &Config, public_url: &str) -> EndpointConfig {
    let e = &config.enrollment;
    let mut c = EndpointConfig::new(public_url);
    c.provider_id.clone_from(&e.provider_id);
    c.name.clone_from(&e.name);
    c.certificate_validity = Duration::from_secs(e.validity_days * 86_400);
    c.renewal_window = Duration::from_secs(e.renewal_window_days * 86_400);
    c.allow_ecdsa = e.allow_ecdsa;
    c.max_devices_per_user = e.max_devices_per_user;
    c.required_scope.clone_from(&e.required_scope);
    c.terms_of_use_blob = if e.require_terms_blob {
        TermsOfUseBlob::Required
    } else {
        TermsOfUseBlob::NotRequired
    };
    c.discovery
        .authentication_service_url
        .clone_from(&e.authentication_service_url);
    if !e.advertise_policy_service {
        c.discovery.policy_service_url = None;
    }
    c.initial_commands
        .clone_from(&config.management.initial_commands);
    c.max_auth_failures = config.management.max_auth_failures;
    c.auth_failure_window = Duration::from_secs(config.management.auth_failure_window_secs);
    c.allow_digest_after_certificate = config.management.allow_digest_after_certificate;
    // Checked by Config::check.
    c.esp = config.esp.endpoint().ok().flatten();
    c
}

/// Replacements for built-in components, for vendors embedding the server in code.
#[derive(Default)]
pub struct Components {
    /// Storage instead of SQLite in the data directory.
    pub store: Option<Arc<dyn Store>>,
    /// A signer (an HSM, a remote CA) instead of the CA key, with the certificate of the
    /// CA it signs device certificates with (renewal and TLS client authentication check
    /// against it).
    pub signer: Option<(Arc<dyn CertificateSigner + Send + Sync>, Vec<u8>)>,
}

impl std::fmt::Debug for Components {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Components")
            .field("store", &self.store.is_some())
            .field("signer", &self.signer.is_some())
            .finish()
    }
}

/// Starts the server with `config` (on the current tokio runtime).
///
/// # Errors
/// Configuration, files, keys, listeners — as text for the operator.
pub async fn start(config: Config) -> Result<Running, String> {
    start_with(config, Components::default()).await
}

/// Starts the server with `config` and replaced `components`.
///
/// # Errors
/// Configuration, files, keys, listeners — as text for the operator.
pub async fn start_with(mut config: Config, components: Components) -> Result<Running, String> {
    config.check().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;

    // Terms of Use: the sealing keys are shared by every instance (they live with the
    // data). The first line seals; the others still open blobs during a rotation. Read
    // before any port is taken, so a bad file is reported as itself.
    let keyring = tou_keyring(&config.data_dir.join("tou-sealing-keys"))?;

    // Certificates: a signer given in code, or the configured (or development) CA key.
    let (ca, issuer): (pki::Ca, Arc<dyn CertificateSigner + Send + Sync>) = match components.signer
    {
        Some((signer, cert_der)) => (pki::Ca::certificate_only(cert_der), signer),
        None => {
            let ca = pki::load_or_create_ca(&config)?;
            let issuer = winmdm_enroll::issue::LocalIssuer::new(
                &ca.cert_der,
                &ca.key_der,
                Vec::new(),
                ca.cert_der.clone(),
            )
            .map_err(|e| format!("CA: {e}"))?;
            (ca, Arc::new(issuer))
        }
    };

    // Embedded emulators for whatever is not configured.
    let entra = match &config.entra.authority {
        Some(_) => None,
        None => Some(EntraEmulator::spawn().map_err(|e| format!("Entra emulator: {e}"))?),
    };
    let graph_emulator = match &config.graph.url {
        Some(_) => None,
        None => Some(GraphEmulator::spawn().map_err(|e| format!("Graph emulator: {e}"))?),
    };
    let authority = config
        .entra
        .authority
        .clone()
        .or_else(|| entra.as_ref().map(|e| e.base_url().to_owned()))
        .unwrap_or_default();
    let graph_url = config
        .graph
        .url
        .clone()
        .or_else(|| graph_emulator.as_ref().map(GraphEmulator::base_url))
        .unwrap_or_default();

    // Listeners first: an ephemeral port decides the public URL.
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("listen {}: {e}", config.listen))?;
    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .map_err(|e| format!("admin listen {}: {e}", config.admin_listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let admin_local = admin_listener.local_addr().map_err(|e| e.to_string())?;
    if config.public_url.is_none() {
        config.public_url = Some(format!("https://{local}"));
    }
    let public_url = config.public_url();

    // Token validation, with keys fetched before the first request.
    let http = winmdm_entra::fetch::default_client().map_err(|e| e.to_string())?;
    let policy = Policy::builder()
        .allow_tenants(config.entra.tenants.iter().map(String::as_str))
        .allow_audiences(config.entra.audiences.iter().map(String::as_str))
        .build()
        .map_err(|e| e.to_string())?;
    let cache = Arc::new(KeyCache::new(vec![
        KeySource::entra(&authority, "organizations", TokenVersion::V2),
        KeySource::entra(&authority, "organizations", TokenVersion::V1),
    ]));
    winmdm_entra::fetch::refresh_due(&cache, &http, UnixTime::now()).await;
    let refresher = winmdm_entra::fetch::spawn_refresher(cache.clone(), http.clone());
    let validator = Validator::new(policy, cache);

    // Graph.
    let secret = match (&config.graph.client_secret, &graph_emulator) {
        (Some(s), _) => s.0.clone(),
        (None, Some(_)) => winmdm_testkit::entra::APP_SECRET_1.to_owned(),
        (None, None) => return Err("graph.client_secret is required with an external Graph".into()),
    };
    let token_authority = config
        .graph
        .authority
        .clone()
        .unwrap_or_else(|| authority.clone());
    let tokens = AppTokenProvider::new(
        http.clone(),
        token_authority,
        AppCredentials::new(&config.graph.client_id).with(Credential::secret(secret)),
    )
    .with_scope(graph_scope(&graph_url));
    let graph = GraphClient::new(
        http.clone(),
        GraphApi::new(&graph_url).map_err(|e| e.to_string())?,
        tokens,
    )
    .with_timeout(Duration::from_secs(30));

    let tls = pki::tls_config(&config, &ca)?;
    let store: Arc<dyn Store> = match (components.store, &config.database_url) {
        (Some(store), _) => store,
        (None, Some(url)) => {
            // The synchronous client must not run on an async worker.
            let (url, size) = (url.0.clone(), config.database_pool);
            Arc::new(
                tokio::task::spawn_blocking(move || {
                    store::postgres::PostgresStore::connect(&url, size)
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("database: {e}"))?,
            )
        }
        (None, None) => Arc::new(
            SqliteStore::open(&config.data_dir.join("winmdm.sqlite3"))
                .map_err(|e| e.to_string())?,
        ),
    };
    let admin_secret = match &config.admin_secret {
        Some(s) => s.clone(),
        None => Secret(read_or_create_secret(
            &config.data_dir.join("admin-secret"),
            24,
        )?),
    };
    let terms = Terms::text(config.terms.title.clone(), config.terms.text.clone());
    let endpoint = Endpoint::new(
        endpoint_config(&config, &public_url),
        winmdm_endpoint::Components {
            store: store.clone(),
            validator,
            keyring,
            terms,
            signer: issuer,
            issuing_ca: ca.cert_der.clone(),
        },
    )
    .map_err(|e| e.to_string())?;
    #[cfg(feature = "fault-injection")]
    let endpoint = endpoint.with_checkpoints(Arc::new(app::crash_point));
    let app = Arc::new(App {
        in_flight: Arc::new(tokio::sync::Semaphore::new(config.management.max_in_flight)),
        config,
        store,
        ca: ca.clone(),
        endpoint: Arc::new(endpoint),
        http,
        graph,
    });

    let device_router = app::router(app.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let edge = app.config.edge.clone();
    let devices = tokio::spawn(edge::accept_loop(listener, edge.clone(), {
        let edge = edge.clone();
        move |tcp| {
            let (acceptor, router, edge) = (acceptor.clone(), device_router.clone(), edge.clone());
            async move {
                let activity = tcp.activity();
                let Ok(Ok(tls)) =
                    tokio::time::timeout(edge.tls_handshake_timeout(), acceptor.accept(tcp)).await
                else {
                    return;
                };
                let peer = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| Arc::new(c.to_vec()));
                let service = TowerToHyperService::new(
                    router
                        .layer(axum::Extension(PeerCertificate(peer)))
                        .layer(axum::Extension(activity)),
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(edge.header_timeout())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            }
        }
    }));
    let admin_router = admin::router(app.clone(), admin_secret.clone());
    let admin = tokio::spawn(edge::accept_loop(
        admin_listener,
        edge.clone(),
        move |tcp| {
            let (router, edge) = (admin_router.clone(), edge.clone());
            async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(edge.header_timeout())
                    .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(router))
                    .await;
            }
        },
    ));
    tracing::info!(%public_url, admin = %admin_local, "winmdm reference server ready");
    Ok(Running {
        public_url,
        admin_url: format!("http://{admin_local}"),
        admin_secret,
        ca_pem: ca.cert_pem,
        app,
        entra,
        graph: graph_emulator,
        tasks: vec![devices, admin, refresher],
    })
}
