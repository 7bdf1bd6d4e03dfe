//! A whole WSTEP enrollment beside the raw crypto it cannot avoid.
//!
//! * `ceiling/rs256_token_verify` — aws-lc-rs RSA-2048 SHA-256 verify of the Entra
//!   token's signature (pre-parsed key);
//! * `ceiling/rsa2048_csr_verify` — aws-lc-rs RSA-2048 SHA-256 verify of the CSR's
//!   proof-of-possession signature;
//! * `ceiling/p256_sign` — aws-lc-rs ECDSA P-256 signature of a certificate-sized message
//!   (the issuing CA's key);
//! * `winmdm_enroll/full_rst` — parse the RST (SOAP, token, CSR, context items), validate
//!   the token with winmdm-entra, check the CSR, build and sign the certificate (rcgen on
//!   aws-lc-rs, P-256 CA), and build the RSTRC with the provisioning document.
//!
//! The acceptance ratio is `full_rst` over the *sum* of the three ceilings
//! (`benches/report.py` prints it). For information, not counted in that sum:
//! `info/rsa2048_csr_verify_unparsed_key` (the CSR verify with the key parse every new
//! CSR needs), `info/quick_xml_scan_rst` (quick-xml's raw event scan of the request, what
//! any reading of it costs at least), and the `stage/*` parts of `full_rst`.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use criterion::{Criterion, criterion_group, criterion_main};
use rustls_pki_types::UnixTime;
use std::hint::black_box;
use winmdm_enroll::issue::{self, CertificateSigner, IssuancePolicy, LocalIssuer, Requester};
use winmdm_enroll::provisioning::ProvisioningConfig;
use winmdm_enroll::wstep;
use winmdm_entra::{KeyCache, KeySource, Policy, TokenVersion, Validator};
use winmdm_testkit::entra::{self as tk, ALICE, AccessToken, CONTOSO};
use winmdm_testkit::{pki, samples};
use x509_parser::prelude::FromDer as _;

fn enroll(c: &mut Criterion) {
    let token = AccessToken::for_enrollment(&CONTOSO, &ALICE).sign();
    let csr = &pki::WINDOWS11_CSR;
    let body = samples::get(11)
        .unwrap()
        .unwrap()
        .body
        .replace(
            "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentUserToken",
            "urn:ietf:params:oauth:token-type:jwt",
        )
        .replace("B64EncodedSampleBinarySecurityToken\"", &STANDARD.encode(&token))
        .replace(
            "DER format PKCS#10 certificate request in Base64 encoding Insterted Here",
            &STANDARD.encode(csr.csr_der),
        )
        .replace("7BA748C8-703E-4DF2-A74A-92984117346A", csr.device_id)
        .replace("<ac:Value>Full</ac:Value>", "<ac:Value>Device</ac:Value>");
    let now = UnixTime::since_unix_epoch(Duration::from_secs(tk::NOW));
    let jwks = tk::jwks([&tk::KEY_1, &tk::KEY_2]).to_string();
    let source =
        KeySource::static_jwks(jwks.as_bytes(), tk::V2_ISSUER_TEMPLATE, TokenVersion::V2).unwrap();
    let policy = Policy::builder()
        .allow_tenants([CONTOSO.id])
        .allow_audiences([tk::MDM_APP_ID, tk::MDM_APP_ID_URI])
        .accept_v1()
        .build()
        .unwrap();
    let validator = Validator::new(policy, Arc::new(KeyCache::new(vec![source])));
    let issuer = LocalIssuer::new(
        pki::INTERMEDIATE_CA.cert_der,
        pki::INTERMEDIATE_CA.key_der,
        Vec::new(),
        pki::ROOT_CA.cert_der.to_vec(),
    )
    .unwrap();
    let config = ProvisioningConfig {
        provider_id: "winmdm".into(),
        name: "Contoso MDM".into(),
        dm_server_url: "https://mdm.contoso.example/ManagementServer/MDM.svc".into(),
        client_auth: ("dev".into(), "secret".into(), STANDARD.encode([7u8; 16])),
        server_auth: ("srv".into(), "secret".into()),
        renewal: Some(Default::default()),
        poll: Default::default(),
        ent_dm_id: "8f3c2a10-0000-4000-8000-000000000001".into(),
        ent_device_name: None,
        upn: None,
        extra: Vec::new(),
    };
    let full = || {
        let req = wstep::parse_rst(black_box(body.as_bytes())).unwrap();
        let jwt = req.token.as_ref().and_then(|t| t.jwt()).unwrap();
        let claims = validator.validate(jwt, now).unwrap();
        let requester = Requester {
            upn: claims.get().upn.clone(),
            token_device_id: None,
        };
        let (pending, _) = issue::begin(
            &req,
            &requester,
            &IssuancePolicy::default(),
            tk::NOW,
            [9; 16],
        )
        .unwrap();
        let signed = issuer.sign(&pending.template).unwrap();
        issue::complete(&pending, &signed, &config, tk::NOW)
    };
    assert!(full().contains("DeviceEnrollmentProvisionDoc"));

    // The ceilings' inputs.
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let token_key = ParsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        tk::KEY_1.rsa_public_key_der(),
    )
    .unwrap();
    token_key.verify_sig(input.as_bytes(), &sig).unwrap();
    let (_, req) =
        x509_parser::certification_request::X509CertificationRequest::from_der(csr.csr_der)
            .unwrap();
    let csr_info = req.certification_request_info.raw.to_vec();
    let csr_sig = req.signature_value.data.to_vec();
    let csr_key = ParsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        &*req
            .certification_request_info
            .subject_pki
            .subject_public_key
            .data,
    )
    .unwrap();
    csr_key.verify_sig(&csr_info, &csr_sig).unwrap();
    let ca_key = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        pki::INTERMEDIATE_CA.key_der,
    )
    .unwrap();
    let rng = SystemRandom::new();
    let tbs = vec![0x5a_u8; 600];

    let mut group = c.benchmark_group("enroll-wstep");
    group.bench_function("ceiling/rs256_token_verify", |b| {
        b.iter(|| {
            token_key
                .verify_sig(black_box(input.as_bytes()), black_box(&sig))
                .unwrap()
        })
    });
    group.bench_function("ceiling/rsa2048_csr_verify", |b| {
        b.iter(|| {
            csr_key
                .verify_sig(black_box(&csr_info), black_box(&csr_sig))
                .unwrap()
        })
    });
    // For information: the same verify when the key must first be parsed, as for every
    // new CSR (not counted in the ceiling sum).
    let csr_key_der = req
        .certification_request_info
        .subject_pki
        .subject_public_key
        .data
        .to_vec();
    group.bench_function("info/rsa2048_csr_verify_unparsed_key", |b| {
        b.iter(|| {
            signature::UnparsedPublicKey::new(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                black_box(&csr_key_der),
            )
            .verify(black_box(&csr_info), black_box(&csr_sig))
            .unwrap()
        })
    });
    group.bench_function("ceiling/p256_sign", |b| {
        b.iter(|| ca_key.sign(&rng, black_box(&tbs)).unwrap())
    });
    group.bench_function("winmdm_enroll/full_rst", |b| b.iter(full));
    // For information: quick-xml's raw event scan of the same request (what any reading
    // of it costs at least; not counted in the ceiling sum).
    group.bench_function("info/quick_xml_scan_rst", |b| {
        b.iter(|| {
            let mut reader = quick_xml::Reader::from_reader(black_box(body.as_bytes()));
            let mut events = 0u32;
            loop {
                match reader.read_event() {
                    Ok(quick_xml::events::Event::Eof) => break events,
                    Ok(_) => events += 1,
                    Err(e) => panic!("{e}"),
                }
            }
        })
    });
    // Where the time goes.
    let req = wstep::parse_rst(body.as_bytes()).unwrap();
    let jwt = req.token.as_ref().and_then(|t| t.jwt()).unwrap().to_owned();
    let (pending, _) = issue::begin(
        &req,
        &Requester::default(),
        &IssuancePolicy::default(),
        tk::NOW,
        [9; 16],
    )
    .unwrap();
    let signed = issuer.sign(&pending.template).unwrap();
    group.bench_function("stage/parse_rst", |b| {
        b.iter(|| wstep::parse_rst(black_box(body.as_bytes())).unwrap())
    });
    group.bench_function("stage/validate_token", |b| {
        b.iter(|| validator.validate(black_box(&jwt), now).unwrap())
    });
    group.bench_function("stage/begin_csr", |b| {
        b.iter(|| {
            issue::begin(
                black_box(&req),
                &Requester::default(),
                &IssuancePolicy::default(),
                tk::NOW,
                [9; 16],
            )
            .unwrap()
        })
    });
    group.bench_function("stage/sign_certificate", |b| {
        b.iter(|| issuer.sign(black_box(&pending.template)).unwrap())
    });
    group.bench_function("stage/complete", |b| {
        b.iter(|| issue::complete(black_box(&pending), &signed, &config, tk::NOW))
    });
    group.finish();
}

criterion_group!(benches, enroll);
criterion_main!(benches);
