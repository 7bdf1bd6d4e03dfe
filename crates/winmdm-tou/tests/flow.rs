//! The Terms-of-Use protocol end to end: the published samples, every documented error,
//! the security rules (open redirects, sealed state, blobs), steps and pages.

use std::sync::Arc;

use winmdm_enroll::enrollment_data::{EnrollmentDataError, EnrollmentDataVerifier, TokenIdentity};
use winmdm_entra::{KeyCache, KeySource, Policy, TokenVersion, Validator};
use winmdm_testkit::entra as tk;
use winmdm_testkit::samples;
use winmdm_tou::*;

const REDIRECT: &str = "ms-appx-web://ContosoMdm/ToUResponse";
const CRID: &str = "34be581c-6ebd-49d6-a4e1-150eff4b7213";

fn validator() -> Validator {
    let jwks = serde_json::to_vec(&tk::jwks([&tk::KEY_1, &tk::KEY_2])).unwrap();
    let keys = KeySource::static_jwks(&jwks, tk::V2_ISSUER_TEMPLATE, TokenVersion::V2).unwrap();
    let policy = Policy::builder()
        .allow_tenants([tk::CONTOSO.id])
        .allow_audiences([tk::MDM_APP_ID])
        .build()
        .unwrap();
    Validator::new(policy, Arc::new(KeyCache::new(vec![keys])))
}

fn keyring() -> Keyring {
    Keyring::new(SealingKey::new("k2026", &[42; 32]).unwrap())
}

fn tou() -> TermsOfUse {
    TermsOfUse::new(TouConfig::default(), keyring(), validator())
}

fn rng() -> impl FnMut(&mut [u8]) {
    let mut n = 0u8;
    move |d: &mut [u8]| {
        for b in d {
            n = n.wrapping_add(17);
            *b = n;
        }
    }
}

fn get(query: &str, token: Option<&str>, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut b = http::Request::get(format!("https://mdm.contoso.example/TermsOfUse?{query}"));
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

fn std_query() -> String {
    format!("redirect_uri={REDIRECT}&client-request-id={CRID}&api-version=1.0")
}

fn alice() -> String {
    tk::AccessToken::v2(&tk::CONTOSO, &tk::ALICE).sign()
}

fn location(r: &http::Response<Vec<u8>>) -> String {
    assert_eq!(r.status(), 302, "{}", String::from_utf8_lossy(r.body()));
    r.headers()["location"].to_str().unwrap().to_owned()
}

fn query_of(loc: &str) -> Vec<(String, String)> {
    let q = loc.split_once('?').unwrap().1;
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

fn state_of(r: http::Response<Vec<u8>>) -> String {
    assert_eq!(r.status(), 200);
    let html = String::from_utf8(r.into_body()).unwrap();
    html.split("name=\"state\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

#[allow(clippy::result_large_err)]
fn post(form: &str, t: &TermsOfUse, now: u64) -> Result<Submission, http::Response<Vec<u8>>> {
    let parts = http::Request::post("https://mdm.contoso.example/TermsOfUse")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    t.resume(&parts, form.as_bytes(), now, &mut rng())
}

#[test]
fn sample_19_parses_exactly() {
    let s = samples::get(19).unwrap().unwrap();
    let mut lines = s.body.lines();
    let url = lines.next().unwrap();
    let auth = lines.next().unwrap();
    let (name, value) = auth.split_once(": ").unwrap();
    let parts = http::Request::get(url)
        .header(name, value)
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let req = request::parse(
        &parts,
        &RedirectPolicy::default(),
        &["1.0".into()],
        &mut rng(),
    )
    .unwrap();
    assert_eq!(
        req.redirect_uri.as_str(),
        "ms-appx-web://ContosoMdm/ToUResponse"
    );
    assert_eq!(
        req.client_request_id,
        "34be581c-6ebd-49d6-a4e1-150eff4b7213"
    );
    assert!(!req.client_request_id_generated);
    assert_eq!(req.api_version, "1.0");
    assert!(!req.organization_owned);
    assert_eq!(req.scenario, Scenario::Settings);
    assert_eq!(req.token(), Some("eyJ0eXAiOi"));
    assert_eq!(req.path, "/TermsOfUse");
    assert!(
        !format!("{req:?}").contains("eyJ0eXAiOi"),
        "the token is redacted in Debug"
    );
}

#[test]
fn sample_21_error_redirect_is_reproduced() {
    let s = samples::get(21).unwrap().unwrap();
    let expected = s
        .body
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .unwrap();
    let ruri = RedirectPolicy::default()
        .check("ms-appx-web://App1/ToUResponse")
        .unwrap();
    let r = outcome::error_redirect(&ruri, ErrorCode::AccessDenied, "Access is denied.", None);
    assert_eq!(location(&r), expected);
    // And through the flow: a vendor denial, with the client-request-id added.
    let t = tou();
    let ctx = t
        .begin(&get(&std_query(), Some(&alice()), &[]), tk::NOW, &mut rng())
        .unwrap();
    let loc = location(&t.deny(&ctx, &mut rng()));
    assert_eq!(
        loc,
        format!(
            "{REDIRECT}?error=access_denied&error_description=Access%20is%20denied%2E&client-request-id={CRID}"
        )
    );
}

#[test]
fn accept_has_the_shape_of_sample_20_with_a_sealed_blob() {
    let s = samples::get(20).unwrap().unwrap();
    let sample_keys: Vec<String> = query_of(s.body.trim())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(sample_keys, ["OpaqueBlob", "IsAccepted"]);
    let t = tou();
    let ctx = t
        .begin(&get(&std_query(), Some(&alice()), &[]), tk::NOW, &mut rng())
        .unwrap();
    let state = state_of(t.terms_page(&ctx, &Terms::text("Terms", "Text"), tk::NOW, &mut rng()));
    let Ok(Submission::Accept(ctx)) =
        post(&format!("state={state}&action=accept"), &t, tk::NOW + 10)
    else {
        panic!()
    };
    let loc = location(&t.accept(&ctx, tk::NOW + 10, &mut rng()));
    assert!(
        loc.starts_with(&format!("{REDIRECT}?OpaqueBlob=v1~k2026~")),
        "{loc}"
    );
    let q = query_of(&loc);
    let keys: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["OpaqueBlob", "IsAccepted", "client-request-id"]);
    assert_eq!(q[1].1, "true");
    assert_eq!(q[2].1, CRID);
    // The blob needs no percent-encoding (it reads the same either way).
    let raw_blob = loc
        .split("OpaqueBlob=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert_eq!(raw_blob, q[0].1);
    // It verifies for Alice in Contoso, and for no one else.
    let v = t.verifier();
    let alice_id = TokenIdentity {
        tenant_id: tk::CONTOSO.id,
        object_id: tk::ALICE.oid,
    };
    let data = v.verify(&q[0].1, &alice_id, tk::NOW + 60).unwrap();
    assert_eq!(
        (data.tenant_id.as_str(), data.object_id.as_str()),
        (tk::CONTOSO.id, tk::ALICE.oid)
    );
    assert_eq!(data.client_request_id, CRID);
    assert!(!data.organization_owned);
    let bob = TokenIdentity {
        tenant_id: tk::CONTOSO.id,
        object_id: tk::BOB.oid,
    };
    assert_eq!(
        v.verify(&q[0].1, &bob, tk::NOW + 60),
        Err(EnrollmentDataError::OtherUser)
    );
    let other_tenant = TokenIdentity {
        tenant_id: tk::FABRIKAM.id,
        object_id: tk::ALICE.oid,
    };
    assert_eq!(
        v.verify(&q[0].1, &other_tenant, tk::NOW + 60),
        Err(EnrollmentDataError::OtherUser)
    );
    // Expired after the blob lifetime (1 h by default).
    assert!(matches!(
        v.verify(&q[0].1, &alice_id, tk::NOW + 10 + 3601),
        Err(EnrollmentDataError::Expired { .. })
    ));
    // Tampered: flip one character of the sealed body.
    let mut chars: Vec<char> = q[0].1.chars().collect();
    let i = chars.len() - 5;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let forged: String = chars.into_iter().collect();
    assert_eq!(
        v.verify(&forged, &alice_id, tk::NOW + 60),
        Err(EnrollmentDataError::Tampered)
    );
    // Another server's key, a state token passed as a blob, garbage.
    let other = BlobVerifier::new(Keyring::new(SealingKey::new("k2026", &[1; 32]).unwrap()));
    assert_eq!(
        other.verify(&q[0].1, &alice_id, tk::NOW + 60),
        Err(EnrollmentDataError::Tampered)
    );
    let retired = BlobVerifier::new(Keyring::new(SealingKey::new("k2027", &[42; 32]).unwrap()));
    assert!(matches!(
        retired.verify(&q[0].1, &alice_id, tk::NOW + 60),
        Err(EnrollmentDataError::UnknownKey { .. })
    ));
    assert_eq!(
        v.verify(&state, &alice_id, tk::NOW + 60),
        Err(EnrollmentDataError::Tampered)
    );
    assert_eq!(
        v.verify("value", &alice_id, tk::NOW),
        Err(EnrollmentDataError::Malformed)
    );
    // Key rotation: a verifier holding the old key as previous still accepts.
    let rotated = BlobVerifier::new(
        Keyring::new(SealingKey::new("k2027", &[43; 32]).unwrap())
            .with_previous(SealingKey::new("k2026", &[42; 32]).unwrap())
            .unwrap(),
    );
    rotated.verify(&q[0].1, &alice_id, tk::NOW + 60).unwrap();
}

fn error_of(r: &http::Response<Vec<u8>>) -> (String, String, Option<String>) {
    let q = query_of(&location(r));
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    (
        get("error").unwrap(),
        get("error_description").unwrap(),
        get("client-request-id"),
    )
}

#[test]
fn every_documented_error_row() {
    let t = tou();
    let begin = |q: &str, token: Option<&str>| {
        t.begin(&get(q, token, &[]), tk::NOW, &mut rng())
            .unwrap_err()
    };
    // api-version unsupported, and missing.
    let r = begin(
        &format!("redirect_uri={REDIRECT}&client-request-id={CRID}&api-version=2.0"),
        Some(&alice()),
    );
    assert_eq!(
        error_of(&r),
        (
            "invalid_request".into(),
            "unsupported version".into(),
            Some(CRID.into())
        )
    );
    let r = begin(
        &format!("redirect_uri={REDIRECT}&client-request-id={CRID}"),
        Some(&alice()),
    );
    assert_eq!(error_of(&r).0, "invalid_request");
    // Token missing, and every kind of broken token.
    let r = begin(&std_query(), None);
    assert_eq!(
        error_of(&r),
        (
            "unauthorized_client".into(),
            "unauthorized_client".into(),
            Some(CRID.into())
        )
    );
    // (HostileKeyUrls is a genuine token with `jku`/`x5u` headers that are never
    // fetched: it validates.)
    for kind in tk::Broken::ALL
        .into_iter()
        .filter(|k| *k != tk::Broken::HostileKeyUrls)
    {
        let r = begin(&std_query(), Some(&tk::broken(kind)));
        let (e, d, _) = error_of(&r);
        assert_eq!(e, "unauthorized_client", "{kind:?}");
        assert!(
            d == "unauthorized_client" || d == "unauthorized user or tenant",
            "{kind:?}: {d}"
        );
    }
    // A valid token from a tenant this MDM does not serve.
    let bob = tk::AccessToken::v2(&tk::FABRIKAM, &tk::BOB).sign();
    let r = begin(&std_query(), Some(&bob));
    assert_eq!(
        error_of(&r),
        (
            "unauthorized_client".into(),
            "unauthorized user or tenant".into(),
            Some(CRID.into())
        )
    );
    // Internal service error: the signing keys were never loaded.
    let unloaded = KeySource::metadata(
        "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration",
        TokenVersion::V2,
    );
    let policy = Policy::builder()
        .allow_tenants([tk::CONTOSO.id])
        .allow_audiences([tk::MDM_APP_ID])
        .build()
        .unwrap();
    let cold = TermsOfUse::new(
        TouConfig::default(),
        keyring(),
        Validator::new(policy, Arc::new(KeyCache::new(vec![unloaded]))),
    );
    let r = cold
        .begin(&get(&std_query(), Some(&alice()), &[]), tk::NOW, &mut rng())
        .unwrap_err();
    assert_eq!(
        error_of(&r),
        (
            "server_error".into(),
            "internal service error".into(),
            Some(CRID.into())
        )
    );
    // The vendor's own failure and "user or tenant" refusals map the same way.
    let ctx = t
        .begin(&get(&std_query(), Some(&alice()), &[]), tk::NOW, &mut rng())
        .unwrap();
    let r = t.fail(&ctx, &TouError::Backend("database down".into()), &mut rng());
    assert_eq!(error_of(&r).0, "server_error");
    assert!(
        !location(&r).contains("database"),
        "internal detail never reaches the wire"
    );
    let r = t.fail(
        &ctx,
        &TouError::UnauthorizedUserOrTenant("no licence".into()),
        &mut rng(),
    );
    assert_eq!(error_of(&r).1, "unauthorized user or tenant");
}

#[test]
fn malformed_client_request_id_is_replaced_never_reflected() {
    let t = tou();
    for bad in [
        "not-a-guid",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "34be581c-6ebd-49d6-a4e1-150eff4b721",
    ] {
        let q = format!("redirect_uri={REDIRECT}&client-request-id={bad}&api-version=9");
        let r = t
            .begin(&get(&q, Some(&alice()), &[]), tk::NOW, &mut rng())
            .unwrap_err();
        let (_, _, crid) = error_of(&r);
        let crid = crid.unwrap();
        assert!(request::is_guid(&crid), "{crid}");
        let loc = location(&r);
        assert!(
            !loc.contains("%3Cscript") && !loc.contains("alert") && !loc.contains("not-a-guid"),
            "{loc}"
        );
    }
    // Missing: one is generated too.
    let q = format!("redirect_uri={REDIRECT}&api-version=1.0");
    let ctx = t
        .begin(&get(&q, Some(&alice()), &[]), tk::NOW, &mut rng())
        .unwrap();
    assert!(request::is_guid(ctx.client_request_id()));
}

#[test]
fn open_redirects_are_refused_before_the_token() {
    let t = tou();
    for evil in [
        "https://evil.example/steal",
        "javascript:alert(1)",
        "//evil.example",
        "ms-appx-web://App/x%23frag",
    ] {
        // No token and an unsupported version too: the redirect check comes first, and
        // nothing is redirected.
        let q = format!("redirect_uri={evil}&client-request-id={CRID}&api-version=9");
        let r = t
            .begin(&get(&q, None, &[]), tk::NOW, &mut rng())
            .unwrap_err();
        assert_eq!(r.status(), 400, "{evil}");
        assert!(r.headers().get("location").is_none(), "{evil}");
        let html = String::from_utf8(r.into_body()).unwrap();
        assert!(!html.contains("evil"), "the page does not reflect it");
    }
    // Missing or repeated redirect_uri: error page.
    let r = t
        .begin(
            &get("api-version=1.0", Some(&alice()), &[]),
            tk::NOW,
            &mut rng(),
        )
        .unwrap_err();
    assert_eq!(r.status(), 400);
    let q = format!("redirect_uri={REDIRECT}&redirect_uri=ms-appx-web://Other/x&api-version=1.0");
    assert_eq!(
        t.begin(&get(&q, Some(&alice()), &[]), tk::NOW, &mut rng())
            .unwrap_err()
            .status(),
        400
    );
    // An allowed redirect that already has a query keeps it.
    let q = "redirect_uri=ms-appx-web%3A%2F%2FContosoMdm%2FToUResponse%3Fsession%3D7&api-version=3";
    let loc = location(
        &t.begin(&get(q, Some(&alice()), &[]), tk::NOW, &mut rng())
            .unwrap_err(),
    );
    assert!(
        loc.starts_with("ms-appx-web://ContosoMdm/ToUResponse?session=7&error=invalid_request&"),
        "{loc}"
    );
}

#[test]
fn decline_byod_only_and_org_owned_has_no_decline() {
    let t = tou();
    let ctx = t
        .begin(&get(&std_query(), Some(&alice()), &[]), tk::NOW, &mut rng())
        .unwrap();
    let page = t.terms_page(&ctx, &Terms::text("T", "x"), tk::NOW, &mut rng());
    let html = String::from_utf8(page.body().clone()).unwrap();
    assert!(html.contains("value=\"decline\""));
    let state = state_of(page);
    let Ok(Submission::Decline(ctx)) =
        post(&format!("state={state}&action=decline"), &t, tk::NOW + 1)
    else {
        panic!()
    };
    assert_eq!(
        location(&t.decline(&ctx, &mut rng())),
        format!("{REDIRECT}?IsAccepted=false&client-request-id={CRID}")
    );

    let q = format!("{}&mode=azureadjoin", std_query());
    let ctx = t
        .begin(
            &get(&q, Some(&alice()), &[("cxh-host", "FRX")]),
            tk::NOW,
            &mut rng(),
        )
        .unwrap();
    assert!(ctx.organization_owned());
    let page = t.terms_page(&ctx, &Terms::text("T", "x"), tk::NOW, &mut rng());
    let html = String::from_utf8(page.body().clone()).unwrap();
    assert!(
        !html.contains("value=\"decline\""),
        "no Decline button on organization-owned devices"
    );
    let state = state_of(page);
    // Posting decline anyway is refused, and the decline() answer is refused too.
    let r = post(&format!("state={state}&action=decline"), &t, tk::NOW + 1).unwrap_err();
    assert_eq!(r.status(), 403);
    assert_eq!(t.decline(&ctx, &mut rng()).status(), 403);
    // The blob records organization ownership.
    let Ok(Submission::Accept(ctx)) =
        post(&format!("state={state}&action=accept"), &t, tk::NOW + 1)
    else {
        panic!()
    };
    let q = query_of(&location(&t.accept(&ctx, tk::NOW + 1, &mut rng())));
    let who = TokenIdentity {
        tenant_id: tk::CONTOSO.id,
        object_id: tk::ALICE.oid,
    };
    assert!(
        t.verifier()
            .verify(&q[0].1, &who, tk::NOW + 2)
            .unwrap()
            .organization_owned
    );
}

#[test]
fn page_state_is_sealed_expiring_and_never_read_from_form_fields() {
    let t = tou();
    let ctx = t
        .begin(&get(&std_query(), Some(&alice()), &[]), tk::NOW, &mut rng())
        .unwrap();
    let state = state_of(t.terms_page(&ctx, &Terms::text("T", "x"), tk::NOW, &mut rng()));
    // Extra form fields cannot redirect elsewhere or change the user.
    let form = format!(
        "redirect_uri=https%3A%2F%2Fevil.example&mode=azureadjoin&oid=x&state={state}&action=accept"
    );
    let Ok(Submission::Accept(ctx2)) = post(&form, &t, tk::NOW + 1) else {
        panic!()
    };
    assert_eq!(ctx2.redirect_uri(), REDIRECT);
    assert_eq!(ctx2.object_id(), tk::ALICE.oid);
    assert!(!ctx2.organization_owned());
    // Expired (30 minutes by default).
    assert_eq!(
        post(&format!("state={state}&action=accept"), &t, tk::NOW + 1801)
            .unwrap_err()
            .status(),
        400
    );
    // Tampered, missing, repeated, from another key.
    let mut forged: Vec<char> = state.chars().collect();
    let i = forged.len() - 3;
    forged[i] = if forged[i] == 'x' { 'y' } else { 'x' };
    let forged: String = forged.into_iter().collect();
    for form in [
        format!("state={forged}&action=accept"),
        "action=accept".to_owned(),
        format!("state={state}&state={state}&action=accept"),
        format!("state={state}&action=accept&action=decline"),
        format!("state={state}&action=bogus"),
        format!("state={state}&action=step"),
    ] {
        assert_eq!(
            post(&form, &t, tk::NOW + 1).unwrap_err().status(),
            400,
            "{form}"
        );
    }
    let other = TermsOfUse::new(
        TouConfig::default(),
        Keyring::new(SealingKey::new("k2026", &[9; 32]).unwrap()),
        validator(),
    );
    assert_eq!(
        post(&format!("state={state}&action=accept"), &other, tk::NOW + 1)
            .unwrap_err()
            .status(),
        400
    );
    // Too large a body.
    assert_eq!(
        post(&"a".repeat(MAX_FORM_BYTES + 1), &t, tk::NOW)
            .unwrap_err()
            .status(),
        400
    );
}

#[test]
fn a_pin_step_before_the_terms_carries_progress_and_cannot_be_skipped() {
    let t = tou();
    let ctx = t
        .begin(&get(&std_query(), Some(&alice()), &[]), tk::NOW, &mut rng())
        .unwrap();
    let pin = StepPage {
        id: "pin".into(),
        title: "Enter your code".into(),
        intro: "We sent a code to your phone.".into(),
        fields: vec![StepField {
            name: "code".into(),
            label: "Code".into(),
            kind: FieldKind::OneTimeCode,
        }],
        error: None,
    };
    let page = t.step_page(&ctx, &pin, tk::NOW, &mut rng());
    let html = String::from_utf8(page.body().clone()).unwrap();
    assert!(html.contains("autocomplete=\"one-time-code\"") && !html.contains("type=\"password\""));
    let state = state_of(page);
    // Accept cannot be posted from the step page.
    assert_eq!(
        post(&format!("state={state}&action=accept"), &t, tk::NOW + 1)
            .unwrap_err()
            .status(),
        400
    );
    let Ok(Submission::Step {
        mut ctx,
        step,
        fields,
    }) = post(
        &format!("state={state}&action=step&field.code=123456"),
        &t,
        tk::NOW + 1,
    )
    else {
        panic!()
    };
    assert_eq!((step.as_str(), fields["code"].as_str()), ("pin", "123456"));
    // The vendor checks the code, records it, and shows the terms.
    ctx.set_progress("pin", "verified").unwrap();
    ctx.set_blob_data(Some("{\"pin\":\"ok\",\"ring\":\"pilot\"}".into()))
        .unwrap();
    assert!(
        ctx.set_progress("big", &"x".repeat(MAX_PROGRESS_BYTES))
            .is_err()
    );
    assert!(
        ctx.set_blob_data(Some("x".repeat(MAX_BLOB_DATA_BYTES + 1)))
            .is_err()
    );
    let state = state_of(t.terms_page(&ctx, &Terms::text("T", "x"), tk::NOW + 2, &mut rng()));
    let Ok(Submission::Accept(ctx)) =
        post(&format!("state={state}&action=accept"), &t, tk::NOW + 3)
    else {
        panic!()
    };
    assert_eq!(ctx.progress("pin"), Some("verified"));
    let q = query_of(&location(&t.accept(&ctx, tk::NOW + 3, &mut rng())));
    let who = TokenIdentity {
        tenant_id: tk::CONTOSO.id,
        object_id: tk::ALICE.oid,
    };
    let data = t.verifier().verify(&q[0].1, &who, tk::NOW + 4).unwrap();
    assert_eq!(
        data.vendor_data.as_deref(),
        Some("{\"pin\":\"ok\",\"ring\":\"pilot\"}")
    );
    assert!(
        format!("{data:?}").contains("[27 bytes]"),
        "vendor data is not printed in Debug"
    );
}

#[test]
fn pages_escape_theme_and_set_security_headers() {
    let t = tou();
    let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; WebView/3.0) Edge/18.19045";
    let ctx = t
        .begin(
            &get(
                &std_query(),
                Some(&alice()),
                &[("cxh-host", "FRX"), ("user-agent", ua)],
            ),
            tk::NOW,
            &mut rng(),
        )
        .unwrap();
    assert_eq!(ctx.scenario(), Scenario::Oobe);
    assert_eq!(
        ctx.windows().and_then(WindowsVersion::is_windows_11),
        Some(false)
    );
    let r = t.terms_page(
        &ctx,
        &Terms::text(
            "Contoso <b>terms</b>",
            "Line one\nline two\n\n<script>alert(1)</script>",
        ),
        tk::NOW,
        &mut rng(),
    );
    let h = r.headers();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        h["content-length"].to_str().unwrap(),
        r.body().len().to_string()
    );
    assert!(h.get("x-frame-options").is_none());
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("frame-ancestors 'self' ms-appx-web: ms-appx:"),
        "{csp}"
    );
    assert!(csp.contains("form-action 'self' ms-appx-web:"), "{csp}");
    assert!(csp.contains("script-src 'nonce-"), "{csp}");
    let html = String::from_utf8(r.body().clone()).unwrap();
    assert!(html.contains("<html lang=\"en\" class=\"theme-dark\">"));
    assert!(html.contains("Contoso &lt;b&gt;terms&lt;/b&gt;"));
    assert!(
        html.contains("<p>Line one<br>line two</p><p>&lt;script&gt;alert(1)&lt;/script&gt;</p>")
    );
    assert!(!html.contains("<script>alert"));
    assert!(html.contains("history.back()") && html.contains("history.forward()"));
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(html.contains(&format!("<script nonce=\"{nonce}\">")));
    // Settings (and no or unknown CXH-HOST) is light.
    for host in [Some("MOSET"), None, Some("WHATEVER")] {
        let hs: Vec<(&str, &str)> = host.map(|h| ("cxh-host", h)).into_iter().collect();
        let ctx = t
            .begin(&get(&std_query(), Some(&alice()), &hs), tk::NOW, &mut rng())
            .unwrap();
        let html = String::from_utf8(
            t.terms_page(&ctx, &Terms::text("T", "x"), tk::NOW, &mut rng())
                .into_body(),
        )
        .unwrap();
        assert!(html.contains("class=\"theme-light\""), "{host:?}");
    }
    // Trusted HTML goes in as is.
    let terms = Terms {
        title: "T".into(),
        body: TermsBody::TrustedHtml("<ol><li>One</li></ol>".into()),
    };
    let html =
        String::from_utf8(t.terms_page(&ctx, &terms, tk::NOW, &mut rng()).into_body()).unwrap();
    assert!(html.contains("<ol><li>One</li></ol>"));
}

#[test]
fn microsoft_template_stylesheets_by_scenario_and_windows_version() {
    let page = PageConfig {
        stylesheet: Stylesheet::MicrosoftTemplates {
            base_url: "https://cdn.contoso.example/mdm-isv/".into(),
        },
        ..PageConfig::default()
    };
    let t = TermsOfUse::new(TouConfig::default().with_page(page), keyring(), validator());
    let cases = [
        ("FRX", "Edge/18.19045", ["ui-dark.css", "oobe-desktop.css"]),
        ("FRX", "Edge/18.22631", ["ui-light.css", "oobe-light.css"]),
        (
            "MOSET",
            "Edge/18.19045",
            ["ui-light.css", "settings-desktop.css"],
        ),
        (
            "MOSET",
            "Edge/18.26100",
            ["ui-light.css", "settings-desktop.css"],
        ),
    ];
    for (host, edge, files) in cases {
        let ua = format!("Mozilla/5.0 (Windows NT 10.0; Win64; x64; WebView/3.0) {edge}");
        let ctx = t
            .begin(
                &get(
                    &std_query(),
                    Some(&alice()),
                    &[("cxh-host", host), ("user-agent", &ua)],
                ),
                tk::NOW,
                &mut rng(),
            )
            .unwrap();
        let r = t.terms_page(&ctx, &Terms::text("T", "x"), tk::NOW, &mut rng());
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("style-src 'nonce-") && csp.contains("https://cdn.contoso.example"),
            "{csp}"
        );
        let html = String::from_utf8(r.into_body()).unwrap();
        for f in files {
            assert!(
                html.contains(&format!("href=\"https://cdn.contoso.example/mdm-isv/{f}\"")),
                "{host} {edge}: {f}"
            );
        }
    }
}

#[test]
fn api_versions_are_configurable() {
    let mut config = TouConfig::default();
    config.api_versions.push("2.0".into());
    let t = TermsOfUse::new(config, keyring(), validator());
    let q = format!("redirect_uri={REDIRECT}&client-request-id={CRID}&api-version=2.0");
    t.begin(&get(&q, Some(&alice()), &[]), tk::NOW, &mut rng())
        .unwrap();
}
