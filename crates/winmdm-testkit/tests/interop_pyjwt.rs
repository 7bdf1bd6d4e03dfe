//! Testkit tokens and the emulator's client-credentials flow, checked by PyJWT (an
//! independent implementation). Skipped without python3 + PyJWT, except under CI.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use winmdm_testkit::entra::{
    ALICE, AccessToken, BOB, CONTOSO, DEFAULT_LIFETIME, FABRIKAM, KEY_1, KEY_FABRIKAM, MDM_APP_ID,
    MDM_APP_ID_URI, STRAY_KEY,
};
use winmdm_testkit::tools;

fn script(name: &str) -> String {
    format!("{}/tests/interop/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn pyjwt_verifies_testkit_tokens_and_rejects_broken_ones() {
    if !tools::require_pyjwt() {
        return;
    }
    // PyJWT checks times against the real clock, so these tokens are minted at "now".
    let now = now();
    let v2 = |t| json!({"audience": MDM_APP_ID, "issuer": CONTOSO.v2_issuer(), "token": t});
    let good = AccessToken::v2(&CONTOSO, &ALICE).issued_at(now);
    let mut cases = vec![
        ("v2-valid", v2(good.clone().sign())),
        (
            "v1-valid",
            json!({"audience": MDM_APP_ID_URI, "issuer": CONTOSO.v1_issuer(),
            "token": AccessToken::v1(&CONTOSO, &ALICE).issued_at(now).sign()}),
        ),
        (
            "enrollment-valid",
            v2(AccessToken::for_enrollment(&CONTOSO, &ALICE)
                .issued_at(now)
                .sign()),
        ),
        (
            "expired",
            v2(good
                .clone()
                .valid_between(now - 2 * DEFAULT_LIFETIME, now - DEFAULT_LIFETIME)
                .sign()),
        ),
        (
            "not-yet-valid",
            v2(good
                .clone()
                .valid_between(now + DEFAULT_LIFETIME, now + 2 * DEFAULT_LIFETIME)
                .sign()),
        ),
        (
            "wrong-audience",
            v2(good
                .clone()
                .claim("aud", "00000000-0000-4000-8000-0000000bad00")
                .sign()),
        ),
        (
            "wrong-tenant",
            v2(AccessToken::v2(&FABRIKAM, &BOB).issued_at(now).sign()),
        ),
        (
            "unknown-kid",
            v2(good.clone().signed_with(&STRAY_KEY).sign()),
        ),
        ("missing-exp", v2(good.clone().without_claim("exp").sign())),
    ];
    // Spoil the signature or algorithm of an otherwise valid, current token.
    let token = good.sign();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let i = sig.len() - 20;
    let c = if &sig[i..=i] == "A" { "B" } else { "A" };
    let flipped = format!("{input}.{}{c}{}", &sig[..i], &sig[i + 1..]);
    cases.push(("tampered-signature", v2(flipped)));
    cases.push((
        "alg-none",
        v2(format!(
            "{}.",
            winmdm_testkit::entra::broken(winmdm_testkit::entra::Broken::AlgNone)
                .rsplit_once('.')
                .unwrap()
                .0
        )),
    ));
    let hs = winmdm_testkit::entra::broken(winmdm_testkit::entra::Broken::Hs256WithPublicKey);
    cases.push(("hs256-confusion", v2(hs)));

    let input = json!({
        "jwks": winmdm_testkit::entra::jwks([&KEY_1, &KEY_FABRIKAM]),
        "cases": cases.iter().map(|(name, c)| {
            let mut c = c.clone();
            c["name"] = json!(name);
            c
        }).collect::<Vec<_>>(),
    });
    let out = tools::run_with_stdin(
        "python3",
        &[&script("pyjwt_verify.py")],
        input.to_string().as_bytes(),
    )
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let verdict = |name: &str| {
        stdout
            .lines()
            .find(|l| l.split(' ').next() == Some(name))
            .unwrap_or_else(|| panic!("no verdict for {name}: {stdout}"))
            .to_owned()
    };
    for name in ["v2-valid", "v1-valid", "enrollment-valid"] {
        assert_eq!(verdict(name), format!("{name} valid"));
    }
    for (name, exception) in [
        ("expired", "ExpiredSignatureError"),
        ("not-yet-valid", "ImmatureSignatureError"),
        ("wrong-audience", "InvalidAudienceError"),
        ("wrong-tenant", "InvalidIssuerError"),
        ("unknown-kid", "PyJWKError"),
        ("missing-exp", "MissingRequiredClaimError"),
        ("tampered-signature", "InvalidSignatureError"),
        ("alg-none", "InvalidAlgorithmError"),
        ("hs256-confusion", "InvalidAlgorithmError"),
    ] {
        assert_eq!(
            verdict(name),
            format!("{name} rejected {exception}"),
            "{stdout}"
        );
    }
}

#[cfg(feature = "emulator")]
#[test]
fn pyjwt_client_credentials_against_emulator() {
    use winmdm_testkit::emulator::EntraEmulator;
    use winmdm_testkit::entra::{APP_CREDENTIAL_1, APP_SECRET_1};
    if !tools::require_pyjwt() {
        return;
    }
    let emu = EntraEmulator::spawn().unwrap();
    let dir = std::env::temp_dir().join(format!("winmdm-pyjwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cred.crt.pem");
    let key = dir.join("cred.key.pem");
    std::fs::write(&cert, APP_CREDENTIAL_1.cert_pem).unwrap();
    std::fs::write(&key, APP_CREDENTIAL_1.key_pem).unwrap();
    let out = std::process::Command::new("python3")
        .arg(script("pyjwt_client_credentials.py"))
        .args([emu.base_url(), CONTOSO.id, MDM_APP_ID])
        .arg(&cert)
        .arg(&key)
        .arg(APP_SECRET_1)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with(" ok")).count(),
        8,
        "{stdout}"
    );
    // The emulator saw exactly the five token requests the script made.
    assert_eq!(emu.token_requests(), 5);
}
