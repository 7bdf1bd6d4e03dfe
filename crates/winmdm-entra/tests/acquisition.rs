//! App-only token acquisition and key fetching against the testkit Entra emulator over
//! real loopback HTTP.
#![cfg(feature = "reqwest")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::UnixTime;
use winmdm_entra::app_token::{
    AppCredentials, AppTokenProvider, AssertionStyle, CertificateCredential, Credential,
};
use winmdm_entra::{Error, KeyCache, KeySource, Policy, TokenVersion, Validator, fetch};
use winmdm_testkit::emulator::{AppRegistration, EmulatorConfig, EntraEmulator};
use winmdm_testkit::entra::{self as tk, ALICE, AccessToken, CONTOSO, FABRIKAM};

fn real_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn cert(cred: &tk::AppCredential, style: AssertionStyle) -> Credential {
    Credential::Certificate(
        CertificateCredential::from_der(cred.cert_der, cred.key_der, style).unwrap(),
    )
}

fn graph_validator(emu: &EntraEmulator) -> Validator {
    let policy = Policy::builder()
        .allow_tenants([CONTOSO.id, FABRIKAM.id])
        .allow_audiences([tk::GRAPH_RESOURCE])
        .accept_v1()
        .require_role("Device.ReadWrite.All")
        .principals(winmdm_entra::Principals::Applications)
        .build()
        .unwrap();
    let cache = KeyCache::new(vec![KeySource::entra(
        emu.base_url(),
        "common",
        TokenVersion::V1,
    )]);
    Validator::new(policy, Arc::new(cache))
}

#[tokio::test]
async fn secret_and_certificate_credentials_get_valid_tokens() {
    let emu = EntraEmulator::spawn().unwrap();
    let client = fetch::default_client().unwrap();
    let validator = graph_validator(&emu);
    for credential in [
        Credential::secret(tk::APP_SECRET_1),
        cert(&tk::APP_CREDENTIAL_1, AssertionStyle::Ps256),
        cert(&tk::APP_CREDENTIAL_1, AssertionStyle::Rs256),
    ] {
        let provider = AppTokenProvider::new(
            client.clone(),
            emu.base_url(),
            AppCredentials::new(tk::MDM_APP_ID).with(credential),
        );
        let token = provider.token(CONTOSO.id).await.unwrap();
        assert!(
            !format!("{token:?}").contains(token.secret().expose()),
            "Debug redacts the token"
        );
        // The token the emulator issued validates with keys fetched from it.
        let claims = fetch::validate_with_refresh(
            &validator,
            &client,
            token.secret().expose(),
            UnixTime::now(),
        )
        .await
        .unwrap();
        assert_eq!(claims.tenant_id, CONTOSO.id);
        assert_eq!(claims.identity_type.as_deref(), Some("app"));
    }
}

#[tokio::test]
async fn n_concurrent_callers_share_one_request_and_expiry_causes_exactly_one_more() {
    let emu = EntraEmulator::spawn().unwrap();
    let clock = Arc::new(AtomicU64::new(real_now()));
    let c = clock.clone();
    let provider = Arc::new(
        AppTokenProvider::new(
            fetch::default_client().unwrap(),
            emu.base_url(),
            AppCredentials::new(tk::MDM_APP_ID).with(Credential::secret(tk::APP_SECRET_1)),
        )
        .with_clock(move || {
            UnixTime::since_unix_epoch(Duration::from_secs(c.load(Ordering::SeqCst)))
        }),
    );
    // Slow responses make the callers genuinely overlap.
    emu.set_delay(Duration::from_millis(150));
    let run = |n: usize| {
        let provider = provider.clone();
        async move {
            let tasks: Vec<_> = (0..n)
                .map(|_| {
                    let p = provider.clone();
                    tokio::spawn(async move { p.token(CONTOSO.id).await.unwrap() })
                })
                .collect();
            let mut tokens = Vec::new();
            for t in tasks {
                tokens.push(t.await.unwrap());
            }
            tokens
        }
    };
    let first = run(16).await;
    assert_eq!(emu.token_requests(), 1);
    assert!(first.windows(2).all(|w| w[0] == w[1]));
    // Cached: no new request.
    run(8).await;
    assert_eq!(emu.token_requests(), 1);
    // The token expires during the run: exactly one new request for N concurrent callers.
    clock.fetch_add(3_600, Ordering::SeqCst);
    let second = run(16).await;
    assert_eq!(emu.token_requests(), 2);
    assert!(second.windows(2).all(|w| w[0] == w[1]));
    assert_ne!(first[0], second[0]);
    // A different tenant is a different cache entry.
    provider.token(FABRIKAM.id).await.unwrap();
    assert_eq!(emu.token_requests(), 3);
}

#[tokio::test]
async fn early_refresh_keeps_serving_the_current_token() {
    let emu = EntraEmulator::spawn().unwrap();
    let clock = Arc::new(AtomicU64::new(real_now()));
    let c = clock.clone();
    let provider = AppTokenProvider::new(
        fetch::default_client().unwrap(),
        emu.base_url(),
        AppCredentials::new(tk::MDM_APP_ID).with(Credential::secret(tk::APP_SECRET_1)),
    )
    .with_clock(move || UnixTime::since_unix_epoch(Duration::from_secs(c.load(Ordering::SeqCst))));
    let first = provider.token(CONTOSO.id).await.unwrap();
    // Inside the 5-minute refresh window but still valid: one refresh; if it fails the
    // current token is returned.
    clock.fetch_add(3_599 - 200, Ordering::SeqCst);
    emu.fail_next(1, 503);
    let during_outage = provider.token(CONTOSO.id).await.unwrap();
    assert_eq!(during_outage, first);
    assert_eq!(emu.token_requests(), 2);
    let refreshed = provider.token(CONTOSO.id).await.unwrap();
    assert_ne!(refreshed, first);
    assert_eq!(emu.token_requests(), 3);
}

#[tokio::test]
async fn credential_rollover_falls_back_to_the_previous_credential() {
    // The registration knows only credential 1; the provider already has the new
    // credential 2 (uploaded locally first, as during a rollover).
    let mut app = AppRegistration::mdm_app();
    app.certificates = vec![tk::APP_CREDENTIAL_1.cert_der.to_vec()];
    app.secrets = vec![tk::APP_SECRET_1.to_owned()];
    let emu = EntraEmulator::spawn_with(EmulatorConfig {
        apps: vec![app],
        ..EmulatorConfig::default()
    })
    .unwrap();
    let creds = AppCredentials::new(tk::MDM_APP_ID)
        .with(cert(&tk::APP_CREDENTIAL_1, AssertionStyle::Ps256))
        .with(cert(&tk::APP_CREDENTIAL_2, AssertionStyle::Ps256));
    let provider = AppTokenProvider::new(fetch::default_client().unwrap(), emu.base_url(), creds);
    provider.token(CONTOSO.id).await.unwrap();
    let log = emu.requests();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].status, 401, "newest credential tried first");
    assert_eq!(log[1].status, 200, "previous credential used");

    // With every credential refused the error is the endpoint's.
    let creds = AppCredentials::new(tk::MDM_APP_ID)
        .with(Credential::secret("old-and-revoked"))
        .with(Credential::secret("typo"));
    let provider = AppTokenProvider::new(fetch::default_client().unwrap(), emu.base_url(), creds);
    let err = provider.token(CONTOSO.id).await.unwrap_err();
    assert!(
        matches!(err, Error::TokenEndpoint { status: 401, ref error, .. } if error == "invalid_client")
    );
    assert!(!format!("{err:?}").contains("old-and-revoked"));
}

#[tokio::test]
async fn per_tenant_credentials_for_on_premises() {
    let mut app = AppRegistration::mdm_app();
    app.home_tenant = Some(CONTOSO);
    let emu = EntraEmulator::spawn_with(EmulatorConfig {
        apps: vec![app],
        ..EmulatorConfig::default()
    })
    .unwrap();
    let provider = AppTokenProvider::per_tenant(fetch::default_client().unwrap(), emu.base_url())
        .with_tenant(
            CONTOSO.id,
            AppCredentials::new(tk::MDM_APP_ID).with(Credential::secret(tk::APP_SECRET_1)),
        );
    provider.token(CONTOSO.id).await.unwrap();
    assert!(matches!(
        provider.token(FABRIKAM.id).await,
        Err(Error::InvalidConfig { .. })
    ));
}

#[tokio::test]
async fn key_rotation_on_the_emulator_is_followed() {
    let emu = EntraEmulator::spawn().unwrap();
    let client = fetch::default_client().unwrap();
    let policy = Policy::builder()
        .allow_tenants([CONTOSO.id])
        .allow_audiences([tk::MDM_APP_ID])
        .build()
        .unwrap();
    let validator = Validator::new(
        policy,
        Arc::new(KeyCache::new(vec![KeySource::entra(
            emu.base_url(),
            "common",
            TokenVersion::V2,
        )])),
    );
    let now = UnixTime::now();
    let token = AccessToken::v2(&CONTOSO, &ALICE)
        .issued_at(now.as_secs())
        .signed_with(emu.active_key())
        .sign();
    // Cold cache: the first call fetches metadata and keys.
    fetch::validate_with_refresh(&validator, &client, &token, now)
        .await
        .unwrap();
    assert_eq!(emu.requests().len(), 2);
    // Entra rolls its key; a token signed with the new key triggers one refresh.
    emu.rotate_keys();
    let rolled = AccessToken::v2(&CONTOSO, &ALICE)
        .issued_at(now.as_secs())
        .signed_with(emu.active_key())
        .sign();
    fetch::validate_with_refresh(&validator, &client, &rolled, now)
        .await
        .unwrap();
    assert_eq!(emu.requests().len(), 3);
    // Tokens signed with the previous key still validate (it stays published).
    validator.validate(&token, now).unwrap();
    // An outage keeps the last-known-good keys.
    emu.fail_next(10, 503);
    let later = UnixTime::since_unix_epoch(Duration::from_secs(now.as_secs() + 4000));
    assert!(fetch::refresh_due(validator.cache(), &client, later).await >= 1);
    validator
        .validate(
            &rolled,
            UnixTime::since_unix_epoch(Duration::from_secs(now.as_secs() + 100)),
        )
        .unwrap();
}
