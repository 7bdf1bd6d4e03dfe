//! The validation matrix: every check, each with its own error.

mod common;

use std::time::Duration;

use common::*;
use winmdm_entra::{
    Algorithm, CacheConfig, Error, ErrorKind, KeyCache, KeySource, Malformed, Part, Policy,
    TokenVersion, Validator, http_response,
};
use winmdm_testkit::entra::{
    self as tk, ALICE, AccessToken, BOB, Broken, CONTOSO, FABRIKAM, GUEST, KEY_1, KEY_2,
};

fn check(token: &str) -> Result<winmdm_entra::EntraClaims, Error> {
    validator().validate(token, now()).map(|v| v.into_inner())
}

#[test]
fn valid_v2_token() {
    let claims = check(&AccessToken::v2(&CONTOSO, &ALICE).sign()).unwrap();
    assert_eq!(claims.version, TokenVersion::V2);
    assert_eq!(claims.tenant_id, CONTOSO.id);
    assert_eq!(claims.object_id, ALICE.oid);
    assert_eq!(
        claims.upn.as_deref(),
        Some(ALICE.upn),
        "falls back to preferred_username"
    );
    assert_eq!(claims.audience, tk::MDM_APP_ID);
    assert_eq!(claims.issuer, CONTOSO.v2_issuer());
    assert!(claims.has_scope("mdm_delegation"));
    assert_eq!(claims.identity_type.as_deref(), Some("user"));
    assert_eq!(
        claims.client_app_id.as_deref(),
        Some(tk::WINDOWS_CLIENT_APP_ID)
    );
    assert!(!claims.guest);
    assert_eq!(claims.device_id, None);
    assert_eq!(
        claims.raw()["uti"],
        AccessToken::v2(&CONTOSO, &ALICE).claims()["uti"]
    );
}

#[test]
fn enrollment_token_carries_device_id_and_guest_flag() {
    let claims = check(&AccessToken::for_enrollment(&CONTOSO, &ALICE).sign()).unwrap();
    assert_eq!(claims.device_id.as_deref(), Some(tk::ENROLLMENT_DEVICE_ID));
    let guest = check(&AccessToken::v2(&CONTOSO, &GUEST).sign()).unwrap();
    assert!(guest.guest);
}

#[test]
fn every_broken_token_has_its_own_error() {
    for kind in Broken::ALL {
        let result = check(&tk::broken(kind));
        let ok = match kind {
            Broken::Expired => matches!(result, Err(Error::Expired { now: tk::NOW, .. })),
            Broken::NotYetValid => matches!(result, Err(Error::NotYetValid { .. })),
            Broken::WrongTenant => {
                matches!(&result, Err(Error::TenantNotAllowed { tid }) if tid == FABRIKAM.id)
            }
            Broken::WrongAudience => matches!(result, Err(Error::AudienceNotAllowed { .. })),
            Broken::AlgNone => {
                matches!(&result, Err(Error::AlgorithmNotAllowed { alg }) if alg == "none")
            }
            Broken::Hs256WithPublicKey => {
                matches!(&result, Err(Error::AlgorithmNotAllowed { alg }) if alg == "HS256")
            }
            Broken::UnknownKid => matches!(result, Err(Error::UnknownKid { .. })),
            Broken::TamperedSignature | Broken::TamperedPayload => {
                matches!(result, Err(Error::BadSignature))
            }
            Broken::TidIssMismatch => matches!(result, Err(Error::TenantIssuerMismatch { .. })),
            Broken::KeyFromOtherTenant => {
                matches!(&result, Err(Error::KeyIssuerMismatch { key_issuer, .. }) if key_issuer == &FABRIKAM.v2_issuer())
            }
            Broken::MissingIss => matches!(result, Err(Error::MissingClaim { claim: "iss" })),
            Broken::MissingAud => matches!(result, Err(Error::MissingClaim { claim: "aud" })),
            Broken::MissingExp => matches!(result, Err(Error::MissingClaim { claim: "exp" })),
            // jku/x5u are ignored: the token is otherwise valid, and nothing is fetched.
            Broken::HostileKeyUrls => result.is_ok(),
            _ => unreachable!("new Broken kind {kind:?} needs a row here"),
        };
        assert!(ok, "{kind:?} gave {result:?}");
    }
}

#[test]
fn hostile_key_urls_are_never_fetched() {
    let v = validator();
    assert!(
        v.cache().poll_fetch(now()).is_none(),
        "nothing due after loading"
    );
    v.validate(&tk::broken(Broken::HostileKeyUrls), now())
        .unwrap();
    assert!(
        v.cache().poll_fetch(now()).is_none(),
        "jku/x5u caused a fetch"
    );
}

#[test]
fn validly_signed_token_from_another_tenant_is_refused_even_if_allowed_audience() {
    // Bob's tenant signs with the same shared Microsoft key: signature alone proves nothing.
    let token = AccessToken::v2(&FABRIKAM, &BOB).sign();
    assert!(matches!(check(&token), Err(Error::TenantNotAllowed { .. })));
    // A vendor that allows Fabrikam too accepts it.
    let both = Policy::builder()
        .allow_tenants([CONTOSO.id, FABRIKAM.id])
        .allow_audiences([tk::MDM_APP_ID])
        .build()
        .unwrap();
    let v = Validator::new(both, loaded_cache(&[&KEY_1], false, CacheConfig::default()));
    assert_eq!(v.validate(&token, now()).unwrap().tenant_id, FABRIKAM.id);
}

#[test]
fn key_bound_to_other_tenant_cannot_sign_for_it_even_when_tenant_allowed() {
    let both = Policy::builder()
        .allow_tenants([CONTOSO.id, FABRIKAM.id])
        .allow_audiences([tk::MDM_APP_ID])
        .build()
        .unwrap();
    let v = Validator::new(
        both,
        loaded_cache(&[&KEY_1, &tk::KEY_FABRIKAM], false, CacheConfig::default()),
    );
    let forged = AccessToken::v2(&CONTOSO, &ALICE)
        .signed_with(&tk::KEY_FABRIKAM)
        .sign();
    assert!(matches!(
        v.validate(&forged, now()),
        Err(Error::KeyIssuerMismatch { .. })
    ));
    // The same key signing for its own tenant is fine.
    let own = AccessToken::v2(&FABRIKAM, &BOB)
        .signed_with(&tk::KEY_FABRIKAM)
        .sign();
    v.validate(&own, now()).unwrap();
}

#[test]
fn key_without_issuer_from_tenant_independent_metadata_is_refused() {
    let mut jwk = KEY_2.jwk();
    jwk.as_object_mut().unwrap().remove("issuer");
    let doc = serde_json::json!({"keys": [jwk]}).to_string();
    let source =
        KeySource::static_jwks(doc.as_bytes(), tk::V2_ISSUER_TEMPLATE, TokenVersion::V2).unwrap();
    let v = Validator::new(policy(), std::sync::Arc::new(KeyCache::new(vec![source])));
    let token = AccessToken::v2(&CONTOSO, &ALICE).signed_with(&KEY_2).sign();
    assert!(matches!(
        v.validate(&token, now()),
        Err(Error::KeyIssuerMissing { .. })
    ));
    // From tenant-specific metadata (exact issuer) a key without `issuer` is acceptable.
    let exact =
        KeySource::static_jwks(doc.as_bytes(), CONTOSO.v2_issuer(), TokenVersion::V2).unwrap();
    let v = Validator::new(policy(), std::sync::Arc::new(KeyCache::new(vec![exact])));
    v.validate(&token, now()).unwrap();
}

#[test]
fn issuer_must_match_metadata_exactly() {
    // Right shape, wrong host.
    let token = AccessToken::v2(&CONTOSO, &ALICE)
        .claim(
            "iss",
            format!("https://login.example.invalid/{}/v2.0", CONTOSO.id),
        )
        .sign();
    assert!(matches!(check(&token), Err(Error::IssuerMismatch { .. })));
    // Not an Entra shape at all.
    let token = AccessToken::v2(&CONTOSO, &ALICE)
        .claim("iss", "https://evil.example/")
        .sign();
    assert!(matches!(
        check(&token),
        Err(Error::UnrecognizedIssuer { .. })
    ));
    let token = AccessToken::v2(&CONTOSO, &ALICE).claim("iss", 42).sign();
    assert!(matches!(
        check(&token),
        Err(Error::Malformed(Malformed::ClaimType("iss")))
    ));
}

#[test]
fn tenant_id_checks() {
    let not_guid = AccessToken::v2(&CONTOSO, &ALICE)
        .claim("tid", "contoso.example")
        .claim(
            "iss",
            "https://login.microsoftonline.com/contoso.example/v2.0",
        )
        .sign();
    assert!(matches!(
        check(&not_guid),
        Err(Error::InvalidTenantId { .. })
    ));
    let missing = AccessToken::v2(&CONTOSO, &ALICE)
        .without_claim("tid")
        .sign();
    assert!(matches!(
        check(&missing),
        Err(Error::MissingClaim { claim: "tid" })
    ));
}

#[test]
fn version_rules() {
    let v1 = AccessToken::v1(&CONTOSO, &ALICE).sign();
    assert!(matches!(
        check(&v1),
        Err(Error::VersionNotAllowed {
            version: TokenVersion::V1
        })
    ));
    let mismatch = AccessToken::v2(&CONTOSO, &ALICE).claim("ver", "1.0").sign();
    assert!(matches!(
        check(&mismatch),
        Err(Error::VersionMismatch {
            issuer_form: TokenVersion::V2,
            ..
        })
    ));
    let no_ver = AccessToken::v2(&CONTOSO, &ALICE)
        .without_claim("ver")
        .sign();
    assert!(matches!(
        check(&no_ver),
        Err(Error::VersionMismatch { ver: None, .. })
    ));

    let with_v1 = Policy::builder()
        .allow_tenants([CONTOSO.id])
        .allow_audiences([tk::MDM_APP_ID, tk::MDM_APP_ID_URI])
        .accept_v1()
        .build()
        .unwrap();
    let v = Validator::new(
        with_v1,
        loaded_cache(&[&KEY_1], true, CacheConfig::default()),
    );
    let claims = v.validate(&v1, now()).unwrap();
    assert_eq!(claims.version, TokenVersion::V1);
    assert_eq!(claims.audience, tk::MDM_APP_ID_URI);
    assert_eq!(claims.upn.as_deref(), Some(ALICE.upn));
    // A v1 token is checked against the v1 metadata's issuer.
    let v1_with_v2_issuer = AccessToken::v1(&CONTOSO, &ALICE).claim("ver", "2.0").sign();
    assert!(matches!(
        v.validate(&v1_with_v2_issuer, now()),
        Err(Error::VersionMismatch { .. })
    ));
}

#[test]
fn time_checks_with_skew() {
    let exp = tk::NOW + tk::DEFAULT_LIFETIME;
    let v = validator();
    let token = AccessToken::v2(&CONTOSO, &ALICE).sign();
    v.validate(&token, at(exp + 299)).unwrap();
    v.validate(&token, at(exp + 300)).unwrap();
    assert!(matches!(
        v.validate(&token, at(exp + 301)),
        Err(Error::Expired { .. })
    ));
    assert!(matches!(
        v.validate(&token, at(tk::NOW - 301)),
        Err(Error::NotYetValid { .. })
    ));
    v.validate(&token, at(tk::NOW - 300)).unwrap();
    let future_iat = AccessToken::v2(&CONTOSO, &ALICE)
        .without_claim("nbf")
        .claim("iat", tk::NOW + 1000)
        .sign();
    assert!(matches!(
        check(&future_iat),
        Err(Error::IssuedInFuture { .. })
    ));
    let float_exp = AccessToken::v2(&CONTOSO, &ALICE)
        .claim("exp", (tk::NOW + 100) as f64 + 0.5)
        .sign();
    check(&float_exp).unwrap();
    let string_exp = AccessToken::v2(&CONTOSO, &ALICE)
        .claim("exp", "never")
        .sign();
    assert!(matches!(
        check(&string_exp),
        Err(Error::Malformed(Malformed::ClaimType("exp")))
    ));
    let strict = Policy::builder()
        .allow_tenants([CONTOSO.id])
        .allow_audiences([tk::MDM_APP_ID])
        .clock_skew(Duration::ZERO)
        .build()
        .unwrap();
    let v = Validator::new(
        strict,
        loaded_cache(&[&KEY_1], false, CacheConfig::default()),
    );
    assert!(matches!(
        v.validate(&token, at(exp + 1)),
        Err(Error::Expired { .. })
    ));
}

#[test]
fn scopes_roles_and_oid() {
    let no_scope = AccessToken::v2(&CONTOSO, &ALICE)
        .claim("scp", "User.Read")
        .sign();
    assert!(matches!(check(&no_scope), Err(Error::MissingScope { .. })));
    let several = AccessToken::v2(&CONTOSO, &ALICE)
        .claim("scp", "User.Read mdm_delegation")
        .sign();
    check(&several).unwrap();
    let role_policy = Policy::builder()
        .allow_tenants([CONTOSO.id])
        .allow_audiences(["https://graph.microsoft.com"])
        .accept_v1()
        .require_role("Device.ReadWrite.All")
        .principals(winmdm_entra::Principals::Applications)
        .build()
        .unwrap();
    let v = Validator::new(
        role_policy,
        loaded_cache(&[&KEY_1], true, CacheConfig::default()),
    );
    let app = AccessToken::app_only(
        &CONTOSO,
        tk::MDM_APP_ID,
        "https://graph.microsoft.com",
        &["Device.ReadWrite.All"],
    )
    .sign();
    let claims = v.validate(&app, now()).unwrap();
    assert!(claims.has_role("Device.ReadWrite.All"));
    assert_eq!(claims.identity_type.as_deref(), Some("app"));
    let wrong_role = AccessToken::app_only(
        &CONTOSO,
        tk::MDM_APP_ID,
        "https://graph.microsoft.com",
        &["User.Read.All"],
    )
    .sign();
    assert!(matches!(
        v.validate(&wrong_role, now()),
        Err(Error::MissingRole { .. })
    ));
    let no_oid = AccessToken::v2(&CONTOSO, &ALICE)
        .without_claim("oid")
        .sign();
    assert!(matches!(
        check(&no_oid),
        Err(Error::MissingClaim { claim: "oid" })
    ));
    let aud_list = AccessToken::v2(&CONTOSO, &ALICE)
        .claim("aud", serde_json::json!(["x", tk::MDM_APP_ID]))
        .sign();
    assert_eq!(check(&aud_list).unwrap().audience, tk::MDM_APP_ID);
}

#[test]
fn structure_and_size() {
    let big = format!("{}.{}.{}", "a".repeat(10_000), "b".repeat(10_000), "c");
    assert!(matches!(
        check(&big),
        Err(Error::TokenTooLarge { len: 20_003, .. })
    ));
    assert!(matches!(
        check("a.b"),
        Err(Error::Malformed(Malformed::Segments))
    ));
    assert!(matches!(
        check("a.b.c.d"),
        Err(Error::Malformed(Malformed::Segments))
    ));
    assert!(matches!(
        check("!!.e30.AA"),
        Err(Error::Malformed(Malformed::Base64(Part::Header)))
    ));
    assert!(matches!(
        check("bm90IGpzb24.e30.AA"),
        Err(Error::Malformed(Malformed::Json(Part::Header)))
    ));
    let token = AccessToken::v2(&CONTOSO, &ALICE).sign();
    let (h, rest) = token.split_once('.').unwrap();
    let (_, s) = rest.split_once('.').unwrap();
    assert!(matches!(
        check(&format!("{h}.bm90IGpzb24.{s}")),
        Err(Error::Malformed(Malformed::Json(Part::Claims)))
    ));
    assert!(matches!(
        check(&format!("{h}.e30.{s}!")),
        Err(Error::Malformed(Malformed::Base64(
            Part::Claims | Part::Signature
        )))
    ));
    let no_kid = AccessToken::v2(&CONTOSO, &ALICE)
        .without_header("kid")
        .sign();
    assert!(matches!(check(&no_kid), Err(Error::MissingKid)));
    let crit = AccessToken::v2(&CONTOSO, &ALICE)
        .header("crit", serde_json::json!(["exp"]))
        .sign();
    assert!(matches!(
        check(&crit),
        Err(Error::Malformed(Malformed::CriticalHeader))
    ));
    let small_limit = Policy::builder()
        .allow_tenants([CONTOSO.id])
        .allow_audiences([tk::MDM_APP_ID])
        .max_token_len(100)
        .build()
        .unwrap();
    let v = Validator::new(
        small_limit,
        loaded_cache(&[&KEY_1], false, CacheConfig::default()),
    );
    assert!(matches!(
        v.validate(&token, now()),
        Err(Error::TokenTooLarge { max: 100, .. })
    ));
}

#[test]
fn algorithm_allow_list_and_key_type() {
    // PS256 is not allowed by default even with a matching key.
    let ps = AccessToken::v2(&CONTOSO, &ALICE)
        .header("alg", "PS256")
        .sign();
    assert!(matches!(check(&ps), Err(Error::AlgorithmNotAllowed { .. })));
    for alg in ["none", "None", "HS256", "HS512", "ES256", "", "rs256"] {
        let token = AccessToken::v2(&CONTOSO, &ALICE).header("alg", alg).sign();
        assert!(
            matches!(check(&token), Err(Error::AlgorithmNotAllowed { .. })),
            "{alg}"
        );
    }
    // An EC key published under the token's kid cannot verify RS256.
    let doc = serde_json::json!({"keys": [{"kty": "EC", "kid": KEY_1.kid(), "crv": "P-256", "x": "AA", "y": "AA", "issuer": tk::V2_ISSUER_TEMPLATE}]}).to_string();
    let source =
        KeySource::static_jwks(doc.as_bytes(), tk::V2_ISSUER_TEMPLATE, TokenVersion::V2).unwrap();
    let v = Validator::new(policy(), std::sync::Arc::new(KeyCache::new(vec![source])));
    let token = AccessToken::v2(&CONTOSO, &ALICE).sign();
    assert!(matches!(
        v.validate(&token, now()),
        Err(Error::KeyTypeMismatch { alg: "RS256", .. })
    ));
    // Widening the allow-list is explicit, and a PS256 claim over an RS256 signature fails.
    let wide = Policy::builder()
        .allow_tenants([CONTOSO.id])
        .allow_audiences([tk::MDM_APP_ID])
        .allow_algorithms([Algorithm::Rs256, Algorithm::Ps256])
        .build()
        .unwrap();
    let v = Validator::new(wide, loaded_cache(&[&KEY_1], false, CacheConfig::default()));
    assert!(matches!(v.validate(&ps, now()), Err(Error::BadSignature)));
}

#[test]
fn custom_tenant_function() {
    let p = Policy::builder()
        .allow_tenants_where(|tid| tid.ends_with("00000fab01"))
        .allow_audiences([tk::MDM_APP_ID])
        .build()
        .unwrap();
    let v = Validator::new(p, loaded_cache(&[&KEY_1], false, CacheConfig::default()));
    v.validate(&AccessToken::v2(&FABRIKAM, &BOB).sign(), now())
        .unwrap();
    assert!(matches!(
        v.validate(&AccessToken::v2(&CONTOSO, &ALICE).sign(), now()),
        Err(Error::TenantNotAllowed { .. })
    ));
}

#[test]
fn policy_needs_explicit_decisions() {
    let empty: [&str; 0] = [];
    assert!(matches!(
        Policy::builder()
            .allow_tenants(empty)
            .allow_audiences([tk::MDM_APP_ID])
            .build(),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        Policy::builder()
            .allow_tenants(["contoso.example"])
            .allow_audiences([tk::MDM_APP_ID])
            .build(),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        Policy::builder()
            .allow_tenants([CONTOSO.id])
            .allow_audiences(empty)
            .build(),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        Policy::builder()
            .allow_tenants([CONTOSO.id])
            .allow_audiences(["a"])
            .allow_algorithms([])
            .build(),
        Err(Error::InvalidConfig { .. })
    ));
    // Tenant IDs compare case-insensitively.
    let p = Policy::builder()
        .allow_tenants([CONTOSO.id.to_uppercase()])
        .allow_audiences(["a"])
        .build()
        .unwrap();
    assert!(p.allows_tenant(CONTOSO.id));
}

#[test]
fn cold_cache_reports_keys_unavailable() {
    let cache = std::sync::Arc::new(KeyCache::new(vec![KeySource::entra(
        "https://login.microsoftonline.com",
        "common",
        TokenVersion::V2,
    )]));
    let v = Validator::new(policy(), cache);
    let err = v
        .validate(&AccessToken::v2(&CONTOSO, &ALICE).sign(), now())
        .unwrap_err();
    assert!(matches!(
        err,
        Error::KeysUnavailable {
            version: TokenVersion::V2
        }
    ));
    assert_eq!(err.kind(), ErrorKind::Backend);
}

#[test]
fn one_wire_mapping() {
    for kind in Broken::ALL {
        if let Err(e) = check(&tk::broken(kind)) {
            let r = http_response(&e);
            assert_eq!(r.status(), 401, "{kind:?}");
            assert_eq!(
                r.headers()["www-authenticate"],
                "Bearer error=\"invalid_token\""
            );
            // No reason leaks to the client.
            assert_eq!(r.headers().len(), 1);
        }
    }
    let backend = http_response(&Error::KeysUnavailable {
        version: TokenVersion::V2,
    });
    assert_eq!(backend.status(), 503);
    assert_eq!(backend.headers()["retry-after"], "30");
    assert_eq!(
        http_response(&Error::InvalidConfig { reason: "x".into() }).status(),
        500
    );
}

#[test]
fn escaped_strings_and_type_surprises_take_the_exact_path() {
    // Escapes make the zero-copy parser allocate; the values must come out decoded.
    let token = AccessToken::v2(&CONTOSO, &ALICE)
        .claim("name", "Zo\u{eb} \"Q\" \\ O'Brien")
        .sign();
    assert_eq!(
        check(&token).unwrap().name.as_deref(),
        Some("Zo\u{eb} \"Q\" \\ O'Brien")
    );
    // An unexpected type on a claim the validator does not read is fine...
    let odd = AccessToken::v2(&CONTOSO, &ALICE)
        .claim("acct", "one")
        .claim("xms_extra", serde_json::json!({"a": [1, 2]}))
        .sign();
    let claims = check(&odd).unwrap();
    assert!(!claims.guest);
    assert_eq!(claims.raw()["xms_extra"]["a"][1], 2);
    // ...on one it reads, it is named.
    // Lenient and unambiguous shapes are read as lists.
    let lists = AccessToken::v2(&CONTOSO, &ALICE)
        .claim("roles", "r")
        .claim("scp", serde_json::json!(["mdm_delegation", "x"]))
        .sign();
    let claims = check(&lists).unwrap();
    assert_eq!(
        (claims.roles.clone(), claims.scopes),
        (
            vec!["r".to_owned()],
            vec!["mdm_delegation".to_owned(), "x".to_owned()]
        )
    );
    for (name, value) in [
        ("tid", serde_json::json!(7)),
        ("aud", serde_json::json!({"x": 1})),
        ("roles", serde_json::json!(5)),
        ("scp", serde_json::json!({"a": 1})),
        ("nbf", serde_json::json!(-5)),
    ] {
        let t = AccessToken::v2(&CONTOSO, &ALICE).claim(name, value).sign();
        let err = check(&t).unwrap_err();
        assert!(
            matches!(err, Error::Malformed(Malformed::ClaimType(n)) if n == name),
            "{name}: {err:?}"
        );
    }
    // Claims that are not a JSON object.
    let (h, rest) = AccessToken::v2(&CONTOSO, &ALICE)
        .sign()
        .split_once('.')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    use base64::Engine as _;
    let arr = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("[1,2]");
    assert!(matches!(
        check(&format!("{h}.{arr}.{sig}")),
        Err(Error::Malformed(Malformed::Json(Part::Claims)))
    ));
}

/// Every token Windows presents to an MDM is a signed-in user's. An app-only
/// (client-credentials) token of an application in a served tenant — with the MDM's
/// audience, even with the scope or a `deviceid` — is refused by default, whether it says
/// so (`idtyp` `app`) or not (no `scp`); a device token too.
#[test]
fn app_only_tokens_are_not_users() {
    // v1 and v2: Entra issues app-only tokens in the resource's format.
    let users = Policy::builder()
        .allow_tenants([CONTOSO.id])
        .allow_audiences([tk::MDM_APP_ID])
        .accept_v1()
        .build()
        .unwrap();
    let check = |token: &str| {
        Validator::new(
            users.clone(),
            loaded_cache(&[&KEY_1], true, CacheConfig::default()),
        )
        .validate(token, now())
    };
    assert!(check(&AccessToken::v2(&CONTOSO, &ALICE).sign()).is_ok());
    let app_only = AccessToken::app_only(&CONTOSO, tk::MDM_APP_ID, tk::MDM_APP_ID, &[]);
    let variants = [
        ("idtyp app", app_only.sign()),
        (
            "idtyp app with a scope and a device",
            app_only
                .claim("scp", "mdm_delegation")
                .claim("deviceid", tk::ENROLLMENT_DEVICE_ID)
                .sign(),
        ),
        (
            "a user-shaped token without scp or idtyp",
            AccessToken::v2(&CONTOSO, &ALICE)
                .without_claim("scp")
                .without_claim("idtyp")
                .sign(),
        ),
        (
            "a device token",
            AccessToken::v2(&CONTOSO, &ALICE)
                .claim("idtyp", "device")
                .sign(),
        ),
    ];
    for (what, token) in variants {
        let err = check(&token).unwrap_err();
        assert!(
            matches!(
                err,
                Error::PrincipalNotAllowed {
                    accepted: "users",
                    ..
                }
            ),
            "{what}: {err:?}"
        );
        assert_eq!(err.kind(), winmdm_entra::ErrorKind::Rejected, "{what}");
    }
}
