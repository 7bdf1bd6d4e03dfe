//! The manual: how this crate keeps tokens from the wrong place out. Prose only.

/// # Security model
///
/// ## What a token must prove
/// An Entra access token accepted by an MDM server must prove four things: **who issued
/// it** (Entra, for a tenant you serve), **for whom** (your MDM application), **when** (now),
/// and **on whose behalf** (a user or app in that tenant). A signature alone proves only
/// that *some* Entra tenant issued it: every tenant's tokens are signed by the same shared
/// Microsoft keys. An open-source MDM shipped exactly that mistake — it checked the
/// signature and not `aud`/`iss`/`tid` — and accepted tokens minted in an attacker's own
/// tenant. Tenant isolation is therefore the first thing this crate checks after the
/// token's structure, and the policy builder has no "any tenant" default.
///
/// ## The order of the checks
/// 1. **Length, structure, `crit`.** Cheap rejections first; a bounded token cannot make
///    the JSON parser allocate without limit.
/// 2. **`alg` allow-list** (RS256 by default). `none` and `HS256` cannot be expressed,
///    which closes the classic algorithm-confusion attack (an HMAC keyed with the RSA
///    public key).
/// 3. **`kid` present.** Keys come only from configured key sources; `jku`, `x5u` and
///    `x5c` headers are ignored and never fetched.
/// 4. **`iss`, `aud`, `exp` present.** Generic JWT libraries treat them as optional unless
///    told otherwise (jsonwebtoken's `set_issuer` does not make `iss` required).
/// 5. **Issuer form and `ver`.** The form of `iss` says v1 or v2; `ver` must agree. v1
///    tokens are accepted only when the policy enables them.
/// 6. **`tid`** must be a GUID and equal the tenant segment of `iss`.
/// 7. **Tenant policy**, before any key is looked at.
/// 8. **Exact issuer.** The key source of that version must name this issuer exactly: a
///    tenant-specific metadata document names one issuer; tenant-independent metadata
///    (`common`, `organizations`) names the template
///    `https://login.microsoftonline.com/{tenantid}/v2.0`, into which `tid` is substituted.
/// 9. **Key issuer.** Microsoft's JWKS gives each key an `issuer`. A key bound to tenant B
///    cannot sign tokens for tenant A even if its signature verifies; a key from
///    tenant-independent metadata without an `issuer` is refused.
/// 10. **Signature** with the pre-parsed key and the token's (allowed) algorithm.
/// 11. **Audience**, then **times** (`exp`, `nbf`, `iat`, with 300 s skew by default), then
///     **scopes and roles**.
///
/// Claims are read before the signature is checked only to choose the key and to refuse
/// early; nothing read from an unverified token is returned or trusted. The returned
/// [`Verified`](crate::Verified) can only be made by the validator.
///
/// ## Keys
/// The [`KeyCache`](crate::KeyCache) follows Microsoft's signing-key rollover guidance:
/// metadata every 12 h ± 1 h, keys about hourly, at once on an unknown `kid` (at most once
/// per five minutes per source), last-known-good keys kept through failures, and no key
/// used when it could not be refreshed for 24 h. Validations read an immutable snapshot
/// and never wait for a fetch.
///
/// ## Identity
/// Key your data by (`tid`, `oid`). `upn` and `preferred_username` are display values
/// that users and admins can change; never authorize on them. The token identifies a
/// *user*; it never authenticates a *device* (that is the enrollment certificate's job).
///
/// ## What reaches the wire
/// [`http_response`](crate::http_response) answers 401 with
/// `WWW-Authenticate: Bearer error="invalid_token"` and no reason. Reasons are for your
/// logs ([`Error::code`](crate::Error::code)).
///
/// ## App-only tokens
/// Client secrets and access tokens are [`SecretString`](crate::SecretString)s that print
/// `[redacted]`. Certificate assertions are signed with PS256 (`x5t#S256`) by default,
/// RS256 (`x5t`) when asked. Several credentials may be live at once so keys roll over
/// without downtime: the newest is tried first, then the previous.
pub mod security_model {}
