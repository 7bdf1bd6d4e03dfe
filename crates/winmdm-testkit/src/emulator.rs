//! A loopback Entra ID emulator: OIDC metadata, JWKS and the token endpoint (client
//! credentials, the password grant for test users), with controls for tests.
//!
//! It serves the paths Entra serves, under `http://127.0.0.1:<port>`:
//!
//! | path | what |
//! |---|---|
//! | `/{tenant}/v2.0/.well-known/openid-configuration` | v2 metadata |
//! | `/{tenant}/.well-known/openid-configuration` | v1 metadata |
//! | `/{tenant}/discovery/v2.0/keys`, `/{tenant}/discovery/keys` | JWKS with per-key `issuer` |
//! | `POST /{tenant}/oauth2/v2.0/token` | client credentials: secret (form or Basic) or certificate assertion (RS256 + `x5t`, PS256 + `x5t#S256`); the password grant for the test users |
//!
//! `{tenant}` is `common`, `organizations`, a tenant ID or a tenant domain. Issuers are
//! Microsoft's real strings; endpoint URLs point at the emulator.
//!
//! Controls: [`EntraEmulator::rotate_keys`], [`EntraEmulator::fail_next`],
//! [`EntraEmulator::set_delay`], and a request log ([`EntraEmulator::requests`]).
//!
//! The emulator runs on its own thread with its own runtime, so it works the same from
//! synchronous and asynchronous tests; dropping the handle stops it.
//!
//! ```
//! use winmdm_testkit::emulator::EntraEmulator;
//! let emu = EntraEmulator::spawn()?;
//! assert!(emu.base_url().starts_with("http://127.0.0.1:"));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::entra::{
    self, APP_CREDENTIAL_1, APP_CREDENTIAL_2, APP_SECRET_1, APP_SECRET_2, AccessToken, CONTOSO,
    FABRIKAM, KEY_FABRIKAM, KeyIssuer, MDM_APP_ID, SigningKey, Tenant, TokenVersion,
};

/// An application registration the token endpoint knows.
#[derive(Clone)]
pub struct AppRegistration {
    /// The client ID.
    pub client_id: String,
    /// Accepted client secrets.
    pub secrets: Vec<String>,
    /// Accepted certificate credentials (DER).
    pub certificates: Vec<Vec<u8>>,
    /// `None` for a multi-tenant app (a cloud MDM); `Some` for a single-tenant app (an
    /// on-premises MDM registered in the customer's tenant).
    pub home_tenant: Option<Tenant>,
    /// Application permissions granted (the `roles` claim).
    pub roles: Vec<String>,
}

impl std::fmt::Debug for AppRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRegistration")
            .field("client_id", &self.client_id)
            .field(
                "secrets",
                &format_args!("[redacted; {}]", self.secrets.len()),
            )
            .field("certificates", &self.certificates.len())
            .field("home_tenant", &self.home_tenant)
            .field("roles", &self.roles)
            .finish()
    }
}

impl AppRegistration {
    /// The testkit MDM app: multi-tenant, both test secrets and both certificate
    /// credentials, `Device.ReadWrite.All`.
    pub fn mdm_app() -> Self {
        Self {
            client_id: MDM_APP_ID.to_owned(),
            secrets: vec![APP_SECRET_1.to_owned(), APP_SECRET_2.to_owned()],
            certificates: vec![
                APP_CREDENTIAL_1.cert_der.to_vec(),
                APP_CREDENTIAL_2.cert_der.to_vec(),
            ],
            home_tenant: None,
            roles: vec!["Device.ReadWrite.All".to_owned()],
        }
    }
}

/// How the emulator starts.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Tenants that exist.
    pub tenants: Vec<Tenant>,
    /// Known application registrations.
    pub apps: Vec<AppRegistration>,
    /// Lifetime of issued access tokens, in seconds.
    pub token_lifetime: u64,
    /// Allowed clock skew when checking client assertions, in seconds.
    pub assertion_skew: u64,
    /// Users who can sign in with the password grant (see [`EntraEmulator::token_url`]),
    /// each in its tenant, all with [`entra::USER_PASSWORD`].
    pub users: Vec<(Tenant, entra::User)>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            tenants: vec![CONTOSO, FABRIKAM],
            apps: vec![AppRegistration::mdm_app()],
            token_lifetime: 3_599,
            assertion_skew: 300,
            users: vec![
                (CONTOSO, entra::ALICE),
                (CONTOSO, entra::GUEST),
                (FABRIKAM, entra::BOB),
            ],
        }
    }
}

/// One request the emulator received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// The method.
    pub method: String,
    /// The path (without query).
    pub path: String,
    /// The status the emulator answered.
    pub status: u16,
    /// For token requests: the `client_id` and which credential kind was used
    /// (`secret`, `assertion`, `basic`); never the credential itself.
    pub note: String,
}

#[derive(Debug)]
struct EmulatorState {
    config: EmulatorConfig,
    rotation: usize,
    fail_next: usize,
    fail_status: u16,
    delay: Duration,
    log: Vec<LoggedRequest>,
}

#[derive(Debug)]
struct Shared {
    base_url: String,
    state: Mutex<EmulatorState>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, EmulatorState> {
        // A panicking test thread must not take the emulator down with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct EntraEmulator {
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl EntraEmulator {
    /// Starts an emulator with [`EmulatorConfig::default`] on an ephemeral loopback port.
    pub fn spawn() -> std::io::Result<Self> {
        Self::spawn_with(EmulatorConfig::default())
    }

    /// Starts an emulator with `config` on an ephemeral loopback port.
    pub fn spawn_with(config: EmulatorConfig) -> std::io::Result<Self> {
        let (listener, addr) = crate::serve::bind_loopback()?;
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            state: Mutex::new(EmulatorState {
                config,
                rotation: 0,
                fail_next: 0,
                fail_status: 503,
                delay: Duration::ZERO,
                log: Vec::new(),
            }),
        });
        let tx = crate::serve::serve(
            listener,
            router(shared.clone()),
            format!("entra-emulator-{}", addr.port()),
        )?;
        Ok(Self {
            shared,
            shutdown: Some(tx),
        })
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The metadata URL for `tenant_segment` (`common`, `organizations`, a tenant ID).
    pub fn metadata_url(&self, tenant_segment: &str, version: TokenVersion) -> String {
        match version {
            TokenVersion::V2 => format!(
                "{}/{tenant_segment}/v2.0/.well-known/openid-configuration",
                self.base_url()
            ),
            TokenVersion::V1 => format!(
                "{}/{tenant_segment}/.well-known/openid-configuration",
                self.base_url()
            ),
        }
    }

    /// The JWKS URL for `tenant_segment`.
    pub fn jwks_url(&self, tenant_segment: &str, version: TokenVersion) -> String {
        match version {
            TokenVersion::V2 => format!("{}/{tenant_segment}/discovery/v2.0/keys", self.base_url()),
            TokenVersion::V1 => format!("{}/{tenant_segment}/discovery/keys", self.base_url()),
        }
    }

    /// The v2 token endpoint for `tenant_segment`.
    pub fn token_url(&self, tenant_segment: &str) -> String {
        format!("{}/{tenant_segment}/oauth2/v2.0/token", self.base_url())
    }

    /// The shared key currently used to sign tokens.
    pub fn active_key(&self) -> &'static SigningKey {
        active_key(self.shared.lock().rotation)
    }

    /// Every key the JWKS for `tenant_segment` publishes now.
    pub fn published_keys(&self, tenant_segment: &str) -> Vec<&'static SigningKey> {
        let state = self.shared.lock();
        published_keys(&state, tenant_segment).unwrap_or_default()
    }

    /// Rolls the signing key: the next key of [`entra::rotation_pool`] becomes active and
    /// is published; the previous active key stays published; the one before it is
    /// withdrawn (tokens it signed stop validating after a refresh).
    pub fn rotate_keys(&self) {
        self.shared.lock().rotation += 1;
    }

    /// Makes the next `n` requests (any path) fail with HTTP `status` and an Entra-style
    /// JSON error body.
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut state = self.shared.lock();
        state.fail_next = n;
        state.fail_status = status;
    }

    /// Delays every response by `delay` (zero to stop).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.lock().log.clone()
    }

    /// How many token-endpoint requests were received.
    pub fn token_requests(&self) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.path.ends_with("/token"))
            .count()
    }

    /// Clears the request log.
    pub fn clear_log(&self) {
        self.shared.lock().log.clear();
    }
}

impl Drop for EntraEmulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn active_key(rotation: usize) -> &'static SigningKey {
    let pool = entra::rotation_pool();
    pool[rotation % pool.len()]
}

fn find_tenant(state: &EmulatorState, segment: &str) -> Option<Tenant> {
    state
        .config
        .tenants
        .iter()
        .find(|t| t.id.eq_ignore_ascii_case(segment) || t.domain.eq_ignore_ascii_case(segment))
        .copied()
}

fn is_tenant_independent(segment: &str) -> bool {
    matches!(segment, "common" | "organizations")
}

fn published_keys(state: &EmulatorState, segment: &str) -> Option<Vec<&'static SigningKey>> {
    let pool = entra::rotation_pool();
    let mut keys = vec![active_key(state.rotation)];
    if state.rotation > 0 {
        keys.push(pool[(state.rotation + pool.len() - 1) % pool.len()]);
    }
    let bound_to = |key: &SigningKey, t: Option<Tenant>| match (key.issuer, t) {
        (KeyIssuer::Tenant(kt), Some(t)) => kt == t,
        (KeyIssuer::Tenant(_), None) => true,
        (KeyIssuer::Templated, _) => true,
    };
    let tenant = if is_tenant_independent(segment) {
        None
    } else {
        Some(find_tenant(state, segment)?)
    };
    if bound_to(&KEY_FABRIKAM, tenant) {
        keys.push(&KEY_FABRIKAM);
    }
    Some(keys)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

fn entra_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let now = unix_now();
    json_response(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}"),
            "error_codes": [code],
            "timestamp": now.to_string(),
            "trace_id": "00000000-0000-4000-8000-000000000000",
            "correlation_id": "00000000-0000-4000-8000-000000000000",
        }),
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(|s: State<Arc<Shared>>, p: Path<String>| async move {
                metadata(s, p, TokenVersion::V2)
            }),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(|s: State<Arc<Shared>>, p: Path<String>| async move {
                metadata(s, p, TokenVersion::V1)
            }),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(keys))
        .route("/{tenant}/discovery/keys", get(keys))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            controls,
        ))
        .with_state(shared)
}

/// Applies the delay and failure controls, and logs every request.
async fn controls(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (delay, fail) = {
        let mut state = shared.lock();
        let fail = if state.fail_next > 0 {
            state.fail_next -= 1;
            Some(state.fail_status)
        } else {
            None
        };
        (state.delay, fail)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (response, note) = match fail {
        Some(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            (
                entra_error(
                    status,
                    "temporarily_unavailable",
                    50_001,
                    "The service is temporarily unavailable (injected by the test).",
                ),
                "injected failure".to_owned(),
            )
        }
        None => {
            let mut response = next.run(request).await;
            let note = response
                .extensions_mut()
                .remove::<LogNote>()
                .map(|n| n.0)
                .unwrap_or_default();
            (response, note)
        }
    };
    shared.lock().log.push(LoggedRequest {
        method: method.to_string(),
        path,
        status: response.status().as_u16(),
        note,
    });
    response
}

#[derive(Clone)]
struct LogNote(String);

fn metadata(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    version: TokenVersion,
) -> Response {
    let state = shared.lock();
    let segment = if is_tenant_independent(&tenant) {
        tenant
    } else {
        match find_tenant(&state, &tenant) {
            Some(t) => t.id.to_owned(),
            None => {
                return entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_tenant",
                    90_002,
                    &format!("Tenant '{tenant}' not found."),
                );
            }
        }
    };
    let mut doc = entra::openid_configuration(&shared.base_url, &segment, version);
    if !is_tenant_independent(&segment) {
        // Tenant-specific metadata points at endpoints under the tenant's ID.
        doc["tenant_region_scope"] = json!("EU");
    }
    json_response(StatusCode::OK, &doc)
}

async fn keys(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>) -> Response {
    let state = shared.lock();
    match published_keys(&state, &tenant) {
        Some(keys) => json_response(StatusCode::OK, &entra::jwks(keys)),
        None => entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90_002,
            &format!("Tenant '{tenant}' not found."),
        ),
    }
}

async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (mut response, note) = {
        let state = shared.lock();
        token_response(
            &state,
            &shared.base_url,
            &tenant,
            &method,
            &headers,
            &body,
            unix_now(),
        )
    };
    response.extensions_mut().insert(LogNote(note));
    response
}

/// Decides a token request. Returns the response and a log note without secrets.
fn token_response(
    state: &EmulatorState,
    base_url: &str,
    tenant_segment: &str,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    now: u64,
) -> (Response, String) {
    let bad = |status, error: &str, code, description: &str, note: &str| {
        (
            entra_error(status, error, code, description),
            note.to_owned(),
        )
    };
    if method != Method::POST {
        return bad(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            900_561,
            "The endpoint only accepts POST requests.",
            "",
        );
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| {
        let mut values = form
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            Err(name.to_owned())
        } else {
            Ok(first)
        }
    };
    let fields = (|| {
        Ok::<_, String>((
            field("grant_type")?,
            field("client_id")?,
            field("scope")?,
            field("client_secret")?,
            field("client_assertion_type")?,
            field("client_assertion")?,
        ))
    })();
    let Ok((grant_type, form_client_id, scope, secret, assertion_type, assertion)) = fields else {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90_014,
            "A parameter was repeated.",
            "",
        );
    };
    if grant_type == Some("password") {
        return password_grant(state, tenant_segment, &form, now);
    }
    if grant_type != Some("client_credentials") {
        return bad(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70_003,
            "The app requested an unsupported grant type.",
            "",
        );
    }
    // HTTP Basic client authentication (client_secret_basic).
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            let dec = |x: &str| {
                url::form_urlencoded::parse(format!("x={x}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((dec(id)?, dec(secret)?))
        });
    let client_id = match (form_client_id, &basic) {
        (Some(id), Some((bid, _))) if id != bid => {
            return bad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50_148,
                "client_id in the body and the Authorization header differ.",
                "",
            );
        }
        (Some(id), _) => id.to_owned(),
        (None, Some((bid, _))) => bid.clone(),
        (None, None) => {
            return bad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900_144,
                "The request body must contain the following parameter: 'client_id'.",
                "",
            );
        }
    };
    let Some(app) = state.config.apps.iter().find(|a| a.client_id == client_id) else {
        return bad(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
            &client_id,
        );
    };
    if is_tenant_independent(tenant_segment) {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90_009,
            "Client credentials require a tenant-specific endpoint, not 'common' or 'organizations'.",
            &client_id,
        );
    }
    let Some(tenant) = find_tenant(state, tenant_segment) else {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90_002,
            &format!("Tenant '{tenant_segment}' not found."),
            &client_id,
        );
    };
    if app.home_tenant.is_some_and(|home| home != tenant) {
        return bad(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'.",
                tenant.id
            ),
            &client_id,
        );
    }
    let Some(resource) = scope
        .and_then(|s| s.strip_suffix("/.default"))
        .filter(|r| !r.is_empty())
    else {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1_002_012,
            "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
            &client_id,
        );
    };
    let credential_note = match (secret, &basic, assertion_type, assertion) {
        (Some(secret), None, None, None) => {
            if !app
                .secrets
                .iter()
                .any(|s| constant_time_eq(s.as_bytes(), secret.as_bytes()))
            {
                return bad(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7_000_215,
                    "Invalid client secret provided.",
                    &format!("{client_id} secret"),
                );
            }
            "secret"
        }
        (None, Some((_, secret)), None, None) => {
            if !app
                .secrets
                .iter()
                .any(|s| constant_time_eq(s.as_bytes(), secret.as_bytes()))
            {
                return bad(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7_000_215,
                    "Invalid client secret provided.",
                    &format!("{client_id} basic"),
                );
            }
            "basic"
        }
        (None, None, Some(kind), Some(assertion)) => {
            if kind != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
                return bad(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    50_027,
                    "Invalid client_assertion_type.",
                    &client_id,
                );
            }
            let audiences = [
                format!("{base_url}/{tenant_segment}/oauth2/v2.0/token"),
                format!("https://login.microsoftonline.com/{tenant_segment}/oauth2/v2.0/token"),
            ];
            if let Err((code, why)) =
                check_assertion(app, assertion, &audiences, now, state.config.assertion_skew)
            {
                return bad(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    code,
                    why,
                    &format!("{client_id} assertion"),
                );
            }
            "assertion"
        }
        (None, None, None, None) => {
            return bad(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7_000_218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                &client_id,
            );
        }
        _ => {
            return bad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50_012,
                "Exactly one client credential must be presented.",
                &client_id,
            );
        }
    };
    let lifetime = state.config.token_lifetime;
    let roles: Vec<&str> = app.roles.iter().map(String::as_str).collect();
    let access_token = AccessToken::app_only(&tenant, &client_id, resource, &roles)
        .signed_with(active_key(state.rotation))
        .valid_between(now, now + lifetime)
        .sign();
    (
        json_response(
            StatusCode::OK,
            &json!({
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": access_token,
            }),
        ),
        format!("{client_id} {credential_note}"),
    )
}

/// The resource-owner password grant, as a device simulator signs in: a v2 user token
/// for the MDM application (`scope` = `{MDM app ID or URI}/.default`) requested by the
/// Windows client. The emulator's one extension is an optional `device_id` form field,
/// which becomes the `deviceid` claim (real Entra takes it from the device's
/// registration during join).
fn password_grant(
    state: &EmulatorState,
    tenant_segment: &str,
    form: &[(String, String)],
    now: u64,
) -> (Response, String) {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let username = field("username").unwrap_or_default();
    let fail = |status, error: &str, code, description: &str| {
        (
            entra_error(status, error, code, description),
            format!("password {username}"),
        )
    };
    if field("client_id") != Some(entra::WINDOWS_CLIENT_APP_ID) {
        return fail(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            "Only the Windows client may use the password grant here.",
        );
    }
    let Some(resource) = field("scope")
        .and_then(|s| s.strip_suffix("/.default"))
        .filter(|r| *r == entra::MDM_APP_ID || *r == entra::MDM_APP_ID_URI)
    else {
        return fail(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70_011,
            "The scope must be the MDM application's /.default scope.",
        );
    };
    let Some((tenant, user)) = state.config.users.iter().find(|(t, u)| {
        u.upn.eq_ignore_ascii_case(username)
            && (is_tenant_independent(tenant_segment)
                || t.id.eq_ignore_ascii_case(tenant_segment)
                || t.domain.eq_ignore_ascii_case(tenant_segment))
    }) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50_034,
            "The user account does not exist in this directory.",
        );
    };
    let password = field("password").unwrap_or_default();
    if !constant_time_eq(password.as_bytes(), entra::USER_PASSWORD.as_bytes()) {
        return fail(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50_126,
            "Error validating credentials due to invalid username or password.",
        );
    }
    let lifetime = state.config.token_lifetime;
    let mut token = AccessToken::v2(tenant, user)
        .claim("aud", resource)
        .signed_with(active_key(state.rotation))
        .valid_between(now, now + lifetime);
    if let Some(device_id) = field("device_id").filter(|d| !d.is_empty()) {
        token = token.claim("deviceid", device_id);
    }
    (
        json_response(
            StatusCode::OK,
            &json!({
                "token_type": "Bearer",
                "scope": format!("{resource}/.default"),
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token.sign(),
            }),
        ),
        format!("password {}", user.upn),
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks a client assertion as Entra does: header thumbprint names a registered
/// certificate, the signature verifies with it, `aud` is the token endpoint, `iss` and
/// `sub` are the client ID, `jti` is present, and the time window holds.
fn check_assertion(
    app: &AppRegistration,
    assertion: &str,
    audiences: &[String],
    now: u64,
    skew: u64,
) -> Result<(), (u32, &'static str)> {
    const MALFORMED: (u32, &str) = (50_027, "Invalid JWT token: the assertion is malformed.");
    let (signing_input, sig) = assertion.rsplit_once('.').ok_or(MALFORMED)?;
    let (header, claims) = entra::decode_unverified(assertion).ok_or(MALFORMED)?;
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| MALFORMED)?;
    let alg = header["alg"].as_str().unwrap_or_default();
    type Thumbprint = fn(&[u8]) -> String;
    let (algorithm, thumbprint_field, thumbprint): (
        &'static dyn signature::VerificationAlgorithm,
        &str,
        Thumbprint,
    ) = match alg {
        "RS256" => (&signature::RSA_PKCS1_2048_8192_SHA256, "x5t", entra::x5t),
        "PS256" => (
            &signature::RSA_PSS_2048_8192_SHA256,
            "x5t#S256",
            entra::x5t_s256,
        ),
        _ => {
            return Err((
                5_002_738,
                "The assertion's signing algorithm is not supported (use RS256 or PS256).",
            ));
        }
    };
    let wanted = header[thumbprint_field].as_str().ok_or((
        700_027,
        "The assertion header lacks the certificate thumbprint for its algorithm.",
    ))?;
    let cert = app
        .certificates
        .iter()
        .find(|c| thumbprint(c) == wanted)
        .ok_or((
            700_027,
            "Client assertion contains an invalid signature: the key was not found.",
        ))?;
    let public_key = rsa_public_key(cert).ok_or(MALFORMED)?;
    signature::UnparsedPublicKey::new(algorithm, public_key)
        .verify(signing_input.as_bytes(), &sig)
        .map_err(|_| (700_027, "Client assertion contains an invalid signature."))?;
    let client_id = app.client_id.as_str();
    if claims["iss"].as_str() != Some(client_id) || claims["sub"].as_str() != Some(client_id) {
        return Err((
            700_023,
            "The assertion's iss and sub must both be the client ID.",
        ));
    }
    let aud_ok = match &claims["aud"] {
        Value::String(a) => audiences.iter().any(|x| x == a),
        Value::Array(list) => list
            .iter()
            .any(|a| a.as_str().is_some_and(|a| audiences.iter().any(|x| x == a))),
        _ => false,
    };
    if !aud_ok {
        return Err((
            700_021,
            "The assertion's audience is not this token endpoint.",
        ));
    }
    if claims["jti"].as_str().is_none_or(str::is_empty) {
        return Err((700_026, "The assertion has no jti."));
    }
    let exp = claims["exp"]
        .as_u64()
        .ok_or((700_024, "The assertion has no exp."))?;
    if exp + skew < now {
        return Err((
            700_024,
            "Client assertion is not within its valid time range (expired).",
        ));
    }
    if claims["nbf"].as_u64().is_some_and(|nbf| nbf > now + skew) {
        return Err((
            700_024,
            "Client assertion is not within its valid time range (not yet valid).",
        ));
    }
    Ok(())
}

/// The PKCS#1 `RSAPublicKey` inside a DER certificate.
fn rsa_public_key(cert_der: &[u8]) -> Option<Vec<u8>> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    Some(cert.public_key().subject_public_key.data.to_vec())
}
