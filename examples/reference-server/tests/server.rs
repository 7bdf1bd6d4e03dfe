//! The reference server over real loopback HTTPS, driven by the testkit's simulated
//! Windows device: the demo, the admin API's secret, refused devices leaving no trace,
//! transport rules, configuration pointing at external services, and restarts.

use std::path::PathBuf;

use winmdm_reference_server::config::{Config, Secret};
use winmdm_reference_server::{Running, start};
use winmdm_syncml::client::{Device, MessageBuilder};
use winmdm_syncml::{Command, StatusCode};
use winmdm_testkit::emulator::EntraEmulator;
use winmdm_testkit::entra;
use winmdm_testkit::graph::{EmulatedDevice, GraphEmulator};
use winmdm_testkit::simulator::{self, Simulator, SimulatorConfig, TokenSource};

/// A data directory removed at the end of the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!("winmdm-test-{}", simulator::random_guid()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn config(dir: &TempDir) -> Config {
    let mut c = Config {
        data_dir: dir.0.clone(),
        listen: ([127, 0, 0, 1], 0).into(),
        admin_listen: ([127, 0, 0, 1], 0).into(),
        ..Config::default()
    };
    c.enrollment.renewal_window_days = c.enrollment.validity_days;
    c
}

/// A configuration on a fixed port, so a restarted server is where devices expect it.
fn restartable_config(dir: &TempDir) -> Config {
    let mut c = config(dir);
    c.listen = (
        [127, 0, 0, 1],
        winmdm_testkit::loopback::unused_port().unwrap(),
    )
        .into();
    c
}

fn device_config(running: &Running, authority: &str) -> SimulatorConfig {
    let mut c = SimulatorConfig::new(&running.public_url, TokenSource::emulator(authority));
    c.ca_pem = Some(running.ca_pem.clone());
    c
}

/// `user` of `tenant` signing in at the emulator at `authority` (password grant).
fn signed_in(authority: &str, tenant: &entra::Tenant, user: &entra::User) -> TokenSource {
    TokenSource::Password {
        authority: authority.to_owned(),
        tenant: tenant.id.into(),
        username: user.upn.into(),
        password: entra::USER_PASSWORD.into(),
        scope: format!("{}/.default", entra::MDM_APP_ID),
    }
}

/// Runs `steps` of the simulator's plan, asserting each succeeds.
async fn steps(sim: &mut Simulator, steps: &[&'static str]) {
    for name in steps {
        let step = sim.step(name).await;
        assert!(step.outcome.is_ok(), "{step}");
    }
}

const ENROLL: &[&str] = &[
    "sign in",
    "terms of use: page",
    "terms of use: accept",
    "discovery: probe",
    "discovery: Discover",
    "policy: GetPolicies",
    "enrollment: RST",
];

fn https(running: &Running) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(running.ca_pem.as_bytes()).unwrap())
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn post_syncml(
    running: &Running,
    message: &winmdm_syncml::SyncMl,
    content_type: &str,
) -> reqwest::Response {
    https(running)
        .post(format!("{}/ManagementServer/MDM.svc", running.public_url))
        .header("content-type", content_type)
        .body(winmdm_syncml::encode(message))
        .send()
        .await
        .unwrap()
}

#[test]
fn demo_passes_and_prints_every_step() {
    let rt = runtime();
    let mut out = Vec::new();
    let ok = rt.block_on(winmdm_reference_server::demo::run(&mut out));
    let text = String::from_utf8(out).unwrap();
    assert!(ok, "{text}");
    for step in [
        "terms of use: accept",
        "enrollment: RST",
        "management: session 1",
        "admin: report compliance",
        "renewal: RST Renew",
        "management: unenroll 1226",
        "device 2: the Windows 11 profile",
        "esp: device setup",
        "esp: account setup",
        "admin: ESP progress",
        "demo passed",
    ] {
        assert!(text.contains(step), "{step} missing from\n{text}");
    }
    assert!(!text.contains("FAIL"), "{text}");
    // Times are for people: RFC 3339 (from the admin API), not Unix seconds.
    let checkin = text
        .split("last check-in ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no check-in time in\n{text}"));
    let b = checkin.as_bytes();
    assert!(
        b.len() == 20
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                19 => *c == b'Z',
                _ => c.is_ascii_digit(),
            }),
        "check-in time {checkin:?} is not RFC 3339 UTC"
    );
}

#[test]
fn the_admin_api_refuses_requests_without_the_secret() {
    let rt = runtime();
    let dir = TempDir::new();
    let mut c = config(&dir);
    c.admin_secret = Some(Secret("s3cret-admin-token".into()));
    rt.block_on(async {
        let running = start(c).await.unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = |p: &str| format!("{}{p}", running.admin_url);
        let requests = [
            (reqwest::Method::GET, "/devices", None),
            (reqwest::Method::GET, "/devices/x", None),
            (reqwest::Method::GET, "/devices/x/commands", None),
            (
                reqwest::Method::POST,
                "/devices/x/commands",
                Some(r#"{"verb":"Get","targets":["./DevDetail/SwV"]}"#),
            ),
            (
                reqwest::Method::PUT,
                "/devices/x/compliance",
                Some(r#"{"compliant":true}"#),
            ),
            (reqwest::Method::GET, "/no/such/endpoint", None),
        ];
        for (method, path, body) in &requests {
            for auth in [
                None,
                Some("Bearer wrong"),
                Some("Bearer s3cret-admin-tokenX"),
                Some("Basic s3cret-admin-token"),
                Some("s3cret-admin-token"),
            ] {
                let mut req = http.request(method.clone(), url(path));
                if let Some(a) = auth {
                    req = req.header("authorization", a);
                }
                if let Some(b) = body {
                    req = req.header("content-type", "application/json").body(*b);
                }
                let resp = req.send().await.unwrap();
                assert_eq!(resp.status(), 401, "{method} {path} with {auth:?}");
                assert_eq!(resp.headers()["www-authenticate"], "Bearer");
            }
        }
        // With the secret: answers (an unknown device is 404, not 401).
        let ok = http
            .get(url("/devices"))
            .bearer_auth("s3cret-admin-token")
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let missing = http
            .post(url("/devices/x/commands"))
            .bearer_auth("s3cret-admin-token")
            .header("content-type", "application/json")
            .body(r#"{"verb":"Get","targets":["./DevDetail/SwV"]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        assert_eq!(running.app.store.traces_of("x").unwrap(), 0);
    });
}

#[test]
fn refused_devices_leave_no_trace() {
    let rt = runtime();
    let dir = TempDir::new();
    rt.block_on(async {
        let running = start(config(&dir)).await.unwrap();
        let authority = running.entra.as_ref().unwrap().base_url().to_owned();
        let store = running.app.store.clone();

        // An unknown device: HTTP 401 before any state exists.
        let msg = MessageBuilder::new("1", 1, "intruder-device", &running.public_url)
            .alert_1201()
            .build();
        let resp = post_syncml(&running, &msg, winmdm_syncml::CONTENT_TYPE).await;
        assert_eq!(resp.status(), 401);
        let length = resp.headers()["content-length"]
            .to_str()
            .unwrap()
            .to_owned();
        let reason = resp.text().await.unwrap();
        assert_eq!(length, reason.len().to_string());
        assert!(reason.contains("no enrolled device"), "{reason}");
        assert_eq!(store.traces_of("intruder-device").unwrap(), 0);

        // A user of a tenant that is not allowed: no certificate, no device.
        let mut fabrikam = device_config(&running, &authority);
        fabrikam.token = signed_in(&authority, &entra::FABRIKAM, &entra::BOB);
        let bob_device = fabrikam.device_id.clone();
        let transcript = simulator::run(fabrikam, |_| {}).await;
        assert!(!transcript.succeeded());
        let last = transcript.steps.last().unwrap();
        assert_eq!(last.name, "terms of use: page", "{last}");
        assert_eq!(store.traces_of(&bob_device).unwrap(), 0);

        // An enrolled device, then an impostor with its ID but not its secret.
        let mut sim = Simulator::new(device_config(&running, &authority));
        steps(&mut sim, ENROLL).await;
        let id = sim.device_id().to_owned();
        let queued_before = store.commands(&id).unwrap();
        assert!(queued_before.iter().all(|c| c.state == "queued"));
        let record = store.device(&id).unwrap().unwrap();
        let mut impostor = Device::new(
            &id,
            &format!("{}/ManagementServer/MDM.svc", running.public_url),
        )
        .with_digest(
            &record.digest_username,
            "not-the-secret",
            winmdm_syncml::auth::Nonce::from_b64(&record.nonce).unwrap(),
        );
        let mut message = impostor.start_session();
        for _ in 0..4 {
            let resp = post_syncml(&running, &message, winmdm_syncml::CONTENT_TYPE).await;
            assert_eq!(resp.status(), 200);
            let reply = winmdm_syncml::decode(&resp.bytes().await.unwrap()).unwrap();
            // Only the header status (a challenge or a refusal), never a command.
            assert!(
                reply
                    .body
                    .commands
                    .iter()
                    .all(|c| matches!(c, Command::Status(_))),
                "{reply:?}"
            );
            let header = reply.body.commands.iter().find_map(|c| match c {
                Command::Status(s) if s.cmd_ref.as_deref().map(str::trim) == Some("0") => s.code(),
                _ => None,
            });
            assert!(
                matches!(
                    header,
                    Some(
                        StatusCode::INVALID_CREDENTIALS
                            | StatusCode::MISSING_CREDENTIALS
                            | StatusCode::FORBIDDEN
                    )
                ),
                "{header:?}"
            );
            match impostor.respond(&reply) {
                Some(m) => message = m,
                None => break,
            }
        }
        assert_eq!(
            store.commands(&id).unwrap(),
            queued_before,
            "nothing was handed out"
        );
        assert!(store.device(&id).unwrap().unwrap().last_checkin.is_none());
        assert!(store.session(&id, "1").unwrap().is_none());

        // The real device still gets its commands.
        steps(&mut sim, &["management: session 1"]).await;
        assert!(
            store
                .commands(&id)
                .unwrap()
                .iter()
                .all(|c| c.state == "done")
        );
    });
}

#[test]
fn transport_rules() {
    let rt = runtime();
    let dir = TempDir::new();
    rt.block_on(async {
        let running = start(config(&dir)).await.unwrap();
        let http = https(&running);
        let base = &running.public_url;
        // Content-Length everywhere, never chunked.
        for (method, path, body) in [
            (reqwest::Method::GET, "/healthz", ""),
            (reqwest::Method::GET, "/EnrollmentServer/Discovery.svc", ""),
            (
                reqwest::Method::POST,
                "/EnrollmentServer/Discovery.svc",
                "<nope/>",
            ),
            (
                reqwest::Method::POST,
                "/EnrollmentServer/Enrollment.svc",
                "",
            ),
            (reqwest::Method::GET, "/TermsOfUse", ""),
            (reqwest::Method::GET, "/nowhere", ""),
            (reqwest::Method::GET, "/EnrollmentServer/Policy.svc", ""),
            (reqwest::Method::DELETE, "/ManagementServer/MDM.svc", ""),
        ] {
            let resp = http
                .request(method.clone(), format!("{base}{path}"))
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(
                resp.headers().contains_key("content-length")
                    && !resp.headers().contains_key("transfer-encoding"),
                "{method} {path}: {:?}",
                resp.headers()
            );
        }
        // WBXML is not spoken.
        let msg = MessageBuilder::new("1", 1, "dev", base)
            .alert_1201()
            .build();
        let resp = post_syncml(&running, &msg, "application/vnd.syncml.dm+wbxml").await;
        assert_eq!(resp.status(), 415);
        // Overloaded: 429 with Retry-After.
        let permits = running
            .app
            .in_flight
            .clone()
            .acquire_many_owned(u32::try_from(running.app.config.management.max_in_flight).unwrap())
            .await
            .unwrap();
        let resp = post_syncml(&running, &msg, winmdm_syncml::CONTENT_TYPE).await;
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "5");
        assert_eq!(resp.headers()["content-length"], "0");
        drop(permits);
        let resp = post_syncml(&running, &msg, winmdm_syncml::CONTENT_TYPE).await;
        assert_eq!(resp.status(), 401, "an unknown device once there is room");
        // A body over the limit.
        let big = vec![b'a'; winmdm_reference_server::app::MAX_BODY + 1];
        let resp = http
            .post(format!("{base}/EnrollmentServer/Enrollment.svc"))
            .body(big)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 413);
        assert!(resp.headers().contains_key("content-length"));
    });
}

#[test]
fn external_issuer_and_graph_by_configuration_alone() {
    // Independently started emulators stand in for Entra and Graph.
    let issuer = EntraEmulator::spawn().unwrap();
    let graph = GraphEmulator::spawn().unwrap();
    let rt = runtime();
    let dir = TempDir::new();
    let mut c = config(&dir);
    c.entra.authority = Some(issuer.base_url().to_owned());
    c.graph.url = Some(graph.base_url());
    c.graph.client_secret = Some(Secret(entra::APP_SECRET_2.into()));
    c.admin_secret = Some(Secret("admin".into()));
    rt.block_on(async {
        let running = start(c).await.unwrap();
        assert!(
            running.entra.is_none() && running.graph.is_none(),
            "nothing embedded"
        );
        let mut device = device_config(&running, issuer.base_url());
        device.renew = false;
        device.unenroll = false;
        let object_id = simulator::random_guid();
        graph.add_device(EmulatedDevice {
            tenant_id: entra::CONTOSO.id.into(),
            object_id: object_id.clone(),
            device_id: device.device_id.clone(),
            display_name: "EXT".into(),
            is_compliant: None,
            is_managed: None,
        });
        let id = device.device_id.clone();
        let transcript = simulator::run(device, |_| {}).await;
        assert!(transcript.succeeded(), "{:#?}", transcript.steps);
        let resp = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .put(format!("{}/devices/{id}/compliance", running.admin_url))
            .bearer_auth("admin")
            .body(r#"{"compliant":false}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
        let seen = graph.device(entra::CONTOSO.id, &object_id).unwrap();
        assert_eq!(
            (seen.is_managed, seen.is_compliant),
            (Some(true), Some(false))
        );
        assert_eq!(
            running.app.store.device(&id).unwrap().unwrap().compliant,
            Some(false)
        );
    });
    // The server fetched keys from the external issuer and got its Graph token there.
    let log = issuer.requests();
    assert!(
        log.iter().any(|r| r.path.contains("/discovery/")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|r| r.path.ends_with("/oauth2/v2.0/token") && r.note.contains(entra::MDM_APP_ID)),
        "{log:?}"
    );
    assert!(graph.requests().iter().any(|r| r.method == "PATCH"));
}

#[test]
fn a_restart_keeps_the_ca_and_the_devices() {
    let rt = runtime();
    let dir = TempDir::new();
    let c = restartable_config(&dir);
    rt.block_on(async {
        let first = start(c.clone()).await.unwrap();
        let authority = first.entra.as_ref().unwrap().base_url().to_owned();
        let mut sim = Simulator::new(device_config(&first, &authority));
        steps(&mut sim, ENROLL).await;
        let ca = first.ca_pem.clone();
        first.shutdown().await;
        let second = start(c).await.unwrap();
        assert_eq!(second.ca_pem, ca, "the development CA is kept");
        // The device's stored account and certificate still work.
        steps(&mut sim, &["management: session 1", "renewal: RST Renew"]).await;
        let id = sim.device_id().to_owned();
        let record = second.app.store.device(&id).unwrap().unwrap();
        assert!(record.last_checkin.is_some());
        assert_eq!(
            Some(record.certificate.as_slice()),
            sim.certificate(),
            "the renewed certificate is stored"
        );
    });
}

/// Signs with the testkit's intermediate CA and counts signatures.
struct CountingSigner {
    inner: winmdm_enroll::issue::LocalIssuer,
    count: std::sync::atomic::AtomicUsize,
}

impl winmdm_enroll::issue::CertificateSigner for CountingSigner {
    fn sign(
        &self,
        template: &winmdm_enroll::issue::CertificateTemplate,
    ) -> Result<winmdm_enroll::issue::SignedCertificate, winmdm_enroll::fault::EnrollError> {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.sign(template)
    }
}

#[test]
fn a_signer_and_a_store_given_in_code_replace_the_defaults() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use winmdm_testkit::pki::INTERMEDIATE_CA;

    let rt = runtime();
    let dir = TempDir::new();
    // The HTTPS certificate must be configured when the CA key is elsewhere.
    let issuer = rcgen::Issuer::from_ca_cert_der(
        &INTERMEDIATE_CA.cert_der.into(),
        rcgen::KeyPair::try_from(INTERMEDIATE_CA.key_der).unwrap(),
    )
    .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let tls = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (cert_path, key_path) = (dir.0.join("tls.crt.pem"), dir.0.join("tls.key.pem"));
    std::fs::write(&cert_path, tls.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let mut c = config(&dir);
    c.tls.cert = Some(cert_path);
    c.tls.key = Some(key_path);
    let signer = Arc::new(CountingSigner {
        inner: winmdm_enroll::issue::LocalIssuer::new(
            INTERMEDIATE_CA.cert_der,
            INTERMEDIATE_CA.key_der,
            Vec::new(),
            winmdm_testkit::pki::ROOT_CA.cert_der.to_vec(),
        )
        .unwrap(),
        count: 0.into(),
    });
    let store = Arc::new(winmdm_reference_server::store::SqliteStore::in_memory().unwrap());
    rt.block_on(async {
        let running = winmdm_reference_server::start_with(
            c,
            winmdm_reference_server::Components {
                store: Some(store.clone()),
                signer: Some((signer.clone(), INTERMEDIATE_CA.cert_der.to_vec())),
            },
        )
        .await
        .unwrap();
        let authority = running.entra.as_ref().unwrap().base_url().to_owned();
        let mut device = device_config(&running, &authority);
        device.unenroll = false;
        let id = device.device_id.clone();
        let transcript = simulator::run(device, |_| {}).await;
        assert!(transcript.succeeded(), "{:#?}", transcript.steps);
        assert_eq!(signer.count.load(Ordering::SeqCst), 2, "issue and renew");
        use winmdm_reference_server::store::Store as _;
        let record = store.device(&id).unwrap().unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&record.certificate).unwrap();
        let (_, ca) = x509_parser::parse_x509_certificate(INTERMEDIATE_CA.cert_der).unwrap();
        assert_eq!(cert.issuer(), ca.subject());
        assert!(
            !dir.0.join("winmdm.sqlite3").exists(),
            "the given store was used"
        );
        assert!(
            !dir.0.join("dev-ca.key.pem").exists(),
            "no CA key was generated"
        );
    });
}

#[test]
fn terms_of_use_keys_rotate_without_breaking_blobs_in_flight() {
    let rt = runtime();
    let dir = TempDir::new();
    let keys = dir.0.join("tou-sealing-keys");
    let old_key = format!("k1 {}\n", "11".repeat(32));
    let new_key = format!("k2 {}\n", "22".repeat(32));
    std::fs::write(&keys, &old_key).unwrap();
    let terms = ["sign in", "terms of use: page", "terms of use: accept"];
    let rest = &ENROLL[3..];
    let c = restartable_config(&dir);
    rt.block_on(async {
        let first = start(c.clone()).await.unwrap();
        let authority = first.entra.as_ref().unwrap().base_url().to_owned();
        // Two devices accept the terms under the old key...
        let mut early = Simulator::new(device_config(&first, &authority));
        let mut late = Simulator::new(device_config(&first, &authority));
        steps(&mut early, &terms).await;
        steps(&mut late, &terms).await;
        first.shutdown().await;

        // ...the new key is added in front: blobs sealed with the old one still open.
        std::fs::write(&keys, format!("{new_key}{old_key}")).unwrap();
        let second = start(c.clone()).await.unwrap();
        steps(&mut early, rest).await;
        second.shutdown().await;

        // Once the old key is removed, its blobs are refused.
        std::fs::write(&keys, &new_key).unwrap();
        let third = start(c.clone()).await.unwrap();
        steps(&mut late, &rest[..3]).await;
        let refused = late.step("enrollment: RST").await;
        let why = refused.outcome.unwrap_err();
        assert!(why.contains("InvalidEnrollmentData"), "{why}");
        assert_eq!(third.app.store.traces_of(late.device_id()).unwrap(), 0);

        // A malformed key file stops the server with the line at fault, before any port
        // is taken: even with the port busy (here, the running server holds it), the
        // operator is told about the file.
        std::fs::write(&keys, "k3 not-hex\n").unwrap();
        let err = start(c.clone()).await.unwrap_err();
        assert!(err.contains("tou-sealing-keys:1"), "{err}");
        third.shutdown().await;
        let err = start(c).await.unwrap_err();
        assert!(err.contains("tou-sealing-keys:1"), "{err}");
    });
}

#[test]
fn user_scoped_commands_wait_for_their_user() {
    let rt = runtime();
    let dir = TempDir::new();
    let mut c = config(&dir);
    c.admin_secret = Some(Secret("admin".into()));
    rt.block_on(async {
        let running = start(c).await.unwrap();
        let authority = running.entra.as_ref().unwrap().base_url().to_owned();
        let mut sim = Simulator::new(device_config(&running, &authority));
        steps(&mut sim, ENROLL).await;
        let id = sim.device_id().to_owned();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let queue = |query: String| {
            http.post(format!("{}/devices/{id}/commands{query}", running.admin_url))
                .bearer_auth("admin")
                .header("content-type", "application/json")
                .body(r#"{"verb":"Replace","target":"./User/Vendor/MSFT/Policy/Config/Start/HideAppList","format":"int","data":"1"}"#)
                .send()
        };
        assert_eq!(queue(format!("?user={}", entra::ALICE.oid)).await.unwrap().status(), 201);
        assert_eq!(queue(format!("?user={}", entra::BOB.oid)).await.unwrap().status(), 201);
        for bad in ["?user=alice", "?user=", "?other=1"] {
            assert_eq!(queue(bad.to_owned()).await.unwrap().status(), 400, "{bad}");
        }
        // The session's user is Alice (her AADUserToken, LoginStatus user): her command is
        // sent; Bob's waits in the queue.
        steps(&mut sim, &["management: session 1"]).await;
        let commands = running.app.store.commands(&id).unwrap();
        let alice = commands.iter().find(|c| c.for_user.as_deref() == Some(entra::ALICE.oid)).unwrap();
        let bob = commands.iter().find(|c| c.for_user.as_deref() == Some(entra::BOB.oid)).unwrap();
        assert_eq!((alice.state.as_str(), alice.status), ("done", Some(200)));
        assert_eq!((bob.state.as_str(), bob.status), ("queued", None));
        assert_eq!(sim.applied().iter().filter(|a| a.contains("HideAppList")).count(), 1);
    });
}

#[test]
fn a_first_schema_database_is_migrated() {
    let dir = TempDir::new();
    let path = dir.0.join("v1.sqlite3");
    {
        // The first schema, as the first release wrote it, with a queued command.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL);
             INSERT INTO schema_version VALUES (1);
             CREATE TABLE devices (device_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, user_oid TEXT NOT NULL, upn TEXT, enrollment_type TEXT NOT NULL, certificate BLOB NOT NULL, thumbprint TEXT NOT NULL, digest_username TEXT NOT NULL, digest_password TEXT NOT NULL, nonce TEXT NOT NULL, enrolled_at INTEGER NOT NULL, last_checkin INTEGER, login_status TEXT, compliant INTEGER, unenrolled_at INTEGER, dev_info TEXT NOT NULL DEFAULT '[]');
             CREATE TABLE commands (id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE, command TEXT NOT NULL, state TEXT NOT NULL, status INTEGER, queued_at INTEGER NOT NULL);
             INSERT INTO devices VALUES ('d', 't', 'u', NULL, 'Device', x'01', 'ab', 'n', 'p', 'AAAA', 1, NULL, NULL, NULL, NULL, '[]');
             INSERT INTO commands (device_id, command, state, queued_at) VALUES ('d', '{\"verb\":\"Get\",\"targets\":[\"./A\"]}', 'queued', 2);",
        )
        .unwrap();
    }
    let store = winmdm_reference_server::store::SqliteStore::open(&path).unwrap();
    use winmdm_reference_server::store::Store as _;
    let queued = store.queued("d").unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].for_user, None);
    // Schema 3: an existing device's certificate counts as used and renews by thumbprint.
    let d = store.device_by_certificate("ab").unwrap().unwrap();
    assert_eq!(d.device_id, "d");
    assert!(d.certificate_used && d.previous_thumbprint.is_none());
    drop(store);
    let reopened = winmdm_reference_server::store::SqliteStore::open(&path).unwrap();
    assert_eq!(
        reopened.queued("d").unwrap().len(),
        1,
        "migrations run once"
    );
}

/// A work account's `DeviceID` is only the device's word: a user of another tenant, or
/// another user of the same tenant, who names an enrolled device's ID must not replace its
/// record (tenant, user, certificate, digest secret), its queue or its history, and the
/// real device keeps working. (Found by an outside red team: the record was replaced.)
#[test]
fn enrolling_with_another_users_device_id_takes_nothing_over() {
    let rt = runtime();
    let dir = TempDir::new();
    let mut c = config(&dir);
    c.entra.tenants = vec![entra::CONTOSO.id.into(), entra::FABRIKAM.id.into()];
    rt.block_on(async {
        let running = start(c).await.unwrap();
        let authority = running.entra.as_ref().unwrap().base_url().to_owned();
        let store = running.app.store.clone();
        let user = |tenant: &entra::Tenant, u: &entra::User| signed_in(&authority, tenant, u);

        // Alice adds her work account on her device and is managed.
        let mut alice = device_config(&running, &authority);
        alice.work_account = true;
        let mut victim = Simulator::new(alice.clone());
        steps(&mut victim, ENROLL).await;
        steps(&mut victim, &["management: session 1"]).await;
        let id = victim.device_id().to_owned();
        let record = store.device(&id).unwrap().unwrap();
        assert_eq!(record.enrollment_type, "Full");
        assert_eq!(record.upn.as_deref(), Some(entra::ALICE.upn));
        store
            .queue(
                &id,
                &winmdm_reference_server::commands::CommandSpec::Get {
                    targets: vec!["./DevDetail/SwV".into()],
                },
                None,
                1,
            )
            .unwrap();
        let before = (
            store.device(&id).unwrap(),
            store.commands(&id).unwrap(),
            store.traces_of(&id).unwrap(),
        );

        // Bob (another tenant) and the guest (another user of Alice's tenant) name her
        // device's ID in their own work-account enrollments, in every spelling of it; and
        // Bob with a token whose deviceid claim names it (a device of another tenant).
        let guid = winmdm_entra::DeviceId::parse(&id).unwrap();
        let spellings = [
            id.clone(),
            id.to_ascii_uppercase(),
            id.replace('-', ""),
            format!("{{{}}}", id.to_ascii_uppercase()),
        ];
        let devices_before = store.devices().unwrap().len();
        let mut attempts = Vec::new();
        for (tenant, attacker) in [
            (&entra::FABRIKAM, &entra::BOB),
            (&entra::CONTOSO, &entra::GUEST),
        ] {
            for spelling in &spellings {
                let mut cfg = alice.clone();
                cfg.token = user(tenant, attacker);
                cfg.device_id.clone_from(spelling);
                attempts.push(cfg);
            }
            // Windows' byte order of the same GUID.
            let mut cfg = alice.clone();
            cfg.token = user(tenant, attacker);
            cfg.windows_device_id = true;
            attempts.push(cfg);
        }
        let mut claimed = alice.clone();
        claimed.token = user(&entra::FABRIKAM, &entra::BOB);
        claimed.work_account = false;
        attempts.push(claimed);
        for cfg in attempts {
            let attacker = format!("{:?} {}", cfg.token, cfg.device_id);
            let mut sim = Simulator::new(cfg);
            steps(&mut sim, &ENROLL[..ENROLL.len() - 1]).await;
            let rst = sim.step("enrollment: RST").await;
            let refusal = rst
                .outcome
                .as_ref()
                .expect_err("the takeover must be refused");
            assert!(refusal.contains("Authorization"), "{rst}");
            let after = (
                store.device(&id).unwrap(),
                store.commands(&id).unwrap(),
                store.traces_of(&id).unwrap(),
            );
            assert_eq!(after, before, "{attacker} changed the victim's record");
        }
        assert_eq!(
            store.devices().unwrap().len(),
            devices_before,
            "no alias records of {guid} either"
        );

        // Alice's device still works, and gets her queued command.
        steps(&mut victim, &["management: session 2"]).await;
        let commands = store.commands(&id).unwrap();
        assert!(commands.iter().all(|c| c.state == "done"), "{commands:?}");
        // Alice herself may re-enroll the same device (same tenant, same user).
        let mut again = Simulator::new(alice);
        steps(&mut again, ENROLL).await;
        assert_eq!(
            store.device(&id).unwrap().unwrap().user_oid,
            record.user_oid
        );
    });
}

/// Every token Windows presents is a signed-in user's. An app-only token of an application
/// in a served tenant, for the MDM's audience, is refused at all four places a user token is
/// taken: the Terms-of-Use page, Policy, enrollment, and a session's `AADUserToken` (where
/// it would have unlocked commands for the "user" it names).
#[test]
fn app_only_tokens_are_refused_everywhere() {
    let rt = runtime();
    let dir = TempDir::new();
    rt.block_on(async {
        let running = start(config(&dir)).await.unwrap();
        let emulator = running.entra.as_ref().unwrap();
        let authority = emulator.base_url().to_owned();
        let store = running.app.store.clone();
        // A client-credentials token of an application (a service principal of Contoso),
        // shaped as Entra issues them for a v2 resource: no scp, no user claims, idtyp app.
        let service_principal = "5e1f0000-0000-4000-8000-0000000005b0";
        let shaped = |idtyp: &str, scp: Option<&str>| {
            let mut t = entra::AccessToken::v2(&entra::CONTOSO, &entra::ALICE)
                .without_claim("scp")
                .without_claim("name")
                .without_claim("preferred_username")
                .claim("oid", service_principal)
                .claim("sub", service_principal)
                .claim("idtyp", idtyp)
                .claim("roles", serde_json::json!(["Device.ReadWrite.All"]));
            if let Some(scp) = scp {
                t = t.claim("scp", scp);
            }
            t.issued_at(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs(),
            )
            .signed_with(emulator.active_key())
            .sign()
        };
        let app_token = shaped("app", None);
        // The control: the same token as a user's is accepted, so what refuses the app
        // token is its principal, nothing else.
        let user_shaped = shaped("user", Some(entra::MDM_SCOPE));

        // 1. The Terms-of-Use page.
        for (token, accepted) in [(&user_shaped, true), (&app_token, false)] {
            let mut c = device_config(&running, &authority);
            c.token = TokenSource::Fixed(token.clone());
            let mut sim = Simulator::new(c);
            steps(&mut sim, &["sign in"]).await;
            let page = sim.step("terms of use: page").await;
            assert_eq!(page.outcome.is_ok(), accepted, "{page}");
        }

        // 2, 3. Policy and enrollment, after Alice accepted the Terms of Use.
        let mut sim = Simulator::new(device_config(&running, &authority));
        steps(&mut sim, &ENROLL[..5]).await;
        sim.set_user_token(&app_token);
        for step in ["policy: GetPolicies", "enrollment: RST"] {
            let s = sim.step(step).await;
            assert!(s.outcome.is_err(), "{s}");
        }
        assert_eq!(store.traces_of(sim.device_id()).unwrap(), 0);

        // 4. An enrolled device whose session presents the app token as AADUserToken: the
        // command held for the principal it names stays held.
        let mut sim = Simulator::new(device_config(&running, &authority));
        steps(&mut sim, ENROLL).await;
        let id = sim.device_id().to_owned();
        let held = store
            .queue(
                &id,
                &winmdm_reference_server::commands::CommandSpec::Get {
                    targets: vec!["./User/Vendor/MSFT/Policy/Result".into()],
                },
                Some(service_principal),
                1,
            )
            .unwrap();
        sim.set_user_token(&app_token);
        steps(&mut sim, &["management: session 1"]).await;
        let command = store
            .commands(&id)
            .unwrap()
            .into_iter()
            .find(|c| c.id == held)
            .unwrap();
        assert_eq!(command.state, "queued", "{command:?}");
    });
}

/// A work account's certificate names the user, not the device: renewal must find the
/// enrollment by the certificate the device signs with. (Full enrollments could never
/// renew: the server looked the device up by the certificate's CN, the UPN.)
#[test]
fn a_work_account_enrollment_renews_end_to_end() {
    let rt = runtime();
    let dir = TempDir::new();
    rt.block_on(async {
        let running = start(config(&dir)).await.unwrap();
        let authority = running.entra.as_ref().unwrap().base_url().to_owned();
        let mut c = device_config(&running, &authority);
        c.work_account = true;
        let mut sim = Simulator::new(c);
        let plan = sim.plan();
        assert!(plan.contains(&"renewal: RST Renew") && plan.contains(&"management: session 2"));
        steps(&mut sim, &plan).await;
        let record = running.app.store.device(sim.device_id()).unwrap().unwrap();
        assert_eq!(record.enrollment_type, "Full");
        assert_eq!(
            record.certificate,
            sim.certificate().unwrap(),
            "the renewed certificate is the device's"
        );
        assert!(record.unenrolled_at.is_some(), "and it unenrolled with it");
    });
}

/// After a renewal, the certificate it replaced renews again only while its successor is
/// unused (a device that lost the response retries with it); once the device has used the
/// new certificate, the old one is superseded and refused.
#[test]
fn a_superseded_certificate_no_longer_renews() {
    let rt = runtime();
    let dir = TempDir::new();
    rt.block_on(async {
        let running = start(config(&dir)).await.unwrap();
        let authority = running.entra.as_ref().unwrap().base_url().to_owned();
        let mut sim = Simulator::new(device_config(&running, &authority));
        steps(&mut sim, ENROLL).await;
        steps(&mut sim, &["management: session 1"]).await;
        let first = sim.saved_identity().unwrap();
        // Renewed; the device "lost" the response and retries with its first certificate.
        steps(&mut sim, &["renewal: RST Renew"]).await;
        sim.restore_identity(first.clone());
        steps(&mut sim, &["renewal: RST Renew"]).await;
        // It uses its newest certificate: the first one is now superseded.
        steps(&mut sim, &["management: session 2"]).await;
        let current = running.app.store.device(sim.device_id()).unwrap().unwrap();
        assert_eq!(current.certificate, sim.certificate().unwrap());
        sim.restore_identity(first);
        let stale = sim.step("renewal: RST Renew").await;
        assert!(stale.outcome.is_err(), "{stale}");
        let after = running.app.store.device(sim.device_id()).unwrap().unwrap();
        assert_eq!(after.certificate, current.certificate, "nothing changed");
    });
}

/// Windows writes its `DeviceID` (context item, CSR extension, OMA-DM `Source`) as 32 hex
/// digits of the GUID's bytes in its own order; Entra's `deviceid` claim is the dashed
/// GUID. Such a device enrolls under the claim, is managed, renews, is reported to Graph
/// under the GUID, and unenrolls. (Real devices were refused: the IDs were compared as
/// strings.)
#[test]
fn a_device_that_spells_its_id_as_windows_does_enrolls_and_is_managed() {
    let rt = runtime();
    let dir = TempDir::new();
    let mut c = config(&dir);
    c.admin_secret = Some(Secret("admin".into()));
    rt.block_on(async {
        let running = start(c).await.unwrap();
        let authority = running.entra.as_ref().unwrap().base_url().to_owned();
        let mut dc = device_config(&running, &authority);
        dc.windows_device_id = true;
        dc.unenroll = false;
        let claim = dc.device_id.clone();
        let mut sim = Simulator::new(dc);
        let spelled = sim.spelled_device_id();
        assert_eq!(spelled.len(), 32);
        assert!(!spelled.contains('-') && !spelled.eq_ignore_ascii_case(&claim.replace('-', "")));
        let plan = sim.plan();
        steps(&mut sim, &plan).await;
        let record = running.app.store.device(&claim).unwrap().unwrap();
        assert_eq!(record.certificate, sim.certificate().unwrap());
        assert!(record.last_checkin.is_some(), "managed");
        // Reported to Graph under the GUID.
        let graph = running.graph.as_ref().unwrap();
        let object_id = simulator::random_guid();
        graph.add_device(EmulatedDevice {
            tenant_id: entra::CONTOSO.id.into(),
            object_id: object_id.clone(),
            device_id: claim.clone(),
            display_name: "WINDOWS-SPELLING".into(),
            is_compliant: None,
            is_managed: None,
        });
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let resp = http
            .put(format!("{}/devices/{claim}/compliance", running.admin_url))
            .bearer_auth("admin")
            .header("content-type", "application/json")
            .body(r#"{"compliant":true}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
        let seen = graph.device(entra::CONTOSO.id, &object_id).unwrap();
        assert_eq!(
            (seen.is_managed, seen.is_compliant),
            (Some(true), Some(true))
        );
        steps(&mut sim, &["management: unenroll 1226"]).await;
        assert!(
            running
                .app
                .store
                .device(&claim)
                .unwrap()
                .unwrap()
                .unenrolled_at
                .is_some()
        );
    });
}

/// Windows' SessionID is a small counter that restarts after a reboot: a device that
/// rebooted in the middle of a session starts a new one under the same SessionID. It is
/// served (not refused with 400), and the commands the abandoned session carried are sent
/// again. Then the counter wraps at 256 across 300 sessions without a refusal.
#[test]
fn a_device_that_reboots_mid_session_and_wraps_its_session_id_is_served() {
    let rt = runtime();
    let dir = TempDir::new();
    rt.block_on(async {
        let running = start(config(&dir)).await.unwrap();
        let authority = running.entra.as_ref().unwrap().base_url().to_owned();
        let store = running.app.store.clone();
        let mut sim = Simulator::new(device_config(&running, &authority));
        steps(&mut sim, ENROLL).await;
        let id = sim.device_id().to_owned();
        // Session 1 takes the initial commands; the device reboots before answering them.
        steps(&mut sim, &["management: reboot mid-session"]).await;
        assert!(
            store
                .commands(&id)
                .unwrap()
                .iter()
                .any(|c| c.state == "sent")
        );
        // After the reboot the user signs in again: a new token, so the new session's
        // first message is not a repeat of the abandoned one's.
        let later = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 5;
        let token = entra::AccessToken::v2(&entra::CONTOSO, &entra::ALICE)
            .claim("deviceid", id.as_str())
            .issued_at(later)
            .signed_with(running.entra.as_ref().unwrap().active_key())
            .sign();
        sim.set_user_token(&token);
        steps(&mut sim, &["management: session 1"]).await;
        // The abandoned session's commands are delivered again.
        steps(&mut sim, &["management: session 2"]).await;
        let commands = store.commands(&id).unwrap();
        assert!(commands.iter().all(|c| c.state == "done"), "{commands:#?}");
        // The soak: 1,000 more sessions (the SessionID wraps at 256) with another reboot
        // mid-session halfway: not one refused.
        sim.soak(1000).await.unwrap_or_else(|step| panic!("{step}"));
        let commands = store.commands(&id).unwrap();
        assert!(commands.iter().all(|c| c.state == "done"), "{commands:#?}");
    });
}

/// Independent clients write a random `Source` (`imei:<uuid>`) each session: a client
/// certificate this server issued identifies the device instead (it got HTTP 401). A
/// `Source` naming another enrolled device does not reach that device either: the
/// certificate decides.
#[test]
fn the_certificate_identifies_the_device_whatever_source_says() {
    let rt = runtime();
    let dir = TempDir::new();
    rt.block_on(async {
        let running = start(config(&dir)).await.unwrap();
        let authority = running.entra.as_ref().unwrap().base_url().to_owned();
        let store = running.app.store.clone();
        let mut other = Simulator::new(device_config(&running, &authority));
        steps(&mut other, ENROLL).await;
        let other_id = other.device_id().to_owned();
        let other_before = (
            store.device(&other_id).unwrap(),
            store.commands(&other_id).unwrap(),
        );
        for source in [
            format!("imei:{}", simulator::random_guid()),
            other_id.clone(),
        ] {
            let mut c = device_config(&running, &authority);
            c.management_source = Some(source.clone());
            let mut sim = Simulator::new(c);
            steps(&mut sim, ENROLL).await;
            steps(&mut sim, &["management: session 1"]).await;
            let id = sim.device_id();
            let record = store.device(id).unwrap().unwrap();
            assert!(record.last_checkin.is_some(), "{source}: its own record");
            assert!(
                store
                    .commands(id)
                    .unwrap()
                    .iter()
                    .all(|c| c.state == "done"),
                "{source}: its own commands"
            );
            if source != other_id {
                assert_eq!(store.traces_of(&source).unwrap(), 0, "{source}");
            }
        }
        let other_after = (
            store.device(&other_id).unwrap(),
            store.commands(&other_id).unwrap(),
        );
        assert_eq!(other_after, other_before, "the named device is untouched");
    });
}

/// The endpoint settings in the server's configuration: a per-user device cap, and a
/// required scope the emulator's tokens lack.
#[test]
fn device_cap_and_required_scope_come_from_the_configuration() {
    let rt = runtime();
    let dir = TempDir::new();
    rt.block_on(async {
        let mut c = config(&dir);
        c.enrollment.max_devices_per_user = Some(1);
        let running = start(c).await.unwrap();
        let authority = running.entra.as_ref().unwrap().base_url().to_owned();
        let mut first = Simulator::new(device_config(&running, &authority));
        steps(&mut first, ENROLL).await;
        let mut second = Simulator::new(device_config(&running, &authority));
        steps(&mut second, &ENROLL[..ENROLL.len() - 1]).await;
        let refused = second.step("enrollment: RST").await;
        let why = format!("{refused}");
        assert!(why.contains("DeviceCapReached"), "{why}");
        assert_eq!(running.app.store.traces_of(second.device_id()).unwrap(), 0);
        running.shutdown().await;

        let dir = TempDir::new();
        let mut c = config(&dir);
        c.enrollment.required_scope = Some("not_granted".into());
        let running = start(c).await.unwrap();
        let authority = running.entra.as_ref().unwrap().base_url().to_owned();
        let mut sim = Simulator::new(device_config(&running, &authority));
        steps(&mut sim, &["sign in"]).await;
        let page = sim.step("terms of use: page").await;
        assert!(page.outcome.is_err(), "{page}");
    });
}

/// Windows 11 answers a `Get` of several nodes with one status per node: every one is kept
/// with its target, and the command's status is the failure, not the last success.
/// (The last status won: a failed first node was hidden by later 200s.)
#[test]
fn per_target_statuses_are_kept_and_a_failure_is_not_hidden() {
    let rt = runtime();
    let dir = TempDir::new();
    rt.block_on(async {
        let running = start(config(&dir)).await.unwrap();
        let authority = running.entra.as_ref().unwrap().base_url().to_owned();
        let store = running.app.store.clone();
        let mut c = device_config(&running, &authority);
        c.per_target_statuses = true;
        let mut sim = Simulator::new(c);
        steps(&mut sim, ENROLL).await;
        let id = sim.device_id().to_owned();
        let get = store
            .queue(
                &id,
                &winmdm_reference_server::commands::CommandSpec::Get {
                    targets: vec![
                        "./Vendor/MSFT/NotThere".into(),
                        "./DevDetail/SwV".into(),
                        "./DevDetail/OEM".into(),
                    ],
                },
                None,
                1,
            )
            .unwrap();
        steps(&mut sim, &["management: session 1"]).await;
        let command = store
            .commands(&id)
            .unwrap()
            .into_iter()
            .find(|c| c.id == get)
            .unwrap();
        assert_eq!(command.state, "done");
        assert_eq!(command.status, Some(404), "{command:?}");
        let targets: Vec<_> = command
            .statuses
            .iter()
            .map(|s| (s.target.as_deref().unwrap_or(""), s.code))
            .collect();
        assert_eq!(
            targets,
            [
                ("./Vendor/MSFT/NotThere", 404),
                ("./DevDetail/SwV", 200),
                ("./DevDetail/OEM", 200)
            ]
        );
        assert_eq!(command.results.len(), 2);
        // The admin API shows both.
        let resp = reqwest::Client::new()
            .get(format!("{}/devices/{id}/commands", running.admin_url))
            .bearer_auth(&running.admin_secret.0)
            .send()
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        let shown = json["commands"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == get)
            .unwrap()
            .clone();
        assert_eq!(shown["status"], 404);
        assert_eq!(shown["statuses"][0]["target"], "./Vendor/MSFT/NotThere");
    });
}

/// Discovery without a policy service (MS-MDE2 makes it optional; the simulated device
/// stopped with "no EnrollmentPolicyServiceUrl") and with an `AuthenticationServiceUrl`
/// (it could not be configured).
#[test]
fn discovery_without_a_policy_service_and_with_an_authentication_service() {
    let rt = runtime();
    let dir = TempDir::new();
    rt.block_on(async {
        let mut c = config(&dir);
        c.enrollment.advertise_policy_service = false;
        c.enrollment.authentication_service_url = Some("https://login.contoso.example/mdm".into());
        let running = start(c).await.unwrap();
        let authority = running.entra.as_ref().unwrap().base_url().to_owned();
        let mut sim = Simulator::new(device_config(&running, &authority));
        steps(&mut sim, &ENROLL[..4]).await;
        let discover = sim.step("discovery: Discover").await;
        assert!(discover.outcome.is_ok(), "{discover}");
        let policy = sim.step("policy: GetPolicies").await;
        assert!(
            policy.outcome.as_ref().is_ok_and(|o| o.starts_with("skipped")),
            "{policy}"
        );
        steps(&mut sim, &ENROLL[6..]).await;
        steps(&mut sim, &["management: session 1"]).await;
        // The Discover response names the authentication service and no policy service.
        let body = winmdm_testkit::requests::escape("alice@contoso.example");
        let discover = format!(
            r#"<s:Envelope xmlns:a="http://www.w3.org/2005/08/addressing" xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header><a:Action s:mustUnderstand="1">http://schemas.microsoft.com/windows/management/2012/01/enrollment/IDiscoveryService/Discover</a:Action><a:MessageID>urn:uuid:1</a:MessageID><a:To s:mustUnderstand="1">{url}/EnrollmentServer/Discovery.svc</a:To></s:Header><s:Body><Discover xmlns="http://schemas.microsoft.com/windows/management/2012/01/enrollment"><request xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><EmailAddress>{body}</EmailAddress><RequestVersion>5.0</RequestVersion><DeviceType>CIMClient_Windows</DeviceType><ApplicationVersion>10.0.26100.1</ApplicationVersion><OSEdition>72</OSEdition><AuthPolicies><AuthPolicy>Federated</AuthPolicy></AuthPolicies></request></Discover></s:Body></s:Envelope>"#,
            url = running.public_url
        );
        let resp = https(&running)
            .post(format!("{}/EnrollmentServer/Discovery.svc", running.public_url))
            .header("content-type", "application/soap+xml; charset=utf-8")
            .body(discover)
            .send()
            .await
            .unwrap();
        let text = resp.text().await.unwrap();
        assert!(
            text.contains("<AuthenticationServiceUrl>https://login.contoso.example/mdm</AuthenticationServiceUrl>"),
            "{text}"
        );
        assert!(!text.contains("EnrollmentPolicyServiceUrl"), "{text}");
    });
}

/// The Windows 11 profile through the whole life (32-hex DeviceID, one status per
/// target, hexadecimal SessionIDs counting from where a boot left them, Windows' query
/// and headers on management requests), then 300 more sessions across the wrap: every
/// step served, every command answered.
#[test]
fn a_windows_11_device_runs_its_whole_life_and_wraps() {
    let rt = runtime();
    let dir = TempDir::new();
    rt.block_on(async {
        let running = start(config(&dir)).await.unwrap();
        let authority = running.entra.as_ref().unwrap().base_url().to_owned();
        let store = running.app.store.clone();
        let mut config =
            SimulatorConfig::windows11(&running.public_url, TokenSource::emulator(&authority));
        config.ca_pem = Some(running.ca_pem.clone());
        config.unenroll = false;
        let mut sim = Simulator::new(config);
        for name in sim.plan() {
            steps(&mut sim, &[name]).await;
        }
        let id = sim.device_id().to_owned();
        sim.soak(300).await.unwrap_or_else(|step| panic!("{step}"));
        let commands = store.commands(&id).unwrap();
        assert!(!commands.is_empty());
        assert!(commands.iter().all(|c| c.state == "done"), "{commands:#?}");
        assert!(store.device(&id).unwrap().unwrap().last_checkin.is_some());
    });
}

/// The Enrollment Status Page through the reference server: a Windows 11 device joins
/// Entra in OOBE, device setup is released, the server restarts, and account setup (the
/// user's DMClient nodes refused with 405 until the user's MDM context is up, then sent
/// again) is released after sign-in. The page's state survives the restart (SQLite), and
/// the admin API shows every tracked command.
#[test]
fn the_enrollment_status_page_survives_a_restart_and_releases() {
    let rt = runtime();
    let dir = TempDir::new();
    let mut c = restartable_config(&dir);
    c.esp.enabled = true;
    c.esp.user = vec![winmdm_reference_server::config::EspCommand {
        label: "Start menu".into(),
        command: winmdm_reference_server::commands::CommandSpec::Replace {
            target: "./User/Vendor/MSFT/Policy/Config/Start/HideRecentlyAddedApps".into(),
            format: "int".into(),
            data: "1".into(),
        },
    }];
    rt.block_on(async {
        let first = start(c.clone()).await.unwrap();
        let authority = first.entra.as_ref().unwrap().base_url().to_owned();
        let mut config =
            SimulatorConfig::windows11(&first.public_url, TokenSource::emulator(&authority));
        config.ca_pem = Some(first.ca_pem.clone());
        config.oobe = true;
        let mut sim = Simulator::new(config);
        steps(&mut sim, ENROLL).await;
        steps(&mut sim, &["esp: device setup"]).await;
        let id = sim.device_id().to_owned();
        let stored = first.app.store.esp(&id).unwrap().unwrap();
        let state: winmdm_endpoint::EspState = serde_json::from_str(&stored.state).unwrap();
        assert_eq!(state.phase, winmdm_endpoint::EspPhase::User);
        first.shutdown().await;

        let second = start(c).await.unwrap();
        let again = second.app.store.esp(&id).unwrap().unwrap();
        assert_eq!(again, stored, "the page is kept across the restart");
        steps(&mut sim, &["esp: account setup"]).await;
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let bytes = http
            .get(format!("{}/devices/{id}/esp", second.admin_url))
            .bearer_auth(&second.admin_secret.0)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["esp"]["phase"], "Released", "{body}");
        // The scheme in any case (RFC 9110), the ID in upper case or braced: the same page.
        for spelled in [id.to_ascii_uppercase(), format!("{{{id}}}")] {
            let again = http
                .get(format!("{}/devices/{spelled}/esp", second.admin_url))
                .header("authorization", format!("bearer {}", second.admin_secret.0))
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 200, "{spelled}");
        }
        let tracked = body["esp"]["tracked"].as_array().unwrap();
        assert!(
            tracked
                .iter()
                .any(|t| t["attempts"] == 2 && t["scope"] == "User"),
            "{body}"
        );
        assert!(body["esp"]["failure"].is_null());
    });
}
