//! The test PKI checked by OpenSSL: every CSR (including the Windows 10 shape with its
//! illegal PrintableString and OIW sha1WithRSA OID) passes `openssl req -verify`, the
//! intermediate chains to the root, and the expired CA is expired.

use std::process::Command;

use winmdm_testkit::{pki, tools};

fn file(stem: &str, ext: &str) -> String {
    format!("{}/testdata/pki/{stem}{ext}", env!("CARGO_MANIFEST_DIR"))
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn every_csr_verifies_with_openssl() {
    if !tools::require_openssl() {
        return;
    }
    for csr in pki::device_csrs() {
        let (ok, text) = openssl(&[
            "req",
            "-in",
            &file(csr.name, ".csr.der"),
            "-inform",
            "DER",
            "-verify",
            "-noout",
        ]);
        assert!(ok && text.contains("verify OK"), "{}: {text}", csr.name);
    }
}

#[test]
fn windows_shapes_are_what_windows_sends() {
    if !tools::require_openssl() {
        return;
    }
    let (ok, win10) = openssl(&[
        "asn1parse",
        "-inform",
        "DER",
        "-in",
        &file("win10", ".csr.der"),
    ]);
    assert!(ok);
    assert!(
        win10.contains(&format!(
            "PRINTABLESTRING   :{}!{}",
            pki::WINDOWS10_ENROLLMENT_GUID,
            pki::WINDOWS10_CSR.device_id
        )),
        "{win10}"
    );
    assert!(
        win10.contains(":sha1WithRSA\n"),
        "OIW OID 1.3.14.3.2.29: {win10}"
    );
    assert!(win10.contains(pki::DEVICE_ID_EXTENSION_OID));
    // The CN ends with a NUL byte (illegal in a PrintableString).
    let der = pki::WINDOWS10_CSR.csr_der;
    let needle = format!("{}\0", pki::WINDOWS10_CSR.device_id);
    assert!(der.windows(needle.len()).any(|w| w == needle.as_bytes()));

    let (ok, win11) = openssl(&["req", "-in", &file("win11", ".csr.pem"), "-noout", "-text"]);
    assert!(ok);
    assert!(win11.contains("sha256WithRSAEncryption"), "{win11}");
    assert!(win11.contains("TLS Web Client Authentication"), "{win11}");
    assert!(win11.contains(pki::DEVICE_ID_EXTENSION_OID), "{win11}");
    let (_, asn1) = openssl(&[
        "asn1parse",
        "-inform",
        "DER",
        "-in",
        &file("win11", ".csr.der"),
    ]);
    assert!(
        asn1.contains(&format!(
            "UTF8STRING        :{}",
            pki::WINDOWS11_CSR.device_id
        )),
        "{asn1}"
    );
}

#[test]
fn ca_chain_and_expired_ca() {
    if !tools::require_openssl() {
        return;
    }
    let root = file("root-ca", ".crt.pem");
    let (ok, text) = openssl(&[
        "verify",
        "-CAfile",
        &root,
        &file("intermediate-ca", ".crt.pem"),
    ]);
    assert!(ok, "{text}");
    let expired = file("expired-ca", ".crt.pem");
    let (ok, text) = openssl(&["verify", "-CAfile", &expired, &expired]);
    assert!(!ok && text.contains("certificate has expired"), "{text}");
}
