//! Real Windows traffic (the testkit's `real_windows` corpus, with its PROVENANCE):
//! every enrollment request a real device sent reads, and reads as what it is; every
//! provisioning document a real device accepted validates against our schema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use winmdm_enroll::{csr, discovery, wstep, xcep};
use winmdm_testkit::real_windows::{self, Capture};

fn load(kind: &str) -> Vec<Capture> {
    let all = real_windows::load(kind).unwrap();
    assert!(!all.is_empty(), "no {kind} in the corpus");
    all
}

/// A GUID as Windows writes it in these captures: 32 upper-case hex digits.
fn windows_hex(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())
}

#[test]
fn real_discover_requests_read_and_are_answered() {
    for c in load("discovery-request") {
        let req = discovery::parse_discover(&c.body).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(
            req.request_version,
            Some(discovery::Version(4, 0)),
            "{}",
            c.name
        );
        assert!(
            req.email_address
                .as_deref()
                .is_some_and(|e| e.contains('@')),
            "{}",
            c.name
        );
        assert_eq!(req.os_edition, Some(72), "{}", c.name);
        assert_eq!(
            req.device_type.as_deref(),
            Some("CIMClient_Windows"),
            "{}",
            c.name
        );
        let config = discovery::DiscoveryConfig::federated(
            "https://mdm.example/EnrollmentServer/Enrollment.svc",
        );
        let answer = discovery::discover_response(&config, &req).unwrap();
        assert!(
            answer.contains("<AuthPolicy>Federated</AuthPolicy>"),
            "{answer}"
        );
        // The request's constant MessageID is echoed.
        assert!(
            answer.contains("748132ec-a575-4329-b01b-6171a9cf8478"),
            "{answer}"
        );
    }
}

#[test]
fn real_get_policies_requests_read() {
    for c in load("policy-request") {
        let req = xcep::parse_get_policies(&c.body).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert!(req.message_id.is_some(), "{}", c.name);
    }
}

#[test]
fn real_enrollment_requests_read_with_their_device_id_and_csr() {
    for c in load("enroll-request") {
        let rst = wstep::parse_rst(&c.body).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let id = rst.context.device_id().expect("a DeviceID item").to_owned();
        assert!(windows_hex(&id), "{}: DeviceID {id}", c.name);
        let der = rst.csr_der().unwrap();
        let (request, signature) = csr::inspect(&der).unwrap();
        assert!(signature.is_ok(), "{}: {signature:?}", c.name);
        assert_eq!(
            request.device_id.as_deref(),
            Some(id.as_str()),
            "{}",
            c.name
        );
        // What the server decides with: Windows' default key.
        csr::parse(&der, &csr::KeyPolicy::default()).unwrap_or_else(|e| panic!("{}: {e}", c.name));
    }
}
