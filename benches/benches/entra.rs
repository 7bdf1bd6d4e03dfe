//! Entra token validation beside its ceiling.
//!
//! * `ceiling/aws_lc_rs_rsa2048_verify` — RSA-2048 PKCS#1 SHA-256 verify of the token's
//!   signature with a pre-parsed aws-lc-rs public key (DESIGN.md's ceiling);
//! * `winmdm_entra/validate` — full validation (structure, claims, policy, exact issuer,
//!   key issuer, signature) with a cached key;
//! * `reference/jsonwebtoken_decode` — jsonwebtoken 11 (aws-lc-rs backend) decoding the
//!   same token with RS256, audience and issuer checks, for context.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::{self, ParsedPublicKey};
use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use rustls_pki_types::UnixTime;
use std::hint::black_box;
use winmdm_entra::{KeyCache, KeySource, Policy, TokenVersion, Validator};
use winmdm_testkit::entra::{self as tk, ALICE, AccessToken, CONTOSO};

fn entra(c: &mut Criterion) {
    let token = AccessToken::v2(&CONTOSO, &ALICE).sign();
    let now = UnixTime::since_unix_epoch(Duration::from_secs(tk::NOW));
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap();
    let key = ParsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        tk::KEY_1.rsa_public_key_der(),
    )
    .unwrap();

    let jwks = tk::jwks([&tk::KEY_1, &tk::KEY_2, &tk::KEY_FABRIKAM]).to_string();
    let source =
        KeySource::static_jwks(jwks.as_bytes(), tk::V2_ISSUER_TEMPLATE, TokenVersion::V2).unwrap();
    let policy = Policy::builder()
        .allow_tenants([CONTOSO.id])
        .allow_audiences([tk::MDM_APP_ID])
        .require_scope("mdm_delegation")
        .build()
        .unwrap();
    let validator = Validator::new(policy, Arc::new(KeyCache::new(vec![source])));
    validator.validate(&token, now).unwrap();

    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(tk::KEY_1.jwk()).unwrap();
    let decoding_key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[tk::MDM_APP_ID]);
    validation.set_issuer(&[CONTOSO.v2_issuer()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.validate_exp = false; // the token's times are fixed in the past
    jsonwebtoken::decode::<serde_json::Value>(&token, &decoding_key, &validation).unwrap();

    let mut group = c.benchmark_group("entra-rs256");
    group.bench_function("ceiling/aws_lc_rs_rsa2048_verify", |b| {
        b.iter(|| {
            key.verify_sig(black_box(input.as_bytes()), black_box(&sig))
                .unwrap()
        })
    });
    group.bench_function("winmdm_entra/validate", |b| {
        b.iter(|| validator.validate(black_box(&token), now).unwrap())
    });
    group.bench_function("reference/jsonwebtoken_decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &decoding_key, &validation)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, entra);
criterion_main!(benches);
