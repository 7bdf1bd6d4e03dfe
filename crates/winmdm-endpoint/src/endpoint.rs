//! The [`Endpoint`]: every device-facing route, request in, response out.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use http::request::Parts;
use http::{Method, Response, StatusCode, header};
use rustls_pki_types::UnixTime;
use winmdm_enroll::discovery::{self, DiscoveryConfig};
use winmdm_enroll::enrollment_data::TokenIdentity;
use winmdm_enroll::fault::EnrollError;
use winmdm_enroll::issue::{self, CertificateSigner, IssuancePolicy, Requester};
use winmdm_enroll::provisioning::{self, ProvisioningConfig};
use winmdm_enroll::renewal::{self, RenewalPolicy};
use winmdm_enroll::wstep::{self, EnrollmentKind, RequestType, RstRequest};
use winmdm_enroll::{soap_response, xcep};
use winmdm_entra::{DeviceId, EntraClaims, Principals, Validator, Verified};
use winmdm_syncml::auth::Nonce;
use winmdm_syncml::dmclient::FirstSync;
use winmdm_syncml::scope::{EnrollmentType, SessionUser};
use winmdm_syncml::session::{
    AuthMethod, Authenticated, Event, Inbound, QueuedCommand, Reply, Session, SessionConfig,
    SessionState, Verdict,
};
use winmdm_syncml::{CONTENT_TYPE, CONTENT_TYPE_WBXML};
use winmdm_tou::{
    Entropy, EntropyUnavailable, Keyring, Submission, SystemEntropy, Terms, TermsOfUse,
};

use crate::config::{EndpointConfig, TermsOfUseBlob};
use crate::esp::EspState;
use crate::store::{
    Admission, CheckIn, Commit, CommitError, DeviceRecord, Enrolled, Replace, SessionWrite,
    StatusRecord, Store, StoreError,
};
use crate::wire::{self, Refusal, respond};

/// What the TLS layer and the clock say about one request.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Input<'a> {
    /// Now, in Unix seconds.
    pub now: u64,
    /// The client certificate (DER) the TLS handshake verified, if the client presented
    /// one. Only what the TLS layer verified belongs here (a certificate forwarded by a
    /// proxy that verified it is fine; one taken from a request header the client wrote is
    /// not).
    pub client_certificate: Option<&'a [u8]>,
}

impl<'a> Input<'a> {
    /// A request at `now` without a client certificate.
    pub fn new(now: u64) -> Self {
        Self {
            now,
            client_certificate: None,
        }
    }

    /// The current system time.
    pub fn now() -> Self {
        Self::new(UnixTime::now().as_secs())
    }

    /// With the client certificate the TLS layer verified.
    #[must_use]
    pub fn with_client_certificate(mut self, der: Option<&'a [u8]>) -> Self {
        self.client_certificate = der;
        self
    }
}

/// What [`Endpoint::handle`] produced.
#[derive(Debug)]
#[must_use]
pub enum Handled {
    /// Send this.
    Response(Response<Vec<u8>>),
    /// The request carries an Entra token signed by a key the cache does not hold, and a
    /// key fetch is due: run [`crate::keys::refresh_due`] (or its async twin) on
    /// [`Endpoint::key_cache`], then handle the same request again. Nothing was changed.
    /// (The cache rate-limits such fetches, so the second attempt answers.)
    RefreshKeys,
}

/// The device-facing routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The Terms-of-Use page (GET) and its form (POST).
    TermsOfUse,
    /// MS-MDE2 discovery: the GET probe and `Discover`.
    Discovery,
    /// MS-XCEP `GetPolicies`.
    Policy,
    /// MS-WSTEP issue, renew, recover.
    Enrollment,
    /// OMA-DM.
    Management,
}

/// Which components an [`Endpoint`] is built from.
pub struct Components {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Entra token validation. Its policy must accept users only
    /// ([`Principals::Users`], the default): app-only tokens never enroll.
    pub validator: Validator,
    /// The keys that seal Terms-of-Use state and blobs (shared by every instance).
    pub keyring: Keyring,
    /// The terms shown.
    pub terms: Terms,
    /// Signs device certificates.
    pub signer: Arc<dyn CertificateSigner + Send + Sync>,
    /// The certificate (DER) of the CA `signer` signs with: renewals must be signed with a
    /// certificate it issued.
    pub issuing_ca: Vec<u8>,
}

impl fmt::Debug for Components {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Components").finish_non_exhaustive()
    }
}

/// A configuration or component the endpoint refuses to run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The validator accepts app-only tokens: they would enroll devices and unlock user
    /// commands.
    #[error("the validator must accept user tokens only (Principals::Users)")]
    AppTokensAccepted,
    /// `public_url` is not an absolute `https` (or, for tests, `http`) URL.
    #[error("public_url {0:?} is not an absolute http(s) URL")]
    PublicUrl(String),
    /// A route path does not start with `/`, or two routes share a path.
    #[error("route paths must start with / and differ: {0:?}")]
    Paths(String),
    /// The Enrollment Status Page is configured but cannot be: the provider ID needs URI
    /// escaping, or a tracked command does not pass [`crate::CommandSpec::check`].
    #[error("Enrollment Status Page: {0}")]
    Esp(String),
}

/// Named points in request handling, for tests that crash or pause a server there (see
/// [`Endpoint::with_checkpoints`]).
pub type Checkpoints = Arc<dyn Fn(&'static str) + Send + Sync>;

/// The composed MDM endpoint. Cheap to share (`Arc<Endpoint>`); every method takes `&self`.
/// Handlers block on the [`Store`]: call them where blocking is allowed (a blocking
/// thread pool under an async server).
pub struct Endpoint {
    config: EndpointConfig,
    store: Arc<dyn Store>,
    validator: Validator,
    tou: TermsOfUse,
    terms: Terms,
    signer: Arc<dyn CertificateSigner + Send + Sync>,
    issuing_ca: Vec<u8>,
    discovery: DiscoveryConfig,
    entropy: Mutex<Box<dyn Entropy + Send>>,
    checkpoints: Option<Checkpoints>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("public_url", &self.config.public_url)
            .finish_non_exhaustive()
    }
}

/// How a token failed, for the route to answer.
enum TokenOutcome {
    /// Fetch keys and retry.
    RefreshKeys,
    /// Refused, as an enrollment error.
    Refused(EnrollError),
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn at(now: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(now))
}

fn tag_id(tag: &str) -> Option<i64> {
    tag.parse().ok()
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

impl Endpoint {
    /// An endpoint with `config` and `components`.
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn new(config: EndpointConfig, components: Components) -> Result<Self, ConfigError> {
        if components.validator.policy().principals() != Principals::Users {
            return Err(ConfigError::AppTokensAccepted);
        }
        match url::Url::parse(&config.public_url) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.has_host() => {}
            _ => return Err(ConfigError::PublicUrl(config.public_url.clone())),
        }
        let p = &config.paths;
        let paths = [
            &p.terms_of_use,
            &p.discovery,
            &p.policy,
            &p.enrollment,
            &p.management,
        ];
        for (i, path) in paths.iter().enumerate() {
            if !path.starts_with('/') || paths[..i].contains(path) {
                return Err(ConfigError::Paths((*path).clone()));
            }
        }
        if let Some(esp) = &config.esp {
            FirstSync::new(&config.provider_id).map_err(|e| ConfigError::Esp(e.to_string()))?;
            for item in &esp.items {
                item.command
                    .check()
                    .map_err(|e| ConfigError::Esp(format!("{}: {e}", item.label)))?;
            }
        }
        let tou = TermsOfUse::new(
            config.terms_of_use.clone(),
            components.keyring,
            components.validator.clone(),
        );
        Ok(Self {
            discovery: config.discovery.clone(),
            config,
            store: components.store,
            validator: components.validator,
            tou,
            terms: components.terms,
            signer: components.signer,
            issuing_ca: components.issuing_ca,
            entropy: Mutex::new(Box::new(SystemEntropy)),
            checkpoints: None,
        })
    }

    /// Uses `entropy` for every random value (nonces, secrets, serial numbers, Terms-of-Use
    /// state) instead of the system's generator: for deterministic tests.
    #[must_use]
    pub fn with_entropy(self, entropy: impl Entropy + Send + 'static) -> Self {
        Self {
            entropy: Mutex::new(Box::new(entropy)),
            ..self
        }
    }

    /// Calls `checkpoints` with the name of each point a request passes where a crash
    /// must leave storage consistent: `enroll:before-store`, `enroll:after-store`,
    /// `manage:before-commit`, `manage:after-commit`. For crash-safety tests.
    #[must_use]
    pub fn with_checkpoints(self, checkpoints: Checkpoints) -> Self {
        Self {
            checkpoints: Some(checkpoints),
            ..self
        }
    }

    fn checkpoint(&self, name: &'static str) {
        if let Some(c) = &self.checkpoints {
            c(name);
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The token validator.
    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    /// The Entra key cache to keep fresh (see [`crate::keys`]).
    pub fn key_cache(&self) -> &winmdm_entra::KeyCache {
        self.validator.cache()
    }

    fn random<const N: usize>(&self) -> Result<[u8; N], EntropyUnavailable> {
        let mut b = [0u8; N];
        self.entropy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fill(&mut b)?;
        Ok(b)
    }

    fn trace_id(&self) -> String {
        hex(&self.random::<16>().unwrap_or_default())
    }

    /// The route a request path names.
    pub fn route(&self, path: &str) -> Option<Route> {
        let p = &self.config.paths;
        [
            (&p.terms_of_use, Route::TermsOfUse),
            (&p.discovery, Route::Discovery),
            (&p.policy, Route::Policy),
            (&p.enrollment, Route::Enrollment),
            (&p.management, Route::Management),
        ]
        .into_iter()
        .find(|(candidate, _)| candidate.eq_ignore_ascii_case(path))
        .map(|(_, route)| route)
    }

    /// Handles one request: its head, its whole body, and what the TLS layer and the
    /// clock say. Unknown paths get 404, known paths with another method 405.
    ///
    /// Bodies should be capped by the server before they get here (1 MiB is ample for
    /// every route); the parsers have their own limits too.
    pub fn handle(&self, request: &Parts, body: &[u8], input: Input<'_>) -> Handled {
        let Some(route) = self.route(request.uri.path()) else {
            return Handled::Response(respond(StatusCode::NOT_FOUND, None, Vec::new()));
        };
        let method = &request.method;
        let allowed = match route {
            Route::TermsOfUse | Route::Discovery => {
                *method == Method::GET || *method == Method::POST
            }
            Route::Policy | Route::Enrollment | Route::Management => *method == Method::POST,
        };
        if !allowed {
            let mut r = respond(StatusCode::METHOD_NOT_ALLOWED, None, Vec::new());
            let allow = if matches!(route, Route::TermsOfUse | Route::Discovery) {
                "GET, POST"
            } else {
                "POST"
            };
            r.headers_mut()
                .insert(header::ALLOW, http::HeaderValue::from_static(allow));
            return Handled::Response(r);
        }
        match (route, *method == Method::GET) {
            (Route::TermsOfUse, true) => self.terms_of_use_page(request, input),
            (Route::TermsOfUse, false) => {
                Handled::Response(self.terms_of_use_form(request, body, input))
            }
            (Route::Discovery, true) => {
                Handled::Response(wire::with_length(discovery::probe_response()))
            }
            (Route::Discovery, false) => Handled::Response(self.discover(body)),
            (Route::Policy, _) => self.policy(body, input),
            (Route::Enrollment, _) => self.enrollment(body, input),
            (Route::Management, _) => Handled::Response(
                self.management(request, body, input)
                    .unwrap_or_else(|refusal| {
                        tracing::info!(reason = %refusal, status = refusal.status().as_u16(),
                            "management message refused");
                        refusal.to_response()
                    }),
            ),
        }
    }

    /// [`Endpoint::handle`], fetching keys with `fetch` (a blocking HTTP GET) when it asks
    /// for them, then handling the request again.
    pub fn handle_with_keys<E: fmt::Display>(
        &self,
        request: &Parts,
        body: &[u8],
        input: Input<'_>,
        mut fetch: impl FnMut(http::Request<()>) -> Result<Response<Vec<u8>>, E>,
    ) -> Response<Vec<u8>> {
        for _ in 0..2 {
            match self.handle(request, body, input) {
                Handled::Response(r) => return r,
                Handled::RefreshKeys => {
                    crate::keys::refresh_due(self.key_cache(), at(input.now), &mut fetch);
                }
            }
        }
        match self.handle(request, body, input) {
            Handled::Response(r) => r,
            // The cache asked twice in a row; answer as a key outage.
            Handled::RefreshKeys => respond(StatusCode::SERVICE_UNAVAILABLE, None, Vec::new()),
        }
    }

    // --- tokens ------------------------------------------------------------------------

    /// A user's token, verified: signature, issuer, tenant, audience, lifetime, a user
    /// (never an application), and the required scope.
    fn verify_user(
        &self,
        jwt: Option<&str>,
        now: u64,
    ) -> Result<Verified<EntraClaims>, TokenOutcome> {
        let jwt = jwt
            .ok_or_else(|| TokenOutcome::Refused(EnrollError::Authentication("no token".into())))?;
        let claims = match self.validator.validate(jwt, at(now)) {
            Ok(c) => c,
            Err(
                winmdm_entra::Error::UnknownKid { .. }
                | winmdm_entra::Error::KeysUnavailable { .. },
            ) if crate::keys::is_due(self.key_cache(), at(now)) => {
                return Err(TokenOutcome::RefreshKeys);
            }
            Err(
                e @ (winmdm_entra::Error::TenantNotAllowed { .. }
                | winmdm_entra::Error::PrincipalNotAllowed { .. }),
            ) => {
                return Err(TokenOutcome::Refused(EnrollError::Authorization(
                    e.to_string(),
                )));
            }
            Err(e) if e.kind() == winmdm_entra::ErrorKind::Backend => {
                return Err(TokenOutcome::Refused(EnrollError::Internal(e.to_string())));
            }
            Err(e) => {
                return Err(TokenOutcome::Refused(EnrollError::Authentication(
                    e.to_string(),
                )));
            }
        };
        if let Some(scope) = &self.config.required_scope
            && !claims.has_scope(scope)
        {
            return Err(TokenOutcome::Refused(EnrollError::Authorization(format!(
                "the token lacks the scope {scope}"
            ))));
        }
        Ok(claims)
    }

    // --- Terms of Use ------------------------------------------------------------------

    fn terms_of_use_page(&self, request: &Parts, input: Input<'_>) -> Handled {
        // Keys first (nothing is sealed yet), then the page; winmdm-tou validates the
        // token itself and answers its failures; the scope is the endpoint's rule.
        let now = input.now;
        let scope_missing = match bearer(request).map(|jwt| self.validator.validate(jwt, at(now))) {
            Some(Err(
                winmdm_entra::Error::UnknownKid { .. }
                | winmdm_entra::Error::KeysUnavailable { .. },
            )) if crate::keys::is_due(self.key_cache(), at(now)) => {
                return Handled::RefreshKeys;
            }
            Some(Ok(claims)) => self
                .config
                .required_scope
                .as_ref()
                .is_some_and(|scope| !claims.has_scope(scope)),
            _ => false,
        };
        let mut rng = self.entropy.lock().unwrap_or_else(PoisonError::into_inner);
        let rng: &mut dyn Entropy = &mut **rng;
        Handled::Response(wire::with_length(
            match self.tou.begin(request, input.now, rng) {
                Ok(ctx) if scope_missing => {
                    tracing::info!(tenant = %ctx.tenant_id(), user = %ctx.object_id(),
                    "terms of use refused: the token lacks the required scope");
                    self.tou.deny(&ctx, rng)
                }
                Ok(ctx) => self.tou.terms_page(&ctx, &self.terms, input.now, rng),
                Err(r) => r,
            },
        ))
    }

    fn terms_of_use_form(
        &self,
        request: &Parts,
        body: &[u8],
        input: Input<'_>,
    ) -> Response<Vec<u8>> {
        let mut rng = self.entropy.lock().unwrap_or_else(PoisonError::into_inner);
        let rng: &mut dyn Entropy = &mut **rng;
        wire::with_length(match self.tou.resume(request, body, input.now, rng) {
            Ok(Submission::Accept(ctx)) => self.tou.accept(&ctx, input.now, rng),
            Ok(Submission::Decline(ctx)) => self.tou.decline(&ctx, rng),
            // The endpoint issues no extra steps: a step submission is not one it issued.
            Ok(Submission::Step { ctx, .. }) => self.tou.deny(&ctx, rng),
            Err(r) => r,
        })
    }

    // --- Discovery and policy ----------------------------------------------------------

    fn discover(&self, body: &[u8]) -> Response<Vec<u8>> {
        let req = match discovery::parse_discover(body) {
            Ok(r) => r,
            Err(e) => return wire::enrollment_fault(&e, None, &self.trace_id()),
        };
        match discovery::discover_response(&self.discovery, &req) {
            Ok(xml) => wire::with_length(soap_response(StatusCode::OK, xml)),
            Err(e) => wire::enrollment_fault(&e, req.message_id.as_deref(), &self.trace_id()),
        }
    }

    fn policy(&self, body: &[u8], input: Input<'_>) -> Handled {
        let req = match xcep::parse_get_policies(body) {
            Ok(r) => r,
            Err(e) => return Handled::Response(wire::enrollment_fault(&e, None, &self.trace_id())),
        };
        let relates = req.message_id.as_deref();
        match self.verify_user(req.token.as_ref().and_then(|t| t.jwt()), input.now) {
            Err(TokenOutcome::RefreshKeys) => return Handled::RefreshKeys,
            Err(TokenOutcome::Refused(e)) => {
                return Handled::Response(wire::enrollment_fault(&e, relates, &self.trace_id()));
            }
            Ok(_) => {}
        }
        // The figures the device is told follow the configured lifetime.
        let policy = xcep::CertificatePolicy {
            validity_secs: self.config.certificate_validity.as_secs(),
            renewal_secs: self.config.renewal_window.as_secs(),
            ..xcep::CertificatePolicy::default()
        };
        let xml = xcep::get_policies_response(&policy, relates);
        Handled::Response(wire::with_length(soap_response(StatusCode::OK, xml)))
    }

    // --- Enrollment --------------------------------------------------------------------

    fn enrollment(&self, body: &[u8], input: Input<'_>) -> Handled {
        let req = match wstep::parse_rst(body) {
            Ok(r) => r,
            Err(e) => return Handled::Response(wire::enrollment_fault(&e, None, &self.trace_id())),
        };
        let result = match req.request_type {
            RequestType::Issue => {
                match self.verify_user(req.token.as_ref().and_then(|t| t.jwt()), input.now) {
                    Ok(claims) => self.issue(&req, &claims, input.now),
                    Err(TokenOutcome::RefreshKeys) => return Handled::RefreshKeys,
                    Err(TokenOutcome::Refused(e)) => Err(e),
                }
            }
            _ => self.renew(&req, input),
        };
        Handled::Response(match result {
            Ok(xml) => wire::with_length(soap_response(StatusCode::OK, xml)),
            Err(e) => wire::enrollment_fault(&e, req.message_id.as_deref(), &self.trace_id()),
        })
    }

    /// When the device renews: as soon as the server's renewal window opens (in whole
    /// days, at least one, never more than the certificate lives), retrying weekly or
    /// more often within a short window.
    fn renewal_schedule(&self) -> provisioning::RenewalSchedule {
        let days = |d: Duration| u32::try_from(d.as_secs() / 86_400).unwrap_or(u32::MAX);
        let period = days(self.config.renewal_window)
            .min(days(self.config.certificate_validity))
            .max(1);
        provisioning::RenewalSchedule {
            renew_period_days: period,
            retry_interval_days: period.min(7),
            ..provisioning::RenewalSchedule::default()
        }
    }

    fn issuance_policy(&self) -> IssuancePolicy {
        let mut policy = IssuancePolicy {
            validity: self.config.certificate_validity,
            ..IssuancePolicy::default()
        };
        policy.keys.allow_ecdsa = self.config.allow_ecdsa;
        policy
    }

    fn provisioning(
        &self,
        device: &DeviceRecord,
        name: Option<&str>,
    ) -> Result<ProvisioningConfig, EnrollError> {
        let server_secret = self.random::<16>().map_err(internal)?;
        Ok(ProvisioningConfig {
            provider_id: self.config.provider_id.clone(),
            name: self.config.name.clone(),
            dm_server_url: self.config.management_url(),
            client_auth: (
                device.digest_username.clone(),
                device.digest_password.clone(),
                device.nonce.clone(),
            ),
            server_auth: (self.config.provider_id.clone(), hex(&server_secret)),
            renewal: Some(self.renewal_schedule()),
            poll: provisioning::PollSchedule::default(),
            ent_dm_id: device.device_id.clone(),
            ent_device_name: name.map(str::to_owned),
            upn: device.upn.clone(),
            extra: Vec::new(),
        })
    }

    /// `RequestType` Issue for a verified user: Terms-of-Use blob, CSR → certificate,
    /// account, queue — replacing an existing record only on its owner's evidence.
    fn issue(
        &self,
        req: &RstRequest,
        claims: &Verified<EntraClaims>,
        now: u64,
    ) -> Result<String, EnrollError> {
        let who = TokenIdentity {
            tenant_id: &claims.tenant_id,
            object_id: &claims.object_id,
        };
        let verifier = self.tou.verifier();
        match self.config.terms_of_use_blob {
            TermsOfUseBlob::Required => {
                req.verify_enrollment_data(&verifier, &who, now)?;
            }
            TermsOfUseBlob::NotRequired => {
                req.verify_enrollment_data_if_present(&verifier, &who, now)?;
            }
        }
        let requester = Requester::from_verified(claims);
        let serial = self.random::<16>().map_err(internal)?;
        let (pending, _) = issue::begin(req, &requester, &self.issuance_policy(), now, serial)?;
        let device_id = pending
            .device_id
            .clone()
            .ok_or_else(|| EnrollError::CertificateRequest("no DeviceID".into()))?;
        let signed = self.signer.sign(&pending.template)?;
        let nonce = self.random::<16>().map_err(internal)?;
        let secret = self.random::<24>().map_err(internal)?;
        let record = DeviceRecord {
            device_id: device_id.clone(),
            tenant_id: claims.tenant_id.clone(),
            user_oid: claims.object_id.clone(),
            upn: claims.upn.clone(),
            enrollment_type: match pending.kind {
                EnrollmentKind::Full => "Full",
                _ => "Device",
            }
            .to_owned(),
            thumbprint: provisioning::thumbprint(&signed.certificate),
            certificate: signed.certificate.clone(),
            digest_username: device_id.clone(),
            digest_password: hex(&secret),
            nonce: base64::engine::general_purpose::STANDARD.encode(nonce),
            enrolled_at: now,
            last_checkin: None,
            login_status: None,
            compliant: None,
            unenrolled_at: None,
            dev_info: Vec::new(),
            previous_thumbprint: None,
            certificate_used: false,
        };
        let xml = issue::complete(
            &pending,
            &signed,
            &self.provisioning(&record, req.context.device_name())?,
            now,
        );
        // Who vouches for the device ID? Entra, when the token names the device
        // (issue::begin made the request agree with it); otherwise only the request, which
        // may then replace nobody else's record.
        let replace = if claims.device_id.is_some() {
            Replace::VerifiedDevice
        } else {
            Replace::SameOwner
        };
        // 32 hex digits without a claim have a second reading (text order; the record is
        // under Windows' byte order): a record under that one belongs to its owner too.
        if replace == Replace::SameOwner
            && let Some(alias) = req
                .context
                .device_id()
                .filter(|raw| DeviceId::from_windows_hex(raw).is_ok())
                .and_then(|raw| DeviceId::parse(raw).ok())
                .map(|id| id.to_string())
                .filter(|alias| *alias != device_id)
        {
            let other = self.store.device(&alias).map_err(storage)?;
            if other.is_some_and(|d| !replace.allows(&d.tenant_id, &d.user_oid, &record)) {
                return Err(owned_by_another(&alias, claims));
            }
        }
        self.checkpoint("enroll:before-store");
        let admission = Admission {
            replace,
            max_devices_per_user: self.config.max_devices_per_user,
        };
        match self
            .store
            .enroll(&record, &self.config.initial_commands, now, admission)
            .map_err(storage)?
        {
            Enrolled::Stored => {}
            Enrolled::OwnedByAnother => return Err(owned_by_another(&device_id, claims)),
            Enrolled::CapReached => {
                tracing::info!(tenant = %claims.tenant_id, user = %claims.object_id,
                    "enrollment refused: the user's device cap is reached");
                return Err(EnrollError::DeviceCapReached);
            }
        }
        self.checkpoint("enroll:after-store");
        // The Enrollment Status Page, for a device joining Entra in OOBE.
        if record.enrollment_type == "Device"
            && req.context.get("NotInOobe").map(str::trim) != Some("true")
        {
            self.esp_start(&device_id, now);
        }
        tracing::info!(device = %device_id, tenant = %claims.tenant_id, kind = %record.enrollment_type, "enrolled");
        Ok(xml)
    }

    /// `RequestType` Renew or Recovery: the PKCS#7 signed with the device's key (and the
    /// TLS client certificate, when presented, must be its signer). The signer decides
    /// which device renews, for every enrollment type.
    fn renew(&self, req: &RstRequest, input: Input<'_>) -> Result<String, EnrollError> {
        let now = input.now;
        let serial = self.random::<16>().map_err(internal)?;
        let (pending, _) = renewal::begin_renewal(
            req,
            input.client_certificate,
            &self.issuing_ca,
            &self.issuance_policy(),
            &RenewalPolicy {
                window: self.config.renewal_window,
            },
            now,
            serial,
        )?;
        // The device's current certificate renews, or the one the last renewal replaced
        // while its successor is unused (the device lost the response); never a
        // superseded one.
        let signer = pending
            .renews
            .as_deref()
            .ok_or_else(|| EnrollError::Internal("a renewal without its signer".into()))?;
        let signed_with = provisioning::thumbprint(signer);
        let device = self
            .store
            .device_by_certificate(&signed_with)
            .map_err(storage)?
            .filter(|d| d.unenrolled_at.is_none())
            .ok_or_else(|| {
                EnrollError::Authentication(
                    "no enrolled device has this certificate (superseded or unknown)".into(),
                )
            })?;
        let signed = self.signer.sign(&pending.template)?;
        let xml = issue::complete(&pending, &signed, &self.provisioning(&device, None)?, now);
        let renewed = self
            .store
            .renew_certificate(
                &device.device_id,
                &signed_with,
                &signed.certificate,
                &provisioning::thumbprint(&signed.certificate),
            )
            .map_err(storage)?;
        if !renewed {
            // A concurrent renewal or session superseded the certificate meanwhile.
            return Err(EnrollError::Authentication(
                "the certificate was superseded".into(),
            ));
        }
        tracing::info!(device = %device.device_id, kind = ?req.request_type, "certificate renewed");
        Ok(xml)
    }

    // --- Management --------------------------------------------------------------------

    /// The device a management message's `Source` names: the record under that string,
    /// or under the GUID it spells (Windows writes 32 hex digits; an Entra-joined
    /// device's record is kept under the claim's dashed GUID).
    fn device_named_by(&self, source: &str) -> Result<Option<DeviceRecord>, StoreError> {
        if let Some(d) = self.store.device(source)? {
            return Ok(Some(d));
        }
        for id in DeviceId::readings(source) {
            let canonical = id.to_string();
            if canonical != source
                && let Some(d) = self.store.device(&canonical)?
            {
                return Ok(Some(d));
            }
        }
        Ok(None)
    }

    /// The session's user, from an `AADUserToken`: a verified user token of the device's
    /// tenant, with the required scope; anything else leaves the session without a user.
    fn session_user(&self, device: &DeviceRecord, jwt: &str, now: u64) -> Option<SessionUser> {
        match self.verify_user(Some(jwt), now) {
            Ok(v) if v.tenant_id.eq_ignore_ascii_case(&device.tenant_id) => Some(user_of(&v)),
            Ok(_) => {
                tracing::warn!(device = %device.device_id, "AADUserToken of another tenant ignored");
                None
            }
            Err(TokenOutcome::RefreshKeys) => {
                // Mid-session there is no retrying the message: fetch in the background.
                tracing::info!(device = %device.device_id, "AADUserToken signed by an unknown key; keys will be refreshed");
                None
            }
            Err(TokenOutcome::Refused(e)) => {
                tracing::info!(device = %device.device_id, error = %e, "AADUserToken refused");
                None
            }
        }
    }

    /// Ends abandoned sessions of `device` (other than `current`) whose idle timeout has
    /// passed: their never-sent and unanswered commands go back to the queue.
    fn sweep_sessions(&self, device: &str, current: &str, now: u64) {
        let Ok(others) = self.store.other_sessions(device, current) else {
            return;
        };
        for (session_id, stored) in others {
            let Some(mut session) = serde_json::from_str::<SessionState>(&stored.state)
                .ok()
                .and_then(|s| Session::restore(s).ok())
            else {
                continue;
            };
            let Some(end) = session.poll_timeout(now) else {
                continue;
            };
            let mut commit = Commit::new(device, &session_id, Some(stored.version));
            commit.session = SessionWrite::Delete;
            // Never sent, or sent and never answered (the device lost the message, or its
            // answer was lost): both go again, as when a restarted session reuses the ID.
            commit.requeue = end
                .unsent
                .iter()
                .map(|q| q.tag.as_str())
                .chain(end.unanswered.iter().map(String::as_str))
                .filter_map(tag_id)
                .collect();
            match self.store.commit(&commit) {
                Ok(()) => {
                    tracing::info!(device, session = %session_id, requeued = commit.requeue.len(), "abandoned session swept");
                }
                Err(e) => tracing::debug!(device, error = %e, "sweep skipped"),
            }
        }
    }

    /// The device a management message is from: the one whose current certificate the
    /// TLS layer verified, whatever `Source` says; otherwise the one `Source` names (its
    /// credentials then authenticate it).
    fn management_device(
        &self,
        source: &str,
        peer: Option<&[u8]>,
    ) -> Result<DeviceRecord, Refusal> {
        if let Some(der) = peer {
            let thumbprint = provisioning::thumbprint(der);
            if let Some(d) = self
                .store
                .device_by_certificate(&thumbprint)
                .map_err(unavailable)?
                .filter(|d| d.thumbprint == thumbprint)
            {
                if !d.device_id.eq_ignore_ascii_case(source)
                    && !DeviceId::parse(&d.device_id).is_ok_and(|id| id.is_named_by(source))
                {
                    tracing::info!(device = %d.device_id, source = %source,
                        "the message's Source differs from its certificate's device: the certificate decides");
                }
                return Ok(d);
            }
        }
        match self.device_named_by(source).map_err(unavailable)? {
            Some(d) => Ok(d),
            None => {
                tracing::info!(source = %source, certificate = peer.is_some(),
                    "management message refused: no enrolled device for it");
                Err(Refusal::UnknownDevice)
            }
        }
    }

    /// One management message: decode, authenticate, process, then one atomic commit of
    /// everything it changed.
    fn management(
        &self,
        request: &Parts,
        body: &[u8],
        input: Input<'_>,
    ) -> Result<Response<Vec<u8>>, Refusal> {
        let now = input.now;
        let content_type = request
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if content_type.starts_with(CONTENT_TYPE_WBXML) {
            return Err(Refusal::UnsupportedMediaType);
        }
        let message = winmdm_syncml::decode(body).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let source = message
            .header
            .source
            .as_ref()
            .map(|s| s.loc_uri.trim().to_owned())
            .unwrap_or_default();
        let session_id = message.header.session_id.trim().to_owned();
        let peer = input.client_certificate;
        let device = self.management_device(&source, peer)?;
        let device_id = device.device_id.clone();
        let stored = self
            .store
            .session(&device_id, &session_id)
            .map_err(unavailable)?;
        let version = stored.as_ref().map(|s| s.version);
        // A stored state that no longer reads or restores (another version of winmdm wrote
        // it) is dropped: the device starts a new session, as after an expiry, and the
        // commit replaces the row (its expected version is the stored one).
        let restored = stored.and_then(|s| {
            let session = serde_json::from_str::<SessionState>(&s.state)
                .ok()
                .and_then(|state| Session::restore(state).ok());
            if session.is_none() {
                tracing::warn!(device = %device_id, session = %session_id,
                    "a stored session state does not restore; starting a new session");
            }
            session
        });
        let mut session = match restored {
            Some(mut s) => {
                // The device's nonce is the stored one: other sessions may have rotated
                // it since this state was written.
                if let Ok(nonce) = Nonce::from_b64(&device.nonce) {
                    s.set_device_nonce(nonce);
                }
                s
            }
            None => {
                // A new session: not for a device that unenrolled.
                if device.unenrolled_at.is_some() {
                    return Err(Refusal::Unenrolled);
                }
                let nonce = Nonce::from_b64(&device.nonce).map_err(|_| Refusal::Corrupt)?;
                let kind = if device.enrollment_type == "Full" {
                    EnrollmentType::Full
                } else {
                    EnrollmentType::Device
                };
                let mut config = SessionConfig::new(kind);
                config.server_uri = Some(self.config.management_url());
                config.idle_timeout_secs = self.config.session_idle_timeout.as_secs();
                Session::new(config, nonce)
            }
        };
        // Who vouches for this message? The certificate the TLS layer verified (the
        // device's current one); or its digest credentials; or, for a later message of a
        // session that authenticated, the session's binding: the token in the RespURI it
        // was given, which only that device has. A certificate session keeps presenting
        // its certificate. Anything else is challenged and changes nothing.
        let has_cred = message.header.cred.is_some();
        let cert_ok = peer
            .is_some_and(|p| !device.certificate.is_empty() && p == device.certificate.as_slice());
        let prior = session.state().authenticated();
        let bound = session
            .state()
            .resp_uri()
            .and_then(binding_token)
            .zip(request.uri.query().and_then(query_token))
            .is_some_and(|(expected, presented)| constant_time_eq(expected, presented));
        // A device that has presented its certificate here authenticates with it from then
        // on (unless configured otherwise): its digest neither authenticates nor counts.
        let digest_allowed = self.config.allow_digest_after_certificate
            || !device.certificate_used
            || device.certificate.is_empty();
        let digest_attempt = !cert_ok && has_cred && digest_allowed;
        let failures_before = if digest_attempt {
            let n = self
                .store
                .auth_failures(&device_id, now, self.config.auth_failure_window.as_secs())
                .map_err(unavailable)?;
            if n >= self.config.max_auth_failures {
                tracing::warn!(device = %device_id, failures = n,
                    "management message refused: digest authentication locked out");
                return Err(Refusal::LockedOut {
                    retry_after: self.config.auth_failure_window.as_secs(),
                });
            }
            n
        } else {
            0
        };
        let verdict = if cert_ok {
            // The TLS layer verified possession of the current certificate: from now on
            // the one it replaced renews no more.
            if !device.certificate_used {
                self.store
                    .certificate_used(&device_id, &device.thumbprint)
                    .map_err(unavailable)?;
            }
            Verdict::Certificate
        } else if !has_cred && bound && prior.is_some_and(|m| m != AuthMethod::Certificate) {
            Verdict::Continue
        } else if has_cred && !digest_allowed {
            tracing::info!(device = %device_id,
                "digest credentials refused: this device authenticates with its certificate");
            Verdict::Deny
        } else {
            Verdict::Digest {
                username: &device.digest_username,
                password: &device.digest_password,
            }
        };
        let fresh_nonce = Nonce::from_bytes(
            self.random::<16>()
                .map_err(|_| Refusal::Unavailable)?
                .to_vec(),
        );
        let mut commit = Commit::new(&device_id, &session_id, version);
        let reply = match session.receive(message, now) {
            Err(e) => {
                tracing::info!(device = %device_id, error = %e, "management message refused");
                return Err(Refusal::Session(e.to_string()));
            }
            Ok(Inbound::Expired(reply)) => {
                // The session had expired: say so. Whoever sent this, nothing is stored
                // here (the next authenticated session sweeps the expired one).
                return Ok(respond(
                    StatusCode::OK,
                    Some(CONTENT_TYPE),
                    reply.to_xml().into_bytes(),
                ));
            }
            Ok(Inbound::Authenticate(step)) => {
                // A new session under the SessionID of one the device abandoned (a reboot,
                // a wrapped counter): that one's commands go back to the queue — those
                // never sent, and those sent but never answered (the commit carries this,
                // so only if this message authenticates).
                let restarted: Vec<i64> = step.restarted().map_or_else(Vec::new, |end| {
                    end.unsent
                        .iter()
                        .map(|q| q.tag.as_str())
                        .chain(end.unanswered.iter().map(String::as_str))
                        .filter_map(tag_id)
                        .collect()
                });
                match step.decide(verdict, fresh_nonce) {
                    Authenticated::Yes(mut exchange) => {
                        if exchange.state().resp_uri().is_none() {
                            // Bound once, when the session first authenticates.
                            let token =
                                hex(&self.random::<16>().map_err(|_| Refusal::Unavailable)?);
                            exchange.bind(format!("{}?s={token}", self.config.management_url()));
                        }
                        if !restarted.is_empty() {
                            tracing::info!(device = %device_id, session = %session_id,
                                requeued = restarted.len(), "session restarted by the device");
                        }
                        commit.requeue.extend(restarted);
                        let mut check_in = CheckIn {
                            at: now,
                            login_status: None,
                            dev_info: None,
                        };
                        while let Some(event) = exchange.poll_event() {
                            match event {
                                Event::LoginStatus(ls) => {
                                    check_in.login_status = Some(format!("{ls:?}"));
                                }
                                Event::UserToken(t) => {
                                    let user = self.session_user(&device, t.expose(), now);
                                    exchange.set_user(user);
                                }
                                Event::DeviceInfo(values) => {
                                    check_in.dev_info = Some(
                                        values
                                            .into_iter()
                                            .map(|v| (v.uri.to_string(), v.data.to_string()))
                                            .collect(),
                                    );
                                }
                                Event::UnenrollRequested => commit.unenrolled_at = Some(now),
                                Event::Status { tag, path, status } => {
                                    if path.is_empty()
                                        && let Some(id) = tag_id(&tag)
                                    {
                                        // One record per target the status names (Windows
                                        // answers per node), or one for the command.
                                        let code = status.code.map_or(0, |c| c.0);
                                        let original_error =
                                            status.original_error.as_ref().map(ToString::to_string);
                                        let targets: Vec<Option<String>> =
                                            if status.target_ref.is_empty() {
                                                vec![None]
                                            } else {
                                                status
                                                    .target_ref
                                                    .iter()
                                                    .map(|t| Some(t.to_string()))
                                                    .collect()
                                            };
                                        for target in targets {
                                            commit.statuses.push((
                                                id,
                                                StatusRecord {
                                                    target,
                                                    code,
                                                    original_error: original_error.clone(),
                                                },
                                            ));
                                        }
                                    }
                                }
                                Event::Results { tag, results, .. } => {
                                    if let Some(id) = tag_id(&tag) {
                                        commit.results.push((
                                            id,
                                            results
                                                .values
                                                .into_iter()
                                                .map(|v| (v.uri.to_string(), v.data.to_string()))
                                                .collect(),
                                        ));
                                    }
                                }
                                other => {
                                    tracing::debug!(device = %device_id, event = ?other, "event");
                                }
                            }
                        }
                        // The Enrollment Status Page moves on with what this message
                        // answered, and what it queues goes out in this reply.
                        if commit.unenrolled_at.is_none() {
                            let signed_in = check_in
                                .login_status
                                .as_deref()
                                .or(device.login_status.as_deref())
                                == Some("User");
                            self.esp_step(
                                &device_id,
                                &session_id,
                                now,
                                signed_in,
                                &commit.statuses,
                                &commit.results,
                            );
                        }
                        commit.check_in = Some(check_in);
                        // Hand the device what is queued for it (not while it unenrolls);
                        // the commit marks them sent, or fails if another session took them.
                        if commit.unenrolled_at.is_none() {
                            if version.is_none() {
                                self.sweep_sessions(&device_id, &session_id, now);
                            }
                            for q in self.store.queued(&device_id).map_err(unavailable)? {
                                let id = q.id;
                                let mut queued =
                                    QueuedCommand::new(id.to_string(), q.command.to_command());
                                if let Some(user) = q.for_user {
                                    queued = queued.for_user(user);
                                }
                                match exchange.queue(queued) {
                                    Ok(()) => commit.sent.push(id),
                                    Err(e) => {
                                        tracing::warn!(command = id, error = %e, "not queued");
                                    }
                                }
                            }
                        }
                        exchange.reply()
                    }
                    Authenticated::Challenged(reply) | Authenticated::Refused(reply) => {
                        if digest_attempt {
                            let n = self
                                .store
                                .auth_failed(
                                    &device_id,
                                    now,
                                    self.config.auth_failure_window.as_secs(),
                                )
                                .map_err(unavailable)?;
                            tracing::info!(device = %device_id, failures = n,
                                "management message refused: wrong digest credentials");
                        } else {
                            tracing::info!(device = %device_id,
                                "management message challenged: no credentials, certificate or session binding");
                        }
                        // Nothing else an unauthenticated message sent is kept.
                        return Ok(respond(
                            StatusCode::OK,
                            Some(CONTENT_TYPE),
                            reply.to_xml().into_bytes(),
                        ));
                    }
                    Authenticated::Repeat(reply) => reply,
                }
            }
        };
        // The next nonce is kept only when the message authenticated (a digest success
        // rotates it).
        if authenticated_now(&reply) {
            commit.nonce = reply.next_nonce.as_ref().map(Nonce::to_b64);
        }
        if digest_attempt && failures_before > 0 && commit.nonce.is_some() {
            self.store.auth_succeeded(&device_id).map_err(unavailable)?;
        }
        commit.session = match &reply.end {
            Some(end) => {
                commit
                    .requeue
                    .extend(end.unsent.iter().filter_map(|q| tag_id(&q.tag)));
                if version.is_some() {
                    SessionWrite::Delete
                } else {
                    SessionWrite::Keep
                }
            }
            // Only an authenticated session is kept (a challenge stores nothing but the
            // nonce); a replayed reply changes nothing.
            None if session.state().authenticated().is_some() => SessionWrite::Put(
                serde_json::to_string(session.state()).map_err(|_| Refusal::Corrupt)?,
            ),
            None => SessionWrite::Keep,
        };
        self.checkpoint("manage:before-commit");
        match self.store.commit(&commit) {
            Ok(()) => {}
            Err(CommitError::Conflict(why)) => {
                tracing::info!(device = %device_id, %why, "management message raced; the device will retry");
                return Err(Refusal::Conflict);
            }
            Err(CommitError::Store(e)) => return Err(unavailable(e)),
        }
        self.checkpoint("manage:after-commit");
        Ok(respond(
            StatusCode::OK,
            Some(CONTENT_TYPE),
            reply.to_xml().into_bytes(),
        ))
    }
}

impl Endpoint {
    /// Starts the Enrollment Status Page of a device just enrolled (a re-enrollment
    /// starts a new one): queues its commands and stores the tracker. A failure is
    /// logged: the device then goes without a page (Windows skips it by default).
    fn esp_start(&self, device_id: &str, now: u64) {
        let (Some(config), Ok(dmclient)) =
            (&self.config.esp, FirstSync::new(&self.config.provider_id))
        else {
            return;
        };
        let (mut state, queue) = EspState::start(config, &dmclient, now);
        let result = (|| -> Result<(), StoreError> {
            for q in queue {
                let id = self.store.queue(device_id, &q.command, None, now)?;
                state.queued(q.index, id);
            }
            let json = serde_json::to_string(&state).map_err(|e| StoreError(e.to_string()))?;
            let expected = self.store.esp(device_id)?.map(|e| e.version);
            if !self.store.put_esp(device_id, &json, expected)? {
                return Err(StoreError("the page changed meanwhile".into()));
            }
            Ok(())
        })();
        match result {
            Ok(()) => tracing::info!(device = %device_id, "Enrollment Status Page started"),
            Err(e) => {
                tracing::error!(device = %device_id, error = %e, "Enrollment Status Page not started")
            }
        }
    }

    /// Moves the device's Enrollment Status Page on with the commands as they stand
    /// plus the statuses this message brought; queues what it asks for. A lost race
    /// (another request moved the page on) leaves it to the next message.
    fn esp_step(
        &self,
        device_id: &str,
        session: &str,
        now: u64,
        signed_in: bool,
        statuses: &[(i64, StatusRecord)],
        results: &[(i64, Vec<(String, String)>)],
    ) {
        let (Some(config), Ok(dmclient)) =
            (&self.config.esp, FirstSync::new(&self.config.provider_id))
        else {
            return;
        };
        let result = (|| -> Result<(), StoreError> {
            let Some(stored) = self.store.esp(device_id)? else {
                return Ok(());
            };
            let Ok(mut state) = serde_json::from_str::<EspState>(&stored.state) else {
                tracing::warn!(device = %device_id, "an Enrollment Status Page state that no longer reads");
                return Ok(());
            };
            if !state.active() {
                return Ok(());
            }
            let before = state.clone();
            let mut commands = self.store.commands(device_id)?;
            // What this message answered is not committed yet: count it.
            for c in &mut commands {
                let mine: Vec<StatusRecord> = statuses
                    .iter()
                    .filter(|(id, _)| *id == c.id)
                    .map(|(_, s)| s.clone())
                    .collect();
                if !mine.is_empty() {
                    c.statuses = mine;
                    c.status = crate::store::aggregate(&c.statuses);
                    c.state = "done".to_owned();
                }
            }
            for (id, values) in results {
                if let Some(c) = commands.iter_mut().find(|c| c.id == *id) {
                    c.results.clone_from(values);
                }
            }
            let queue = state.step(config, &dmclient, now, session, signed_in, &commands);
            for q in queue {
                let id = self.store.queue(device_id, &q.command, None, now)?;
                state.queued(q.index, id);
            }
            if state != before {
                let json = serde_json::to_string(&state).map_err(|e| StoreError(e.to_string()))?;
                if self.store.put_esp(device_id, &json, Some(stored.version))? {
                    if state.phase != before.phase {
                        tracing::info!(device = %device_id, phase = ?state.phase,
                            failure = state.failure.as_deref().unwrap_or(""), "Enrollment Status Page");
                    }
                } else {
                    tracing::info!(device = %device_id, "Enrollment Status Page moved on elsewhere");
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::warn!(device = %device_id, error = %e, "Enrollment Status Page not moved on");
        }
    }
}

/// The session user a verified token names. Only verified claims make one.
pub(crate) fn user_of(claims: &Verified<EntraClaims>) -> SessionUser {
    SessionUser {
        tenant_id: claims.tenant_id.clone(),
        object_id: claims.object_id.clone(),
        guest: claims.guest,
    }
}

fn owned_by_another(device: &str, claims: &Verified<EntraClaims>) -> EnrollError {
    tracing::warn!(device = %device, tenant = %claims.tenant_id, user = %claims.object_id,
        "enrollment refused: the device ID is enrolled by another user");
    EnrollError::Authorization("this device is enrolled by another user".into())
}

fn internal(e: impl fmt::Display) -> EnrollError {
    EnrollError::Internal(e.to_string())
}

fn storage(e: StoreError) -> EnrollError {
    EnrollError::Internal(e.to_string())
}

fn unavailable(e: StoreError) -> Refusal {
    tracing::error!(error = %e, "storage");
    Refusal::Unavailable
}

/// Whether a reply answers a message that authenticated with digest credentials just now
/// (its header status is 212 with the next nonce).
fn authenticated_now(reply: &Reply) -> bool {
    reply.next_nonce.is_some()
        && reply
            .message
            .body
            .commands
            .first()
            .is_some_and(|c| match c {
                winmdm_syncml::Command::Status(s) => {
                    s.code() == Some(winmdm_syncml::StatusCode::AUTHENTICATION_ACCEPTED)
                }
                _ => false,
            })
}

/// The `s` parameter of a query string.
fn query_token(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("s="))
        .filter(|t| !t.is_empty())
}

/// The binding token in a bound `RespURI`.
fn binding_token(resp_uri: &str) -> Option<&str> {
    resp_uri.split_once('?').and_then(|(_, q)| query_token(q))
}

/// Compares without leaking where the first difference is.
fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
