//! A minimal OMA-DM management endpoint on axum: the smallest use of
//! `winmdm_syncml::session` a vendor can copy.
//!
//! `POST /ManagementServer/MDM.svc` decodes the device's message, finds (or starts) its
//! session, authenticates the device with its OMA-DM digest credentials, queues one
//! command (`Get ./DevDetail/SwV`) when a session starts, prints every result, and answers
//! within the device's `MaxMsgSize`. Unknown devices get HTTP 401 and leave nothing behind;
//! WBXML gets 415. Session states are kept as JSON, as a database would keep them.
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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

/// The maps stay usable even if a thread once panicked holding them: every write to
/// them is a single insert or push, so they are never left half-changed.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fresh nonce; `None` if the system's random generator failed.
fn fresh_nonce() -> Option<Nonce> {
    let mut b = vec![0u8; 16];
    aws_lc_rs::rand::fill(&mut b).ok()?;
    Some(Nonce::from_bytes(b))
}

fn plain(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_LENGTH,
        header::HeaderValue::from_static("0"),
    );
    r
}

impl Endpoint {
    /// An endpoint that knows no device yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers a device (as enrollment would).
    pub fn add_device(&self, device_id: &str, credentials: DeviceCredentials) {
        lock(&self.devices).insert(device_id.to_owned(), credentials);
    }

    /// Every result received: (device, node, value).
    pub fn results(&self) -> Vec<(String, String, String)> {
        lock(&self.results).clone()
    }

    /// Stored session states (one per device and session ID).
    pub fn stored_sessions(&self) -> usize {
        lock(&self.sessions).len()
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
        let Some(creds) = lock(&self.devices).get(&device_id).cloned() else {
            // Unknown device: refused before any state exists.
            return plain(StatusCode::UNAUTHORIZED);
        };
        let key = (
            device_id.clone(),
            message.header.session_id.trim().to_owned(),
        );
        let stored = lock(&self.sessions).get(&key).cloned();
        // A stored state that no longer reads or restores (another version wrote it) is
        // dropped: the device starts a new session, as after an expiry.
        let restored = stored
            .and_then(|json| serde_json::from_str::<SessionState>(&json).ok())
            .and_then(|state| Session::restore(state).ok());
        let mut session = match restored {
            Some(s) => s,
            None => Session::new(
                SessionConfig::new(EnrollmentType::Device),
                creds.nonce.clone(),
            ),
        };
        let verdict = Verdict::Digest {
            username: &creds.username,
            password: &creds.password,
        };
        let reply = match session.receive(message, now()) {
            Err(_) => return plain(StatusCode::BAD_REQUEST),
            Ok(Inbound::Expired(reply)) => reply,
            Ok(Inbound::Authenticate(step)) => {
                let Some(nonce) = fresh_nonce() else {
                    return plain(StatusCode::SERVICE_UNAVAILABLE);
                };
                match step.decide(verdict, nonce) {
                    Authenticated::Yes(mut exchange) => {
                        while let Some(event) = exchange.poll_event() {
                            // Work for the session is queued when it starts (a SessionID
                            // the device reuses starts a new session too).
                            if let Event::SessionStarted { .. } = event {
                                let swv = QueuedCommand::new(
                                    "swv",
                                    Command::get(1u32, ["./DevDetail/SwV"]),
                                );
                                if exchange.queue(swv).is_err() {
                                    return plain(StatusCode::INTERNAL_SERVER_ERROR);
                                }
                            }
                            if let Event::Results { results, .. } = event {
                                for v in results.values {
                                    println!("{device_id}: {} = {}", v.uri, v.data);
                                    lock(&self.results).push((
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
                }
            }
        };
        if let Some(n) = &reply.next_nonce {
            // The device uses this nonce from now on (its next session included).
            if let Some(c) = lock(&self.devices).get_mut(&device_id) {
                c.nonce = n.clone();
            }
        }
        if session.state().authenticated().is_some() || session.state().session_id().is_some() {
            let Ok(json) = serde_json::to_string(session.state()) else {
                return plain(StatusCode::INTERNAL_SERVER_ERROR);
            };
            lock(&self.sessions).insert(key, json);
        }
        let xml = reply.to_xml();
        let length = header::HeaderValue::from(xml.len());
        let mut r = Response::new(Body::from(xml));
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(CONTENT_TYPE),
        );
        h.insert(header::CONTENT_LENGTH, length);
        r
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use winmdm_syncml::client::Device;

    fn status(endpoint: &Endpoint, msg: &winmdm_syncml::SyncMl) -> StatusCode {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, CONTENT_TYPE.parse().unwrap());
        endpoint
            .handle(&headers, winmdm_syncml::encode(msg).as_bytes())
            .status()
    }

    #[test]
    fn a_stored_state_from_another_version_starts_a_new_session_instead_of_panicking() {
        let endpoint = Endpoint::new();
        let nonce = Nonce::from_bytes(vec![5; 16]);
        endpoint.add_device(
            "dev-v",
            DeviceCredentials {
                username: "u".into(),
                password: "p".into(),
                nonce: nonce.clone(),
            },
        );
        let mut device = Device::new("dev-v", "http://127.0.0.1/").with_digest("u", "p", nonce);
        let first = device.start_session();
        assert_eq!(status(&endpoint, &first), StatusCode::OK);
        assert_eq!(endpoint.stored_sessions(), 1);
        // Every stored state now claims a version this crate does not read.
        for json in lock(&endpoint.sessions).values_mut() {
            let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
            assert!(v.get("version").is_some(), "{v}");
            v["version"] = serde_json::json!(999);
            *json = v.to_string();
        }
        // The device's next message (the same session) is answered, not a panic.
        assert_eq!(status(&endpoint, &first), StatusCode::OK);
        let stored: Vec<SessionState> = lock(&endpoint.sessions)
            .values()
            .map(|j| serde_json::from_str(j).unwrap())
            .collect();
        assert!(stored.iter().all(|s| Session::restore(s.clone()).is_ok()));
    }
}
