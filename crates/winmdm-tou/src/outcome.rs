//! Errors and the one mapping of each to the wire.
//!
//! Microsoft Learn "Microsoft Entra integration with MDM" § Terms Of Use Error handling:
//! errors travel back to Windows as `error` and `error_description` query parameters of a
//! 302 to the `redirect_uri`, percent-encoded, descriptions in plain English:
//!
//! | Cause | `error` | `error_description` |
//! |---|---|---|
//! | unsupported (or missing) `api-version` | `invalid_request` | unsupported version |
//! | tenant or user data missing, prerequisites not met | `unauthorized_client` | unauthorized user or tenant |
//! | the Entra token failed validation | `unauthorized_client` | unauthorized_client |
//! | internal service error | `server_error` | internal service error |
//! | the vendor denied the user (the doc's example) | `access_denied` | Access is denied. |
//!
//! Without a `redirect_uri` the policy allows there is nowhere safe to redirect: those
//! errors (and a broken or expired page state) get an error page instead.

use http::{Response, StatusCode, header};

use crate::policy::{AllowedRedirect, RedirectError};
use crate::seal::{OpenError, SealError};

/// The `error` values of the ToU error redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `invalid_request`.
    InvalidRequest,
    /// `unauthorized_client`.
    UnauthorizedClient,
    /// `server_error`.
    ServerError,
    /// `access_denied`.
    AccessDenied,
}

impl ErrorCode {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::ServerError => "server_error",
            Self::AccessDenied => "access_denied",
        }
    }
}

/// Everything that can go wrong on the Terms-of-Use endpoint. [`TouError::wire`] says
/// what reaches the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TouError {
    // --- malformed or refused request ------------------------------------------------
    /// No `redirect_uri`, or more than one.
    #[error("missing or repeated redirect_uri")]
    MissingRedirectUri,
    /// The `redirect_uri` is outside the policy.
    #[error(transparent)]
    RedirectUri(#[from] RedirectError),
    /// No `api-version`.
    #[error("missing api-version")]
    MissingApiVersion,
    /// An `api-version` this server does not support.
    #[error("unsupported api-version {0:?}")]
    UnsupportedApiVersion(String),
    /// No `Authorization: Bearer` token.
    #[error("missing bearer token")]
    MissingToken,
    /// The token failed validation.
    #[error("token rejected: {0}")]
    Token(#[source] winmdm_entra::Error),
    /// The token is valid but its tenant is not served, or user data is missing.
    #[error("unauthorized user or tenant: {0}")]
    UnauthorizedUserOrTenant(String),
    /// The vendor denied this user.
    #[error("access denied by the vendor")]
    AccessDenied,
    /// The page state (a form field) is missing, forged or from a retired key.
    #[error("page state: {0}")]
    State(#[from] OpenError),
    /// The page state expired.
    #[error("page state expired at {exp} (now {now})")]
    StateExpired {
        /// Expiry (Unix seconds).
        exp: u64,
        /// The time of the check.
        now: u64,
    },
    /// A form submission that does not fit the page it came from (for example Accept
    /// posted from a step page).
    #[error("unexpected form submission: {0}")]
    BadSubmission(&'static str),
    /// Decline on an organization-owned device (`mode=azureadjoin`).
    #[error("decline is not offered on organization-owned devices")]
    DeclineNotAllowed,
    // --- backend --------------------------------------------------------------------
    /// Sealing failed (no randomness).
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The token's keys are not loaded, or another backend failed.
    #[error("backend failure: {0}")]
    Backend(String),
}

/// What the client gets for a [`TouError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// A 302 to the `redirect_uri` with `error` and `error_description`.
    Redirect(ErrorCode, &'static str),
    /// An error page with this status (there is no safe place to redirect to).
    Page(StatusCode),
}

impl TouError {
    /// The one mapping to the wire.
    pub fn wire(&self) -> Wire {
        use winmdm_entra::ErrorKind;
        match self {
            Self::MissingRedirectUri | Self::RedirectUri(_) => Wire::Page(StatusCode::BAD_REQUEST),
            Self::State(_) | Self::StateExpired { .. } | Self::BadSubmission(_) => {
                Wire::Page(StatusCode::BAD_REQUEST)
            }
            Self::DeclineNotAllowed => Wire::Page(StatusCode::FORBIDDEN),
            Self::MissingApiVersion | Self::UnsupportedApiVersion(_) => {
                Wire::Redirect(ErrorCode::InvalidRequest, "unsupported version")
            }
            Self::UnauthorizedUserOrTenant(_) => {
                Wire::Redirect(ErrorCode::UnauthorizedClient, "unauthorized user or tenant")
            }
            Self::Token(e) if e.kind() == ErrorKind::Backend || e.kind() == ErrorKind::Misuse => {
                Wire::Redirect(ErrorCode::ServerError, "internal service error")
            }
            Self::Token(winmdm_entra::Error::TenantNotAllowed { .. }) => {
                Wire::Redirect(ErrorCode::UnauthorizedClient, "unauthorized user or tenant")
            }
            Self::MissingToken | Self::Token(_) => {
                Wire::Redirect(ErrorCode::UnauthorizedClient, "unauthorized_client")
            }
            Self::AccessDenied => Wire::Redirect(ErrorCode::AccessDenied, "Access is denied."),
            Self::Seal(_) | Self::Backend(_) => {
                Wire::Redirect(ErrorCode::ServerError, "internal service error")
            }
        }
    }
}

/// Percent-encodes everything but `A-Z a-z 0-9 - _ ~` (so `.` becomes `%2E`, as in the
/// doc's example).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
}

/// `redirect_uri` with `params` appended to its query (which it may already have).
pub fn append_query(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = String::from(redirect_uri);
    let mut sep = if redirect_uri.contains('?') {
        if redirect_uri.ends_with('?') || redirect_uri.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    for (k, v) in params {
        out.push_str(sep);
        out.push_str(&percent_encode(k));
        out.push('=');
        out.push_str(&percent_encode(v));
        sep = "&";
    }
    out
}

/// A 302 to `location` (empty body, `Cache-Control: no-store`).
pub fn redirect(location: &str) -> Response<Vec<u8>> {
    let mut r = Response::new(Vec::new());
    *r.status_mut() = StatusCode::FOUND;
    if let Ok(v) = header::HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r.headers_mut().insert(
        header::CONTENT_LENGTH,
        header::HeaderValue::from_static("0"),
    );
    r
}

/// The error redirect: `error`, `error_description` and (when known) `client-request-id`.
pub fn error_redirect(
    redirect_uri: &AllowedRedirect,
    code: ErrorCode,
    description: &str,
    client_request_id: Option<&str>,
) -> Response<Vec<u8>> {
    let mut params = vec![("error", code.as_str()), ("error_description", description)];
    if let Some(id) = client_request_id {
        params.push(("client-request-id", id));
    }
    redirect(&append_query(redirect_uri.as_str(), &params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_and_query_appending() {
        assert_eq!(
            percent_encode("Access is denied."),
            "Access%20is%20denied%2E"
        );
        assert_eq!(percent_encode("a&b=c/é"), "a%26b%3Dc%2F%C3%A9");
        assert_eq!(
            append_query("ms-appx-web://A/R", &[("x", "1")]),
            "ms-appx-web://A/R?x=1"
        );
        assert_eq!(
            append_query("ms-appx-web://A/R?k=v", &[("x", "1"), ("y", "2")]),
            "ms-appx-web://A/R?k=v&x=1&y=2"
        );
        assert_eq!(
            append_query("ms-appx-web://A/R?", &[("x", "1")]),
            "ms-appx-web://A/R?x=1"
        );
    }
}
