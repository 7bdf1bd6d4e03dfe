//! App-only tokens (OAuth 2.0 client credentials) for Microsoft Graph.
//!
//! An MDM reports device compliance to Graph with an app-only token of its own
//! application: for a cloud MDM one multi-tenant app requests a token *in each customer
//! tenant*; an on-premises MDM has a client ID and keys per tenant. Credentials are a
//! client secret or a certificate (a signed client assertion); several may be live at
//! once so keys roll over without downtime.
//!
//! Sans-I/O pieces: [`token_request`] builds the request, [`parse_token_response`] reads
//! the answer, [`AppToken::should_refresh`] says when to renew. With the `reqwest`
//! feature, [`AppTokenProvider`] ties them together with a per-tenant cache that refreshes
//! early and keeps one request in flight per tenant.
//!
//! ```
//! use rustls_pki_types::UnixTime;
//! use std::time::Duration;
//! use winmdm_entra::app_token::{self, Credential, GRAPH_DEFAULT_SCOPE};
//!
//! let now = UnixTime::since_unix_epoch(Duration::from_secs(1_780_000_000));
//! let request = app_token::token_request(
//!     "https://login.microsoftonline.com",
//!     "72f988bf-0000-4000-8000-00000000c0de",
//!     "a1b2c3d4-0000-4000-8000-00000000a0d1",
//!     &Credential::secret("s3cret"),
//!     GRAPH_DEFAULT_SCOPE,
//!     now,
//! )?;
//! assert_eq!(request.uri(), "https://login.microsoftonline.com/72f988bf-0000-4000-8000-00000000c0de/oauth2/v2.0/token");
//! assert_eq!(format!("{:?}", Credential::secret("s3cret")), "Secret([redacted])");
//! # Ok::<(), winmdm_entra::Error>(())
//! ```
//!
// Without the feature the provider is not compiled in: link to the published docs instead.
#![cfg_attr(
    not(feature = "reqwest"),
    doc = "[`AppTokenProvider`]: https://docs.rs/winmdm-entra/latest/winmdm_entra/app_token/struct.AppTokenProvider.html"
)]

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::{digest, rand, signature};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::UnixTime;
use serde_json::{Value, json};

use crate::{Error, SecretString};

/// The `.default` scope of Microsoft Graph.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";
/// The client-assertion type for certificate credentials.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Largest token-endpoint response read.
pub const MAX_TOKEN_RESPONSE: usize = 64 * 1024;
/// Default early-refresh margin: renew when less than this remains.
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// How a client assertion is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AssertionStyle {
    /// PS256 with `x5t#S256` (Microsoft's current guidance).
    #[default]
    Ps256,
    /// RS256 with `x5t` (SHA-1 thumbprint; older guidance, still accepted).
    Rs256,
}

/// A certificate credential: the certificate uploaded to the app registration and its
/// RSA private key.
#[derive(Clone)]
pub struct CertificateCredential {
    key: Arc<signature::RsaKeyPair>,
    x5t: String,
    x5t_s256: String,
    style: AssertionStyle,
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("x5t#S256", &self.x5t_s256)
            .field("style", &self.style)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl CertificateCredential {
    /// From the DER certificate and its PKCS#8 DER RSA private key.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the key is not an RSA PKCS#8 key of at least 2048 bits.
    pub fn from_der(
        cert_der: &[u8],
        pkcs8_key_der: &[u8],
        style: AssertionStyle,
    ) -> Result<Self, Error> {
        let key =
            signature::RsaKeyPair::from_pkcs8(pkcs8_key_der).map_err(|e| Error::InvalidConfig {
                reason: format!("certificate credential key: {e}"),
            })?;
        if key.public_modulus_len() < 256 {
            return Err(Error::InvalidConfig {
                reason: "certificate credential key is shorter than 2048 bits".to_owned(),
            });
        }
        Ok(Self {
            key: Arc::new(key),
            x5t: URL_SAFE_NO_PAD
                .encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, cert_der)),
            x5t_s256: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, cert_der)),
            style,
        })
    }

    /// A signed client assertion for `client_id` at `audience` (the token endpoint),
    /// valid from `now` for 10 minutes, with a random `jti`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if signing fails (it does not with a valid key).
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: UnixTime,
    ) -> Result<String, Error> {
        let now = now.as_secs();
        let (alg, header) = match self.style {
            AssertionStyle::Ps256 => (
                "PS256",
                json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.x5t_s256}),
            ),
            AssertionStyle::Rs256 => (
                "RS256",
                json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t}),
            ),
        };
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": random_guid(),
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let scheme: &'static dyn signature::RsaEncoding = match alg {
            "PS256" => &signature::RSA_PSS_SHA256,
            _ => &signature::RSA_PKCS1_SHA256,
        };
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                scheme,
                &rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| Error::InvalidConfig {
                reason: "signing the client assertion failed".to_owned(),
            })?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

fn random_guid() -> String {
    let mut b = [0u8; 16];
    if rand::fill(&mut b).is_err() {
        // The system RNG does not fail on supported platforms; keep the jti unique anyway.
        b = digest::digest(
            &digest::SHA256,
            format!("{:?}", std::time::SystemTime::now()).as_bytes(),
        )
        .as_ref()[..16]
            .try_into()
            .unwrap_or_default();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// One credential of an app registration.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A client secret.
    Secret(SecretString),
    /// A certificate.
    Certificate(CertificateCredential),
}

impl Credential {
    /// A client-secret credential.
    pub fn secret(secret: impl Into<SecretString>) -> Self {
        Self::Secret(secret.into())
    }
}

/// An app registration's client ID and its live credentials.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    client_id: String,
    /// Oldest first; the newest is tried first.
    credentials: Vec<Credential>,
}

impl AppCredentials {
    /// The app with no credentials yet.
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            credentials: Vec::new(),
        }
    }

    /// Adds a credential. Add them oldest first: the last one added is the newest and is
    /// tried first; the others are fallbacks while a rollover is under way.
    pub fn with(mut self, credential: Credential) -> Self {
        self.credentials.push(credential);
        self
    }

    /// The client ID.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Credentials in the order they are tried (newest first).
    pub fn in_preference_order(&self) -> impl Iterator<Item = &Credential> {
        self.credentials.iter().rev()
    }
}

/// The v2 token endpoint of `tenant` at `authority`.
pub fn token_endpoint(authority: &str, tenant: &str) -> String {
    format!(
        "{}/{tenant}/oauth2/v2.0/token",
        authority.trim_end_matches('/')
    )
}

fn check_tenant(tenant: &str) -> Result<(), Error> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 256
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !matches!(tenant, "common" | "organizations" | "consumers");
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidConfig {
            reason: format!(
                "{tenant:?} is not a tenant ID or domain (client credentials need one tenant)"
            ),
        })
    }
}

/// Builds a client-credentials token request.
///
/// # Errors
/// [`Error::InvalidConfig`] for a tenant that is not an ID or domain (`common` is not
/// allowed for client credentials) or a credential that cannot sign.
pub fn token_request(
    authority: &str,
    tenant: &str,
    client_id: &str,
    credential: &Credential,
    scope: &str,
    now: UnixTime,
) -> Result<http::Request<Vec<u8>>, Error> {
    check_tenant(tenant)?;
    let endpoint = token_endpoint(authority, tenant);
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials")
        .append_pair("client_id", client_id)
        .append_pair("scope", scope);
    match credential {
        Credential::Secret(secret) => {
            form.append_pair("client_secret", secret.expose());
        }
        Credential::Certificate(cert) => {
            form.append_pair("client_assertion_type", CLIENT_ASSERTION_TYPE)
                .append_pair(
                    "client_assertion",
                    &cert.assertion(client_id, &endpoint, now)?,
                );
        }
    }
    http::Request::post(&endpoint)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::ACCEPT, "application/json")
        .body(form.finish().into_bytes())
        .map_err(|e| Error::InvalidConfig {
            reason: format!("token endpoint URL: {e}"),
        })
}

/// An app-only access token.
#[derive(Clone, PartialEq, Eq)]
pub struct AppToken {
    access_token: SecretString,
    expires_at: u64,
}

impl fmt::Debug for AppToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppToken")
            .field("access_token", &self.access_token)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl AppToken {
    /// The bearer token. Do not log it.
    pub fn secret(&self) -> &SecretString {
        &self.access_token
    }

    /// Expiry, Unix seconds.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Whether the token is still valid at `now`.
    pub fn is_valid(&self, now: UnixTime) -> bool {
        now.as_secs() < self.expires_at
    }

    /// Whether to renew at `now`: less than `refresh_before` remains.
    pub fn should_refresh(&self, now: UnixTime, refresh_before: Duration) -> bool {
        now.as_secs().saturating_add(refresh_before.as_secs()) >= self.expires_at
    }
}

/// Reads the token endpoint's answer.
///
/// # Errors
/// [`Error::TokenEndpoint`] for an error answer (with Entra's `error`, `error_codes` and
/// `error_description`), [`Error::InvalidDocument`] for a success answer without a usable
/// bearer token.
pub fn parse_token_response<B: AsRef<[u8]>>(
    response: &http::Response<B>,
    now: UnixTime,
) -> Result<AppToken, Error> {
    let body = response.body().as_ref();
    let invalid = |reason: &str| Error::InvalidDocument {
        document: "token response",
        reason: reason.to_owned(),
    };
    if body.len() > MAX_TOKEN_RESPONSE {
        return Err(invalid("too large"));
    }
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let status = response.status();
    if !status.is_success() {
        let s = |name: &str| {
            json.as_ref()
                .and_then(|j| j.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let codes = json
            .as_ref()
            .and_then(|j| j.get("error_codes"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        return Err(Error::TokenEndpoint {
            status: status.as_u16(),
            error: s("error"),
            codes,
            description: s("error_description"),
        });
    }
    let json = json.ok_or_else(|| invalid("not JSON"))?;
    let token_type = json
        .get("token_type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(invalid("token_type is not Bearer"));
    }
    let token = json
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("no access_token"))?;
    let expires_in = match json.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| invalid("no expires_in"))?;
    Ok(AppToken {
        access_token: SecretString::new(token),
        expires_at: now.as_secs().saturating_add(expires_in),
    })
}

/// Whether `error` means the credential itself was refused (so the next live credential
/// should be tried), as opposed to a tenant, scope or service problem.
pub fn is_credential_rejection(error: &Error) -> bool {
    matches!(error, Error::TokenEndpoint { error, .. } if error == "invalid_client")
}

#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use provider::AppTokenProvider;

#[cfg(feature = "reqwest")]
mod provider {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use rustls_pki_types::UnixTime;

    use super::{
        AppCredentials, AppToken, DEFAULT_REFRESH_BEFORE, GRAPH_DEFAULT_SCOPE,
        is_credential_rejection, parse_token_response, token_request,
    };
    use crate::Error;

    type Clock = Arc<dyn Fn() -> UnixTime + Send + Sync>;

    #[derive(Default)]
    struct TenantSlot {
        current: Mutex<Option<AppToken>>,
        refresh: tokio::sync::Mutex<()>,
    }

    /// App-only tokens per tenant, cached, refreshed early, one request in flight per
    /// tenant, with credential fallback for rollovers.
    ///
    /// Concurrent callers for a tenant whose token is missing or expired wait for one
    /// shared request. While a still-valid token is inside the early-refresh window, one
    /// caller refreshes and the others keep using the current token.
    pub struct AppTokenProvider {
        client: reqwest::Client,
        authority: String,
        scope: String,
        default_credentials: Option<Arc<AppCredentials>>,
        tenant_credentials: HashMap<String, Arc<AppCredentials>>,
        refresh_before: Duration,
        clock: Clock,
        slots: Mutex<HashMap<String, Arc<TenantSlot>>>,
    }

    impl std::fmt::Debug for AppTokenProvider {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("AppTokenProvider")
                .field("authority", &self.authority)
                .field("scope", &self.scope)
                .field("default_credentials", &self.default_credentials)
                .field("tenant_credentials", &self.tenant_credentials)
                .finish_non_exhaustive()
        }
    }

    impl AppTokenProvider {
        /// A provider for a multi-tenant app: `credentials` are used in every tenant.
        /// `authority` is `https://login.microsoftonline.com` (or a national cloud, or an
        /// emulator).
        pub fn new(
            client: reqwest::Client,
            authority: impl Into<String>,
            credentials: AppCredentials,
        ) -> Self {
            Self {
                default_credentials: Some(Arc::new(credentials)),
                ..Self::per_tenant(client, authority)
            }
        }

        /// A provider with no default credentials: add each tenant's with
        /// [`with_tenant`](Self::with_tenant) (on-premises installations).
        pub fn per_tenant(client: reqwest::Client, authority: impl Into<String>) -> Self {
            Self {
                client,
                authority: authority.into(),
                scope: GRAPH_DEFAULT_SCOPE.to_owned(),
                default_credentials: None,
                tenant_credentials: HashMap::new(),
                refresh_before: DEFAULT_REFRESH_BEFORE,
                clock: Arc::new(UnixTime::now),
                slots: Mutex::new(HashMap::new()),
            }
        }

        /// Uses `credentials` (their own client ID and keys) for `tenant`.
        pub fn with_tenant(
            mut self,
            tenant: impl Into<String>,
            credentials: AppCredentials,
        ) -> Self {
            self.tenant_credentials
                .insert(tenant.into().to_ascii_lowercase(), Arc::new(credentials));
            self
        }

        /// Requests tokens for `scope` (default: Graph's `.default`).
        pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
            self.scope = scope.into();
            self
        }

        /// Renews when less than `margin` remains (default 5 minutes).
        pub fn refresh_before(mut self, margin: Duration) -> Self {
            self.refresh_before = margin;
            self
        }

        /// Replaces the clock (tests inject time).
        pub fn with_clock(mut self, clock: impl Fn() -> UnixTime + Send + Sync + 'static) -> Self {
            self.clock = Arc::new(clock);
            self
        }

        fn slot(&self, tenant: &str) -> Arc<TenantSlot> {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(tenant.to_owned()).or_default().clone()
        }

        fn cached(slot: &TenantSlot) -> Option<AppToken> {
            slot.current
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        }

        /// A valid token for `tenant`.
        ///
        /// # Errors
        /// [`Error::InvalidConfig`] when no credentials are configured for the tenant;
        /// the token endpoint's or transport's error when every credential failed and no
        /// valid token is cached.
        pub async fn token(&self, tenant: &str) -> Result<AppToken, Error> {
            let tenant = tenant.to_ascii_lowercase();
            let slot = self.slot(&tenant);
            let now = (self.clock)();
            if let Some(token) = Self::cached(&slot) {
                if !token.should_refresh(now, self.refresh_before) {
                    return Ok(token);
                }
                if token.is_valid(now) {
                    // Early refresh: one caller renews, the rest keep the current token.
                    let Ok(_guard) = slot.refresh.try_lock() else {
                        return Ok(token);
                    };
                    return match self.fetch(&tenant).await {
                        Ok(new) => {
                            *slot.current.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(new.clone());
                            Ok(new)
                        }
                        Err(e) => {
                            tracing::warn!(tenant = %tenant, error = %e, "early app-token refresh failed; keeping the current token");
                            Ok(token)
                        }
                    };
                }
            }
            let _guard = slot.refresh.lock().await;
            // Someone else may have fetched while we waited.
            if let Some(token) = Self::cached(&slot)
                && !token.should_refresh((self.clock)(), self.refresh_before)
            {
                return Ok(token);
            }
            let new = self.fetch(&tenant).await?;
            *slot.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(new.clone());
            Ok(new)
        }

        async fn fetch(&self, tenant: &str) -> Result<AppToken, Error> {
            let credentials = self
                .tenant_credentials
                .get(tenant)
                .or(self.default_credentials.as_ref())
                .ok_or_else(|| Error::InvalidConfig {
                    reason: format!("no app credentials for tenant {tenant}"),
                })?;
            let mut last = Error::InvalidConfig {
                reason: "the app registration has no credentials".to_owned(),
            };
            for (attempt, credential) in credentials.in_preference_order().enumerate() {
                let now = (self.clock)();
                let request = token_request(
                    &self.authority,
                    tenant,
                    credentials.client_id(),
                    credential,
                    &self.scope,
                    now,
                )?;
                let response = crate::fetch::send(&self.client, request).await?;
                match parse_token_response(&response, now) {
                    Ok(token) => return Ok(token),
                    Err(e) if is_credential_rejection(&e) => {
                        tracing::warn!(tenant, attempt, error = %e, "credential refused; trying the previous one");
                        last = e;
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(last)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(s))
    }

    #[test]
    fn parses_success_and_errors() {
        let ok = http::Response::builder()
            .status(200)
            .body(br#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ.x.y"}"#.to_vec())
            .unwrap();
        let t = parse_token_response(&ok, at(1000)).unwrap();
        assert_eq!(t.expires_at(), 4599);
        assert_eq!(t.secret().expose(), "eyJ.x.y");
        assert!(!format!("{t:?}").contains("eyJ"));
        assert!(t.should_refresh(at(4300), DEFAULT_REFRESH_BEFORE));
        assert!(!t.should_refresh(at(4200), DEFAULT_REFRESH_BEFORE));

        let err = http::Response::builder()
            .status(401)
            .body(br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#.to_vec())
            .unwrap();
        let e = parse_token_response(&err, at(0)).unwrap_err();
        assert!(is_credential_rejection(&e));
        assert!(
            matches!(e, Error::TokenEndpoint { status: 401, ref codes, .. } if codes == &[7000215])
        );

        let html = http::Response::builder()
            .status(502)
            .body(b"<html>".to_vec())
            .unwrap();
        assert!(matches!(
            parse_token_response(&html, at(0)),
            Err(Error::TokenEndpoint { status: 502, .. })
        ));
        let no_token = http::Response::builder()
            .status(200)
            .body(br#"{"token_type":"Bearer"}"#.to_vec())
            .unwrap();
        assert!(matches!(
            parse_token_response(&no_token, at(0)),
            Err(Error::InvalidDocument { .. })
        ));
    }

    #[test]
    fn refuses_tenant_independent_endpoints() {
        for tenant in ["common", "organizations", "", "a/b", "x?y"] {
            assert!(
                token_request(
                    "https://l",
                    tenant,
                    "c",
                    &Credential::secret("s"),
                    GRAPH_DEFAULT_SCOPE,
                    at(0)
                )
                .is_err()
            );
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let creds = AppCredentials::new("client").with(Credential::secret("hunter2"));
        assert!(!format!("{creds:?}").contains("hunter2"));
    }
}
