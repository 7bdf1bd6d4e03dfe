//! `winmdm csr inspect` and `winmdm soap decode` as a user runs them.

use std::io::Write as _;
use std::process::{Command, Stdio};

use winmdm_testkit::{pki, samples};

fn winmdm(args: &[&str], stdin: &[u8]) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_winmdm"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn csr_inspect_pem_der_base64_and_tampered() {
    let (ok, out, _) = winmdm(
        &["csr", "inspect", "-"],
        pki::WINDOWS10_CSR.csr_pem.as_bytes(),
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("sha1WithRSA (OIW") && out.contains("verifies"),
        "{out}"
    );
    assert!(out.contains(&format!("device ID:  {}", pki::WINDOWS10_CSR.device_id)));
    let (ok, out, _) = winmdm(&["csr", "inspect", "-"], pki::WINDOWS11_CSR.csr_der);
    assert!(ok && out.contains("Windows DeviceID"), "{out}");
    let b64 = winmdm_cli::enroll::b64(pki::DEVICE_P256_CSR.csr_der);
    let (ok, out, _) = winmdm(&["csr", "inspect", "-"], b64.as_bytes());
    assert!(ok && out.contains("ECDSA P-256"), "{out}");
    let mut tampered = pki::WINDOWS11_CSR.csr_der.to_vec();
    let n = tampered.len() - 1;
    tampered[n] ^= 1;
    let (ok, out, _) = winmdm(&["csr", "inspect", "-"], &tampered);
    assert!(!ok, "a bad signature exits 1");
    assert!(out.contains("DOES NOT VERIFY"), "{out}");
    let (ok, _, err) = winmdm(&["csr", "inspect", "-"], b"hello");
    assert!(!ok && err.contains("winmdm csr inspect"), "{err}");
}

#[test]
fn soap_decode_requests_and_faults() {
    let rst = samples::get(11).unwrap().unwrap().body;
    let (ok, out, _) = winmdm(&["soap", "decode", "-"], rst.as_bytes());
    assert!(ok, "{out}");
    assert!(
        out.contains("RequestSecurityToken Issue") && out.contains("MAC = CC:CC:CC:CC:CC:CC"),
        "{out}"
    );
    assert!(
        out.contains("EnrollmentData = [54 bytes]") && !out.contains("3J4KLJ9"),
        "{out}"
    );
    let fault = samples::get(18).unwrap().unwrap().body;
    let (ok, out, _) = winmdm(&["soap", "decode", "-"], fault.as_bytes());
    assert!(
        ok && out.contains("FAULT s:receiver / s:authorization")
            && out.contains("errortype:  devicecapreached"),
        "{out}"
    );
    let discover = samples::get(5).unwrap().unwrap().body;
    let (ok, out, _) = winmdm(&["soap", "decode", "-"], discover.as_bytes());
    assert!(
        ok && out.contains("Discover: email Some(\"user@contoso.com\")"),
        "{out}"
    );
    let (ok, _, _) = winmdm(&["soap", "decode", "-"], b"<nope/>");
    assert!(!ok);
}
