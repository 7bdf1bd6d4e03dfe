//! The Terms-of-Use flow: `begin` (GET) → pages → `resume` (POST) → Accept, Decline or an
//! error redirect.
//!
//! Nothing is stored on the server between pages: every form carries one sealed,
//! expiring state token holding the validated request (redirect target,
//! `client-request-id`, ownership, tenant, user, theme) and the vendor's progress through
//! its extra steps. Handlers never read the redirect target, the mode or the identity from
//! form fields, and a decision can only be posted from the terms page itself.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::request::Parts;
use http::{Response, StatusCode};
use rustls_pki_types::UnixTime;
use serde::{Deserialize, Serialize};
use winmdm_enroll::enrollment_data::{
    EnrollmentData, EnrollmentDataError, EnrollmentDataVerifier, TokenIdentity,
};
use winmdm_entra::Validator;

use crate::outcome::{self, TouError, Wire};
use crate::page::{Frame, PageConfig, StepPage, Terms};
use crate::policy::{AllowedRedirect, RedirectPolicy};
use crate::request::{self, Rejection, Scenario, WindowsVersion};
use crate::seal::{Entropy, Keyring, OpenError};

/// The largest form body `resume` reads.
pub const MAX_FORM_BYTES: usize = 16 * 1024;
/// The most bytes of vendor progress a state token carries.
pub const MAX_PROGRESS_BYTES: usize = 2048;
/// The most bytes of vendor data an `OpaqueBlob` carries (it travels in a URL).
pub const MAX_BLOB_DATA_BYTES: usize = 1024;

const STATE: &str = "state";
const BLOB: &str = "blob";

/// Server policy for the ToU endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TouConfig {
    /// Supported `api-version`s. Default `["1.0"]` (the only version ever documented).
    pub api_versions: Vec<String>,
    /// Allowed `redirect_uri`s. Default: `ms-appx-web://` only.
    pub redirect_policy: RedirectPolicy,
    /// How long a page's state stays valid. Default 30 minutes.
    pub state_ttl_secs: u64,
    /// How long an `OpaqueBlob` stays valid (enrollment follows at once). Default 1 hour.
    pub blob_ttl_secs: u64,
    /// Presentation.
    pub page: PageConfig,
    /// Add `client-request-id` to the redirects (the doc recommends it). Default true.
    pub echo_client_request_id: bool,
}

impl Default for TouConfig {
    fn default() -> Self {
        Self {
            api_versions: vec!["1.0".to_owned()],
            redirect_policy: RedirectPolicy::default(),
            state_ttl_secs: 30 * 60,
            blob_ttl_secs: 60 * 60,
            page: PageConfig::default(),
            echo_client_request_id: true,
        }
    }
}

impl TouConfig {
    /// Sets the `redirect_uri` policy.
    #[must_use]
    pub fn with_redirect_policy(mut self, policy: RedirectPolicy) -> Self {
        self.redirect_policy = policy;
        self
    }

    /// Sets the presentation.
    #[must_use]
    pub fn with_page(mut self, page: PageConfig) -> Self {
        self.page = page;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    Start,
    Terms,
    Step(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StateV1 {
    v: u8,
    exp: u64,
    ruri: AllowedRedirect,
    crid: String,
    org: bool,
    tid: String,
    oid: String,
    upn: Option<String>,
    sc: Scenario,
    win: Option<WindowsVersion>,
    path: String,
    phase: Phase,
    progress: BTreeMap<String, String>,
    data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BlobV1 {
    v: u8,
    tid: String,
    oid: String,
    crid: String,
    iat: u64,
    exp: u64,
    org: bool,
    data: Option<String>,
}

/// Vendor data over its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("vendor data over {limit} bytes")]
pub struct TooLarge {
    /// The limit.
    pub limit: usize,
}

/// A validated ToU request and the vendor's progress: what every page of the flow knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TouContext {
    s: StateV1,
}

impl TouContext {
    /// The allowed `redirect_uri`.
    pub fn redirect_uri(&self) -> &str {
        self.s.ruri.as_str()
    }

    /// The `client-request-id` (the request's, or a generated one).
    pub fn client_request_id(&self) -> &str {
        &self.s.crid
    }

    /// `mode=azureadjoin`: organization-owned, no Decline.
    pub fn organization_owned(&self) -> bool {
        self.s.org
    }

    /// The user's tenant (`tid`).
    pub fn tenant_id(&self) -> &str {
        &self.s.tid
    }

    /// The user's object ID (`oid`).
    pub fn object_id(&self) -> &str {
        &self.s.oid
    }

    /// The user's UPN, when the token carries one.
    pub fn upn(&self) -> Option<&str> {
        self.s.upn.as_deref()
    }

    /// OOBE or Settings.
    pub fn scenario(&self) -> Scenario {
        self.s.sc
    }

    /// The Windows version, when the agent said.
    pub fn windows(&self) -> Option<&WindowsVersion> {
        self.s.win.as_ref()
    }

    /// A value the vendor stored in an earlier step.
    pub fn progress(&self, key: &str) -> Option<&str> {
        self.s.progress.get(key).map(String::as_str)
    }

    /// Stores a value for later steps (carried sealed in the page state).
    ///
    /// # Errors
    /// [`TooLarge`] beyond [`MAX_PROGRESS_BYTES`] in all.
    pub fn set_progress(&mut self, key: &str, value: &str) -> Result<(), TooLarge> {
        let mut next = self.s.progress.clone();
        next.insert(key.to_owned(), value.to_owned());
        let size: usize = next.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_PROGRESS_BYTES {
            return Err(TooLarge {
                limit: MAX_PROGRESS_BYTES,
            });
        }
        self.s.progress = next;
        Ok(())
    }

    /// Data for the `OpaqueBlob` (read back at enrollment as
    /// [`EnrollmentData::vendor_data`]).
    ///
    /// # Errors
    /// [`TooLarge`] beyond [`MAX_BLOB_DATA_BYTES`].
    pub fn set_blob_data(&mut self, data: Option<String>) -> Result<(), TooLarge> {
        if data.as_ref().is_some_and(|d| d.len() > MAX_BLOB_DATA_BYTES) {
            return Err(TooLarge {
                limit: MAX_BLOB_DATA_BYTES,
            });
        }
        self.s.data = data;
        Ok(())
    }
}

/// A form posted back from a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// Accept on the terms page: answer with [`TermsOfUse::accept`].
    Accept(TouContext),
    /// Decline on the terms page (never on organization-owned devices): answer with
    /// [`TermsOfUse::decline`].
    Decline(TouContext),
    /// A vendor step was submitted.
    Step {
        /// The context.
        ctx: TouContext,
        /// The step's ID.
        step: String,
        /// The step's fields, by name.
        fields: BTreeMap<String, String>,
    },
}

/// The ToU endpoint. Sans-I/O: requests in as `http` parts, responses out as
/// `http::Response<Vec<u8>>`, time and randomness from the caller. See the crate docs for
/// a whole flow.
#[derive(Debug)]
pub struct TermsOfUse {
    config: TouConfig,
    keyring: std::sync::Arc<Keyring>,
    validator: Validator,
}

fn unix(now: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(now))
}

impl TermsOfUse {
    /// A ToU endpoint validating tokens with `validator` and sealing with `keyring`.
    pub fn new(config: TouConfig, keyring: Keyring, validator: Validator) -> Self {
        Self {
            config,
            keyring: std::sync::Arc::new(keyring),
            validator,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TouConfig {
        &self.config
    }

    /// The verifier for the blobs this endpoint issues (give it to the enrollment side).
    pub fn verifier(&self) -> BlobVerifier {
        BlobVerifier {
            keyring: self.keyring.clone(),
        }
    }

    fn frame<'a>(
        &'a self,
        scenario: Scenario,
        windows: Option<&'a WindowsVersion>,
        nonce: &'a str,
        redirect: Option<&AllowedRedirect>,
    ) -> Frame<'a> {
        Frame {
            config: &self.config.page,
            scenario,
            windows,
            nonce,
            form_targets: redirect
                .map(AllowedRedirect::csp_source)
                .into_iter()
                .collect(),
        }
    }

    fn nonce(rng: &mut dyn Entropy) -> String {
        let mut b = [0u8; 16];
        // Without randomness the nonce is constant; the page still works and the CSP
        // still blocks every script it did not write.
        let _ = rng.fill(&mut b);
        STANDARD.encode(b)
    }

    fn error_page(
        &self,
        status: StatusCode,
        scenario: Scenario,
        rng: &mut dyn Entropy,
    ) -> Response<Vec<u8>> {
        let nonce = Self::nonce(rng);
        let f = self.frame(scenario, None, &nonce, None);
        f.respond(status, f.error())
    }

    /// The one place an error becomes a response: an error redirect when an allowed
    /// `redirect_uri` is known and the error maps to one, an error page otherwise.
    pub fn respond_error(
        &self,
        error: &TouError,
        redirect_uri: Option<&AllowedRedirect>,
        client_request_id: Option<&str>,
        scenario: Scenario,
        rng: &mut dyn Entropy,
    ) -> Response<Vec<u8>> {
        tracing::info!(error = %error, "terms of use refused");
        let crid = client_request_id.filter(|_| self.config.echo_client_request_id);
        match (error.wire(), redirect_uri) {
            (Wire::Redirect(code, description), Some(ruri)) => {
                outcome::error_redirect(ruri, code, description, crid)
            }
            (Wire::Redirect(..), None) => self.error_page(StatusCode::BAD_REQUEST, scenario, rng),
            (Wire::Page(status), _) => self.error_page(status, scenario, rng),
        }
    }

    fn reject(&self, r: Rejection, scenario: Scenario, rng: &mut dyn Entropy) -> Response<Vec<u8>> {
        self.respond_error(
            &r.error,
            r.redirect_uri.as_ref(),
            r.client_request_id.as_deref(),
            scenario,
            rng,
        )
    }

    /// Parses and checks a ToU `GET` and validates its bearer token. On success the vendor
    /// chooses the terms (by [`TouContext::organization_owned`], tenant, user, groups) and
    /// answers with [`TermsOfUse::terms_page`], a [`TermsOfUse::step_page`] first, or
    /// [`TermsOfUse::deny`].
    ///
    /// # Errors
    /// The response to send: an error redirect, or an error page when no allowed
    /// `redirect_uri` is known.
    #[allow(clippy::result_large_err)] // The error is the response to send, by value.
    pub fn begin(
        &self,
        parts: &Parts,
        now: u64,
        rng: &mut dyn Entropy,
    ) -> Result<TouContext, Response<Vec<u8>>> {
        let scenario =
            Scenario::from_cxh_host(parts.headers.get("cxh-host").and_then(|v| v.to_str().ok()));
        let req = request::parse(
            parts,
            &self.config.redirect_policy,
            &self.config.api_versions,
            rng,
        )
        .map_err(|r| self.reject(r, scenario, rng))?;
        let fail = |error: TouError, rng: &mut dyn Entropy| {
            self.respond_error(
                &error,
                Some(&req.redirect_uri),
                Some(&req.client_request_id),
                req.scenario,
                rng,
            )
        };
        let Some(token) = req.token() else {
            return Err(fail(TouError::MissingToken, rng));
        };
        let claims = match self.validator.validate(token, unix(now)) {
            Ok(c) => c.into_inner(),
            Err(e) => return Err(fail(TouError::Token(e), rng)),
        };
        if claims.tenant_id.is_empty() || claims.object_id.is_empty() {
            return Err(fail(
                TouError::UnauthorizedUserOrTenant("token without tid or oid".into()),
                rng,
            ));
        }
        Ok(TouContext {
            s: StateV1 {
                v: 1,
                exp: now.saturating_add(self.config.state_ttl_secs),
                ruri: req.redirect_uri,
                crid: req.client_request_id,
                org: req.organization_owned,
                tid: claims.tenant_id,
                oid: claims.object_id,
                upn: claims.upn,
                sc: req.scenario,
                win: req.windows,
                path: req.path,
                phase: Phase::Start,
                progress: BTreeMap::new(),
                data: None,
            },
        })
    }

    fn seal_state(
        &self,
        ctx: &TouContext,
        phase: Phase,
        now: u64,
        rng: &mut dyn Entropy,
    ) -> Result<String, TouError> {
        let mut s = ctx.s.clone();
        s.phase = phase;
        s.exp = now.saturating_add(self.config.state_ttl_secs);
        let json = serde_json::to_vec(&s).map_err(|e| TouError::Backend(e.to_string()))?;
        Ok(self.keyring.seal(STATE, &json, rng)?)
    }

    fn page_for(
        &self,
        ctx: &TouContext,
        phase: Phase,
        now: u64,
        rng: &mut dyn Entropy,
        render: impl FnOnce(&Frame<'_>, &str) -> String,
    ) -> Response<Vec<u8>> {
        let state = match self.seal_state(ctx, phase, now, rng) {
            Ok(s) => s,
            Err(e) => return self.respond_ctx_error(ctx, &e, rng),
        };
        let nonce = Self::nonce(rng);
        let f = self.frame(ctx.s.sc, ctx.s.win.as_ref(), &nonce, Some(&ctx.s.ruri));
        let html = render(&f, &state);
        f.respond(StatusCode::OK, html)
    }

    /// The terms page: Accept, and Decline unless the device is organization-owned.
    pub fn terms_page(
        &self,
        ctx: &TouContext,
        terms: &Terms,
        now: u64,
        rng: &mut dyn Entropy,
    ) -> Response<Vec<u8>> {
        let decline = !ctx.s.org;
        self.page_for(ctx, Phase::Terms, now, rng, |f, state| {
            f.terms(terms, &ctx.s.path, state, decline)
        })
    }

    /// A vendor step page (shown before the terms; its submission comes back as
    /// [`Submission::Step`]).
    pub fn step_page(
        &self,
        ctx: &TouContext,
        step: &StepPage,
        now: u64,
        rng: &mut dyn Entropy,
    ) -> Response<Vec<u8>> {
        self.page_for(ctx, Phase::Step(step.id.clone()), now, rng, |f, state| {
            f.step(step, &ctx.s.path, state)
        })
    }

    /// Reads a form posted from one of the pages (`application/x-www-form-urlencoded`).
    ///
    /// # Errors
    /// An error page (400) for a missing, forged, expired or out-of-place submission, and
    /// (403) for Decline on an organization-owned device.
    #[allow(clippy::result_large_err)] // The error is the response to send, by value.
    pub fn resume(
        &self,
        parts: &Parts,
        body: &[u8],
        now: u64,
        rng: &mut dyn Entropy,
    ) -> Result<Submission, Response<Vec<u8>>> {
        let scenario =
            Scenario::from_cxh_host(parts.headers.get("cxh-host").and_then(|v| v.to_str().ok()));
        let page = |e: TouError, sc: Scenario, rng: &mut dyn Entropy| {
            self.respond_error(&e, None, None, sc, rng)
        };
        if body.len() > MAX_FORM_BYTES {
            return Err(page(
                TouError::BadSubmission("form too large"),
                scenario,
                rng,
            ));
        }
        let mut state = None;
        let mut action = None;
        let mut fields = BTreeMap::new();
        let mut repeated = false;
        for (k, v) in url::form_urlencoded::parse(body).take(64) {
            match &*k {
                "state" => repeated |= state.replace(v.into_owned()).is_some(),
                "action" => repeated |= action.replace(v.into_owned()).is_some(),
                name => {
                    if let Some(f) = name.strip_prefix("field.") {
                        fields.insert(f.to_owned(), v.chars().take(256).collect());
                    }
                }
            }
        }
        if repeated {
            return Err(page(
                TouError::BadSubmission("repeated field"),
                scenario,
                rng,
            ));
        }
        let Some(token) = state else {
            return Err(page(TouError::State(OpenError::Malformed), scenario, rng));
        };
        let s: StateV1 = match self
            .keyring
            .open(STATE, &token)
            .map_err(TouError::State)
            .and_then(|raw| {
                serde_json::from_slice(&raw).map_err(|_| TouError::State(OpenError::Malformed))
            }) {
            Ok(s) => s,
            Err(e) => return Err(page(e, scenario, rng)),
        };
        if now > s.exp {
            return Err(page(TouError::StateExpired { exp: s.exp, now }, s.sc, rng));
        }
        let sc = s.sc;
        let phase = s.phase.clone();
        let ctx = TouContext { s };
        match (action.as_deref(), phase) {
            (Some("accept"), Phase::Terms) => Ok(Submission::Accept(ctx)),
            (Some("decline"), Phase::Terms) if ctx.s.org => {
                Err(page(TouError::DeclineNotAllowed, sc, rng))
            }
            (Some("decline"), Phase::Terms) => Ok(Submission::Decline(ctx)),
            (Some("step"), Phase::Step(step)) => Ok(Submission::Step { ctx, step, fields }),
            _ => Err(page(
                TouError::BadSubmission("action does not match the page"),
                sc,
                rng,
            )),
        }
    }

    fn respond_ctx_error(
        &self,
        ctx: &TouContext,
        error: &TouError,
        rng: &mut dyn Entropy,
    ) -> Response<Vec<u8>> {
        self.respond_error(error, Some(&ctx.s.ruri), Some(&ctx.s.crid), ctx.s.sc, rng)
    }

    /// The user accepted: a 302 to the `redirect_uri` with `OpaqueBlob` (sealed, bound to
    /// the tenant and user, expiring), `IsAccepted=true` and `client-request-id`.
    pub fn accept(&self, ctx: &TouContext, now: u64, rng: &mut dyn Entropy) -> Response<Vec<u8>> {
        let blob = BlobV1 {
            v: 1,
            tid: ctx.s.tid.clone(),
            oid: ctx.s.oid.clone(),
            crid: ctx.s.crid.clone(),
            iat: now,
            exp: now.saturating_add(self.config.blob_ttl_secs),
            org: ctx.s.org,
            data: ctx.s.data.clone(),
        };
        let sealed = serde_json::to_vec(&blob)
            .map_err(|e| TouError::Backend(e.to_string()))
            .and_then(|json| Ok(self.keyring.seal(BLOB, &json, rng)?));
        match sealed {
            Ok(b) => {
                let mut params = vec![("OpaqueBlob", b.as_str()), ("IsAccepted", "true")];
                if self.config.echo_client_request_id {
                    params.push(("client-request-id", ctx.s.crid.as_str()));
                }
                outcome::redirect(&outcome::append_query(ctx.s.ruri.as_str(), &params))
            }
            Err(e) => self.respond_ctx_error(ctx, &e, rng),
        }
    }

    /// The user declined: a 302 with `IsAccepted=false`. On an organization-owned device
    /// there is no Decline: a 403 error page.
    pub fn decline(&self, ctx: &TouContext, rng: &mut dyn Entropy) -> Response<Vec<u8>> {
        if ctx.s.org {
            return self.respond_ctx_error(ctx, &TouError::DeclineNotAllowed, rng);
        }
        let mut params = vec![("IsAccepted", "false")];
        if self.config.echo_client_request_id {
            params.push(("client-request-id", ctx.s.crid.as_str()));
        }
        outcome::redirect(&outcome::append_query(ctx.s.ruri.as_str(), &params))
    }

    /// The vendor denies this user: `access_denied`.
    pub fn deny(&self, ctx: &TouContext, rng: &mut dyn Entropy) -> Response<Vec<u8>> {
        self.respond_ctx_error(ctx, &TouError::AccessDenied, rng)
    }

    /// Any other failure for a validated request, mapped as [`TouError::wire`] says (for
    /// example [`TouError::UnauthorizedUserOrTenant`] when the vendor does not serve the
    /// tenant, [`TouError::Backend`] for its own outages).
    pub fn fail(
        &self,
        ctx: &TouContext,
        error: &TouError,
        rng: &mut dyn Entropy,
    ) -> Response<Vec<u8>> {
        self.respond_ctx_error(ctx, error, rng)
    }
}

/// Verifies the `OpaqueBlob`s a [`TermsOfUse`] issued (see
/// [`EnrollmentDataVerifier`]). Cheap to clone; share it with the enrollment endpoint.
#[derive(Debug, Clone)]
pub struct BlobVerifier {
    keyring: std::sync::Arc<Keyring>,
}

impl BlobVerifier {
    /// A verifier holding `keyring` (the same keys as the ToU endpoint).
    pub fn new(keyring: Keyring) -> Self {
        Self {
            keyring: std::sync::Arc::new(keyring),
        }
    }
}

impl EnrollmentDataVerifier for BlobVerifier {
    fn verify(
        &self,
        blob: &str,
        identity: &TokenIdentity<'_>,
        now: u64,
    ) -> Result<EnrollmentData, EnrollmentDataError> {
        let raw = self.keyring.open(BLOB, blob).map_err(|e| match e {
            OpenError::UnknownKey(key_id) => EnrollmentDataError::UnknownKey { key_id },
            OpenError::Tampered => EnrollmentDataError::Tampered,
            _ => EnrollmentDataError::Malformed,
        })?;
        let b: BlobV1 = serde_json::from_slice(&raw).map_err(|_| EnrollmentDataError::Malformed)?;
        if b.v != 1 {
            return Err(EnrollmentDataError::Malformed);
        }
        if now > b.exp {
            return Err(EnrollmentDataError::Expired { exp: b.exp, now });
        }
        if !b.tid.eq_ignore_ascii_case(identity.tenant_id)
            || !b.oid.eq_ignore_ascii_case(identity.object_id)
        {
            return Err(EnrollmentDataError::OtherUser);
        }
        Ok(EnrollmentData {
            tenant_id: b.tid,
            object_id: b.oid,
            client_request_id: b.crid,
            accepted_at: b.iat,
            organization_owned: b.org,
            vendor_data: b.data,
        })
    }
}
