//! Which `redirect_uri`s the page may send the user back to.
//!
//! By default only the Windows app scheme `ms-appx-web://` (what the Windows web view
//! passes, for example `ms-appx-web://ContosoMdm/ToUResponse`). More schemes, or `https`
//! URLs on listed hosts, by configuration. A URI outside the policy never becomes a
//! `Location` header: the user gets an error page instead (no open redirect).

use url::Url;

/// The `redirect_uri` policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectPolicy {
    schemes: Vec<String>,
    hosts: Vec<(String, String)>,
}

impl Default for RedirectPolicy {
    fn default() -> Self {
        Self {
            schemes: vec!["ms-appx-web".to_owned()],
            hosts: Vec::new(),
        }
    }
}

/// Why a `redirect_uri` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// Not an absolute URI.
    #[error("redirect_uri is not an absolute URI")]
    NotAUri,
    /// Longer than 2048 bytes.
    #[error("redirect_uri is too long")]
    TooLong,
    /// Carries a fragment, user information, control or non-ASCII characters.
    #[error("redirect_uri has a fragment, user info or control characters")]
    Unsafe,
    /// Scheme or host not allowed by the policy.
    #[error("redirect_uri scheme {scheme:?} / host {host:?} is not allowed")]
    NotAllowed {
        /// The scheme.
        scheme: String,
        /// The host, if any.
        host: Option<String>,
    },
}

/// A `redirect_uri` the policy allowed, as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AllowedRedirect(String);

impl AllowedRedirect {
    /// The URI.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The CSP source that lets a form submission end in this redirect
    /// (`ms-appx-web:` for app schemes, the origin for `http(s)`).
    pub(crate) fn csp_source(&self) -> String {
        match Url::parse(&self.0) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u.origin().ascii_serialization(),
            Ok(u) => format!("{}:", u.scheme()),
            Err(_) => "'none'".to_owned(),
        }
    }
}

impl RedirectPolicy {
    /// Only `ms-appx-web://`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also allows any URI of `scheme` (for other Windows app schemes). `http` and `https`
    /// are refused here: allow them per host with [`RedirectPolicy::allow_host`].
    #[must_use]
    pub fn allow_scheme(mut self, scheme: &str) -> Self {
        let s = scheme.trim_end_matches(':').to_ascii_lowercase();
        if s != "http" && s != "https" && !self.schemes.contains(&s) {
            self.schemes.push(s);
        }
        self
    }

    /// Also allows `scheme://host` URIs (for example `https` on the vendor's own host, or
    /// `http` on loopback in tests).
    #[must_use]
    pub fn allow_host(mut self, scheme: &str, host: &str) -> Self {
        self.hosts
            .push((scheme.to_ascii_lowercase(), host.to_ascii_lowercase()));
        self
    }

    /// Checks `uri`.
    ///
    /// # Errors
    /// See [`RedirectError`].
    pub fn check(&self, uri: &str) -> Result<AllowedRedirect, RedirectError> {
        if uri.len() > 2048 {
            return Err(RedirectError::TooLong);
        }
        // ASCII only (Windows app URIs are; anything else would go out raw in `Location`).
        if !uri.is_ascii() || uri.chars().any(|c| c.is_control() || c == ' ' || c == '#') {
            return Err(RedirectError::Unsafe);
        }
        let url = Url::parse(uri).map_err(|_| RedirectError::NotAUri)?;
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(RedirectError::Unsafe);
        }
        let scheme = url.scheme().to_ascii_lowercase();
        let host = url.host_str().map(str::to_ascii_lowercase);
        let allowed = self.schemes.contains(&scheme)
            || host
                .as_ref()
                .is_some_and(|h| self.hosts.iter().any(|(s, a)| *s == scheme && a == h));
        if !allowed {
            return Err(RedirectError::NotAllowed { scheme, host });
        }
        Ok(AllowedRedirect(uri.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_allows_only_the_app_scheme() {
        let p = RedirectPolicy::default();
        assert!(p.check("ms-appx-web://ContosoMdm/ToUResponse").is_ok());
        assert!(p.check("MS-APPX-WEB://ContosoMdm/ToUResponse?a=b").is_ok());
        for bad in [
            "https://evil.example/steal",
            "http://127.0.0.1/x",
            "javascript:alert(1)",
            "data:text/html,hi",
            "//evil.example/x",
            "/relative",
            "ms-appx-web://App/x#frag",
            "ms-appx-web://user:pw@App/x",
            "ms-appx-web://App/x\r\nSet-Cookie: a=b",
            "ms-appx-web://App/\u{e9}t\u{e9}",
            "",
        ] {
            assert!(p.check(bad).is_err(), "{bad}");
        }
        let p = p.allow_host("https", "mdm.example").allow_scheme("ms-appx");
        assert!(p.check("https://mdm.example/done").is_ok());
        assert!(p.check("https://MDM.example/done").is_ok());
        assert!(p.check("https://mdm.example.evil.example/done").is_err());
        assert!(p.check("http://mdm.example/done").is_err());
        assert!(p.check("ms-appx://x/y").is_ok());
        assert!(
            RedirectPolicy::default()
                .allow_scheme("https")
                .check("https://a/b")
                .is_err()
        );
    }
}
