//! A minimal blocking HTTP/1.1 client for `http://` URLs on loopback, for tests that talk
//! to the emulators without an HTTP client dependency. It sends one request per
//! connection (`Connection: close`) and reads the whole response.
//!
//! Refuses anything but `127.0.0.0/8` and `[::1]`: test traffic never leaves the machine.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, TcpStream};
use std::time::Duration;

/// Largest response this client reads.
pub const MAX_RESPONSE: usize = 8 << 20;

/// Why a loopback request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoopbackError {
    /// The URL is not `http://<loopback address>[:port]/…`.
    #[error("not a loopback http URL: {0}")]
    NotLoopback(String),
    /// Connecting, writing or reading failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The response is not HTTP/1.x or is larger than [`MAX_RESPONSE`].
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

/// Sends `request` and returns the response.
pub fn send(request: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, LoopbackError> {
    let uri = request.uri().clone();
    let not_loopback = || LoopbackError::NotLoopback(uri.to_string());
    if uri.scheme_str() != Some("http") {
        return Err(not_loopback());
    }
    let host = uri.host().ok_or_else(not_loopback)?;
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| not_loopback())?;
    if !ip.is_loopback() {
        return Err(not_loopback());
    }
    let port = uri.port_u16().unwrap_or(80);
    let mut stream = TcpStream::connect((ip, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let (parts, body) = request.into_parts();
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n",
        parts.method
    );
    for (name, value) in &parts.headers {
        head.push_str(name.as_str());
        head.push_str(": ");
        head.push_str(
            value
                .to_str()
                .map_err(|_| LoopbackError::Malformed("non-ASCII request header"))?,
        );
        head.push_str("\r\n");
    }
    if !body.is_empty() || parts.method == http::Method::POST {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    let mut raw = Vec::new();
    stream.take(MAX_RESPONSE as u64 + 1).read_to_end(&mut raw)?;
    if raw.len() > MAX_RESPONSE {
        return Err(LoopbackError::Malformed("response too large"));
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<http::Response<Vec<u8>>, LoopbackError> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(LoopbackError::Malformed("no end of headers"))?;
    let head =
        std::str::from_utf8(&raw[..end]).map_err(|_| LoopbackError::Malformed("non-UTF-8 head"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or(LoopbackError::Malformed("empty"))?;
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(LoopbackError::Malformed("not HTTP/1.x"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(LoopbackError::Malformed("bad status"))?;
    let mut builder = http::Response::builder().status(status);
    let mut chunked = false;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or(LoopbackError::Malformed("bad header"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
        builder = builder.header(name.trim(), value);
    }
    let mut body = raw[end + 4..].to_vec();
    if chunked {
        body = dechunk(&body)?;
    }
    builder
        .body(body)
        .map_err(|_| LoopbackError::Malformed("bad header value"))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, LoopbackError> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(LoopbackError::Malformed("bad chunk"))?;
        let size_text = std::str::from_utf8(&data[..line_end])
            .map_err(|_| LoopbackError::Malformed("bad chunk"))?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| LoopbackError::Malformed("bad chunk size"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err(LoopbackError::Malformed("truncated chunk"));
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<http::Response<Vec<u8>>, LoopbackError> {
    let request = http::Request::get(url)
        .body(Vec::new())
        .map_err(|_| LoopbackError::NotLoopback(url.to_owned()))?;
    send(request)
}

/// `POST url` with an `application/x-www-form-urlencoded` body built from `fields`.
pub fn post_form(
    url: &str,
    fields: &[(&str, &str)],
) -> Result<http::Response<Vec<u8>>, LoopbackError> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let request = http::Request::post(url)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body.into_bytes())
        .map_err(|_| LoopbackError::NotLoopback(url.to_owned()))?;
    send(request)
}

/// A free loopback TCP port for a server a test starts (or restarts) later by number,
/// such as a child process given its address in a configuration file.
///
/// Asking the kernel for port 0 and binding the number later races every outgoing
/// connection on the machine: those take their source ports from the same ephemeral
/// range. This picks a port *below* that range (read from
/// `/proc/sys/net/ipv4/ip_local_port_range` on Linux, IANA's 49152–65535 elsewhere),
/// which no connection takes by itself, checks that it can be bound on 127.0.0.1 now,
/// and never hands the same port out twice in one process.
///
/// # Errors
/// When no such port could be bound after many tries (a machine with nearly every port
/// in use).
pub fn unused_port() -> std::io::Result<u16> {
    use std::collections::HashSet;
    use std::hash::{BuildHasher as _, RandomState};
    use std::sync::{Mutex, PoisonError};

    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let (low, high) = ephemeral_range();
    // Below the ephemeral range and above the well-known and common service ports.
    let (from, to) = if low > 20_000 {
        (10_000u16, low - 1)
    } else if high < 64_000 {
        (high + 1, 65_535)
    } else {
        (1_024, 65_535)
    };
    let span = u64::from(to - from) + 1;
    let seed = RandomState::new();
    let mut given = GIVEN.lock().unwrap_or_else(PoisonError::into_inner);
    let given = given.get_or_insert_with(HashSet::new);
    for attempt in 0u64..1_000 {
        let offset = seed.hash_one(attempt) % span;
        let Ok(port) = u16::try_from(u64::from(from) + offset) else {
            continue;
        };
        if given.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port)).is_ok() {
            given.insert(port);
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free loopback port in {from}-{to}"),
    ))
}

/// The system's ephemeral (automatically assigned) port range.
fn ephemeral_range() -> (u16, u16) {
    const IANA: (u16, u16) = (49_152, 65_535);
    let Ok(text) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range") else {
        return IANA;
    };
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    match (it.next(), it.next()) {
        (Some(Ok(low)), Some(Ok(high))) if low <= high => (low, high),
        _ => IANA,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_loopback() {
        for url in [
            "http://10.0.0.1/",
            "https://127.0.0.1/",
            "http://example.com/",
        ] {
            assert!(
                matches!(get(url), Err(LoopbackError::NotLoopback(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn unused_ports_are_outside_the_ephemeral_range_bindable_and_distinct() {
        let (low, high) = ephemeral_range();
        let ports: Vec<u16> = (0..20).map(|_| unused_port().unwrap()).collect();
        let mut seen = std::collections::HashSet::new();
        for p in ports {
            if low > 20_000 || high < 64_000 {
                assert!(!(low..=high).contains(&p), "{p} is in {low}-{high}");
            }
            assert!(p >= 1_024, "{p}");
            assert!(seen.insert(p), "{p} given twice");
            std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
        }
    }

    #[test]
    fn parses_chunked() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = parse_response(raw).unwrap();
        assert_eq!(r.body(), b"abcde");
    }
}
