//! What a validator accepts, decided explicitly.
//!
//! The builder asks for the two security decisions in order — which tenants, then which
//! audiences — before anything else can be set; there is no default that accepts every
//! tenant. A multi-tenant SaaS MDM supplies a function that looks the tenant up in its
//! own customer table.
//!
//! ```
//! use winmdm_entra::{Algorithm, Policy};
//! let policy = Policy::builder()
//!     .allow_tenants(["72f988bf-0000-4000-8000-00000000c0de"])
//!     .allow_audiences(["a1b2c3d4-0000-4000-8000-00000000a0d1"])
//!     .require_scope("mdm_delegation")
//!     .build()?;
//! assert_eq!(policy.algorithms(), [Algorithm::Rs256]);
//! # Ok::<(), winmdm_entra::Error>(())
//! ```

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{Algorithm, Error, TokenVersion};

/// Default clock skew: 300 s, as Microsoft's own libraries use.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Default maximum token length: 16 KiB (Entra access tokens are 1–3 KiB; a user in many
/// groups without overage handling stays well under this).
pub const DEFAULT_MAX_TOKEN_LEN: usize = 16 * 1024;

type TenantFn = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Which tenants are accepted.
#[derive(Clone)]
enum Tenants {
    List(HashSet<String>),
    Function(TenantFn),
}

impl fmt::Debug for Tenants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::List(l) => f.debug_tuple("List").field(l).finish(),
            Self::Function(_) => f.write_str("Function(..)"),
        }
    }
}

/// A complete validation policy. Build one with [`Policy::builder`].
#[derive(Debug, Clone)]
pub struct Policy {
    tenants: Tenants,
    audiences: Vec<String>,
    accept_v1: bool,
    required_scopes: Vec<String>,
    required_roles: Vec<String>,
    principals: Principals,
    clock_skew: Duration,
    algorithms: Vec<Algorithm>,
    max_token_len: usize,
}

/// Whose tokens a policy accepts.
///
/// A token is a **user's** (delegated) when its `idtyp` claim is `user`, or, without
/// `idtyp`, when it carries delegated scopes (`scp`): Entra puts `scp` only in tokens issued
/// for a signed-in user. It is an **application's** (app-only, client credentials) when
/// `idtyp` is `app`, or when it has no `scp`. Any other `idtyp` (`device`) is neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Principals {
    /// Delegated tokens of a signed-in user only (the default): the Terms-of-Use page,
    /// enrollment and the OMA-DM `AADUserToken` alert.
    #[default]
    Users,
    /// App-only tokens only (an API called by daemons).
    Applications,
    /// Both (check [`EntraClaims::identity_type`](crate::EntraClaims) yourself).
    Any,
}

/// Builder state: the tenant decision comes first.
#[derive(Debug)]
pub struct WantsTenants(());
/// Builder state: the audience decision comes next.
#[derive(Debug)]
pub struct WantsAudiences {
    tenants: Tenants,
}
/// Builder state: the required decisions are made; options may follow.
#[derive(Debug)]
pub struct Ready {
    policy: Policy,
}

/// Builds a [`Policy`]; see the module docs.
#[derive(Debug)]
pub struct PolicyBuilder<S> {
    state: S,
    errors: Vec<String>,
}

impl Policy {
    /// Starts a policy.
    pub fn builder() -> PolicyBuilder<WantsTenants> {
        PolicyBuilder {
            state: WantsTenants(()),
            errors: Vec::new(),
        }
    }

    /// Whether `tid` is accepted.
    pub fn allows_tenant(&self, tid: &str) -> bool {
        match &self.tenants {
            Tenants::List(list) => list.contains(&tid.to_ascii_lowercase()),
            Tenants::Function(f) => f(tid),
        }
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// Whether `version` is accepted.
    pub fn allows_version(&self, version: TokenVersion) -> bool {
        match version {
            TokenVersion::V2 => true,
            TokenVersion::V1 => self.accept_v1,
        }
    }

    /// Scopes that must all be in `scp`.
    pub fn required_scopes(&self) -> &[String] {
        &self.required_scopes
    }

    /// Roles that must all be in `roles`.
    pub fn required_roles(&self) -> &[String] {
        &self.required_roles
    }

    /// Whose tokens are accepted (default: [`Principals::Users`]).
    pub fn principals(&self) -> Principals {
        self.principals
    }

    /// The allowed clock skew.
    pub fn clock_skew(&self) -> Duration {
        self.clock_skew
    }

    /// The allowed signature algorithms.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// The longest token accepted, in bytes.
    pub fn max_token_len(&self) -> usize {
        self.max_token_len
    }
}

pub(crate) fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

impl PolicyBuilder<WantsTenants> {
    /// Accepts exactly these tenant IDs (GUIDs, any case). An empty list is an error at
    /// [`build`](PolicyBuilder::build).
    pub fn allow_tenants<I, S>(mut self, tenant_ids: I) -> PolicyBuilder<WantsAudiences>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = HashSet::new();
        for t in tenant_ids {
            let t = t.as_ref().trim();
            if is_guid(t) {
                list.insert(t.to_ascii_lowercase());
            } else {
                self.errors.push(format!(
                    "tenant {t:?} is not a GUID (use tenant IDs, not names)"
                ));
            }
        }
        if list.is_empty() {
            self.errors.push("no tenant is allowed".to_owned());
        }
        PolicyBuilder {
            state: WantsAudiences {
                tenants: Tenants::List(list),
            },
            errors: self.errors,
        }
    }

    /// Accepts the tenants for which `allowed(tid)` returns true — for a multi-tenant
    /// MDM, a lookup in the vendor's customer table. `tid` has already been checked to
    /// be a GUID matching the issuer. The function must be fast: it runs on every
    /// validation.
    pub fn allow_tenants_where<F>(self, allowed: F) -> PolicyBuilder<WantsAudiences>
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
    {
        PolicyBuilder {
            state: WantsAudiences {
                tenants: Tenants::Function(Arc::new(allowed)),
            },
            errors: self.errors,
        }
    }
}

impl PolicyBuilder<WantsAudiences> {
    /// Accepts tokens whose `aud` is one of these: the MDM app's client ID (v2 tokens
    /// always carry it) and, when v1 tokens are accepted, its App ID URI.
    pub fn allow_audiences<I, S>(mut self, audiences: I) -> PolicyBuilder<Ready>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let audiences: Vec<String> = audiences
            .into_iter()
            .map(Into::into)
            .filter(|a| !a.trim().is_empty())
            .collect();
        if audiences.is_empty() {
            self.errors.push("no audience is allowed".to_owned());
        }
        PolicyBuilder {
            state: Ready {
                policy: Policy {
                    tenants: self.state.tenants,
                    audiences,
                    accept_v1: false,
                    required_scopes: Vec::new(),
                    required_roles: Vec::new(),
                    principals: Principals::Users,
                    clock_skew: DEFAULT_CLOCK_SKEW,
                    algorithms: vec![Algorithm::Rs256],
                    max_token_len: DEFAULT_MAX_TOKEN_LEN,
                },
            },
            errors: self.errors,
        }
    }
}

impl PolicyBuilder<Ready> {
    /// Also accepts v1.0 tokens (`iss` `https://sts.windows.net/{tid}/`). Entra issues
    /// them to apps whose manifest leaves `accessTokenAcceptedVersion` unset; Microsoft
    /// requires v2 for MDM certification.
    pub fn accept_v1(mut self) -> Self {
        self.state.policy.accept_v1 = true;
        self
    }

    /// Requires `scope` in `scp` (for example `mdm_delegation`). May be called repeatedly.
    pub fn require_scope(mut self, scope: impl Into<String>) -> Self {
        self.state.policy.required_scopes.push(scope.into());
        self
    }

    /// Requires `role` in `roles`. May be called repeatedly.
    pub fn require_role(mut self, role: impl Into<String>) -> Self {
        self.state.policy.required_roles.push(role.into());
        self
    }

    /// Whose tokens are accepted. The default, [`Principals::Users`], refuses app-only
    /// (client-credentials) tokens: every token Windows presents to an MDM is a user's.
    pub fn principals(mut self, principals: Principals) -> Self {
        self.state.policy.principals = principals;
        self
    }

    /// Sets the clock skew applied to `exp`, `nbf` and `iat` (default 300 s, at most
    /// 1 hour).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        if skew > Duration::from_secs(3600) {
            self.errors
                .push(format!("clock skew {skew:?} is more than an hour"));
        }
        self.state.policy.clock_skew = skew;
        self
    }

    /// Replaces the algorithm allow-list (default: RS256 only, which is all Entra uses).
    /// `none` and HMAC algorithms cannot be expressed.
    pub fn allow_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.state.policy.algorithms = algorithms.into_iter().collect();
        if self.state.policy.algorithms.is_empty() {
            self.errors.push("no algorithm is allowed".to_owned());
        }
        self
    }

    /// Sets the longest token accepted (default 16 KiB).
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.state.policy.max_token_len = bytes;
        self
    }

    /// Finishes the policy.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a tenant is not a GUID, a list is empty, or an option
    /// is out of range.
    pub fn build(self) -> Result<Policy, Error> {
        if self.errors.is_empty() {
            Ok(self.state.policy)
        } else {
            Err(Error::InvalidConfig {
                reason: self.errors.join("; "),
            })
        }
    }
}
