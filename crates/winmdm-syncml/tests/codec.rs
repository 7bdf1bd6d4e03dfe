//! Codec behaviour a server relies on.

use winmdm_syncml::alerts::{self, KnownAlert, LoginStatus, UserToken};
use winmdm_syncml::check::{check, check_document, has_errors};
use winmdm_syncml::status::{self, Response};
use winmdm_syncml::*;

const HDR: &str = "<SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>https://mdm.example/ManagementServer/MDM.svc</LocURI></Target><Source><LocURI>dev-1</LocURI></Source></SyncHdr>";

fn msg(body: &str) -> String {
    format!("<SyncML xmlns=\"SYNCML:SYNCML1.2\">{HDR}<SyncBody>{body}<Final/></SyncBody></SyncML>")
}

fn dec(body: &str) -> SyncMl {
    decode(msg(body).as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn refuses_dtds_and_undefined_entities() {
    let dtd = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE SyncML [<!ENTITY x \"boom\">]>{}",
        msg("")
    );
    assert_eq!(decode(dtd.as_bytes()), Err(DecodeError::DtdNotAllowed));
    let ent = msg("<Get><CmdID>1</CmdID><Item><Target><LocURI>&x;</LocURI></Target></Item></Get>");
    assert!(
        matches!(decode(ent.as_bytes()), Err(DecodeError::UnknownEntity { name }) if name == "x")
    );
    // Predefined entities and character references are expanded.
    let ok = dec(
        "<Get><CmdID>1</CmdID><Item><Target><LocURI>./a&amp;b&#47;c&#x3C;</LocURI></Target></Item></Get>",
    );
    assert_eq!(
        ok.body.commands[0].items()[0]
            .target
            .as_ref()
            .unwrap()
            .loc_uri,
        "./a&b/c<"
    );
}

/// XML's `Char` production holds for raw characters as for references: a NUL byte in a
/// value was accepted while `&#0;` was refused.
#[test]
fn characters_xml_forbids_are_refused_raw_too() {
    let get = |uri: &str| {
        msg(&format!(
            "<Get><CmdID>1</CmdID><Item><Target><LocURI>{uri}</LocURI></Target></Item></Get>"
        ))
    };
    assert!(matches!(
        decode(get("./a&#0;b").as_bytes()),
        Err(DecodeError::Xml { .. })
    ));
    let attribute = msg(
        "<Get><CmdID>1</CmdID><Item><Data xmlns:msft=\"http://schemas.microsoft.com/MobileDevice/MDM\" msft:originalerror=\"0x8&#1;\">1</Data></Item></Get>",
    );
    assert!(
        matches!(
            decode(attribute.as_bytes()),
            Err(DecodeError::NotXmlChar { .. })
        ),
        "{attribute}"
    );
    for reference in ["&#1;", "&#x1F;", "&#xB;", "&#xFFFE;", "&#65535;"] {
        let target = get(&format!("./a{reference}b"));
        assert!(
            matches!(
                decode(target.as_bytes()),
                Err(DecodeError::NotXmlChar { .. })
            ),
            "{reference}"
        );
        let data = msg(&format!(
            "<Get><CmdID>1</CmdID><Item><Data>x{reference}</Data></Item></Get>"
        ));
        assert!(
            matches!(decode(data.as_bytes()), Err(DecodeError::NotXmlChar { .. })),
            "Data {reference}"
        );
    }
    assert_eq!(dec("<Get><CmdID>1</CmdID><Item><Target><LocURI>./a&#9;&#xA;b</LocURI></Target></Item></Get>").body.commands.len(), 1);
    for (raw, code_point) in [
        ("./a\0b", 0u32),
        ("./a\u{1}b", 1),
        ("./a\u{b}b", 0xB),
        ("./a\u{1f}b", 0x1F),
        ("./a\u{fffe}b", 0xFFFE),
        ("./a\u{ffff}b", 0xFFFF),
    ] {
        let doc = get(raw);
        let at = doc.find("./a").unwrap() as u64 + 3;
        let err = decode(doc.as_bytes()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::NotXmlChar {
                position: at,
                code_point
            },
            "{raw:?}"
        );
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
    }
    // Anywhere: in an attribute value, a comment, CDATA.
    for doc in [
        msg(
            "<Get><CmdID>1</CmdID><Meta><Type xmlns=\"syncml:metinf\" a=\"\0\">t</Type></Meta></Get>",
        ),
        msg("<!-- \u{1} --><Get><CmdID>1</CmdID></Get>"),
        msg("<Get><CmdID>1</CmdID><Item><Data><![CDATA[\u{8}]]></Data></Item></Get>"),
    ] {
        assert!(
            matches!(decode(doc.as_bytes()), Err(DecodeError::NotXmlChar { .. })),
            "{doc}"
        );
    }
    // Tab, line feed and carriage return, and the rest of Unicode, are characters.
    let ok = dec(
        "<Get><CmdID>1</CmdID><Item><Target><LocURI>./a\tb\u{fffd}\u{10000}</LocURI></Target></Item></Get>",
    );
    assert_eq!(
        ok.body.commands[0].items()[0]
            .target
            .as_ref()
            .unwrap()
            .loc_uri,
        "./a\tb\u{fffd}\u{10000}"
    );
}

#[test]
fn wbxml_empty_utf8_and_errors_map_to_status_codes() {
    let wbxml = [0x02u8, 0x00, 0x00, 0x6A, 0x1D, 0x2D];
    assert_eq!(decode(&wbxml), Err(DecodeError::Wbxml));
    assert_eq!(
        DecodeError::Wbxml.status_code(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(decode(b"  \n"), Err(DecodeError::Empty));
    assert!(matches!(
        decode(b"<SyncML xmlns=\"SYNCML:SYNCML1.2\">\xff</SyncML>"),
        Err(DecodeError::Xml { .. })
    ));
    assert!(matches!(
        decode(b"<SyncML><SyncHdr>"),
        Err(DecodeError::Xml { .. })
    ));
    assert!(matches!(
        decode(format!("{}<x/>", msg("")).as_bytes()),
        Err(DecodeError::Xml { .. })
    ));
    assert!(matches!(
        decode(b"<Foo/>"),
        Err(DecodeError::UnexpectedRoot { .. })
    ));
    assert!(matches!(
        decode(b"<SyncML/>"),
        Err(DecodeError::Missing {
            name: "SyncHdr",
            ..
        })
    ));
    let e = decode(b"<SyncML><SyncHdr></SyncBody></SyncML>").unwrap_err();
    assert_eq!(e.status_code(), StatusCode::BAD_REQUEST);
}

#[test]
fn limits_are_enforced() {
    let big = msg(
        &"<Get><CmdID>1</CmdID><Item><Target><LocURI>x</LocURI></Target></Item></Get>".repeat(50),
    );
    let limits = Limits::default().max_bytes(100);
    assert!(matches!(
        decode_with(big.as_bytes(), &limits),
        Err(DecodeError::TooLarge { .. })
    ));
    assert_eq!(
        DecodeError::TooLarge { len: 1, max: 0 }.status_code(),
        StatusCode::REQUEST_ENTITY_TOO_LARGE
    );
    let limits = Limits::default().max_commands(10);
    assert!(matches!(
        decode_with(big.as_bytes(), &limits),
        Err(DecodeError::TooManyCommands { max: 10 })
    ));
    let limits = Limits::default().max_items(3);
    assert!(matches!(
        decode_with(big.as_bytes(), &limits),
        Err(DecodeError::TooManyItems { max: 3 })
    ));
    let deep = msg(&format!(
        "{}{}",
        "<Atomic><CmdID>1</CmdID>".repeat(40),
        "</Atomic>".repeat(40)
    ));
    assert!(matches!(
        decode(deep.as_bytes()),
        Err(DecodeError::TooDeep { max: 32 })
    ));
    assert!(decode_with(deep.as_bytes(), &Limits::default().max_depth(64)).is_ok());
}

#[test]
fn bom_crlf_and_prefixes() {
    let crlf = msg("<Replace><CmdID>1</CmdID><Item><Source><LocURI>./a</LocURI></Source><Data>line1\r\nline2</Data></Item></Replace>").replace("><", ">\r\n<");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(crlf.as_bytes());
    let m = decode(&bytes).unwrap();
    assert_eq!(m.body.commands[0].items()[0].data_str(), "line1\nline2");
    let prefixed = "<s:SyncML xmlns:s=\"SYNCML:SYNCML1.2\" xmlns:m=\"syncml:metinf\"><s:SyncHdr><s:VerDTD>1.2</s:VerDTD><s:VerProto>DM/1.2</s:VerProto><s:SessionID>1</s:SessionID><s:MsgID>1</s:MsgID><s:Target><s:LocURI>t</s:LocURI></s:Target><s:Source><s:LocURI>s</s:LocURI></s:Source><s:Meta><m:MaxMsgSize>512000</m:MaxMsgSize></s:Meta></s:SyncHdr><s:SyncBody><s:Alert><s:CmdID>1</s:CmdID><s:Data>1201</s:Data></s:Alert><s:Final/></s:SyncBody></s:SyncML>";
    let d = decode_with(prefixed.as_bytes(), &Limits::default()).unwrap();
    assert!(d.diagnostics.is_empty(), "{:?}", d.diagnostics);
    assert_eq!(
        d.value.header.meta.as_ref().unwrap().max_msg_size(),
        Some(512_000)
    );
    assert_eq!(d.value.body.commands[0].name(), "Alert");
    // An element from another namespace is kept verbatim, in order, and re-emitted.
    let foreign = dec(
        "<Alert><CmdID>1</CmdID><Data>1201</Data></Alert><x:Ext xmlns:x=\"urn:other\"><x:v>1</x:v></x:Ext><Get><CmdID>2</CmdID><Item><Target><LocURI>./b</LocURI></Target></Item></Get>",
    );
    let Command::Unknown(u) = &foreign.body.commands[1] else {
        panic!("{:?}", foreign.body.commands)
    };
    assert_eq!(u.xml, "<x:Ext xmlns:x=\"urn:other\"><x:v>1</x:v></x:Ext>");
    assert!(encode(&foreign).contains(&u.xml));
    assert_eq!(foreign.body.commands[2].name(), "Get");
}

#[test]
fn data_kinds_round_trip_exactly() {
    let xml_data = "<wap-provisioningdoc version=\"1.1\"><characteristic type=\"CertificateStore\"><parm name=\"x\" value=\"a&amp;b\"/></characteristic></wap-provisioningdoc>";
    let m = dec(&format!(
        "<Replace><CmdID>1</CmdID><Item><Target><LocURI>./x</LocURI></Target><Data>{xml_data}</Data></Item>\
         <Item><Target><LocURI>./y</LocURI></Target><Data><![CDATA[<raw & stuff>]]></Data></Item>\
         <Item><Target><LocURI>./z</LocURI></Target><Data>a &lt; b &amp; &quot;c&quot;</Data></Item>\
         <Item><Target><LocURI>./e</LocURI></Target><Data/></Item></Replace>"
    ));
    let items = m.body.commands[0].items();
    assert_eq!(items[0].data.as_ref().unwrap().kind, DataKind::Xml);
    assert_eq!(items[0].data_str(), xml_data, "embedded XML is byte-exact");
    assert_eq!(items[1].data.as_ref().unwrap().kind, DataKind::CData);
    assert_eq!(items[1].data_str(), "<raw & stuff>");
    assert_eq!(items[2].data_str(), "a < b & \"c\"");
    assert_eq!(items[3].data_str(), "");
    let out = encode(&m);
    assert!(out.contains(xml_data));
    assert!(out.contains("<![CDATA[<raw & stuff>]]>"));
    assert!(out.contains("a &lt; b &amp; &quot;c&quot;"));
    assert_eq!(decode(out.as_bytes()).unwrap(), m);
    // A CDATA value containing the section terminator survives.
    let mut tricky = m.clone();
    if let Command::Replace(ic) = &mut tricky.body.commands[0] {
        ic.items[1].data = Some(Data {
            value: "x]]>y".into(),
            kind: DataKind::CData,
            original_error: None,
        });
    }
    assert_eq!(decode(encode(&tricky).as_bytes()).unwrap(), tricky);
}

#[test]
fn input_in_any_order_output_in_recommended_order() {
    let m = dec(
        "<Status><Data>200</Data><Cmd>Get</Cmd><CmdRef>4</CmdRef><MsgRef>1</MsgRef><CmdID>2</CmdID><TargetRef>./a</TargetRef></Status>\
                 <Results><Item><Source><LocURI>./a</LocURI></Source><Data>v</Data></Item><CmdRef>4</CmdRef><CmdID>3</CmdID></Results>",
    );
    let Command::Status(s) = &m.body.commands[0] else {
        panic!()
    };
    assert_eq!(s.code(), Some(StatusCode::OK));
    assert_eq!(s.cmd_ref.as_deref(), Some("4"));
    let out = encode_command(&m.body.commands[0]);
    assert_eq!(
        out,
        "<Status><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>4</CmdRef><Cmd>Get</Cmd><TargetRef>./a</TargetRef><Data>200</Data></Status>"
    );
    let Response::Results(r) = &status::responses(&m)[1] else {
        panic!()
    };
    assert_eq!(r.msg_ref, "1", "absent MsgRef means 1");
    assert_eq!(r.values[0].data, "v");
}

#[test]
fn msft_original_error_and_type_outside_meta() {
    let m = dec(
        "<Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>3</CmdRef><Cmd>Replace</Cmd><Data>500</Data><Item><Data msft:originalerror=\"0x82B00006\" xmlns:msft=\"http://schemas.microsoft.com/MobileDevice/MDM\">x</Data></Item></Status>",
    );
    let Response::Status(s) = &status::responses(&m)[0] else {
        panic!()
    };
    assert_eq!(s.original_error.as_deref(), Some("0x82B00006"));
    let out = encode(&m);
    assert!(
        out.contains("<SyncBody xmlns:msft=\"http://schemas.microsoft.com/MobileDevice/MDM\">"),
        "{out}"
    );
    assert!(out.contains("<Data msft:originalerror=\"0x82B00006\">x</Data>"));
    assert_eq!(decode(out.as_bytes()).unwrap(), m);

    let d = decode_with(msg("<Alert><CmdID>1</CmdID><Data>1224</Data><Item><Meta></Meta><Type xmlns=\"syncml:metinf\">com.microsoft.mdm.synctype</Type><Data>device</Data></Item></Alert>").as_bytes(), &Limits::default()).unwrap();
    assert_eq!(d.diagnostics[0].code, "meta-outside-meta");
    let Command::Alert(a) = &d.value.body.commands[0] else {
        panic!()
    };
    assert_eq!(
        KnownAlert::from_alert(a),
        KnownAlert::SyncType("device".into())
    );
}

#[test]
fn microsoft_alerts() {
    let token = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln";
    let cases: Vec<(Command, KnownAlert)> = vec![
        (
            alerts::client_initiated(1u32),
            KnownAlert::ClientInitiatedSession,
        ),
        (
            Command::alert(1u32, AlertCode::SERVER_INITIATED_MGMT),
            KnownAlert::ServerInitiatedSession,
        ),
        (
            Command::alert(1u32, AlertCode::NEXT_MESSAGE),
            KnownAlert::NextMessage,
        ),
        (
            Command::alert(1u32, AlertCode::SESSION_ABORT),
            KnownAlert::SessionAbort,
        ),
        (
            Command::alert(1u32, AlertCode::NO_END_OF_DATA),
            KnownAlert::NoEndOfData,
        ),
        (
            alerts::login_status(1u32, LoginStatus::User),
            KnownAlert::LoginStatus(LoginStatus::User),
        ),
        (
            alerts::login_status(1u32, LoginStatus::None),
            KnownAlert::LoginStatus(LoginStatus::None),
        ),
        (
            alerts::aad_user_token(1u32, token),
            KnownAlert::AadUserToken(UserToken(token.into())),
        ),
        (
            Command::alert(1u32, AlertCode(1234)),
            KnownAlert::Other(Some(AlertCode(1234))),
        ),
    ];
    for (cmd, want) in cases {
        // Through the wire and back.
        let m = SyncMl {
            body: SyncBody {
                commands: vec![cmd],
                is_final: true,
            },
            ..SyncMl::default()
        };
        let back = decode(encode(&m).as_bytes()).unwrap();
        let Command::Alert(a) = &back.body.commands[0] else {
            panic!()
        };
        assert_eq!(KnownAlert::from_alert(a), want);
    }
    for (ty, data, want) in [
        (
            alerts::BOOTSTRAP_SYNC_TYPE,
            "1",
            KnownAlert::BootstrapSync("1".into()),
        ),
        (
            alerts::ODJ_SYNC_TYPE,
            "start",
            KnownAlert::OdjSync("start".into()),
        ),
        (
            alerts::DEVICE_PREP_SYNC_TYPE,
            "PendingProvisioning",
            KnownAlert::DevicePrepSync("PendingProvisioning".into()),
        ),
        (
            alerts::REQUEST_PENDING_TYPE,
            "1",
            KnownAlert::RequestPending,
        ),
        (
            "com.example/Other",
            "x",
            KnownAlert::ClientEvent {
                r#type: Some("com.example/Other".into()),
                data: "x".into(),
            },
        ),
    ] {
        let m = dec(&format!(
            "<Alert><CmdID>1</CmdID><Data>1224</Data><Item><Meta><Type xmlns=\"syncml:metinf\">{ty}</Type></Meta><Data>{data}</Data></Item></Alert>"
        ));
        let Command::Alert(a) = &m.body.commands[0] else {
            panic!()
        };
        assert_eq!(KnownAlert::from_alert(a), want, "{ty}");
    }
    assert_eq!(LoginStatus::parse(" User "), LoginStatus::User);
    assert_eq!(LoginStatus::parse("Others"), LoginStatus::Others);
    assert_eq!(
        LoginStatus::parse("guest"),
        LoginStatus::Unknown("guest".into())
    );
    assert!(
        !format!("{:?}", UserToken(token.into())).contains("eyJ"),
        "tokens never print"
    );

    let Command::Alert(u) = alerts::unenroll_request(4u32) else {
        panic!()
    };
    let KnownAlert::Generic(g) = KnownAlert::from_alert(&u) else {
        panic!()
    };
    assert!(g[0].is_unenroll_request());
    let Command::Alert(r) = alerts::app_result(
        5u32,
        "./User/Vendor/MSFT/EnterpriseModernAppManagement/AppInstallation/x/HostedInstall",
        true,
        0,
    ) else {
        panic!()
    };
    let KnownAlert::Generic(g) = KnownAlert::from_alert(&r) else {
        panic!()
    };
    assert_eq!(g[0].app_result_success(), Some(true));
    assert!(g[0].source.as_deref().unwrap().ends_with("HostedInstall"));
    let other = KnownAlert::from_alert(&Alert {
        data: Some("12x4".into()),
        ..Alert::default()
    });
    assert_eq!(other, KnownAlert::Other(None));
}

#[test]
fn statuses_owed_in_order() {
    let m = dec("<Alert><CmdID>1</CmdID><Data>1201</Data></Alert>\
                 <Status><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><Data>200</Data></Status>\
                 <Atomic><CmdID>3</CmdID><Replace><CmdID>4</CmdID><Item><Target><LocURI>./a</LocURI></Target><Data>1</Data></Item></Replace></Atomic>\
                 <Get><CmdID>5</CmdID><NoResp/><Item><Target><LocURI>./b</LocURI></Target></Item></Get>\
                 <Results><CmdID>6</CmdID><CmdRef>9</CmdRef><Item><Source><LocURI>./c</LocURI></Source><Data>v</Data></Item></Results>");
    let owed = status::statuses_for(&m, |c| {
        if c.name() == "Replace" {
            StatusCode::COMMAND_FAILED
        } else {
            StatusCode::OK
        }
    });
    let got: Vec<_> = owed
        .iter()
        .map(|s| {
            (
                s.cmd_ref.as_deref().unwrap().to_owned(),
                s.cmd.as_deref().unwrap().to_owned(),
                s.data.to_string(),
            )
        })
        .collect();
    let want = [
        ("0", "SyncHdr", "200"),
        ("1", "Alert", "200"),
        ("3", "Atomic", "200"),
        ("4", "Replace", "500"),
        ("6", "Results", "200"),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0.as_str(), g.1.as_str(), g.2.as_str()), w);
    }
    assert_eq!(
        owed[0].target_ref,
        ["https://mdm.example/ManagementServer/MDM.svc"]
    );
    assert_eq!(owed[0].source_ref, ["dev-1"]);
    let chal = status::challenge_status(&m, StatusCode::MISSING_CREDENTIALS, "bm9uY2U=");
    assert_eq!(
        chal.chal.as_ref().unwrap().meta.next_nonce.as_deref(),
        Some("bm9uY2U=")
    );
    let mut cmds = vec![
        Command::get(0u32, ["./a"]),
        Command::atomic(
            0u32,
            vec![Command::get(0u32, ["./b"]), Command::get(0u32, ["./c"])],
        ),
        Command::get(0u32, ["./d"]),
    ];
    assert_eq!(status::assign_cmd_ids(&mut cmds, 2), 7);
    let ids: Vec<String> = cmds
        .iter()
        .map(|c| c.cmd_id().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["2", "3", "6"]);
    assert_eq!(cmds[1].children()[1].cmd_id().unwrap().as_str(), "5");
}

#[test]
fn conformance_checks() {
    let mut m = dec(
        "<Get><CmdID>0</CmdID><Item><Target><LocURI>/abs</LocURI></Target></Item></Get>\
                     <Get><CmdID>2</CmdID><Item><Target><LocURI>./ a</LocURI></Target></Item></Get>\
                     <Get><CmdID>2</CmdID></Get>\
                     <Exec><CmdID>3</CmdID><Item><Target><LocURI>./x</LocURI></Target></Item><Item><Target><LocURI>./y</LocURI></Target></Item></Exec>\
                     <Status><CmdID>4</CmdID><Data>abc</Data></Status>\
                     <Alert><CmdID>5</CmdID><Data>nope</Data></Alert>",
    );
    m.header.msg_id = String::new().into();
    m.header.source = None;
    let d = check(&m);
    let codes: Vec<&str> = d.iter().map(|d| d.code).collect();
    for code in [
        "zero-cmdid",
        "locuri-absolute",
        "locuri-whitespace",
        "duplicate-cmdid",
        "no-items",
        "exec-items",
        "status-without-cmdref",
        "status-without-msgref",
        "status-code",
        "alert-code",
        "missing-msgid",
        "missing-address",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    assert!(has_errors(&d));
    let clean = dec("<Alert><CmdID>1</CmdID><Data>1201</Data></Alert>");
    assert!(check(&clean).is_empty(), "{:?}", check(&clean));
    // check_document repairs documentation artefacts and says so.
    let doc = msg("<Alert><CmdID>1</CmdID><Data>1201</Data></Alert>").replace(
        "xmlns=\"SYNCML:SYNCML1.2\"",
        "xmlns=&#39;SYNCML:SYNCML1.2&#39;",
    );
    assert!(decode(doc.as_bytes()).is_err());
    let d = check_document(doc.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(d.diagnostics[0].code, "doc-artifact");
}

/// Every element the DTD allows once is refused when repeated: two `SyncBody`, two
/// `Cred` (the last one won, so a wrong first `Cred` was invisible to a filter reading the
/// first), two `Source`, two `Data` in a `Status`… A reader keeping the first copy and one
/// keeping the last would otherwise see different messages.
#[test]
fn repeated_singletons_are_refused() {
    let hdr = |extra: &str| {
        format!(
            "<SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>https://mdm.example</LocURI></Target><Source><LocURI>dev</LocURI></Source>{extra}</SyncHdr>"
        )
    };
    let cred = "<Cred><Meta><Format xmlns=\"syncml:metinf\">b64</Format><Type xmlns=\"syncml:metinf\">syncml:auth-md5</Type></Meta><Data>AAAA</Data></Cred>";
    let body = "<SyncBody><Final/></SyncBody>";
    let doc = |h: String, b: &str| format!("<SyncML xmlns=\"SYNCML:SYNCML1.2\">{h}{b}</SyncML>");
    // Sanity: one of each decodes.
    winmdm_syncml::decode(doc(hdr(cred), body).as_bytes()).unwrap();
    let cases = [
        (doc(hdr(""), &format!("{body}{body}")), "SyncBody", "SyncML"),
        (
            format!(
                "<SyncML xmlns=\"SYNCML:SYNCML1.2\">{}{}{body}</SyncML>",
                hdr(""),
                hdr("")
            ),
            "SyncHdr",
            "SyncML",
        ),
        (doc(hdr(&format!("{cred}{cred}")), body), "Cred", "SyncHdr"),
        (
            doc(hdr("<Source><LocURI>other</LocURI></Source>"), body),
            "Source",
            "SyncHdr",
        ),
        (
            doc(hdr("<SessionID>2</SessionID>"), body),
            "SessionID",
            "SyncHdr",
        ),
        (doc(hdr("<MsgID>9</MsgID>"), body), "MsgID", "SyncHdr"),
        (
            doc(
                hdr("<Meta><MaxMsgSize xmlns=\"syncml:metinf\">1</MaxMsgSize></Meta><Meta/>"),
                body,
            ),
            "Meta",
            "SyncHdr",
        ),
        (
            doc(
                hdr(&cred.replace("<Data>AAAA</Data>", "<Data>AAAA</Data><Data>BBBB</Data>")),
                body,
            ),
            "Data",
            "Cred",
        ),
        (
            doc(
                hdr(""),
                "<SyncBody><Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><Data>200</Data><Data>500</Data></Status><Final/></SyncBody>",
            ),
            "Data",
            "Status",
        ),
        (
            doc(
                hdr(""),
                "<SyncBody><Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>2</CmdRef><CmdRef>3</CmdRef><Cmd>Get</Cmd><Data>200</Data></Status><Final/></SyncBody>",
            ),
            "CmdRef",
            "Status",
        ),
        (
            doc(
                hdr("").replace(
                    "<LocURI>dev</LocURI>",
                    "<LocURI>dev</LocURI><LocURI>x</LocURI>",
                ),
                body,
            ),
            "LocURI",
            "Target/Source",
        ),
    ];
    // The fuzz oracle passes the well-formed message and catches every duplicate.
    winmdm_syncml::fuzzing::assert_accepted(doc(hdr(cred), body).as_bytes());
    for (xml, name, parent) in &cases {
        let caught = std::panic::catch_unwind(|| {
            winmdm_syncml::fuzzing::assert_accepted(xml.as_bytes());
        });
        assert!(caught.is_err(), "the oracle passed two {name} in {parent}");
    }
    for (xml, name, parent) in cases {
        match winmdm_syncml::decode(xml.as_bytes()) {
            Err(winmdm_syncml::DecodeError::Duplicate { name: n, parent: p }) => {
                assert_eq!((n, p), (name, parent), "{xml}");
            }
            other => panic!("{name} in {parent}: {other:?}\n{xml}"),
        }
    }
    // The list is written down.
    assert!(
        winmdm_syncml::SINGLETONS
            .iter()
            .any(|(p, c)| *p == "SyncHdr" && c.contains(&"Cred"))
    );
}
