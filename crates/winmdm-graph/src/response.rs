//! Response parsers and the typed outcomes of Graph calls.

use std::time::Duration;

use http::{HeaderMap, Response, StatusCode};
use serde::Deserialize;

/// Bodies larger than this are not parsed.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// What went wrong with a Graph call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    // --- caller misuse ---------------------------------------------------------------
    /// An argument that cannot go into a request.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    // --- refused by Graph ------------------------------------------------------------
    /// 404: the device (or user, or tenant) does not exist.
    #[error("not found ({code:?})")]
    NotFound {
        /// Graph's error code.
        code: Option<String>,
        /// Graph's message.
        message: Option<String>,
    },
    /// 401: the token was refused.
    #[error("unauthorized: {code:?}: {message:?}")]
    Unauthorized {
        /// Graph's error code (for example `InvalidAuthenticationToken`).
        code: Option<String>,
        /// Graph's message.
        message: Option<String>,
    },
    /// 403: the app lacks the permission (for example `Device.ReadWrite.All`, or it is not
    /// an approved MDM app for Windows devices).
    #[error("forbidden: {code:?}: {message:?}")]
    Forbidden {
        /// Graph's error code (for example `Authorization_RequestDenied`).
        code: Option<String>,
        /// Graph's message.
        message: Option<String>,
    },
    /// 429, 503 or 504: slow down. Retry after `retry_after` when given.
    #[error("throttled ({status}), retry after {retry_after:?}")]
    Throttled {
        /// The HTTP status.
        status: u16,
        /// From `x-ms-retry-after-ms` or `Retry-After` (seconds or an HTTP date).
        retry_after: Option<Duration>,
    },
    /// Another 5xx.
    #[error("server error {status}: {code:?}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// Graph's error code.
        code: Option<String>,
    },
    /// Another status.
    #[error("unexpected status {status}: {code:?}: {message:?}")]
    Unexpected {
        /// The HTTP status.
        status: u16,
        /// Graph's error code.
        code: Option<String>,
        /// Graph's message.
        message: Option<String>,
    },
    /// A success response whose body is not what the call returns.
    #[error("malformed response: {0}")]
    Malformed(String),
    // --- backend ---------------------------------------------------------------------
    /// The app-only token could not be had.
    #[error("token: {0}")]
    Token(#[source] winmdm_entra::Error),
    /// Connection failure or timeout.
    #[error("transport: {0}")]
    Transport(String),
    /// Retries stopped (attempts or total time spent); the last error is kept.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: Box<Self>,
    },
}

impl GraphError {
    /// Whether trying again later may succeed (throttling, 5xx, transport).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. } | Self::Server { .. } | Self::Transport(_)
        )
    }

    /// Whether Graph certainly did not act on the request (throttled with 429: safe to
    /// retry even a non-idempotent call).
    pub fn not_processed(&self) -> bool {
        matches!(self, Self::Throttled { status: 429, .. })
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<String>,
    message: Option<String>,
}

fn error_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    if body.len() > MAX_BODY {
        return (None, None);
    }
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(ErrorEnvelope { error: Some(e) }) => (
            e.code.map(|c| c.chars().take(128).collect()),
            e.message.map(|m| m.chars().take(512).collect()),
        ),
        _ => (None, None),
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to Unix seconds.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let s = s.trim();
    let rest = s.split_once(", ")?.1;
    let mut it = rest.split(' ');
    let day: i64 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let mi: i64 = hms.next()?.parse().ok()?;
    let se: i64 = hms.next()?.parse().ok()?;
    if it.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs).ok()
}

/// How long to wait, from `x-ms-retry-after-ms` (milliseconds) or `Retry-After`
/// (seconds, or an HTTP date compared with `now`, Unix seconds).
pub fn retry_after(headers: &HeaderMap, now: u64) -> Option<Duration> {
    if let Some(ms) = headers
        .get("x-ms-retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some(Duration::from_millis(ms));
    }
    let v = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    parse_http_date(v).map(|at| Duration::from_secs(at.saturating_sub(now)))
}

/// The error for a non-2xx response (`now` for HTTP-date `Retry-After`s).
pub fn error_for<B: AsRef<[u8]>>(response: &Response<B>, now: u64) -> GraphError {
    let status = response.status();
    let (code, message) = error_fields(response.body().as_ref());
    match status {
        StatusCode::NOT_FOUND => GraphError::NotFound { code, message },
        StatusCode::UNAUTHORIZED => GraphError::Unauthorized { code, message },
        StatusCode::FORBIDDEN => GraphError::Forbidden { code, message },
        StatusCode::TOO_MANY_REQUESTS
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => GraphError::Throttled {
            status: status.as_u16(),
            retry_after: retry_after(response.headers(), now),
        },
        s if s.is_server_error() => GraphError::Server {
            status: s.as_u16(),
            code,
        },
        s => GraphError::Unexpected {
            status: s.as_u16(),
            code,
            message,
        },
    }
}

/// The outcome of an update (`PATCH`): 204 (or any 2xx) is success.
///
/// # Errors
/// The typed error for any other status.
pub fn parse_update<B: AsRef<[u8]>>(response: &Response<B>, now: u64) -> Result<(), GraphError> {
    if response.status().is_success() {
        Ok(())
    } else {
        Err(error_for(response, now))
    }
}

/// A device, as [`crate::GraphApi::get_device`] selects it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Device {
    /// The directory object ID.
    pub id: String,
    /// The Entra device ID.
    pub device_id: Option<String>,
    /// The display name.
    pub display_name: Option<String>,
    /// `isCompliant`.
    pub is_compliant: Option<bool>,
    /// `isManaged`.
    pub is_managed: Option<bool>,
    /// The operating system.
    pub operating_system: Option<String>,
    /// Its version.
    pub operating_system_version: Option<String>,
    /// `Workplace`, `AzureAd` or `ServerAd`.
    pub trust_type: Option<String>,
    /// Whether the device account is enabled.
    pub account_enabled: Option<bool>,
}

fn success_json<'a, B: AsRef<[u8]>, T: Deserialize<'a>>(
    response: &'a Response<B>,
    now: u64,
) -> Result<T, GraphError> {
    if !response.status().is_success() {
        return Err(error_for(response, now));
    }
    let body = response.body().as_ref();
    if body.len() > MAX_BODY {
        return Err(GraphError::Malformed("body too large".into()));
    }
    serde_json::from_slice(body).map_err(|e| GraphError::Malformed(e.to_string()))
}

/// A device lookup's outcome.
///
/// # Errors
/// The typed error for a non-2xx status, [`GraphError::Malformed`] for a bad body.
pub fn parse_device<B: AsRef<[u8]>>(
    response: &Response<B>,
    now: u64,
) -> Result<Device, GraphError> {
    success_json(response, now)
}

/// One page of object IDs (groups, `getMemberObjects`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdPage {
    /// The IDs.
    pub ids: Vec<String>,
    /// `@odata.nextLink`, when more pages follow.
    pub next_link: Option<String>,
}

#[derive(Deserialize)]
struct ValuePage {
    value: Vec<serde_json::Value>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// A page of `getMemberObjects` (strings) or `transitiveMemberOf` (objects with `id`).
///
/// # Errors
/// The typed error for a non-2xx status, [`GraphError::Malformed`] for a bad body.
pub fn parse_id_page<B: AsRef<[u8]>>(
    response: &Response<B>,
    now: u64,
) -> Result<IdPage, GraphError> {
    let page: ValuePage = success_json(response, now)?;
    let ids = page
        .value
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            serde_json::Value::Object(mut o) => match o.remove("id") {
                Some(serde_json::Value::String(s)) => Ok(s),
                _ => Err(GraphError::Malformed("object without id".into())),
            },
            _ => Err(GraphError::Malformed("value entry".into())),
        })
        .collect::<Result<_, _>>()?;
    Ok(IdPage {
        ids,
        next_link: page.next_link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> Response<Vec<u8>> {
        let mut b = Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(body.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn statuses_map_to_typed_errors() {
        assert!(parse_update(&resp(204, &[], ""), 0).is_ok());
        let e = parse_update(&resp(404, &[], r#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist"}}"#), 0).unwrap_err();
        assert!(
            matches!(e, GraphError::NotFound { code: Some(c), .. } if c == "Request_ResourceNotFound")
        );
        let e = parse_update(&resp(401, &[], r#"{"error":{"code":"InvalidAuthenticationToken","message":"Access token has expired."}}"#), 0).unwrap_err();
        assert!(
            matches!(e, GraphError::Unauthorized { code: Some(c), message: Some(m) } if c == "InvalidAuthenticationToken" && m.contains("expired"))
        );
        let e = parse_update(
            &resp(
                403,
                &[],
                r#"{"error":{"code":"Authorization_RequestDenied"}}"#,
            ),
            0,
        )
        .unwrap_err();
        assert!(matches!(e, GraphError::Forbidden { .. }));
        let e = parse_update(&resp(429, &[("retry-after", "7")], ""), 0).unwrap_err();
        assert!(
            matches!(e, GraphError::Throttled { status: 429, retry_after: Some(d) } if d == Duration::from_secs(7))
        );
        assert!(e.is_transient() && e.not_processed());
        let e = parse_update(
            &resp(
                503,
                &[("x-ms-retry-after-ms", "1500"), ("retry-after", "9")],
                "",
            ),
            0,
        )
        .unwrap_err();
        assert!(
            matches!(e, GraphError::Throttled { status: 503, retry_after: Some(d) } if d == Duration::from_millis(1500))
        );
        assert!(!e.not_processed());
        let e = parse_update(&resp(504, &[], "<html>"), 0).unwrap_err();
        assert!(matches!(
            e,
            GraphError::Throttled {
                status: 504,
                retry_after: None
            }
        ));
        let e = parse_update(&resp(500, &[], "not json"), 0).unwrap_err();
        assert!(matches!(
            e,
            GraphError::Server {
                status: 500,
                code: None
            }
        ));
        let e = parse_update(&resp(400, &[], r#"{"error":{"code":"BadRequest"}}"#), 0).unwrap_err();
        assert!(matches!(e, GraphError::Unexpected { status: 400, .. }) && !e.is_transient());
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Sat, 29 Feb 2028 12:00:00 GMT"),
            Some(1_835_438_400)
        );
        for bad in [
            "",
            "Sun, 06 Nov 1994",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            "Sun, 06 Nov 1994 08:50:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h, 784_111_777), Some(Duration::from_secs(60)));
        assert_eq!(
            retry_after(&h, 784_111_999),
            Some(Duration::ZERO),
            "a past date means now"
        );
    }

    #[test]
    fn pages() {
        let p = parse_id_page(&resp(200, &[], r#"{"value":["a","b"],"@odata.nextLink":"https://graph.microsoft.com/v1.0/x?$skiptoken=1"}"#), 0).unwrap();
        assert_eq!(p.ids, ["a", "b"]);
        assert!(p.next_link.is_some());
        let p = parse_id_page(&resp(200, &[], r##"{"@odata.context":"c","value":[{"@odata.type":"#microsoft.graph.group","id":"g1"}]}"##), 0).unwrap();
        assert_eq!(p.ids, ["g1"]);
        assert!(matches!(
            parse_id_page(&resp(200, &[], r#"{"value":[1]}"#), 0),
            Err(GraphError::Malformed(_))
        ));
        assert!(matches!(
            parse_id_page(&resp(200, &[], "{"), 0),
            Err(GraphError::Malformed(_))
        ));
        let d = parse_device(&resp(200, &[], r#"{"id":"o","deviceId":"d","isCompliant":true,"isManaged":false,"trustType":"AzureAd","extra":1}"#), 0).unwrap();
        assert_eq!(
            (
                d.id.as_str(),
                d.device_id.as_deref(),
                d.is_compliant,
                d.trust_type.as_deref()
            ),
            ("o", Some("d"), Some(true), Some("AzureAd"))
        );
    }
}
