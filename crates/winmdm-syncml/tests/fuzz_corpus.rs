//! Replays the committed SyncML fuzz corpora through the fuzz targets' entry points.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let d = std::fs::read(&p).unwrap();
            (p, d)
        })
        .collect()
}

#[test]
fn decode_corpus_replays_without_panic() {
    let files = corpus("syncml_decode");
    assert!(files.len() >= 15, "seed corpus missing");
    for (path, data) in files {
        let r = std::panic::catch_unwind(|| winmdm_syncml::fuzzing::decode_one(&data));
        assert!(r.is_ok(), "{} panics", path.display());
    }
}

#[test]
fn roundtrip_corpus_holds() {
    let files = corpus("syncml_roundtrip");
    assert!(files.len() >= 15, "seed corpus missing");
    for (path, data) in files {
        let r = std::panic::catch_unwind(|| winmdm_syncml::fuzzing::roundtrip_one(&data));
        assert!(r.is_ok(), "{} breaks the round trip", path.display());
    }
}

#[test]
fn session_corpus_replays_and_state_survives_json() {
    let files = corpus("syncml_session");
    assert!(files.len() >= 5, "seed corpus missing");
    for (path, data) in files {
        let r = std::panic::catch_unwind(|| winmdm_syncml::fuzzing::session_one(&data));
        let state = r.unwrap_or_else(|_| panic!("{} panics", path.display()));
        let json = serde_json::to_string(&state).unwrap();
        let back: winmdm_syncml::session::SessionState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state, "{}", path.display());
    }
}

/// Writes the `syncml_session` seeds (client messages of simulated sessions) when
/// `WINMDM_WRITE_SEEDS` is set; otherwise checks the committed seeds are still what the
/// simulator produces.
#[test]
fn session_seeds_match_the_simulator() {
    use winmdm_syncml::alerts::{self, LoginStatus};
    use winmdm_syncml::auth::Nonce;
    use winmdm_syncml::client::Device;
    use winmdm_syncml::scope::EnrollmentType;
    use winmdm_syncml::session::{
        Authenticated, Inbound, QueuedCommand, Session, SessionConfig, Verdict,
    };
    use winmdm_syncml::{Command, encode};

    type Setup = fn(&mut Device);
    let scenarios: [(&str, Setup); 5] = [
        ("plain", |_| {}),
        ("signed-in", |d| {
            d.set_login_status(Some(LoginStatus::User));
            d.set_user_token(Some("eyJ0eXAiOiJKV1QifQ.e30.sig".into()));
        }),
        ("big-upload", |d| {
            d.set_node("./Vendor/MSFT/Logs", &"log line &<>\n".repeat(400))
        }),
        ("unenroll", |d| {
            d.push_first_package(alerts::unenroll_request(0u32))
        }),
        ("oobe", |d| d.set_login_status(Some(LoginStatus::None))),
    ];
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/syncml_session");
    let write = std::env::var_os("WINMDM_WRITE_SEEDS").is_some();
    for (name, setup) in scenarios {
        let mut device = Device::new("dev-1", "https://mdm.example/omadm").with_upload_chunk(1500);
        device.set_node("./DevDetail/SwV", "10.0.26100.1");
        device.set_node("./Vendor/MSFT/Logs", "short log");
        setup(&mut device);
        let config = SessionConfig::new(EnrollmentType::Device).with_max_msg_size(2048);
        let mut s = Session::new(config, Nonce::from_bytes(vec![1; 16]));
        for (i, c) in [
            Command::get(1u32, ["./DevDetail/SwV", "./Vendor/MSFT/Logs"]),
            Command::replace(1u32, "./Vendor/MSFT/Blob", "chr", "<&>".repeat(1500)),
            Command::replace(1u32, "./User/Vendor/MSFT/P", "int", "1"),
        ]
        .into_iter()
        .enumerate()
        {
            s.queue(QueuedCommand::new(format!("q{i}"), c)).unwrap();
        }
        let mut out = Vec::new();
        let mut msg = device.start_session();
        for now in 0..50 {
            out.extend_from_slice(encode(&msg).as_bytes());
            let Inbound::Authenticate(step) = s.receive(msg, now).unwrap() else {
                panic!()
            };
            let Authenticated::Yes(mut ex) =
                step.decide(Verdict::Certificate, Nonce::from_bytes(vec![2; 16]))
            else {
                panic!()
            };
            while ex.poll_event().is_some() {}
            let reply = ex.reply();
            let done = reply.end.is_some();
            match device.respond(&reply.message) {
                Some(next) if !done => msg = next,
                _ => break,
            }
            out.extend_from_slice(winmdm_syncml::fuzzing::SESSION_SEPARATOR);
        }
        let path = dir.join(format!("seed-{name}"));
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &out).unwrap();
        } else {
            assert_eq!(
                std::fs::read(&path).unwrap(),
                out,
                "{} is stale: rerun with WINMDM_WRITE_SEEDS=1",
                path.display()
            );
        }
    }
}
