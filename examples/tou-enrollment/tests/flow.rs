//! The example end to end over loopback HTTP, as Windows drives it: Terms of Use with a
//! token → Accept → discovery probe and `Discover` → `GetPolicies` → `RequestSecurityToken`
//! with the Windows 11 CSR and the Terms-of-Use blob → a device certificate in the
//! provisioning document. And the refusals: no token, another user's blob, a forged CSR.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use winmdm_enroll::{fault, issue, soap};
use winmdm_testkit::entra::{self as tk};
use winmdm_testkit::{loopback, pki, samples};

fn start() -> (
    String,
    std::sync::Arc<winmdm_example_tou_enrollment::Example>,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = winmdm_example_tou_enrollment::Example::new(&base);
    let router = winmdm_example_tou_enrollment::router(app.clone());
    std::thread::spawn(move || {
        rt.block_on(async move { axum::serve(listener, router).await.unwrap() })
    });
    (base, app)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(user: &tk::User) -> String {
    tk::AccessToken::for_enrollment(&tk::CONTOSO, user)
        .issued_at(now())
        .sign()
}

fn post(url: &str, body: String) -> http::Response<Vec<u8>> {
    loopback::send(
        http::Request::post(url)
            .header("content-type", "application/soap+xml; charset=utf-8")
            .body(body.into_bytes())
            .unwrap(),
    )
    .unwrap()
}

/// Accepts the Terms of Use as `user`; returns the OpaqueBlob.
fn accept_terms(base: &str, user: &tk::User) -> String {
    let page = loopback::send(
        http::Request::get(format!(
            "{base}/TermsOfUse?redirect_uri=ms-appx-web://ContosoMdm/ToUResponse&client-request-id=34be581c-6ebd-49d6-a4e1-150eff4b7213&api-version=1.0&mode=azureadjoin"
        ))
        .header("authorization", format!("Bearer {}", token(user)))
        .header("cxh-host", "FRX")
        .body(Vec::new())
        .unwrap(),
    )
    .unwrap();
    assert_eq!(page.status(), 200);
    let html = String::from_utf8(page.into_body()).unwrap();
    let state = html
        .split("name=\"state\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let done = loopback::send(
        http::Request::post(format!("{base}/TermsOfUse"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("state={state}&action=accept").into_bytes())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(done.status(), 302);
    let location = done.headers()["location"].to_str().unwrap().to_owned();
    url::form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "OpaqueBlob")
        .unwrap()
        .1
        .into_owned()
}

fn rst(token: &str, csr: &[u8], device_id: &str, blob: &str) -> String {
    samples::get(11)
        .unwrap()
        .unwrap()
        .body
        .replace(
            "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentUserToken",
            "urn:ietf:params:oauth:token-type:jwt",
        )
        .replace("B64EncodedSampleBinarySecurityToken\"", &STANDARD.encode(token))
        .replace("DER format PKCS#10 certificate request in Base64 encoding Insterted Here", &STANDARD.encode(csr))
        .replace("7BA748C8-703E-4DF2-A74A-92984117346A", device_id)
        .replace("<ac:Value>Full</ac:Value>", "<ac:Value>Device</ac:Value>")
        .replace("3J4KLJ9SDJFAL93JLAKHJSDFJHAO83HAKSHFLAHSKFNHNPA2934342", blob)
}

#[test]
fn windows_enrollment_flow_end_to_end() {
    let (base, app) = start();
    let blob = accept_terms(&base, &tk::ALICE);

    // Discovery: the probe, then Discover.
    let probe = loopback::get(&format!("{base}/EnrollmentServer/Discovery.svc")).unwrap();
    assert_eq!(probe.status(), 200);
    let discover = post(
        &format!("{base}/EnrollmentServer/Discovery.svc"),
        samples::get(5).unwrap().unwrap().body,
    );
    assert_eq!(discover.status(), 200);
    assert_eq!(
        discover.headers()["content-type"],
        "application/soap+xml; charset=utf-8"
    );
    let env = soap::envelope(discover.body(), &soap::Limits::default()).unwrap();
    let enrollment_url = env
        .body
        .path(&["DiscoverResult", "EnrollmentServiceUrl"])
        .unwrap()
        .text()
        .to_owned();
    assert!(
        enrollment_url.starts_with(&format!("{base}/EnrollmentServer/Enrollment.svc?")),
        "{enrollment_url}"
    );

    // Policy, with the user's token.
    let alice = token(&tk::ALICE);
    let policies = samples::get(7)
        .unwrap()
        .unwrap()
        .body
        .replace(
            "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentUserToken",
            "urn:ietf:params:oauth:token-type:jwt",
        )
        .replace("B64EncodedSampleBinarySecurityToken", &STANDARD.encode(&alice));
    let policy = post(&format!("{base}/EnrollmentServer/Policy.svc"), policies);
    assert_eq!(
        policy.status(),
        200,
        "{}",
        String::from_utf8_lossy(policy.body())
    );

    // Enrollment: token, blob, Windows 11 CSR.
    let csr = &pki::WINDOWS11_CSR;
    let resp = post(
        &enrollment_url,
        rst(&alice, csr.csr_der, csr.device_id, &blob),
    );
    assert_eq!(
        resp.status(),
        200,
        "{}",
        String::from_utf8_lossy(resp.body())
    );
    let doc = issue::provisioning_doc_of(resp.body()).unwrap();
    assert!(
        doc.contains("<characteristic type=\"My\"><characteristic type=\"System\">"),
        "a device certificate"
    );
    assert!(doc.contains(&format!("{base}/ManagementServer/MDM.svc")));
    let enrolled = app.enrolled();
    assert_eq!(enrolled.len(), 1);
    // The request spells the ID in upper case; the token's verified claim is the identity.
    assert!(csr.device_id.eq_ignore_ascii_case(tk::ENROLLMENT_DEVICE_ID));
    assert_eq!(enrolled[0].device_id, tk::ENROLLMENT_DEVICE_ID);
    assert_eq!(enrolled[0].tenant_id, tk::CONTOSO.id);
}

#[test]
fn refusals_are_soap_faults_and_leave_no_trace() {
    let (base, app) = start();
    let csr = &pki::WINDOWS11_CSR;
    let url = format!("{base}/EnrollmentServer/Enrollment.svc");
    let alice = token(&tk::ALICE);
    let blob = accept_terms(&base, &tk::ALICE);
    let subcode = |r: &http::Response<Vec<u8>>| {
        assert_eq!(r.status(), 500);
        let f = fault::parse_fault(r.body()).unwrap();
        (f.subcode.unwrap(), f.errortype)
    };
    // No token.
    let no_token =
        rst(&alice, csr.csr_der, csr.device_id, &blob).replace(&STANDARD.encode(&alice), "");
    assert_eq!(subcode(&post(&url, no_token)).0, "s:Authentication");
    // Another user's Terms-of-Use blob.
    let guest_blob = accept_terms(&base, &tk::GUEST);
    let r = post(&url, rst(&alice, csr.csr_der, csr.device_id, &guest_blob));
    assert_eq!(
        subcode(&r),
        (
            "s:Authorization".into(),
            Some("InvalidEnrollmentData".into())
        )
    );
    // No Terms-of-Use blob at all (the page was skipped): refused, not enrolled anyway.
    let no_blob = rst(&alice, csr.csr_der, csr.device_id, &blob)
        .replace("Name=\"EnrollmentData\"", "Name=\"NotEnrollmentData\"");
    assert_eq!(subcode(&post(&url, no_blob)).0, "s:Authorization");
    // A forged CSR.
    let mut forged = csr.csr_der.to_vec();
    let n = forged.len() - 1;
    forged[n] ^= 1;
    assert_eq!(
        subcode(&post(&url, rst(&alice, &forged, csr.device_id, &blob))).0,
        "s:CertificateRequest"
    );
    // An empty body.
    assert_eq!(subcode(&post(&url, String::new())).0, "s:MessageFormat");
    assert!(app.enrolled().is_empty(), "nothing was issued");
}

/// The soak: the simulated Windows device enrolls through the example, then runs 1,000
/// management sessions (its SessionID wraps at 256) with a reboot mid-session halfway:
/// not one refused.
#[test]
fn a_simulated_device_enrolls_and_runs_a_thousand_sessions() {
    use winmdm_testkit::simulator::{Simulator, SimulatorConfig, TokenSource};
    let (base, app) = start();
    let token = token(&tk::ALICE);
    let mut config = SimulatorConfig::new(&base, TokenSource::Fixed(token));
    config.device_id = tk::ENROLLMENT_DEVICE_ID.to_owned();
    config.renew = false;
    config.unenroll = false;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut sim = Simulator::new(config);
        for step in sim.plan() {
            if step.starts_with("management") {
                break;
            }
            let s = sim.step(step).await;
            assert!(s.outcome.is_ok(), "{s}");
        }
        sim.soak(1000).await.unwrap_or_else(|step| panic!("{step}"));
    });
    assert_eq!(app.enrolled().len(), 1);
}
