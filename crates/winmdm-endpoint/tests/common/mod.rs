//! The endpoint every test drives: static Entra keys for Contoso and Fabrikam, the
//! testkit's CA, a memory store; requests passed as a web framework would pass them.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use winmdm_endpoint::{Components, Endpoint, EndpointConfig, Handled, Input, MemoryStore};
use winmdm_entra::{KeyCache, KeySource, Policy, Principals, TokenVersion, Validator};
use winmdm_testkit::entra::{self, CONTOSO, FABRIKAM, KEY_1, KEY_FABRIKAM};
use winmdm_testkit::pki;

pub(crate) const URL: &str = "https://mdm.contoso.example";
pub(crate) const NOW: u64 = entra::NOW;

pub(crate) fn static_cache() -> KeyCache {
    KeyCache::new(vec![
        KeySource::static_jwks(
            entra::jwks([&KEY_1]).to_string().as_bytes(),
            CONTOSO.v2_issuer(),
            TokenVersion::V2,
        )
        .unwrap(),
        KeySource::static_jwks(
            entra::jwks([&KEY_FABRIKAM]).to_string().as_bytes(),
            FABRIKAM.v2_issuer(),
            TokenVersion::V2,
        )
        .unwrap(),
    ])
}

/// Keys from Entra's metadata (fetched by the test's own closure).
pub(crate) fn entra_cache() -> KeyCache {
    KeyCache::new(vec![KeySource::entra(
        "https://login.example",
        "organizations",
        TokenVersion::V2,
    )])
}

pub(crate) fn policy(principals: Principals) -> Policy {
    Policy::builder()
        .allow_tenants([CONTOSO.id, FABRIKAM.id])
        .allow_audiences([entra::MDM_APP_ID])
        .principals(principals)
        .build()
        .unwrap()
}

pub(crate) fn components(store: Arc<MemoryStore>, validator: Validator) -> Components {
    let ca = &pki::INTERMEDIATE_CA;
    Components {
        store,
        validator,
        keyring: winmdm_tou::Keyring::new(winmdm_tou::SealingKey::new("k1", &[7; 32]).unwrap()),
        terms: winmdm_tou::Terms::text("Terms", "Be nice."),
        signer: Arc::new(
            winmdm_enroll::issue::LocalIssuer::new(
                ca.cert_der,
                ca.key_der,
                Vec::new(),
                ca.cert_der.to_vec(),
            )
            .unwrap(),
        ),
        issuing_ca: ca.cert_der.to_vec(),
    }
}

pub(crate) fn endpoint_with(
    configure: impl FnOnce(&mut EndpointConfig),
) -> (Endpoint, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let mut config = EndpointConfig::new(URL);
    config.initial_commands = vec![winmdm_endpoint::CommandSpec::Get {
        targets: vec!["./DevDetail/SwV".into()],
    }];
    configure(&mut config);
    let validator = Validator::new(policy(Principals::Users), Arc::new(static_cache()));
    let ep = Endpoint::new(config, components(store.clone(), validator)).unwrap();
    (ep, store)
}

pub(crate) fn endpoint() -> (Endpoint, Arc<MemoryStore>) {
    endpoint_with(|_| {})
}

pub(crate) fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) headers: http::HeaderMap,
}

pub(crate) fn send(
    ep: &Endpoint,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    send_at(ep, method, uri, headers, body, Input::new(NOW))
}

/// [`send`] with the time and client certificate of `input`.
pub(crate) fn send_at(
    ep: &Endpoint,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
    input: Input<'_>,
) -> Answer {
    match ep.handle(&parts(method, uri, headers), body.as_bytes(), input) {
        Handled::Response(r) => Answer {
            status: r.status().as_u16(),
            body: String::from_utf8_lossy(r.body()).into_owned(),
            headers: r.headers().clone(),
        },
        Handled::RefreshKeys => panic!("static keys never need a refresh"),
    }
}

/// The device certificate in a provisioning document (the `My/User` or `My/System` store).
pub(crate) fn base64_cert(doc: &str) -> Vec<u8> {
    use base64::Engine as _;
    let start = doc.find(r#"<characteristic type="My">"#).unwrap();
    let key = r#"<parm name="EncodedCertificate" value=""#;
    let at = doc[start..].find(key).unwrap() + start + key.len();
    let end = doc[at..].find('"').unwrap() + at;
    base64::engine::general_purpose::STANDARD
        .decode(doc[at..end].replace(['\r', '\n'], ""))
        .unwrap()
}
