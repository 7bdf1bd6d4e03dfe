//! OMA-DM MD5 digest: our digest equals an independent Python `hashlib` computation of
//! `b64(md5(b64(md5(user:pass)):nonce))`; challenges carry a fresh nonce; a credential
//! made for an old nonce is refused after rotation. Python parts skip without python3,
//! except under CI.

use winmdm_syncml::auth::{self, AuthError, Nonce};
use winmdm_syncml::{StatusCode, SyncMl, decode, encode, status};
use winmdm_testkit::tools;

const PY: &str = r#"
import base64, hashlib, json, sys
out = []
for case in json.load(sys.stdin):
    nonce = base64.b64decode(case["nonce_b64"])
    inner = base64.b64encode(hashlib.md5(f'{case["user"]}:{case["password"]}'.encode()).digest())
    out.append(base64.b64encode(hashlib.md5(inner + b":" + nonce).digest()).decode())
print(json.dumps(out))
"#;

#[test]
fn digest_matches_python_hashlib() {
    if !tools::require("python3", &["--version"]) {
        return;
    }
    let cases = [
        ("dev-1", "s3cret", b"0123456789abcdef".to_vec()),
        (
            "{6F1A1B2C-3D4E-5F60-7182-93A4B5C6D7E8}",
            "",
            vec![0u8, 255, 1, 254, 58, 0],
        ),
        ("Jürgen", "pässwörd:with:colons", (0u8..=255).collect()),
        ("", "x", Vec::new()),
    ];
    let input: Vec<serde_json::Value> = cases
        .iter()
        .map(|(u, p, n)| serde_json::json!({"user": u, "password": p, "nonce_b64": Nonce::from_bytes(n.clone()).to_b64()}))
        .collect();
    let out = tools::run_with_stdin(
        "python3",
        &["-c", PY],
        serde_json::to_string(&input).unwrap().as_bytes(),
    )
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let python: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    for ((u, p, n), expected) in cases.iter().zip(python) {
        let nonce = Nonce::from_bytes(n.clone());
        assert_eq!(auth::md5_digest(u, p, &nonce), expected, "{u}");
        // And a credential carrying Python's digest verifies.
        let mut cred = auth::md5_cred(u, p, &nonce);
        cred.data = expected.as_str().into();
        auth::verify(&cred, u, p, &nonce, false).unwrap();
    }
}

fn client_message(cred: Option<winmdm_syncml::Cred>) -> SyncMl {
    let mut m = decode(br#"<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>
      <SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>https://mdm.example/</LocURI></Target>
      <Source><LocURI>dev-1</LocURI></Source></SyncHdr><SyncBody><Alert><CmdID>1</CmdID><Data>1201</Data></Alert><Final/></SyncBody></SyncML>"#)
    .unwrap();
    m.header.cred = cred.map(Box::new);
    // Through the wire, as the server receives it.
    decode(encode(&m).as_bytes()).unwrap()
}

#[test]
fn challenge_rotation_and_replay() {
    let n1 = Nonce::from_bytes(b"first-nonce-0001".to_vec());
    let n2 = Nonce::from_bytes(b"second-nonce-002".to_vec());

    // No credentials: 407 with a challenge carrying the nonce to use.
    let bare = client_message(None);
    let err = auth::verify_header(&bare, "dev-1", "s3cret", &n1, false).unwrap_err();
    assert_eq!(err, AuthError::Missing);
    assert_eq!(err.status_code(), StatusCode::MISSING_CREDENTIALS);
    let challenge = status::challenge_status(&bare, err.status_code(), &n1.to_b64());
    let wire = winmdm_syncml::encode_command(&winmdm_syncml::Command::Status(challenge));
    assert!(wire.contains("<Chal><Meta><Format xmlns=\"syncml:metinf\">b64</Format><Type xmlns=\"syncml:metinf\">syncml:auth-md5</Type>"), "{wire}");
    let echoed = winmdm_syncml::decode_fragment(wire.as_bytes(), &Default::default()).unwrap();
    let winmdm_syncml::Fragment::Command(winmdm_syncml::Command::Status(s)) = echoed.value else {
        panic!()
    };
    let next = Nonce::from_b64(s.chal.unwrap().meta.next_nonce.as_deref().unwrap()).unwrap();
    assert_eq!(next, n1);

    // The device answers with a digest over that nonce: accepted.
    let good = client_message(Some(auth::md5_cred("dev-1", "s3cret", &n1)));
    auth::verify_header(&good, "dev-1", "s3cret", &n1, false).unwrap();
    // Wrong password: 401.
    let bad = client_message(Some(auth::md5_cred("dev-1", "guess", &n1)));
    let err = auth::verify_header(&bad, "dev-1", "s3cret", &n1, false).unwrap_err();
    assert_eq!(
        (err.clone(), err.status_code()),
        (AuthError::Mismatch, StatusCode::INVALID_CREDENTIALS)
    );
    // After the server rotates to n2, replaying the n1 credential fails; a fresh one works.
    assert_eq!(
        auth::verify_header(&good, "dev-1", "s3cret", &n2, false),
        Err(AuthError::Mismatch)
    );
    let fresh = client_message(Some(auth::md5_cred("dev-1", "s3cret", &n2)));
    auth::verify_header(&fresh, "dev-1", "s3cret", &n2, false).unwrap();
}

#[test]
fn basic_only_when_allowed_and_malformed_refused() {
    let n = Nonce::from_bytes(vec![7; 16]);
    let basic = auth::basic_cred("dev-1", "s3cret");
    assert_eq!(
        auth::verify(&basic, "dev-1", "s3cret", &n, false),
        Err(AuthError::Unsupported("syncml:auth-basic".into()))
    );
    auth::verify(&basic, "dev-1", "s3cret", &n, true).unwrap();
    let mut garbage = auth::md5_cred("dev-1", "s3cret", &n);
    garbage.data = "not base64!".into();
    assert!(matches!(
        auth::verify(&garbage, "dev-1", "s3cret", &n, false),
        Err(AuthError::Malformed(_))
    ));
    let mut hmac = auth::md5_cred("dev-1", "s3cret", &n);
    hmac.meta.as_mut().unwrap().r#type = Some("syncml:auth-MAC".into());
    assert!(matches!(
        auth::verify(&hmac, "dev-1", "s3cret", &n, false),
        Err(AuthError::Unsupported(_))
    ));
    assert!(Nonce::from_b64("%%%").is_err());
}

/// The whole session flow with Python playing the device's digest: the session
/// challenges (407) with a fresh nonce; Python computes the credential from the nonce it
/// read out of the challenge; the session accepts it (212) and rotates to a NextNonce,
/// which Python's next credential must use — the old one is refused (401 with yet another
/// nonce).
#[test]
fn session_challenge_and_rotation_against_python() {
    use winmdm_syncml::client::MessageBuilder;
    use winmdm_syncml::scope::EnrollmentType;
    use winmdm_syncml::session::{Authenticated, Inbound, Session, SessionConfig, Verdict};
    if !tools::require("python3", &["--version"]) {
        return;
    }
    let (user, pass) = ("{6F1A1B2C-3D4E-5F60-7182-93A4B5C6D7E8}", "pässwörd:42");
    let python_cred = |nonce_b64: &str| -> winmdm_syncml::Cred {
        let input = serde_json::json!([{"user": user, "password": pass, "nonce_b64": nonce_b64}]);
        let out =
            tools::run_with_stdin("python3", &["-c", PY], input.to_string().as_bytes()).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let digest: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
        let mut cred = auth::md5_cred("-", "-", &Nonce::from_bytes(vec![]));
        cred.data = digest[0].as_str().into();
        cred
    };
    let chal_nonce = |m: &SyncMl| -> String {
        let winmdm_syncml::Command::Status(s) = &m.body.commands[0] else {
            panic!()
        };
        s.chal
            .as_ref()
            .unwrap()
            .meta
            .next_nonce
            .as_deref()
            .unwrap()
            .to_owned()
    };
    fn decide<'s>(
        s: &'s mut Session,
        m: SyncMl,
        fresh: u8,
        user: &str,
        pass: &str,
    ) -> Authenticated<'s> {
        match s.receive(m, 10).unwrap() {
            Inbound::Authenticate(step) => step.decide(
                Verdict::Digest {
                    username: user,
                    password: pass,
                },
                Nonce::from_bytes(vec![fresh; 16]),
            ),
            other => panic!("{other:?}"),
        }
    }
    let msg =
        |id: u32| MessageBuilder::new("3", id, user, "https://mdm.example/omadm").alert_1201();

    let mut s = Session::new(
        SessionConfig::new(EnrollmentType::Device),
        Nonce::from_bytes(b"device-nonce-16b".to_vec()),
    );
    // 1. No credentials: 407 + the nonce to use.
    let Authenticated::Challenged(r1) = decide(&mut s, msg(1).build(), 0xA1, user, pass) else {
        panic!()
    };
    let Some(winmdm_syncml::Command::Status(h1)) = r1.message.body.commands.first() else {
        panic!()
    };
    assert_eq!(h1.code(), Some(StatusCode::MISSING_CREDENTIALS));
    let n1 = chal_nonce(&r1.message);
    // The challenge carries the device's current nonce (an unauthenticated message
    // changes nothing, so a forged one cannot make the real device's digest stale).
    assert_eq!(n1, Nonce::from_bytes(b"device-nonce-16b".to_vec()).to_b64());
    // 2. Python's digest over that nonce: 212 + NextNonce.
    let Authenticated::Yes(ex) = decide(
        &mut s,
        msg(2).cred(python_cred(&n1)).build(),
        0xB2,
        user,
        pass,
    ) else {
        panic!("Python's credential was refused")
    };
    let r2 = ex.reply();
    let Some(winmdm_syncml::Command::Status(h2)) = r2.message.body.commands.first() else {
        panic!()
    };
    assert_eq!(h2.code(), Some(StatusCode::AUTHENTICATION_ACCEPTED));
    let n2 = chal_nonce(&r2.message);
    assert_eq!(r2.next_nonce.as_ref().map(Nonce::to_b64), Some(n2.clone()));
    assert_ne!(n1, n2);

    // Next session: the device must use n2; a credential over n1 is refused with 401.
    let mut next = Session::new(
        SessionConfig::new(EnrollmentType::Device),
        r2.next_nonce.unwrap(),
    );
    let msg =
        |id: u32| MessageBuilder::new("4", id, user, "https://mdm.example/omadm").alert_1201();
    let Authenticated::Challenged(r3) = decide(
        &mut next,
        msg(1).cred(python_cred(&n1)).build(),
        0xC3,
        user,
        pass,
    ) else {
        panic!("a credential over the old nonce was accepted")
    };
    let Some(winmdm_syncml::Command::Status(h3)) = r3.message.body.commands.first() else {
        panic!()
    };
    assert_eq!(h3.code(), Some(StatusCode::INVALID_CREDENTIALS));
    let n3 = chal_nonce(&r3.message);
    let Authenticated::Yes(_) = decide(
        &mut next,
        msg(2).cred(python_cred(&n3)).build(),
        0xD4,
        user,
        pass,
    ) else {
        panic!()
    };
}
