//! A minimal Terms-of-Use + enrollment server on axum, built on `winmdm-endpoint`: the
//! smallest server a vendor can copy.
//!
//! Routes (all answered by the endpoint):
//! * `GET`/`POST /TermsOfUse` — the ToU page and its decision;
//! * `GET`/`POST /EnrollmentServer/Discovery.svc` — the probe and `Discover`;
//! * `POST /EnrollmentServer/Policy.svc` — `GetPolicies`;
//! * `POST /EnrollmentServer/Enrollment.svc` — `RequestSecurityToken`: token, Terms-of-Use
//!   blob, CSR, certificate, provisioning document;
//! * `POST /ManagementServer/MDM.svc` — OMA-DM, for the devices it enrolled.
//!
//! It trusts the testkit's Entra keys and signs with the testkit's intermediate CA: replace
//! [`Example::new`]'s validator, keys and signer with real ones, and [`MemoryStore`] with
//! your database (a `winmdm_endpoint::Store`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, Response, StatusCode};
use winmdm_endpoint::{Components, Endpoint, EndpointConfig, Input, MemoryStore, Store as _};
use winmdm_enroll::issue::LocalIssuer;
use winmdm_entra::{KeyCache, KeySource, Policy, TokenVersion, Validator};
use winmdm_testkit::entra as tk;
use winmdm_testkit::pki;
use winmdm_tou::{Keyring, RedirectPolicy, SealingKey, Terms, TouConfig};

/// A device this server enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    /// Its Entra device ID (the certificate's subject for an Entra-joined device).
    pub device_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The issued certificate (DER).
    pub certificate: Vec<u8>,
}

/// The server's state: the endpoint and its store.
#[derive(Debug)]
pub struct Example {
    endpoint: Endpoint,
    store: Arc<MemoryStore>,
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
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret).unwrap();
        let signer = LocalIssuer::new(
            pki::INTERMEDIATE_CA.cert_der,
            pki::INTERMEDIATE_CA.key_der,
            Vec::new(),
            pki::ROOT_CA.cert_der.to_vec(),
        )
        .unwrap();
        let mut config = EndpointConfig::new(base_url);
        config.provider_id = "winmdm-example".into();
        config.name = "winmdm example".into();
        // The tests play the Windows web view over loopback HTTP.
        config.terms_of_use = TouConfig::default()
            .with_redirect_policy(RedirectPolicy::default().allow_host("http", "127.0.0.1"));
        let store = Arc::new(MemoryStore::new());
        let endpoint = Endpoint::new(
            config,
            Components {
                store: store.clone(),
                validator: Validator::new(policy, Arc::new(KeyCache::new(vec![keys]))),
                keyring: Keyring::new(SealingKey::new("k1", &secret).unwrap()),
                terms: Terms::text(
                    "Contoso device management",
                    "Contoso IT manages work data on this device.",
                ),
                signer: Arc::new(signer),
                issuing_ca: pki::INTERMEDIATE_CA.cert_der.to_vec(),
            },
        )
        .unwrap();
        Arc::new(Self { endpoint, store })
    }

    /// The devices enrolled so far.
    pub fn enrolled(&self) -> Vec<Enrolled> {
        self.store
            .devices()
            .unwrap_or_default()
            .into_iter()
            .map(|d| Enrolled {
                device_id: d.device_id,
                tenant_id: d.tenant_id,
                certificate: d.certificate,
            })
            .collect()
    }
}

/// Every route: the body (capped at 1 MiB), then the endpoint on a blocking thread (its
/// store may block; the keys are static, so it never asks for a key refresh).
async fn route(State(app): State<Arc<Example>>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return Response::builder()
            .status(StatusCode::PAYLOAD_TOO_LARGE)
            .body(Body::empty())
            .unwrap();
    };
    let handled = tokio::task::spawn_blocking(move || {
        app.endpoint
            .handle_with_keys(&parts, &body, Input::now(), |_| {
                Err::<http::Response<Vec<u8>>, _>("static keys: nothing to fetch")
            })
    })
    .await;
    match handled {
        Ok(r) => r.map(Body::from),
        Err(_) => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::empty())
            .unwrap(),
    }
}

/// The routes.
pub fn router(app: Arc<Example>) -> Router {
    Router::new().fallback(route).with_state(app)
}
