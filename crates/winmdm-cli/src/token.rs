//! `winmdm token inspect` and `winmdm token validate`.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::UnixTime;
use serde_json::{Value, json};
use winmdm_entra::{Error, KeyCache, KeySource, Policy, Principals, TokenVersion, Validator};

/// The v2 issuer template of the global Entra cloud.
pub const V2_ISSUER_TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
/// The v1 issuer template of the global Entra cloud.
pub const V1_ISSUER_TEMPLATE: &str = "https://sts.windows.net/{tenantid}/";

/// Strips white space and an optional `Bearer ` prefix (tokens are often pasted from an
/// `Authorization` header).
pub fn clean_token(input: &str) -> &str {
    let t = input.trim();
    t.strip_prefix("Bearer ")
        .or_else(|| t.strip_prefix("bearer "))
        .map_or(t, str::trim)
}

/// Decodes a token without verifying it, as pretty JSON with a warning label.
///
/// # Errors
/// When the token is not a decodable compact JWS.
pub fn inspect(input: &str) -> Result<String, Error> {
    let (header, claims) = winmdm_entra::decode_unverified(clean_token(input))?;
    let mut times = serde_json::Map::new();
    for name in ["iat", "nbf", "exp"] {
        if let Some(secs) = claims.get(name).and_then(Value::as_u64) {
            times.insert(name.to_owned(), json!(rfc3339(secs)));
        }
    }
    let doc = json!({
        "verified": false,
        "warning": "UNVERIFIED: decoded only; the signature, issuer, audience and times were not checked",
        "header": header,
        "claims": claims,
        "times_utc": times,
    });
    Ok(serde_json::to_string_pretty(&doc).unwrap_or_default())
}

/// Formats Unix seconds as an RFC 3339 UTC timestamp.
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for the Unix era.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// What `winmdm token validate` checks against.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// The JWKS document.
    pub jwks: Vec<u8>,
    /// Accepted tenant IDs.
    pub tenants: Vec<String>,
    /// Accepted audiences.
    pub audiences: Vec<String>,
    /// Required scopes.
    pub scopes: Vec<String>,
    /// Accept v1 tokens too.
    pub allow_v1: bool,
    /// Validation time, Unix seconds (default: now).
    pub now: Option<u64>,
    /// Whose tokens are accepted (signed-in users' by default, as an MDM needs; app-only
    /// tokens such as Graph's with [`Principals::Applications`]).
    pub principals: Principals,
}

/// Validates `token` against a fixed JWKS and the global Entra issuers, returning the
/// verified claims as pretty JSON.
///
/// # Errors
/// The validation error (see [`Error::code`] for its stable name).
pub fn validate(token: &str, options: &ValidateOptions) -> Result<String, Error> {
    let mut sources = vec![KeySource::static_jwks(
        &options.jwks,
        V2_ISSUER_TEMPLATE,
        TokenVersion::V2,
    )?];
    if options.allow_v1 {
        sources.push(KeySource::static_jwks(
            &options.jwks,
            V1_ISSUER_TEMPLATE,
            TokenVersion::V1,
        )?);
    }
    let mut builder = Policy::builder()
        .allow_tenants(&options.tenants)
        .allow_audiences(options.audiences.iter().cloned());
    if options.allow_v1 {
        builder = builder.accept_v1();
    }
    for scope in &options.scopes {
        builder = builder.require_scope(scope.clone());
    }
    builder = builder.principals(options.principals);
    let validator = Validator::new(builder.build()?, Arc::new(KeyCache::new(sources)));
    let now = options.now.map_or_else(UnixTime::now, |s| {
        UnixTime::since_unix_epoch(Duration::from_secs(s))
    });
    let claims = validator.validate(clean_token(token), now)?;
    let mut doc = serde_json::to_value(claims.get()).unwrap_or_default();
    doc["raw"] = Value::Object(claims.raw());
    Ok(serde_json::to_string_pretty(&doc).unwrap_or_default())
}

/// Reads a JWKS from a file path or an `http(s)://` URL.
///
/// # Errors
/// [`Error::Fetch`] when the file cannot be read or the URL cannot be fetched.
pub fn load_jwks(location: &str) -> Result<Vec<u8>, Error> {
    if location.starts_with("https://") || location.starts_with("http://") {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Fetch {
                what: "JWKS",
                reason: e.to_string(),
            })?;
        runtime.block_on(async {
            let client = winmdm_entra::fetch::default_client()?;
            let request =
                http::Request::get(location)
                    .body(Vec::new())
                    .map_err(|e| Error::Fetch {
                        what: "JWKS",
                        reason: e.to_string(),
                    })?;
            let response = winmdm_entra::fetch::send(&client, request).await?;
            if !response.status().is_success() {
                return Err(Error::Fetch {
                    what: "JWKS",
                    reason: format!("HTTP {}", response.status().as_u16()),
                });
            }
            Ok(response.into_body())
        })
    } else {
        crate::input::read(location).map_err(|reason| Error::Fetch {
            what: "JWKS",
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_780_000_000), "2026-05-28T20:26:40Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn bearer_prefix() {
        assert_eq!(clean_token("  Bearer a.b.c\n"), "a.b.c");
        assert_eq!(clean_token("a.b.c"), "a.b.c");
    }
}
