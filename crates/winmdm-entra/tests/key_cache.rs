//! The key cache's cadence, deterministically: injected time, fixed jitter, and a fetch
//! blocked on a barrier. No timing assertions.

mod common;

use std::sync::{Arc, Barrier, mpsc};

use common::*;
use winmdm_entra::{CacheConfig, Error, FetchKind, KeyCache, KeySource, TokenVersion, Validator};
use winmdm_testkit::entra::{self as tk, ALICE, AccessToken, CONTOSO, KEY_1, KEY_2};

const HOUR: u64 = 3600;

fn fixed_jitter() -> CacheConfig {
    // Jitter drawn as exactly the middle of its range: metadata every 12 h.
    CacheConfig::default().with_jitter(|max| max / 2)
}

fn cache() -> Arc<KeyCache> {
    loaded_cache(&[&KEY_1], false, fixed_jitter())
}

fn jwks_response(
    keys: &[&'static tk::SigningKey],
    cache_control: Option<&str>,
) -> http::Response<Vec<u8>> {
    let mut b = http::Response::builder().status(200);
    if let Some(cc) = cache_control {
        b = b.header("cache-control", cc);
    }
    b.body(tk::jwks(keys.iter().copied()).to_string().into_bytes())
        .unwrap()
}

fn due_in(cache: &KeyCache, from: u64) -> u64 {
    cache.next_due(at(from)).unwrap().as_secs() - from
}

#[test]
fn cold_start_fetches_metadata_then_keys() {
    let cache = KeyCache::with_config(
        vec![KeySource::entra(
            "https://login.microsoftonline.com",
            "common",
            TokenVersion::V2,
        )],
        fixed_jitter(),
    );
    let first = cache.poll_fetch(now()).unwrap();
    assert_eq!(first.id.kind(), FetchKind::Metadata);
    assert!(
        cache.poll_fetch(now()).is_none(),
        "one fetch in flight per source"
    );
    cache
        .handle_response(
            first.id,
            now(),
            &ok_json(metadata_v2(
                "https://login.microsoftonline.com/common/discovery/v2.0/keys",
            )),
        )
        .unwrap();
    let second = cache.poll_fetch(now()).unwrap();
    assert_eq!(second.id.kind(), FetchKind::Jwks);
    assert_eq!(
        second.request.uri(),
        "https://login.microsoftonline.com/common/discovery/v2.0/keys"
    );
    cache
        .handle_response(second.id, now(), &jwks_response(&[&KEY_1], None))
        .unwrap();
    assert!(cache.poll_fetch(now()).is_none());
    assert_eq!(cache.status()[0].kids, [KEY_1.kid()]);
    assert_eq!(
        cache.status()[0].issuer.as_deref(),
        Some(tk::V2_ISSUER_TEMPLATE)
    );
}

#[test]
fn keys_hourly_and_metadata_twelve_hours_with_jitter() {
    let cache = cache();
    assert_eq!(due_in(&cache, tk::NOW), HOUR, "keys refresh hourly");
    // After an hour only the keys are fetched.
    let fetch = cache.poll_fetch(at(tk::NOW + HOUR)).unwrap();
    assert_eq!(fetch.id.kind(), FetchKind::Jwks);
    cache
        .handle_response(
            fetch.id,
            at(tk::NOW + HOUR),
            &jwks_response(&[&KEY_1], None),
        )
        .unwrap();
    // The metadata comes due at 12 h (jitter fixed to the middle of ±1 h).
    let twelve = tk::NOW + 12 * HOUR;
    feed(&cache, &[&KEY_1], at(twelve - 1));
    let fetch = cache.poll_fetch(at(twelve)).unwrap();
    assert_eq!(fetch.id.kind(), FetchKind::Metadata);

    // The jitter spans 11 h to 13 h.
    for (jitter, hours) in [(0u64, 11u64), (u64::MAX, 13)] {
        let config = CacheConfig::default().with_jitter(move |max| jitter.min(max));
        let cache = loaded_cache(&[&KEY_1], false, config);
        let m = tk::NOW + hours * HOUR;
        feed(&cache, &[&KEY_1], at(m - 1));
        assert!(cache.poll_fetch(at(m - 1)).is_none());
        assert_eq!(
            cache.poll_fetch(at(m)).unwrap().id.kind(),
            FetchKind::Metadata,
            "jitter {jitter}"
        );
    }
}

#[test]
fn cache_control_is_honoured() {
    for (header, expected) in [
        (None, HOUR),
        (Some("public, max-age=600"), 600),
        (Some("max-age=86400"), HOUR), // never slower than Microsoft's hourly cadence
        (Some("no-store"), 60),        // never faster than the minimum
        (Some("max-age=5"), 60),
    ] {
        let cache = cache();
        let t = tk::NOW + HOUR;
        let fetch = cache.poll_fetch(at(t)).unwrap();
        cache
            .handle_response(fetch.id, at(t), &jwks_response(&[&KEY_1], header))
            .unwrap();
        assert_eq!(due_in(&cache, t), expected, "{header:?}");
    }
}

#[test]
fn unknown_kid_refreshes_at_once_but_at_most_every_five_minutes() {
    let cache = cache();
    let v = Validator::new(policy(), cache.clone());
    let rolled = AccessToken::v2(&CONTOSO, &ALICE).signed_with(&KEY_2).sign();
    assert!(matches!(
        v.validate(&rolled, now()),
        Err(Error::UnknownKid { .. })
    ));
    assert_eq!(due_in(&cache, tk::NOW), 0, "refresh due immediately");
    let fetch = cache.poll_fetch(now()).unwrap();
    assert_eq!(fetch.id.kind(), FetchKind::Jwks);
    cache
        .handle_response(fetch.id, now(), &jwks_response(&[&KEY_1, &KEY_2], None))
        .unwrap();
    v.validate(&rolled, now()).unwrap();

    // Another unknown kid within five minutes does not trigger a fetch...
    let stray = AccessToken::v2(&CONTOSO, &ALICE)
        .signed_with(&tk::STRAY_KEY)
        .sign();
    let t = tk::NOW + 299;
    assert!(matches!(
        v.validate(&stray, at(t)),
        Err(Error::UnknownKid { .. })
    ));
    assert!(cache.poll_fetch(at(t)).is_none());
    // ...after five minutes it does, once.
    let t = tk::NOW + 300;
    assert!(matches!(
        v.validate(&stray, at(t)),
        Err(Error::UnknownKid { .. })
    ));
    let fetch = cache.poll_fetch(at(t)).unwrap();
    cache
        .handle_response(fetch.id, at(t), &jwks_response(&[&KEY_1, &KEY_2], None))
        .unwrap();
    for _ in 0..10 {
        let _ = v.validate(&stray, at(t + 1));
    }
    assert!(
        cache.poll_fetch(at(t + 1)).is_none(),
        "rate limit holds under a flood"
    );
}

#[test]
fn last_known_good_kept_on_failure_with_backoff_then_fails_closed_after_max_age() {
    let cache = cache();
    let v = Validator::new(policy(), cache.clone());
    let token = AccessToken::v2(&CONTOSO, &ALICE).sign();
    let mut t = tk::NOW + HOUR;
    let mut delays = Vec::new();
    for round in 0..4 {
        let fetch = cache.poll_fetch(at(t)).unwrap();
        let err = if round % 2 == 0 {
            let failed = http::Response::builder()
                .status(500)
                .body(Vec::new())
                .unwrap();
            cache.handle_response(fetch.id, at(t), &failed).unwrap_err()
        } else {
            cache.handle_failure(fetch.id, at(t), "connection refused");
            Error::Fetch {
                what: "JWKS",
                reason: "transport".into(),
            }
        };
        assert!(matches!(err, Error::Fetch { .. }));
        // Validation keeps working on the last-known-good keys.
        v.validate(&token, at(tk::NOW)).unwrap();
        let d = due_in(&cache, t);
        delays.push(d);
        t += d;
    }
    assert_eq!(delays, [30, 60, 120, 240], "exponential backoff");
    assert_eq!(cache.status()[0].failures, 4);
    // An unusable document (empty key set) is a failure too, and keeps the old keys.
    let fetch = cache.poll_fetch(at(t)).unwrap();
    let empty = ok_json(br#"{"keys":[]}"#.to_vec());
    assert!(cache.handle_response(fetch.id, at(t), &empty).is_err());
    assert_eq!(cache.status()[0].kids, [KEY_1.kid()]);
    // Once the keys are older than 24 h without a successful refresh, they are not used.
    let token_later = AccessToken::v2(&CONTOSO, &ALICE)
        .issued_at(tk::NOW + 24 * HOUR)
        .sign();
    assert!(matches!(
        v.validate(&token_later, at(tk::NOW + 24 * HOUR + 1)),
        Err(Error::KeysUnavailable { .. })
    ));
}

#[test]
fn lost_fetch_is_retried_after_timeout_and_stale_answers_ignored() {
    let cache = cache();
    let t = tk::NOW + HOUR;
    let lost = cache.poll_fetch(at(t)).unwrap();
    assert!(cache.poll_fetch(at(t + 59)).is_none());
    let retry = cache.poll_fetch(at(t + 60)).unwrap();
    assert_ne!(lost.id, retry.id);
    // The late answer to the lost fetch is ignored; the current one is applied.
    cache
        .handle_response(lost.id, at(t + 61), &jwks_response(&[&KEY_2], None))
        .unwrap();
    assert_eq!(cache.status()[0].kids, [KEY_1.kid()]);
    cache
        .handle_response(
            retry.id,
            at(t + 61),
            &jwks_response(&[&KEY_1, &KEY_2], None),
        )
        .unwrap();
    assert_eq!(cache.status()[0].kids.len(), 2);
}

#[test]
fn a_blocked_refresh_does_not_block_validations() {
    let cache = cache();
    let v = Validator::new(policy(), cache.clone());
    let token = AccessToken::v2(&CONTOSO, &ALICE).sign();
    let t = tk::NOW + HOUR;
    let fetch = cache.poll_fetch(at(t)).unwrap();

    // The "network" thread holds the fetch until the barrier releases it.
    let barrier = Arc::new(Barrier::new(2));
    let (done_tx, done_rx) = mpsc::channel();
    let fetcher = {
        let cache = cache.clone();
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            barrier.wait();
            cache
                .handle_response(fetch.id, at(t), &jwks_response(&[&KEY_1, &KEY_2], None))
                .unwrap();
            done_tx.send(()).unwrap();
        })
    };
    // While the fetch is outstanding, validations on several threads complete.
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let v = v.clone();
            let token = token.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    v.validate(&token, at(tk::NOW)).unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert!(done_rx.try_recv().is_err(), "the refresh is still blocked");
    barrier.wait();
    done_rx.recv().unwrap();
    fetcher.join().unwrap();
    assert_eq!(cache.status()[0].kids.len(), 2);
}

#[test]
fn per_tenant_and_common_sources_side_by_side() {
    // A tenant-specific source (exact issuer) beside the common one.
    let cache = Arc::new(KeyCache::with_config(
        vec![
            KeySource::entra(
                "https://login.microsoftonline.com",
                CONTOSO.id,
                TokenVersion::V2,
            ),
            KeySource::entra(
                "https://login.microsoftonline.com",
                "common",
                TokenVersion::V2,
            ),
        ],
        fixed_jitter(),
    ));
    let mut served = Vec::new();
    while let Some(fetch) = cache.poll_fetch(now()) {
        let uri = fetch.request.uri().to_string();
        served.push(uri.clone());
        let body = if uri.ends_with("openid-configuration") {
            let segment = if uri.contains(CONTOSO.id) {
                CONTOSO.id
            } else {
                "common"
            };
            tk::openid_configuration(
                "https://login.microsoftonline.com",
                segment,
                tk::TokenVersion::V2,
            )
            .to_string()
        } else if uri.contains(CONTOSO.id) {
            tk::jwks([&KEY_2]).to_string()
        } else {
            tk::jwks([&KEY_1]).to_string()
        };
        cache
            .handle_response(fetch.id, now(), &ok_json(body.into_bytes()))
            .unwrap();
    }
    assert_eq!(served.len(), 4);
    let v = Validator::new(policy(), cache.clone());
    // Contoso tokens resolve through the tenant-specific source's exact issuer first.
    v.validate(
        &AccessToken::v2(&CONTOSO, &ALICE).signed_with(&KEY_2).sign(),
        now(),
    )
    .unwrap();
    let status = cache.status();
    assert_eq!(
        status[0].issuer.as_deref(),
        Some(CONTOSO.v2_issuer().as_str())
    );
    assert_eq!(status[1].issuer.as_deref(), Some(tk::V2_ISSUER_TEMPLATE));
}

#[test]
fn bad_documents_are_refused() {
    let cache = KeyCache::new(vec![KeySource::entra(
        "https://login.microsoftonline.com",
        "common",
        TokenVersion::V2,
    )]);
    for body in [
        &b"not json"[..],
        br#"{"issuer":"https://x/{tenantid}/v2.0"}"#,
        br#"{"issuer":"http://insecure/{tenantid}/v2.0","jwks_uri":"https://x/keys"}"#,
        br#"{"issuer":"https://x/{tenantid}/v2.0","jwks_uri":"http://evil.example/keys"}"#,
    ] {
        let fetch = cache
            .poll_fetch(at(0))
            .unwrap_or_else(|| cache.poll_fetch(at(10_000)).unwrap());
        assert!(
            cache
                .handle_response(fetch.id, at(0), &ok_json(body.to_vec()))
                .is_err()
        );
    }
}
