//! A minimal OMA-DM management endpoint on axum, built on `winmdm-endpoint`: devices and
//! their commands live in a [`MemoryStore`], and the endpoint runs the sessions.
//!
//! `POST /ManagementServer/MDM.svc` decodes the device's message, finds its session (or
//! starts one: also when the device reuses a SessionID, as Windows' 8-bit counter does),
//! authenticates the device with its OMA-DM digest credentials, sends what is queued for it
//! and stores every status and result. Unknown devices get HTTP 401 and leave nothing
//! behind; WBXML gets 415. The devices here are registered by hand
//! ([`Example::add_device`]); in a full server enrollment registers them.
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{Response, StatusCode};
use winmdm_endpoint::{
    CommandSpec, Components, DeviceRecord, Endpoint, EndpointConfig, Enrolled, Input, MemoryStore,
    Replace, Store as _,
};
use winmdm_syncml::auth::Nonce;

/// A device's OMA-DM digest credentials (from its provisioning document).
#[derive(Debug, Clone)]
pub struct DeviceCredentials {
    /// `AAUTHNAME`.
    pub username: String,
    /// `AAUTHSECRET`.
    pub password: String,
    /// The nonce its next session uses.
    pub nonce: Nonce,
}

/// The example's state: the endpoint and its store.
#[derive(Debug)]
pub struct Example {
    endpoint: Endpoint,
    store: Arc<MemoryStore>,
}

fn now() -> u64 {
    rustls_pki_types::UnixTime::now().as_secs()
}

impl Example {
    /// An endpoint at `base_url` that knows no device yet.
    ///
    /// # Errors
    /// The endpoint's configuration errors (a bad URL), as text; and the testkit's keys
    /// and CA (compiled in) failing to load, which they do not.
    pub fn new(base_url: &str) -> Result<Arc<Self>, String> {
        use winmdm_testkit::{entra, pki};
        // Management needs no Entra keys unless a device sends an `AADUserToken`; these
        // trust the testkit's, as the other examples do.
        let jwks = entra::jwks(entra::rotation_pool()).to_string();
        let keys = winmdm_entra::KeySource::static_jwks(
            jwks.as_bytes(),
            entra::V2_ISSUER_TEMPLATE,
            winmdm_entra::TokenVersion::V2,
        )
        .map_err(|e| e.to_string())?;
        let policy = winmdm_entra::Policy::builder()
            .allow_tenants([entra::CONTOSO.id])
            .allow_audiences([entra::MDM_APP_ID])
            .build()
            .map_err(|e| e.to_string())?;
        let signer = winmdm_enroll::issue::LocalIssuer::new(
            pki::ROOT_CA.cert_der,
            pki::ROOT_CA.key_der,
            Vec::new(),
            pki::ROOT_CA.cert_der.to_vec(),
        )
        .map_err(|e| e.to_string())?;
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret).map_err(|_| "no randomness".to_owned())?;
        let store = Arc::new(MemoryStore::new());
        let endpoint = Endpoint::new(
            EndpointConfig::new(base_url),
            Components {
                store: store.clone(),
                validator: winmdm_entra::Validator::new(
                    policy,
                    Arc::new(winmdm_entra::KeyCache::new(vec![keys])),
                ),
                keyring: winmdm_tou::Keyring::new(
                    winmdm_tou::SealingKey::new("k1", &secret).map_err(|e| e.to_string())?,
                ),
                terms: winmdm_tou::Terms::text("Terms", "Terms"),
                signer: Arc::new(signer),
                issuing_ca: pki::ROOT_CA.cert_der.to_vec(),
            },
        )
        .map_err(|e| e.to_string())?;
        Ok(Arc::new(Self { endpoint, store }))
    }

    /// Registers a device (as enrollment would), with a `Get ./DevDetail/SwV` queued.
    ///
    /// # Errors
    /// Storage errors, as text.
    pub fn add_device(
        &self,
        device_id: &str,
        credentials: DeviceCredentials,
    ) -> Result<(), String> {
        let record = DeviceRecord {
            device_id: device_id.to_owned(),
            tenant_id: "example-tenant".into(),
            user_oid: "example-user".into(),
            upn: None,
            enrollment_type: "Device".into(),
            // No certificate: this device authenticates with its digest credentials.
            certificate: Vec::new(),
            thumbprint: "none".into(),
            digest_username: credentials.username,
            digest_password: credentials.password,
            nonce: credentials.nonce.to_b64(),
            enrolled_at: now(),
            last_checkin: None,
            login_status: None,
            compliant: None,
            unenrolled_at: None,
            dev_info: Vec::new(),
            previous_thumbprint: None,
            certificate_used: false,
        };
        match self
            .store
            .enroll(&record, &[swv()], now(), Replace::SameOwner.into())
        {
            Ok(Enrolled::Stored) => Ok(()),
            Ok(other) => Err(format!("not stored: {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Queues a command for `device_id`'s next session.
    ///
    /// # Errors
    /// Storage errors (an unknown device), as text.
    pub fn queue(&self, device_id: &str, command: &CommandSpec) -> Result<i64, String> {
        self.store
            .queue(device_id, command, None, now())
            .map_err(|e| e.to_string())
    }

    /// Every result received: (device, node, value).
    pub fn results(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for d in self.store.devices().unwrap_or_default() {
            for c in self.store.commands(&d.device_id).unwrap_or_default() {
                for (uri, data) in c.results {
                    out.push((d.device_id.clone(), uri, data));
                }
            }
        }
        out
    }

    /// Stored session states (one per device and session ID).
    pub fn stored_sessions(&self) -> usize {
        self.store
            .devices()
            .unwrap_or_default()
            .iter()
            .map(|d| {
                self.store
                    .other_sessions(&d.device_id, "")
                    .map_or(0, |s| s.len())
            })
            .sum()
    }

    /// The store (to look at, or to damage in tests).
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// One request, as the web framework received it.
    pub fn handle(&self, parts: &Parts, body: &[u8]) -> Response<Vec<u8>> {
        // Static keys: never a key refresh to do.
        self.endpoint
            .handle_with_keys(parts, body, Input::new(now()), |_| {
                Err::<http::Response<Vec<u8>>, _>("static keys")
            })
    }
}

/// `Get ./DevDetail/SwV`.
pub fn swv() -> CommandSpec {
    CommandSpec::Get {
        targets: vec!["./DevDetail/SwV".into()],
    }
}

async fn management(
    State(example): State<Arc<Example>>,
    req: axum::http::Request<Body>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let Ok(body): Result<Bytes, _> = axum::body::to_bytes(body, 1 << 20).await else {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        return r;
    };
    // The store is in memory and never blocks for long; a database-backed store would
    // run this on a blocking thread.
    example.handle(&parts, &body).map(Body::from)
}

/// The route.
pub fn router(example: Arc<Example>) -> Router {
    Router::new().fallback(management).with_state(example)
}
