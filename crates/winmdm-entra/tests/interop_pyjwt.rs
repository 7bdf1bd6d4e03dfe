//! Cross-checks with PyJWT: tokens it mints validate (or are refused when tampered), and
//! client assertions we build verify with it. Skipped without python3 + PyJWT, except
//! under CI.

mod common;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use rustls_pki_types::UnixTime;
use winmdm_entra::app_token::{AssertionStyle, CertificateCredential, token_endpoint};
use winmdm_entra::{Error, KeyCache, KeySource, TokenVersion, Validator};
use winmdm_testkit::entra::{self as tk, ALICE, CONTOSO};
use winmdm_testkit::tools;

fn testkit_file(rel: &str) -> String {
    format!(
        "{}/../winmdm-testkit/testdata/{rel}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn script(name: &str) -> String {
    format!("{}/tests/interop/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn tokens_minted_by_pyjwt() {
    if !tools::require_pyjwt() {
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let out = Command::new("python3")
        .arg(script("pyjwt_mint.py"))
        .args([
            &testkit_file("entra/signing-key-1.key.pem"),
            tk::KEY_1.kid(),
            CONTOSO.id,
            tk::MDM_APP_ID,
            ALICE.oid,
            &now.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tokens: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Real time (PyJWT signs at the real clock): a static key source never ages out.
    let jwks = tk::jwks([&tk::KEY_1]).to_string();
    let source =
        KeySource::static_jwks(jwks.as_bytes(), tk::V2_ISSUER_TEMPLATE, TokenVersion::V2).unwrap();
    let v = Validator::new(policy(), std::sync::Arc::new(KeyCache::new(vec![source])));
    let when = UnixTime::now();
    let claims = v.validate(tokens["valid"].as_str().unwrap(), when).unwrap();
    assert_eq!(claims.object_id, ALICE.oid);
    assert_eq!(claims.name.as_deref(), Some("Alice via PyJWT"));
    assert!(matches!(
        v.validate(tokens["tampered"].as_str().unwrap(), when),
        Err(Error::BadSignature)
    ));
    assert!(matches!(
        v.validate(tokens["wrong_audience"].as_str().unwrap(), when),
        Err(Error::AudienceNotAllowed { .. })
    ));
    assert!(matches!(
        v.validate(tokens["expired"].as_str().unwrap(), when),
        Err(Error::Expired { .. })
    ));
    assert!(matches!(
        v.validate(tokens["hs256_with_public_key"].as_str().unwrap(), when),
        Err(Error::AlgorithmNotAllowed { .. })
    ));
}

#[test]
fn our_client_assertions_verify_with_pyjwt() {
    if !tools::require_pyjwt() {
        return;
    }
    let endpoint = token_endpoint("https://login.microsoftonline.com", CONTOSO.id);
    for (style, alg) in [
        (AssertionStyle::Ps256, "PS256"),
        (AssertionStyle::Rs256, "RS256"),
    ] {
        let cred = CertificateCredential::from_der(
            tk::APP_CREDENTIAL_1.cert_der,
            tk::APP_CREDENTIAL_1.key_der,
            style,
        )
        .unwrap();
        let assertion = cred
            .assertion(tk::MDM_APP_ID, &endpoint, UnixTime::now())
            .unwrap();
        let cert = testkit_file("entra/app-credential-1.crt.pem");
        let script = script("pyjwt_check_assertion.py");
        let out = tools::run_with_stdin(
            "python3",
            &[&script, &cert, &endpoint, tk::MDM_APP_ID],
            assertion.as_bytes(),
        )
        .unwrap();
        assert!(
            out.status.success(),
            "{alg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("ok {alg}")
        );
    }
}
