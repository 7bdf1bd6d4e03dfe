//! A loopback Microsoft Graph emulator: devices and group memberships per tenant,
//! bearer-token checks against the testkit's signing keys (the keys the Entra emulator
//! signs with), scripted faults (404, 401, 429 with `Retry-After`, 503 storms), paging,
//! and a log of what it received.
//!
//! Serves, under `/v1.0`: `PATCH`/`GET /devices/{id}`, `PATCH`/`GET
//! /devices(deviceId='{id}')`, `POST /users/{id}/getMemberObjects` and `GET
//! /users/{id}/transitiveMemberOf/microsoft.graph.group` (paged with `@odata.nextLink`).
//! Devices need the `Device.ReadWrite.All` role, users `GroupMember.Read.All` or
//! `Directory.Read.All`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Response, Uri, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::entra::{self, GRAPH_RESOURCE};

/// A device the emulator knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedDevice {
    /// The tenant it is registered in.
    pub tenant_id: String,
    /// The directory object ID.
    pub object_id: String,
    /// The Entra device ID.
    pub device_id: String,
    /// Display name.
    pub display_name: String,
    /// `isCompliant`.
    pub is_compliant: Option<bool>,
    /// `isManaged`.
    pub is_managed: Option<bool>,
}

/// A scripted failure for the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The status to answer.
    pub status: u16,
    /// A `Retry-After` header value (seconds or an HTTP date).
    pub retry_after: Option<String>,
    /// An `x-ms-retry-after-ms` header value.
    pub retry_after_ms: Option<u64>,
}

impl Fault {
    /// A status with no retry hint.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            retry_after_ms: None,
        }
    }

    /// 429 with `Retry-After: <secs>`.
    pub fn throttle(secs: u64) -> Self {
        Self {
            status: 429,
            retry_after: Some(secs.to_string()),
            retry_after_ms: None,
        }
    }
}

/// One request the emulator received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphRequestLog {
    /// Method.
    pub method: String,
    /// Path (without query).
    pub path: String,
    /// Query, if any.
    pub query: Option<String>,
    /// The body (JSON as sent).
    pub body: String,
    /// The tenant of the bearer token, when it verified.
    pub tenant: Option<String>,
    /// The status answered.
    pub status: u16,
}

#[derive(Debug, Default)]
struct State {
    devices: Vec<EmulatedDevice>,
    groups: HashMap<(String, String), Vec<String>>,
    page_size: usize,
    faults: VecDeque<Fault>,
    log: Vec<GraphRequestLog>,
}

#[derive(Debug)]
struct Shared {
    root: String,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running Graph emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct GraphEmulator {
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for GraphEmulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl GraphEmulator {
    /// Starts an emulator on an ephemeral loopback port.
    pub fn spawn() -> std::io::Result<Self> {
        let (listener, addr) = crate::serve::bind_loopback()?;
        let shared = Arc::new(Shared {
            root: format!("http://{addr}"),
            state: Mutex::new(State {
                page_size: 100,
                ..State::default()
            }),
        });
        let app = axum::Router::new().fallback({
            let shared = shared.clone();
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let shared = shared.clone();
                async move { handle(&shared, &method, &uri, &headers, &body) }
            }
        });
        let tx = crate::serve::serve(listener, app, format!("graph-emulator-{}", addr.port()))?;
        Ok(Self {
            shared,
            shutdown: Some(tx),
        })
    }

    /// `http://127.0.0.1:<port>/v1.0` (the Graph base URL to configure).
    pub fn base_url(&self) -> String {
        format!("{}/v1.0", self.shared.root)
    }

    /// Registers a device.
    pub fn add_device(&self, device: EmulatedDevice) {
        self.shared.lock().devices.push(device);
    }

    /// A device's current state, by tenant and object ID.
    pub fn device(&self, tenant_id: &str, object_id: &str) -> Option<EmulatedDevice> {
        self.shared
            .lock()
            .devices
            .iter()
            .find(|d| d.tenant_id == tenant_id && d.object_id == object_id)
            .cloned()
    }

    /// Sets a user's (transitive) group memberships.
    pub fn set_groups(&self, tenant_id: &str, user: &str, groups: Vec<String>) {
        self.shared
            .lock()
            .groups
            .insert((tenant_id.to_owned(), user.to_owned()), groups);
    }

    /// Sets the page size of `transitiveMemberOf` (default 100).
    pub fn set_page_size(&self, n: usize) {
        self.shared.lock().page_size = n.max(1);
    }

    /// Answers the next request with `fault` (faults queue up in order).
    pub fn push_fault(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// Answers the next `n` requests with `status` (a "storm").
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut s = self.shared.lock();
        for _ in 0..n {
            s.faults.push_back(Fault::status(status));
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<GraphRequestLog> {
        self.shared.lock().log.clone()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn graph_error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({"error": {"code": code, "message": message, "innerError": {"date": unix_now(), "request-id": "00000000-0000-4000-8000-000000000000"}}}),
    )
}

/// Verifies the bearer token: an RS256 signature by a testkit key, `aud` Graph, not
/// expired. Returns the claims.
fn verify(headers: &HeaderMap) -> Result<serde_json::Map<String, Value>, (u16, Value)> {
    let unauthorized = |m: &str| graph_error(401, "InvalidAuthenticationToken", m);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("Access token is empty."))?;
    let (input, sig) = token
        .rsplit_once('.')
        .ok_or_else(|| unauthorized("Invalid JWT."))?;
    let (head, claims) =
        entra::decode_unverified(token).ok_or_else(|| unauthorized("Invalid JWT."))?;
    let kid = head["kid"].as_str().unwrap_or_default();
    let key = entra::rotation_pool()
        .into_iter()
        .chain([&entra::KEY_FABRIKAM])
        .find(|k| k.kid() == kid)
        .ok_or_else(|| unauthorized("Signing key not found."))?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| unauthorized("Invalid signature."))?;
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        key.rsa_public_key_der(),
    )
    .verify(input.as_bytes(), &sig)
    .map_err(|_| unauthorized("Invalid signature."))?;
    let Value::Object(claims) = claims else {
        return Err(unauthorized("Invalid JWT."));
    };
    if claims.get("aud").and_then(Value::as_str) != Some(GRAPH_RESOURCE) {
        return Err(unauthorized("Invalid audience."));
    }
    if claims
        .get("exp")
        .and_then(Value::as_u64)
        .is_none_or(|e| e < unix_now())
    {
        return Err(unauthorized(
            "Lifetime validation failed, the token is expired.",
        ));
    }
    Ok(claims)
}

fn has_role(claims: &serde_json::Map<String, Value>, roles: &[&str]) -> bool {
    claims
        .get("roles")
        .and_then(Value::as_array)
        .is_some_and(|r| {
            r.iter()
                .any(|x| x.as_str().is_some_and(|x| roles.contains(&x)))
        })
}

fn handle(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response<Body> {
    let path = uri.path().to_owned();
    let query = uri.query().map(str::to_owned);
    let mut state = shared.lock();
    let (status, value, extra) = if let Some(f) = state.faults.pop_front() {
        let (s, v) = graph_error(f.status, "TooManyRequests", "Scripted fault.");
        let mut extra = Vec::new();
        if let Some(r) = f.retry_after {
            extra.push(("retry-after".to_owned(), r));
        }
        if let Some(ms) = f.retry_after_ms {
            extra.push(("x-ms-retry-after-ms".to_owned(), ms.to_string()));
        }
        (s, Some(v), extra)
    } else {
        match verify(headers) {
            Err((s, v)) => (s, Some(v), Vec::new()),
            Ok(claims) => {
                let tenant = claims
                    .get("tid")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let (s, v) = route(
                    &mut state,
                    &shared.root,
                    method,
                    &path,
                    query.as_deref(),
                    &claims,
                    &tenant,
                    body,
                );
                let entry_tenant = Some(tenant);
                state.log.push(GraphRequestLog {
                    method: method.to_string(),
                    path,
                    query,
                    body: String::from_utf8_lossy(body).into_owned(),
                    tenant: entry_tenant,
                    status: s,
                });
                return respond(s, v, Vec::new());
            }
        }
    };
    state.log.push(GraphRequestLog {
        method: method.to_string(),
        path,
        query,
        body: String::from_utf8_lossy(body).into_owned(),
        tenant: None,
        status,
    });
    respond(status, value, extra)
}

fn respond(status: u16, value: Option<Value>, extra: Vec<(String, String)>) -> Response<Body> {
    let mut b = Response::builder().status(status);
    for (k, v) in extra {
        b = b.header(k, v);
    }
    let body = match value {
        Some(v) => {
            b = b.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    b.body(body)
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn device_json(d: &EmulatedDevice) -> Value {
    json!({
        "id": d.object_id, "deviceId": d.device_id, "displayName": d.display_name,
        "isCompliant": d.is_compliant, "isManaged": d.is_managed,
        "operatingSystem": "Windows", "operatingSystemVersion": "10.0.26100.2605",
        "trustType": "AzureAd", "accountEnabled": true,
    })
}

#[allow(clippy::too_many_arguments)]
fn route(
    state: &mut State,
    root: &str,
    method: &Method,
    path: &str,
    query: Option<&str>,
    claims: &serde_json::Map<String, Value>,
    tenant: &str,
    body: &Bytes,
) -> (u16, Option<Value>) {
    let Some(rest) = path.strip_prefix("/v1.0/") else {
        let (s, v) = graph_error(400, "BadRequest", "Invalid version.");
        return (s, Some(v));
    };
    if let Some(key) = rest.strip_prefix("devices") {
        if !has_role(claims, &["Device.ReadWrite.All", "Directory.ReadWrite.All"]) {
            let (s, v) = graph_error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            );
            return (s, Some(v));
        }
        let found = if let Some(id) = key.strip_prefix('/') {
            state
                .devices
                .iter_mut()
                .find(|d| d.tenant_id == tenant && d.object_id == id)
        } else if let Some(id) = key
            .strip_prefix("(deviceId='")
            .and_then(|k| k.strip_suffix("')"))
        {
            state
                .devices
                .iter_mut()
                .find(|d| d.tenant_id == tenant && d.device_id == id)
        } else {
            let (s, v) = graph_error(400, "BadRequest", "Invalid key.");
            return (s, Some(v));
        };
        let Some(device) = found else {
            let (s, v) = graph_error(
                404,
                "Request_ResourceNotFound",
                "Resource does not exist or one of its queried reference-property objects are not present.",
            );
            return (s, Some(v));
        };
        return match *method {
            Method::GET => (200, Some(device_json(device))),
            Method::PATCH => {
                let Ok(Value::Object(update)) = serde_json::from_slice::<Value>(body) else {
                    let (s, v) = graph_error(400, "BadRequest", "Invalid JSON.");
                    return (s, Some(v));
                };
                for (k, v) in update {
                    match (k.as_str(), v.as_bool()) {
                        ("isManaged", Some(b)) => device.is_managed = Some(b),
                        ("isCompliant", Some(b)) => device.is_compliant = Some(b),
                        _ => {
                            let (s, v) =
                                graph_error(400, "BadRequest", "Property is not writable.");
                            return (s, Some(v));
                        }
                    }
                }
                (204, None)
            }
            _ => {
                let (s, v) = graph_error(405, "Request_BadRequest", "Method not allowed.");
                (s, Some(v))
            }
        };
    }
    if let Some(user_rest) = rest.strip_prefix("users/") {
        if !has_role(claims, &["GroupMember.Read.All", "Directory.Read.All"]) {
            let (s, v) = graph_error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            );
            return (s, Some(v));
        }
        let (user, action) = user_rest.split_once('/').unwrap_or((user_rest, ""));
        let user = user.replace("%40", "@");
        let Some(groups) = state
            .groups
            .get(&(tenant.to_owned(), user.clone()))
            .cloned()
        else {
            let (s, v) = graph_error(404, "Request_ResourceNotFound", "User does not exist.");
            return (s, Some(v));
        };
        return match (method.clone(), action) {
            (Method::POST, "getMemberObjects") => (200, Some(json!({"value": groups}))),
            (Method::GET, "transitiveMemberOf/microsoft.graph.group") => {
                let params: HashMap<String, String> =
                    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                        .into_owned()
                        .collect();
                let top: usize = params
                    .get("$top")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(100);
                let size = top.min(state.page_size).max(1);
                let skip: usize = params
                    .get("$skiptoken")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let page: Vec<Value> = groups
                    .iter()
                    .skip(skip)
                    .take(size)
                    .map(|g| json!({"@odata.type": "#microsoft.graph.group", "id": g}))
                    .collect();
                let mut v = json!({"@odata.context": format!("{root}/v1.0/$metadata#directoryObjects(id)"), "value": page});
                if skip + size < groups.len() {
                    v["@odata.nextLink"] = json!(format!(
                        "{root}/v1.0/users/{user}/transitiveMemberOf/microsoft.graph.group?$select=id&$top={top}&$skiptoken={}",
                        skip + size
                    ));
                }
                (200, Some(v))
            }
            _ => {
                let (s, v) = graph_error(400, "BadRequest", "Unsupported segment.");
                (s, Some(v))
            }
        };
    }
    let (s, v) = graph_error(400, "BadRequest", "Resource not found for the segment.");
    (s, Some(v))
}
