//! The crate's error type and its one mapping to the wire.

use crate::TokenVersion;

/// Which part of a compact JWS a decoding error is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Part {
    /// The protected header (first segment).
    Header,
    /// The claims (second segment).
    Claims,
    /// The signature (third segment).
    Signature,
}

/// How a token is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// Not three `.`-separated segments.
    #[error("not three dot-separated segments")]
    Segments,
    /// A segment is not unpadded base64url.
    #[error("{0:?} is not base64url")]
    Base64(Part),
    /// A segment is not a JSON object.
    #[error("{0:?} is not a JSON object")]
    Json(Part),
    /// A claim or header field has the wrong JSON type.
    #[error("`{0}` has the wrong type")]
    ClaimType(&'static str),
    /// The header lists `crit` extensions, none of which this validator understands
    /// (RFC 7515 §4.1.11 requires rejecting them).
    #[error("unsupported critical header extension")]
    CriticalHeader,
}

/// Broad cause of an [`Error`], for metrics and for the wire mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input is not a well-formed token or document.
    Malformed,
    /// Well-formed, but refused by policy or by a cryptographic check.
    Rejected,
    /// The caller used the API wrongly (for example an empty policy).
    Misuse,
    /// A backend failed: keys not loaded yet, a fetch failed, the token endpoint refused.
    Backend,
}

/// Everything that can go wrong in this crate.
///
/// Variants carry structured context for logs; [`http_response`] decides what reaches the
/// wire (never the context).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- malformed input -------------------------------------------------------------
    /// The token is longer than the policy's limit.
    #[error("token is {len} bytes; the limit is {max}")]
    TokenTooLarge {
        /// Length of the token in bytes.
        len: usize,
        /// The policy's limit.
        max: usize,
    },
    /// The token is not a well-formed compact JWS with JSON header and claims.
    #[error("malformed token: {0}")]
    Malformed(Malformed),
    /// A metadata, JWKS or token-endpoint document could not be used.
    #[error("invalid {document}: {reason}")]
    InvalidDocument {
        /// Which document (`OIDC metadata`, `JWKS`, `token response`).
        document: &'static str,
        /// What was wrong.
        reason: String,
    },

    // --- rejected by policy or cryptography -----------------------------------------------
    /// The header's `alg` is not in the policy's allow-list (`none` and `HS*` never are).
    #[error("algorithm {alg:?} is not allowed")]
    AlgorithmNotAllowed {
        /// The `alg` header value.
        alg: String,
    },
    /// The header has no `kid`.
    #[error("token header has no kid")]
    MissingKid,
    /// No published key has this `kid` (a refresh has been requested, rate-limited).
    #[error("no published key has kid {kid:?}")]
    UnknownKid {
        /// The `kid` header value.
        kid: String,
    },
    /// The key named by `kid` cannot verify `alg` (for example an EC key for RS256).
    #[error("key type {kty:?} does not match algorithm {alg}")]
    KeyTypeMismatch {
        /// The token's algorithm.
        alg: &'static str,
        /// The key's `kty`.
        kty: String,
    },
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// A required claim is absent.
    #[error("required claim `{claim}` is missing")]
    MissingClaim {
        /// The claim name.
        claim: &'static str,
    },
    /// `iss` is not of an Entra form (v1 `https://sts.windows.net/{tid}/`, v2
    /// `https://login.microsoftonline.com/{tid}/v2.0`, or another configured cloud).
    #[error("issuer {iss:?} is not an Entra issuer")]
    UnrecognizedIssuer {
        /// The `iss` claim.
        iss: String,
    },
    /// `ver` contradicts the form of `iss`.
    #[error("ver {ver:?} does not match a {issuer_form:?} issuer")]
    VersionMismatch {
        /// The `ver` claim, if present.
        ver: Option<String>,
        /// The version the issuer's form implies.
        issuer_form: TokenVersion,
    },
    /// The token version is not accepted by the policy (v1 must be enabled explicitly).
    #[error("{version:?} tokens are not accepted")]
    VersionNotAllowed {
        /// The token's version.
        version: TokenVersion,
    },
    /// `tid` is not a GUID.
    #[error("tid {tid:?} is not a GUID")]
    InvalidTenantId {
        /// The `tid` claim.
        tid: String,
    },
    /// `tid` differs from the tenant segment of `iss`.
    #[error("tid {tid:?} does not match issuer {iss:?}")]
    TenantIssuerMismatch {
        /// The `tid` claim.
        tid: String,
        /// The `iss` claim.
        iss: String,
    },
    /// The tenant is not allowed by the policy.
    #[error("tenant {tid} is not allowed")]
    TenantNotAllowed {
        /// The `tid` claim.
        tid: String,
    },
    /// `iss` is not exactly the issuer the metadata names for this tenant.
    #[error("issuer {actual:?} is not the expected {expected:?}")]
    IssuerMismatch {
        /// The issuer the metadata names (after `{tenantid}` substitution).
        expected: String,
        /// The `iss` claim.
        actual: String,
    },
    /// The signing key's own JWKS `issuer` belongs to another issuer or tenant.
    #[error("key issuer {key_issuer:?} does not match token issuer {iss:?}")]
    KeyIssuerMismatch {
        /// The key's `issuer` (after `{tenantid}` substitution).
        key_issuer: String,
        /// The `iss` claim.
        iss: String,
    },
    /// A key from tenant-independent metadata has no `issuer` field to check.
    #[error("key {kid:?} from tenant-independent metadata has no issuer")]
    KeyIssuerMissing {
        /// The key's `kid`.
        kid: String,
    },
    /// No `aud` value is in the policy's audiences.
    #[error("audience {aud:?} is not accepted")]
    AudienceNotAllowed {
        /// The `aud` values.
        aud: Vec<String>,
    },
    /// `exp` is in the past (beyond the clock skew).
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// Validation time, Unix seconds.
        now: u64,
        /// The `exp` claim.
        exp: u64,
    },
    /// `nbf` is in the future (beyond the clock skew).
    #[error("token not valid before {nbf} (now {now})")]
    NotYetValid {
        /// Validation time, Unix seconds.
        now: u64,
        /// The `nbf` claim.
        nbf: u64,
    },
    /// `iat` is in the future (beyond the clock skew).
    #[error("token issued in the future at {iat} (now {now})")]
    IssuedInFuture {
        /// Validation time, Unix seconds.
        now: u64,
        /// The `iat` claim.
        iat: u64,
    },
    /// A scope the policy requires is not in `scp`.
    #[error("required scope {scope:?} is missing")]
    MissingScope {
        /// The required scope.
        scope: String,
    },
    /// An app role the policy requires is not in `roles`.
    #[error("required role {role:?} is missing")]
    MissingRole {
        /// The required role.
        role: String,
    },
    /// The token is not of a principal the policy accepts (an app-only token where a
    /// user's is required, by default).
    #[error("a token of {found} where the policy accepts {accepted}")]
    PrincipalNotAllowed {
        /// What the token is: `user`, `app`, or its `idtyp`.
        found: String,
        /// What the policy accepts: `users`, `applications`.
        accepted: &'static str,
    },

    // --- caller misuse --------------------------------------------------------------------
    /// The policy or configuration is unusable.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },

    // --- backend ---------------------------------------------------------------------------
    /// No usable key set is loaded for this token's issuer (cold start, or every refresh
    /// has failed for longer than the keys' maximum age).
    #[error("no signing keys available for {version:?} tokens")]
    KeysUnavailable {
        /// The token's version.
        version: TokenVersion,
    },
    /// A fetch failed (transport error or a non-success status).
    #[error("fetching {what} failed: {reason}")]
    Fetch {
        /// What was fetched.
        what: &'static str,
        /// Why it failed (status or transport error; no secrets).
        reason: String,
    },
    /// The token endpoint refused a client-credentials request.
    #[error("token endpoint refused: HTTP {status} {error} {codes:?}")]
    TokenEndpoint {
        /// HTTP status.
        status: u16,
        /// The OAuth `error` value.
        error: String,
        /// Entra's `error_codes` (AADSTS numbers).
        codes: Vec<u64>,
        /// Entra's `error_description` (no secrets; may contain trace IDs).
        description: String,
    },
}

impl From<Malformed> for Error {
    fn from(m: Malformed) -> Self {
        Self::Malformed(m)
    }
}

impl Error {
    /// The broad cause.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::TokenTooLarge { .. } | Self::Malformed(_) | Self::InvalidDocument { .. } => {
                ErrorKind::Malformed
            }
            Self::InvalidConfig { .. } => ErrorKind::Misuse,
            Self::KeysUnavailable { .. } | Self::Fetch { .. } | Self::TokenEndpoint { .. } => {
                ErrorKind::Backend
            }
            _ => ErrorKind::Rejected,
        }
    }

    /// A stable snake_case name of the variant, for logs, metrics and the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TokenTooLarge { .. } => "token_too_large",
            Self::Malformed(_) => "malformed",
            Self::InvalidDocument { .. } => "invalid_document",
            Self::AlgorithmNotAllowed { .. } => "algorithm_not_allowed",
            Self::MissingKid => "missing_kid",
            Self::UnknownKid { .. } => "unknown_kid",
            Self::KeyTypeMismatch { .. } => "key_type_mismatch",
            Self::BadSignature => "bad_signature",
            Self::MissingClaim { .. } => "missing_claim",
            Self::UnrecognizedIssuer { .. } => "unrecognized_issuer",
            Self::VersionMismatch { .. } => "version_mismatch",
            Self::VersionNotAllowed { .. } => "version_not_allowed",
            Self::InvalidTenantId { .. } => "invalid_tenant_id",
            Self::TenantIssuerMismatch { .. } => "tenant_issuer_mismatch",
            Self::TenantNotAllowed { .. } => "tenant_not_allowed",
            Self::IssuerMismatch { .. } => "issuer_mismatch",
            Self::KeyIssuerMismatch { .. } => "key_issuer_mismatch",
            Self::KeyIssuerMissing { .. } => "key_issuer_missing",
            Self::AudienceNotAllowed { .. } => "audience_not_allowed",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::IssuedInFuture { .. } => "issued_in_future",
            Self::MissingScope { .. } => "missing_scope",
            Self::MissingRole { .. } => "missing_role",
            Self::PrincipalNotAllowed { .. } => "principal_not_allowed",
            Self::InvalidConfig { .. } => "invalid_config",
            Self::KeysUnavailable { .. } => "keys_unavailable",
            Self::Fetch { .. } => "fetch_failed",
            Self::TokenEndpoint { .. } => "token_endpoint",
        }
    }
}

/// The one mapping of a validation error to an HTTP answer for a bearer-protected
/// endpoint (RFC 6750 §3).
///
/// * malformed or rejected tokens → **401** with
///   `WWW-Authenticate: Bearer error="invalid_token"`;
/// * backend failures (keys not loaded, fetch failed) → **503** with `Retry-After: 30`;
/// * misuse (a configuration error) → **500**.
///
/// The body is empty and no header names the reason: the detail is for your logs
/// (`Display`, [`Error::code`]), never for the client.
///
/// Protocol-specific endpoints map differently and do so in their own crates (the
/// Terms-of-Use page redirects with `unauthorized_client`; enrollment answers a SOAP
/// `s:Authentication` fault).
pub fn http_response(error: &Error) -> http::Response<()> {
    let (status, header) = match error.kind() {
        ErrorKind::Malformed | ErrorKind::Rejected => (
            http::StatusCode::UNAUTHORIZED,
            Some((
                http::header::WWW_AUTHENTICATE,
                "Bearer error=\"invalid_token\"",
            )),
        ),
        ErrorKind::Backend => (
            http::StatusCode::SERVICE_UNAVAILABLE,
            Some((http::header::RETRY_AFTER, "30")),
        ),
        ErrorKind::Misuse => (http::StatusCode::INTERNAL_SERVER_ERROR, None),
    };
    let mut response = http::Response::new(());
    *response.status_mut() = status;
    if let Some((name, value)) = header {
        response
            .headers_mut()
            .insert(name, http::HeaderValue::from_static(value));
    }
    response
}
