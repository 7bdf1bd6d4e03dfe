//! `winmdm syncml decode` and `winmdm syncml check` on the published samples.

use std::process::Command;

fn sample_file(number: u32) -> (String, String) {
    // The CLI reads files as they are; strip the corpus' provenance line into a temp file.
    let s = winmdm_testkit::samples::get(number).unwrap().unwrap();
    let dir = std::env::temp_dir().join(format!("winmdm-cli-syncml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{number}.xml"));
    let part = s.xml_parts().remove(0);
    std::fs::write(&path, &part).unwrap();
    (path.display().to_string(), part)
}

fn winmdm(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_winmdm"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn decode_prints_a_readable_transcript() {
    let (path, _) = sample_file(29);
    let (ok, out, err) = winmdm(&["syncml", "decode", &path]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("SyncML DM/1.2 session 1 message 1"),
        "{out}"
    );
    assert!(
        out.contains("Alert 1224 CLIENT_EVENT: LoginStatus user"),
        "{out}"
    );
    assert!(out.contains("LoginStatus user"), "{out}");
    assert!(
        out.contains("./DevInfo/Man = Microsoft Corporation"),
        "{out}"
    );
    let (ok, json, _) = winmdm(&["syncml", "decode", "--json", &path]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["document"]["Message"]["header"]["msg_id"], "1");
    assert_eq!(
        v["document"]["Message"]["body"]["commands"][1]["Replace"]["items"][1]["data"]["value"],
        "Microsoft Corporation"
    );
}

#[test]
fn check_exit_codes_follow_findings() {
    // Clean sample: exit 0.
    let (path, _) = sample_file(31);
    let (ok, out, _) = winmdm(&["syncml", "check", &path]);
    assert!(ok, "{out}");
    assert!(out.starts_with("clean"), "{out}");
    // Only warnings (namespace with a space): exit 0.
    let (path, _) = sample_file(23);
    let (ok, out, _) = winmdm(&["syncml", "check", &path]);
    assert!(ok, "{out}");
    assert!(out.contains("warning: namespace-whitespace"), "{out}");
    // Errors: duplicate CmdID and a documentation artefact (sample 25); a missing CmdID (28).
    let (path, _) = sample_file(25);
    let (ok, out, _) = winmdm(&["syncml", "check", &path]);
    assert!(!ok);
    assert!(out.contains("error: duplicate-cmdid"), "{out}");
    assert!(out.contains("error: doc-artifact"), "{out}");
    let (path, _) = sample_file(28);
    let (ok, out, _) = winmdm(&["syncml", "check", &path]);
    assert!(!ok);
    assert!(out.contains("error: missing-cmdid"), "{out}");
    // Not decodable at all.
    let bad = std::env::temp_dir().join(format!("winmdm-bad-{}.xml", std::process::id()));
    std::fs::write(&bad, "<SyncML><SyncHdr>").unwrap();
    let (ok, out, _) = winmdm(&["syncml", "check", &bad.display().to_string()]);
    assert!(!ok);
    assert!(out.starts_with("error: not decodable"), "{out}");
}

#[test]
fn tokens_are_not_printed_in_text_mode() {
    let xml = winmdm_testkit::samples::SYNCML_4K_CLIENT;
    let path = std::env::temp_dir().join(format!("winmdm-4k-{}.xml", std::process::id()));
    std::fs::write(&path, xml).unwrap();
    let (ok, out, _) = winmdm(&["syncml", "decode", &path.display().to_string()]);
    assert!(ok);
    assert!(out.contains("AADUserToken [token,"), "{out}");
    assert!(!out.contains("eyJ0eXAi"), "{out}");
}

#[test]
fn files_are_read_under_the_same_cap_as_standard_input() {
    // /dev/zero never ends: before the cap it exhausted memory.
    if !std::path::Path::new("/dev/zero").exists() {
        return;
    }
    for command in [["syncml", "decode"], ["syncml", "check"]] {
        let (ok, out, err) = winmdm(&[command[0], command[1], "/dev/zero"]);
        assert!(!ok, "{command:?}");
        assert!(
            (out.clone() + &err).contains("larger than 16 MiB"),
            "{command:?}: {out}{err}"
        );
    }
}

/// Windows 11 answers a `Get` of several nodes with one `Status` per target: the text
/// output says which target each status is for, and the HRESULT behind a failure (the
/// JSON keeps both too).
#[test]
fn decode_shows_per_target_statuses_and_original_errors() {
    let xml = r#"<SyncML xmlns="SYNCML:SYNCML1.2" xmlns:msft="http://schemas.microsoft.com/MobileDevice/MDM"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>4</SessionID><MsgID>2</MsgID><Target><LocURI>https://mdm.example/ManagementServer/MDM.svc</LocURI></Target><Source><LocURI>DB257C3A08778F4FB61E2749066C1F27</LocURI></Source></SyncHdr><SyncBody><Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>5</CmdRef><Cmd>Get</Cmd><TargetRef>./DevDetail/SwV</TargetRef><Data>200</Data></Status><Status><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>5</CmdRef><Cmd>Get</Cmd><TargetRef>./Vendor/MSFT/Missing</TargetRef><Data msft:originalerror="0x80070002">404</Data></Status><Final/></SyncBody></SyncML>"#;
    let dir = std::env::temp_dir().join(format!("winmdm-cli-targets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("targets.xml");
    std::fs::write(&path, xml).unwrap();
    let path = path.display().to_string();
    let (ok, out, err) = winmdm(&["syncml", "decode", &path]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Status for Get 5 of message 1 target ./DevDetail/SwV: 200"),
        "{out}"
    );
    assert!(
        out.contains(
            "Status for Get 5 of message 1 target ./Vendor/MSFT/Missing: 404 NOT_FOUND (original error 0x80070002)"
        ),
        "{out}"
    );
    let (ok, json, _) = winmdm(&["syncml", "decode", "--json", &path]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let status = &v["document"]["Message"]["body"]["commands"][1]["Status"];
    assert_eq!(status["target_ref"][0], "./Vendor/MSFT/Missing");
    assert_eq!(status["original_error"], "0x80070002");
}
