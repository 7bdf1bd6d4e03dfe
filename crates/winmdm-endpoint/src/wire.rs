//! One mapping from each failure to what the device receives, per route:
//!
//! | route | failure | the device receives |
//! |---|---|---|
//! | Terms of Use | anything | a redirect to `redirect_uri` with `error` (winmdm-tou) |
//! | Discovery, Policy, Enrollment | [`EnrollError`] | HTTP 500 SOAP fault with its `s:Subcode`, `errortype` and HRESULT, and a trace ID that is also logged |
//! | Management | [`Refusal`] | its HTTP status, a `text/plain` reason, `Retry-After` where retrying helps |
//! | Management | a message the session refuses | SyncML status codes inside a normal reply (winmdm-syncml) |
//!
//! Every response carries `Content-Length` (Windows' clients need it; nothing is chunked).

use http::{HeaderValue, Response, StatusCode, header};
use winmdm_enroll::fault::EnrollError;

/// A response with an explicit `Content-Length`.
pub(crate) fn respond(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: Vec<u8>,
) -> Response<Vec<u8>> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    with_length(r)
}

/// Sets `Content-Length` to the body's length.
pub(crate) fn with_length(mut r: Response<Vec<u8>>) -> Response<Vec<u8>> {
    let n = r.body().len();
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    r
}

/// The SOAP fault for an enrollment-protocol failure. Internal failures are logged as
/// errors with their detail, refusals as information; the device sees only the fault and
/// the trace ID that finds the log line.
pub fn enrollment_fault(
    error: &EnrollError,
    relates_to: Option<&str>,
    trace_id: &str,
) -> Response<Vec<u8>> {
    match error {
        EnrollError::Internal(detail) => {
            tracing::error!(trace = %trace_id, detail = %detail, "enrollment backend failure");
        }
        other => tracing::info!(trace = %trace_id, error = %other, "enrollment refused"),
    }
    with_length(error.fault().to_response(relates_to, trace_id))
}

/// Why the management route refused a message before (or instead of) a SyncML reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// WBXML or another content type that is not SyncML XML: HTTP 415.
    #[error("only application/vnd.syncml.dm+xml is served")]
    UnsupportedMediaType,
    /// Not a SyncML message (or not one this server reads): HTTP 400.
    #[error("not a SyncML message: {0}")]
    Malformed(String),
    /// The session refused the message outright (a replayed or out-of-order MsgID, …):
    /// HTTP 400.
    #[error("the session refused the message: {0}")]
    Session(String),
    /// Neither the client certificate nor `SyncHdr/Source` names an enrolled device:
    /// HTTP 401.
    #[error("no enrolled device for this message")]
    UnknownDevice,
    /// The device unenrolled; it may enroll again: HTTP 401.
    #[error("the device unenrolled")]
    Unenrolled,
    /// Another request of the same session changed it meanwhile; nothing was applied and
    /// the device should resend: HTTP 503 with `Retry-After: 1`.
    #[error("the session moved on meanwhile; resend")]
    Conflict,
    /// Storage failed; nothing was applied: HTTP 503 with `Retry-After`.
    #[error("storage is unavailable")]
    Unavailable,
    /// Too many wrong digest credentials for this device within the configured window:
    /// digest authentication is refused until it passes (a device presenting its
    /// certificate is never locked out): HTTP 403 with `Retry-After`.
    #[error("too many failed authentications; retry later")]
    LockedOut {
        /// Seconds until digest authentication is tried again.
        retry_after: u64,
    },
    /// A stored session state could not be read: HTTP 500.
    #[error("the stored session is unreadable")]
    Corrupt,
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Malformed(_) | Self::Session(_) => StatusCode::BAD_REQUEST,
            Self::UnknownDevice | Self::Unenrolled => StatusCode::UNAUTHORIZED,
            Self::Conflict | Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::LockedOut { .. } => StatusCode::FORBIDDEN,
            Self::Corrupt => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response: the status, the reason as `text/plain` (readable by a person
    /// looking at a device's logs; it names nothing secret), `Retry-After` for the
    /// transient ones.
    pub fn to_response(&self) -> Response<Vec<u8>> {
        let mut r = respond(
            self.status(),
            Some("text/plain; charset=utf-8"),
            format!("{self}\n").into_bytes(),
        );
        match self {
            Self::Conflict | Self::Unavailable => {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::LockedOut { retry_after } => {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_readable_and_sized() {
        for (refusal, status) in [
            (Refusal::UnsupportedMediaType, 415),
            (Refusal::Malformed("x".into()), 400),
            (Refusal::UnknownDevice, 401),
            (Refusal::Conflict, 503),
        ] {
            let r = refusal.to_response();
            assert_eq!(r.status().as_u16(), status);
            assert!(!r.body().is_empty());
            assert_eq!(
                r.headers()[header::CONTENT_LENGTH].to_str().unwrap(),
                r.body().len().to_string()
            );
        }
        assert!(
            Refusal::Conflict
                .to_response()
                .headers()
                .contains_key(header::RETRY_AFTER)
        );
    }

    #[test]
    fn faults_carry_their_errortype() {
        let r = enrollment_fault(&EnrollError::DeviceCapReached, Some("urn:uuid:1"), "t1");
        let body = String::from_utf8(r.body().clone()).unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("urn:uuid:1") && body.contains("t1"), "{body}");
        assert!(r.headers().contains_key(header::CONTENT_LENGTH));
    }
}
