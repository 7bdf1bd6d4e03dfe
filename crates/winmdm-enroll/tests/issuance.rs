//! Issuance end to end: Windows 10 and 11 CSRs in RST requests → certificate signed by the
//! testkit's intermediate CA → RSTRC with the provisioning document; the chain verifies with
//! `openssl verify`, and the document carries what Windows needs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use winmdm_enroll::issue::{self, CertificateSigner, IssuancePolicy, LocalIssuer, Requester};
use winmdm_enroll::provisioning::{self, ProvisioningConfig};
use winmdm_enroll::soap::{self, Limits};
use winmdm_enroll::wstep::{self, EnrollmentKind};
use winmdm_testkit::{pki, samples, tools};

const NOW: u64 = 1_780_000_000;

fn rst(csr_der: &[u8], device_id: &str, kind: &str) -> wstep::RstRequest {
    let body = samples::get(11).unwrap().unwrap().body;
    let body = body
        .replace(
            "DER format PKCS#10 certificate request in Base64 encoding Insterted Here",
            &STANDARD.encode(csr_der),
        )
        .replace("7BA748C8-703E-4DF2-A74A-92984117346A", device_id)
        .replace(
            "<ac:Value>Full</ac:Value>",
            &format!("<ac:Value>{kind}</ac:Value>"),
        );
    wstep::parse_rst(body.as_bytes()).unwrap()
}

pub fn issuer() -> LocalIssuer {
    LocalIssuer::new(
        pki::INTERMEDIATE_CA.cert_der,
        pki::INTERMEDIATE_CA.key_der,
        Vec::new(),
        pki::ROOT_CA.cert_der.to_vec(),
    )
    .unwrap()
}

pub fn config() -> ProvisioningConfig {
    ProvisioningConfig {
        provider_id: "winmdm".into(),
        name: "Contoso MDM".into(),
        dm_server_url: "https://mdm.contoso.example/ManagementServer/MDM.svc".into(),
        client_auth: (
            "dev-user".into(),
            "dev-secret".into(),
            STANDARD.encode([7u8; 16]),
        ),
        server_auth: ("srv-user".into(), "srv-secret".into()),
        renewal: Some(Default::default()),
        poll: Default::default(),
        ent_dm_id: "8f3c2a10-0000-4000-8000-000000000001".into(),
        ent_device_name: Some("DESKTOP-1".into()),
        upn: Some("alice@contoso.example".into()),
        extra: Vec::new(),
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    winmdm_testkit::entra::pem(label, der)
}

fn openssl_verify(cert: &[u8]) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!(
        "winmdm-issue-{}-{}",
        std::process::id(),
        cert.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("root.pem"),
        pem("CERTIFICATE", pki::ROOT_CA.cert_der),
    )
    .unwrap();
    std::fs::write(
        dir.join("inter.pem"),
        pem("CERTIFICATE", pki::INTERMEDIATE_CA.cert_der),
    )
    .unwrap();
    std::fs::write(dir.join("leaf.pem"), pem("CERTIFICATE", cert)).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "verify",
            "-attime",
            &NOW.to_string(),
            "-purpose",
            "sslclient",
            "-CAfile",
        ])
        .arg(dir.join("root.pem"))
        .arg("-untrusted")
        .arg(dir.join("inter.pem"))
        .arg(dir.join("leaf.pem"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn windows_10_and_11_requests_are_issued_and_verify_with_openssl() {
    let cases = [
        (&pki::WINDOWS10_CSR, "Device"),
        (&pki::WINDOWS11_CSR, "Full"),
    ];
    for (csr, kind) in cases {
        let req = rst(csr.csr_der, csr.device_id, kind);
        let requester = Requester {
            upn: Some("alice@contoso.example".into()),
            token_device_id: Some(csr.device_id.to_lowercase()),
        };
        let (pending, parsed) = issue::begin(
            &req,
            &requester,
            &IssuancePolicy::default(),
            NOW,
            [0xAB; 16],
        )
        .unwrap();
        assert_eq!(parsed.device_id.as_deref(), Some(csr.device_id));
        let expected_kind = if kind == "Device" {
            EnrollmentKind::Device
        } else {
            EnrollmentKind::Full
        };
        assert_eq!(pending.kind, expected_kind);
        // The verified claim's spelling is the device's identity (the request's may differ).
        let claim = csr.device_id.to_lowercase();
        assert_eq!(pending.device_id.as_deref(), Some(claim.as_str()));
        let subject = if kind == "Device" {
            claim.as_str()
        } else {
            "alice@contoso.example"
        };
        assert_eq!(pending.template.subject_cn, subject);
        assert_eq!(pending.template.not_before, NOW - 300);
        assert_eq!(pending.template.not_after, NOW + 365 * 86_400);
        assert!(pending.template.serial[0] < 0x80);
        let signed = issuer().sign(&pending.template).unwrap();
        // The certificate carries the CSR's key, our subject, clientAuth.
        let (_, cert) = x509_parser::parse_x509_certificate(&signed.certificate).unwrap();
        assert_eq!(cert.public_key().raw, parsed.spki_der.as_slice());
        assert_eq!(
            cert.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            subject
        );
        assert!(
            cert.extended_key_usage()
                .unwrap()
                .unwrap()
                .value
                .client_auth
        );
        if tools::require_openssl() {
            let (ok, out) = openssl_verify(&signed.certificate);
            assert!(ok, "{kind}: {out}");
        }
        // The RSTRC and its provisioning document.
        let xml = issue::complete(&pending, &signed, &config(), NOW);
        let env = soap::envelope(xml.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(
            env.action.as_deref(),
            Some("http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RSTRC/wstep")
        );
        assert_eq!(
            env.header.child_named("RelatesTo").unwrap().text,
            "urn:uuid:0d5a1441-5891-453b-becf-a2e5f6ea3749"
        );
        let doc = issue::provisioning_doc_of(xml.as_bytes()).unwrap();
        let store = if kind == "Device" { "System" } else { "User" };
        let thumb = provisioning::thumbprint(&signed.certificate);
        let root_thumb = provisioning::thumbprint(pki::ROOT_CA.cert_der);
        let inter_thumb = provisioning::thumbprint(pki::INTERMEDIATE_CA.cert_der);
        let tree = soap::parse(doc.as_bytes(), &Limits::default()).unwrap();
        let find = |path: &[&str]| {
            let mut cur = vec![&tree];
            for p in path {
                cur = cur
                    .into_iter()
                    .flat_map(|e| e.children.iter().filter(|c| c.attr("type") == Some(*p)))
                    .collect();
            }
            cur
        };
        assert_eq!(
            find(&["CertificateStore", "Root", "System", &root_thumb]).len(),
            1
        );
        assert_eq!(
            find(&["CertificateStore", "CA", "System", &inter_thumb]).len(),
            1
        );
        let mine = find(&["CertificateStore", "My", store, &thumb]);
        assert_eq!(mine.len(), 1, "{doc}");
        let encoded = mine[0]
            .children_named("parm")
            .find(|p| p.attr("name") == Some("EncodedCertificate"))
            .unwrap();
        assert_eq!(
            STANDARD.decode(encoded.attr("value").unwrap()).unwrap(),
            signed.certificate
        );
        assert_eq!(
            find(&["CertificateStore", "My", store, "PrivateKeyContainer"]).len(),
            1
        );
        assert_eq!(find(&["CertificateStore", "My", "WSTEP", "Renew"]).len(), 1);
        let app = &find(&["APPLICATION"])[0];
        let parm = |n: &str| {
            app.children_named("parm")
                .find(|p| p.attr("name") == Some(n))
                .and_then(|p| p.attr("value"))
                .map(str::to_owned)
        };
        assert_eq!(parm("APPID").as_deref(), Some("w7"));
        assert_eq!(parm("PROVIDER-ID").as_deref(), Some("winmdm"));
        assert_eq!(
            parm("DEFAULTENCODING").as_deref(),
            Some("application/vnd.syncml.dm+xml")
        );
        let criteria = parm("SSLCLIENTCERTSEARCHCRITERIA").unwrap();
        let expected_store = if kind == "Device" {
            "MY%5CSystem"
        } else {
            "My%5CUser"
        };
        assert!(
            criteria.starts_with("Subject=CN%3d")
                && criteria.ends_with(&format!("&Stores={expected_store}")),
            "{criteria}"
        );
        assert!(
            app.children_named("parm")
                .any(|p| p.attr("name") == Some("BACKCOMPATRETRYDISABLED"))
        );
        let levels: Vec<_> = app
            .children
            .iter()
            .filter(|c| c.attr("type") == Some("APPAUTH"))
            .map(|c| {
                c.children_named("parm")
                    .find(|p| p.attr("name") == Some("AAUTHLEVEL"))
                    .and_then(|p| p.attr("value"))
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(levels, ["CLIENT", "APPSRV"]);
        assert_eq!(
            find(&["DMClient", "Provider", "winmdm", "Poll"]).len(),
            1,
            "DMClient provider = PROVIDER-ID"
        );
        if tools::require_openssl() {
            // The document's own chain verifies too.
            let (ok, out) =
                openssl_verify(&STANDARD.decode(encoded.attr("value").unwrap()).unwrap());
            assert!(ok, "{out}");
        }
    }
}

#[test]
fn device_id_mismatches_and_missing_subjects_are_refused() {
    let csr = &pki::WINDOWS11_CSR;
    let p = IssuancePolicy::default();
    // Context item disagrees with the CSR's DeviceID extension.
    let req = rst(
        csr.csr_der,
        "00000000-0000-0000-0000-000000000000",
        "Device",
    );
    let err = issue::begin(&req, &Requester::default(), &p, NOW, [1; 16]).unwrap_err();
    assert_eq!(err.fault().subcode, "s:CertificateRequest");
    // The token's deviceid claim disagrees.
    let req = rst(csr.csr_der, csr.device_id, "Device");
    let r = Requester {
        upn: None,
        token_device_id: Some("11111111-2222-3333-4444-555555555555".into()),
    };
    assert!(issue::begin(&req, &r, &p, NOW, [1; 16]).is_err());
    // A user enrollment without a UPN.
    let req = rst(csr.csr_der, csr.device_id, "Full");
    let err = issue::begin(&req, &Requester::default(), &p, NOW, [1; 16]).unwrap_err();
    assert_eq!(err.fault().subcode, "s:Authorization");
    // NotBefore skew is capped at 10 minutes.
    let req = rst(csr.csr_der, csr.device_id, "Device");
    let lax = IssuancePolicy {
        not_before_skew: std::time::Duration::from_secs(90 * 86_400),
        ..p
    };
    let (pending, _) = issue::begin(&req, &Requester::default(), &lax, NOW, [1; 16]).unwrap();
    assert_eq!(pending.template.not_before, NOW - 600);
    // The P-256 request is refused by default.
    let req = rst(
        pki::DEVICE_P256_CSR.csr_der,
        pki::DEVICE_P256_CSR.device_id,
        "Device",
    );
    assert_eq!(
        issue::begin(&req, &Requester::default(), &p, NOW, [1; 16])
            .unwrap_err()
            .fault()
            .subcode,
        "s:CertificateRequest"
    );
}

fn xmllint(name: &str, xml: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("winmdm-pd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.xml"));
    std::fs::write(&path, xml).unwrap();
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/provisioning-doc.rng");
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--relaxng", schema])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn provisioning_docs_validate_against_the_relax_ng_schema() {
    if !tools::require_xmllint() {
        return;
    }
    let csr = &pki::WINDOWS11_CSR;
    for (kind, renewal) in [("Device", true), ("Full", false)] {
        let req = rst(csr.csr_der, csr.device_id, kind);
        let requester = Requester {
            upn: Some("alice@contoso.example".into()),
            token_device_id: None,
        };
        let (pending, _) =
            issue::begin(&req, &requester, &IssuancePolicy::default(), NOW, [9; 16]).unwrap();
        let signed = issuer().sign(&pending.template).unwrap();
        let mut cfg = config();
        if !renewal {
            cfg.renewal = None;
        }
        cfg.extra
            .push(provisioning::Characteristic::new("Policy").child(
                provisioning::Characteristic::new("Config").child(
                    provisioning::Characteristic::new("Camera").typed(
                        "AllowCamera",
                        "0",
                        "integer",
                    ),
                ),
            ));
        let doc = provisioning::build(
            &cfg,
            &provisioning::Certificates {
                root: &signed.root,
                intermediates: &signed.intermediates,
                issued: &signed.certificate,
                subject_cn: &pending.template.subject_cn,
            },
            pending.kind,
        );
        let (ok, err) = xmllint(kind, &doc);
        assert!(ok, "{kind}: {err}\n{doc}");
    }
    // The schema is not vacuous: a document without the APPSRV block, with a lower-case
    // w7 parameter, or with a wrong datatype fails.
    let good = {
        let req = rst(csr.csr_der, csr.device_id, "Device");
        let (pending, _) = issue::begin(
            &req,
            &Requester::default(),
            &IssuancePolicy::default(),
            NOW,
            [9; 16],
        )
        .unwrap();
        let signed = issuer().sign(&pending.template).unwrap();
        provisioning::build(
            &config(),
            &provisioning::Certificates {
                root: &signed.root,
                intermediates: &signed.intermediates,
                issued: &signed.certificate,
                subject_cn: &pending.template.subject_cn,
            },
            pending.kind,
        )
    };
    let no_appsrv = {
        let start = good
            .find("<characteristic type=\"APPAUTH\"><parm name=\"AAUTHLEVEL\" value=\"APPSRV\"/>")
            .unwrap();
        let end =
            good[start..].find("</characteristic>").unwrap() + start + "</characteristic>".len();
        format!("{}{}", &good[..start], &good[end..])
    };
    for (name, bad) in [
        ("no-appsrv", no_appsrv),
        (
            "lowercase",
            good.replace("name=\"PROVIDER-ID\"", "name=\"provider-id\""),
        ),
        (
            "datatype",
            good.replace(
                "name=\"RenewPeriod\" value=\"42\" datatype=\"integer\"",
                "name=\"RenewPeriod\" value=\"42\"",
            ),
        ),
        (
            "encoding",
            good.replace("application/vnd.syncml.dm+xml", "text/xml"),
        ),
    ] {
        let (ok, _) = xmllint(name, &bad);
        assert!(!ok, "{name} validated");
    }
    // What Windows also accepts (the w7 APPLICATION CSP reference): the server address
    // as an APPADDR characteristic (ADDR, ADDRTYPE, PORT/PORTNBR) instead of the ADDR
    // parameter, and the INIT parameter. (The schema refused both.)
    let addr = good
        .split("<parm name=\"ADDR\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let appaddr = format!(
        "<characteristic type=\"APPADDR\"><parm name=\"ADDR\" value=\"{addr}\"/><parm name=\"ADDRTYPE\" value=\"URI\"/><characteristic type=\"PORT\"><parm name=\"PORTNBR\" value=\"443\"/></characteristic></characteristic>"
    );
    let accepted = [
        (
            "appaddr",
            good.replace(&format!("<parm name=\"ADDR\" value=\"{addr}\"/>"), &appaddr),
        ),
        (
            "init",
            good.replace(
                "<parm name=\"BACKCOMPATRETRYDISABLED\"/>",
                "<parm name=\"BACKCOMPATRETRYDISABLED\"/><parm name=\"INIT\"/>",
            ),
        ),
    ];
    for (name, doc) in accepted {
        assert_ne!(doc, good, "{name}: the variant was not made");
        let (ok, err) = xmllint(name, &doc);
        assert!(ok, "{name}: {err}\n{doc}");
    }
    // The published device sample validates once its placeholders are real values.
    let sample = samples::get(14)
        .unwrap()
        .unwrap()
        .body
        .replace("B64 encoded cert insert here", "AAAA")
        .replace("B64EncodedCertInsertedHere", "AAAA");
    let (ok, err) = xmllint("sample-14", &sample);
    assert!(ok, "{err}");
}

#[test]
fn provisioning_config_debug_never_shows_digest_secrets_or_the_nonce() {
    let c = config();
    let shown = format!("{c:?}");
    for secret in [
        c.client_auth.1.as_str(),
        c.client_auth.2.as_str(),
        c.server_auth.1.as_str(),
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    // What an operator needs to tell configurations apart is still there.
    assert!(
        shown.contains("dev-user") && shown.contains("srv-user"),
        "{shown}"
    );
    assert!(shown.contains("mdm.contoso.example"), "{shown}");
}

/// Windows writes `DeviceID` as 32 hex digits (a published Windows 10 capture:
/// `DB257C3A08778F4FB61E2749066C1F27`); Entra's `deviceid` claim is a dashed GUID. The
/// same device must enroll, under the claim's spelling.
#[test]
fn an_undashed_windows_device_id_matches_the_dashed_claim() {
    let claim = "3a7c25db-7708-4f8f-b61e-2749066c1f27";
    let p = IssuancePolicy::default();
    let r = Requester {
        upn: None,
        token_device_id: Some(claim.into()),
    };
    for spelling in [
        "DB257C3A08778F4FB61E2749066C1F27", // Windows' in-memory byte order (the capture)
        "3A7C25DB77084F8FB61E2749066C1F27", // dashes dropped
        "{3A7C25DB-7708-4F8F-B61E-2749066C1F27}",
    ] {
        let req = rst(pki::DEVICE_RSA2048_CSR.csr_der, spelling, "Device");
        let (pending, _) = issue::begin(&req, &r, &p, NOW, [1; 16])
            .unwrap_or_else(|e| panic!("{spelling}: {e:?}"));
        assert_eq!(pending.device_id.as_deref(), Some(claim), "{spelling}");
        assert_eq!(pending.template.subject_cn, claim, "{spelling}");
    }
    // Another device's ID, in any spelling, is still refused.
    for other in [
        "DB257C3A08778F4FB61E2749066C1F28",
        "0f3e7c2a-5b64-4a19-9d2e-7c8b1a6f4e33",
    ] {
        let req = rst(pki::DEVICE_RSA2048_CSR.csr_der, other, "Device");
        let err = issue::begin(&req, &r, &p, NOW, [1; 16]).unwrap_err();
        assert_eq!(err.fault().subcode, "s:CertificateRequest", "{other}");
    }
    // The CSR extension is compared the same way: the Windows 11 request's dashed ID and
    // the same GUID written by Windows without dashes agree.
    let win11 = &pki::WINDOWS11_CSR;
    let windows_hex = winmdm_entra::DeviceId::parse(win11.device_id)
        .unwrap()
        .to_windows_hex();
    let req = rst(win11.csr_der, &windows_hex, "Device");
    let (pending, _) = issue::begin(&req, &Requester::default(), &p, NOW, [1; 16]).unwrap();
    // Without a claim the identity is read from the unambiguous (dashed) spelling, and kept
    // in one form: dashed, lower case.
    assert_eq!(
        pending.device_id.as_deref(),
        Some(win11.device_id.to_ascii_lowercase().as_str())
    );
}

/// Provisioning documents a real Windows 10 device accepted (the testkit's real-traffic
/// corpus) validate against our schema: among them the w7 `ServerList` parameter, mixed
/// case, which other servers send and Windows accepts (the schema refused it).
#[test]
fn provisioning_docs_real_windows_accepted_validate() {
    if !tools::require_xmllint() {
        return;
    }
    let docs = winmdm_testkit::real_windows::load("provisioning").unwrap();
    assert!(docs.len() >= 2);
    for c in docs {
        assert!(c.text().contains("name=\"ServerList\""), "{}", c.name);
        let (ok, err) = xmllint(&c.name, c.text());
        assert!(ok, "{}: {err}", c.name);
    }
}
