//! A minimal OMA-DM management endpoint on axum: the smallest use of
//! `winmdm_syncml::session` a vendor can copy.
//!
//! `POST /ManagementServer/MDM.svc` decodes the device's message, finds (or starts) its
//! session, authenticates the device with its OMA-DM digest credentials, queues one
//! command (`Get ./DevDetail/SwV`) when a session starts, prints every result, and answers
//! within the device's `MaxMsgSize`. Unknown devices get HTTP 401 and leave nothing behind;
//! WBXML gets 415. Session states are kept as JSON, as a database would keep them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Response, StatusCode, header};
use axum::routing::post;
use winmdm_syncml::auth::Nonce;
use winmdm_syncml::scope::EnrollmentType;
use winmdm_syncml::session::{
    Authenticated, Event, Inbound, QueuedCommand, Session, SessionConfig, SessionState, Verdict,
};
use winmdm_syncml::{CONTENT_TYPE, CONTENT_TYPE_WBXML, Command};

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

/// The endpoint's state.
#[derive(Debug, Default)]
pub struct Endpoint {
    devices: Mutex<HashMap<String, DeviceCredentials>>,
    sessions: Mutex<HashMap<(String, String), String>>,
    results: Mutex<Vec<(String, String, String)>>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn fresh_nonce() -> Nonce {
    let mut b = vec![0u8; 16];
    aws_lc_rs::rand::fill(&mut b).expect("randomness");
    Nonce::from_bytes(b)
}

fn plain(status: StatusCode) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, "0")
        .body(Body::empty())
        .unwrap()
}

impl Endpoint {
    /// An endpoint that knows no device yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers a device (as enrollment would).
    pub fn add_device(&self, device_id: &str, credentials: DeviceCredentials) {
        self.devices
            .lock()
            .unwrap()
            .insert(device_id.to_owned(), credentials);
    }

    /// Every result received: (device, node, value).
    pub fn results(&self) -> Vec<(String, String, String)> {
        self.results.lock().unwrap().clone()
    }

    /// Stored session states (one per device and session ID).
    pub fn stored_sessions(&self) -> usize {
        self.sessions.lock().unwrap().len()
    }

    fn handle(&self, headers: &HeaderMap, body: &[u8]) -> Response<Body> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if content_type.starts_with(CONTENT_TYPE_WBXML) {
            return plain(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
        let Ok(message) = winmdm_syncml::decode(body) else {
            return plain(StatusCode::BAD_REQUEST);
        };
        let device_id = message
            .header
            .source
            .as_ref()
            .map(|s| s.loc_uri.trim().to_owned())
            .unwrap_or_default();
        let Some(creds) = self.devices.lock().unwrap().get(&device_id).cloned() else {
            // Unknown device: refused before any state exists.
            return plain(StatusCode::UNAUTHORIZED);
        };
        let key = (
            device_id.clone(),
            message.header.session_id.trim().to_owned(),
        );
        let stored = self.sessions.lock().unwrap().get(&key).cloned();
        let mut session = match stored.map(|json| serde_json::from_str::<SessionState>(&json)) {
            Some(Ok(state)) => Session::restore(state).unwrap(),
            _ => {
                let mut s = Session::new(
                    SessionConfig::new(EnrollmentType::Device),
                    creds.nonce.clone(),
                );
                s.queue(QueuedCommand::new(
                    "swv",
                    Command::get(1u32, ["./DevDetail/SwV"]),
                ))
                .unwrap();
                s
            }
        };
        let verdict = Verdict::Digest {
            username: &creds.username,
            password: &creds.password,
        };
        let reply = match session.receive(message, now()) {
            Err(_) => return plain(StatusCode::BAD_REQUEST),
            Ok(Inbound::Expired(reply)) => reply,
            Ok(Inbound::Authenticate(step)) => match step.decide(verdict, fresh_nonce()) {
                Authenticated::Yes(mut exchange) => {
                    while let Some(event) = exchange.poll_event() {
                        if let Event::Results { results, .. } = event {
                            for v in results.values {
                                println!("{device_id}: {} = {}", v.uri, v.data);
                                self.results.lock().unwrap().push((
                                    device_id.clone(),
                                    v.uri.to_string(),
                                    v.data.to_string(),
                                ));
                            }
                        }
                    }
                    exchange.reply()
                }
                Authenticated::Challenged(reply)
                | Authenticated::Refused(reply)
                | Authenticated::Repeat(reply) => reply,
            },
        };
        if let Some(n) = &reply.next_nonce {
            // The device uses this nonce from now on (its next session included).
            if let Some(c) = self.devices.lock().unwrap().get_mut(&device_id) {
                c.nonce = n.clone();
            }
        }
        if session.state().authenticated().is_some() || session.state().session_id().is_some() {
            let json = serde_json::to_string(session.state()).unwrap();
            self.sessions.lock().unwrap().insert(key, json);
        }
        let xml = reply.to_xml();
        Response::builder()
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .header(header::CONTENT_LENGTH, xml.len())
            .body(Body::from(xml))
            .unwrap()
    }
}

async fn management(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    endpoint.handle(&headers, &body)
}

/// The route.
pub fn router(endpoint: Arc<Endpoint>) -> Router {
    Router::new()
        .route("/ManagementServer/MDM.svc", post(management))
        .with_state(endpoint)
}
