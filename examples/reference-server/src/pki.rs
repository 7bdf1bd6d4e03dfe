//! The certificate authority that issues device certificates, and the HTTPS identity.
//!
//! Without configuration, a development CA (ECDSA P-256, ten years) is generated on first
//! start and kept in the data directory (`dev-ca.crt.pem`, `dev-ca.key.pem`, mode 0600);
//! the HTTPS certificate for `localhost`/`127.0.0.1`/`::1` is issued from it at each start.
//! Configure `ca` and `tls` to use your own.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::config::Config;

/// The issuing CA: its certificate and PKCS#8 key (DER).
#[derive(Clone)]
pub struct Ca {
    /// The CA certificate.
    pub cert_der: Vec<u8>,
    /// Its PKCS#8 private key.
    pub key_der: Vec<u8>,
    /// The CA certificate as PEM (what clients trust).
    pub cert_pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("cert", &format_args!("{} bytes", self.cert_der.len()))
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Ca {
    /// A CA whose key is elsewhere (an external signer): the TLS server certificate must
    /// then be configured (`tls`), since there is no key to issue it with.
    pub fn certificate_only(cert_der: Vec<u8>) -> Self {
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &cert_der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        Self {
            cert_pem: format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                lines.join("\n")
            ),
            cert_der,
            key_der: Vec::new(),
        }
    }
}

fn err(m: impl std::fmt::Display) -> String {
    m.to_string()
}

fn read_pem_pair(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    Ok((certs, key))
}

/// Loads the configured CA, or the development CA in the data directory (creating it on
/// first start).
///
/// # Errors
/// Unreadable files or keys, as text for the operator.
pub fn load_or_create_ca(config: &Config) -> Result<Ca, String> {
    if let (Some(cert), Some(key)) = (&config.ca.cert, &config.ca.key) {
        let (certs, key) = read_pem_pair(cert, key)?;
        let PrivateKeyDer::Pkcs8(key) = key else {
            return Err("ca.key must be a PKCS#8 key (BEGIN PRIVATE KEY)".into());
        };
        return Ok(Ca {
            cert_pem: std::fs::read_to_string(cert)
                .map_err(|e| format!("{}: {e}", cert.display()))?,
            cert_der: certs[0].to_vec(),
            key_der: key.secret_pkcs8_der().to_vec(),
        });
    }
    let cert_path = config.data_dir.join("dev-ca.crt.pem");
    let key_path = config.data_dir.join("dev-ca.key.pem");
    if cert_path.exists() && key_path.exists() {
        let (certs, key) = read_pem_pair(&cert_path, &key_path)?;
        let PrivateKeyDer::Pkcs8(key) = key else {
            return Err(format!("{}: not PKCS#8", key_path.display()));
        };
        return Ok(Ca {
            cert_pem: std::fs::read_to_string(&cert_path)
                .map_err(|e| format!("{}: {e}", cert_path.display()))?,
            cert_der: certs[0].to_vec(),
            key_der: key.secret_pkcs8_der().to_vec(),
        });
    }
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "winmdm development CA");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "winmdm reference server");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(3600)).into();
    params.not_after = (now + std::time::Duration::from_secs(10 * 365 * 86_400)).into();
    let cert = params.self_signed(&key).map_err(err)?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
    crate::write_secret(&key_path, &key.serialize_pem())
        .map_err(|e| format!("{}: {e}", key_path.display()))?;
    std::fs::write(&cert_path, cert.pem()).map_err(|e| format!("{}: {e}", cert_path.display()))?;
    tracing::info!(path = %cert_path.display(), "generated a development CA");
    Ok(Ca {
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
        cert_pem: cert.pem(),
    })
}

/// The TLS server configuration: the configured certificate, or one for loopback names
/// from the CA; client certificates from the CA are requested but optional (recent
/// Windows clients may not present one; digest authentication still applies).
///
/// # Errors
/// Unreadable files or keys.
pub fn tls_config(config: &Config, ca: &Ca) -> Result<Arc<rustls::ServerConfig>, String> {
    let (chain, key) = if let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) {
        read_pem_pair(cert, key)?
    } else {
        if ca.key_der.is_empty() {
            return Err("with an external signer, configure tls.cert and tls.key".into());
        }
        let ca_key = rcgen::KeyPair::try_from(ca.key_der.as_slice()).map_err(err)?;
        let issuer =
            rcgen::Issuer::from_ca_cert_der(&CertificateDer::from(ca.cert_der.clone()), ca_key)
                .map_err(err)?;
        let key = rcgen::KeyPair::generate().map_err(err)?;
        let mut params = rcgen::CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])
        .map_err(err)?;
        if let Some(host) = url::Url::parse(&config.public_url())
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .filter(|h| !matches!(h.as_str(), "localhost" | "127.0.0.1" | "[::1]"))
        {
            let san = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => rcgen::SanType::IpAddress(ip),
                Err(_) => rcgen::SanType::DnsName(host.try_into().map_err(err)?),
            };
            params.subject_alt_names.push(san);
        }
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "winmdm reference server");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let now = std::time::SystemTime::now();
        params.not_before = (now - std::time::Duration::from_secs(3600)).into();
        params.not_after = (now + std::time::Duration::from_secs(90 * 86_400)).into();
        let cert = params.signed_by(&key, &issuer).map_err(err)?;
        (
            vec![
                cert.der().clone(),
                CertificateDer::from(ca.cert_der.clone()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.cert_der.clone()))
        .map_err(err)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(err)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(err)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}
