//! Who vouches for what: the endpoint's identity rules, each with the attacker's request
//! first. Requests go straight to `Endpoint::handle`, as a web framework would pass them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use winmdm_endpoint::{
    ConfigError, Endpoint, EndpointConfig, Handled, Input, MemoryStore, Store, TermsOfUseBlob,
};
use winmdm_entra::{Policy, Principals, Validator};
use winmdm_testkit::entra::{
    self, ALICE, AccessToken, BOB, CONTOSO, FABRIKAM, KEY_1, KEY_FABRIKAM,
};
use winmdm_testkit::{pki, requests};

mod common;
use common::*;

const TOU: &str = "/TermsOfUse?api-version=1.0&redirect_uri=ms-appx-web%3a%2f%2fMicrosoft.AAD.BrokerPlugin&client-request-id=1";

fn between<'a>(s: &'a str, a: &str, b: &str) -> &'a str {
    let i = s.find(a).unwrap() + a.len();
    &s[i..i + s[i..].find(b).unwrap()]
}

/// The Terms-of-Use page, accepted: the blob the redirect carries.
fn accept_terms(ep: &Endpoint, token: &str) -> String {
    let bearer = format!("Bearer {token}");
    let page = send(ep, "GET", TOU, &[("authorization", &bearer)], "");
    assert_eq!(page.status, 200, "{}", page.body);
    let state = between(&page.body, "name=\"state\" value=\"", "\"");
    let form = format!("state={state}&action=accept");
    let done = send(
        ep,
        "POST",
        "/TermsOfUse",
        &[("content-type", "application/x-www-form-urlencoded")],
        &form,
    );
    assert_eq!(done.status, 302);
    let location = done.headers["location"].to_str().unwrap();
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "OpaqueBlob")
        .unwrap()
        .1
        .into_owned()
}

/// The Terms-of-Use page for `token` refused: the error redirect's location.
fn page_refused(ep: &Endpoint, token: &str) -> String {
    let page = send(
        ep,
        "GET",
        TOU,
        &[("authorization", &format!("Bearer {token}"))],
        "",
    );
    assert_eq!(page.status, 302, "{}", page.body);
    page.headers["location"].to_str().unwrap().to_owned()
}

/// `GetPolicies` with `token`: the HTTP status and body.
fn policies(ep: &Endpoint, token: &str) -> Answer {
    let body = requests::get_policies(&format!("{URL}/EnrollmentServer/Policy.svc"), token);
    send(ep, "POST", "/EnrollmentServer/Policy.svc", &[], &body)
}

fn enroll(ep: &Endpoint, token: &str, device_id: &str, blob: Option<&str>) -> Answer {
    let csr = &pki::DEVICE_RSA2048_CSR;
    let mut items = vec![("DeviceID", device_id), ("EnrollmentType", "Full")];
    if let Some(blob) = blob {
        items.push(("EnrollmentData", blob));
    }
    let rst = requests::rst_issue(
        &format!("{URL}/EnrollmentServer/Enrollment.svc"),
        token,
        csr.csr_der,
        &items,
    );
    send(
        ep,
        "POST",
        "/EnrollmentServer/Enrollment.svc",
        &[("content-type", "application/soap+xml")],
        &rst,
    )
}

fn user_token(tenant: &entra::Tenant, user: &entra::User) -> String {
    let key = if tenant.id == FABRIKAM.id {
        &KEY_FABRIKAM
    } else {
        &KEY_1
    };
    AccessToken::v2(tenant, user)
        .issued_at(NOW)
        .signed_with(key)
        .sign()
}

fn snapshot(store: &MemoryStore, id: &str) -> impl PartialEq + std::fmt::Debug {
    (
        store.device(id).unwrap(),
        store.commands(id).unwrap(),
        store.traces_of(id).unwrap(),
    )
}

#[test]
fn another_user_cannot_take_over_a_work_account_record() {
    let (ep, store) = endpoint();
    let spelled = pki::DEVICE_RSA2048_CSR.device_id;
    let alice = user_token(&CONTOSO, &ALICE);
    let blob = accept_terms(&ep, &alice);
    assert_eq!(enroll(&ep, &alice, spelled, Some(&blob)).status, 200);
    let victim = store.devices().unwrap().pop().unwrap();
    let device = victim.device_id.as_str();
    let before = snapshot(&store, device);

    // Another user of the same tenant, and a user of another served tenant, name Alice's
    // device ID in their own (valid) enrollments.
    let colleague = AccessToken::v2(&CONTOSO, &ALICE)
        .claim("oid", "44444444-0000-4000-8000-00000000beef")
        .claim("preferred_username", "mallory@contoso.example")
        .issued_at(NOW)
        .sign();
    let outsider = user_token(&FABRIKAM, &BOB);
    for attacker in [&colleague, &outsider] {
        let blob = accept_terms(&ep, attacker);
        let refused = enroll(&ep, attacker, spelled, Some(&blob));
        assert_eq!(refused.status, 500, "a SOAP fault");
        assert!(refused.body.contains("s:Authorization"), "{}", refused.body);
        assert_eq!(
            snapshot(&store, device),
            before,
            "record, queue and history untouched"
        );
    }
    assert_eq!(store.device(device).unwrap().unwrap(), victim);

    // Alice herself re-enrolls the device.
    let blob = accept_terms(&ep, &alice);
    assert_eq!(enroll(&ep, &alice, spelled, Some(&blob)).status, 200);
}

#[test]
fn the_device_cap_is_enforced_with_its_hresult() {
    let (ep, store) = endpoint_with(|c| c.max_devices_per_user = Some(1));
    let alice = user_token(&CONTOSO, &ALICE);
    let blob = accept_terms(&ep, &alice);
    let first = pki::DEVICE_RSA2048_CSR.device_id;
    assert_eq!(enroll(&ep, &alice, first, Some(&blob)).status, 200);
    let second = "0a1b2c3d-0000-4000-8000-00000000cafe";
    let refused = enroll(&ep, &alice, second, Some(&blob));
    assert_eq!(refused.status, 500);
    assert!(
        refused.body.contains("DeviceCapReached"),
        "{}",
        refused.body
    );
    assert_eq!(store.traces_of(second).unwrap(), 0);
    // Re-enrolling the device she has is not a new device.
    assert_eq!(enroll(&ep, &alice, first, Some(&blob)).status, 200);
}

#[test]
fn the_terms_of_use_blob_is_required_unless_configured_otherwise() {
    let (ep, store) = endpoint();
    let alice = user_token(&CONTOSO, &ALICE);
    let device = pki::DEVICE_RSA2048_CSR.device_id;
    let refused = enroll(&ep, &alice, device, None);
    assert_eq!(refused.status, 500);
    assert!(refused.body.contains("s:Authorization"), "{}", refused.body);
    assert_eq!(store.traces_of(device).unwrap(), 0);
    // A forged blob is refused too.
    let forged = enroll(&ep, &alice, device, Some("AAAA"));
    assert_eq!(forged.status, 500);
    assert_eq!(store.traces_of(device).unwrap(), 0);

    let (ep, _) = endpoint_with(|c| c.terms_of_use_blob = TermsOfUseBlob::NotRequired);
    assert_eq!(enroll(&ep, &alice, device, None).status, 200);
    // Present, it is still checked.
    assert_eq!(enroll(&ep, &alice, device, Some("AAAA")).status, 500);
}

#[test]
fn app_only_tokens_are_refused_everywhere() {
    let (ep, store) = endpoint();
    // A client-credentials token of an application in a served tenant, for the MDM
    // application: valid in every other respect.
    let app = AccessToken::v2(&CONTOSO, &ALICE)
        .claim("idtyp", "app")
        .without_claim("scp")
        .without_claim("upn")
        .without_claim("preferred_username")
        .issued_at(NOW)
        .sign();
    // The Terms-of-Use page: an error redirect, no page.
    assert!(page_refused(&ep, &app).contains("error="));
    // Policy.
    let refused = policies(&ep, &app);
    assert_eq!(refused.status, 500);
    assert!(refused.body.contains("s:Authorization"), "{}", refused.body);
    // Enrollment (even without a Terms-of-Use requirement).
    let (open, store2) = endpoint_with(|c| c.terms_of_use_blob = TermsOfUseBlob::NotRequired);
    let device = pki::DEVICE_RSA2048_CSR.device_id;
    for (ep, store) in [(&ep, &store), (&open, &store2)] {
        let refused = enroll(ep, &app, device, None);
        assert_eq!(refused.status, 500);
        assert!(refused.body.contains("s:Authorization"), "{}", refused.body);
        assert_eq!(store.traces_of(device).unwrap(), 0);
    }
    // And an endpoint cannot be built with a validator that accepts them.
    let validator = Validator::new(policy_any(), Arc::new(static_cache()));
    let err = Endpoint::new(
        EndpointConfig::new(URL),
        components(Arc::new(MemoryStore::new()), validator),
    )
    .unwrap_err();
    assert_eq!(err, ConfigError::AppTokensAccepted);
}

fn policy_any() -> Policy {
    policy(Principals::Any)
}

#[test]
fn the_required_scope_is_enforced_at_the_page_policy_and_enrollment() {
    let (ep, store) = endpoint_with(|c| c.required_scope = Some("mdm_enroll_only".into()));
    let alice = user_token(&CONTOSO, &ALICE);
    assert!(page_refused(&ep, &alice).contains("error=access_denied"));
    assert_eq!(policies(&ep, &alice).status, 500);
    let device = pki::DEVICE_RSA2048_CSR.device_id;
    assert_eq!(enroll(&ep, &alice, device, None).status, 500);
    assert_eq!(store.traces_of(device).unwrap(), 0);

    // With the scope, all three pass.
    let scoped = AccessToken::v2(&CONTOSO, &ALICE)
        .claim("scp", format!("{} mdm_enroll_only", entra::MDM_SCOPE))
        .issued_at(NOW)
        .sign();
    let blob = accept_terms(&ep, &scoped);
    assert_eq!(policies(&ep, &scoped).status, 200);
    assert_eq!(enroll(&ep, &scoped, device, Some(&blob)).status, 200);
}

#[test]
fn an_unknown_signing_key_asks_for_a_refresh_then_answers() {
    let store = Arc::new(MemoryStore::new());
    let cache = entra_cache();
    let validator = Validator::new(policy(Principals::Users), Arc::new(cache));
    let ep = Endpoint::new(EndpointConfig::new(URL), components(store, validator)).unwrap();
    let alice = user_token(&CONTOSO, &ALICE);
    let body = requests::get_policies(&format!("{URL}/EnrollmentServer/Policy.svc"), &alice);
    let request = parts("POST", "/EnrollmentServer/Policy.svc", &[]);
    // No keys yet: the endpoint asks for them and changes nothing.
    assert!(matches!(
        ep.handle(&request, body.as_bytes(), Input::new(NOW)),
        Handled::RefreshKeys
    ));
    // The glue fetches with its own client (here a closure serving Entra's documents).
    let mut fetched = Vec::new();
    let response = ep.handle_with_keys(&request, body.as_bytes(), Input::new(NOW), |r| {
        let uri = r.uri().to_string();
        fetched.push(uri.clone());
        let doc = if uri.ends_with("openid-configuration") {
            entra::openid_configuration(
                "https://login.example",
                "organizations",
                entra::TokenVersion::V2,
            )
        } else {
            entra::jwks([&KEY_1])
        };
        Ok::<_, String>(http::Response::new(doc.to_string().into_bytes()))
    });
    assert_eq!(response.status(), 200, "{fetched:?}");
    assert_eq!(fetched.len(), 2, "metadata, then keys: {fetched:?}");
    // A key source that is down: answered (a fault), not asked for again and again.
    let down = Endpoint::new(
        EndpointConfig::new(URL),
        components(
            Arc::new(MemoryStore::new()),
            Validator::new(policy(Principals::Users), Arc::new(entra_cache())),
        ),
    )
    .unwrap();
    let mut calls = 0;
    let answer = down.handle_with_keys(&request, body.as_bytes(), Input::new(NOW), |_| {
        calls += 1;
        Err::<http::Response<Vec<u8>>, _>("connection refused")
    });
    assert_eq!(answer.status(), 500);
    assert_eq!(calls, 1);
}

#[test]
fn routes_methods_and_unknown_paths() {
    let (ep, _) = endpoint();
    assert_eq!(send(&ep, "GET", "/nope", &[], "").status, 404);
    let wrong = send(&ep, "GET", "/ManagementServer/MDM.svc", &[], "");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.headers["allow"], "POST");
    let probe = send(&ep, "GET", "/EnrollmentServer/Discovery.svc", &[], "");
    assert_eq!(probe.status, 200);
    assert!(probe.headers.contains_key("content-length"));
    let wbxml = send(
        &ep,
        "POST",
        "/ManagementServer/MDM.svc",
        &[("content-type", "application/vnd.syncml.dm+wbxml")],
        "",
    );
    assert_eq!(wbxml.status, 415);
    let garbage = send(&ep, "POST", "/ManagementServer/MDM.svc", &[], "<SyncML>");
    assert_eq!(garbage.status, 400);
    assert!(
        garbage.body.starts_with("not a SyncML message"),
        "{}",
        garbage.body
    );
}

#[test]
fn the_memory_store_passes_the_conformance_suite() {
    winmdm_endpoint::conformance::all(&MemoryStore::new());
}

/// Policy and provisioning figures follow the configured lifetime (they said 365/60 days
/// and `RenewPeriod` 42 whatever the server issued): 30-day certificates renewable in
/// their last 10 days.
#[test]
fn policy_and_provisioning_follow_the_configured_lifetime() {
    let (ep, _) = endpoint_with(|c| {
        c.certificate_validity = std::time::Duration::from_secs(30 * 86_400);
        c.renewal_window = std::time::Duration::from_secs(10 * 86_400);
    });
    let alice = user_token(&CONTOSO, &ALICE);
    let policy = policies(&ep, &alice);
    assert_eq!(policy.status, 200);
    assert!(
        policy
            .body
            .contains("<validityPeriodSeconds>2592000</validityPeriodSeconds>"),
        "{}",
        policy.body
    );
    assert!(
        policy
            .body
            .contains("<renewalPeriodSeconds>864000</renewalPeriodSeconds>"),
        "{}",
        policy.body
    );
    let blob = accept_terms(&ep, &alice);
    let enrolled = enroll(&ep, &alice, pki::DEVICE_RSA2048_CSR.device_id, Some(&blob));
    assert_eq!(enrolled.status, 200, "{}", enrolled.body);
    let doc = winmdm_enroll::issue::provisioning_doc_of(enrolled.body.as_bytes()).unwrap();
    assert!(
        doc.contains(r#"<parm name="RenewPeriod" value="10" datatype="integer"/>"#),
        "{doc}"
    );
    // The certificate itself lives 30 days.
    let der = base64_cert(&doc);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let lifetime = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert!(
        (29 * 86_400..=31 * 86_400).contains(&lifetime),
        "{lifetime}"
    );
}
