//! A minimal Terms-of-Use + enrollment server on axum: the smallest composition of
//! `winmdm-tou`, `winmdm-entra` and `winmdm-enroll` a vendor can copy.
//!
//! Routes:
//! * `GET`/`POST /TermsOfUse` — the ToU page and its decision;
//! * `GET`/`POST /EnrollmentServer/Discovery.svc` — the probe and `Discover`;
//! * `POST /EnrollmentServer/Policy.svc` — `GetPolicies`;
//! * `POST /EnrollmentServer/Enrollment.svc` — `RequestSecurityToken`: token, Terms-of-Use
//!   blob, CSR, certificate, provisioning document.
//!
//! It trusts the testkit's Entra keys and signs with the testkit's intermediate CA: replace
//! [`Example::new`]'s validator, keys and issuer with real ones. Enrolled devices are kept
//! in memory only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Request, Response};
use axum::routing::get;
use base64::Engine as _;
use rustls_pki_types::UnixTime;
use winmdm_enroll::discovery::{self, DiscoveryConfig};
use winmdm_enroll::enrollment_data::TokenIdentity;
use winmdm_enroll::fault::EnrollError;
use winmdm_enroll::issue::{self, CertificateSigner, IssuancePolicy, LocalIssuer, Requester};
use winmdm_enroll::provisioning::ProvisioningConfig;
use winmdm_enroll::{soap_response, wstep, xcep};
use winmdm_entra::{KeyCache, KeySource, Policy, TokenVersion, Validator};
use winmdm_testkit::entra as tk;
use winmdm_testkit::pki;
use winmdm_tou::{
    Keyring, RedirectPolicy, SealingKey, Submission, SystemEntropy, Terms, TermsOfUse, TouConfig,
};

/// A device this server enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    /// Its Entra device ID.
    pub device_id: Option<String>,
    /// The certificate's subject.
    pub subject: String,
    /// The tenant.
    pub tenant_id: String,
    /// The issued certificate (DER).
    pub certificate: Vec<u8>,
}

/// The server's state.
#[derive(Debug)]
pub struct Example {
    base_url: String,
    tou: TermsOfUse,
    validator: Validator,
    issuer: LocalIssuer,
    discovery: DiscoveryConfig,
    enrolled: Mutex<Vec<Enrolled>>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// 16 random bytes; `None` if the system's random generator failed.
fn random16() -> Option<[u8; 16]> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).ok()?;
    Some(b)
}

impl Example {
    /// The example at `base_url` (how devices reach it).
    ///
    /// # Panics
    /// At startup only, if the testkit's fixed keys and CA (compiled in) do not load or
    /// the system has no randomness for the sealing key. Requests never panic.
    pub fn new(base_url: &str) -> Arc<Self> {
        let jwks = serde_json::to_vec(&tk::jwks(tk::rotation_pool())).unwrap();
        let keys = KeySource::static_jwks(&jwks, tk::V2_ISSUER_TEMPLATE, TokenVersion::V2).unwrap();
        let policy = Policy::builder()
            .allow_tenants([tk::CONTOSO.id])
            .allow_audiences([tk::MDM_APP_ID, tk::MDM_APP_ID_URI])
            .build()
            .unwrap();
        let validator = Validator::new(policy, Arc::new(KeyCache::new(vec![keys])));
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret).unwrap();
        let keyring = Keyring::new(SealingKey::new("k1", &secret).unwrap());
        let tou = TermsOfUse::new(
            TouConfig::default()
                .with_redirect_policy(RedirectPolicy::default().allow_host("http", "127.0.0.1")),
            keyring,
            validator.clone(),
        );
        let issuer = LocalIssuer::new(
            pki::INTERMEDIATE_CA.cert_der,
            pki::INTERMEDIATE_CA.key_der,
            Vec::new(),
            pki::ROOT_CA.cert_der.to_vec(),
        )
        .unwrap();
        let mut discovery =
            DiscoveryConfig::federated(format!("{base_url}/EnrollmentServer/Enrollment.svc"));
        discovery.policy_service_url = Some(format!("{base_url}/EnrollmentServer/Policy.svc"));
        Arc::new(Self {
            base_url: base_url.to_owned(),
            tou,
            validator,
            issuer,
            discovery,
            enrolled: Mutex::new(Vec::new()),
        })
    }

    /// The devices enrolled so far.
    pub fn enrolled(&self) -> Vec<Enrolled> {
        self.enrolled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn validate(&self, jwt: Option<&str>) -> Result<winmdm_entra::EntraClaims, EnrollError> {
        let jwt = jwt.ok_or_else(|| EnrollError::Authentication("no token".into()))?;
        let at = UnixTime::since_unix_epoch(Duration::from_secs(now()));
        self.validator
            .validate(jwt, at)
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

    fn enroll(
        &self,
        body: &[u8],
    ) -> Result<(String, Option<String>), (EnrollError, Option<String>)> {
        let req = wstep::parse_rst(body).map_err(|e| (e, None))?;
        let relates = req.message_id.clone();
        let fail = |e: EnrollError| (e, relates.clone());
        let random = || {
            random16().ok_or_else(|| fail(EnrollError::Internal("random generator failed".into())))
        };
        let claims = self
            .validate(req.token.as_ref().and_then(|t| t.jwt()))
            .map_err(fail)?;
        let who = TokenIdentity {
            tenant_id: &claims.tenant_id,
            object_id: &claims.object_id,
        };
        req.verify_enrollment_data(&self.tou.verifier(), &who, now())
            .map_err(fail)?;
        let requester = Requester {
            upn: claims.upn.clone(),
            token_device_id: claims.device_id.clone(),
        };
        let (pending, _) = issue::begin(
            &req,
            &requester,
            &IssuancePolicy::default(),
            now(),
            random()?,
        )
        .map_err(fail)?;
        let signed = self.issuer.sign(&pending.template).map_err(fail)?;
        let nonce = base64::engine::general_purpose::STANDARD.encode(random()?);
        let config = ProvisioningConfig {
            provider_id: "winmdm-example".into(),
            name: "winmdm example".into(),
            dm_server_url: format!("{}/ManagementServer/MDM.svc", self.base_url),
            client_auth: (pending.template.subject_cn.clone(), hex(&random()?), nonce),
            server_auth: ("winmdm-example".into(), hex(&random()?)),
            renewal: Some(Default::default()),
            poll: Default::default(),
            ent_dm_id: hex(&random()?),
            ent_device_name: req.context.device_name().map(str::to_owned),
            upn: claims.upn.clone(),
            extra: Vec::new(),
        };
        let xml = issue::complete(&pending, &signed, &config, now());
        self.enrolled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Enrolled {
                device_id: pending.device_id.clone(),
                subject: pending.template.subject_cn,
                tenant_id: claims.tenant_id.clone(),
                certificate: signed.certificate,
            });
        Ok((xml, relates))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn axum_response(r: http::Response<Vec<u8>>) -> Response<Body> {
    r.map(Body::from)
}

fn fault(e: &EnrollError, relates: Option<&str>) -> Response<Body> {
    tracing::info!(error = %e, "enrollment refused");
    // Without randomness the trace id is all zeros; the fault itself still goes out.
    let trace = hex(&random16().unwrap_or_default());
    axum_response(e.fault().to_response(relates, &trace))
}

async fn body_bytes(body: Body) -> Bytes {
    axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default()
}

async fn tou_get(State(app): State<Arc<Example>>, req: Request<Body>) -> Response<Body> {
    let (parts, _) = req.into_parts();
    let rng = &mut SystemEntropy;
    axum_response(match app.tou.begin(&parts, now(), rng) {
        Ok(ctx) => app.tou.terms_page(
            &ctx,
            &Terms::text(
                "Contoso device management",
                "Contoso IT manages work data on this device.",
            ),
            now(),
            rng,
        ),
        Err(r) => r,
    })
}

async fn tou_post(State(app): State<Arc<Example>>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = body_bytes(body).await;
    let rng = &mut SystemEntropy;
    axum_response(match app.tou.resume(&parts, &body, now(), rng) {
        Ok(Submission::Accept(ctx)) => app.tou.accept(&ctx, now(), rng),
        Ok(Submission::Decline(ctx)) => app.tou.decline(&ctx, rng),
        Ok(Submission::Step { ctx, .. }) => app.tou.deny(&ctx, rng),
        Err(r) => r,
    })
}

async fn discovery_get() -> Response<Body> {
    axum_response(discovery::probe_response())
}

async fn discovery_post(State(app): State<Arc<Example>>, body: Bytes) -> Response<Body> {
    let req = match discovery::parse_discover(&body) {
        Ok(r) => r,
        Err(e) => return fault(&e, None),
    };
    match discovery::discover_response(&app.discovery, &req) {
        Ok(xml) => axum_response(soap_response(http::StatusCode::OK, xml)),
        Err(e) => fault(&e, req.message_id.as_deref()),
    }
}

async fn policy_post(State(app): State<Arc<Example>>, body: Bytes) -> Response<Body> {
    let req = match xcep::parse_get_policies(&body) {
        Ok(r) => r,
        Err(e) => return fault(&e, None),
    };
    if let Err(e) = app.validate(req.token.as_ref().and_then(|t| t.jwt())) {
        return fault(&e, req.message_id.as_deref());
    }
    let xml = xcep::get_policies_response(
        &xcep::CertificatePolicy::default(),
        req.message_id.as_deref(),
    );
    axum_response(soap_response(http::StatusCode::OK, xml))
}

async fn enrollment_post(State(app): State<Arc<Example>>, body: Bytes) -> Response<Body> {
    match app.enroll(&body) {
        Ok((xml, _)) => axum_response(soap_response(http::StatusCode::OK, xml)),
        Err((e, relates)) => fault(&e, relates.as_deref()),
    }
}

/// The routes.
pub fn router(app: Arc<Example>) -> Router {
    Router::new()
        .route("/TermsOfUse", get(tou_get).post(tou_post))
        .route(
            "/EnrollmentServer/Discovery.svc",
            get(discovery_get).post(discovery_post),
        )
        .route(
            "/EnrollmentServer/Policy.svc",
            axum::routing::post(policy_post),
        )
        .route(
            "/EnrollmentServer/Enrollment.svc",
            axum::routing::post(enrollment_post),
        )
        .with_state(app)
}
