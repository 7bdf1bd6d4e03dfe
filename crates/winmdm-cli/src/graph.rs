//! `winmdm graph report-compliance`: try the MDM's app registration against Microsoft
//! Graph by reporting one device's state, and print the HTTP outcome.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use winmdm_entra::app_token::{
    AppCredentials, AppTokenProvider, AssertionStyle, CertificateCredential, Credential,
};
use winmdm_graph::{Compliance, DeviceRef, GraphApi, GraphClient, GraphError, RetryPolicy};

/// How the app authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliCredential {
    /// A client secret read from this environment variable (never from the command line).
    SecretEnv(String),
    /// A certificate (PEM) and its PKCS#8 private key (PEM).
    Certificate {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
    },
}

/// How to address the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKey {
    /// Try the Entra device ID first, then the object ID.
    Auto,
    /// The Entra device ID (`devices(deviceId='…')`).
    DeviceId,
    /// The directory object ID.
    ObjectId,
}

/// The options of `report-compliance`.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The device's tenant.
    pub tenant: String,
    /// The device (a GUID).
    pub device: String,
    /// How `device` is meant.
    pub key: DeviceKey,
    /// `isCompliant`.
    pub compliant: bool,
    /// `isManaged`.
    pub managed: bool,
    /// The app's client ID.
    pub client_id: String,
    /// Its credential.
    pub credential: CliCredential,
    /// The Entra authority (default `https://login.microsoftonline.com`).
    pub authority: String,
    /// The Graph base URL (default the global v1.0 endpoint).
    pub graph_url: String,
}

fn pem_der(path: &str, label_suffix: &str) -> Result<Vec<u8>, String> {
    let text = crate::input::read_text(path)?;
    let mut inside = false;
    let mut b64 = String::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("-----BEGIN ") && l.ends_with(label_suffix) {
            inside = true;
        } else if l.starts_with("-----END ") {
            if inside {
                break;
            }
        } else if inside {
            b64.push_str(l);
        }
    }
    if b64.is_empty() {
        return Err(format!("{path}: no PEM block ending in {label_suffix:?}"));
    }
    STANDARD
        .decode(b64)
        .map_err(|_| format!("{path}: the PEM block is not base64"))
}

fn credential(c: &CliCredential) -> Result<Credential, String> {
    match c {
        CliCredential::SecretEnv(var) => std::env::var(var)
            .map(Credential::secret)
            .map_err(|_| format!("environment variable {var} is not set")),
        CliCredential::Certificate { cert, key } => {
            let cert = pem_der(cert, "CERTIFICATE-----")?;
            let key = pem_der(key, "PRIVATE KEY-----")?;
            CertificateCredential::from_der(&cert, &key, AssertionStyle::Ps256)
                .map(Credential::Certificate)
                .map_err(|e| e.to_string())
        }
    }
}

/// A one-line outcome for a Graph error (never a token).
pub fn describe(e: &GraphError) -> String {
    match e {
        GraphError::NotFound { code, .. } => {
            format!("404 Not Found ({})", code.as_deref().unwrap_or("no code"))
        }
        GraphError::Unauthorized { code, message } => format!(
            "401 Unauthorized ({}): {}",
            code.as_deref().unwrap_or("no code"),
            message.as_deref().unwrap_or("")
        ),
        GraphError::Forbidden { code, message } => format!(
            "403 Forbidden ({}): {} — does the app have Device.ReadWrite.All with admin consent in this tenant?",
            code.as_deref().unwrap_or("no code"),
            message.as_deref().unwrap_or("")
        ),
        GraphError::Token(t) => format!("no token: {t}"),
        other => other.to_string(),
    }
}

/// Runs `report-compliance`; `Ok` is the success line, `Err` the failure line.
///
/// # Errors
/// The failure, described for a person.
pub fn report_compliance(opts: &ReportOptions) -> Result<String, String> {
    if winmdm_entra::DeviceId::parse(&opts.device).is_err() {
        return Err(format!("--device {:?} is not a GUID", opts.device));
    }
    let api = GraphApi::new(&opts.graph_url).map_err(|e| e.to_string())?;
    let creds = AppCredentials::new(&opts.client_id).with(credential(&opts.credential)?);
    let http = winmdm_entra::fetch::default_client().map_err(|e| e.to_string())?;
    let tokens = AppTokenProvider::new(http.clone(), &opts.authority, creds)
        .with_scope(format!("{}/.default", scope_resource(&opts.graph_url)));
    let client = GraphClient::new(http, api, tokens)
        .with_retry(RetryPolicy {
            max_total: Duration::from_secs(60),
            ..RetryPolicy::default()
        })
        .with_timeout(Duration::from_secs(30));
    let compliance = Compliance {
        is_managed: Some(opts.managed),
        is_compliant: Some(opts.compliant),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let device = opts.device.as_str();
        let tenant = opts.tenant.as_str();
        let result = match opts.key {
            DeviceKey::DeviceId => client
                .report_compliance(tenant, DeviceRef::DeviceId(device), compliance)
                .await
                .map(|()| "deviceId"),
            DeviceKey::ObjectId => client
                .report_compliance(tenant, DeviceRef::ObjectId(device), compliance)
                .await
                .map(|()| "object id"),
            DeviceKey::Auto => match client
                .report_compliance(tenant, DeviceRef::DeviceId(device), compliance)
                .await
            {
                Err(GraphError::NotFound { .. }) => client
                    .report_compliance(tenant, DeviceRef::ObjectId(device), compliance)
                    .await
                    .map(|()| "object id"),
                other => other.map(|()| "deviceId"),
            },
        };
        result
            .map(|by| {
                format!(
                    "204 No Content: device {} (by {by}) in tenant {} is now isManaged={} isCompliant={}",
                    opts.device, opts.tenant, opts.managed, opts.compliant
                )
            })
            .map_err(|e| describe(&e))
    })
}

/// The token resource for a Graph URL: its origin for an `https` cloud endpoint
/// (`https://graph.microsoft.us` for `https://graph.microsoft.us/v1.0`), the global Graph
/// resource otherwise (emulators on loopback).
fn scope_resource(graph_url: &str) -> String {
    match url::Url::parse(graph_url) {
        Ok(u) if u.scheme() == "https" => u.origin().ascii_serialization(),
        _ => "https://graph.microsoft.com".to_owned(),
    }
}
