//! The Graph client against the testkit's Graph and Entra emulators over real loopback
//! HTTP: success by object ID and by deviceId, 404, 401, 429 then success, a 503 storm
//! stopped by the retry budget, group membership across three pages, one token request
//! for N concurrent calls after expiry, credential rollover, on-premises per-tenant
//! credentials, and no secret or token in `Debug` output or logs.
#![cfg(feature = "reqwest")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls_pki_types::UnixTime;
use winmdm_entra::app_token::{AppCredentials, AppTokenProvider, Credential};
use winmdm_entra::fetch;
use winmdm_graph::*;
use winmdm_testkit::emulator::{AppRegistration, EmulatorConfig, EntraEmulator};
use winmdm_testkit::entra::{self as tk, CONTOSO, FABRIKAM};
use winmdm_testkit::graph::{EmulatedDevice, Fault, GraphEmulator};

const OBJECT_ID: &str = "d0d0d0d0-0000-4000-8000-000000000001";
const DEVICE_ID: &str = tk::ENROLLMENT_DEVICE_ID;

fn real_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn mdm_app() -> AppRegistration {
    let mut app = AppRegistration::mdm_app();
    app.roles.push("GroupMember.Read.All".into());
    app
}

struct Env {
    entra: EntraEmulator,
    graph: GraphEmulator,
    client: GraphClient,
    clock: Arc<AtomicU64>,
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_total: Duration::from_secs(10),
        max_retry_after: Duration::from_secs(5),
    }
}

fn env_with(app: AppRegistration, creds: AppCredentials, scope: Option<&str>) -> Env {
    let entra = EntraEmulator::spawn_with(EmulatorConfig {
        apps: vec![app],
        ..EmulatorConfig::default()
    })
    .unwrap();
    let graph = GraphEmulator::spawn().unwrap();
    graph.add_device(EmulatedDevice {
        tenant_id: CONTOSO.id.into(),
        object_id: OBJECT_ID.into(),
        device_id: DEVICE_ID.into(),
        display_name: "DESKTOP-CONTOSO1".into(),
        is_compliant: None,
        is_managed: None,
    });
    let clock = Arc::new(AtomicU64::new(real_now()));
    let c = clock.clone();
    let mut provider =
        AppTokenProvider::new(fetch::default_client().unwrap(), entra.base_url(), creds)
            .with_clock(move || {
                UnixTime::since_unix_epoch(Duration::from_secs(c.load(Ordering::SeqCst)))
            });
    if let Some(s) = scope {
        provider = provider.with_scope(s);
    }
    let client = GraphClient::new(
        fetch::default_client().unwrap(),
        GraphApi::new(&graph.base_url()).unwrap(),
        provider,
    )
    .with_retry(fast_retries());
    Env {
        entra,
        graph,
        client,
        clock,
    }
}

fn env() -> Env {
    env_with(
        mdm_app(),
        AppCredentials::new(tk::MDM_APP_ID).with(Credential::secret(tk::APP_SECRET_1)),
        None,
    )
}

#[tokio::test]
async fn reports_compliance_by_object_id_and_by_device_id() {
    let e = env();
    e.client
        .report_compliance(
            CONTOSO.id,
            DeviceRef::ObjectId(OBJECT_ID),
            Compliance::managed(false),
        )
        .await
        .unwrap();
    let d = e.graph.device(CONTOSO.id, OBJECT_ID).unwrap();
    assert_eq!((d.is_managed, d.is_compliant), (Some(true), Some(false)));
    e.client
        .report_compliance(
            CONTOSO.id,
            DeviceRef::DeviceId(DEVICE_ID),
            Compliance {
                is_managed: None,
                is_compliant: Some(true),
            },
        )
        .await
        .unwrap();
    let d = e.graph.device(CONTOSO.id, OBJECT_ID).unwrap();
    assert_eq!((d.is_managed, d.is_compliant), (Some(true), Some(true)));
    let log = e.graph.requests();
    assert_eq!(log[0].method, "PATCH");
    assert_eq!(log[0].path, format!("/v1.0/devices/{OBJECT_ID}"));
    assert_eq!(log[0].body, r#"{"isManaged":true,"isCompliant":false}"#);
    assert_eq!(
        log[1].path,
        format!("/v1.0/devices(deviceId='{DEVICE_ID}')")
    );
    assert_eq!(log[1].body, r#"{"isCompliant":true}"#);
    assert!(
        log.iter()
            .all(|l| l.tenant.as_deref() == Some(CONTOSO.id) && l.status == 204)
    );
    // Lookup by deviceId.
    let dev = e
        .client
        .device_by_device_id(CONTOSO.id, DEVICE_ID)
        .await
        .unwrap();
    assert_eq!((dev.id.as_str(), dev.is_compliant), (OBJECT_ID, Some(true)));
    assert_eq!(e.entra.token_requests(), 1, "one token for all three calls");
}

#[tokio::test]
async fn not_found_and_tenant_isolation() {
    let e = env();
    let missing = "d0d0d0d0-0000-4000-8000-0000000000ff";
    let err = e
        .client
        .report_compliance(
            CONTOSO.id,
            DeviceRef::ObjectId(missing),
            Compliance::managed(true),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, GraphError::NotFound { code: Some(ref c), .. } if c == "Request_ResourceNotFound"),
        "{err:?}"
    );
    // The Contoso device is invisible with a Fabrikam token.
    let err = e
        .client
        .report_compliance(
            FABRIKAM.id,
            DeviceRef::ObjectId(OBJECT_ID),
            Compliance::managed(true),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::NotFound { .. }), "{err:?}");
    assert_eq!(
        e.graph.device(CONTOSO.id, OBJECT_ID).unwrap().is_managed,
        None
    );
}

#[tokio::test]
async fn unauthorized_token_and_forbidden_role() {
    // A token for another resource: Graph refuses it (401).
    let e = env_with(
        mdm_app(),
        AppCredentials::new(tk::MDM_APP_ID).with(Credential::secret(tk::APP_SECRET_1)),
        Some("https://management.azure.com/.default"),
    );
    let err = e
        .client
        .report_compliance(
            CONTOSO.id,
            DeviceRef::ObjectId(OBJECT_ID),
            Compliance::managed(true),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, GraphError::Unauthorized { code: Some(ref c), .. } if c == "InvalidAuthenticationToken"),
        "{err:?}"
    );
    assert_eq!(e.graph.requests().len(), 1, "401 is not retried");
    // An app without Device.ReadWrite.All: 403 with Graph's code.
    let mut app = mdm_app();
    app.roles = vec!["GroupMember.Read.All".into()];
    let e = env_with(
        app,
        AppCredentials::new(tk::MDM_APP_ID).with(Credential::secret(tk::APP_SECRET_1)),
        None,
    );
    let err = e
        .client
        .report_compliance(
            CONTOSO.id,
            DeviceRef::ObjectId(OBJECT_ID),
            Compliance::managed(true),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, GraphError::Forbidden { code: Some(ref c), .. } if c == "Authorization_RequestDenied"),
        "{err:?}"
    );
}

#[tokio::test]
async fn throttled_with_retry_after_then_success() {
    let e = env();
    e.graph.push_fault(Fault::throttle(1));
    let t0 = Instant::now();
    e.client
        .report_compliance(
            CONTOSO.id,
            DeviceRef::DeviceId(DEVICE_ID),
            Compliance::managed(true),
        )
        .await
        .unwrap();
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    let log = e.graph.requests();
    assert_eq!(log.iter().map(|l| l.status).collect::<Vec<_>>(), [429, 204]);
    // x-ms-retry-after-ms too.
    e.graph.push_fault(Fault {
        status: 503,
        retry_after: None,
        retry_after_ms: Some(300),
    });
    let t0 = Instant::now();
    e.client
        .report_compliance(
            CONTOSO.id,
            DeviceRef::DeviceId(DEVICE_ID),
            Compliance::managed(true),
        )
        .await
        .unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn a_503_storm_is_stopped_by_the_retry_budget() {
    let e = env();
    e.graph.fail_next(20, 503);
    let err = e
        .client
        .report_compliance(
            CONTOSO.id,
            DeviceRef::ObjectId(OBJECT_ID),
            Compliance::managed(true),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, GraphError::RetriesExhausted { attempts: 4, ref last } if matches!(**last, GraphError::Throttled { status: 503, .. })),
        "{err:?}"
    );
    assert_eq!(e.graph.requests().len(), 4);
    // A total-time budget stops it too, whatever the attempts left.
    let short = e.client.clone().with_retry(RetryPolicy {
        max_attempts: 100,
        base_delay: Duration::from_millis(40),
        max_delay: Duration::from_millis(40),
        max_total: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(1),
    });
    let t0 = Instant::now();
    let err = short
        .report_compliance(
            CONTOSO.id,
            DeviceRef::ObjectId(OBJECT_ID),
            Compliance::managed(true),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::RetriesExhausted { .. }));
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn group_membership_across_three_pages() {
    let e = env();
    let groups: Vec<String> = (0..250)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect();
    e.graph
        .set_groups(CONTOSO.id, tk::ALICE.oid, groups.clone());
    e.graph.set_page_size(100);
    let ids = e
        .client
        .user_group_ids(CONTOSO.id, tk::ALICE.oid)
        .await
        .unwrap();
    assert_eq!(ids, groups);
    let gets: Vec<_> = e
        .graph
        .requests()
        .into_iter()
        .filter(|l| l.method == "GET")
        .collect();
    assert_eq!(gets.len(), 3);
    assert!(gets[2].query.as_deref().unwrap().contains("$skiptoken=200"));
    let all = e
        .client
        .member_object_ids(CONTOSO.id, tk::ALICE.oid, true)
        .await
        .unwrap();
    assert_eq!(all.len(), 250);
    let err = e
        .client
        .user_group_ids(CONTOSO.id, tk::BOB.oid)
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::NotFound { .. }));
}

#[tokio::test]
async fn token_expiry_mid_run_means_one_token_request_for_n_concurrent_calls() {
    let e = env();
    e.client
        .report_compliance(
            CONTOSO.id,
            DeviceRef::ObjectId(OBJECT_ID),
            Compliance::managed(true),
        )
        .await
        .unwrap();
    assert_eq!(e.entra.token_requests(), 1);
    // An hour passes: the cached token has expired for the provider.
    e.clock.fetch_add(3_700, Ordering::SeqCst);
    e.entra.set_delay(Duration::from_millis(150));
    let client = Arc::new(e.client.clone());
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move {
                c.report_compliance(
                    CONTOSO.id,
                    DeviceRef::ObjectId(OBJECT_ID),
                    Compliance::managed(i % 2 == 0),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        e.entra.token_requests(),
        2,
        "exactly one more token request for 12 callers"
    );
}

#[tokio::test]
async fn credential_rollover_and_per_tenant_credentials() {
    // The registration knows only secret 1; the MDM already holds the new secret 2.
    let mut app = mdm_app();
    app.secrets = vec![tk::APP_SECRET_1.to_owned()];
    let creds = AppCredentials::new(tk::MDM_APP_ID)
        .with(Credential::secret(tk::APP_SECRET_1))
        .with(Credential::secret(tk::APP_SECRET_2));
    let e = env_with(app, creds, None);
    e.client
        .report_compliance(
            CONTOSO.id,
            DeviceRef::ObjectId(OBJECT_ID),
            Compliance::managed(true),
        )
        .await
        .unwrap();
    let token_log = e.entra.requests();
    assert_eq!(
        token_log.iter().map(|r| r.status).collect::<Vec<_>>(),
        [401, 200]
    );

    // On-premises: a single-tenant app per customer tenant.
    let mut app = mdm_app();
    app.home_tenant = Some(CONTOSO);
    let entra = EntraEmulator::spawn_with(EmulatorConfig {
        apps: vec![app],
        ..EmulatorConfig::default()
    })
    .unwrap();
    let provider = AppTokenProvider::per_tenant(fetch::default_client().unwrap(), entra.base_url())
        .with_tenant(
            CONTOSO.id,
            AppCredentials::new(tk::MDM_APP_ID).with(Credential::secret(tk::APP_SECRET_1)),
        );
    let client = GraphClient::new(
        fetch::default_client().unwrap(),
        GraphApi::new(&e.graph.base_url()).unwrap(),
        provider,
    );
    client
        .report_compliance(
            CONTOSO.id,
            DeviceRef::ObjectId(OBJECT_ID),
            Compliance::managed(false),
        )
        .await
        .unwrap();
    // No credentials for Fabrikam: a token error, no Graph request.
    let before = e.graph.requests().len();
    let err = client
        .report_compliance(
            FABRIKAM.id,
            DeviceRef::ObjectId(OBJECT_ID),
            Compliance::managed(false),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::Token(_)), "{err:?}");
    assert_eq!(e.graph.requests().len(), before);
}

/// Captures every span field and event the client logs.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut s = self.0.lock().unwrap();
        s.push_str(&format!("\nspan {}", attrs.metadata().name()));
        attrs.record(&mut Fields(&mut s));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut s = self.0.lock().unwrap();
        s.push_str("\nevent");
        event.record(&mut Fields(&mut s));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn no_secret_or_token_in_debug_or_logs() {
    let capture = Capture::default();
    let logs = capture.0.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let e = env();
    e.graph.push_fault(Fault::throttle(0));
    tracing::subscriber::with_default(capture, || {
        rt.block_on(async {
            e.client
                .report_compliance(
                    CONTOSO.id,
                    DeviceRef::ObjectId(OBJECT_ID),
                    Compliance::managed(true),
                )
                .await
                .unwrap();
            let _ = e.client.user_group_ids(CONTOSO.id, tk::ALICE.oid).await;
        });
    });
    let logs = logs.lock().unwrap().clone();
    assert!(
        logs.contains("graph") && logs.contains("retry"),
        "the client does log: {logs}"
    );
    assert!(!logs.contains(tk::APP_SECRET_1));
    assert!(!logs.contains("eyJ"), "a JWT in the logs: {logs}");
    let debug = format!("{:?}", e.client);
    assert!(
        !debug.contains(tk::APP_SECRET_1) && !debug.contains("eyJ"),
        "{debug}"
    );
    // An authorized request prints its token as sensitive.
    let mut req = GraphApi::global()
        .update_device(DeviceRef::ObjectId(OBJECT_ID), &Compliance::managed(true))
        .unwrap();
    req.authorize("eyJ0eXAiOiJKV1QifQ.e30.c2ln").unwrap();
    let debug = format!("{req:?}");
    assert!(!debug.contains("eyJ0eXAi"), "{debug}");
}
