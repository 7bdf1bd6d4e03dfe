//! Real Windows traffic (the testkit's `real_windows` corpus, with its PROVENANCE): every
//! message a real Windows 10 device sent, and every server reply it accepted, decodes;
//! the device's messages read as what they are and pass the conformance checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use winmdm_syncml::check::{check, has_errors};
use winmdm_syncml::{Command, decode};
use winmdm_testkit::real_windows;

#[test]
fn every_real_device_message_decodes_and_conforms() {
    let captures = real_windows::load("syncml-device").unwrap();
    assert!(captures.len() >= 8);
    for c in captures {
        let m = decode(&c.body).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        winmdm_syncml::fuzzing::assert_accepted(&c.body);
        // DeviceID as 32 upper-case hex digits, in the header and in ./DevInfo/DevId.
        let source = m.header.source.as_ref().map_or("", |s| s.loc_uri.trim());
        assert!(
            source.len() == 32 && source.bytes().all(|b| b.is_ascii_hexdigit()),
            "{}: Source {source}",
            c.name
        );
        let issues = check(&m);
        assert!(!has_errors(&issues), "{}: {issues:?}", c.name);
        // Windows posts to the provisioned address with its query, and says who it is.
        assert!(
            c.request_target()
                .is_some_and(|t| t.ends_with("?mode=Maintenance&Platform=WoA")),
            "{}",
            c.name
        );
        assert_eq!(c.header("User-Agent"), Some("MSFT OMA DM Client/1.2.0.1"));
        assert!(c.header("Ms-Cv").is_some(), "{}", c.name);
        if c.is_wire() {
            let length: usize = c.header("Content-Length").unwrap().parse().unwrap();
            assert_eq!(length, c.body.len(), "{}: the wire form's length", c.name);
        }
    }
}

#[test]
fn the_first_package_is_what_field_notes_say() {
    let c = real_windows::load("syncml-device")
        .unwrap()
        .into_iter()
        .find(|c| c.name == "fleetpoc-ngrok-08-s1-m1.wire")
        .unwrap();
    let m = decode(&c.body).unwrap();
    let names: Vec<&str> = m.body.commands.iter().map(Command::name).collect();
    assert_eq!(names, ["Alert", "Alert", "Replace"]);
    // No MaxMsgSize, no credentials, CmdIDs from 2.
    assert!(m.header.cred.is_none());
    assert_eq!(m.body.commands[0].cmd_id().unwrap().as_str(), "2");
}

#[test]
fn every_real_server_reply_decodes() {
    let captures = real_windows::load("syncml-server").unwrap();
    assert!(!captures.is_empty());
    for c in captures {
        decode(&c.body).unwrap_or_else(|e| panic!("{}: {e}", c.name));
    }
}
