//! Management sessions under attack: what a session accepts depends only on what the
//! device can prove — its certificate, its digest credentials, or the binding token of a
//! session it authenticated — never on identifiers anyone can write.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use proptest::prelude::*;
mod common;

use winmdm_endpoint::{
    DeviceRecord, Endpoint, EndpointConfig, Handled, Input, MemoryStore, Replace, Store,
};
use winmdm_entra::{Principals, Validator};
use winmdm_syncml::auth::{self, Nonce};
use winmdm_syncml::client::{Device, MessageBuilder};
use winmdm_syncml::{Command, StatusCode, SyncMl};
use winmdm_testkit::entra;

const URL: &str = "https://mdm.contoso.example";
const MGMT: &str = "https://mdm.contoso.example/ManagementServer/MDM.svc";
const ID: &str = "6f1a1b2c-3d4e-4f60-8182-93a4b5c6d7e8";
const USER: &str = "device-user";
const PASS: &str = "device-secret";
const CERT: &[u8] = b"the device's certificate (DER)";
const T0: u64 = 1_780_000_000;

fn endpoint(configure: impl FnOnce(&mut EndpointConfig)) -> (Endpoint, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let mut config = EndpointConfig::new(URL);
    configure(&mut config);
    let validator = Validator::new(
        common::policy(Principals::Users),
        Arc::new(common::static_cache()),
    );
    let ep = Endpoint::new(config, common::components(store.clone(), validator)).unwrap();
    let record = DeviceRecord {
        device_id: ID.into(),
        tenant_id: entra::CONTOSO.id.into(),
        user_oid: entra::ALICE.oid.into(),
        upn: None,
        enrollment_type: "Device".into(),
        certificate: CERT.to_vec(),
        thumbprint: winmdm_enroll::provisioning::thumbprint(CERT),
        digest_username: USER.into(),
        digest_password: PASS.into(),
        nonce: nonce(1).to_b64(),
        enrolled_at: T0,
        last_checkin: None,
        login_status: None,
        compliant: None,
        unenrolled_at: None,
        dev_info: Vec::new(),
        previous_thumbprint: None,
        certificate_used: true,
    };
    let get = winmdm_endpoint::CommandSpec::Get {
        targets: vec!["./DevDetail/SwV".into()],
    };
    let stored = store
        .enroll(&record, &[get.clone(), get], T0, Replace::SameOwner.into())
        .unwrap();
    assert_eq!(stored, winmdm_endpoint::Enrolled::Stored);
    (ep, store)
}

fn nonce(n: u8) -> Nonce {
    Nonce::from_bytes(vec![n; 16])
}

fn device() -> Device {
    let mut d = Device::new(ID, MGMT).with_digest(USER, PASS, nonce(1));
    d.set_node("./DevDetail/SwV", "10.0.26100.2605");
    d
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    message: Option<SyncMl>,
}

/// Posts `message` to `url` (a full URL: its path and query reach the endpoint).
fn post(ep: &Endpoint, url: &str, message: &SyncMl, now: u64, cert: Option<&[u8]>) -> Answer {
    let u = url::Url::parse(url).unwrap();
    let target = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    };
    let parts = http::Request::post(target)
        .header("content-type", winmdm_syncml::CONTENT_TYPE)
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let body = winmdm_syncml::encode(message);
    let input = Input::new(now).with_client_certificate(cert);
    let Handled::Response(r) = ep.handle(&parts, body.as_bytes(), input) else {
        panic!("no keys involved")
    };
    Answer {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        message: (r.status() == 200).then(|| winmdm_syncml::decode(r.body()).unwrap()),
    }
}

fn header_code(m: &SyncMl) -> Option<StatusCode> {
    m.body.commands.iter().find_map(|c| match c {
        Command::Status(s) if s.cmd_ref.as_deref() == Some("0") => s.code(),
        _ => None,
    })
}

type Snapshot = (
    Vec<DeviceRecord>,
    Vec<winmdm_endpoint::CommandRecord>,
    Vec<(String, winmdm_endpoint::StoredSession)>,
);

fn snapshot(store: &MemoryStore) -> Snapshot {
    let mut sessions = store.other_sessions(ID, "").unwrap();
    sessions.sort_by(|a, b| a.0.cmp(&b.0));
    (
        store.devices().unwrap(),
        store.commands(ID).unwrap(),
        sessions,
    )
}

/// The device's first message: authenticated, and the reply binds the session.
fn open_session(ep: &Endpoint, d: &mut Device) -> SyncMl {
    let first = d.start_session();
    let a = post(ep, MGMT, &first, T0 + 10, None);
    assert_eq!(a.status, 200);
    let reply = a.message.unwrap();
    assert_eq!(
        header_code(&reply),
        Some(StatusCode::AUTHENTICATION_ACCEPTED)
    );
    let bound = reply.header.resp_uri.as_deref().unwrap().to_owned();
    assert!(bound.starts_with(&format!("{MGMT}?s=")), "{bound}");
    reply
}

#[test]
fn a_credential_less_message_cannot_join_a_digest_session() {
    let (ep, store) = endpoint(|_| {});
    let mut d = device();
    let reply = open_session(&ep, &mut d);
    let before = snapshot(&store);
    // Someone who knows the device ID and the SessionID: no credentials, no certificate,
    // a new MsgID, an unenroll alert and a fake status — on the plain URL and on a bound
    // URL with a guessed token.
    let forged = MessageBuilder::new("1", 2, ID, MGMT)
        .unenroll()
        .status(1, 3, "Get", StatusCode::OK)
        .build();
    for url in [
        MGMT.to_owned(),
        format!("{MGMT}?s=00000000000000000000000000000000"),
    ] {
        let a = post(&ep, &url, &forged, T0 + 11, None);
        assert_eq!(a.status, 200);
        let challenge = a.message.unwrap();
        assert_eq!(
            header_code(&challenge),
            Some(StatusCode::MISSING_CREDENTIALS),
            "challenged"
        );
        // The challenge does not hand out the session's binding (an outside tester took
        // it from a 407 and then joined the session with it).
        assert_eq!(challenge.header.resp_uri, None, "the binding leaked");
        assert_eq!(snapshot(&store), before, "nothing changed");
    }
    // The real device carries on over its bound RespURI and finishes the session.
    let mut next = d.respond(&reply);
    let mut n = 0;
    while let Some(m) = next {
        n += 1;
        assert!(n < 10);
        let a = post(&ep, d.url(), &m, T0 + 12, None);
        assert_eq!(a.status, 200);
        next = d.respond(&a.message.unwrap());
    }
    let device = store.device(ID).unwrap().unwrap();
    assert!(device.unenrolled_at.is_none());
    assert!(
        store
            .commands(ID)
            .unwrap()
            .iter()
            .all(|c| c.state == "done")
    );
}

#[test]
fn a_certificate_session_keeps_presenting_its_certificate() {
    let (ep, store) = endpoint(|_| {});
    let mut d = Device::new(ID, MGMT); // no digest: it authenticates by certificate
    d.set_node("./DevDetail/SwV", "10.0.26100.2605");
    let first = d.start_session();
    let a = post(&ep, MGMT, &first, T0 + 10, Some(CERT));
    let reply = a.message.unwrap();
    assert_eq!(header_code(&reply), Some(StatusCode::OK));
    let bound = reply.header.resp_uri.as_deref().unwrap().to_owned();
    let before = snapshot(&store);
    let next = d.respond(&reply).unwrap();
    // Bound, but without the certificate (or with another one): challenged.
    for cert in [None, Some(&b"another certificate"[..])] {
        let a = post(&ep, &bound, &next, T0 + 11, cert);
        assert_eq!(
            header_code(&a.message.unwrap()),
            Some(StatusCode::MISSING_CREDENTIALS)
        );
        assert_eq!(snapshot(&store), before);
    }
    let a = post(&ep, &bound, &next, T0 + 11, Some(CERT));
    assert_eq!(header_code(&a.message.unwrap()), Some(StatusCode::OK));
}

#[test]
fn a_refused_message_changes_neither_the_nonce_nor_anything_else() {
    let (ep, store) = endpoint(|_| {});
    let before = snapshot(&store);
    // Wrong credentials in a new session (any SessionID).
    let forged = MessageBuilder::new("7", 1, ID, MGMT)
        .cred(auth::md5_cred(USER, "guessed", &nonce(1)))
        .alert_1201()
        .build();
    let a = post(&ep, MGMT, &forged, T0 + 1, None);
    let challenge = a.message.unwrap();
    assert_eq!(
        header_code(&challenge),
        Some(StatusCode::INVALID_CREDENTIALS)
    );
    assert_eq!(
        snapshot(&store),
        before,
        "nonce, sessions, queue: unchanged"
    );
    // The real device's next session authenticates at its first message.
    let mut d = device();
    open_session(&ep, &mut d);
}

#[test]
fn wrong_digests_lock_out_digest_but_never_the_certificate() {
    let (ep, store) = endpoint(|c| {
        c.max_auth_failures = 3;
        c.auth_failure_window = std::time::Duration::from_secs(600);
        // (Digest stays usable after the certificate session below.)
        c.allow_digest_after_certificate = true;
    });
    let wrong = |n: u32| {
        MessageBuilder::new(&n.to_string(), 1, ID, MGMT)
            .cred(auth::md5_cred(USER, "guessed", &nonce(1)))
            .alert_1201()
            .build()
    };
    for n in 1..=3 {
        let a = post(&ep, MGMT, &wrong(n), T0 + u64::from(n), None);
        assert_eq!(
            header_code(&a.message.unwrap()),
            Some(StatusCode::INVALID_CREDENTIALS)
        );
    }
    assert_eq!(store.auth_failures(ID, T0 + 4, 600).unwrap(), 3);
    // Locked: even the right digest is refused, with a readable reason and Retry-After.
    let mut d = device();
    let first = d.start_session();
    let a = post(&ep, MGMT, &first, T0 + 5, None);
    assert_eq!(a.status, 403);
    assert_eq!(a.headers["retry-after"], "600");
    // The device's certificate still works.
    let mut c = Device::new(ID, MGMT);
    let a = post(&ep, MGMT, &c.start_session(), T0 + 6, Some(CERT));
    assert_eq!(header_code(&a.message.unwrap()), Some(StatusCode::OK));
    // After the window, digest works again, and the count starts over.
    let a = post(&ep, MGMT, &d.start_session(), T0 + 700, None);
    assert_eq!(
        header_code(&a.message.unwrap()),
        Some(StatusCode::AUTHENTICATION_ACCEPTED)
    );
    assert_eq!(store.auth_failures(ID, T0 + 701, 600).unwrap(), 0);
}

#[test]
fn server_msg_ids_are_unique_across_a_challenge() {
    let (ep, _) = endpoint(|_| {});
    // The device's nonce is stale: challenged first, then it retries with the right one.
    let mut d = Device::new(ID, MGMT).with_digest(USER, PASS, nonce(9));
    let first = d.start_session();
    let challenge = post(&ep, MGMT, &first, T0 + 1, None).message.unwrap();
    assert_eq!(
        header_code(&challenge),
        Some(StatusCode::INVALID_CREDENTIALS)
    );
    let retry = d.respond(&challenge).unwrap();
    let reply = post(&ep, MGMT, &retry, T0 + 2, None).message.unwrap();
    assert_eq!(
        header_code(&reply),
        Some(StatusCode::AUTHENTICATION_ACCEPTED)
    );
    assert_ne!(reply.header.msg_id, challenge.header.msg_id);
}

/// What an attacker may vary in one message.
#[derive(Debug, Clone)]
struct Forged {
    session_id: u8,
    msg_id: u32,
    cred: u8,
    token: u8,
    cert: u8,
    commands: Vec<u8>,
}

fn forged() -> impl Strategy<Value = Forged> {
    (
        0u8..3,
        1u32..6,
        0u8..3,
        0u8..3,
        0u8..3,
        proptest::collection::vec(0u8..5, 0..4),
    )
        .prop_map(|(session_id, msg_id, cred, token, cert, commands)| Forged {
            session_id,
            msg_id,
            cred,
            token,
            cert,
            commands,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// No message without valid credentials, the device's certificate or the session's
    /// binding changes any stored state (only the failure counter counts it).
    #[test]
    fn unauthenticated_messages_change_no_stored_state(f in forged()) {
        let (ep, store) = endpoint(|_| {});
        let mut d = device();
        let reply = open_session(&ep, &mut d);
        let bound = reply.header.resp_uri.as_deref().unwrap().to_owned();
        let before = snapshot(&store);
        let session = ["1", "2", "255"][usize::from(f.session_id)];
        let mut b = MessageBuilder::new(session, f.msg_id, ID, MGMT);
        b = match f.cred {
            0 => b,
            1 => b.cred(auth::md5_cred(USER, "guessed", &nonce(1))),
            _ => b.cred(auth::md5_cred("someone", PASS, &nonce(7))),
        };
        for c in &f.commands {
            b = match c {
                0 => b.unenroll(),
                1 => b.status(1, 3, "Get", StatusCode::OK),
                2 => b.alert_1201(),
                3 => b.dev_info(&[("./DevInfo/Man", "Evil")]),
                _ => b.results_items(1, 3, vec![winmdm_syncml::client::chunk_item("./DevDetail/SwV", "evil", None, false)]),
            };
        }
        let message = b.build();
        let url = match f.token {
            0 => MGMT.to_owned(),
            1 => format!("{MGMT}?s=ffffffffffffffffffffffffffffffff"),
            _ => format!("{}x", bound),
        };
        let cert: Option<&[u8]> = match f.cert {
            0 => None,
            1 => Some(b"another certificate"),
            _ => Some(b""),
        };
        let a = post(&ep, &url, &message, T0 + 11, cert);
        prop_assert!(a.status == 200 || a.status == 400 || a.status == 403, "{}", a.status);
        prop_assert_eq!(&snapshot(&store), &before);
        // Nor does its answer hand out the session's binding; a follow-up on whatever
        // RespURI it names changes nothing either.
        let leaked = a.message.as_ref().and_then(|m| m.header.resp_uri.clone());
        prop_assert_eq!(leaked.as_deref(), None);
        let follow_up = MessageBuilder::new(session, f.msg_id + 1, ID, MGMT).unenroll().build();
        let _ = post(&ep, leaked.as_deref().unwrap_or(&url), &follow_up, T0 + 12, None);
        prop_assert_eq!(snapshot(&store), before);
    }
}

/// The soak, at the library: one device, 1,000 digest sessions (its SessionID, a counter
/// modulo 256, wraps), a reboot that abandons a session halfway (the counter starts over,
/// the nonce is kept): every session authenticates and is served, and every command is
/// delivered — the abandoned session's when its SessionID comes round again.
#[test]
fn a_thousand_sessions_with_wraps_and_a_reboot_are_all_served() {
    let (ep, store) = endpoint(|_| {});
    let get = winmdm_endpoint::CommandSpec::Get {
        targets: vec!["./DevDetail/SwV".into()],
    };
    let mut d = device();
    let mut now = T0 + 10;
    let run = |d: &mut Device, now: u64| {
        let mut next = Some(d.start_session());
        let mut n = 0;
        while let Some(m) = next {
            n += 1;
            assert!(n < 10);
            let a = post(&ep, d.url(), &m, now, None);
            assert_eq!(a.status, 200);
            next = d.respond(&a.message.unwrap());
        }
        assert_eq!(d.refused(), None, "a session was refused");
    };
    for n in 0..1000 {
        store.queue(ID, &get, None, now).unwrap();
        if n == 500 {
            let first = d.start_session();
            let a = post(&ep, MGMT, &first, now, None);
            let _ = d.respond(&a.message.unwrap());
            let kept = d.nonce().unwrap().clone();
            d = Device::new(ID, MGMT).with_digest(USER, PASS, kept);
            d.set_node("./DevDetail/SwV", "10.0.26100.2605");
        }
        run(&mut d, now);
        now += 1;
    }
    let open: Vec<_> = store
        .commands(ID)
        .unwrap()
        .into_iter()
        .filter(|c| c.state != "done")
        .map(|c| (c.id, c.state))
        .collect();
    assert!(open.is_empty(), "{open:?}");
}

/// Once a device has presented its certificate, its digest credentials alone no longer
/// authenticate it, and wrong digests for it are not counted: nobody can lock it out (an
/// outside tester locked devices out with ten wrong digests), and someone who learned its
/// digest secret cannot use it.
#[test]
fn a_device_that_used_its_certificate_cannot_be_locked_out_or_impersonated_by_digest() {
    let (ep, store) = endpoint(|c| c.max_auth_failures = 3);
    let mut c = Device::new(ID, MGMT);
    let a = post(&ep, MGMT, &c.start_session(), T0 + 1, Some(CERT));
    assert_eq!(header_code(&a.message.unwrap()), Some(StatusCode::OK));
    assert!(store.device(ID).unwrap().unwrap().certificate_used);
    for n in 0..10u32 {
        let wrong = MessageBuilder::new(&n.to_string(), 1, ID, MGMT)
            .cred(auth::md5_cred(USER, "guessed", &nonce(1)))
            .alert_1201()
            .build();
        let a = post(&ep, MGMT, &wrong, T0 + 2, None);
        assert_eq!(a.status, 200, "no lockout");
        assert_eq!(
            header_code(&a.message.unwrap()),
            Some(StatusCode::FORBIDDEN)
        );
    }
    assert_eq!(
        store.auth_failures(ID, T0 + 3, 900).unwrap(),
        0,
        "not counted"
    );
    // The right digest alone: refused too, and nothing stored.
    let before = snapshot(&store);
    let mut d = device();
    let a = post(&ep, MGMT, &d.start_session(), T0 + 4, None);
    assert_eq!(
        header_code(&a.message.unwrap()),
        Some(StatusCode::FORBIDDEN)
    );
    assert_eq!(snapshot(&store), before);
    // The certificate still works.
    let a = post(&ep, MGMT, &c.start_session(), T0 + 5, Some(CERT));
    assert_eq!(header_code(&a.message.unwrap()), Some(StatusCode::OK));
}

/// A Windows 11 device answers a result larger than the server's `MaxMsgSize` with alert
/// 1223 (abort) instead of sending it in chunks, as published captures show. The session
/// ends cleanly, no command of the aborted message is marked answered, and the device's
/// later sessions are served (the commands stay open, for the vendor to see, not lost).
#[test]
fn a_windows_11_abort_on_an_oversized_result_leaves_the_command_open() {
    let (ep, store) = endpoint(|_| {});
    let mut d = Device::new(ID, MGMT)
        .with_digest(USER, PASS, nonce(1))
        .like_windows_11()
        .with_last_session_id(0xFE);
    d.set_node("./DevDetail/SwV", "10.0.26100.2605");
    d.set_node("./Vendor/MSFT/Big", &"x".repeat(600_000));
    let big = winmdm_endpoint::CommandSpec::Get {
        targets: vec!["./Vendor/MSFT/Big".into()],
    };
    let id = store.queue(ID, &big, None, T0).unwrap();
    let mut aborted = false;
    for session in 0..3 {
        let mut next = Some(d.start_session());
        // Hexadecimal SessionIDs that wrap: FF, then 0, then 1.
        assert_eq!(d.session_id(), ["FF", "0", "1"][session]);
        let mut n = 0;
        while let Some(m) = next {
            n += 1;
            assert!(n < 10, "the session does not end");
            aborted |= m.body.commands.iter().any(|c| {
                matches!(c, Command::Alert(a) if a.code() == Some(winmdm_syncml::AlertCode::SESSION_ABORT))
            });
            let a = post(&ep, d.url(), &m, T0 + 20 + session as u64, None);
            assert_eq!(a.status, 200);
            next = d.respond(&a.message.unwrap());
        }
        assert_eq!(d.refused(), None);
    }
    assert!(aborted, "the device never aborted");
    let record = store
        .commands(ID)
        .unwrap()
        .into_iter()
        .find(|c| c.id == id)
        .unwrap();
    assert_ne!(record.state, "done", "{record:?}");
    // The device dropped the whole message's answers with it (Windows does not send the
    // statuses of a message it aborts): no command of it is taken as answered.
    assert!(
        store
            .commands(ID)
            .unwrap()
            .iter()
            .all(|c| c.state != "done")
    );
}
