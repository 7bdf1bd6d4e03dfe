//! Real Windows-shaped CSRs: parsed permissively, proof of possession verified, key policy
//! applied, the DeviceID read.

use winmdm_enroll::csr::{self, KeyKind, KeyPolicy};
use winmdm_testkit::pki;

#[test]
fn windows_shaped_requests_parse_and_verify() {
    let p = KeyPolicy::default();
    let w10 = csr::parse(pki::WINDOWS10_CSR.csr_der, &p).unwrap();
    assert_eq!(w10.signature_algorithm, "1.3.14.3.2.29", "OIW sha1WithRSA");
    assert_eq!(w10.key, KeyKind::Rsa(2048));
    assert_eq!(
        w10.common_name.as_deref(),
        Some(
            format!(
                "{}!{}",
                pki::WINDOWS10_ENROLLMENT_GUID,
                pki::WINDOWS10_CSR.device_id
            )
            .as_str()
        )
    );
    assert_eq!(w10.device_id.as_deref(), Some(pki::WINDOWS10_CSR.device_id));
    let w11 = csr::parse(pki::WINDOWS11_CSR.csr_der, &p).unwrap();
    assert_eq!(w11.signature_algorithm, "1.2.840.113549.1.1.11");
    assert_eq!(w11.device_id.as_deref(), Some(pki::WINDOWS11_CSR.device_id));
    assert!(
        w11.extensions
            .iter()
            .any(|(oid, _, _)| oid == csr::DEVICE_ID_EXTENSION_OID)
    );
    let plain = csr::parse(pki::DEVICE_RSA2048_CSR.csr_der, &p).unwrap();
    assert_eq!(plain.device_id, None);
    assert!(plain.spki_der.starts_with(&[0x30]));
}

#[test]
fn key_policy_and_tampering() {
    let strict = KeyPolicy::default();
    let err = csr::parse(pki::DEVICE_P256_CSR.csr_der, &strict).unwrap_err();
    assert_eq!(err.fault().subcode, "s:CertificateRequest");
    let ec = KeyPolicy {
        allow_ecdsa: true,
        ..KeyPolicy::default()
    };
    assert_eq!(
        csr::parse(pki::DEVICE_P256_CSR.csr_der, &ec).unwrap().key,
        KeyKind::P256
    );
    let big = KeyPolicy {
        min_rsa_bits: 3072,
        ..KeyPolicy::default()
    };
    assert!(
        csr::parse(pki::WINDOWS11_CSR.csr_der, &big).is_err(),
        "2048 < 3072"
    );
    // Flip a byte of the signed part (the subject): no proof of possession.
    for csr_der in [pki::WINDOWS10_CSR.csr_der, pki::WINDOWS11_CSR.csr_der] {
        let mut forged = csr_der.to_vec();
        let i = forged.len() / 3;
        forged[i] ^= 0x01;
        assert!(csr::parse(&forged, &KeyPolicy::default()).is_err());
        // The last byte is in the signature.
        let mut forged = csr_der.to_vec();
        let n = forged.len() - 1;
        forged[n] ^= 0x01;
        assert!(csr::parse(&forged, &KeyPolicy::default()).is_err());
    }
    for junk in [&b""[..], b"\x30\x03\x02\x01\x00", &[0u8; 40000][..]] {
        assert!(csr::parse(junk, &KeyPolicy::default()).is_err());
    }
}
