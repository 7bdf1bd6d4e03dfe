//! Scripted DM sessions: the acceptance scenarios of the session state machine.

mod common;

use std::sync::Arc;

use common::*;
use winmdm_entra::{KeyCache, KeySource, Policy, TokenVersion, Validator};
use winmdm_syncml::alerts::{self, LoginStatus};
use winmdm_syncml::client::{MessageBuilder, chunk_item};
use winmdm_syncml::scope::{EnrollmentType, Hold, SessionUser};
use winmdm_syncml::session::{
    Authenticated, DiscardReason, DropReason, EndReason, Event, Inbound, Initiator, QueuedCommand,
    Session, SessionConfig, SessionError, Verdict,
};
use winmdm_syncml::{AlertCode, Command, StatusCode};
use winmdm_testkit::entra as tk;

fn validator() -> Validator {
    let jwks = std::fs::read(format!(
        "{}/../winmdm-testkit/testdata/entra/jwks-common-v2.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let v2 = KeySource::static_jwks(&jwks, tk::V2_ISSUER_TEMPLATE, TokenVersion::V2).unwrap();
    let policy = Policy::builder()
        .allow_tenants([tk::CONTOSO.id])
        .allow_audiences([tk::MDM_APP_ID, tk::MDM_APP_ID_URI])
        .build()
        .unwrap();
    Validator::new(policy, Arc::new(KeyCache::new(vec![v2])))
}

/// What a vendor does with an AADUserToken: validate it with winmdm-entra.
fn entra_resolver() -> Resolver {
    let v = validator();
    Box::new(move |token| {
        let now =
            rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(tk::NOW));
        let claims = v.validate(token, now).ok()?.into_inner();
        Some(SessionUser {
            tenant_id: claims.tenant_id,
            object_id: claims.object_id,
            guest: claims.guest,
        })
    })
}

fn token(user: &tk::User) -> String {
    tk::AccessToken::v2(&tk::CONTOSO, user).sign()
}

fn first_reply_header_code(h: &Harness) -> (u16, bool) {
    let Command::Status(s) = &h.server_msgs[0].body.commands[0] else {
        panic!("first command is not the header status")
    };
    assert_eq!(s.cmd_ref.as_deref(), Some("0"));
    (s.code().unwrap().0, s.chal.is_some())
}

#[test]
fn scripted_session_with_every_command_kind() {
    let mut device = device();
    device.set_login_status(Some(LoginStatus::User));
    device.set_user_token(Some(token(&tk::ALICE)));
    device.set_node("./DevDetail/SwV", "10.0.26100.2605");
    device.set_node("./Vendor/MSFT/A", "1");
    let mut h = Harness::new(EnrollmentType::Device, device);
    h.resolve = entra_resolver();
    h.queue(
        "get",
        Command::get(1u32, ["./DevDetail/SwV", "./DevInfo/Man"]),
    );
    h.queue(
        "camera",
        Command::replace(
            1u32,
            "./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera",
            "int",
            "0",
        ),
    );
    h.queue(
        "atomic-ok",
        Command::atomic(
            1u32,
            vec![
                Command::add(1u32, "./Vendor/MSFT/B", "int", "2"),
                Command::replace(1u32, "./Vendor/MSFT/C", "chr", "three"),
            ],
        ),
    );
    h.queue(
        "atomic-fails",
        Command::atomic(
            1u32,
            vec![
                Command::replace(1u32, "./Vendor/MSFT/D", "chr", "rolled back"),
                Command::add(1u32, "./Vendor/MSFT/A", "int", "9"),
            ],
        ),
    );
    h.queue(
        "seq",
        Command::sequence(
            1u32,
            vec![
                Command::exec(1u32, "./Vendor/MSFT/Reboot/RebootNow", None, None),
                Command::get(1u32, ["./Vendor/MSFT/B"]),
            ],
        ),
    );
    h.session
        .queue(
            QueuedCommand::new(
                "user-policy",
                Command::replace(
                    1u32,
                    "./User/Vendor/MSFT/Policy/Config/Start/HideSleep",
                    "int",
                    "1",
                ),
            )
            .for_user(tk::ALICE.oid),
        )
        .unwrap();

    let end = h.run();
    assert_eq!(end.reason, EndReason::Completed);
    assert!(end.unsent.is_empty(), "{:?}", end.unsent);
    assert!(end.unanswered.is_empty(), "{:?}", end.unanswered);

    // Session start, its alerts and device info, in message order.
    assert!(
        matches!(&h.events[0], Event::SessionStarted { initiator: Initiator::Client, device_id, .. } if device_id == DEVICE)
    );
    assert!(h.events.contains(&Event::LoginStatus(LoginStatus::User)));
    assert!(h.events.iter().any(|e| matches!(e, Event::UserToken(_))));
    let info = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::DeviceInfo(v) => Some(v.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        info.iter()
            .any(|v| v.uri == "./DevInfo/DevId" && v.data == DEVICE)
    );
    assert_eq!(info.len(), 5);

    // Digest: 212 with the next nonce, which the device took.
    assert_eq!(first_reply_header_code(&h), (212, true));
    let next = h.replies[0].next_nonce.clone().unwrap();
    assert_eq!(h.device.nonce(), Some(&next));
    assert_eq!(h.session.state().nonce(), &next);

    // Statuses and results correlated to the queued commands.
    assert_eq!(h.statuses("get"), [(vec![], 200)]);
    let results: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Results { tag, path, results } => {
                Some((tag.clone(), path.clone(), results.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(results.len(), 2, "{results:#?}");
    assert_eq!(results[0].0, "get");
    let values: Vec<_> = results[0]
        .2
        .values
        .iter()
        .map(|v| (v.uri.as_str(), v.data.as_str()))
        .collect();
    assert_eq!(
        values,
        [
            ("./DevDetail/SwV", "10.0.26100.2605"),
            ("./DevInfo/Man", "Microsoft Corporation")
        ]
    );
    assert_eq!(
        (results[1].0.as_str(), results[1].1.as_slice()),
        ("seq", &[1u32][..])
    );
    assert_eq!(results[1].2.values[0].data, "2");
    assert_eq!(h.statuses("camera"), [(vec![], 200)]);
    assert_eq!(
        h.statuses("atomic-ok"),
        [(vec![], 200), (vec![0], 200), (vec![1], 200)]
    );
    assert_eq!(
        h.statuses("atomic-fails"),
        [(vec![], 507), (vec![0], 216), (vec![1], 418)]
    );
    assert_eq!(
        h.statuses("seq"),
        [(vec![], 200), (vec![0], 200), (vec![1], 200)]
    );
    assert_eq!(h.statuses("user-policy"), [(vec![], 200)]);

    // Applied exactly once, in queue order; the failed Atomic left nothing behind.
    let applied: Vec<_> = h.device.applied().iter().map(|a| a.uri.as_str()).collect();
    assert_eq!(
        applied,
        [
            "./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera",
            "./Vendor/MSFT/B",
            "./Vendor/MSFT/C",
            "./Vendor/MSFT/Reboot/RebootNow",
            "./User/Vendor/MSFT/Policy/Config/Start/HideSleep",
        ]
    );
    assert_eq!(h.device.node("./Vendor/MSFT/D"), None);

    // Server messages: MsgIDs from 1, statuses first, header status first of all.
    for (i, m) in h.server_msgs.iter().enumerate() {
        assert_eq!(m.header.msg_id, (i + 1).to_string().as_str());
        assert_eq!(m.header.target.as_ref().unwrap().loc_uri, DEVICE);
        assert_eq!(m.header.source.as_ref().unwrap().loc_uri, SERVER);
        let Command::Status(s) = &m.body.commands[0] else {
            panic!()
        };
        assert_eq!(
            s.msg_ref.as_deref(),
            Some(h.client_msgs[i].header.msg_id.as_str())
        );
        let first_non_status = m
            .body
            .commands
            .iter()
            .position(|c| !matches!(c, Command::Status(_)));
        if let Some(p) = first_non_status {
            assert!(
                m.body.commands[p..]
                    .iter()
                    .all(|c| !matches!(c, Command::Status(_)))
            );
        }
        let ids: Vec<_> = m
            .body
            .commands
            .iter()
            .map(|c| c.cmd_id().unwrap().as_str().to_owned())
            .collect();
        let mut dedup = ids.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(ids.len(), dedup.len(), "CmdIDs repeat in {ids:?}");
    }
    // Statuses of the client's first message follow its command order.
    let first: Vec<_> = h.server_msgs[0]
        .body
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Status(s) => Some(s.cmd.as_deref().unwrap().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(first, ["SyncHdr", "Alert", "Alert", "Alert", "Replace"]);
}

#[test]
fn large_objects_travel_in_three_chunks_both_ways() {
    let upload: String = "<b>&amp;\"big!\"</b>\r\n".repeat(200); // 4000 bytes, escapes
    assert_eq!(upload.len(), 4000);
    let download: String = (0..7000u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect::<String>()
        .replace("q", "<");
    let mut device = device().with_max_sizes(4096, None).with_upload_chunk(1500);
    device.set_node("./Vendor/MSFT/Logs/Big", &upload);
    let mut h = Harness::new(EnrollmentType::Full, device);
    h.persist = true;
    h.queue(
        "put",
        Command::replace(1u32, "./Vendor/MSFT/Blob", "chr", download.as_str()),
    );
    h.queue("fetch", Command::get(1u32, ["./Vendor/MSFT/Logs/Big"]));
    let end = h.run();
    assert_eq!(end.reason, EndReason::Completed);
    assert!(end.unanswered.is_empty());

    // Outgoing: three chunks, Size on the first, MoreData on all but the last.
    let chunks: Vec<_> = h
        .server_msgs
        .iter()
        .flat_map(|m| m.body.commands.iter().map(move |c| (m, c)))
        .filter_map(|(m, c)| match c {
            Command::Replace(r)
                if r.items[0].target.as_ref().unwrap().loc_uri == "./Vendor/MSFT/Blob" =>
            {
                Some((m.body.is_final, r.items[0].clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(chunks.len(), 3, "{chunks:?}");
    assert_eq!(
        chunks[0].1.meta.as_ref().unwrap().size.as_deref(),
        Some("7000")
    );
    assert!(chunks[1].1.meta.as_ref().is_none_or(|m| m.size.is_none()));
    assert_eq!(
        chunks.iter().map(|c| c.1.more_data).collect::<Vec<_>>(),
        [true, true, false]
    );
    assert_eq!(
        chunks.iter().map(|c| c.0).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert_eq!(h.device.node("./Vendor/MSFT/Blob"), Some(download.as_str()));
    assert_eq!(h.statuses("put"), [(vec![], 200)]);
    assert_eq!(
        h.device
            .applied()
            .iter()
            .filter(|a| a.uri == "./Vendor/MSFT/Blob")
            .count(),
        1
    );

    // Incoming: three Results chunks, answered 213, 213, 200, reassembled exactly.
    let client_chunks = h
        .client_msgs
        .iter()
        .flat_map(|m| &m.body.commands)
        .filter(|c| matches!(c, Command::Results(_)))
        .count();
    assert_eq!(client_chunks, 3);
    let results: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Results { tag, results, .. } if tag == "fetch" => {
                Some(results.values[0].data.to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(results, std::slice::from_ref(&upload));
    let codes_for_results: Vec<u16> = h
        .server_msgs
        .iter()
        .flat_map(|m| &m.body.commands)
        .filter_map(|c| match c {
            Command::Status(s) if s.cmd.as_deref() == Some("Results") => Some(s.code().unwrap().0),
            _ => None,
        })
        .collect();
    assert_eq!(codes_for_results, [213, 213, 200]);
    // While the client's package was open the server asked for the next message.
    let next_message_alerts = h
        .server_msgs
        .iter()
        .flat_map(|m| &m.body.commands)
        .filter(|c| matches!(c, Command::Alert(a) if a.code() == Some(AlertCode::NEXT_MESSAGE)))
        .count();
    assert_eq!(next_message_alerts, 2);
}

/// A certificate-authenticated session driven message by message with the DSL.
fn cert_session(config: SessionConfig) -> Session {
    Session::new(config, nonce(1))
}

fn handle(
    session: &mut Session,
    msg: winmdm_syncml::SyncMl,
    now: u64,
) -> (Vec<Event>, winmdm_syncml::session::Reply) {
    match session.receive(msg, now).unwrap() {
        Inbound::Authenticate(step) => match step.decide(Verdict::Certificate, nonce(9)) {
            Authenticated::Yes(mut ex) => {
                let mut events = Vec::new();
                while let Some(e) = ex.poll_event() {
                    events.push(e);
                }
                (events, ex.reply())
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

fn msg(id: u32) -> MessageBuilder {
    MessageBuilder::new("7", id, DEVICE, SERVER)
}

#[test]
fn interrupted_incoming_object_is_discarded_with_1225() {
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device));
    s.queue(QueuedCommand::new(
        "logs",
        Command::get(1u32, ["./Vendor/MSFT/Logs"]),
    ))
    .unwrap();
    let (_, r1) = handle(&mut s, msg(1).alert_1201().build(), 10);
    let Command::Get(get) = &r1.message.body.commands[2] else {
        panic!("{:?}", r1.message)
    };
    let get_id: u32 = get.cmd_id.as_ref().unwrap().as_str().parse().unwrap();

    // First chunk of 10 000 bytes, package left open.
    let m2 = msg(2)
        .header_status(1, StatusCode::OK)
        .status(1, get_id, "Get", StatusCode::OK)
        .results_items(
            1,
            get_id,
            vec![chunk_item(
                "./Vendor/MSFT/Logs",
                &"x".repeat(4000),
                Some(10_000),
                true,
            )],
        )
        .not_final()
        .build();
    let (_, r2) = handle(&mut s, m2, 11);
    assert!(
        r2.message.body.is_final,
        "the server's own package is complete"
    );
    let codes: Vec<_> = r2
        .message
        .body
        .commands
        .iter()
        .map(|c| match c {
            Command::Status(s) => format!("{}:{}", s.cmd.as_deref().unwrap(), s.data),
            Command::Alert(a) => format!("Alert:{}", a.data.as_deref().unwrap()),
            other => other.name().to_owned(),
        })
        .collect();
    assert_eq!(codes, ["SyncHdr:200", "Results:213", "Alert:1222"]);

    // The client's next message does not continue the object.
    let (events, r3) = handle(&mut s, msg(3).header_status(2, StatusCode::OK).build(), 12);
    assert!(events.contains(&Event::IncomingObjectDiscarded {
        uri: "./Vendor/MSFT/Logs".into(),
        reason: DiscardReason::Interrupted
    }));
    let alert = r3
        .message
        .body
        .commands
        .iter()
        .find_map(|c| match c {
            Command::Alert(a) => Some(a.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(alert.code(), Some(AlertCode::NO_END_OF_DATA));
    assert_eq!(
        alert.items[0].target.as_ref().unwrap().loc_uri,
        "./Vendor/MSFT/Logs"
    );
    assert!(r3.end.is_none(), "the 1225 needs its status");
    assert!(!events.iter().any(|e| matches!(e, Event::Results { .. })));

    let alert_id: u32 = alert.cmd_id.unwrap().as_str().parse().unwrap();
    let (_, r4) = handle(
        &mut s,
        msg(4)
            .header_status(3, StatusCode::OK)
            .status(3, alert_id, "Alert", StatusCode::OK)
            .build(),
        13,
    );
    let end = r4.end.unwrap();
    assert_eq!(end.reason, EndReason::Completed);
}

#[test]
fn incoming_size_rules_424_416_411() {
    let mut s =
        cert_session(SessionConfig::new(EnrollmentType::Device).with_max_object_size(50_000));
    s.queue(QueuedCommand::new("g", Command::get(1u32, ["./A"])))
        .unwrap();
    let (_, r1) = handle(&mut s, msg(1).alert_1201().build(), 10);
    assert!(matches!(r1.message.body.commands[2], Command::Get(_)));
    // Declared 100, sent 60 + 30.
    let m2 = msg(2)
        .header_status(1, StatusCode::OK)
        .results_items(
            1,
            3,
            vec![chunk_item("./A", &"y".repeat(60), Some(100), true)],
        )
        .not_final()
        .build();
    let (_, _) = handle(&mut s, m2, 11);
    let m3 = msg(3)
        .header_status(2, StatusCode::OK)
        .results_items(1, 3, vec![chunk_item("./A", &"y".repeat(30), None, false)])
        .build();
    let (events, r3) = handle(&mut s, m3, 12);
    assert!(events.contains(&Event::IncomingObjectDiscarded {
        uri: "./A".into(),
        reason: DiscardReason::SizeMismatch {
            declared: 100,
            received: 90
        }
    }));
    let results_status = r3.message.body.commands.iter().find_map(|c| match c {
        Command::Status(s) if s.cmd.as_deref() == Some("Results") => s.code(),
        _ => None,
    });
    assert_eq!(results_status, Some(StatusCode::SIZE_MISMATCH));

    // A fresh session: too large (416) and no Size (411).
    let mut s =
        cert_session(SessionConfig::new(EnrollmentType::Device).with_max_object_size(50_000));
    let m1 = msg(1)
        .alert_1201()
        .command(Command::Replace(winmdm_syncml::ItemCommand {
            items: vec![chunk_item("./DevInfo/Huge", "z", Some(1_000_000), true)],
            ..Default::default()
        }))
        .command(Command::Replace(winmdm_syncml::ItemCommand {
            items: vec![chunk_item("./DevInfo/NoSize", "z", None, true)],
            ..Default::default()
        }))
        .not_final()
        .build();
    let (events, r1) = handle(&mut s, m1, 10);
    let codes: Vec<_> = r1
        .message
        .body
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Status(s) if s.cmd.as_deref() == Some("Replace") => s.code(),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes,
        [
            StatusCode::REQUESTED_SIZE_TOO_BIG,
            StatusCode::SIZE_REQUIRED
        ]
    );
    assert!(events.contains(&Event::IncomingObjectDiscarded {
        uri: "./DevInfo/Huge".into(),
        reason: DiscardReason::TooLarge {
            declared: 1_000_000,
            limit: 50_000
        }
    }));
    assert!(events.contains(&Event::IncomingObjectDiscarded {
        uri: "./DevInfo/NoSize".into(),
        reason: DiscardReason::SizeMissing
    }));
}

#[test]
fn client_1225_aborts_the_outgoing_object() {
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device));
    s.queue(QueuedCommand::new(
        "blob",
        Command::replace(1u32, "./Vendor/MSFT/Blob", "chr", "b".repeat(5000)),
    ))
    .unwrap();
    s.queue(QueuedCommand::new(
        "after",
        Command::get(1u32, ["./DevDetail/SwV"]),
    ))
    .unwrap();
    let (_, r1) = handle(
        &mut s,
        msg(1).alert_1201().max_sizes(2048, None).build(),
        10,
    );
    assert!(!r1.message.body.is_final, "a chunk leaves the package open");
    let (events, r2) = handle(
        &mut s,
        msg(2)
            .header_status(1, StatusCode::OK)
            .alert(AlertCode::NO_END_OF_DATA)
            .build(),
        11,
    );
    assert!(events.contains(&Event::OutgoingObjectAborted { tag: "blob".into() }));
    // The rest of the queue goes on.
    assert!(
        r2.message
            .body
            .commands
            .iter()
            .any(|c| matches!(c, Command::Get(_)))
    );
    assert!(s.state().awaiting().iter().all(|t| t != "blob"));
}

#[test]
fn unenroll_alert_and_client_abort() {
    let mut device = device();
    device.push_first_package(alerts::unenroll_request(0u32));
    let mut h = Harness::new(EnrollmentType::Device, device);
    let end = h.run();
    assert_eq!(end.reason, EndReason::Completed);
    assert!(h.events.contains(&Event::UnenrollRequested));

    // 1223 from the client ends the session; what was queued is handed back.
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device));
    s.queue(QueuedCommand::new("x", Command::get(1u32, ["./A"])))
        .unwrap();
    let (events, r) = handle(&mut s, msg(1).alert(AlertCode::SESSION_ABORT).build(), 10);
    assert!(events.contains(&Event::ClientAborted));
    let end = r.end.unwrap();
    assert_eq!(end.reason, EndReason::ClientAborted);
    assert_eq!(end.unsent.len(), 1);
    assert!(
        r.message
            .body
            .commands
            .iter()
            .all(|c| matches!(c, Command::Status(_)))
    );
    assert_eq!(s.state().ended(), Some(EndReason::ClientAborted));
}

#[test]
fn server_abort_sends_1223_and_reports_unanswered() {
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device));
    s.queue(QueuedCommand::new("a", Command::get(1u32, ["./A"])))
        .unwrap();
    s.queue(QueuedCommand::new("b", Command::get(1u32, ["./B"])))
        .unwrap();
    let (_, r1) = handle(&mut s, msg(1).alert_1201().build(), 10);
    assert_eq!(r1.message.body.commands.len(), 4);
    let Inbound::Authenticate(step) = s
        .receive(
            msg(2)
                .header_status(1, StatusCode::OK)
                .status(1, 3, "Get", StatusCode::OK)
                .build(),
            11,
        )
        .unwrap()
    else {
        panic!()
    };
    let Authenticated::Yes(ex) = step.decide(Verdict::Continue, nonce(3)) else {
        panic!()
    };
    let r = ex.abort();
    let last = r.message.body.commands.last().unwrap();
    assert!(matches!(last, Command::Alert(a) if a.code() == Some(AlertCode::SESSION_ABORT)));
    let end = r.end.unwrap();
    assert_eq!(end.reason, EndReason::ServerAborted);
    assert_eq!(end.unanswered, ["b"]);
}

#[test]
fn repeated_message_gets_the_same_reply_and_nothing_twice() {
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device));
    s.queue(QueuedCommand::new(
        "w",
        Command::replace(1u32, "./Vendor/MSFT/X", "int", "1"),
    ))
    .unwrap();
    let m1 = msg(1).alert_1201().build();
    let (_, r1) = handle(&mut s, m1.clone(), 10);
    // The reply was lost; the client sends the same message again.
    let Inbound::Authenticate(step) = s.receive(m1.clone(), 11).unwrap() else {
        panic!()
    };
    let Authenticated::Repeat(again) = step.decide(Verdict::Certificate, nonce(3)) else {
        panic!("not a repeat")
    };
    assert_eq!(again.message, r1.message);
    // A repeat the vendor does not authenticate gets nothing.
    let Inbound::Authenticate(step) = s.receive(m1, 11).unwrap() else {
        panic!()
    };
    let Authenticated::Refused(no) = step.decide(Verdict::Deny, nonce(3)) else {
        panic!()
    };
    assert_eq!(no.message.body.commands.len(), 1);
    assert!(no.end.is_none());
    assert_eq!(s.state().ended(), None);
    // Continue; the same MsgID with other content is refused, an older one is stale.
    let (_, _) = handle(
        &mut s,
        msg(2)
            .header_status(1, StatusCode::OK)
            .status(1, 3, "Replace", StatusCode::OK)
            .build(),
        13,
    );
    assert!(matches!(
        s.receive(msg(2).alert(AlertCode::SESSION_ABORT).build(), 14),
        Err(SessionError::MsgIdReused(_))
    ));
    assert!(matches!(
        s.receive(msg(0).alert_1201().build(), 14),
        Err(SessionError::StaleMessage { .. })
    ));
    // (MsgID 1 with other content starts a new session: see
    // `a_reused_session_id_starts_a_new_session`.)
    // Another session or device is refused.
    let other = MessageBuilder::new("8", 3, DEVICE, SERVER).build();
    assert!(!s.accepts(&other));
    assert!(matches!(
        s.receive(other, 15),
        Err(SessionError::OtherSession { .. })
    ));
    let spoof = MessageBuilder::new("7", 3, "another-device", SERVER).build();
    assert!(matches!(
        s.receive(spoof, 15),
        Err(SessionError::DeviceMismatch { .. })
    ));
}

#[test]
fn dropped_exchange_leaves_the_session_unchanged() {
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device));
    s.queue(QueuedCommand::new("w", Command::get(1u32, ["./A"])))
        .unwrap();
    let before = s.state().clone();
    {
        let Inbound::Authenticate(step) = s.receive(msg(1).alert_1201().build(), 10).unwrap()
        else {
            panic!()
        };
        let Authenticated::Yes(mut ex) = step.decide(Verdict::Certificate, nonce(2)) else {
            panic!()
        };
        while ex.poll_event().is_some() {}
        // The handler fails here (database down): no reply.
    }
    assert_eq!(s.state(), &before);
    let (events, r) = handle(&mut s, msg(1).alert_1201().build(), 11);
    assert!(matches!(events[0], Event::SessionStarted { .. }));
    assert!(matches!(r.message.body.commands[2], Command::Get(_)));
}

#[test]
fn idle_timeout_expires_the_session() {
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device).with_idle_timeout(60));
    s.queue(QueuedCommand::new("a", Command::get(1u32, ["./A"])))
        .unwrap();
    s.queue(QueuedCommand::new("held", Command::get(1u32, ["./User/A"])))
        .unwrap();
    let (_, _) = handle(&mut s, msg(1).alert_1201().build(), 1000);
    assert_eq!(s.poll_timeout(1060), None);
    let Inbound::Expired(r) = s
        .receive(msg(2).header_status(1, StatusCode::OK).build(), 1061)
        .unwrap()
    else {
        panic!()
    };
    assert!(
        r.message
            .body
            .commands
            .iter()
            .any(|c| matches!(c, Command::Alert(a) if a.code() == Some(AlertCode::SESSION_ABORT)))
    );
    let end = r.end.unwrap();
    assert_eq!(end.reason, EndReason::Expired);
    assert_eq!(end.unanswered, ["a"]);
    assert_eq!(
        end.unsent
            .iter()
            .map(|q| q.tag.as_str())
            .collect::<Vec<_>>(),
        ["held"]
    );
    assert!(matches!(
        s.receive(msg(3).build(), 1062),
        Err(SessionError::Ended(EndReason::Expired))
    ));

    // The sweeper path.
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device).with_idle_timeout(60));
    s.queue(QueuedCommand::new("a", Command::get(1u32, ["./A"])))
        .unwrap();
    let (_, _) = handle(&mut s, msg(1).alert_1201().build(), 1000);
    assert_eq!(s.poll_timeout(2000).unwrap().reason, EndReason::Expired);
}

#[test]
fn statuses_spill_over_when_maxmsgsize_is_small() {
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device));
    s.queue(QueuedCommand::new("g", Command::get(1u32, ["./A"])))
        .unwrap();
    let mut b = msg(1).alert_1201().max_sizes(1024, None);
    for i in 0..40 {
        b = b.dev_info(&[(&format!("./DevInfo/Ext/Node{i}"), "value")]);
    }
    let m1 = b.build();
    let (_, r1) = handle(&mut s, m1, 10);
    assert!(!r1.message.body.is_final);
    assert!(winmdm_syncml::encode(&r1.message).len() <= 1024);
    assert!(
        r1.message
            .body
            .commands
            .iter()
            .all(|c| matches!(c, Command::Status(_)))
    );
    let n1 = r1.message.body.commands.len() - 1;
    // The client asks for the rest.
    let mut next = 2;
    let mut got = n1;
    let mut last = r1;
    let mut saw_get = false;
    while !last.message.body.is_final {
        let (_, r) = handle(
            &mut s,
            msg(next)
                .header_status(next - 1, StatusCode::OK)
                .alert(AlertCode::NEXT_MESSAGE)
                .build(),
            10 + u64::from(next),
        );
        assert!(winmdm_syncml::encode(&r.message).len() <= 1024);
        let Command::Status(h) = &r.message.body.commands[0] else {
            panic!()
        };
        assert_eq!(
            h.cmd_ref.as_deref(),
            Some("0"),
            "each message starts with its header status"
        );
        got += r
            .message
            .body
            .commands
            .iter()
            .filter(|c| matches!(c, Command::Status(s) if s.msg_ref.as_deref() == Some("1")))
            .count();
        saw_get |= r
            .message
            .body
            .commands
            .iter()
            .any(|c| matches!(c, Command::Get(_)));
        next += 1;
        last = r;
    }
    assert_eq!(got, 41, "every command of message 1 got its status");
    assert!(
        saw_get,
        "the queued command went out once the statuses were sent"
    );
}

#[test]
fn client_commands_a_server_does_not_take_get_405_and_missing_cmdid_400() {
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device));
    let mut m = msg(1)
        .alert_1201()
        .command(Command::get(1u32, ["./Server/Secret"]))
        .build();
    m.body
        .commands
        .push(Command::alert(1u32, AlertCode::CLIENT_EVENT));
    if let Command::Alert(a) = m.body.commands.last_mut().unwrap() {
        a.cmd_id = None;
    }
    let (events, r) = handle(&mut s, m, 10);
    assert!(events.contains(&Event::UnsupportedCommand { name: "Get".into() }));
    let st: Vec<_> = r
        .message
        .body
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Status(s) => Some((
                s.cmd_ref.as_deref().unwrap().to_owned(),
                s.code().unwrap().0,
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        st,
        [
            ("0".into(), 200),
            ("1".into(), 200),
            ("2".into(), 405),
            ("".into(), 400)
        ]
    );
}

#[test]
fn queue_rejects_what_a_server_cannot_send_and_drops_what_never_fits() {
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device));
    assert!(matches!(
        s.queue(QueuedCommand::new(
            "a",
            Command::get(1u32, Vec::<&str>::new())
        )),
        Err(winmdm_syncml::session::QueueError::Empty(_))
    ));
    s.queue(QueuedCommand::new("dup", Command::get(1u32, ["./A"])))
        .unwrap();
    assert!(matches!(
        s.queue(QueuedCommand::new("dup", Command::get(1u32, ["./B"]))),
        Err(winmdm_syncml::session::QueueError::DuplicateTag(_))
    ));
    let status = Command::Status(winmdm_syncml::Status::default());
    assert!(matches!(
        s.queue(QueuedCommand::new("s", status)),
        Err(winmdm_syncml::session::QueueError::NotAServerCommand(_))
    ));
    // An Exec whose data can never fit, and an object above the client's MaxObjSize.
    s.queue(QueuedCommand::new(
        "huge-exec",
        Command::exec(1u32, "./Vendor/MSFT/X", Some("chr"), Some("e".repeat(5000))),
    ))
    .unwrap();
    s.queue(QueuedCommand::new(
        "huge-obj",
        Command::replace(1u32, "./Vendor/MSFT/Y", "chr", "o".repeat(3000)),
    ))
    .unwrap();
    let (_, r) = handle(
        &mut s,
        msg(1).alert_1201().max_sizes(2048, Some(2000)).build(),
        10,
    );
    let dropped: Vec<_> = r
        .dropped
        .iter()
        .map(|d| (d.tag.as_str(), d.reason))
        .collect();
    assert!(matches!(
        dropped[0],
        (
            "huge-exec",
            DropReason::TooLargeForMessage {
                max_msg_size: 2048,
                ..
            }
        )
    ));
    assert!(matches!(
        dropped[1],
        (
            "huge-obj",
            DropReason::ObjectTooLarge {
                size: 3000,
                max_obj_size: 2000
            }
        )
    ));
    assert!(
        r.message
            .body
            .commands
            .iter()
            .any(|c| matches!(c, Command::Get(_)))
    );
}

#[test]
fn header_refusal_and_uncorrelated_responses_are_reported() {
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device));
    s.queue(QueuedCommand::new("a", Command::get(1u32, ["./A"])))
        .unwrap();
    let (_, _) = handle(&mut s, msg(1).alert_1201().build(), 10);
    let m2 = msg(2)
        .header_status(1, StatusCode::FORBIDDEN)
        .status(1, 99, "Get", StatusCode::OK)
        .results(1, 98, &[("./X", "1")])
        .build();
    let (events, _) = handle(&mut s, m2, 11);
    assert!(events.contains(&Event::HeaderRefused(StatusCode::FORBIDDEN)));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Uncorrelated(_)))
            .count(),
        2
    );
}

#[test]
fn state_of_another_version_is_refused() {
    let s = cert_session(SessionConfig::new(EnrollmentType::Device));
    let mut json: serde_json::Value = serde_json::to_value(s.state()).unwrap();
    json["version"] = 2.into();
    let state = serde_json::from_value(json).unwrap();
    assert_eq!(
        Session::restore(state),
        Err(SessionError::UnsupportedStateVersion { found: 2 })
    );
}

#[test]
fn login_status_user_and_held_commands_are_listed() {
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device));
    s.queue(QueuedCommand::new(
        "u",
        Command::replace(1u32, "./User/Vendor/MSFT/P", "int", "1"),
    ))
    .unwrap();
    let Inbound::Authenticate(step) = s
        .receive(
            msg(1).alert_1201().login_status(LoginStatus::None).build(),
            10,
        )
        .unwrap()
    else {
        panic!()
    };
    let Authenticated::Yes(mut ex) = step.decide(Verdict::Certificate, nonce(2)) else {
        panic!()
    };
    while ex.poll_event().is_some() {}
    assert_eq!(ex.holds(), [("u".to_owned(), Hold::NoUserToken)]);
    ex.set_user(Some(SessionUser {
        tenant_id: tk::CONTOSO.id.into(),
        object_id: tk::ALICE.oid.into(),
        guest: false,
    }));
    assert_eq!(
        ex.holds(),
        [("u".to_owned(), Hold::NotSignedIn(Some(LoginStatus::None)))]
    );
    let r = ex.reply();
    let end = r.end.unwrap();
    assert_eq!(end.unsent[0].tag, "u");
}

/// Scope rules end to end: Device vs Full enrollment × token present / absent / guest /
/// LoginStatus none, with tokens minted by the testkit and validated by winmdm-entra.
#[test]
fn scope_matrix_over_whole_sessions() {
    #[derive(Debug, Clone, Copy)]
    enum Case {
        TokenPresent,
        TokenAbsent,
        Guest,
        LoginStatusNone,
        TokenInvalid,
    }
    let cases = [
        Case::TokenPresent,
        Case::TokenAbsent,
        Case::Guest,
        Case::LoginStatusNone,
        Case::TokenInvalid,
    ];
    for enrollment in [EnrollmentType::Device, EnrollmentType::Full] {
        for case in cases {
            let mut device = device();
            let (login, tok) = match case {
                Case::TokenPresent => (LoginStatus::User, Some(token(&tk::ALICE))),
                Case::TokenAbsent => (LoginStatus::User, None),
                Case::Guest => (LoginStatus::User, Some(token(&tk::GUEST))),
                Case::LoginStatusNone => (LoginStatus::None, Some(token(&tk::ALICE))),
                Case::TokenInvalid => (LoginStatus::User, Some(tk::broken(tk::Broken::ALL[0]))),
            };
            device.set_login_status(Some(login));
            device.set_user_token(tok);
            let mut h = Harness::new(enrollment, device);
            h.resolve = entra_resolver();
            h.queue(
                "dev",
                Command::replace(
                    1u32,
                    "./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera",
                    "int",
                    "0",
                ),
            );
            h.queue(
                "usr",
                Command::replace(
                    1u32,
                    "./User/Vendor/MSFT/Policy/Config/Start/HideSleep",
                    "int",
                    "1",
                ),
            );
            h.session
                .queue(
                    QueuedCommand::new(
                        "bob",
                        Command::get(1u32, ["./User/Vendor/MSFT/Policy/Result"]),
                    )
                    .for_user(tk::BOB.oid),
                )
                .unwrap();
            let end = h.run();
            let label = format!("{enrollment:?} × {case:?}");
            assert_eq!(
                h.sent_to("./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera"),
                1,
                "{label}"
            );
            let user_sent = h.sent_to("./User/Vendor/MSFT/Policy/Config/Start/HideSleep");
            let expected = match (enrollment, case) {
                (EnrollmentType::Full, _) => 1,
                (EnrollmentType::Device, Case::TokenPresent) => 1,
                (EnrollmentType::Device, _) => 0,
            };
            assert_eq!(user_sent, expected, "{label}");
            let unsent: Vec<_> = end.unsent.iter().map(|q| q.tag.as_str()).collect();
            match (enrollment, case) {
                (EnrollmentType::Full, _) => assert!(unsent.is_empty(), "{label}: {unsent:?}"),
                // Bob's command waits on a device Alice is signed in to.
                (EnrollmentType::Device, Case::TokenPresent) => {
                    assert_eq!(unsent, ["bob"], "{label}")
                }
                (EnrollmentType::Device, _) => assert_eq!(unsent, ["usr", "bob"], "{label}"),
            }
            // Windows fails ./User writes while nobody is signed in; we never send them
            // then on a shared device, but an added work account gets them anyway.
            if let (EnrollmentType::Full, Case::LoginStatusNone) = (enrollment, case) {
                assert_eq!(h.statuses("usr"), [(vec![], 500)], "{label}");
            }
        }
    }
}

/// The user token identifies the user, never the device: a device without credentials
/// gets a challenge and no commands, token or not.
#[test]
fn user_token_never_authenticates_the_device() {
    let mut s = Session::new(SessionConfig::new(EnrollmentType::Device), nonce(1));
    s.queue(QueuedCommand::new(
        "x",
        Command::get(1u32, ["./DevDetail/SwV"]),
    ))
    .unwrap();
    let m = msg(1)
        .alert_1201()
        .login_status(LoginStatus::User)
        .aad_user_token(&token(&tk::ALICE))
        .build();
    for verdict in [
        Verdict::Digest {
            username: USER,
            password: PASS,
        },
        Verdict::Continue,
    ] {
        let mut s = s.clone();
        let Inbound::Authenticate(step) = s.receive(m.clone(), 10).unwrap() else {
            panic!()
        };
        let Authenticated::Challenged(r) = step.decide(verdict, nonce(2)) else {
            panic!("an unauthenticated device must be challenged")
        };
        assert_eq!(r.message.body.commands.len(), 1);
        let Command::Status(h) = &r.message.body.commands[0] else {
            panic!()
        };
        assert_eq!(h.code(), Some(StatusCode::MISSING_CREDENTIALS));
        // The challenge repeats the device's current nonce: nothing changes until it
        // authenticates.
        let current = s.state().nonce().clone();
        assert_eq!(
            h.chal.as_ref().unwrap().meta.next_nonce.as_deref(),
            Some(current.to_b64().as_str())
        );
        assert_eq!(r.next_nonce, Some(current));
        assert!(s.state().authenticated().is_none());
        assert_eq!(s.state().queued().count(), 1, "nothing was sent");
    }
    // Deny ends the session with 403 and nothing sent.
    let Inbound::Authenticate(step) = s.receive(m, 10).unwrap() else {
        panic!()
    };
    let Authenticated::Refused(r) = step.decide(Verdict::Deny, nonce(2)) else {
        panic!()
    };
    assert_eq!(r.end.as_ref().unwrap().reason, EndReason::Denied);
    assert_eq!(r.end.unwrap().unsent.len(), 1);
    assert_eq!(r.message.body.commands.len(), 1);
}

#[test]
fn wrong_digest_is_challenged_then_locked_out() {
    let mut h = Harness::new(
        EnrollmentType::Device,
        winmdm_syncml::client::Device::new(DEVICE, SERVER).with_digest(USER, "wrong", nonce(1)),
    );
    h.queue("x", Command::get(1u32, ["./DevDetail/SwV"]));
    let end = h.run();
    assert_eq!(end.reason, EndReason::AuthenticationFailed);
    assert_eq!(end.unsent.len(), 1);
    // Three tries (the configured maximum): 401, 401, then refused.
    let codes: Vec<_> = h
        .server_msgs
        .iter()
        .map(|m| match &m.body.commands[0] {
            Command::Status(s) => s.code().unwrap().0,
            _ => 0,
        })
        .collect();
    assert_eq!(codes, [401, 401, 401]);
    // Every challenge repeats the device's current nonce: wrong credentials change
    // nothing the device (or a stateless server) relies on.
    let nonces: Vec<_> = h.replies.iter().map(|r| r.next_nonce.clone()).collect();
    assert_eq!(nonces[0], Some(nonce(1)));
    assert_eq!(nonces[1], Some(nonce(1)));
    assert!(h.server_msgs.iter().all(|m| m.body.commands.len() == 1));
}

#[test]
fn digest_session_after_a_challenge_uses_the_new_nonce() {
    // The device's stored nonce is stale (the server rotated it): 401 + Chal, then 212.
    let device =
        winmdm_syncml::client::Device::new(DEVICE, SERVER).with_digest(USER, PASS, nonce(42));
    let mut h = Harness::new(EnrollmentType::Device, device);
    h.queue("x", Command::get(1u32, ["./DevDetail/SwV"]));
    let end = h.run();
    assert_eq!(end.reason, EndReason::Completed);
    let codes: Vec<_> = h
        .server_msgs
        .iter()
        .map(|m| match &m.body.commands[0] {
            Command::Status(s) => s.code().unwrap().0,
            _ => 0,
        })
        .collect();
    assert_eq!(codes[..2], [401, 212]);
    assert_eq!(h.statuses("x"), [(vec![], 404)]);
    // After 212 the device sends no more credentials and the session accepts it.
    assert!(h.client_msgs[2..].iter().all(|m| m.header.cred.is_none()));
}

/// Repeats under digest authentication: the repeated message's credential was made for
/// the nonce in effect when it was first handled; it still replays, and a forged repeat
/// (same content, other credential) does not.
#[test]
fn digest_repeat_replays_and_forgery_does_not() {
    let mut h = Harness::new(EnrollmentType::Device, device());
    h.queue("w", Command::replace(1u32, "./Vendor/MSFT/X", "int", "1"));
    let first = h.device.start_session();
    let r1 = h.exchange(first.clone());
    assert!(r1.next_nonce.is_some(), "212 rotated the nonce");
    // Lost reply: the same bytes again.
    let Inbound::Authenticate(step) = h.session.receive(first, 5).unwrap() else {
        panic!()
    };
    let Authenticated::Repeat(again) = step.decide(
        Verdict::Digest {
            username: USER,
            password: PASS,
        },
        nonce(77),
    ) else {
        panic!("the genuine repeat was not replayed")
    };
    assert_eq!(again.message, r1.message);
    assert_eq!(again.next_nonce, r1.next_nonce);
    // The device gets the same reply twice and applies the command once.
    let next = h.device.respond(&again.message).unwrap();
    assert_eq!(h.device.applied().len(), 1);
    let _ = next;
}

/// A message that fails authentication on an established session changes nothing: no
/// lockout, no nonce change, no end (so a forged message cannot end a device's session).
#[test]
fn failures_on_an_authenticated_session_change_nothing() {
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device));
    s.queue(QueuedCommand::new("a", Command::get(1u32, ["./A"])))
        .unwrap();
    let (_, _) = handle(&mut s, msg(1).alert_1201().build(), 10);
    let before = s.state().clone();
    for (i, verdict) in [
        Verdict::Deny,
        Verdict::Digest {
            username: USER,
            password: PASS,
        },
        Verdict::Deny,
        Verdict::Deny,
    ]
    .into_iter()
    .enumerate()
    {
        let forged = msg(2)
            .header_status(1, StatusCode::OK)
            .cred(winmdm_syncml::auth::md5_cred(USER, "guess", &nonce(1)))
            .alert(AlertCode::SESSION_ABORT)
            .build();
        let Inbound::Authenticate(step) = s.receive(forged, 11 + i as u64).unwrap() else {
            panic!()
        };
        match step.decide(verdict, nonce(50)) {
            Authenticated::Refused(r) | Authenticated::Challenged(r) => {
                assert!(r.end.is_none());
                assert_eq!(r.message.body.commands.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.state(), &before, "attempt {i} changed the session");
    }
    // The real device continues.
    let (events, _) = handle(
        &mut s,
        msg(2)
            .header_status(1, StatusCode::OK)
            .status(1, 3, "Get", StatusCode::NOT_FOUND)
            .build(),
        20,
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Status { tag, .. } if tag == "a"))
    );
}

/// Fuzzer find: a client `Target` URI long enough that echoing it in the header status's
/// `TargetRef` pushed a challenge over `MaxMsgSize`. The optional echo is dropped instead.
#[test]
fn long_client_uris_do_not_push_replies_over_maxmsgsize() {
    let long = format!("https://mdm.example/omadm?{}", "x\"".repeat(300));
    // The vendor configured its address, so the header does not echo the client's.
    let mut s = Session::new(
        SessionConfig::new(EnrollmentType::Device)
            .with_max_msg_size(2048)
            .with_server_uri("https://mdm.example/omadm"),
        nonce(1),
    );
    let m = MessageBuilder::new("1", 1, DEVICE, "https://mdm.example/omadm")
        .alert_1201()
        .build();
    let mut m2 = m;
    m2.header.target = Some(winmdm_syncml::Location::new(long.as_str()));
    let Inbound::Authenticate(step) = s.receive(m2, 10).unwrap() else {
        panic!()
    };
    let Authenticated::Challenged(r) = step.decide(
        Verdict::Digest {
            username: USER,
            password: PASS,
        },
        nonce(2),
    ) else {
        panic!()
    };
    assert!(r.to_xml().len() <= 2048, "{}", r.to_xml().len());
    let Command::Status(h) = &r.message.body.commands[0] else {
        panic!()
    };
    assert!(h.target_ref.is_empty() && h.chal.is_some());
}

/// Windows' SessionID is a small counter: it restarts after a reboot and wraps at 256, so
/// a stored state may meet a new session's first message with its own SessionID. That
/// message starts a new session — after an interrupted session (what it left is handed
/// back), after an ended one, and after an idle-expired one — and the new session
/// authenticates from scratch.
#[test]
fn a_reused_session_id_starts_a_new_session() {
    // Interrupted: the device rebooted after message 2.
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device).with_idle_timeout(600));
    s.queue(QueuedCommand::new("a", Command::get(1u32, ["./A"])))
        .unwrap();
    let (_, _) = handle(&mut s, msg(1).alert_1201().build(), 1000);
    s.queue(QueuedCommand::new("later", Command::get(1u32, ["./B"])))
        .unwrap();
    let Inbound::Authenticate(step) = s
        .receive(msg(1).alert_1201().alert_1201().build(), 1010)
        .unwrap()
    else {
        panic!("a new session")
    };
    let left = step.restarted().cloned().expect("the old session's end");
    assert_eq!(left.reason, EndReason::Restarted);
    assert_eq!(left.unanswered, ["a"]);
    assert_eq!(
        left.unsent
            .iter()
            .map(|q| q.tag.as_str())
            .collect::<Vec<_>>(),
        ["later"]
    );
    let Authenticated::Yes(mut ex) = step.decide(Verdict::Certificate, nonce(9)) else {
        panic!()
    };
    assert!(matches!(
        ex.poll_event(),
        Some(Event::SessionStarted { .. })
    ));
    let reply = ex.reply();
    assert_eq!(
        reply.message.header.msg_id, "1",
        "the server counts from 1 again"
    );
    // (The old session's commands were handed back, so this one has nothing to send.)

    // Ended: the session completed; the next one reuses its SessionID.
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device));
    let (_, r) = handle(&mut s, msg(1).alert_1201().build(), 10);
    assert!(r.end.is_some(), "nothing to do: it ended");
    let Inbound::Authenticate(step) = s
        .receive(msg(1).alert_1201().alert_1201().build(), 20)
        .unwrap()
    else {
        panic!()
    };
    assert!(step.restarted().is_none(), "it had ended already");
    assert!(matches!(
        step.decide(Verdict::Certificate, nonce(9)),
        Authenticated::Yes(_)
    ));

    // Idle-expired: past the timeout, the first message of a new session starts it.
    let mut s = cert_session(SessionConfig::new(EnrollmentType::Device).with_idle_timeout(60));
    s.queue(QueuedCommand::new("a", Command::get(1u32, ["./A"])))
        .unwrap();
    let (_, _) = handle(&mut s, msg(1).alert_1201().build(), 1000);
    let (events, _) = handle(&mut s, msg(1).alert_1201().alert_1201().build(), 5000);
    assert!(matches!(events[0], Event::SessionStarted { .. }));

    // The new session must authenticate: a refused one changes nothing for the vendor to
    // store (the caller keeps the stored state), and it is not a way around the lockout.
    let mut config = SessionConfig::new(EnrollmentType::Device);
    config.max_auth_failures = 2;
    let mut s = Session::new(config, nonce(1));
    // Each guess is a new first message (not a repeat of the last one).
    let wrong = |guess: &str| {
        msg(1)
            .alert_1201()
            .cred(winmdm_syncml::auth::md5_cred(DEVICE, guess, &nonce(1)))
            .build()
    };
    for (guess, expected_refusal) in [("guess-1", false), ("guess-2", true)] {
        let Inbound::Authenticate(step) = s.receive(wrong(guess), 10).unwrap() else {
            panic!()
        };
        let outcome = step.decide(
            Verdict::Digest {
                username: DEVICE,
                password: "s3cret",
            },
            nonce(5),
        );
        match outcome {
            Authenticated::Refused(r) if expected_refusal => assert!(r.end.is_some()),
            Authenticated::Challenged(_) if !expected_refusal => {}
            other => panic!("{other:?}"),
        }
    }
}

/// After it authenticates, the session is bound: replies carry `RespURI` and the device
/// sends the rest of the session there, without credentials.
#[test]
fn an_authenticated_session_is_bound_to_its_resp_uri() {
    let mut h = Harness::new(EnrollmentType::Device, device());
    h.queue("x", Command::get(1u32, ["./DevDetail/SwV"]));
    let end = h.run();
    assert_eq!(end.reason, EndReason::Completed);
    let bound = h.session.state().resp_uri().unwrap().to_owned();
    assert!(
        bound.starts_with(SERVER) && bound.contains("?s="),
        "{bound}"
    );
    assert!(
        h.server_msgs
            .iter()
            .all(|m| m.header.resp_uri.as_deref() == Some(bound.as_str()))
    );
    assert!(h.client_msgs.len() >= 2);
    for m in &h.client_msgs[1..] {
        assert_eq!(m.header.target.as_ref().unwrap().loc_uri.as_str(), bound);
        assert!(m.header.cred.is_none());
    }
}

/// Anyone can write a device's `Source` and `SessionID`: in a digest session, a later
/// message without credentials that the vendor does not vouch for (not bound) is
/// challenged, and the session is unchanged — no Alert 1226, no statuses filed.
#[test]
fn an_unbound_message_without_credentials_cannot_join_a_digest_session() {
    let mut s = Session::new(SessionConfig::new(EnrollmentType::Device), nonce(1));
    s.queue(winmdm_syncml::session::QueuedCommand::new(
        "x",
        Command::get(1u32, ["./DevDetail/SwV"]),
    ))
    .unwrap();
    let mut d = device();
    let first = d.start_session();
    let Inbound::Authenticate(step) = s.receive(first, 10).unwrap() else {
        panic!()
    };
    let digest = Verdict::Digest {
        username: USER,
        password: PASS,
    };
    let Authenticated::Yes(ex) = step.decide(digest, nonce(2)) else {
        panic!("the device authenticates")
    };
    let _ = ex.reply();
    let before = s.state().clone();
    let forged = MessageBuilder::new("1", 2, DEVICE, SERVER)
        .unenroll()
        .build();
    let Inbound::Authenticate(step) = s.receive(forged, 11).unwrap() else {
        panic!()
    };
    let Authenticated::Challenged(r) = step.decide(digest, nonce(3)) else {
        panic!("a credential-less, unbound message is challenged")
    };
    assert_eq!(r.next_nonce.as_ref(), Some(before.nonce()));
    assert_eq!(s.state(), &before, "nothing changed");
}

/// A stateless server does not keep a challenged first message's state: the reply to
/// the device's retry must not reuse the challenge's MsgID.
#[test]
fn server_msg_ids_stay_unique_across_a_challenge_that_was_not_stored() {
    let config = SessionConfig::new(EnrollmentType::Device);
    let mut d =
        winmdm_syncml::client::Device::new(DEVICE, SERVER).with_digest(USER, PASS, nonce(9));
    let digest = Verdict::Digest {
        username: USER,
        password: PASS,
    };
    // The server's stored nonce is 1; the device's is stale: challenged.
    let mut s = Session::new(config.clone(), nonce(1));
    let Inbound::Authenticate(step) = s.receive(d.start_session(), 10).unwrap() else {
        panic!()
    };
    let Authenticated::Challenged(challenge) = step.decide(digest, nonce(2)) else {
        panic!()
    };
    // Nothing stored: the retry meets a new session object.
    let retry = d.respond(&challenge.message).unwrap();
    let mut s = Session::new(config, nonce(1));
    let Inbound::Authenticate(step) = s.receive(retry, 11).unwrap() else {
        panic!()
    };
    let Authenticated::Yes(ex) = step.decide(digest, nonce(2)) else {
        panic!("the retry authenticates with the challenged nonce")
    };
    let reply = ex.reply();
    assert_ne!(reply.message.header.msg_id, challenge.message.header.msg_id);
}

/// Windows puts the HRESULT of a failed command on the status's own `Data`
/// (`<Data msft:originalerror="0x80070057">500</Data>`): it survives decoding, encoding,
/// and reaches the session's status event.
#[test]
fn original_error_on_a_status_reaches_the_event() {
    let xml = r#"<SyncML xmlns="SYNCML:SYNCML1.2" xmlns:msft="http://schemas.microsoft.com/MobileDevice/MDM"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>2</MsgID><Target><LocURI>https://mdm.contoso.example/ManagementServer/MDM.svc</LocURI></Target><Source><LocURI>dev</LocURI></Source></SyncHdr><SyncBody><Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>2</CmdRef><Cmd>Replace</Cmd><Data msft:originalerror="0x80070057">500</Data></Status><Final/></SyncBody></SyncML>"#;
    let m = winmdm_syncml::decode(xml.as_bytes()).unwrap();
    let Command::Status(s) = &m.body.commands[0] else {
        panic!()
    };
    assert_eq!(s.original_error.as_deref(), Some("0x80070057"));
    assert_eq!(s.code(), Some(StatusCode(500)));
    let again = winmdm_syncml::encode(&m);
    assert!(
        again.contains(r#"<Data msft:originalerror="0x80070057">500</Data>"#),
        "{again}"
    );
    assert!(again.contains("xmlns:msft="), "{again}");
    assert_eq!(winmdm_syncml::decode(again.as_bytes()).unwrap(), m);
    let typed = winmdm_syncml::status::responses(&m);
    assert!(
        matches!(&typed[0], winmdm_syncml::status::Response::Status(c)
        if c.original_error.as_deref() == Some("0x80070057"))
    );
}
