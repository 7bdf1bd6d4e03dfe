//! A sans-I/O cache of Entra signing keys and OIDC metadata.
//!
//! The cache never performs I/O. You drive it:
//!
//! * [`KeyCache::poll_fetch`] hands out the next fetch that is due as an
//!   `http::Request<()>` (a GET of OIDC metadata or of a JWKS document);
//! * you send it with any HTTP client and give the outcome back with
//!   [`KeyCache::handle_response`] or [`KeyCache::handle_failure`];
//! * [`KeyCache::next_due`] says when to poll again.
//!
//! The `reqwest` feature has a ready driver (`fetch::refresh_due`, `fetch::spawn_refresher`).
//!
//! # Cadence (Microsoft's signing-key rollover guidance)
//! * metadata is refreshed every 12 h ± 1 h (random jitter), keys about hourly;
//! * `Cache-Control: max-age` shortens either interval (never below one minute);
//!   `no-cache`/`no-store` refresh at that minimum;
//! * a token naming an unknown `kid` schedules an immediate key refresh, at most once per
//!   5 minutes per source;
//! * a failed fetch keeps the last-known-good keys and retries with exponential backoff
//!   (30 s doubling to 15 min);
//! * keys that could not be refreshed for 24 h stop being used (fail closed).
//!
//! # Sharing
//! `KeyCache` is `Send + Sync`; put it in an `Arc`. Validations read an immutable
//! snapshot and never wait for a fetch: only the brief swap of a new snapshot takes a
//! write lock, and no lock is held while a request is in flight.
//!
//! ```
//! use rustls_pki_types::UnixTime;
//! use std::time::Duration;
//! use winmdm_entra::{KeyCache, KeySource, TokenVersion};
//!
//! let cache = KeyCache::new(vec![KeySource::entra(
//!     KeySource::ENTRA_GLOBAL, "common", TokenVersion::V2)]);
//! let now = UnixTime::since_unix_epoch(Duration::from_secs(1_780_000_000));
//! let fetch = cache.poll_fetch(now).expect("metadata is due at start");
//! assert_eq!(fetch.request.uri(),
//!     "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration");
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use rustls_pki_types::UnixTime;
use serde_json::Value;

use crate::keys::{Jwk, KeySet};
use crate::{Error, TokenVersion};

/// Largest metadata document accepted.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// Returns a value in `0..=max` (seconds of jitter).
pub type JitterFn = Arc<dyn Fn(u64) -> u64 + Send + Sync>;

/// Timing of the cache. The defaults follow Microsoft's guidance.
#[derive(Clone)]
pub struct CacheConfig {
    /// Background key refresh interval (default 1 h).
    pub key_refresh: Duration,
    /// Keys not refreshed for this long are no longer used (default 24 h).
    pub key_max_age: Duration,
    /// Metadata refresh interval (default 12 h).
    pub metadata_refresh: Duration,
    /// Plus or minus this much random jitter on the metadata interval (default 1 h).
    pub metadata_jitter: Duration,
    /// Minimum spacing of unknown-`kid` refreshes per source (default 5 min).
    pub unknown_kid_interval: Duration,
    /// Shortest refresh interval, whatever `Cache-Control` says (default 60 s).
    pub min_refresh: Duration,
    /// First retry delay after a failure (default 30 s), doubling per failure.
    pub retry_min: Duration,
    /// Longest retry delay (default 15 min).
    pub retry_max: Duration,
    /// A fetch not answered within this time is considered lost (default 60 s).
    pub fetch_timeout: Duration,
    /// Jitter source; the default draws from the system CSPRNG.
    pub jitter: JitterFn,
}

impl fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheConfig")
            .field("key_refresh", &self.key_refresh)
            .field("key_max_age", &self.key_max_age)
            .field("metadata_refresh", &self.metadata_refresh)
            .field("metadata_jitter", &self.metadata_jitter)
            .field("unknown_kid_interval", &self.unknown_kid_interval)
            .field("min_refresh", &self.min_refresh)
            .field("retry_min", &self.retry_min)
            .field("retry_max", &self.retry_max)
            .field("fetch_timeout", &self.fetch_timeout)
            .finish_non_exhaustive()
    }
}

fn system_jitter(max: u64) -> u64 {
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() || max == 0 {
        return max / 2;
    }
    u64::from_le_bytes(bytes) % (max + 1)
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            key_refresh: Duration::from_secs(3600),
            key_max_age: Duration::from_secs(24 * 3600),
            metadata_refresh: Duration::from_secs(12 * 3600),
            metadata_jitter: Duration::from_secs(3600),
            unknown_kid_interval: Duration::from_secs(300),
            min_refresh: Duration::from_secs(60),
            retry_min: Duration::from_secs(30),
            retry_max: Duration::from_secs(900),
            fetch_timeout: Duration::from_secs(60),
            jitter: Arc::new(system_jitter),
        }
    }
}

impl CacheConfig {
    /// Replaces the jitter source (tests use a fixed value).
    pub fn with_jitter(mut self, jitter: impl Fn(u64) -> u64 + Send + Sync + 'static) -> Self {
        self.jitter = Arc::new(jitter);
        self
    }
}

/// Where keys for one issuer come from.
#[derive(Debug, Clone)]
pub struct KeySource {
    version: TokenVersion,
    kind: SourceKind,
}

#[derive(Debug, Clone)]
enum SourceKind {
    Metadata { url: String },
    Static { issuer: String, keys: KeySet },
}

impl KeySource {
    /// The global Entra authority.
    pub const ENTRA_GLOBAL: &'static str = "https://login.microsoftonline.com";

    /// Entra OIDC metadata at `authority` (for example [`Self::ENTRA_GLOBAL`], a national
    /// cloud, or a test emulator) for `tenant` — `common`, `organizations` (tenant-
    /// independent: the issuer is a `{tenantid}` template) or one tenant ID.
    pub fn entra(authority: &str, tenant: &str, version: TokenVersion) -> Self {
        let authority = authority.trim_end_matches('/');
        let url = match version {
            TokenVersion::V2 => {
                format!("{authority}/{tenant}/v2.0/.well-known/openid-configuration")
            }
            TokenVersion::V1 => format!("{authority}/{tenant}/.well-known/openid-configuration"),
        };
        Self::metadata(url, version)
    }

    /// OIDC metadata at `url`, for tokens of `version`.
    pub fn metadata(url: impl Into<String>, version: TokenVersion) -> Self {
        Self {
            version,
            kind: SourceKind::Metadata { url: url.into() },
        }
    }

    /// A fixed JWKS document with a fixed `issuer` (exact, or a template containing
    /// `{tenantid}`). Never refreshed: for tests, air-gapped tools and the CLI.
    ///
    /// # Errors
    /// As [`KeySet::parse`].
    pub fn static_jwks(
        document: &[u8],
        issuer: impl Into<String>,
        version: TokenVersion,
    ) -> Result<Self, Error> {
        let (keys, _) = KeySet::parse(document)?;
        Ok(Self {
            version,
            kind: SourceKind::Static {
                issuer: issuer.into(),
                keys,
            },
        })
    }

    /// The token version this source serves.
    pub fn version(&self) -> TokenVersion {
        self.version
    }
}

/// What a fetch is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FetchKind {
    /// OIDC metadata.
    Metadata,
    /// A JWKS document.
    Jwks,
}

/// Identifies an outstanding fetch; hand it back with the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FetchId {
    source: usize,
    kind: FetchKind,
    generation: u64,
}

impl FetchId {
    /// What is being fetched.
    pub fn kind(&self) -> FetchKind {
        self.kind
    }
}

/// A fetch to perform.
#[derive(Debug)]
pub struct FetchRequest {
    /// Give this back with the outcome.
    pub id: FetchId,
    /// The GET to send.
    pub request: http::Request<()>,
}

/// Diagnostic view of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceStatus {
    /// Token version served.
    pub version: TokenVersion,
    /// The metadata URL (None for a static source).
    pub metadata_url: Option<String>,
    /// The issuer from metadata, once known.
    pub issuer: Option<String>,
    /// Key IDs currently usable.
    pub kids: Vec<String>,
    /// Consecutive failed fetches.
    pub failures: u32,
}

#[derive(Debug)]
struct Snapshot {
    issuer: String,
    keys: KeySet,
    /// Unix seconds after which these keys are no longer used.
    expires_at: u64,
}

#[derive(Debug, Default)]
struct SlotState {
    issuer: Option<String>,
    jwks_uri: Option<String>,
    metadata_due: u64,
    keys_due: u64,
    refresh_wanted: bool,
    last_kid_refresh: Option<u64>,
    in_flight: Option<(FetchKind, u64, u64)>,
    failures: u32,
    retry_at: u64,
    generation: u64,
}

#[derive(Debug)]
struct Slot {
    source: KeySource,
    state: Mutex<SlotState>,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_snapshot(&self, snap: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(snap));
    }
}

/// The key cache. See the module docs.
#[derive(Debug)]
pub struct KeyCache {
    slots: Vec<Slot>,
    config: CacheConfig,
}

/// The outcome of resolving a token's key.
pub(crate) struct Resolved {
    pub(crate) key: Arc<Jwk>,
    pub(crate) tenant_independent: bool,
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

/// `max-age` from Cache-Control (`Some(0)` for `no-cache`/`no-store`).
fn max_age(headers: &http::HeaderMap) -> Option<u64> {
    let value = headers.get(http::header::CACHE_CONTROL)?.to_str().ok()?;
    let mut age = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        if directive.eq_ignore_ascii_case("no-cache") || directive.eq_ignore_ascii_case("no-store")
        {
            return Some(0);
        }
        if let Some((name, v)) = directive.split_once('=')
            && name.trim().eq_ignore_ascii_case("max-age")
        {
            age = v.trim().trim_matches('"').parse().ok();
        }
    }
    age
}

impl KeyCache {
    /// A cache over `sources` with the default timing.
    pub fn new(sources: Vec<KeySource>) -> Self {
        Self::with_config(sources, CacheConfig::default())
    }

    /// A cache over `sources` with `config`.
    pub fn with_config(sources: Vec<KeySource>, config: CacheConfig) -> Self {
        let slots = sources
            .into_iter()
            .map(|source| {
                let snapshot = match &source.kind {
                    SourceKind::Static { issuer, keys } => Some(Arc::new(Snapshot {
                        issuer: issuer.clone(),
                        keys: keys.clone(),
                        expires_at: u64::MAX,
                    })),
                    SourceKind::Metadata { .. } => None,
                };
                Slot {
                    source,
                    state: Mutex::new(SlotState::default()),
                    snapshot: RwLock::new(snapshot),
                }
            })
            .collect();
        Self { slots, config }
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    fn due(&self, state: &SlotState, now: u64) -> Option<FetchKind> {
        if let Some((_, started, _)) = state.in_flight
            && now < started + secs(self.config.fetch_timeout)
        {
            return None;
        }
        let backoff_over = now >= state.retry_at;
        if state.jwks_uri.is_none() || now >= state.metadata_due {
            return backoff_over.then_some(FetchKind::Metadata);
        }
        if state.refresh_wanted || (backoff_over && now >= state.keys_due) {
            return Some(FetchKind::Jwks);
        }
        None
    }

    /// The next fetch that is due at `now`, if any. It is marked in flight until its
    /// outcome is handed back (or [`CacheConfig::fetch_timeout`] passes).
    pub fn poll_fetch(&self, now: UnixTime) -> Option<FetchRequest> {
        let now = now.as_secs();
        for (index, slot) in self.slots.iter().enumerate() {
            let SourceKind::Metadata { url } = &slot.source.kind else {
                continue;
            };
            let mut state = slot.lock();
            let Some(kind) = self.due(&state, now) else {
                continue;
            };
            let uri = match kind {
                FetchKind::Metadata => url.clone(),
                FetchKind::Jwks => state.jwks_uri.clone().unwrap_or_default(),
            };
            let Ok(request) = http::Request::get(uri)
                .header(http::header::ACCEPT, "application/json")
                .body(())
            else {
                // An unusable URL can only be fixed by configuration; back off.
                state.failures += 1;
                state.retry_at = now + secs(self.config.retry_max);
                continue;
            };
            state.generation += 1;
            state.in_flight = Some((kind, now, state.generation));
            if kind == FetchKind::Jwks {
                state.refresh_wanted = false;
            }
            return Some(FetchRequest {
                id: FetchId {
                    source: index,
                    kind,
                    generation: state.generation,
                },
                request,
            });
        }
        None
    }

    /// When the next fetch becomes due (`None` when nothing will ever be fetched: only
    /// static sources). May be in the past.
    pub fn next_due(&self, now: UnixTime) -> Option<UnixTime> {
        let now = now.as_secs();
        let mut next: Option<u64> = None;
        for slot in &self.slots {
            if !matches!(slot.source.kind, SourceKind::Metadata { .. }) {
                continue;
            }
            let state = slot.lock();
            let at = if let Some((_, started, _)) = state.in_flight {
                started + secs(self.config.fetch_timeout)
            } else if state.jwks_uri.is_none() {
                state.retry_at
            } else if state.refresh_wanted {
                now
            } else {
                state.retry_at.max(state.metadata_due.min(state.keys_due))
            };
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        next.map(|s| UnixTime::since_unix_epoch(Duration::from_secs(s)))
    }

    fn fail(&self, state: &mut SlotState, now: u64) {
        state.in_flight = None;
        state.failures = state.failures.saturating_add(1);
        let exp = state.failures.saturating_sub(1).min(16);
        let delay = secs(self.config.retry_min)
            .saturating_mul(1 << exp)
            .min(secs(self.config.retry_max));
        state.retry_at = now + delay;
    }

    /// Records that the fetch `id` failed in transport (connection refused, timeout, …).
    /// The last-known-good keys stay in use; the fetch is retried with backoff.
    pub fn handle_failure(&self, id: FetchId, now: UnixTime, reason: &str) {
        let Some(slot) = self.slots.get(id.source) else {
            return;
        };
        let mut state = slot.lock();
        if state.in_flight.map(|f| f.2) != Some(id.generation) {
            return;
        }
        tracing::warn!(kind = ?id.kind, reason, "Entra key fetch failed; keeping last-known-good keys");
        self.fail(&mut state, now.as_secs());
    }

    /// Hands back the response to fetch `id`. A non-2xx status or an unusable document
    /// counts as a failure (last-known-good keys stay in use) and is returned as an error
    /// for logging. A response to a superseded fetch is ignored.
    pub fn handle_response<B: AsRef<[u8]>>(
        &self,
        id: FetchId,
        now: UnixTime,
        response: &http::Response<B>,
    ) -> Result<(), Error> {
        let now = now.as_secs();
        let Some(slot) = self.slots.get(id.source) else {
            return Ok(());
        };
        let mut state = slot.lock();
        if state.in_flight.map(|f| f.2) != Some(id.generation) {
            return Ok(());
        }
        let what = match id.kind {
            FetchKind::Metadata => "OIDC metadata",
            FetchKind::Jwks => "JWKS",
        };
        if !response.status().is_success() {
            self.fail(&mut state, now);
            return Err(Error::Fetch {
                what,
                reason: format!("HTTP {}", response.status().as_u16()),
            });
        }
        let body = response.body().as_ref();
        let cc = max_age(response.headers());
        let interval = |normal: u64| {
            cc.map_or(normal, |age| age.min(normal))
                .max(secs(self.config.min_refresh))
        };
        match id.kind {
            FetchKind::Metadata => match parse_metadata(body) {
                Ok((issuer, jwks_uri)) => {
                    let jitter = secs(self.config.metadata_jitter);
                    let normal = secs(self.config.metadata_refresh).saturating_sub(jitter)
                        + (self.config.jitter)(2 * jitter).min(2 * jitter);
                    state.metadata_due = now + interval(normal);
                    if state.jwks_uri.as_deref() != Some(jwks_uri.as_str())
                        || state.issuer.as_deref() != Some(issuer.as_str())
                    {
                        state.keys_due = now;
                    }
                    state.issuer = Some(issuer);
                    state.jwks_uri = Some(jwks_uri);
                    state.in_flight = None;
                    state.failures = 0;
                    state.retry_at = 0;
                    Ok(())
                }
                Err(e) => {
                    self.fail(&mut state, now);
                    Err(e)
                }
            },
            FetchKind::Jwks => match KeySet::parse(body) {
                Ok((keys, skipped)) if !keys.is_empty() => {
                    if skipped > 0 {
                        tracing::warn!(skipped, "JWKS contained unusable keys");
                    }
                    state.keys_due = now + interval(secs(self.config.key_refresh));
                    state.in_flight = None;
                    state.failures = 0;
                    state.retry_at = 0;
                    let issuer = state.issuer.clone().unwrap_or_default();
                    drop(state);
                    slot.set_snapshot(Snapshot {
                        issuer,
                        keys,
                        expires_at: now + secs(self.config.key_max_age),
                    });
                    Ok(())
                }
                Ok(_) => {
                    self.fail(&mut state, now);
                    Err(Error::InvalidDocument {
                        document: "JWKS",
                        reason: "no usable keys".to_owned(),
                    })
                }
                Err(e) => {
                    self.fail(&mut state, now);
                    Err(e)
                }
            },
        }
    }

    /// Finds the key for a token: the source of `version` whose issuer (after `{tenantid}`
    /// substitution with `tid`) is exactly `iss`, then `kid` in its key set.
    pub(crate) fn resolve(
        &self,
        version: TokenVersion,
        tid: &str,
        iss: &str,
        kid: &str,
        now: u64,
    ) -> Result<Resolved, Error> {
        let mut loaded = false;
        let mut unknown_kid = false;
        let mut expected_first: Option<String> = None;
        for (index, slot) in self.slots.iter().enumerate() {
            if slot.source.version != version {
                continue;
            }
            let Some(snap) = slot.snapshot() else {
                continue;
            };
            if now > snap.expires_at {
                continue;
            }
            loaded = true;
            let tenant_independent = snap.issuer.contains("{tenantid}");
            if !crate::validator::matches_template(&snap.issuer, tid, iss) {
                if expected_first.is_none() {
                    expected_first = Some(snap.issuer.replace("{tenantid}", tid));
                }
                continue;
            }
            match snap.keys.get(kid) {
                Some(key) => {
                    return Ok(Resolved {
                        key: key.clone(),
                        tenant_independent,
                    });
                }
                None => {
                    unknown_kid = true;
                    self.note_unknown_kid(index, now);
                }
            }
        }
        if unknown_kid {
            Err(Error::UnknownKid {
                kid: kid.to_owned(),
            })
        } else if !loaded {
            Err(Error::KeysUnavailable { version })
        } else {
            Err(Error::IssuerMismatch {
                expected: expected_first.unwrap_or_default(),
                actual: iss.to_owned(),
            })
        }
    }

    fn note_unknown_kid(&self, index: usize, now: u64) {
        let Some(slot) = self.slots.get(index) else {
            return;
        };
        if !matches!(slot.source.kind, SourceKind::Metadata { .. }) {
            return;
        }
        let mut state = slot.lock();
        let allowed = state
            .last_kid_refresh
            .is_none_or(|t| now >= t + secs(self.config.unknown_kid_interval));
        if allowed && state.jwks_uri.is_some() {
            state.refresh_wanted = true;
            state.last_kid_refresh = Some(now);
        }
    }

    /// How many key sources the cache has.
    pub fn source_count(&self) -> usize {
        self.slots.len()
    }

    /// A diagnostic view of every source.
    pub fn status(&self) -> Vec<SourceStatus> {
        self.slots
            .iter()
            .map(|slot| {
                let state = slot.lock();
                let snap = slot.snapshot();
                SourceStatus {
                    version: slot.source.version,
                    metadata_url: match &slot.source.kind {
                        SourceKind::Metadata { url } => Some(url.clone()),
                        SourceKind::Static { .. } => None,
                    },
                    issuer: snap
                        .as_ref()
                        .map(|s| s.issuer.clone())
                        .or_else(|| state.issuer.clone()),
                    kids: snap
                        .map(|s| s.keys.kids().into_iter().map(str::to_owned).collect())
                        .unwrap_or_default(),
                    failures: state.failures,
                }
            })
            .collect()
    }
}

/// Plain `http://` is accepted only for loopback hosts (test emulators).
fn is_loopback_http(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority
        .rsplit_once(':')
        .filter(|(h, port)| !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(h, _)| h);
    host == "localhost" || host == "[::1]" || host.starts_with("127.")
}

fn parse_metadata(body: &[u8]) -> Result<(String, String), Error> {
    let invalid = |reason: &str| Error::InvalidDocument {
        document: "OIDC metadata",
        reason: reason.to_owned(),
    };
    if body.len() > MAX_METADATA_BYTES {
        return Err(invalid("document too large"));
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| invalid("not JSON"))?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| invalid(&format!("no `{name}`")))
    };
    let issuer = field("issuer")?;
    let jwks_uri = field("jwks_uri")?;
    if !issuer.starts_with("https://") {
        return Err(invalid("issuer is not an https URL"));
    }
    if !(jwks_uri.starts_with("https://") || is_loopback_http(&jwks_uri)) {
        return Err(invalid("jwks_uri is not an https URL"));
    }
    Ok((issuer, jwks_uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        let mut h = http::HeaderMap::new();
        assert_eq!(max_age(&h), None);
        h.insert(
            http::header::CACHE_CONTROL,
            "public, max-age=1234".parse().unwrap(),
        );
        assert_eq!(max_age(&h), Some(1234));
        h.insert(http::header::CACHE_CONTROL, "no-store".parse().unwrap());
        assert_eq!(max_age(&h), Some(0));
    }
}
