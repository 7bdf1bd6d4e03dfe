//! Messages we emit validate against `schema/syncml-windows.rng` with xmllint (libxml2),
//! and malformed ones do not (so the schema is not vacuous). Skipped without xmllint,
//! except under CI.

use std::process::Command as Process;

use winmdm_syncml::alerts::{self, LoginStatus};
use winmdm_syncml::status::{self, assign_cmd_ids};
use winmdm_syncml::*;
use winmdm_testkit::{samples, tools};

fn validate(name: &str, xml: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("winmdm-rng-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.xml"));
    std::fs::write(&path, xml).unwrap();
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/syncml-windows.rng");
    let out = Process::new("xmllint")
        .args(["--noout", "--relaxng", schema])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn header(msg_id: u32) -> SyncHdr {
    SyncHdr {
        ver_dtd: "1.2".into(),
        ver_proto: "DM/1.2".into(),
        session_id: "1A".into(),
        msg_id: Text::from_u32(msg_id),
        target: Some(Location::new("{6F1A1B2C-3D4E-5F60-7182-93A4B5C6D7E8}")),
        source: Some(Location::new(
            "https://mdm.contoso.example/ManagementServer/MDM.svc",
        )),
        ..SyncHdr::default()
    }
}

/// A server reply as a vendor builds one: statuses for the client's package #1, then
/// commands of every kind.
fn server_message() -> SyncMl {
    let client = decode(samples::get(29).unwrap().unwrap().body.as_bytes()).unwrap();
    let mut commands: Vec<Command> = status::statuses_for(&client, |_| StatusCode::OK)
        .into_iter()
        .map(Command::Status)
        .collect();
    commands.push(Command::get(
        0u32,
        ["./DevDetail/SwV", "./DevDetail/Ext/Microsoft/OSPlatform"],
    ));
    commands.push(Command::replace(
        0u32,
        "./Vendor/MSFT/Policy/Config/Camera/AllowCamera",
        "int",
        "0",
    ));
    commands.push(Command::exec(
        0u32,
        "./Vendor/MSFT/RemoteWipe/doWipe",
        None,
        None,
    ));
    commands.push(Command::atomic(
        0u32,
        vec![
            Command::add(
                0u32,
                "./Vendor/MSFT/Policy/Config/Browser/AllowCookies",
                "int",
                "2",
            ),
            Command::replace(
                0u32,
                "./Device/Vendor/MSFT/DMClient/Provider/winmdm/EntDMID",
                "chr",
                "dev-1",
            ),
        ],
    ));
    commands.push(Command::sequence(
        0u32,
        vec![Command::delete(
            0u32,
            ["./Vendor/MSFT/Policy/Config/Camera"],
        )],
    ));
    let mut provisioning = Item::value(
        "./Vendor/MSFT/EnterpriseModernAppManagement/AppInstallation/x/HostedInstall",
        "xml",
        "",
    );
    provisioning.data = Some(Data::xml(
        "<Application PackageUri=\"https://apps.example/x.msix\"><Dependencies/></Application>",
    ));
    commands.push(Command::Exec(ItemCommand {
        cmd_id: Some(0u32.into()),
        items: vec![provisioning],
        ..ItemCommand::default()
    }));
    commands.push(Command::alert(0u32, AlertCode::SESSION_ABORT));
    assign_cmd_ids(&mut commands, 1);
    let mut m = SyncMl {
        header: header(2),
        body: SyncBody {
            commands,
            is_final: true,
        },
    };
    m.header.meta = Some(Box::new(Meta {
        max_msg_size: Some("524288".into()),
        ..Meta::default()
    }));
    m
}

/// A client message with alerts, results and a failure status with msft:originalerror.
fn client_message() -> SyncMl {
    let mut commands = vec![
        alerts::client_initiated(0u32),
        alerts::login_status(0u32, LoginStatus::User),
        alerts::aad_user_token(0u32, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
        alerts::unenroll_request(0u32),
        Command::Status(Status {
            msg_ref: Some("1".into()),
            cmd_ref: Some("3".into()),
            cmd: Some("Replace".into()),
            data: "500".into(),
            items: vec![Item {
                data: Some(Data {
                    value: "".into(),
                    kind: DataKind::Text,
                    original_error: Some("0x82B00006".into()),
                }),
                ..Item::default()
            }],
            ..Status::default()
        }),
        Command::Results(Results {
            msg_ref: Some("1".into()),
            cmd_ref: Some("4".into()),
            cmd: Some("Get".into()),
            items: vec![Item {
                source: Some(Location::new("./DevDetail/SwV")),
                meta: Some(Box::new(Meta::format_type(Some("chr"), None))),
                data: Some(Data::text("10.0.26100.2 & <more>")),
                ..Item::default()
            }],
            ..Results::default()
        }),
    ];
    assign_cmd_ids(&mut commands, 1);
    let mut h = header(3);
    std::mem::swap(&mut h.target, &mut h.source);
    let mut challenge = status::challenge_status(
        &SyncMl {
            header: h.clone(),
            ..SyncMl::default()
        },
        StatusCode::MISSING_CREDENTIALS,
        "bm9uY2U=",
    );
    challenge.cmd_id = Some(99u32.into());
    commands.push(Command::Status(challenge));
    SyncMl {
        header: h,
        body: SyncBody {
            commands,
            is_final: false,
        },
    }
}

#[test]
fn emitted_messages_validate() {
    if !tools::require_xmllint() {
        return;
    }
    for (name, m) in [("server", server_message()), ("client", client_message())] {
        let xml = encode(&m);
        let (ok, err) = validate(name, &xml);
        assert!(ok, "{name}: {err}\n{xml}");
    }
    // The published whole-message samples, re-encoded, validate too.
    for n in [29, 30, 31, 33] {
        let s = samples::get(n).unwrap().unwrap();
        let xml = encode(&decode(s.body.as_bytes()).unwrap());
        let (ok, err) = validate(&format!("sample{n}"), &xml);
        assert!(ok, "{n}: {err}\n{xml}");
    }
}

#[test]
fn malformed_messages_do_not_validate() {
    if !tools::require_xmllint() {
        return;
    }
    let good = encode(&server_message());
    assert!(validate("good", &good).0);
    let broken = [
        ("zero-cmdid", good.replacen("<CmdID>1</CmdID>", "<CmdID>0</CmdID>", 1)),
        ("status-order", good.replacen("<MsgRef>1</MsgRef><CmdRef>0</CmdRef>", "<CmdRef>0</CmdRef><MsgRef>1</MsgRef>", 1)),
        ("no-cmdref", good.replacen("<CmdRef>0</CmdRef>", "", 1)),
        ("alert-code", good.replacen("<Data>1223</Data>", "<Data>abort</Data>", 1)),
        ("verdtd", good.replacen("<VerDTD>1.2</VerDTD>", "<VerDTD>1.1</VerDTD>", 1)),
        ("meta-namespace", good.replacen(" xmlns=\"syncml:metinf\">524288", ">524288", 1)),
        ("get-without-item", good.replacen("<Item><Target><LocURI>./DevDetail/SwV</LocURI></Target></Item>", "", 1).replacen("<Item><Target><LocURI>./DevDetail/Ext/Microsoft/OSPlatform</LocURI></Target></Item>", "", 1)),
    ];
    for (name, xml) in broken {
        assert_ne!(xml, good, "{name}: mutation did not apply");
        let (ok, _) = validate(name, &xml);
        assert!(!ok, "{name} validated:\n{xml}");
    }
}

/// Every message of simulated sessions — server replies (statuses, chunks with `Size` and
/// `MoreData`, alerts 1222/1225, `Chal`) and the simulated device's messages — validates.
#[test]
fn session_messages_validate() {
    use winmdm_syncml::auth::Nonce;
    use winmdm_syncml::client::Device;
    use winmdm_syncml::scope::EnrollmentType;
    use winmdm_syncml::session::{
        Authenticated, Inbound, QueuedCommand, Session, SessionConfig, Verdict,
    };
    if !tools::require_xmllint() {
        return;
    }
    let mut device = Device::new("dev-1", "https://mdm.example/omadm")
        .with_digest("dev-1", "pw", Nonce::from_bytes(vec![9; 16]))
        .with_max_sizes(3000, None)
        .with_upload_chunk(1000);
    device.set_login_status(Some(LoginStatus::User));
    device.set_node("./Vendor/MSFT/Logs", &"<line & more>\n".repeat(300));
    let mut s = Session::new(
        SessionConfig::new(EnrollmentType::Full),
        Nonce::from_bytes(vec![1; 16]),
    );
    for (i, c) in [
        Command::get(0u32, ["./Vendor/MSFT/Logs", "./DevInfo/Man"]),
        Command::replace(0u32, "./Vendor/MSFT/Blob", "chr", "<&>".repeat(2000)),
        Command::atomic(
            0u32,
            vec![Command::add(0u32, "./User/Vendor/MSFT/A", "int", "1")],
        ),
        Command::sequence(
            0u32,
            vec![Command::exec(
                0u32,
                "./Vendor/MSFT/Reboot/RebootNow",
                None,
                None,
            )],
        ),
        Command::delete(0u32, ["./Vendor/MSFT/Old"]),
    ]
    .into_iter()
    .enumerate()
    {
        s.queue(QueuedCommand::new(format!("q{i}"), c)).unwrap();
    }
    let mut msg = device.start_session();
    let mut all = Vec::new();
    for now in 0..100 {
        all.push(encode(&msg));
        let Inbound::Authenticate(step) = s.receive(msg, now).unwrap() else {
            panic!()
        };
        let reply = match step.decide(
            Verdict::Digest {
                username: "dev-1",
                password: "pw",
            },
            Nonce::from_bytes(vec![now as u8; 16]),
        ) {
            Authenticated::Yes(ex) => ex.reply(),
            Authenticated::Challenged(r) | Authenticated::Refused(r) | Authenticated::Repeat(r) => {
                r
            }
        };
        all.push(reply.to_xml());
        let done = reply.end.is_some();
        match device.respond(&reply.message) {
            Some(next) if !done => msg = next,
            _ => break,
        }
    }
    assert!(all.len() > 8, "the session was too short to mean much");
    for (i, xml) in all.iter().enumerate() {
        let (ok, err) = validate(&format!("session-{i}"), xml);
        assert!(ok, "message {i} does not validate: {err}\n{xml}");
    }
}

/// The DMClient first-sync nodes as the CSP's DDF defines them: name, format, and the
/// scopes it exists in (`TimeOutUntilSyncFailure`, `BlockInStatusPage` and the two skip
/// nodes are device only).
const DMCLIENT_FIRST_SYNC: &[(&str, &str, bool)] = &[
    ("ExpectedPolicies", "chr", true),
    ("ExpectedNetworkProfiles", "chr", true),
    ("ExpectedMSIAppPackages", "chr", true),
    ("ExpectedModernAppPackages", "chr", true),
    ("ExpectedPFXCerts", "chr", true),
    ("ExpectedSCEPCerts", "chr", true),
    ("TimeOutUntilSyncFailure", "int", false),
    ("BlockInStatusPage", "int", false),
    ("AllowCollectLogsButton", "bool", true),
    ("CustomErrorText", "chr", true),
    ("SkipDeviceStatusPage", "bool", false),
    ("SkipUserStatusPage", "bool", false),
    ("ServerHasFinishedProvisioning", "bool", true),
    ("IsSyncDone", "bool", true),
    ("WasDeviceSuccessfullyProvisioned", "int", true),
];

/// Every first-sync command the `dmclient` builders make, in a server message: valid
/// SyncML (RELAX NG), each with the node's DDF format, in a scope the node exists in,
/// with a value of that format.
#[test]
fn first_sync_commands_validate_and_match_the_dmclient_formats() {
    use winmdm_syncml::dmclient::{BlockFlags, ExpectedKind, FirstSync, Scope, Timeout};
    let esp = FirstSync::new("Contoso MDM").unwrap();
    let mut commands = Vec::new();
    for scope in [Scope::Device, Scope::User] {
        commands.push(esp.add_provider(scope));
        commands.push(esp.add_first_sync_status(scope));
        for kind in [
            ExpectedKind::Policies,
            ExpectedKind::NetworkProfiles,
            ExpectedKind::MsiAppPackages,
            ExpectedKind::ModernAppPackages,
            ExpectedKind::PfxCerts,
            ExpectedKind::ScepCerts,
        ] {
            commands.push(
                esp.expected(scope, kind, &["./Vendor/MSFT/A;1", "./Vendor/MSFT/B;2"])
                    .unwrap(),
            );
        }
        commands.push(esp.allow_collect_logs_button(scope, true));
        commands.push(esp.custom_error_text(scope, "Call the help desk <x1234> & say \"ESP\"."));
        commands.push(esp.server_has_finished_provisioning(scope));
        commands.push(esp.get_progress(scope));
    }
    commands.push(esp.time_out_until_sync_failure(Timeout::minutes(1440).unwrap()));
    commands.push(esp.block_in_status_page(
        BlockFlags::RESET_PC | BlockFlags::TRY_AGAIN | BlockFlags::CONTINUE_ANYWAY,
    ));
    commands.push(esp.skip_device_status_page(false));
    commands.push(esp.skip_user_status_page(false));
    for c in &commands {
        let (Command::Replace(ic) | Command::Add(ic) | Command::Get(ic)) = c else {
            panic!("{c:?}")
        };
        for item in &ic.items {
            let uri = item.target.as_ref().unwrap().loc_uri.to_string();
            let scope_ok = uri.starts_with("./Device/") || uri.starts_with("./User/");
            assert!(scope_ok, "{uri}");
            let Some((_, node)) = uri.split_once("/FirstSyncStatus/") else {
                // The interior nodes: Add with Format node, no data.
                assert!(matches!(c, Command::Add(_)), "{uri}");
                assert_eq!(item.meta.as_ref().unwrap().format.as_deref(), Some("node"));
                assert!(item.data.is_none());
                continue;
            };
            let (_, format, user_too) = DMCLIENT_FIRST_SYNC
                .iter()
                .find(|(n, _, _)| *n == node)
                .unwrap_or_else(|| panic!("{node} is not a FirstSyncStatus node"));
            assert!(
                *user_too || uri.starts_with("./Device/"),
                "{uri} is device only"
            );
            if let Command::Replace(_) = c {
                assert_eq!(
                    item.meta.as_ref().unwrap().format.as_deref(),
                    Some(*format),
                    "{uri}"
                );
                let value = item.data.as_ref().unwrap().value.to_string();
                match *format {
                    "bool" => assert!(value == "true" || value == "false", "{uri}: {value}"),
                    "int" => assert!(value.parse::<u32>().is_ok(), "{uri}: {value}"),
                    _ => {}
                }
            }
        }
    }
    if !tools::require_xmllint() {
        return;
    }
    let message = SyncMl {
        header: header(2),
        body: SyncBody {
            commands: assign_cmd_ids_owned(commands),
            is_final: true,
        },
    };
    let xml = encode(&message);
    assert!(
        xml.contains("./Vendor/MSFT/A;1\u{F000}./Vendor/MSFT/B;2"),
        "the list delimiter"
    );
    let (ok, err) = validate("first-sync", &xml);
    assert!(ok, "{err}\n{xml}");
}

fn assign_cmd_ids_owned(mut commands: Vec<Command>) -> Vec<Command> {
    assign_cmd_ids(&mut commands, 1);
    commands
}
