//! Real Windows requests (the testkit's `real_windows` corpus, with its PROVENANCE),
//! replayed against the endpoint with their published paths and headers: each gets the
//! answer the protocol defines for it here, and a real device's enrollment request and
//! first management message (its credential swapped for an Entra token, its server name
//! for ours) enroll and manage it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Answer, NOW, URL, base64_cert, endpoint_with, send, send_at};
use winmdm_endpoint::{Input, Store as _, TermsOfUseBlob};
use winmdm_syncml::{Command, decode};
use winmdm_testkit::entra::{ALICE, AccessToken, CONTOSO, KEY_1};
use winmdm_testkit::real_windows::{self, Capture};
use winmdm_testkit::requests;

/// `c`'s published request headers, without the tunnel's additions and the length (the
/// replayed body may be the re-indented form).
fn headers(c: &Capture) -> Vec<(String, String)> {
    c.headers
        .as_deref()
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.starts_with("X-Forwarded") && !k.eq_ignore_ascii_case("content-length"))
        .collect()
}

fn replay_with(
    ep: &winmdm_endpoint::Endpoint,
    c: &Capture,
    method: &str,
    body: &str,
    certificate: Option<&[u8]>,
) -> Answer {
    let h = headers(c);
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let target = c.request_target().expect("a request line");
    send_at(
        ep,
        method,
        target,
        &h,
        body,
        Input::new(NOW).with_client_certificate(certificate),
    )
}

fn wire(kind: &str) -> Vec<Capture> {
    let all: Vec<Capture> = real_windows::load(kind)
        .unwrap()
        .into_iter()
        .filter(Capture::is_wire)
        .collect();
    assert!(!all.is_empty(), "no {kind}");
    all
}

#[test]
fn real_requests_get_the_answers_the_protocol_defines() {
    let (ep, store) = endpoint_with(|_| {});
    // The discovery probe (a GET, no body) and the Discover POST: 200, Federated (the
    // device offers OnPremise and Federated), at the version both speak.
    let probe = std::fs::read_to_string(
        real_windows::dir().join("discovery-request/fleetpoc-ngrok-01-discovery-get.headers.txt"),
    )
    .unwrap();
    let target = probe.lines().next().unwrap().split(' ').nth(1).unwrap();
    assert_eq!(send(&ep, "GET", target, &[], "").status, 200);
    for c in wire("discovery-request") {
        let a = replay_with(&ep, &c, "POST", c.text(), None);
        assert_eq!(a.status, 200, "{}: {}", c.name, a.body);
        assert!(
            a.body.contains("<AuthPolicy>Federated</AuthPolicy>"),
            "{}",
            a.body
        );
        assert!(
            a.body
                .contains("<EnrollmentVersion>4.0</EnrollmentVersion>"),
            "{}",
            a.body
        );
        assert!(
            a.body
                .contains(&format!("{URL}/EnrollmentServer/Enrollment.svc")),
            "{}",
            a.body
        );
    }
    // GetPolicies and enrollment with on-premise credentials (a UsernameToken): this
    // endpoint is Federated, so the MS-MDE2 authentication fault, nothing stored.
    for c in wire("policy-request")
        .into_iter()
        .chain(wire("enroll-request"))
    {
        let a = replay_with(&ep, &c, "POST", c.text(), None);
        assert_eq!(a.status, 500, "{}: {}", c.name, a.body);
        assert!(
            a.body.contains("<s:Value>s:Authentication</s:Value>"),
            "{}: {}",
            c.name,
            a.body
        );
    }
    assert_eq!(store.devices().unwrap().len(), 0);
    // Management messages from a device this server never enrolled: 401, with a reason.
    for c in wire("syncml-device") {
        let a = replay_with(&ep, &c, "POST", c.text(), None);
        assert_eq!(a.status, 401, "{}: {}", c.name, a.body);
    }
}

#[test]
fn a_real_enrollment_request_and_first_session_enroll_and_manage_the_device() {
    let (ep, store) = endpoint_with(|c| c.terms_of_use_blob = TermsOfUseBlob::NotRequired);
    let token = AccessToken::v2(&CONTOSO, &ALICE)
        .issued_at(NOW)
        .signed_with(&KEY_1)
        .sign();
    let real = wire("enroll-request")
        .into_iter()
        .find(|c| c.name == "fleetpoc-ngrok-06-rst.wire")
        .unwrap();
    // The device's own request (its CSR, SHA-1-signed as Windows 10 signs it, and its
    // context items), with an Entra token where it had on-premise credentials.
    let text = real.text();
    let start = text.find("<wsse:Security").unwrap();
    let end = text.find("</wsse:Security>").unwrap() + "</wsse:Security>".len();
    let body = format!(
        "{}{}{}",
        &text[..start],
        requests::security_header(&token),
        &text[end..]
    );
    let answer = replay_with(&ep, &real, "POST", &body, None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let doc = winmdm_enroll::issue::provisioning_doc_of(answer.body.as_bytes()).unwrap();
    let certificate = base64_cert(&doc);
    // Recorded under the GUID Windows' spelling names: its in-memory bytes, a random
    // (version 4) GUID, not the text-order reading.
    let device = "e854b9b5-bc1f-4eb9-b79b-d08be625f4ee";
    assert!(
        store.device(device).unwrap().is_some(),
        "{:?}",
        store.devices().unwrap()
    );
    assert_eq!(store.devices().unwrap().len(), 1);

    // Its first management message, as it went over the wire, to our address.
    let first = wire("syncml-device")
        .into_iter()
        .find(|c| c.name == "fleetpoc-ngrok-08-s1-m1.wire")
        .unwrap();
    let message = first
        .text()
        .replace("https://windows.fleetdm.ngrok.io", URL);
    let reply = replay_with(&ep, &first, "POST", &message, Some(&certificate));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = decode(reply.body.as_bytes()).unwrap();
    // The server says how much it reads (this device sent no MaxMsgSize of its own).
    assert_eq!(
        reply.header.meta.as_ref().and_then(|m| m.max_msg_size()),
        Some(524_288)
    );
    // Statuses for the header, both alerts and the DevInfo Replace, in order, then the
    // initial command.
    let statuses: Vec<(String, String)> = reply
        .body
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Status(s) => Some((
                s.cmd.as_ref().map_or("", |c| c.as_str()).trim().to_owned(),
                s.data.as_str().trim().to_owned(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("SyncHdr".into(), "200".into()),
            ("Alert".into(), "200".into()),
            ("Alert".into(), "200".into()),
            ("Replace".into(), "200".into()),
        ],
    );
    assert!(
        reply.body.commands.iter().any(|c| c.name() == "Get"),
        "the initial command is sent"
    );
    // The session is the device's: its check-in is recorded under its record.
    assert!(
        store
            .device(device)
            .unwrap()
            .unwrap()
            .last_checkin
            .is_some()
    );
}
