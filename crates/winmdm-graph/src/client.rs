//! The async client (feature `reqwest`): winmdm-entra's app-only token cache plus the
//! builders, retries by [`RetryPolicy`], a timeout per attempt, and tracing spans that
//! name the call and tenant but never a token.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::Instrument as _;
use winmdm_entra::app_token::AppTokenProvider;

use crate::api::{Compliance, DeviceRef, GraphApi, GraphRequest, Operation};
use crate::response::{self, Device, GraphError, MAX_BODY};
use crate::retry::RetryPolicy;

/// The most pages [`GraphClient::user_group_ids`] follows.
pub const MAX_PAGES: usize = 1000;

/// A Graph client for an MDM: report compliance, look devices up, read group membership.
///
/// Credentials are per tenant as `AppTokenProvider` holds them: one multi-tenant app for a
/// cloud MDM (`AppTokenProvider::new`), or a client ID and keys per customer tenant for
/// on-premises installs (`AppTokenProvider::per_tenant(..).with_tenant(..)`); several live
/// credentials per app for rollover. Concurrent calls share one token request per tenant.
#[derive(Debug, Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    api: GraphApi,
    tokens: Arc<AppTokenProvider>,
    retry: RetryPolicy,
    timeout: Duration,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A number in `[0, 1)` for jitter (not for anything secret).
fn jitter() -> f64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

impl GraphClient {
    /// A client calling `api` with tokens from `tokens` (whose scope must be the Graph
    /// `.default` scope of the same cloud).
    pub fn new(http: reqwest::Client, api: GraphApi, tokens: AppTokenProvider) -> Self {
        Self {
            http,
            api,
            tokens: Arc::new(tokens),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        }
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the timeout of each attempt (default 30 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The endpoint.
    pub fn api(&self) -> &GraphApi {
        &self.api
    }

    async fn attempt(
        &self,
        tenant: &str,
        mut req: GraphRequest,
    ) -> Result<http::Response<Vec<u8>>, GraphError> {
        let token = self.tokens.token(tenant).await.map_err(GraphError::Token)?;
        req.authorize(token.secret().expose())?;
        let mut request = reqwest::Request::try_from(req.request)
            .map_err(|e| GraphError::Transport(e.to_string()))?;
        *request.timeout_mut() = Some(self.timeout);
        let resp = self
            .http
            .execute(request)
            .await
            .map_err(|e| GraphError::Transport(e.without_url().to_string()))?;
        if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(GraphError::Malformed("body too large".into()));
        }
        let mut builder = http::Response::builder().status(resp.status());
        for (k, v) in resp.headers() {
            builder = builder.header(k, v);
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| GraphError::Transport(e.without_url().to_string()))?;
        if body.len() > MAX_BODY {
            return Err(GraphError::Malformed("body too large".into()));
        }
        builder
            .body(body.to_vec())
            .map_err(|e| GraphError::Transport(e.to_string()))
    }

    /// Sends the request `make` builds, retrying transient failures as the policy allows.
    /// Returns any response that is not transient (the caller's parser types it).
    async fn send(
        &self,
        tenant: &str,
        make: impl Fn() -> Result<GraphRequest, GraphError>,
    ) -> Result<http::Response<Vec<u8>>, GraphError> {
        let start = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let req = make()?;
            let idempotent = req.idempotent;
            let span =
                tracing::debug_span!("graph_attempt", op = ?req.operation, attempt = attempts);
            let outcome = self.attempt(tenant, req).instrument(span).await;
            let error = match outcome {
                Ok(resp) => {
                    let status = resp.status();
                    tracing::debug!(status = status.as_u16(), attempts, "graph response");
                    if status.as_u16() == 429 || status.is_server_error() {
                        response::error_for(&resp, unix_now())
                    } else {
                        return Ok(resp);
                    }
                }
                Err(e @ (GraphError::Token(_) | GraphError::InvalidArgument(_))) => return Err(e),
                Err(e) => e,
            };
            match self
                .retry
                .delay(&error, idempotent, attempts, start.elapsed(), jitter())
            {
                Some(wait) => {
                    tracing::info!(attempts, wait_ms = wait.as_millis() as u64, error = %error, "graph retry");
                    tokio::time::sleep(wait).await;
                }
                None if attempts > 1 => {
                    return Err(GraphError::RetriesExhausted {
                        attempts,
                        last: Box::new(error),
                    });
                }
                None => return Err(error),
            }
        }
    }

    /// Reports a device's managed and compliance state (`PATCH`, 204).
    ///
    /// # Errors
    /// [`GraphError`]: not found, refused, throttled past the policy, token failures.
    pub async fn report_compliance(
        &self,
        tenant: &str,
        device: DeviceRef<'_>,
        compliance: Compliance,
    ) -> Result<(), GraphError> {
        let span = tracing::info_span!("graph", op = ?Operation::UpdateDevice, tenant = %tenant);
        async {
            let resp = self
                .send(tenant, || self.api.update_device(device, &compliance))
                .await?;
            response::parse_update(&resp, unix_now())
        }
        .instrument(span)
        .await
    }

    /// Looks a device up.
    ///
    /// # Errors
    /// [`GraphError`].
    pub async fn device(&self, tenant: &str, device: DeviceRef<'_>) -> Result<Device, GraphError> {
        let span = tracing::info_span!("graph", op = ?Operation::GetDevice, tenant = %tenant);
        async {
            let resp = self.send(tenant, || self.api.get_device(device)).await?;
            response::parse_device(&resp, unix_now())
        }
        .instrument(span)
        .await
    }

    /// Looks a device up by its Entra device ID.
    ///
    /// # Errors
    /// [`GraphError`].
    pub async fn device_by_device_id(
        &self,
        tenant: &str,
        device_id: &str,
    ) -> Result<Device, GraphError> {
        self.device(tenant, DeviceRef::DeviceId(device_id)).await
    }

    /// The IDs of every group the user belongs to, directly or not
    /// (`transitiveMemberOf`, all pages).
    ///
    /// # Errors
    /// [`GraphError`]; [`GraphError::Malformed`] past [`MAX_PAGES`] pages.
    pub async fn user_group_ids(
        &self,
        tenant: &str,
        user: &str,
    ) -> Result<Vec<String>, GraphError> {
        let span =
            tracing::info_span!("graph", op = ?Operation::TransitiveGroups, tenant = %tenant);
        async {
            let mut ids = Vec::new();
            let resp = self
                .send(tenant, || self.api.transitive_groups(user, 999))
                .await?;
            let mut page = response::parse_id_page(&resp, unix_now())?;
            for _ in 0..MAX_PAGES {
                ids.append(&mut page.ids);
                let Some(next) = page.next_link.take() else {
                    return Ok(ids);
                };
                let resp = self
                    .send(tenant, || {
                        self.api.next_page(&next, Operation::TransitiveGroups)
                    })
                    .await?;
                page = response::parse_id_page(&resp, unix_now())?;
            }
            Err(GraphError::Malformed("too many pages".into()))
        }
        .instrument(span)
        .await
    }

    /// The IDs `getMemberObjects` returns (groups, roles, units; all pages).
    ///
    /// # Errors
    /// [`GraphError`].
    pub async fn member_object_ids(
        &self,
        tenant: &str,
        user: &str,
        security_enabled_only: bool,
    ) -> Result<Vec<String>, GraphError> {
        let span = tracing::info_span!("graph", op = ?Operation::MemberObjects, tenant = %tenant);
        async {
            let resp = self
                .send(tenant, || {
                    self.api.member_objects(user, security_enabled_only)
                })
                .await?;
            let mut page = response::parse_id_page(&resp, unix_now())?;
            let mut ids = std::mem::take(&mut page.ids);
            let mut pages = 1;
            while let Some(next) = page.next_link.take() {
                pages += 1;
                if pages > MAX_PAGES {
                    return Err(GraphError::Malformed("too many pages".into()));
                }
                let resp = self
                    .send(tenant, || {
                        self.api.next_page(&next, Operation::MemberObjects)
                    })
                    .await?;
                page = response::parse_id_page(&resp, unix_now())?;
                ids.append(&mut page.ids);
            }
            Ok(ids)
        }
        .instrument(span)
        .await
    }
}
