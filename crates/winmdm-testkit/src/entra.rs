//! An Entra ID token minter: tenants, users, signing keys, JWKS and OIDC metadata
//! documents, v1 and v2 access tokens with realistic claims, and a toolbox of broken
//! tokens.
//!
//! Everything is deterministic: keys are committed under `testdata/entra/`, RS256
//! (RSASSA-PKCS1-v1_5) signatures are deterministic, and token times derive from a `now`
//! you choose (default [`NOW`]). The same builder calls always give the same token.
//!
//! Issuer strings are Microsoft's real ones (`https://login.microsoftonline.com/{tid}/v2.0`
//! and `https://sts.windows.net/{tid}/`) so a validator is exercised exactly as in
//! production; only the metadata's endpoint URLs point at a test server.
//!
//! ```
//! use winmdm_testkit::entra::{AccessToken, CONTOSO, ALICE, NOW};
//! let jwt = AccessToken::v2(&CONTOSO, &ALICE).sign();
//! assert_eq!(jwt.split('.').count(), 3);
//! // Same inputs, same token.
//! assert_eq!(jwt, AccessToken::v2(&CONTOSO, &ALICE).issued_at(NOW).sign());
//! ```

use std::sync::LazyLock;

use aws_lc_rs::signature::KeyPair as _;
use aws_lc_rs::{digest, hmac, rand, signature};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

/// The fixed "current time" of testkit tokens: 2026-05-28T20:26:40Z.
pub const NOW: u64 = 1_780_000_000;

/// Lifetime of minted access tokens (Entra's defaults are 60–90 minutes).
pub const DEFAULT_LIFETIME: u64 = 3_600;

/// Microsoft's v2 issuer template, as in the tenant-independent metadata and JWKS.
pub const V2_ISSUER_TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
/// Microsoft's v1 issuer template.
pub const V1_ISSUER_TEMPLATE: &str = "https://sts.windows.net/{tenantid}/";

/// The MDM application's client ID (the `aud` of v2 tokens).
pub const MDM_APP_ID: &str = "a1b2c3d4-0000-4000-8000-00000000a0d1";
/// The MDM application's App ID URI (the `aud` of v1 tokens).
pub const MDM_APP_ID_URI: &str = "https://mdm.contoso.example";
/// The client that requests tokens for the MDM on Windows (`azp` / `appid`).
pub const WINDOWS_CLIENT_APP_ID: &str = "b5c6d7e8-0000-4000-8000-00000000c11e";
/// The delegated scope Windows requests for the MDM.
pub const MDM_SCOPE: &str = "mdm_delegation";
/// The Entra device ID carried by enrollment tokens built with
/// [`AccessToken::for_enrollment`].
pub const ENROLLMENT_DEVICE_ID: &str = "0f3e7c2a-5b64-4a19-9d2e-7c8b1a6f4e33";

/// A tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tenant {
    /// The tenant ID (`tid`).
    pub id: &'static str,
    /// A verified domain of the tenant.
    pub domain: &'static str,
}

impl Tenant {
    /// The v2 issuer for this tenant.
    pub fn v2_issuer(&self) -> String {
        V2_ISSUER_TEMPLATE.replace("{tenantid}", self.id)
    }

    /// The v1 issuer for this tenant.
    pub fn v1_issuer(&self) -> String {
        V1_ISSUER_TEMPLATE.replace("{tenantid}", self.id)
    }
}

/// The customer tenant most tests use.
pub const CONTOSO: Tenant = Tenant {
    id: "72f988bf-0000-4000-8000-00000000c0de",
    domain: "contoso.example",
};
/// A second, unrelated tenant: its tokens must never be accepted for [`CONTOSO`].
pub const FABRIKAM: Tenant = Tenant {
    id: "3c4d5e6f-0000-4000-8000-0000000fab01",
    domain: "fabrikam.example",
};

/// A user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct User {
    /// Object ID (`oid`).
    pub oid: &'static str,
    /// User principal name (`upn`; `preferred_username` in v2).
    pub upn: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Whether the user is a guest in the tenant (`acct` = 1).
    pub guest: bool,
}

/// The password of every test user at the emulator's password grant.
pub const USER_PASSWORD: &str = "winmdm-test-password";

/// A member of [`CONTOSO`].
pub const ALICE: User = User {
    oid: "11111111-0000-4000-8000-0000000a11ce",
    upn: "alice@contoso.example",
    name: "Alice Example",
    guest: false,
};
/// A member of [`FABRIKAM`].
pub const BOB: User = User {
    oid: "22222222-0000-4000-8000-000000000b0b",
    upn: "bob@fabrikam.example",
    name: "Bob Example",
    guest: false,
};
/// A guest in [`CONTOSO`].
pub const GUEST: User = User {
    oid: "33333333-0000-4000-8000-00000000f00d",
    upn: "guest_outside.example#EXT#@contoso.example",
    name: "Guest Example",
    guest: true,
};

/// Which issuer a JWKS key declares in its `issuer` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyIssuer {
    /// Microsoft's shared keys: `https://login.microsoftonline.com/{tenantid}/v2.0`.
    Templated,
    /// A key bound to one tenant (custom signing keys): its fixed v2 issuer.
    Tenant(Tenant),
}

/// An RSA-2048 token-signing key with its self-signed certificate.
#[derive(Debug)]
pub struct SigningKey {
    /// File stem under `testdata/entra/`.
    pub name: &'static str,
    /// The certificate, DER (published in `x5c`).
    pub cert_der: &'static [u8],
    /// The private key, PKCS#8 DER.
    pub key_der: &'static [u8],
    /// The key's `issuer` in JWKS documents.
    pub issuer: KeyIssuer,
    parsed: LazyLock<ParsedKey>,
}

struct ParsedKey {
    pair: signature::RsaKeyPair,
    kid: String,
    x5t_s256: String,
    n: String,
    e: String,
    spki_der: Vec<u8>,
}

impl std::fmt::Debug for ParsedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Base64url (no padding) SHA-1 thumbprint of a DER certificate: Microsoft's `x5t` and
/// `kid`.
pub fn x5t(cert_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, cert_der))
}

/// Base64url (no padding) SHA-256 thumbprint of a DER certificate (`x5t#S256`).
pub fn x5t_s256(cert_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, cert_der))
}

/// `(n, e, SubjectPublicKeyInfo DER)` of the RSA key in a certificate.
fn rsa_public(cert_der: &[u8]) -> (String, String, Vec<u8>) {
    use x509_parser::prelude::*;
    use x509_parser::public_key::PublicKey;
    let (_, cert) = X509Certificate::from_der(cert_der).expect("committed test certificate");
    let spki = cert.public_key();
    let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
        panic!("committed signing certificate holds an RSA key")
    };
    let strip = |b: &[u8]| {
        let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
        b[first..].to_vec()
    };
    (
        URL_SAFE_NO_PAD.encode(strip(rsa.modulus)),
        URL_SAFE_NO_PAD.encode(strip(rsa.exponent)),
        spki.raw.to_vec(),
    )
}

fn parse_key(cert_der: &'static [u8], key_der: &'static [u8]) -> ParsedKey {
    let pair = signature::RsaKeyPair::from_pkcs8(key_der).expect("committed test key");
    let (n, e, spki_der) = rsa_public(cert_der);
    ParsedKey {
        pair,
        kid: x5t(cert_der),
        x5t_s256: x5t_s256(cert_der),
        n,
        e,
        spki_der,
    }
}

macro_rules! signing_key {
    ($stem:literal, $issuer:expr) => {
        SigningKey {
            name: $stem,
            cert_der: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/entra/",
                $stem,
                ".crt.der"
            )),
            key_der: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/entra/",
                $stem,
                ".key.der"
            )),
            issuer: $issuer,
            parsed: LazyLock::new(|| {
                parse_key(
                    include_bytes!(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/testdata/entra/",
                        $stem,
                        ".crt.der"
                    )),
                    include_bytes!(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/testdata/entra/",
                        $stem,
                        ".key.der"
                    )),
                )
            }),
        }
    };
}

/// Shared Microsoft-style key, active at start.
pub static KEY_1: SigningKey = signing_key!("signing-key-1", KeyIssuer::Templated);
/// Shared key, the "next" key of a rollover: in the committed JWKS fixtures from the
/// start; the emulator publishes it from its first rotation on.
pub static KEY_2: SigningKey = signing_key!("signing-key-2", KeyIssuer::Templated);
/// A key bound to [`FABRIKAM`]: its JWKS `issuer` is Fabrikam's fixed v2 issuer.
pub static KEY_FABRIKAM: SigningKey = signing_key!("signing-key-3", KeyIssuer::Tenant(FABRIKAM));
/// Shared key, published only after a rotation.
pub static KEY_4: SigningKey = signing_key!("signing-key-4", KeyIssuer::Templated);
/// A key no JWKS ever publishes: tokens it signs have an unknown `kid`.
pub static STRAY_KEY: SigningKey = signing_key!("stray-key", KeyIssuer::Templated);

/// The shared keys in rotation order.
pub fn rotation_pool() -> [&'static SigningKey; 3] {
    [&KEY_1, &KEY_2, &KEY_4]
}

impl SigningKey {
    /// The key ID (`kid`, equal to `x5t` as on Entra).
    pub fn kid(&self) -> &str {
        &self.parsed.kid
    }

    /// The SHA-256 certificate thumbprint (`x5t#S256`).
    pub fn x5t_s256(&self) -> &str {
        &self.parsed.x5t_s256
    }

    /// The public key as a DER `SubjectPublicKeyInfo`.
    pub fn spki_der(&self) -> &[u8] {
        &self.parsed.spki_der
    }

    /// The public key as PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_key_pem(&self) -> String {
        pem("PUBLIC KEY", self.spki_der())
    }

    /// The public key as a PKCS#1 `RSAPublicKey` DER (what aws-lc-rs and ring verify with).
    pub fn rsa_public_key_der(&self) -> &[u8] {
        self.parsed.pair.public_key().as_ref()
    }

    /// Signs `message` with RSASSA-PKCS1-v1_5 / SHA-256 (JWS `RS256`).
    pub fn sign_rs256(&self, message: &[u8]) -> Vec<u8> {
        let mut sig = vec![0; self.parsed.pair.public_modulus_len()];
        self.parsed
            .pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &rand::SystemRandom::new(),
                message,
                &mut sig,
            )
            .expect("RSA signing with a valid key");
        sig
    }

    /// This key as a JWK object with Microsoft's fields (`kty`, `use`, `kid`, `x5t`, `n`,
    /// `e`, `x5c`, `issuer`).
    pub fn jwk(&self) -> Value {
        let issuer = match self.issuer {
            KeyIssuer::Templated => V2_ISSUER_TEMPLATE.to_owned(),
            KeyIssuer::Tenant(t) => t.v2_issuer(),
        };
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid(),
            "x5t": self.kid(),
            "n": self.parsed.n,
            "e": self.parsed.e,
            "x5c": [STANDARD.encode(self.cert_der)],
            "issuer": issuer,
        })
    }
}

/// PEM-encodes DER with the given label.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A JWKS document (`{"keys": [...]}`) of the given keys.
pub fn jwks<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> Value {
    json!({ "keys": keys.into_iter().map(SigningKey::jwk).collect::<Vec<_>>() })
}

/// Which token format and metadata flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenVersion {
    /// v1.0 tokens: `iss` `https://sts.windows.net/{tid}/`.
    V1,
    /// v2.0 tokens: `iss` `https://login.microsoftonline.com/{tid}/v2.0`.
    V2,
}

/// An OIDC metadata document as Entra serves it for `tenant_segment` (`common`,
/// `organizations`, or a tenant ID), with endpoint URLs under `base_url` (no trailing
/// slash). For `common`/`organizations` the `issuer` keeps the `{tenantid}` template.
pub fn openid_configuration(base_url: &str, tenant_segment: &str, version: TokenVersion) -> Value {
    let tenant_independent = matches!(tenant_segment, "common" | "organizations" | "consumers");
    let issuer_tenant = if tenant_independent {
        "{tenantid}"
    } else {
        tenant_segment
    };
    match version {
        TokenVersion::V2 => json!({
            "token_endpoint": format!("{base_url}/{tenant_segment}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base_url}/{tenant_segment}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": V2_ISSUER_TEMPLATE.replace("{tenantid}", issuer_tenant),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": format!("{base_url}/{tenant_segment}/oauth2/v2.0/authorize"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }),
        TokenVersion::V1 => json!({
            "token_endpoint": format!("{base_url}/{tenant_segment}/oauth2/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base_url}/{tenant_segment}/discovery/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "scopes_supported": ["openid"],
            "issuer": V1_ISSUER_TEMPLATE.replace("{tenantid}", issuer_tenant),
            "userinfo_endpoint": format!("{base_url}/{tenant_segment}/openid/userinfo"),
            "authorization_endpoint": format!("{base_url}/{tenant_segment}/oauth2/authorize"),
            "claims_supported": ["sub", "iss", "cloud_instance_name", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }),
    }
}

/// A GUID-shaped value derived from `seed` (deterministic opaque claim values).
fn guid_from(seed: &str) -> String {
    let d = digest::digest(&digest::SHA256, seed.as_bytes());
    let h: String = d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn opaque_from(seed: &str, len: usize) -> String {
    let d = digest::digest(&digest::SHA256, seed.as_bytes());
    let mut s = URL_SAFE_NO_PAD.encode(d);
    s.truncate(len);
    s
}

/// A JWS `alg` for [`AccessToken::sign`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Alg {
    Rs256,
    None,
    Hs256WithPublicKey,
}

/// Builder for an Entra access token.
///
/// Defaults follow what Entra issues for the MDM app: for v2 `aud` = [`MDM_APP_ID`],
/// `scp` = `mdm_delegation`, `preferred_username` and no `upn`; for v1 `aud` =
/// [`MDM_APP_ID_URI`], `upn`, `unique_name` and an `x5t` header. Claims can be replaced
/// or removed freely to build negative cases.
#[derive(Debug, Clone)]
pub struct AccessToken {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    key: &'static SigningKey,
    alg: Alg,
    tamper: bool,
}

impl AccessToken {
    /// A v2 token for `user` in `tenant`, issued at [`NOW`], signed with [`KEY_1`].
    pub fn v2(tenant: &Tenant, user: &User) -> Self {
        Self::new(TokenVersion::V2, tenant, user)
    }

    /// A v1 token for `user` in `tenant`, issued at [`NOW`], signed with [`KEY_1`].
    pub fn v1(tenant: &Tenant, user: &User) -> Self {
        Self::new(TokenVersion::V1, tenant, user)
    }

    /// A v2 token as presented at the enrollment endpoint: with the `deviceid` claim.
    pub fn for_enrollment(tenant: &Tenant, user: &User) -> Self {
        Self::v2(tenant, user).claim("deviceid", ENROLLMENT_DEVICE_ID)
    }

    /// An app-only token (client credentials) for `resource`, as the token endpoint issues
    /// for Microsoft Graph: v1 format, `roles`, `idtyp` = `app`, no user claims.
    pub fn app_only(tenant: &Tenant, client_id: &str, resource: &str, roles: &[&str]) -> Self {
        let mut token = Self::v1(tenant, &ALICE);
        let sp_oid = guid_from(&format!("sp:{}:{client_id}", tenant.id));
        token.claims = Map::new();
        for (k, v) in [
            ("aud", json!(resource)),
            ("iss", json!(tenant.v1_issuer())),
            ("idp", json!(tenant.v1_issuer())),
            ("aio", json!(opaque_from(client_id, 40))),
            ("app_displayname", json!("winmdm test MDM")),
            ("appid", json!(client_id)),
            ("appidacr", json!("2")),
            ("idtyp", json!("app")),
            ("oid", json!(sp_oid)),
            ("rh", json!(format!("0.{}.", opaque_from(tenant.id, 30)))),
            ("roles", json!(roles)),
            ("sub", json!(sp_oid)),
            ("tenant_region_scope", json!("EU")),
            ("tid", json!(tenant.id)),
            ("uti", json!(opaque_from(&sp_oid, 22))),
            ("ver", json!("1.0")),
            ("xms_tcdt", json!(1_600_000_000)),
        ] {
            token.claims.insert(k.to_owned(), v);
        }
        token.issued_at(NOW)
    }

    fn new(version: TokenVersion, tenant: &Tenant, user: &User) -> Self {
        let mut header = Map::new();
        header.insert("typ".into(), json!("JWT"));
        header.insert("alg".into(), json!("RS256"));
        let key = &KEY_1;
        if version == TokenVersion::V1 {
            header.insert("x5t".into(), json!(key.kid()));
        }
        header.insert("kid".into(), json!(key.kid()));
        let seed = format!("{}:{}:{:?}", tenant.id, user.oid, version);
        let sub = opaque_from(&format!("sub:{seed}"), 43);
        let mut claims = Map::new();
        let mut put = |k: &str, v: Value| {
            claims.insert(k.to_owned(), v);
        };
        match version {
            TokenVersion::V2 => {
                put("aud", json!(MDM_APP_ID));
                put("iss", json!(tenant.v2_issuer()));
                put("aio", json!(opaque_from(&seed, 40)));
                put("azp", json!(WINDOWS_CLIENT_APP_ID));
                put("azpacr", json!("0"));
                put("name", json!(user.name));
                put("oid", json!(user.oid));
                put("preferred_username", json!(user.upn));
                put("rh", json!(format!("0.{}.", opaque_from(tenant.id, 30))));
                put("scp", json!(MDM_SCOPE));
                put("sub", json!(sub));
                put("tid", json!(tenant.id));
                put("uti", json!(opaque_from(&format!("uti:{seed}"), 22)));
                put("ver", json!("2.0"));
                put("idtyp", json!("user"));
            }
            TokenVersion::V1 => {
                put("aud", json!(MDM_APP_ID_URI));
                put("iss", json!(tenant.v1_issuer()));
                put("acr", json!("1"));
                put("aio", json!(opaque_from(&seed, 40)));
                put("amr", json!(["pwd", "mfa"]));
                put("appid", json!(WINDOWS_CLIENT_APP_ID));
                put("appidacr", json!("0"));
                put("name", json!(user.name));
                put("oid", json!(user.oid));
                put("rh", json!(format!("0.{}.", opaque_from(tenant.id, 30))));
                put("scp", json!(MDM_SCOPE));
                put("sub", json!(sub));
                put("tid", json!(tenant.id));
                put("unique_name", json!(user.upn));
                put("upn", json!(user.upn));
                put("uti", json!(opaque_from(&format!("uti:{seed}"), 22)));
                put("ver", json!("1.0"));
                put("idtyp", json!("user"));
            }
        }
        if user.guest {
            put("acct", json!(1));
        }
        Self {
            header,
            claims,
            key,
            alg: Alg::Rs256,
            tamper: false,
        }
        .issued_at(NOW)
    }

    /// Sets `iat` and `nbf` to `now` and `exp` to `now` + [`DEFAULT_LIFETIME`].
    pub fn issued_at(self, now: u64) -> Self {
        self.valid_between(now, now + DEFAULT_LIFETIME)
    }

    /// Sets `iat` = `nbf` = `nbf` and `exp` = `exp`.
    pub fn valid_between(mut self, nbf: u64, exp: u64) -> Self {
        self.claims.insert("iat".into(), json!(nbf));
        self.claims.insert("nbf".into(), json!(nbf));
        self.claims.insert("exp".into(), json!(exp));
        self
    }

    /// Sets (or replaces) a claim.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets (or replaces) a header field.
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a header field.
    pub fn without_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }

    /// Signs with `key` and points `kid` (and `x5t`, when present) at it.
    pub fn signed_with(mut self, key: &'static SigningKey) -> Self {
        self.key = key;
        self.header.insert("kid".into(), json!(key.kid()));
        if self.header.contains_key("x5t") {
            self.header.insert("x5t".into(), json!(key.kid()));
        }
        self
    }

    /// The claims as they will be signed.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The header as it will be signed.
    pub fn header_fields(&self) -> &Map<String, Value> {
        &self.header
    }

    /// Produces the compact JWS.
    pub fn sign(&self) -> String {
        let header = serde_json::to_vec(&Value::Object(self.header.clone())).unwrap_or_default();
        let claims = serde_json::to_vec(&Value::Object(self.claims.clone())).unwrap_or_default();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let mut sig = match self.alg {
            Alg::Rs256 => self.key.sign_rs256(signing_input.as_bytes()),
            Alg::None => Vec::new(),
            Alg::Hs256WithPublicKey => {
                let key = hmac::Key::new(hmac::HMAC_SHA256, self.key.public_key_pem().as_bytes());
                hmac::sign(&key, signing_input.as_bytes()).as_ref().to_vec()
            }
        };
        if self.tamper
            && let Some(last) = sig.last_mut()
        {
            *last ^= 0x01;
        }
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

/// The ways [`broken`] can spoil an otherwise valid v2 token for Alice in Contoso.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Broken {
    /// `exp` an hour before [`NOW`].
    Expired,
    /// `nbf` an hour after [`NOW`].
    NotYetValid,
    /// A correctly signed token from [`FABRIKAM`] (for Bob).
    WrongTenant,
    /// `aud` is another application.
    WrongAudience,
    /// `alg: none` with an empty signature.
    AlgNone,
    /// `alg: HS256` keyed with the RSA public key's PEM (algorithm confusion).
    Hs256WithPublicKey,
    /// Signed by a key no JWKS publishes.
    UnknownKid,
    /// A signature bit flipped.
    TamperedSignature,
    /// Payload changed after signing (`oid` swapped to another user).
    TamperedPayload,
    /// `iss` names Fabrikam while `tid` is Contoso's.
    TidIssMismatch,
    /// Signed with [`KEY_FABRIKAM`], whose JWKS `issuer` belongs to Fabrikam, for Contoso.
    KeyFromOtherTenant,
    /// No `iss` claim.
    MissingIss,
    /// No `aud` claim.
    MissingAud,
    /// No `exp` claim.
    MissingExp,
    /// `jku` and `x5u` headers pointing at an attacker (must never be fetched).
    HostileKeyUrls,
}

impl Broken {
    /// Every kind, in a fixed order.
    pub const ALL: [Self; 15] = [
        Self::Expired,
        Self::NotYetValid,
        Self::WrongTenant,
        Self::WrongAudience,
        Self::AlgNone,
        Self::Hs256WithPublicKey,
        Self::UnknownKid,
        Self::TamperedSignature,
        Self::TamperedPayload,
        Self::TidIssMismatch,
        Self::KeyFromOtherTenant,
        Self::MissingIss,
        Self::MissingAud,
        Self::MissingExp,
        Self::HostileKeyUrls,
    ];
}

/// A v2 token for Alice in Contoso, spoiled as `kind` says.
pub fn broken(kind: Broken) -> String {
    let valid = || AccessToken::v2(&CONTOSO, &ALICE);
    match kind {
        Broken::Expired => valid()
            .valid_between(NOW - 2 * DEFAULT_LIFETIME, NOW - DEFAULT_LIFETIME)
            .sign(),
        Broken::NotYetValid => valid()
            .valid_between(NOW + DEFAULT_LIFETIME, NOW + 2 * DEFAULT_LIFETIME)
            .sign(),
        Broken::WrongTenant => AccessToken::v2(&FABRIKAM, &BOB).sign(),
        Broken::WrongAudience => valid()
            .claim("aud", "00000000-0000-4000-8000-0000000bad00")
            .sign(),
        Broken::AlgNone => AccessToken {
            alg: Alg::None,
            ..valid().header("alg", "none")
        }
        .sign(),
        Broken::Hs256WithPublicKey => AccessToken {
            alg: Alg::Hs256WithPublicKey,
            ..valid().header("alg", "HS256")
        }
        .sign(),
        Broken::UnknownKid => valid().signed_with(&STRAY_KEY).sign(),
        Broken::TamperedSignature => AccessToken {
            tamper: true,
            ..valid()
        }
        .sign(),
        Broken::TamperedPayload => {
            let token = valid().sign();
            let other = valid().claim("oid", GUEST.oid);
            let claims = serde_json::to_vec(&Value::Object(other.claims)).unwrap_or_default();
            let mut parts = token.split('.');
            let (h, _, s) = (parts.next(), parts.next(), parts.next());
            format!(
                "{}.{}.{}",
                h.unwrap_or_default(),
                URL_SAFE_NO_PAD.encode(claims),
                s.unwrap_or_default()
            )
        }
        Broken::TidIssMismatch => valid().claim("iss", FABRIKAM.v2_issuer()).sign(),
        Broken::KeyFromOtherTenant => valid().signed_with(&KEY_FABRIKAM).sign(),
        Broken::MissingIss => valid().without_claim("iss").sign(),
        Broken::MissingAud => valid().without_claim("aud").sign(),
        Broken::MissingExp => valid().without_claim("exp").sign(),
        Broken::HostileKeyUrls => valid()
            .header("jku", "https://attacker.invalid/keys")
            .header("x5u", "https://attacker.invalid/cert.pem")
            .sign(),
    }
}

/// Decodes a compact JWS's header and claims without verifying anything (for tests and
/// diagnostics). Returns `None` when the token is not three base64url JSON segments.
pub fn decode_unverified(token: &str) -> Option<(Value, Value)> {
    let mut parts = token.split('.');
    let header = parts.next()?;
    let claims = parts.next()?;
    parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let dec = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    };
    Some((dec(header)?, dec(claims)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify_rs256(token: &str, key: &SigningKey) -> bool {
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        signature::UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            key.rsa_public_key_der(),
        )
        .verify(input.as_bytes(), &sig)
        .is_ok()
    }

    #[test]
    fn v2_token_shape() {
        let token = AccessToken::v2(&CONTOSO, &ALICE).sign();
        assert!(verify_rs256(&token, &KEY_1));
        let (h, c) = decode_unverified(&token).unwrap();
        assert_eq!(h["alg"], "RS256");
        assert_eq!(h["kid"], KEY_1.kid());
        assert!(h.get("x5t").is_none());
        assert_eq!(
            c["iss"],
            format!("https://login.microsoftonline.com/{}/v2.0", CONTOSO.id)
        );
        assert_eq!(c["aud"], MDM_APP_ID);
        assert_eq!(c["ver"], "2.0");
        assert_eq!(c["exp"], NOW + DEFAULT_LIFETIME);
        assert!(c.get("upn").is_none());
    }

    #[test]
    fn v1_token_shape() {
        let token = AccessToken::v1(&CONTOSO, &ALICE).sign();
        let (h, c) = decode_unverified(&token).unwrap();
        assert_eq!(h["x5t"], KEY_1.kid());
        assert_eq!(c["iss"], format!("https://sts.windows.net/{}/", CONTOSO.id));
        assert_eq!(c["upn"], ALICE.upn);
        assert_eq!(c["aud"], MDM_APP_ID_URI);
    }

    #[test]
    fn broken_tokens_are_broken() {
        assert!(!verify_rs256(&broken(Broken::TamperedSignature), &KEY_1));
        assert!(!verify_rs256(&broken(Broken::TamperedPayload), &KEY_1));
        assert!(!verify_rs256(&broken(Broken::UnknownKid), &KEY_1));
        assert!(broken(Broken::AlgNone).ends_with('.'));
        let (h, _) = decode_unverified(&broken(Broken::Hs256WithPublicKey)).unwrap();
        assert_eq!(h["alg"], "HS256");
        // The ones that are only wrong in their claims are still correctly signed.
        for kind in [
            Broken::Expired,
            Broken::WrongAudience,
            Broken::MissingIss,
            Broken::TidIssMismatch,
        ] {
            assert!(verify_rs256(&broken(kind), &KEY_1), "{kind:?}");
        }
        assert!(verify_rs256(
            &broken(Broken::KeyFromOtherTenant),
            &KEY_FABRIKAM
        ));
        let all: std::collections::HashSet<_> = Broken::ALL.iter().map(|k| broken(*k)).collect();
        assert_eq!(all.len(), Broken::ALL.len(), "every broken token differs");
    }

    #[test]
    fn jwks_has_issuer_per_key() {
        let doc = jwks([&KEY_1, &KEY_FABRIKAM]);
        let keys = doc["keys"].as_array().unwrap();
        assert_eq!(keys[0]["issuer"], V2_ISSUER_TEMPLATE);
        assert_eq!(keys[1]["issuer"], FABRIKAM.v2_issuer());
        assert_eq!(keys[0]["kid"], keys[0]["x5t"]);
    }

    #[test]
    fn metadata_issuers() {
        let m = openid_configuration("http://127.0.0.1:1", "common", TokenVersion::V2);
        assert_eq!(m["issuer"], V2_ISSUER_TEMPLATE);
        assert_eq!(
            m["jwks_uri"],
            "http://127.0.0.1:1/common/discovery/v2.0/keys"
        );
        let m = openid_configuration("http://x", CONTOSO.id, TokenVersion::V1);
        assert_eq!(m["issuer"], CONTOSO.v1_issuer());
    }
}

/// A certificate credential of the MDM app registration (for client assertions).
#[derive(Debug)]
pub struct AppCredential {
    /// File stem under `testdata/entra/`.
    pub name: &'static str,
    /// The certificate, DER (uploaded to the app registration).
    pub cert_der: &'static [u8],
    /// The certificate, PEM.
    pub cert_pem: &'static str,
    /// The private key, PKCS#8 DER.
    pub key_der: &'static [u8],
    /// The private key, PKCS#8 PEM.
    pub key_pem: &'static str,
}

macro_rules! app_credential {
    ($stem:literal) => {
        AppCredential {
            name: $stem,
            cert_der: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/entra/",
                $stem,
                ".crt.der"
            )),
            cert_pem: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/entra/",
                $stem,
                ".crt.pem"
            )),
            key_der: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/entra/",
                $stem,
                ".key.der"
            )),
            key_pem: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/entra/",
                $stem,
                ".key.pem"
            )),
        }
    };
}

/// The MDM app's current certificate credential.
pub static APP_CREDENTIAL_1: AppCredential = app_credential!("app-credential-1");
/// The MDM app's next certificate credential (for rollover tests).
pub static APP_CREDENTIAL_2: AppCredential = app_credential!("app-credential-2");

/// The MDM app's current client secret in the emulator's default registration.
pub const APP_SECRET_1: &str = "winmdm-test-secret-1~not-a-real-secret";
/// The MDM app's next client secret (for rollover tests).
pub const APP_SECRET_2: &str = "winmdm-test-secret-2~not-a-real-secret";

/// The Microsoft Graph resource and its `.default` scope.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

/// Signature scheme of a client assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssertionAlg {
    /// RS256 with the SHA-1 thumbprint in `x5t` (older Entra docs).
    Rs256X5t,
    /// PS256 with the SHA-256 thumbprint in `x5t#S256` (current Entra docs).
    Ps256X5tS256,
}

impl AppCredential {
    /// A client assertion for `client_id` at `token_endpoint`, valid from `now` for ten
    /// minutes, with a `jti` derived from the inputs.
    pub fn client_assertion(
        &self,
        client_id: &str,
        token_endpoint: &str,
        now: u64,
        alg: AssertionAlg,
    ) -> String {
        let (alg_name, thumb_field, thumb) = match alg {
            AssertionAlg::Rs256X5t => ("RS256", "x5t", x5t(self.cert_der)),
            AssertionAlg::Ps256X5tS256 => ("PS256", "x5t#S256", x5t_s256(self.cert_der)),
        };
        let header = json!({ "alg": alg_name, "typ": "JWT", thumb_field: thumb });
        let claims = json!({
            "aud": token_endpoint,
            "iss": client_id,
            "sub": client_id,
            "jti": guid_from(&format!("jti:{client_id}:{token_endpoint}:{now}:{alg:?}")),
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let pair = signature::RsaKeyPair::from_pkcs8(self.key_der).expect("committed test key");
        let mut sig = vec![0; pair.public_modulus_len()];
        let scheme: &'static dyn signature::RsaEncoding = match alg {
            AssertionAlg::Rs256X5t => &signature::RSA_PKCS1_SHA256,
            AssertionAlg::Ps256X5tS256 => &signature::RSA_PSS_SHA256,
        };
        pair.sign(
            scheme,
            &rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .expect("RSA signing with a valid key");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}
