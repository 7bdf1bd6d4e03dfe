//! The validator: a [`Policy`] applied to tokens with keys from a [`KeyCache`].

use std::borrow::Cow;
use std::sync::Arc;

use rustls_pki_types::UnixTime;
use serde_json::{Map, Value};

use crate::claims::{EntraClaims, Verified};
use crate::error::Malformed;
use crate::policy::is_guid;
use crate::{Algorithm, Error, KeyCache, Policy, Principals, TokenVersion, jwt};

/// Validates Entra access tokens. Cheap to share: wrap in an `Arc` or clone the parts.
///
/// The checks, in order (each failure has its own [`Error`] variant; see
/// [`crate::manual::security_model`] for why this order):
///
/// 1. length ≤ the policy's limit;
/// 2. three base64url segments, JSON header and claims, no `crit`;
/// 3. `alg` in the allow-list (`none` and `HS*` never are);
/// 4. `kid` present (`jku`, `x5u`, `x5c` are ignored: keys never come from the token);
/// 5. `iss`, `aud`, `exp` present (`tid`, `oid`, `ver` too);
/// 6. `iss` has an Entra form, which gives the version; `ver` agrees with it;
/// 7. `tid` is a GUID equal to the tenant segment of `iss`;
/// 8. the version is accepted;
/// 9. the tenant is accepted;
/// 10. a key source of that version names exactly this `iss` (tenant-independent
///     metadata: its `{tenantid}` template with `tid` substituted), and has the `kid`;
/// 11. the key's own JWKS `issuer` belongs to this issuer and tenant;
/// 12. the signature verifies with that key and `alg`;
/// 13. an `aud` value is accepted;
/// 14. `exp`, `nbf`, `iat` hold with the clock skew;
/// 15. the token is of a principal the policy accepts: by default a signed-in user's
///     (delegated: `idtyp` `user`, or `scp` present), never an app-only token;
/// 16. required scopes and roles are present.
#[derive(Debug, Clone)]
pub struct Validator {
    policy: Arc<Policy>,
    cache: Arc<KeyCache>,
}

/// The claims a validation reads, borrowed from the token.
#[derive(Default)]
struct View<'v> {
    iss: Option<&'v str>,
    aud: Option<Vec<&'v str>>,
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    ver: Option<&'v str>,
    tid: Option<&'v str>,
    oid: Option<&'v str>,
    upn: Option<&'v str>,
    preferred_username: Option<&'v str>,
    name: Option<&'v str>,
    deviceid: Option<&'v str>,
    idtyp: Option<&'v str>,
    azp: Option<&'v str>,
    appid: Option<&'v str>,
    scopes: Vec<&'v str>,
    roles: Vec<&'v str>,
    guest: bool,
}

/// Fast path: the claims validation reads, deserialized without building a map;
/// strings borrow from the payload when they have no escapes. Any type surprise falls
/// back to the map-based path, which names the offending claim.
#[derive(serde::Deserialize)]
struct FastClaims<'a> {
    #[serde(borrow)]
    iss: Option<Cow<'a, str>>,
    #[serde(borrow)]
    aud: Option<OneOrMany<'a>>,
    exp: Option<serde_json::Number>,
    nbf: Option<serde_json::Number>,
    iat: Option<serde_json::Number>,
    #[serde(borrow)]
    ver: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    oid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    upn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    preferred_username: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    deviceid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    idtyp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    azp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    appid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    scp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    roles: Option<Vec<Cow<'a, str>>>,
    acct: Option<Value>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany<'a> {
    #[serde(borrow)]
    One(Cow<'a, str>),
    #[serde(borrow)]
    Many(Vec<Cow<'a, str>>),
}

fn number_to_secs(n: &serde_json::Number, name: &'static str) -> Result<u64, Error> {
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.is_finite())
                .map(|f| f as u64)
        })
        .ok_or_else(|| Malformed::ClaimType(name).into())
}

impl<'v> View<'v> {
    fn from_fast(c: &'v FastClaims<'_>) -> Result<Self, Error> {
        let time = |n: &Option<serde_json::Number>, name| {
            n.as_ref().map(|n| number_to_secs(n, name)).transpose()
        };
        Ok(Self {
            iss: c.iss.as_deref(),
            aud: c.aud.as_ref().map(|a| match a {
                OneOrMany::One(s) => vec![s.as_ref()],
                OneOrMany::Many(v) => v.iter().map(AsRef::as_ref).collect(),
            }),
            exp: time(&c.exp, "exp")?,
            nbf: time(&c.nbf, "nbf")?,
            iat: time(&c.iat, "iat")?,
            ver: c.ver.as_deref(),
            tid: c.tid.as_deref(),
            oid: c.oid.as_deref(),
            upn: c.upn.as_deref(),
            preferred_username: c.preferred_username.as_deref(),
            name: c.name.as_deref(),
            deviceid: c.deviceid.as_deref(),
            idtyp: c.idtyp.as_deref(),
            azp: c.azp.as_deref(),
            appid: c.appid.as_deref(),
            scopes: c.scp.as_deref().map_or_else(Vec::new, |s| {
                s.split(' ').filter(|x| !x.is_empty()).collect()
            }),
            roles: c
                .roles
                .as_ref()
                .map_or_else(Vec::new, |r| r.iter().map(AsRef::as_ref).collect()),
            guest: c.acct.as_ref().and_then(Value::as_u64) == Some(1),
        })
    }

    fn from_map(claims: &'v Map<String, Value>) -> Result<Self, Error> {
        let s = |name: &'static str| str_claim(claims, name);
        Ok(Self {
            iss: s("iss")?,
            aud: if claims.get("aud").is_some_and(|v| !v.is_null()) {
                Some(list_claim(claims, "aud")?)
            } else {
                None
            },
            exp: time_claim(claims, "exp")?,
            nbf: time_claim(claims, "nbf")?,
            iat: time_claim(claims, "iat")?,
            ver: s("ver")?,
            tid: s("tid")?,
            oid: s("oid")?,
            upn: s("upn")?,
            preferred_username: s("preferred_username")?,
            name: s("name")?,
            deviceid: s("deviceid")?,
            idtyp: s("idtyp")?,
            azp: s("azp")?,
            appid: s("appid")?,
            scopes: match claims.get("scp") {
                Some(Value::String(v)) => v.split(' ').filter(|x| !x.is_empty()).collect(),
                // Not what Entra sends, but unambiguous: a list of scopes.
                _ => list_claim(claims, "scp")?,
            },
            roles: list_claim(claims, "roles")?,
            guest: claims.get("acct").and_then(Value::as_u64) == Some(1),
        })
    }
}

fn str_claim<'a>(
    claims: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, Error> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Malformed::ClaimType(name).into()),
    }
}

fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, Error> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => number_to_secs(n, name).map(Some),
        Some(_) => Err(Malformed::ClaimType(name).into()),
    }
}

fn list_claim<'a>(
    claims: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Vec<&'a str>, Error> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().ok_or_else(|| Malformed::ClaimType(name).into()))
            .collect(),
        Some(_) => Err(Malformed::ClaimType(name).into()),
    }
}

/// Whether `value` equals `template` with every `{tenantid}` replaced by `tid`, without
/// building the substituted string.
pub(crate) fn matches_template(template: &str, tid: &str, value: &str) -> bool {
    const PLACEHOLDER: &str = "{tenantid}";
    let mut rest = value;
    let mut parts = template.split(PLACEHOLDER).peekable();
    while let Some(part) = parts.next() {
        let Some(after) = rest.strip_prefix(part) else {
            return false;
        };
        rest = after;
        if parts.peek().is_some() {
            let Some(after) = rest.strip_prefix(tid) else {
                return false;
            };
            rest = after;
        }
    }
    rest.is_empty()
}

/// The version an issuer's form implies, and its tenant segment:
/// `https://<host>/<tenant>/v2.0` (v2) or `https://<host>/<tenant>/` (v1).
pub(crate) fn issuer_form(iss: &str) -> Option<(TokenVersion, &str)> {
    let rest = iss.strip_prefix("https://")?;
    let (host, path) = rest.split_once('/')?;
    if host.is_empty() {
        return None;
    }
    if let Some(tenant) = path.strip_suffix("/v2.0") {
        (!tenant.is_empty() && !tenant.contains('/')).then_some((TokenVersion::V2, tenant))
    } else {
        let tenant = path.strip_suffix('/')?;
        (!tenant.is_empty() && !tenant.contains('/')).then_some((TokenVersion::V1, tenant))
    }
}

impl Validator {
    /// A validator applying `policy` with keys from `cache`.
    pub fn new(policy: Policy, cache: Arc<KeyCache>) -> Self {
        Self {
            policy: Arc::new(policy),
            cache,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The key cache (drive its fetches; see [`KeyCache`]).
    pub fn cache(&self) -> &Arc<KeyCache> {
        &self.cache
    }

    /// Validates `token` at time `now`. See the type docs for the checks.
    ///
    /// On [`Error::UnknownKid`] the cache has scheduled a key refresh (at most once per
    /// five minutes per source); drive the cache and retry to accept tokens signed with
    /// a key published since the last refresh.
    pub fn validate(&self, token: &str, now: UnixTime) -> Result<Verified<EntraClaims>, Error> {
        let policy = &*self.policy;
        let now = now.as_secs();
        let skew = policy.clock_skew().as_secs();

        // 1–2. Size and structure.
        if token.len() > policy.max_token_len() {
            return Err(Error::TokenTooLarge {
                len: token.len(),
                max: policy.max_token_len(),
            });
        }
        let decoded = jwt::decode(token)?;

        // 3. Algorithm allow-list.
        let alg = Algorithm::from_name(&decoded.header.alg)
            .filter(|a| policy.algorithms().contains(a))
            .ok_or_else(|| Error::AlgorithmNotAllowed {
                alg: decoded.header.alg.clone(),
            })?;

        // 4. Key ID.
        let kid = decoded.header.kid.as_deref().ok_or(Error::MissingKid)?;

        // 5. Claims (zero-copy fast path; the map path only to name a mistyped claim).
        let json = &decoded.claims_json;
        let fast = serde_json::from_slice::<FastClaims<'_>>(json).ok();
        let map;
        let claims = match &fast {
            Some(f) => View::from_fast(f)?,
            None => {
                map = jwt::object(json, crate::Part::Claims)?;
                View::from_map(&map)?
            }
        };
        let iss = claims.iss.ok_or(Error::MissingClaim { claim: "iss" })?;
        let aud = claims
            .aud
            .as_deref()
            .ok_or(Error::MissingClaim { claim: "aud" })?;
        let exp = claims.exp.ok_or(Error::MissingClaim { claim: "exp" })?;

        // 6. Issuer form, version, and `ver` consistency.
        let (version, iss_tenant) = issuer_form(iss).ok_or_else(|| Error::UnrecognizedIssuer {
            iss: iss.to_owned(),
        })?;
        let ver_ok = matches!(
            (version, claims.ver),
            (TokenVersion::V1, Some("1.0")) | (TokenVersion::V2, Some("2.0"))
        );
        if !ver_ok {
            return Err(Error::VersionMismatch {
                ver: claims.ver.map(str::to_owned),
                issuer_form: version,
            });
        }

        // 7. Tenant ID.
        let tid = claims.tid.ok_or(Error::MissingClaim { claim: "tid" })?;
        if !is_guid(tid) {
            return Err(Error::InvalidTenantId {
                tid: tid.to_owned(),
            });
        }
        if !tid.eq_ignore_ascii_case(iss_tenant) {
            return Err(Error::TenantIssuerMismatch {
                tid: tid.to_owned(),
                iss: iss.to_owned(),
            });
        }

        // 8–9. Version and tenant policy.
        if !policy.allows_version(version) {
            return Err(Error::VersionNotAllowed { version });
        }
        if !policy.allows_tenant(tid) {
            return Err(Error::TenantNotAllowed {
                tid: tid.to_owned(),
            });
        }

        // 10. Exact issuer and key lookup.
        let resolved = self.cache.resolve(version, tid, iss, kid, now)?;

        // 11. The key's own issuer (Microsoft's per-key `issuer`).
        match resolved.key.issuer() {
            Some(key_issuer) => {
                let same = matches_template(key_issuer, tid, iss)
                    || (version == TokenVersion::V1
                        && issuer_form(key_issuer).is_some_and(|(_, t)| {
                            t == "{tenantid}" || t.eq_ignore_ascii_case(tid)
                        }));
                if !same {
                    return Err(Error::KeyIssuerMismatch {
                        key_issuer: key_issuer.replace("{tenantid}", tid),
                        iss: iss.to_owned(),
                    });
                }
            }
            None if resolved.tenant_independent => {
                return Err(Error::KeyIssuerMissing {
                    kid: kid.to_owned(),
                });
            }
            None => {}
        }

        // 12. Signature.
        resolved
            .key
            .verify(alg, decoded.signing_input.as_bytes(), &decoded.signature)?;

        // 13. Audience.
        let audience = aud
            .iter()
            .find(|a| policy.audiences().iter().any(|p| p == **a))
            .map(|a| (*a).to_owned())
            .ok_or_else(|| Error::AudienceNotAllowed {
                aud: aud.iter().map(|a| (*a).to_owned()).collect(),
            })?;

        // 14. Times.
        if now > exp.saturating_add(skew) {
            return Err(Error::Expired { now, exp });
        }
        if let Some(nbf) = claims.nbf
            && nbf > now.saturating_add(skew)
        {
            return Err(Error::NotYetValid { now, nbf });
        }
        if let Some(iat) = claims.iat
            && iat > now.saturating_add(skew)
        {
            return Err(Error::IssuedInFuture { now, iat });
        }

        // 15. Whose token it is (see `Principals`).
        let found = match claims.idtyp {
            Some(t) => t,
            None if claims.scopes.is_empty() => "app",
            None => "user",
        };
        let accepted = match policy.principals() {
            Principals::Users => Some(("user", "users")),
            Principals::Applications => Some(("app", "applications")),
            Principals::Any => None,
        };
        if let Some((wanted, accepted)) = accepted
            && found != wanted
        {
            return Err(Error::PrincipalNotAllowed {
                found: found.to_owned(),
                accepted,
            });
        }

        // 16. Scopes and roles.
        for scope in policy.required_scopes() {
            if !claims.scopes.contains(&scope.as_str()) {
                return Err(Error::MissingScope {
                    scope: scope.clone(),
                });
            }
        }
        for role in policy.required_roles() {
            if !claims.roles.contains(&role.as_str()) {
                return Err(Error::MissingRole { role: role.clone() });
            }
        }

        let object_id = claims
            .oid
            .ok_or(Error::MissingClaim { claim: "oid" })?
            .to_owned();
        let own = |v: Option<&str>| v.map(str::to_owned);
        Ok(Verified::new(EntraClaims {
            version,
            issuer: iss.to_owned(),
            audience,
            tenant_id: tid.to_ascii_lowercase(),
            object_id,
            upn: own(claims.upn.or(claims.preferred_username)),
            name: own(claims.name),
            scopes: claims.scopes.iter().map(|s| (*s).to_owned()).collect(),
            roles: claims.roles.iter().map(|s| (*s).to_owned()).collect(),
            device_id: own(claims.deviceid),
            identity_type: own(claims.idtyp),
            client_app_id: own(claims.azp.or(claims.appid)),
            guest: claims.guest,
            issued_at: claims.iat,
            not_before: claims.nbf,
            expires_at: exp,
            raw_json: String::from_utf8_lossy(json).into_owned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_matching() {
        let t = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert!(matches_template(
            t,
            "abc",
            "https://login.microsoftonline.com/abc/v2.0"
        ));
        assert!(!matches_template(
            t,
            "abc",
            "https://login.microsoftonline.com/abd/v2.0"
        ));
        assert!(!matches_template(
            t,
            "abc",
            "https://login.microsoftonline.com/abc/v2.0/"
        ));
        assert!(matches_template(
            "https://x/fixed/",
            "abc",
            "https://x/fixed/"
        ));
        assert!(!matches_template(
            "https://x/fixed/",
            "abc",
            "https://x/fixed"
        ));
        assert!(matches_template("a{tenantid}b{tenantid}", "t", "atbt"));
    }

    #[test]
    fn issuer_forms() {
        assert_eq!(
            issuer_form("https://login.microsoftonline.com/abc/v2.0"),
            Some((TokenVersion::V2, "abc"))
        );
        assert_eq!(
            issuer_form("https://sts.windows.net/abc/"),
            Some((TokenVersion::V1, "abc"))
        );
        for bad in [
            "http://sts.windows.net/abc/",
            "https://sts.windows.net/abc",
            "https://sts.windows.net//",
            "https://x/a/b/v2.0",
            "https:///abc/",
            "",
        ] {
            assert_eq!(issuer_form(bad), None, "{bad}");
        }
    }
}
