//! The validator: a [`Policy`] applied to tokens with keys from a [`KeyCache`].

use std::sync::Arc;

use rustls_pki_types::UnixTime;
use serde_json::{Map, Value};

use crate::claims::{EntraClaims, Verified};
use crate::error::Malformed;
use crate::policy::is_guid;
use crate::{Algorithm, Error, KeyCache, Policy, TokenVersion, jwt};

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
/// 15. required scopes and roles are present.
#[derive(Debug, Clone)]
pub struct Validator {
    policy: Arc<Policy>,
    cache: Arc<KeyCache>,
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
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 0.0 && f.is_finite())
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| Malformed::ClaimType(name).into()),
        Some(_) => Err(Malformed::ClaimType(name).into()),
    }
}

fn list_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Vec<String>, Error> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split(' ')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Malformed::ClaimType(name).into())
            })
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

        // 5. Required claims.
        let claims = &decoded.claims;
        let iss = str_claim(claims, "iss")?.ok_or(Error::MissingClaim { claim: "iss" })?;
        if !claims.contains_key("aud") {
            return Err(Error::MissingClaim { claim: "aud" });
        }
        let aud = list_claim(claims, "aud")?;
        let exp = time_claim(claims, "exp")?.ok_or(Error::MissingClaim { claim: "exp" })?;
        let nbf = time_claim(claims, "nbf")?;
        let iat = time_claim(claims, "iat")?;

        // 6. Issuer form, version, and `ver` consistency.
        let (version, iss_tenant) = issuer_form(iss).ok_or_else(|| Error::UnrecognizedIssuer {
            iss: iss.to_owned(),
        })?;
        let ver = str_claim(claims, "ver")?;
        let ver_ok = matches!(
            (version, ver),
            (TokenVersion::V1, Some("1.0")) | (TokenVersion::V2, Some("2.0"))
        );
        if !ver_ok {
            return Err(Error::VersionMismatch {
                ver: ver.map(str::to_owned),
                issuer_form: version,
            });
        }

        // 7. Tenant ID.
        let tid = str_claim(claims, "tid")?.ok_or(Error::MissingClaim { claim: "tid" })?;
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
            .find(|a| policy.audiences().iter().any(|p| p == *a))
            .cloned()
            .ok_or_else(|| Error::AudienceNotAllowed { aud: aud.clone() })?;

        // 14. Times.
        if now > exp.saturating_add(skew) {
            return Err(Error::Expired { now, exp });
        }
        if let Some(nbf) = nbf
            && nbf > now.saturating_add(skew)
        {
            return Err(Error::NotYetValid { now, nbf });
        }
        if let Some(iat) = iat
            && iat > now.saturating_add(skew)
        {
            return Err(Error::IssuedInFuture { now, iat });
        }

        // 15. Scopes and roles.
        let scopes = list_claim(claims, "scp")?;
        let roles = list_claim(claims, "roles")?;
        for scope in policy.required_scopes() {
            if !scopes.contains(scope) {
                return Err(Error::MissingScope {
                    scope: scope.clone(),
                });
            }
        }
        for role in policy.required_roles() {
            if !roles.contains(role) {
                return Err(Error::MissingRole { role: role.clone() });
            }
        }

        let oid = str_claim(claims, "oid")?
            .ok_or(Error::MissingClaim { claim: "oid" })?
            .to_owned();
        let upn = match str_claim(claims, "upn")? {
            Some(upn) => Some(upn),
            None => str_claim(claims, "preferred_username")?,
        }
        .map(str::to_owned);
        let client_app_id = match str_claim(claims, "azp")? {
            Some(azp) => Some(azp),
            None => str_claim(claims, "appid")?,
        }
        .map(str::to_owned);
        let name = str_claim(claims, "name")?.map(str::to_owned);
        let device_id = str_claim(claims, "deviceid")?.map(str::to_owned);
        let identity_type = str_claim(claims, "idtyp")?.map(str::to_owned);
        let guest = claims.get("acct").and_then(Value::as_u64) == Some(1);
        let issuer = iss.to_owned();
        let tenant_id = tid.to_ascii_lowercase();
        Ok(Verified::new(EntraClaims {
            version,
            issuer,
            audience,
            tenant_id,
            object_id: oid,
            upn,
            name,
            scopes,
            roles,
            device_id,
            identity_type,
            client_app_id,
            guest,
            issued_at: iat,
            not_before: nbf,
            expires_at: exp,
            raw: decoded.claims,
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
