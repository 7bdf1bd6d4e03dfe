//! The device-facing endpoints: every route is winmdm-endpoint's [`Endpoint`]; this module
//! only moves bytes between axum and it (body limits, the TLS client certificate, a
//! blocking thread for storage, the management concurrency limit) and serves `/healthz`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::routing::{any, get};
use tokio::sync::Semaphore;
use winmdm_endpoint::{Endpoint, Input, Route};
use winmdm_graph::GraphClient;

use crate::config::Config;
use crate::pki::Ca;
use crate::store::Store;

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
    /// Storage (the endpoint's too).
    pub store: Arc<dyn Store>,
    /// The issuing CA.
    pub ca: Ca,
    /// The composed device endpoint.
    pub endpoint: Arc<Endpoint>,
    pub(crate) http: reqwest::Client,
    pub(crate) graph: GraphClient,
    /// Management requests in flight (a permit each; none left → 429).
    pub in_flight: Arc<Semaphore>,
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
}

/// Every device route: the body (capped), the client certificate, then the endpoint on a
/// blocking thread (it blocks on storage, and on Entra when it needs keys).
async fn device_route(State(app): State<Arc<App>>, req: Request<Body>) -> Response<Body> {
    let route = app.endpoint.route(req.uri().path());
    let _permit = if route == Some(Route::Management) {
        match app.in_flight.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                let mut r = respond(StatusCode::TOO_MANY_REQUESTS, None, Vec::new());
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(app.config.management.retry_after_secs),
                );
                return r;
            }
        }
    } else {
        None
    };
    let peer = req
        .extensions()
        .get::<PeerCertificate>()
        .and_then(|p| p.0.clone());
    let (parts, body) = req.into_parts();
    // A body that does not arrive in time is answered 408 and its connection closed.
    let body = match tokio::time::timeout(
        app.config.edge.body_timeout(),
        axum::body::to_bytes(body, MAX_BODY),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return respond(StatusCode::PAYLOAD_TOO_LARGE, None, Vec::new()),
        Err(_) => {
            let mut r = respond(
                StatusCode::REQUEST_TIMEOUT,
                Some("text/plain; charset=utf-8"),
                b"the request body did not arrive in time\n".to_vec(),
            );
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    };
    // The body is here: the server is working for this connection now.
    let _working = parts
        .extensions
        .get::<crate::edge::ConnectionActivity>()
        .map(crate::edge::ConnectionActivity::working);
    let (endpoint, http) = (app.endpoint.clone(), app.http.clone());
    let runtime = tokio::runtime::Handle::current();
    let response = tokio::task::spawn_blocking(move || {
        let input = Input::new(now()).with_client_certificate(peer.as_deref().map(Vec::as_slice));
        endpoint.handle_with_keys(&parts, &body, input, |request| {
            runtime.block_on(winmdm_entra::fetch::send(
                &http,
                request.map(|()| Vec::new()),
            ))
        })
    })
    .await;
    match response {
        Ok(r) => r.map(Body::from),
        Err(_) => respond(StatusCode::INTERNAL_SERVER_ERROR, None, Vec::new()),
    }
}

/// Fault injection for the crash tests (feature `fault-injection`): when
/// `WINMDM_CRASH_POINT` names this point, the process announces it on standard error and
/// waits to be killed.
/// `WINMDM_CRASH_POINT` is `name` (the first time it is reached) or `name#n` (the n-th).
#[cfg(feature = "fault-injection")]
pub(crate) fn crash_point(name: &'static str) {
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
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
}

/// Liveness and storage reachability, in constant time: one trivial storage read, nothing
/// that grows with the fleet, nothing secret.
async fn healthz(State(app): State<Arc<App>>) -> Response<Body> {
    match app.db(|s| s.ping()).await.and_then(|r| r) {
        Ok(()) => respond(
            StatusCode::OK,
            Some("application/json"),
            br#"{"status":"ok","storage":"ok"}"#.to_vec(),
        ),
        Err(e) => {
            tracing::error!(error = %e, "health check: storage unreachable");
            respond(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("application/json"),
                br#"{"status":"unavailable","storage":"unreachable"}"#.to_vec(),
            )
        }
    }
}

/// The device-facing routes.
pub fn router(app: Arc<App>) -> Router {
    let p = app.endpoint.config().paths.clone();
    Router::new()
        .route(&p.terms_of_use, any(device_route))
        .route(&p.discovery, any(device_route))
        .route(&p.policy, any(device_route))
        .route(&p.enrollment, any(device_route))
        .route(&p.management, any(device_route))
        .route("/healthz", get(healthz))
        .fallback(|| async { respond(StatusCode::NOT_FOUND, None, Vec::new()) })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}
