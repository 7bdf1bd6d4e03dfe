//! Every SyncML sample of the published corpus decodes (defective ones leniently, with
//! the diagnostics their defects call for) and survives a round trip.

use winmdm_syncml::check::check_document;
use winmdm_syncml::{DataKind, Fragment, Limits, decode_fragment, encode_fragment};
use winmdm_testkit::samples;

fn syncml_samples() -> Vec<samples::Sample> {
    samples::load()
        .unwrap()
        .into_iter()
        .filter(|s| s.file_name.contains("syncml"))
        .collect()
}

fn codes(diags: &[winmdm_syncml::Diagnostic]) -> Vec<&'static str> {
    diags.iter().map(|d| d.code).collect()
}

#[test]
fn every_syncml_sample_decodes_and_round_trips() {
    let all = syncml_samples();
    assert_eq!(all.len(), 14, "samples 22–35");
    for s in &all {
        let parts = s.xml_parts();
        assert_eq!(parts.len(), 1, "{}", s.file_name);
        let decoded = check_document(parts[0].as_bytes(), &Limits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", s.file_name));
        // Round trip: encode, decode again, same model.
        let xml = encode_fragment(&decoded.value);
        let again = decode_fragment(xml.as_bytes(), &Limits::default())
            .unwrap_or_else(|e| panic!("{}: re-decoding our output: {e}\n{xml}", s.file_name));
        assert_eq!(again.value, decoded.value, "{}", s.file_name);
        assert!(
            again
                .diagnostics
                .iter()
                .all(|d| d.code != "namespace-whitespace" && d.code != "meta-outside-meta"),
            "{}: our output is clean: {:?}",
            s.file_name,
            again.diagnostics
        );
    }
}

fn diagnostics_of(number: u32) -> Vec<&'static str> {
    let s = samples::get(number).unwrap().unwrap();
    let d = check_document(s.xml_parts()[0].as_bytes(), &Limits::default()).unwrap();
    codes(&d.diagnostics)
}

#[test]
fn defects_are_reported() {
    // Entra doc: xmlns= "syncml:metinf " (trailing space).
    assert!(diagnostics_of(22).contains(&"namespace-whitespace"));
    assert!(diagnostics_of(23).contains(&"namespace-whitespace"));
    // Unenrollment doc: &#39; quotes, syncml:metinfo, duplicate CmdID 2, "..." placeholder.
    let d25 = diagnostics_of(25);
    for code in [
        "doc-artifact",
        "metinf-typo",
        "duplicate-cmdid",
        "stray-text",
    ] {
        assert!(d25.contains(&code), "25 lacks {code}: {d25:?}");
    }
    // App-management doc: Alert without CmdID.
    assert!(diagnostics_of(28).contains(&"missing-cmdid"));
    // MS-MDM §3.2.5.1.5–6: Type outside Meta.
    assert!(diagnostics_of(34).contains(&"meta-outside-meta"));
    assert!(diagnostics_of(35).contains(&"meta-outside-meta"));
    // MS-MDM §4: "./ DevDetail/HwV".
    assert!(diagnostics_of(30).contains(&"locuri-whitespace"));
    // Clean samples stay clean.
    for n in [24, 26, 27, 31, 33] {
        let d = diagnostics_of(n);
        assert!(d.is_empty(), "{n}: {d:?}");
    }
}

/// The first alert of a fragment sample's `SyncBody`, interpreted.
fn first_alert_of(number: u32) -> winmdm_syncml::alerts::KnownAlert {
    let s = samples::get(number).unwrap().unwrap();
    let Fragment::Body(body) = decode_fragment(s.xml_parts()[0].as_bytes(), &Limits::default())
        .unwrap()
        .value
    else {
        panic!("sample {number} is not a SyncBody")
    };
    let winmdm_syncml::Command::Alert(a) = &body.commands[0] else {
        panic!("sample {number} does not start with an Alert")
    };
    winmdm_syncml::alerts::KnownAlert::from_alert(a)
}

#[test]
fn sample_contents_are_read_exactly() {
    use winmdm_syncml::alerts::{KnownAlert, LoginStatus};
    assert_eq!(first_alert_of(34), KnownAlert::SyncType("user".into()));
    assert_eq!(
        first_alert_of(23),
        KnownAlert::LoginStatus(LoginStatus::User)
    );

    let s = samples::get(31).unwrap().unwrap();
    let Fragment::Message(m) = decode_fragment(s.xml_parts()[0].as_bytes(), &Limits::default())
        .unwrap()
        .value
    else {
        panic!()
    };
    let r = winmdm_syncml::status::responses(&m);
    assert_eq!(r.len(), 5, "{r:?}");
    let winmdm_syncml::status::Response::Results(res) = &r[3] else {
        panic!("{r:?}")
    };
    assert_eq!(res.cmd_ref, "4");
    assert_eq!(res.values[0].uri, "./DevDetail/SwV");
    assert_eq!(res.values[0].format.as_deref(), Some("chr"));
    assert!(m.body.commands.iter().all(|c| {
        c.items()
            .iter()
            .all(|i| i.data.as_ref().is_none_or(|d| d.kind == DataKind::Text))
    }));
}

#[test]
fn bench_reference_message_decodes_exactly_and_round_trips() {
    // The message the codec bench measures must decode right.
    let xml = samples::SYNCML_4K_CLIENT.as_bytes();
    let d = winmdm_syncml::decode_with(xml, &Limits::default()).unwrap();
    assert!(d.diagnostics.is_empty(), "{:?}", d.diagnostics);
    let m = d.value;
    assert_eq!(m.header.session_id, "1A");
    assert_eq!(
        m.header.meta.as_ref().unwrap().max_msg_size(),
        Some(512_000)
    );
    let names: Vec<&str> = m.body.commands.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["Alert", "Alert", "Alert", "Replace"]);
    let winmdm_syncml::Command::Alert(token) = &m.body.commands[1] else {
        panic!()
    };
    let winmdm_syncml::alerts::KnownAlert::AadUserToken(t) =
        winmdm_syncml::alerts::KnownAlert::from_alert(token)
    else {
        panic!()
    };
    assert_eq!(t.expose().split('.').count(), 3, "the JWT arrives intact");
    assert!(m.body.is_final);
    assert!(winmdm_syncml::check::check(&m).is_empty());
    assert_eq!(
        winmdm_syncml::decode(winmdm_syncml::encode(&m).as_bytes()).unwrap(),
        m
    );
}
