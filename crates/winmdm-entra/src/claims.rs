//! Verified claims.

use serde_json::{Map, Value};

use crate::TokenVersion;

/// Evidence that a value passed validation. Only this crate can construct it.
///
/// ```compile_fail
/// // There is no public constructor:
/// let forged = winmdm_entra::Verified { inner: () };
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Verified<T> {
    inner: T,
}

impl<T> Verified<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self { inner }
    }

    /// The verified value.
    pub fn get(&self) -> &T {
        &self.inner
    }

    /// Gives up the evidence and returns the value.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T> core::ops::Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

/// The claims of a validated Entra access token.
///
/// Key user data by (`tenant_id`, `object_id`): `upn` and names can change and must not
/// be used for authorization.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct EntraClaims {
    /// Token format.
    pub version: TokenVersion,
    /// `iss`, checked exactly.
    pub issuer: String,
    /// The `aud` value that matched the policy.
    pub audience: String,
    /// `tid`: the tenant (a GUID, equal to the issuer's tenant segment).
    pub tenant_id: String,
    /// `oid`: the user's (or service principal's) immutable object ID in the tenant.
    pub object_id: String,
    /// `upn`, falling back to `preferred_username` (v2 tokens rarely carry `upn`).
    pub upn: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `scp`, split on spaces (delegated permissions).
    pub scopes: Vec<String>,
    /// `roles` (application permissions or app roles).
    pub roles: Vec<String>,
    /// `deviceid`, present in tokens presented at enrollment.
    pub device_id: Option<String>,
    /// `idtyp` (`user`, `app`, `device`) when the token carries it.
    pub identity_type: Option<String>,
    /// `azp` (v2) or `appid` (v1): the client application.
    pub client_app_id: Option<String>,
    /// `acct` is 1: the user is a guest in the tenant.
    pub guest: bool,
    /// `iat`, Unix seconds.
    pub issued_at: Option<u64>,
    /// `nbf`, Unix seconds.
    pub not_before: Option<u64>,
    /// `exp`, Unix seconds.
    pub expires_at: u64,
    /// The claims JSON as received (see [`EntraClaims::raw`]).
    #[serde(skip)]
    pub(crate) raw_json: String,
}

impl EntraClaims {
    /// Every claim as received, including those above (parsed on request: validation
    /// itself never builds this map).
    pub fn raw(&self) -> Map<String, Value> {
        match serde_json::from_str(&self.raw_json) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }

    /// The claims JSON text as received.
    pub fn raw_json(&self) -> &str {
        &self.raw_json
    }

    /// Whether `scp` contains `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether `roles` contains `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}
