//! The Entra emulator over real loopback HTTP.
#![cfg(feature = "emulator")]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use winmdm_testkit::emulator::{AppRegistration, EmulatorConfig, EntraEmulator};
use winmdm_testkit::entra::{
    self, APP_CREDENTIAL_1, APP_CREDENTIAL_2, APP_SECRET_1, APP_SECRET_2, AssertionAlg, CONTOSO,
    FABRIKAM, KEY_1, KEY_2, KEY_4, KEY_FABRIKAM, MDM_APP_ID, STRAY_KEY, TokenVersion,
    V2_ISSUER_TEMPLATE,
};
use winmdm_testkit::loopback;

const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

fn json(resp: &http::Response<Vec<u8>>) -> Value {
    serde_json::from_slice(resp.body()).expect("JSON body")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn kids(doc: &Value) -> Vec<String> {
    doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn metadata_documents() {
    let emu = EntraEmulator::spawn().unwrap();
    let v2 = json(&loopback::get(&emu.metadata_url("common", TokenVersion::V2)).unwrap());
    assert_eq!(v2["issuer"], V2_ISSUER_TEMPLATE);
    assert_eq!(v2["jwks_uri"], emu.jwks_url("common", TokenVersion::V2));
    let v2t = json(&loopback::get(&emu.metadata_url(CONTOSO.id, TokenVersion::V2)).unwrap());
    assert_eq!(v2t["issuer"], CONTOSO.v2_issuer());
    assert_eq!(v2t["token_endpoint"], emu.token_url(CONTOSO.id));
    // A domain resolves to the tenant ID, as on Entra.
    let by_domain =
        json(&loopback::get(&emu.metadata_url(CONTOSO.domain, TokenVersion::V1)).unwrap());
    assert_eq!(by_domain["issuer"], CONTOSO.v1_issuer());
    let unknown = loopback::get(&emu.metadata_url("nowhere.example", TokenVersion::V2)).unwrap();
    assert_eq!(unknown.status(), 400);
    assert_eq!(json(&unknown)["error_codes"][0], 90002);
}

#[test]
fn jwks_carries_per_key_issuer_and_tenant_scoping() {
    let emu = EntraEmulator::spawn().unwrap();
    let common = json(&loopback::get(&emu.jwks_url("common", TokenVersion::V2)).unwrap());
    assert_eq!(kids(&common), [KEY_1.kid(), KEY_FABRIKAM.kid()]);
    for key in common["keys"].as_array().unwrap() {
        assert!(key["issuer"].is_string(), "every key has issuer: {key}");
        assert_eq!(key["kty"], "RSA");
        assert!(key["x5c"][0].is_string());
    }
    assert_eq!(common["keys"][0]["issuer"], V2_ISSUER_TEMPLATE);
    assert_eq!(common["keys"][1]["issuer"], FABRIKAM.v2_issuer());
    // Contoso's own JWKS does not publish Fabrikam's bound key.
    let contoso = json(&loopback::get(&emu.jwks_url(CONTOSO.id, TokenVersion::V2)).unwrap());
    assert_eq!(kids(&contoso), [KEY_1.kid()]);
    assert!(!kids(&common).contains(&STRAY_KEY.kid().to_owned()));
}

#[test]
fn key_rotation_publishes_new_and_keeps_previous() {
    let emu = EntraEmulator::spawn().unwrap();
    let url = emu.jwks_url(CONTOSO.id, TokenVersion::V2);
    assert_eq!(emu.active_key().kid(), KEY_1.kid());
    emu.rotate_keys();
    assert_eq!(emu.active_key().kid(), KEY_2.kid());
    assert_eq!(
        kids(&json(&loopback::get(&url).unwrap())),
        [KEY_2.kid(), KEY_1.kid()]
    );
    emu.rotate_keys();
    assert_eq!(
        kids(&json(&loopback::get(&url).unwrap())),
        [KEY_4.kid(), KEY_2.kid()]
    );
}

#[test]
fn client_credentials_with_secret_basic_and_assertions() {
    let emu = EntraEmulator::spawn().unwrap();
    let url = emu.token_url(CONTOSO.id);
    let ok = |resp: http::Response<Vec<u8>>| {
        assert_eq!(
            resp.status(),
            200,
            "{}",
            String::from_utf8_lossy(resp.body())
        );
        let body = json(&resp);
        assert_eq!(body["token_type"], "Bearer");
        let token = body["access_token"].as_str().unwrap().to_owned();
        let (header, claims) = entra::decode_unverified(&token).unwrap();
        assert_eq!(header["kid"], KEY_1.kid());
        assert_eq!(claims["aud"], "https://graph.microsoft.com");
        assert_eq!(claims["tid"], CONTOSO.id);
        assert_eq!(claims["iss"], CONTOSO.v1_issuer());
        assert_eq!(claims["idtyp"], "app");
        assert_eq!(claims["roles"][0], "Device.ReadWrite.All");
        assert!(claims["exp"].as_u64().unwrap() > now());
    };
    for secret in [APP_SECRET_1, APP_SECRET_2] {
        ok(loopback::post_form(
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", MDM_APP_ID),
                ("client_secret", secret),
                ("scope", GRAPH_SCOPE),
            ],
        )
        .unwrap());
    }
    // client_secret_basic
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{MDM_APP_ID}:{APP_SECRET_1}"));
    let request = http::Request::post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {basic}"))
        .body(
            format!(
                "grant_type=client_credentials&scope={}",
                "https%3A%2F%2Fgraph.microsoft.com%2F.default"
            )
            .into_bytes(),
        )
        .unwrap();
    ok(loopback::send(request).unwrap());
    // Certificate assertions, both header styles, both credentials (rollover).
    for cred in [&APP_CREDENTIAL_1, &APP_CREDENTIAL_2] {
        for alg in [AssertionAlg::Rs256X5t, AssertionAlg::Ps256X5tS256] {
            let assertion = cred.client_assertion(MDM_APP_ID, &url, now(), alg);
            ok(loopback::post_form(
                &url,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", MDM_APP_ID),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                    ("scope", GRAPH_SCOPE),
                ],
            )
            .unwrap());
        }
    }
    let log = emu.requests();
    assert_eq!(log.len(), 7);
    assert!(
        log.iter().all(|r| !r.note.contains("secret-1~")),
        "no secret in the log"
    );
}

fn token_error(emu: &EntraEmulator, tenant: &str, fields: &[(&str, &str)]) -> (u16, String, u64) {
    let resp = loopback::post_form(&emu.token_url(tenant), fields).unwrap();
    let body = json(&resp);
    (
        resp.status().as_u16(),
        body["error"].as_str().unwrap_or_default().to_owned(),
        body["error_codes"][0].as_u64().unwrap_or_default(),
    )
}

#[test]
fn client_credentials_rejections() {
    let emu = EntraEmulator::spawn().unwrap();
    let url = emu.token_url(CONTOSO.id);
    let base = |extra: &[(&'static str, &'static str)]| {
        let mut v = vec![
            ("grant_type", "client_credentials"),
            ("client_id", MDM_APP_ID),
            ("scope", GRAPH_SCOPE),
        ];
        v.extend_from_slice(extra);
        v
    };
    assert_eq!(
        token_error(&emu, CONTOSO.id, &base(&[("client_secret", "wrong")])),
        (401, "invalid_client".into(), 7000215)
    );
    assert_eq!(
        token_error(&emu, CONTOSO.id, &base(&[])),
        (401, "invalid_client".into(), 7000218)
    );
    assert_eq!(
        token_error(&emu, "common", &base(&[("client_secret", APP_SECRET_1)])).0,
        400
    );
    assert_eq!(
        token_error(
            &emu,
            "nowhere.example",
            &base(&[("client_secret", APP_SECRET_1)])
        )
        .2,
        90002
    );
    let mut wrong_scope = base(&[("client_secret", APP_SECRET_1)]);
    wrong_scope[2] = ("scope", "https://graph.microsoft.com/Device.ReadWrite.All");
    assert_eq!(
        token_error(&emu, CONTOSO.id, &wrong_scope).1,
        "invalid_scope"
    );
    let mut wrong_grant = base(&[("client_secret", APP_SECRET_1)]);
    wrong_grant[0] = ("grant_type", "authorization_code");
    assert_eq!(
        token_error(&emu, CONTOSO.id, &wrong_grant).1,
        "unsupported_grant_type"
    );
    let mut unknown_app = base(&[("client_secret", APP_SECRET_1)]);
    unknown_app[1] = ("client_id", "00000000-0000-4000-8000-000000000000");
    assert_eq!(token_error(&emu, CONTOSO.id, &unknown_app).2, 700016);

    let assertion_fields = |assertion: &str| {
        let mut v: Vec<(&str, String)> = base(&[])
            .into_iter()
            .map(|(k, v)| (k, v.to_owned()))
            .collect();
        v.push((
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
        ));
        v.push(("client_assertion", assertion.to_owned()));
        v
    };
    let post = |fields: Vec<(&str, String)>| {
        let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        token_error(&emu, CONTOSO.id, &f)
    };
    // Expired assertion.
    let old =
        APP_CREDENTIAL_1.client_assertion(MDM_APP_ID, &url, now() - 3600, AssertionAlg::Rs256X5t);
    assert_eq!(post(assertion_fields(&old)).2, 700024);
    // Wrong audience.
    let wrong_aud = APP_CREDENTIAL_1.client_assertion(
        MDM_APP_ID,
        "https://elsewhere.example/token",
        now(),
        AssertionAlg::Rs256X5t,
    );
    assert_eq!(post(assertion_fields(&wrong_aud)).2, 700021);
    // Tampered signature.
    let good =
        APP_CREDENTIAL_1.client_assertion(MDM_APP_ID, &url, now(), AssertionAlg::Ps256X5tS256);
    // Flip a character well inside the signature (the last one may only carry padding bits).
    let mut tampered = good.clone().into_bytes();
    let i = tampered.len() - 20;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(post(assertion_fields(&tampered)).2, 700027);
    // Secret and assertion together.
    let mut both = assertion_fields(&good);
    both.push(("client_secret", APP_SECRET_1.to_owned()));
    assert_eq!(post(both).0, 400);
}

#[test]
fn single_tenant_app_only_in_its_tenant() {
    let mut app = AppRegistration::mdm_app();
    app.home_tenant = Some(CONTOSO);
    let emu = EntraEmulator::spawn_with(EmulatorConfig {
        apps: vec![app],
        ..EmulatorConfig::default()
    })
    .unwrap();
    let fields = [
        ("grant_type", "client_credentials"),
        ("client_id", MDM_APP_ID),
        ("client_secret", APP_SECRET_1),
        ("scope", GRAPH_SCOPE),
    ];
    assert_eq!(
        loopback::post_form(&emu.token_url(CONTOSO.id), &fields)
            .unwrap()
            .status(),
        200
    );
    assert_eq!(token_error(&emu, FABRIKAM.id, &fields).2, 700016);
}

#[test]
fn failure_injection_and_delay() {
    let emu = EntraEmulator::spawn().unwrap();
    let url = emu.jwks_url("common", TokenVersion::V2);
    emu.fail_next(2, 503);
    assert_eq!(loopback::get(&url).unwrap().status(), 503);
    assert_eq!(loopback::get(&url).unwrap().status(), 503);
    assert_eq!(loopback::get(&url).unwrap().status(), 200);
    emu.set_delay(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(loopback::get(&url).unwrap().status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    let statuses: Vec<u16> = emu.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200, 200]);
    assert_eq!(emu.token_requests(), 0);
}

#[test]
fn issued_tokens_rotate_with_keys() {
    let emu = EntraEmulator::spawn().unwrap();
    emu.rotate_keys();
    let resp = loopback::post_form(
        &emu.token_url(CONTOSO.id),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", MDM_APP_ID),
            ("client_secret", APP_SECRET_1),
            ("scope", GRAPH_SCOPE),
        ],
    )
    .unwrap();
    let token = json(&resp)["access_token"].as_str().unwrap().to_owned();
    let (header, _) = entra::decode_unverified(&token).unwrap();
    assert_eq!(header["kid"], KEY_2.kid());
}

#[test]
fn password_grant_issues_user_tokens_for_the_mdm() {
    let emu = EntraEmulator::spawn().unwrap();
    let device = "6a9d3c1e-0000-4000-8000-0000000d0e01";
    let form = |user: &str, password: &str, scope: &str| {
        vec![
            ("grant_type", "password".to_owned()),
            ("client_id", entra::WINDOWS_CLIENT_APP_ID.to_owned()),
            ("username", user.to_owned()),
            ("password", password.to_owned()),
            ("scope", scope.to_owned()),
            ("device_id", device.to_owned()),
        ]
    };
    let mdm_scope = format!("{MDM_APP_ID}/.default");
    let fields = form(entra::ALICE.upn, entra::USER_PASSWORD, &mdm_scope);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = loopback::post_form(&emu.token_url(CONTOSO.id), &fields).unwrap();
    assert_eq!(
        resp.status(),
        200,
        "{}",
        String::from_utf8_lossy(resp.body())
    );
    let token = json(&resp)["access_token"].as_str().unwrap().to_owned();
    let (_, claims) = entra::decode_unverified(&token).unwrap();
    assert_eq!(claims["aud"], MDM_APP_ID);
    assert_eq!(claims["tid"], CONTOSO.id);
    assert_eq!(claims["oid"], entra::ALICE.oid);
    assert_eq!(claims["deviceid"], device);
    assert_eq!(claims["iss"], CONTOSO.v2_issuer());
    assert!(claims["exp"].as_u64().unwrap() > now());

    // Refusals: a wrong password, a user of another tenant, a scope other than the MDM's,
    // and a client other than Windows.
    for (fields, code) in [
        (form(entra::ALICE.upn, "nope", &mdm_scope), 50_126),
        (
            form(entra::BOB.upn, entra::USER_PASSWORD, &mdm_scope),
            50_034,
        ),
        (
            form(entra::ALICE.upn, entra::USER_PASSWORD, GRAPH_SCOPE),
            70_011,
        ),
    ] {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, got) = token_error(&emu, CONTOSO.id, &fields);
        assert_eq!((status, got), (400, code));
    }
    let (status, error, _) = token_error(
        &emu,
        CONTOSO.id,
        &[
            ("grant_type", "password"),
            ("client_id", MDM_APP_ID),
            ("username", entra::ALICE.upn),
            ("password", entra::USER_PASSWORD),
            ("scope", &mdm_scope),
        ],
    );
    assert_eq!((status, error.as_str()), (400, "unauthorized_client"));
}
