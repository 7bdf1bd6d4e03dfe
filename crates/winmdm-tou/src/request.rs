//! Parsing the ToU request (Microsoft Learn "Microsoft Entra integration with MDM" §
//! Redirect to the Terms of Use endpoint, § Using themes).
//!
//! Order of checks: `redirect_uri` first (against the policy, before anything else — an
//! error can only be redirected to an allowed URI), then `client-request-id` (a malformed
//! one is replaced, never reflected), `api-version`, `mode`, the theme headers, and the
//! bearer token last.

use core::fmt;

use http::request::Parts;

use crate::outcome::TouError;
use crate::policy::{AllowedRedirect, RedirectPolicy};
use crate::seal::{Entropy, EntropyUnavailable};

/// Where the page is shown (`CXH-HOST` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Scenario {
    /// `FRX`: the out-of-box experience (Entra join).
    Oobe,
    /// `MOSET` (or no or an unknown header): Settings, adding a work account.
    Settings,
}

impl Scenario {
    /// From the `CXH-HOST` header value.
    pub fn from_cxh_host(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("FRX") => Self::Oobe,
            _ => Self::Settings,
        }
    }

    /// The theme the doc assigns: OOBE is dark on blue, Settings is light.
    pub fn theme(self) -> Theme {
        match self {
            Self::Oobe => Theme::DarkBlue,
            Self::Settings => Theme::Light,
        }
    }
}

/// The page's colour theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Theme {
    /// Dark theme on a blue background (OOBE).
    DarkBlue,
    /// Light theme (Settings).
    Light,
}

/// The Windows version, from the web view's `User-Agent`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WindowsVersion {
    /// The `Windows NT` version (`10.0` for Windows 10 and 11).
    pub nt: String,
    /// The OS build, when the agent names it (`Edge/18.22631`, `Windows NT 10.0.22631`).
    pub build: Option<u32>,
}

impl WindowsVersion {
    /// Parses a `User-Agent` value; `None` when it names no Windows NT version.
    pub fn from_user_agent(ua: &str) -> Option<Self> {
        let at = ua.find("Windows NT ")? + "Windows NT ".len();
        let rest = &ua[at..];
        let ver: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .take(20)
            .collect();
        let mut parts = ver.split('.');
        let nt = match (parts.next(), parts.next()) {
            (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => format!("{a}.{b}"),
            _ => return None,
        };
        let build = parts.next().and_then(|b| b.parse().ok()).or_else(|| {
            let e = ua.find("Edge/")? + "Edge/".len();
            let v: String = ua[e..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .take(20)
                .collect();
            v.split('.').nth(1)?.parse().ok()
        });
        Some(Self { nt, build })
    }

    /// Windows 11 is NT 10.0 with build 22000 or later.
    pub fn is_windows_11(&self) -> Option<bool> {
        if self.nt != "10.0" {
            return Some(false);
        }
        self.build.map(|b| b >= 22_000)
    }
}

/// A parsed, policy-checked ToU request (the token not yet validated).
#[derive(Clone, PartialEq, Eq)]
pub struct TouRequest {
    /// The allowed `redirect_uri`.
    pub redirect_uri: AllowedRedirect,
    /// The `client-request-id` (lower-case GUID), or a fresh one when the request's was
    /// missing or malformed.
    pub client_request_id: String,
    /// Whether `client_request_id` was generated here.
    pub client_request_id_generated: bool,
    /// `api-version`.
    pub api_version: String,
    /// `mode=azureadjoin`: an organization-owned device (no Decline).
    pub organization_owned: bool,
    /// From `CXH-HOST`.
    pub scenario: Scenario,
    /// From `User-Agent`.
    pub windows: Option<WindowsVersion>,
    /// The path the request came to (forms post back to it).
    pub path: String,
    pub(crate) token: Option<String>,
}

impl fmt::Debug for TouRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TouRequest")
            .field("redirect_uri", &self.redirect_uri)
            .field("client_request_id", &self.client_request_id)
            .field("api_version", &self.api_version)
            .field("organization_owned", &self.organization_owned)
            .field("scenario", &self.scenario)
            .field("windows", &self.windows)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl TouRequest {
    /// The bearer token, if the request carried one. Do not log it.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
}

/// A request refused before a context existed: the error, and where (if anywhere) it may
/// be redirected.
#[derive(Debug)]
pub struct Rejection {
    /// What went wrong.
    pub error: TouError,
    /// The allowed `redirect_uri`, once known.
    pub redirect_uri: Option<AllowedRedirect>,
    /// The `client-request-id`, once known.
    pub client_request_id: Option<String>,
}

/// Whether `s` is a GUID (`8-4-4-4-12` hex digits, optionally in braces).
pub fn is_guid(s: &str) -> bool {
    let s = s
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(s);
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A random (version 4) GUID.
pub(crate) fn new_guid(rng: &mut dyn Entropy) -> Result<String, EntropyUnavailable> {
    let mut b = [0u8; 16];
    rng.fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Parses and checks a ToU `GET` (see the module documentation for the order).
///
/// # Errors
/// A [`Rejection`] carrying the error and, once known, where to redirect it.
#[allow(clippy::result_large_err)] // Parsed once per request; boxing buys nothing.
pub fn parse(
    parts: &Parts,
    policy: &RedirectPolicy,
    api_versions: &[String],
    rng: &mut dyn Entropy,
) -> Result<TouRequest, Rejection> {
    let query = parts.uri.query().unwrap_or("");
    let mut redirect = Vec::new();
    let mut crid = None;
    let mut api = None;
    let mut mode = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()).take(64) {
        match &*k {
            "redirect_uri" => redirect.push(v.into_owned()),
            "client-request-id" => crid = Some(v.into_owned()),
            "api-version" => api = Some(v.into_owned()),
            "mode" => mode = Some(v.into_owned()),
            _ => {}
        }
    }
    let reject = |error, redirect_uri, client_request_id| Rejection {
        error,
        redirect_uri,
        client_request_id,
    };
    // 1. redirect_uri, before anything else.
    let [one] = redirect.as_slice() else {
        return Err(reject(TouError::MissingRedirectUri, None, None));
    };
    let redirect_uri = policy
        .check(one)
        .map_err(|e| reject(TouError::RedirectUri(e), None, None))?;
    // 2. client-request-id: replaced when malformed, never reflected raw.
    let (client_request_id, generated) = match crid.as_deref().map(str::trim) {
        Some(id) if is_guid(id) => (
            id.trim_start_matches('{')
                .trim_end_matches('}')
                .to_ascii_lowercase(),
            false,
        ),
        other => {
            let id = new_guid(rng)
                .map_err(|e| reject(TouError::Seal(e.into()), Some(redirect_uri.clone()), None))?;
            if other.is_some() {
                tracing::warn!(
                    replacement = %id,
                    len = other.map_or(0, str::len),
                    "malformed client-request-id replaced"
                );
            }
            (id, true)
        }
    };
    // 3. api-version.
    let api_version = match api {
        None => {
            return Err(reject(
                TouError::MissingApiVersion,
                Some(redirect_uri),
                Some(client_request_id),
            ));
        }
        Some(v) if api_versions.iter().any(|a| *a == v.trim()) => v.trim().to_owned(),
        Some(v) => {
            let shown: String = v.chars().take(16).collect();
            return Err(reject(
                TouError::UnsupportedApiVersion(shown),
                Some(redirect_uri),
                Some(client_request_id),
            ));
        }
    };
    // 4. mode, theme and Windows version.
    let organization_owned = mode.is_some_and(|m| m.trim().eq_ignore_ascii_case("azureadjoin"));
    let scenario = Scenario::from_cxh_host(header(parts, "cxh-host"));
    let windows = header(parts, "user-agent").and_then(WindowsVersion::from_user_agent);
    // 5. The bearer token (validated by the caller).
    let token = header(parts, "authorization").and_then(|v| {
        let (scheme, rest) = v.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| rest.trim().to_owned())
            .filter(|t| !t.is_empty())
    });
    Ok(TouRequest {
        redirect_uri,
        client_request_id,
        client_request_id_generated: generated,
        api_version,
        organization_owned,
        scenario,
        windows,
        path: parts.uri.path().to_owned(),
        token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents() {
        let w11 = WindowsVersion::from_user_agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64; WebView/3.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.22631").unwrap();
        assert_eq!((w11.nt.as_str(), w11.build), ("10.0", Some(22631)));
        assert_eq!(w11.is_windows_11(), Some(true));
        let w10 =
            WindowsVersion::from_user_agent("Mozilla/5.0 (Windows NT 10.0.19045; Win64; x64)")
                .unwrap();
        assert_eq!(w10.is_windows_11(), Some(false));
        let unknown =
            WindowsVersion::from_user_agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64)").unwrap();
        assert_eq!(unknown.is_windows_11(), None);
        assert_eq!(WindowsVersion::from_user_agent("curl/8"), None);
        assert_eq!(WindowsVersion::from_user_agent("Windows NT "), None);
        assert!(is_guid("34be581c-6ebd-49d6-a4e1-150eff4b7213"));
        assert!(is_guid("{34BE581C-6EBD-49D6-A4E1-150EFF4B7213}"));
        for bad in [
            "",
            "34be581c",
            "34be581c-6ebd-49d6-a4e1-150eff4b721z",
            "<script>",
        ] {
            assert!(!is_guid(bad), "{bad}");
        }
        let mut rng = |d: &mut [u8]| d.fill(0xff);
        let g = new_guid(&mut rng).unwrap();
        assert!(is_guid(&g));
        assert_eq!(&g[14..15], "4");
    }
}
