//! Shared helpers for winmdm-entra's integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::UnixTime;
use winmdm_entra::{CacheConfig, KeyCache, KeySource, Policy, TokenVersion, Validator};
use winmdm_testkit::entra::{self as tk, SigningKey};

pub fn at(secs: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(secs))
}

pub fn now() -> UnixTime {
    at(tk::NOW)
}

/// Metadata as Entra's tenant-independent v2 endpoint serves it (issuer template).
pub fn metadata_v2(jwks_uri: &str) -> Vec<u8> {
    let mut doc = tk::openid_configuration(
        "https://login.microsoftonline.com",
        "common",
        tk::TokenVersion::V2,
    );
    doc["jwks_uri"] = serde_json::json!(jwks_uri);
    doc.to_string().into_bytes()
}

pub fn ok_json(body: Vec<u8>) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

/// A cache over the tenant-independent v2 (and v1) metadata, loaded with `keys` by
/// driving it through its real fetch cycle with testkit documents.
pub fn loaded_cache(keys: &[&'static SigningKey], v1: bool, config: CacheConfig) -> Arc<KeyCache> {
    let mut sources = vec![KeySource::entra(
        "https://login.microsoftonline.com",
        "common",
        TokenVersion::V2,
    )];
    if v1 {
        sources.push(KeySource::entra(
            "https://login.microsoftonline.com",
            "common",
            TokenVersion::V1,
        ));
    }
    let cache = Arc::new(KeyCache::with_config(sources, config));
    feed(&cache, keys, now());
    cache
}

/// Answers every due fetch of `cache` at `when` with testkit documents serving `keys`.
pub fn feed(cache: &KeyCache, keys: &[&'static SigningKey], when: UnixTime) -> usize {
    let mut n = 0;
    while let Some(fetch) = cache.poll_fetch(when) {
        n += 1;
        let uri = fetch.request.uri().to_string();
        let body = if uri.ends_with("openid-configuration") {
            let version = if uri.contains("/v2.0/") {
                tk::TokenVersion::V2
            } else {
                tk::TokenVersion::V1
            };
            tk::openid_configuration("https://login.microsoftonline.com", "common", version)
                .to_string()
                .into_bytes()
        } else {
            assert!(uri.ends_with("/keys"), "{uri}");
            tk::jwks(keys.iter().copied()).to_string().into_bytes()
        };
        cache
            .handle_response(fetch.id, when, &ok_json(body))
            .unwrap();
        assert!(n < 20, "fetch loop");
    }
    n
}

pub fn policy() -> Policy {
    Policy::builder()
        .allow_tenants([tk::CONTOSO.id])
        .allow_audiences([tk::MDM_APP_ID, tk::MDM_APP_ID_URI])
        .require_scope(tk::MDM_SCOPE)
        .build()
        .unwrap()
}

pub fn validator() -> Validator {
    Validator::new(
        policy(),
        loaded_cache(
            &[&tk::KEY_1, &tk::KEY_FABRIKAM],
            false,
            CacheConfig::default(),
        ),
    )
}
