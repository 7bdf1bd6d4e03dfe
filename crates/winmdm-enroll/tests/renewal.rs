//! ROBO renewal and recovery round trips with a PKCS#7 built by the testkit, and every
//! refusal: outside the window, expired, not issued here, tampered, another device, a TLS
//! certificate that is not the signer.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use winmdm_enroll::issue::{self, CertificateSigner, IssuancePolicy, LocalIssuer, Requester};
use winmdm_enroll::renewal::{self, RenewalPolicy};
use winmdm_enroll::wstep::{self, RequestType};
use winmdm_testkit::{pki, samples, tools};
use x509_parser::prelude::FromDer as _;

const NOW: u64 = 1_780_000_000;
const YEAR: u64 = 365 * 86_400;

fn issuer() -> LocalIssuer {
    LocalIssuer::new(
        pki::INTERMEDIATE_CA.cert_der,
        pki::INTERMEDIATE_CA.key_der,
        Vec::new(),
        pki::ROOT_CA.cert_der.to_vec(),
    )
    .unwrap()
}

/// The Windows 11 device's current certificate, issued a year before `NOW + YEAR`.
fn current_certificate() -> Vec<u8> {
    let body = samples::get(11)
        .unwrap()
        .unwrap()
        .body
        .replace(
            "DER format PKCS#10 certificate request in Base64 encoding Insterted Here",
            &STANDARD.encode(pki::WINDOWS11_CSR.csr_der),
        )
        .replace(
            "7BA748C8-703E-4DF2-A74A-92984117346A",
            pki::WINDOWS11_CSR.device_id,
        )
        .replace("<ac:Value>Full</ac:Value>", "<ac:Value>Device</ac:Value>");
    let req = wstep::parse_rst(body.as_bytes()).unwrap();
    let (pending, _) = issue::begin(
        &req,
        &Requester::default(),
        &IssuancePolicy::default(),
        NOW,
        [3; 16],
    )
    .unwrap();
    issuer().sign(&pending.template).unwrap().certificate
}

fn renew_request(pkcs7: &[u8], request_type: &str, device_id: Option<&str>) -> wstep::RstRequest {
    let mut body = samples::get(15)
        .unwrap()
        .unwrap()
        .body
        .replace("BinarySecurityTokenInsertedHere", &STANDARD.encode(pkcs7));
    if request_type != "Renew" {
        body = body.replace(
            "ws-trust/200512/Renew",
            &format!("ws-trust/200512/{request_type}"),
        );
    }
    if let Some(id) = device_id {
        body = body.replace(
            "<ContextItem Name=\"DeviceType\">",
            &format!("<ContextItem Name=\"DeviceID\"><Value>{id}</Value></ContextItem><ContextItem Name=\"DeviceType\">"),
        );
    }
    wstep::parse_rst(body.as_bytes()).unwrap()
}

#[test]
fn renewal_round_trip() {
    let old = current_certificate();
    // The new key's request, signed into a PKCS#7 by the current certificate's key.
    let p7 = pki::renewal_pkcs7(
        pki::DEVICE_RSA2048_CSR.csr_der,
        &old,
        pki::WINDOWS11_CSR.key_der,
    );
    let req = renew_request(&p7, "Renew", Some(pki::WINDOWS11_CSR.device_id));
    assert_eq!(req.request_type, RequestType::Renew);
    let when = NOW + YEAR - 30 * 86_400;
    // With the TLS client certificate, and with only the embedded one.
    for presented in [Some(old.as_slice()), None] {
        let (pending, csr) = renewal::begin_renewal(
            &req,
            presented,
            pki::INTERMEDIATE_CA.cert_der,
            &IssuancePolicy::default(),
            &RenewalPolicy::default(),
            when,
            [5; 16],
        )
        .unwrap();
        // (Issuance kept the device ID in one form: dashed, lower case.)
        assert_eq!(
            pending.template.subject_cn,
            pki::WINDOWS11_CSR.device_id.to_ascii_lowercase(),
            "the subject is kept"
        );
        assert_eq!(pending.template.spki_der, csr.spki_der, "the new key");
        assert_eq!(pending.template.not_before, when - 300);
        let signed = issuer().sign(&pending.template).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&signed.certificate).unwrap();
        let (_, expected_csr) =
            x509_parser::certification_request::X509CertificationRequest::from_der(
                pki::DEVICE_RSA2048_CSR.csr_der,
            )
            .unwrap();
        assert_eq!(
            cert.public_key().raw,
            expected_csr.certification_request_info.subject_pki.raw
        );
        let xml = issue::complete(&pending, &signed, &issuance_config(), when);
        assert!(
            issue::provisioning_doc_of(xml.as_bytes())
                .unwrap()
                .contains("MY%5CSystem")
        );
        if tools::require_openssl() {
            let dir = std::env::temp_dir().join(format!("winmdm-renew-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("root.pem"),
                winmdm_testkit::entra::pem("CERTIFICATE", pki::ROOT_CA.cert_der),
            )
            .unwrap();
            std::fs::write(
                dir.join("inter.pem"),
                winmdm_testkit::entra::pem("CERTIFICATE", pki::INTERMEDIATE_CA.cert_der),
            )
            .unwrap();
            std::fs::write(
                dir.join("leaf.pem"),
                winmdm_testkit::entra::pem("CERTIFICATE", &signed.certificate),
            )
            .unwrap();
            let out = std::process::Command::new("openssl")
                .args(["verify", "-attime", &when.to_string(), "-CAfile"])
                .arg(dir.join("root.pem"))
                .arg("-untrusted")
                .arg(dir.join("inter.pem"))
                .arg(dir.join("leaf.pem"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    // Recovery is allowed before the window opens; renewal is not.
    let early = NOW + 10 * 86_400;
    let err = renewal::begin_renewal(
        &req,
        None,
        pki::INTERMEDIATE_CA.cert_der,
        &IssuancePolicy::default(),
        &RenewalPolicy::default(),
        early,
        [5; 16],
    )
    .unwrap_err();
    assert_eq!(err.fault().errortype, Some("NotEligibleToRenew"));
    let recovery = renew_request(&p7, "Recovery", None);
    renewal::begin_renewal(
        &recovery,
        None,
        pki::INTERMEDIATE_CA.cert_der,
        &IssuancePolicy::default(),
        &RenewalPolicy::default(),
        early,
        [5; 16],
    )
    .unwrap();
    // After expiry: no renewal.
    let err = renewal::begin_renewal(
        &req,
        None,
        pki::INTERMEDIATE_CA.cert_der,
        &IssuancePolicy::default(),
        &RenewalPolicy::default(),
        NOW + YEAR + 1,
        [5; 16],
    )
    .unwrap_err();
    assert_eq!(err.fault().errortype, Some("NotEligibleToRenew"));
}

fn issuance_config() -> winmdm_enroll::provisioning::ProvisioningConfig {
    winmdm_enroll::provisioning::ProvisioningConfig {
        provider_id: "winmdm".into(),
        name: "Contoso MDM".into(),
        dm_server_url: "https://mdm.contoso.example/ManagementServer/MDM.svc".into(),
        client_auth: ("d".into(), "s".into(), STANDARD.encode([1u8; 16])),
        server_auth: ("s".into(), "t".into()),
        renewal: Some(Default::default()),
        poll: Default::default(),
        ent_dm_id: "x".into(),
        ent_device_name: None,
        upn: None,
        extra: Vec::new(),
    }
}

#[test]
fn renewal_refusals() {
    let old = current_certificate();
    let when = NOW + YEAR - 30 * 86_400;
    let p = IssuancePolicy::default();
    let r = RenewalPolicy::default();
    let p7 = pki::renewal_pkcs7(
        pki::DEVICE_RSA2048_CSR.csr_der,
        &old,
        pki::WINDOWS11_CSR.key_der,
    );
    // Another device claims this certificate.
    let req = renew_request(&p7, "Renew", Some("00000000-0000-0000-0000-000000000001"));
    assert_eq!(
        renewal::begin_renewal(
            &req,
            None,
            pki::INTERMEDIATE_CA.cert_der,
            &p,
            &r,
            when,
            [5; 16]
        )
        .unwrap_err()
        .fault()
        .subcode,
        "s:CertificateRequest"
    );
    // A TLS certificate that is not the PKCS#7's signer.
    let req = renew_request(&p7, "Renew", None);
    assert!(
        renewal::begin_renewal(
            &req,
            Some(pki::INTERMEDIATE_CA.cert_der),
            pki::INTERMEDIATE_CA.cert_der,
            &p,
            &r,
            when,
            [5; 16]
        )
        .is_err()
    );
    // Checked against another issuer: not ours.
    let err = renewal::begin_renewal(&req, None, pki::ROOT_CA.cert_der, &p, &r, when, [5; 16])
        .unwrap_err();
    assert_eq!(err.fault().subcode, "s:Authentication");
    // Signed with a key that is not the certificate's.
    let forged = pki::renewal_pkcs7(
        pki::DEVICE_RSA2048_CSR.csr_der,
        &old,
        pki::WINDOWS10_CSR.key_der,
    );
    let req = renew_request(&forged, "Renew", None);
    assert!(
        renewal::begin_renewal(
            &req,
            None,
            pki::INTERMEDIATE_CA.cert_der,
            &p,
            &r,
            when,
            [5; 16]
        )
        .is_err()
    );
    // Content swapped after signing (messageDigest no longer matches).
    let mut tampered = p7;
    let needle = &pki::DEVICE_RSA2048_CSR.csr_der[40..60];
    let at = tampered
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    tampered[at] ^= 1;
    let req = renew_request(&tampered, "Renew", None);
    assert!(
        renewal::begin_renewal(
            &req,
            None,
            pki::INTERMEDIATE_CA.cert_der,
            &p,
            &r,
            when,
            [5; 16]
        )
        .is_err()
    );
    // Not a PKCS#7 at all, and an Issue request.
    let req = renew_request(b"\x30\x03\x02\x01\x00", "Renew", None);
    assert!(
        renewal::begin_renewal(
            &req,
            None,
            pki::INTERMEDIATE_CA.cert_der,
            &p,
            &r,
            when,
            [5; 16]
        )
        .is_err()
    );
}
