//! The device-facing endpoints: Terms of Use, discovery, policy, enrollment (and renewal),
//! management, health.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use axum::routing::{get, post};
use base64::Engine as _;
use rustls_pki_types::UnixTime;
use tokio::sync::Semaphore;
use winmdm_enroll::discovery::{self, DiscoveryConfig};
use winmdm_enroll::enrollment_data::TokenIdentity;
use winmdm_enroll::fault::EnrollError;
use winmdm_enroll::issue::{self, CertificateSigner, IssuancePolicy, Requester};
use winmdm_enroll::provisioning::{self, ProvisioningConfig};
use winmdm_enroll::renewal::{self, RenewalPolicy};
use winmdm_enroll::wstep::{self, EnrollmentKind, RequestType, RstRequest};
use winmdm_enroll::{soap_response, xcep};
use winmdm_entra::{DeviceId, EntraClaims, Validator};
use winmdm_graph::GraphClient;
use winmdm_syncml::auth::Nonce;
use winmdm_syncml::scope::{EnrollmentType, SessionUser};
use winmdm_syncml::session::{
    Authenticated, Event, Inbound, QueuedCommand, Reply, Session, SessionConfig, SessionState,
    Verdict,
};
use winmdm_syncml::{CONTENT_TYPE, CONTENT_TYPE_WBXML};
use winmdm_tou::{Submission, SystemEntropy, Terms, TermsOfUse};

use crate::config::Config;
use crate::pki::Ca;
use crate::store::{
    CheckIn, Commit, CommitError, DeviceRecord, Enrolled, Replace, SessionWrite, Store, StoreError,
};

/// The largest request body accepted on the device endpoints.
pub const MAX_BODY: usize = 1 << 20;

/// The TLS client certificate the connection presented (DER), put in each request's
/// extensions by the TLS acceptor.
#[derive(Debug, Clone, Default)]
pub struct PeerCertificate(pub Option<Arc<Vec<u8>>>);

/// Everything the handlers share.
pub struct App {
    /// The configuration in force.
    pub config: Config,
    /// Storage.
    pub store: Arc<dyn Store>,
    /// The issuing CA.
    pub ca: Ca,
    pub(crate) tou: TermsOfUse,
    pub(crate) validator: Validator,
    pub(crate) http: reqwest::Client,
    pub(crate) issuer: Arc<dyn CertificateSigner + Send + Sync>,
    pub(crate) discovery: DiscoveryConfig,
    pub(crate) graph: GraphClient,
    /// Management requests in flight (a permit each; none left → 429).
    pub in_flight: Arc<Semaphore>,
    pub(crate) terms: Terms,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("public_url", &self.config.public_url())
            .finish_non_exhaustive()
    }
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // aws-lc-rs's system RNG does not fail on supported platforms.
    let _ = aws_lc_rs::rand::fill(&mut b);
    b
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A response with an explicit `Content-Length` (Windows' clients need it; never chunked).
pub(crate) fn respond(
    status: StatusCode,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    if let Some(ct) = content_type
        && let Ok(v) = HeaderValue::from_str(ct)
    {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    *r.body_mut() = Body::from(body);
    r
}

fn from_http(r: http::Response<Vec<u8>>) -> Response<Body> {
    let (parts, body) = r.into_parts();
    let mut out = respond(parts.status, None, body);
    for (k, v) in &parts.headers {
        if k != header::CONTENT_LENGTH {
            out.headers_mut().append(k, v.clone());
        }
    }
    out
}

fn fault(e: &EnrollError, relates: Option<&str>) -> Response<Body> {
    let trace = hex(&random::<16>());
    match e {
        EnrollError::Internal(detail) => {
            tracing::error!(trace = %trace, detail = %detail, "enrollment backend failure");
        }
        other => tracing::info!(trace = %trace, error = %other, "enrollment refused"),
    }
    from_http(e.fault().to_response(relates, &trace))
}

impl App {
    /// Runs storage work on a blocking thread (stores may block: SQLite, a synchronous
    /// PostgreSQL client).
    pub async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> T + Send + 'static,
    ) -> Result<T, crate::store::StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| crate::store::StoreError(format!("storage task: {e}")))
    }

    /// The device a management message's `Source` names: the record under that string, or,
    /// since Windows writes its device ID as 32 hex digits while an Entra-joined device's
    /// record is kept under the claim's dashed GUID, under the GUID it spells (see
    /// [`winmdm_entra::DeviceId`]).
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

    async fn validate(&self, jwt: Option<&str>) -> Result<EntraClaims, EnrollError> {
        let jwt = jwt.ok_or_else(|| EnrollError::Authentication("no token".into()))?;
        let at = UnixTime::since_unix_epoch(Duration::from_secs(now()));
        winmdm_entra::fetch::validate_with_refresh(&self.validator, &self.http, jwt, at)
            .await
            .map(winmdm_entra::Verified::into_inner)
            .map_err(|e| match e {
                winmdm_entra::Error::TenantNotAllowed { .. } => {
                    EnrollError::Authorization(e.to_string())
                }
                e if e.kind() == winmdm_entra::ErrorKind::Backend => {
                    EnrollError::Internal(e.to_string())
                }
                e => EnrollError::Authentication(e.to_string()),
            })
    }

    fn issuance_policy(&self) -> IssuancePolicy {
        let mut policy = IssuancePolicy {
            validity: Duration::from_secs(self.config.enrollment.validity_days * 86_400),
            ..IssuancePolicy::default()
        };
        policy.keys.allow_ecdsa = self.config.enrollment.allow_ecdsa;
        policy
    }

    fn provisioning(&self, device: &DeviceRecord, name: Option<&str>) -> ProvisioningConfig {
        ProvisioningConfig {
            provider_id: self.config.enrollment.provider_id.clone(),
            name: self.config.enrollment.name.clone(),
            dm_server_url: format!("{}/ManagementServer/MDM.svc", self.config.public_url()),
            client_auth: (
                device.digest_username.clone(),
                device.digest_password.clone(),
                device.nonce.clone(),
            ),
            server_auth: (
                self.config.enrollment.provider_id.clone(),
                hex(&random::<16>()),
            ),
            renewal: Some(provisioning::RenewalSchedule::default()),
            poll: provisioning::PollSchedule::default(),
            ent_dm_id: device.device_id.clone(),
            ent_device_name: name.map(str::to_owned),
            upn: device.upn.clone(),
            extra: Vec::new(),
        }
    }

    /// `RequestType` Issue: token, Terms-of-Use blob, CSR → certificate, account, queue.
    async fn issue(&self, req: &RstRequest) -> Result<String, EnrollError> {
        let claims = self
            .validate(req.token.as_ref().and_then(|t| t.jwt()))
            .await?;
        let who = TokenIdentity {
            tenant_id: &claims.tenant_id,
            object_id: &claims.object_id,
        };
        req.verify_enrollment_data(&self.tou.verifier(), &who, now())?;
        let requester = Requester {
            upn: claims.upn.clone(),
            token_device_id: claims.device_id.clone(),
        };
        let (pending, _) = issue::begin(req, &requester, &self.issuance_policy(), now(), random())?;
        let device_id = pending
            .device_id
            .clone()
            .ok_or_else(|| EnrollError::CertificateRequest("no DeviceID".into()))?;
        let signed = self.issuer.sign(&pending.template)?;
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&random::<16>());
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
            digest_password: hex(&random::<24>()),
            nonce: base64::engine::general_purpose::STANDARD.encode(nonce),
            enrolled_at: now(),
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
            &self.provisioning(&record, req.context.device_name()),
            now(),
        );
        let initial = self.config.management.initial_commands.clone();
        let stored = record.clone();
        // Who vouches for the device ID? Entra, when the token names the device (issue::begin
        // made the request agree with it); otherwise only the request, which may then
        // replace nobody else's record.
        let replace = if claims.device_id.is_some() {
            Replace::VerifiedDevice
        } else {
            Replace::SameOwner
        };
        // 32 hex digits without a claim have a second reading (Windows' byte order): a
        // record under that one belongs to its owner too.
        if replace == Replace::SameOwner
            && let Some(alias) = req
                .context
                .device_id()
                .and_then(|raw| DeviceId::from_windows_hex(raw).ok())
                .map(|id| id.to_string())
                .filter(|alias| *alias != device_id)
        {
            let other = self
                .store
                .device(&alias)
                .map_err(|e| EnrollError::Internal(e.to_string()))?;
            if other.is_some_and(|d| !replace.allows(&d.tenant_id, &d.user_oid, &record)) {
                tracing::warn!(device = %alias, tenant = %claims.tenant_id, user = %claims.object_id,
                    "enrollment refused: the device ID is enrolled by another user");
                return Err(EnrollError::Authorization(
                    "this device is enrolled by another user".into(),
                ));
            }
        }
        crash_point("enroll:before-store");
        let outcome = self
            .db(move |s| s.enroll(&stored, &initial, now(), replace))
            .await
            .and_then(|r| r)
            .map_err(|e| EnrollError::Internal(e.to_string()))?;
        if outcome == Enrolled::OwnedByAnother {
            tracing::warn!(device = %device_id, tenant = %claims.tenant_id, user = %claims.object_id,
                "enrollment refused: the device ID is enrolled by another user");
            return Err(EnrollError::Authorization(
                "this device is enrolled by another user".into(),
            ));
        }
        crash_point("enroll:after-store");
        tracing::info!(device = %device_id, tenant = %claims.tenant_id, "enrolled");
        Ok(xml)
    }

    /// `RequestType` Renew or Recovery: the PKCS#7 signed with the current key (and the
    /// TLS client certificate, when presented, must be its signer).
    fn renew(&self, req: &RstRequest, presented: Option<&[u8]>) -> Result<String, EnrollError> {
        let window = Duration::from_secs(self.config.enrollment.renewal_window_days * 86_400);
        let (pending, _) = renewal::begin_renewal(
            req,
            presented,
            &self.ca.cert_der,
            &self.issuance_policy(),
            &RenewalPolicy { window },
            now(),
            random(),
        )?;
        // The certificate the request was signed with says which enrollment renews (for
        // Full enrollments the subject is the user's UPN, not the device): the device's
        // current certificate, or the one the last renewal replaced while its successor is
        // unused (the device lost the response), never a superseded one.
        let signer = pending
            .renews
            .as_deref()
            .ok_or_else(|| EnrollError::Internal("a renewal without its signer".into()))?;
        let signed_with = provisioning::thumbprint(signer);
        let device = self
            .store
            .device_by_certificate(&signed_with)
            .map_err(|e| EnrollError::Internal(e.to_string()))?
            .filter(|d| d.unenrolled_at.is_none())
            .ok_or_else(|| {
                EnrollError::Authentication(
                    "no enrolled device has this certificate (superseded or unknown)".into(),
                )
            })?;
        let device_id = device.device_id.clone();
        let signed = self.issuer.sign(&pending.template)?;
        let xml = issue::complete(&pending, &signed, &self.provisioning(&device, None), now());
        let renewed = self
            .store
            .renew_certificate(
                &device_id,
                &signed_with,
                &signed.certificate,
                &provisioning::thumbprint(&signed.certificate),
            )
            .map_err(|e| EnrollError::Internal(e.to_string()))?;
        if !renewed {
            // A concurrent renewal or session superseded the certificate meanwhile.
            return Err(EnrollError::Authentication(
                "the certificate was superseded".into(),
            ));
        }
        tracing::info!(device = %device_id, kind = ?req.request_type, "certificate renewed");
        Ok(xml)
    }
}

async fn tou_get(State(app): State<Arc<App>>, req: Request<Body>) -> Response<Body> {
    let (parts, _) = req.into_parts();
    // The token's keys may not be cached yet: refresh once if needed, as enrollment does.
    if let Some(jwt) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        let at = UnixTime::since_unix_epoch(Duration::from_secs(now()));
        let _ =
            winmdm_entra::fetch::validate_with_refresh(&app.validator, &app.http, jwt.trim(), at)
                .await;
    }
    let rng = &mut SystemEntropy;
    from_http(match app.tou.begin(&parts, now(), rng) {
        Ok(ctx) => app.tou.terms_page(&ctx, &app.terms, now(), rng),
        Err(r) => r,
    })
}

async fn tou_post(State(app): State<Arc<App>>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024).await else {
        return respond(StatusCode::PAYLOAD_TOO_LARGE, None, Vec::new());
    };
    let rng = &mut SystemEntropy;
    from_http(match app.tou.resume(&parts, &body, now(), rng) {
        Ok(Submission::Accept(ctx)) => app.tou.accept(&ctx, now(), rng),
        Ok(Submission::Decline(ctx)) => app.tou.decline(&ctx, rng),
        // This server has no extra steps: a step submission is not one it issued.
        Ok(Submission::Step { ctx, .. }) => app.tou.deny(&ctx, rng),
        Err(r) => r,
    })
}

async fn discovery_get() -> Response<Body> {
    from_http(discovery::probe_response())
}

async fn discovery_post(State(app): State<Arc<App>>, body: Bytes) -> Response<Body> {
    let req = match discovery::parse_discover(&body) {
        Ok(r) => r,
        Err(e) => return fault(&e, None),
    };
    match discovery::discover_response(&app.discovery, &req) {
        Ok(xml) => from_http(soap_response(http::StatusCode::OK, xml)),
        Err(e) => fault(&e, req.message_id.as_deref()),
    }
}

async fn policy_post(State(app): State<Arc<App>>, body: Bytes) -> Response<Body> {
    let req = match xcep::parse_get_policies(&body) {
        Ok(r) => r,
        Err(e) => return fault(&e, None),
    };
    if let Err(e) = app.validate(req.token.as_ref().and_then(|t| t.jwt())).await {
        return fault(&e, req.message_id.as_deref());
    }
    let xml = xcep::get_policies_response(
        &xcep::CertificatePolicy::default(),
        req.message_id.as_deref(),
    );
    from_http(soap_response(http::StatusCode::OK, xml))
}

async fn enrollment_post(
    State(app): State<Arc<App>>,
    peer: Option<Extension<PeerCertificate>>,
    body: Bytes,
) -> Response<Body> {
    let req = match wstep::parse_rst(&body) {
        Ok(r) => r,
        Err(e) => return fault(&e, None),
    };
    let presented = peer.as_ref().and_then(|Extension(p)| p.0.clone());
    let result = match req.request_type {
        RequestType::Issue => app.issue(&req).await,
        _ => {
            let (app, req) = (app.clone(), req.clone());
            tokio::task::spawn_blocking(move || {
                app.renew(&req, presented.as_deref().map(Vec::as_slice))
            })
            .await
            .unwrap_or_else(|e| Err(EnrollError::Internal(e.to_string())))
        }
    };
    match result {
        Ok(xml) => from_http(soap_response(http::StatusCode::OK, xml)),
        Err(e) => fault(&e, req.message_id.as_deref()),
    }
}

fn syncml_response(reply: &Reply) -> Response<Body> {
    respond(
        StatusCode::OK,
        Some(CONTENT_TYPE),
        reply.to_xml().into_bytes(),
    )
}

fn tag_id(tag: &str) -> Option<i64> {
    tag.parse().ok()
}

impl App {
    fn user_from_token(&self, device: &DeviceRecord, jwt: &str) -> Option<SessionUser> {
        let at = UnixTime::since_unix_epoch(Duration::from_secs(now()));
        match self.validator.validate(jwt, at) {
            // The token identifies the user — in the device's tenant only.
            Ok(v) if v.tenant_id.eq_ignore_ascii_case(&device.tenant_id) => Some(SessionUser {
                tenant_id: v.tenant_id.clone(),
                object_id: v.object_id.clone(),
                guest: v.guest,
            }),
            Ok(_) => {
                tracing::warn!(device = %device.device_id, "AADUserToken of another tenant ignored");
                None
            }
            Err(e) => {
                tracing::info!(device = %device.device_id, error = %e, "AADUserToken refused");
                None
            }
        }
    }

    /// Ends abandoned sessions of `device` (other than `current`) whose idle timeout has
    /// passed: their never-sent commands go back to the queue.
    fn sweep_sessions(&self, device: &str, current: &str) {
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
            let Some(end) = session.poll_timeout(now()) else {
                continue;
            };
            let mut commit = Commit::new(device, &session_id, Some(stored.version));
            commit.session = SessionWrite::Delete;
            commit.requeue = end.unsent.iter().filter_map(|q| tag_id(&q.tag)).collect();
            match self.store.commit(&commit) {
                Ok(()) => {
                    tracing::info!(device, session = %session_id, unsent = commit.requeue.len(), "abandoned session swept")
                }
                Err(e) => tracing::debug!(device, error = %e, "sweep skipped"),
            }
        }
    }

    /// One management message: decode, authenticate, process, then one atomic commit of
    /// everything it changed (see [`crate::store`]). Runs on a blocking thread.
    pub fn management(
        &self,
        headers: &HeaderMap,
        peer: Option<&[u8]>,
        body: &[u8],
    ) -> Response<Body> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if content_type.starts_with(CONTENT_TYPE_WBXML) {
            return respond(StatusCode::UNSUPPORTED_MEDIA_TYPE, None, Vec::new());
        }
        let Ok(message) = winmdm_syncml::decode(body) else {
            return respond(StatusCode::BAD_REQUEST, None, Vec::new());
        };
        let source = message
            .header
            .source
            .as_ref()
            .map(|s| s.loc_uri.trim().to_owned())
            .unwrap_or_default();
        let session_id = message.header.session_id.trim().to_owned();
        let unavailable = |e: &dyn std::fmt::Display| {
            tracing::error!(error = %e, "storage");
            respond(StatusCode::SERVICE_UNAVAILABLE, None, Vec::new())
        };
        // A client certificate this server issued, current for a device, says which device
        // this is, whatever `Source` says (some clients write a random one each session).
        // Otherwise `Source` only finds the record: its own credentials or certificate
        // authenticate below.
        let by_certificate = match peer {
            Some(der) => {
                let thumbprint = provisioning::thumbprint(der);
                match self.store.device_by_certificate(&thumbprint) {
                    Ok(found) => found.filter(|d| d.thumbprint == thumbprint),
                    Err(e) => return unavailable(&e),
                }
            }
            None => None,
        };
        let device = match by_certificate {
            Some(d) => {
                if !d.device_id.eq_ignore_ascii_case(&source)
                    && !DeviceId::parse(&d.device_id).is_ok_and(|id| id.is_named_by(&source))
                {
                    tracing::info!(device = %d.device_id, source = %source,
                        "the message's Source differs from its certificate's device: the certificate decides");
                }
                d
            }
            None => match self.device_named_by(&source) {
                Ok(Some(d)) => d,
                Ok(None) => {
                    tracing::info!(source = %source, certificate = peer.is_some(),
                        "management message refused: no enrolled device for it");
                    return respond(StatusCode::UNAUTHORIZED, None, Vec::new());
                }
                Err(e) => return unavailable(&e),
            },
        };
        let device_id = device.device_id.clone();
        let stored = match self.store.session(&device_id, &session_id) {
            Ok(s) => s,
            Err(e) => return unavailable(&e),
        };
        let version = stored.as_ref().map(|s| s.version);
        let mut session = match stored.map(|s| serde_json::from_str::<SessionState>(&s.state)) {
            Some(Ok(state)) => match Session::restore(state) {
                Ok(s) => s,
                Err(_) => return respond(StatusCode::INTERNAL_SERVER_ERROR, None, Vec::new()),
            },
            Some(Err(_)) => return respond(StatusCode::INTERNAL_SERVER_ERROR, None, Vec::new()),
            None => {
                // A new session: not for a device that unenrolled.
                if device.unenrolled_at.is_some() {
                    return respond(StatusCode::UNAUTHORIZED, None, Vec::new());
                }
                let Ok(nonce) = Nonce::from_b64(&device.nonce) else {
                    return respond(StatusCode::INTERNAL_SERVER_ERROR, None, Vec::new());
                };
                let kind = if device.enrollment_type == "Full" {
                    EnrollmentType::Full
                } else {
                    EnrollmentType::Device
                };
                let mut config = SessionConfig::new(kind);
                config.server_uri = Some(format!(
                    "{}/ManagementServer/MDM.svc",
                    self.config.public_url()
                ));
                Session::new(config, nonce)
            }
        };
        let verdict = if peer.is_some_and(|p| p == device.certificate.as_slice()) {
            // The TLS layer verified possession of the current certificate: from now on the
            // one it replaced renews no more.
            if !device.certificate_used
                && let Err(e) = self.store.certificate_used(&device_id, &device.thumbprint)
            {
                return unavailable(&e);
            }
            Verdict::Certificate
        } else {
            Verdict::Digest {
                username: &device.digest_username,
                password: &device.digest_password,
            }
        };
        let mut commit = Commit::new(&device_id, &session_id, version);
        let reply = match session.receive(message, now()) {
            Err(e) => {
                tracing::info!(device = %device_id, error = %e, "management message refused");
                return respond(StatusCode::BAD_REQUEST, None, Vec::new());
            }
            Ok(Inbound::Expired(reply)) => reply,
            Ok(Inbound::Authenticate(step)) => {
                // A new session under the SessionID of one the device abandoned (a reboot,
                // a wrapped counter): that one's commands go back to the queue — those never
                // sent, and those sent but never answered, since the device restarted before
                // it answered them (the commit carries this, so only if this message
                // authenticates).
                let restarted: Vec<i64> = step.restarted().map_or_else(Vec::new, |end| {
                    end.unsent
                        .iter()
                        .map(|q| q.tag.as_str())
                        .chain(end.unanswered.iter().map(String::as_str))
                        .filter_map(tag_id)
                        .collect()
                });
                match step.decide(verdict, Nonce::from_bytes(random::<16>().to_vec())) {
                    Authenticated::Yes(mut exchange) => {
                        if !restarted.is_empty() {
                            tracing::info!(device = %device_id, session = %session_id,
                                requeued = restarted.len(), "session restarted by the device");
                        }
                        commit.requeue.extend(restarted);
                        let mut check_in = CheckIn {
                            at: now(),
                            login_status: None,
                            dev_info: None,
                        };
                        while let Some(event) = exchange.poll_event() {
                            match event {
                                Event::LoginStatus(ls) => {
                                    check_in.login_status = Some(format!("{ls:?}"));
                                }
                                Event::UserToken(t) => {
                                    let user = self.user_from_token(&device, t.expose());
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
                                Event::UnenrollRequested => commit.unenrolled_at = Some(now()),
                                Event::Status { tag, path, status } => {
                                    if path.is_empty()
                                        && let Some(id) = tag_id(&tag)
                                    {
                                        commit.completed.push((id, status.code.map_or(0, |c| c.0)));
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
                        commit.check_in = Some(check_in);
                        // Hand the device what is queued for it (not while it unenrolls);
                        // the commit marks them sent, or fails if another session took them.
                        if commit.unenrolled_at.is_none() {
                            if version.is_none() {
                                self.sweep_sessions(&device_id, &session_id);
                            }
                            match self.store.queued(&device_id) {
                                Ok(cmds) => {
                                    for q in cmds {
                                        let id = q.id;
                                        let mut queued = QueuedCommand::new(
                                            id.to_string(),
                                            q.command.to_command(),
                                        );
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
                                Err(e) => return unavailable(&e),
                            }
                        }
                        exchange.reply()
                    }
                    Authenticated::Challenged(reply)
                    | Authenticated::Refused(reply)
                    | Authenticated::Repeat(reply) => reply,
                }
            }
        };
        commit.nonce = reply.next_nonce.as_ref().map(Nonce::to_b64);
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
            None if session.state().authenticated().is_some() => {
                match serde_json::to_string(session.state()) {
                    Ok(json) => SessionWrite::Put(json),
                    Err(e) => return unavailable(&e),
                }
            }
            None => SessionWrite::Keep,
        };
        crash_point("manage:before-commit");
        match self.store.commit(&commit) {
            Ok(()) => {}
            Err(CommitError::Conflict(why)) => {
                tracing::info!(device = %device_id, %why, "management message raced; the device will retry");
                let mut r = respond(StatusCode::SERVICE_UNAVAILABLE, None, Vec::new());
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return r;
            }
            Err(CommitError::Store(e)) => return unavailable(&e),
        }
        crash_point("manage:after-commit");
        syncml_response(&reply)
    }
}

/// Fault injection for the crash tests (feature `fault-injection`): when
/// `WINMDM_CRASH_POINT` names this point, the process announces it on standard error and
/// waits to be killed.
/// `WINMDM_CRASH_POINT` is `name` (the first time it is reached) or `name#n` (the n-th).
#[cfg(feature = "fault-injection")]
pub(crate) fn crash_point(name: &str) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static HITS: AtomicU32 = AtomicU32::new(0);
    let Ok(wanted) = std::env::var("WINMDM_CRASH_POINT") else {
        return;
    };
    let (point, nth) = wanted
        .split_once('#')
        .map_or((wanted.as_str(), 1), |(p, n)| (p, n.parse().unwrap_or(1)));
    if point == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == nth {
        eprintln!("CRASH-POINT {wanted}");
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn crash_point(_: &str) {}

async fn management(
    State(app): State<Arc<App>>,
    peer: Option<Extension<PeerCertificate>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let Ok(_permit) = app.in_flight.clone().try_acquire_owned() else {
        let mut r = respond(StatusCode::TOO_MANY_REQUESTS, None, Vec::new());
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(app.config.management.retry_after_secs),
        );
        return r;
    };
    let peer = peer.and_then(|Extension(p)| p.0);
    let app2 = app.clone();
    // Storage is synchronous: keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        app2.management(&headers, peer.as_deref().map(Vec::as_slice), &body)
    })
    .await
    .unwrap_or_else(|_| respond(StatusCode::INTERNAL_SERVER_ERROR, None, Vec::new()))
}

async fn healthz(State(app): State<Arc<App>>) -> Response<Body> {
    match app.db(|s| s.devices()).await.and_then(|r| r) {
        Ok(d) => respond(
            StatusCode::OK,
            Some("application/json"),
            serde_json::json!({"status": "ok", "devices": d.len()})
                .to_string()
                .into_bytes(),
        ),
        Err(_) => respond(StatusCode::SERVICE_UNAVAILABLE, None, Vec::new()),
    }
}

/// The device-facing routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/TermsOfUse", get(tou_get).post(tou_post))
        .route(
            "/EnrollmentServer/Discovery.svc",
            get(discovery_get).post(discovery_post),
        )
        .route("/EnrollmentServer/Policy.svc", post(policy_post))
        .route("/EnrollmentServer/Enrollment.svc", post(enrollment_post))
        .route("/ManagementServer/MDM.svc", post(management))
        .route("/healthz", get(healthz))
        .fallback(|| async { respond(StatusCode::NOT_FOUND, None, Vec::new()) })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}
