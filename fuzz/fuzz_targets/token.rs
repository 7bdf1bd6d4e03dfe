//! Fuzzes Entra token parsing and validation: any bytes must give a verified token or a
//! typed error, never a panic.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use winmdm_entra::{KeyCache, KeySource, Policy, TokenVersion, Validator};

/// 2026-05-28T20:26:40Z, when the testkit tokens in the seed corpus are valid.
const NOW: u64 = 1_780_000_000;

static VALIDATOR: LazyLock<Validator> = LazyLock::new(|| {
    let jwks = include_str!("../../crates/winmdm-testkit/testdata/entra/jwks-common-v2.json");
    let v2 = KeySource::static_jwks(jwks.as_bytes(), "https://login.microsoftonline.com/{tenantid}/v2.0", TokenVersion::V2).unwrap();
    let v1 = KeySource::static_jwks(jwks.as_bytes(), "https://sts.windows.net/{tenantid}/", TokenVersion::V1).unwrap();
    let policy = Policy::builder()
        .allow_tenants(["72f988bf-0000-4000-8000-00000000c0de"])
        .allow_audiences(["a1b2c3d4-0000-4000-8000-00000000a0d1", "https://mdm.contoso.example"])
        .accept_v1()
        .build()
        .unwrap();
    Validator::new(policy, Arc::new(KeyCache::new(vec![v2, v1])))
});

fuzz_target!(|data: &[u8]| {
    winmdm_entra::fuzzing::token_one(&VALIDATOR, data, NOW);
});
