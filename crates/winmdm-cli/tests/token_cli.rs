//! `winmdm token inspect` and `winmdm token validate` as a user runs them.

use std::io::Write as _;
use std::process::{Command, Stdio};

use winmdm_testkit::entra::{self as tk, ALICE, AccessToken, Broken, CONTOSO, FABRIKAM};

fn winmdm(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_winmdm"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn jwks_file() -> String {
    format!(
        "{}/../winmdm-testkit/testdata/entra/jwks-common-v2.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn validate(token: &str, extra: &[&str]) -> (bool, String, String) {
    let now = tk::NOW.to_string();
    let jwks = jwks_file();
    let mut args = vec![
        "token",
        "validate",
        "--jwks",
        &jwks,
        "--tenant",
        CONTOSO.id,
        "--audience",
        tk::MDM_APP_ID,
        "--now",
        &now,
    ];
    args.extend_from_slice(extra);
    args.push("-");
    winmdm(&args, Some(token))
}

#[test]
fn inspect_is_labelled_unverified() {
    let token = AccessToken::v2(&CONTOSO, &ALICE).sign();
    let (ok, out, err) = winmdm(&["token", "inspect", &format!("Bearer {token}")], None);
    assert!(ok, "{err}");
    assert!(err.contains("UNVERIFIED"));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["verified"], false);
    assert_eq!(doc["claims"]["oid"], ALICE.oid);
    assert_eq!(doc["header"]["kid"], tk::KEY_1.kid());
    assert_eq!(doc["times_utc"]["iat"], "2026-05-28T20:26:40Z");
    // Even a forged token decodes: inspect checks nothing.
    let (ok, _, _) = winmdm(
        &["token", "inspect", "-"],
        Some(&tk::broken(Broken::AlgNone)),
    );
    assert!(ok);
    let (ok, _, err) = winmdm(&["token", "inspect", "not-a-token"], None);
    assert!(!ok);
    assert!(err.contains("malformed"), "{err}");
}

#[test]
fn validate_prints_verified_claims() {
    let (ok, out, err) = validate(
        &AccessToken::v2(&CONTOSO, &ALICE).sign(),
        &["--scope", "mdm_delegation"],
    );
    assert!(ok, "{out}{err}");
    let claims: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(claims["object_id"], ALICE.oid);
    assert_eq!(claims["tenant_id"], CONTOSO.id);
    assert_eq!(claims["version"], "V2");
    assert_eq!(
        claims["raw"]["uti"],
        AccessToken::v2(&CONTOSO, &ALICE).claims()["uti"]
    );
}

#[test]
fn validate_reports_the_error_kind() {
    for (token, code) in [
        (tk::broken(Broken::WrongTenant), "tenant_not_allowed"),
        (tk::broken(Broken::Expired), "expired"),
        (tk::broken(Broken::AlgNone), "algorithm_not_allowed"),
        (tk::broken(Broken::TamperedSignature), "bad_signature"),
        (
            tk::broken(Broken::KeyFromOtherTenant),
            "key_issuer_mismatch",
        ),
        (
            AccessToken::v1(&CONTOSO, &ALICE).sign(),
            "version_not_allowed",
        ),
    ] {
        let (ok, out, _) = validate(&token, &[]);
        assert!(!ok, "{code}: {out}");
        assert!(
            out.starts_with(&format!("invalid: {code}: ")),
            "{code}: {out}"
        );
    }
    // v1 with --allow-v1 and the v1 audience.
    let v1 = AccessToken::v1(&CONTOSO, &ALICE).sign();
    let (ok, out, _) = validate(&v1, &["--allow-v1", "--audience", tk::MDM_APP_ID_URI]);
    assert!(ok, "{out}");
    // Another tenant accepted when listed.
    let (ok, _, _) = validate(
        &AccessToken::v2(&FABRIKAM, &tk::BOB).sign(),
        &["--tenant", FABRIKAM.id],
    );
    assert!(ok);
}

#[test]
fn validate_fetches_jwks_from_a_url() {
    let emu = winmdm_testkit::emulator::EntraEmulator::spawn().unwrap();
    let token = AccessToken::v2(&CONTOSO, &ALICE).sign();
    let now = tk::NOW.to_string();
    let url = emu.jwks_url("common", tk::TokenVersion::V2);
    let (ok, out, err) = winmdm(
        &[
            "token",
            "validate",
            "--jwks",
            &url,
            "--tenant",
            CONTOSO.id,
            "--audience",
            tk::MDM_APP_ID,
            "--now",
            &now,
            &token,
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    assert_eq!(emu.requests().len(), 1);
}

/// App-only tokens are refused unless asked for: an MDM only ever receives users' tokens,
/// but a vendor debugging its Graph token can say `--principals applications`.
#[test]
fn validate_refuses_app_only_tokens_unless_asked() {
    let app = AccessToken::app_only(&CONTOSO, tk::MDM_APP_ID, tk::MDM_APP_ID, &[])
        .claim(
            "iss",
            format!("https://login.microsoftonline.com/{}/v2.0", CONTOSO.id),
        )
        .claim("ver", "2.0")
        .sign();
    let (ok, out, err) = validate(&app, &[]);
    assert!(!ok, "{out}");
    assert!(
        format!("{out}{err}").contains("principal_not_allowed"),
        "{out}{err}"
    );
    let (ok, out, err) = validate(&app, &["--principals", "applications"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"identity_type\": \"app\""), "{out}");
    // And the other way round.
    let user = AccessToken::v2(&CONTOSO, &ALICE).sign();
    assert!(!validate(&user, &["--principals", "applications"]).0);
    assert!(validate(&user, &["--principals", "any"]).0);
}
