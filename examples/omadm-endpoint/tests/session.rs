//! The endpoint over loopback HTTP with the simulated Windows client: digest
//! authentication, the queued `Get`, the printed result; unknown devices and WBXML refused.

use winmdm_example_omadm::{DeviceCredentials, Example, router, swv};
use winmdm_syncml::auth::Nonce;
use winmdm_syncml::client::Device;
use winmdm_testkit::loopback;

/// The example on a loopback port: the management URL, and the example.
fn start() -> (String, std::sync::Arc<Example>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let example = Example::new(&base).unwrap();
    let router = router(example.clone());
    std::thread::spawn(move || {
        rt.block_on(async move { axum::serve(listener, router).await.unwrap() })
    });
    (format!("{base}/ManagementServer/MDM.svc"), example)
}

fn post(url: &str, body: Vec<u8>, content_type: &str) -> http::Response<Vec<u8>> {
    loopback::send(
        http::Request::post(url)
            .header("content-type", content_type)
            .body(body)
            .unwrap(),
    )
    .unwrap()
}

/// Runs one whole session of `device`: every answer is a `200` SyncML message, and the
/// session ends within ten messages. Each message goes where the device sends it: the
/// management URL, then the session's bound RespURI.
fn run_session(device: &mut Device, url: &str) {
    let mut msg = device.start_session();
    assert_eq!(device.url(), url);
    for _ in 0..10 {
        let resp = post(
            device.url(),
            winmdm_syncml::encode(&msg).into_bytes(),
            winmdm_syncml::CONTENT_TYPE,
        );
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], winmdm_syncml::CONTENT_TYPE);
        let reply = winmdm_syncml::decode(resp.body()).unwrap();
        match device.respond(&reply) {
            Some(next) => msg = next,
            None => break,
        }
    }
    assert!(device.session_over());
    assert_eq!(device.refused(), None, "the session was refused");
}

/// Registers `id` with digest credentials `user`/`pass` and nonce `n`; returns the
/// simulated device that holds them.
fn registered(endpoint: &Example, url: &str, id: &str, user: &str, pass: &str, n: u8) -> Device {
    let nonce = Nonce::from_bytes(vec![n; 16]);
    endpoint
        .add_device(
            id,
            DeviceCredentials {
                username: user.into(),
                password: pass.into(),
                nonce: nonce.clone(),
            },
        )
        .unwrap();
    let mut device = Device::new(id, url).with_digest(user, pass, nonce);
    device.set_node("./DevDetail/SwV", "10.0.26100.2605");
    device
}

#[test]
fn a_session_gets_the_queued_result() {
    let (url, endpoint) = start();
    let mut device = registered(&endpoint, &url, "dev-1", "u1", "p1", 3);
    run_session(&mut device, &url);
    assert_eq!(
        endpoint.results(),
        [(
            "dev-1".to_owned(),
            "./DevDetail/SwV".to_owned(),
            "10.0.26100.2605".to_owned()
        )]
    );
    // A second session authenticates with the rotated nonce and gets what was queued.
    endpoint.queue("dev-1", &swv()).unwrap();
    run_session(&mut device, &url);
    assert_eq!(endpoint.results().len(), 2);
}

#[test]
fn unknown_devices_and_wbxml_are_refused_without_a_trace() {
    let (url, endpoint) = start();
    let mut stranger =
        Device::new("stranger", &url).with_digest("x", "y", Nonce::from_bytes(vec![1; 16]));
    let msg = stranger.start_session();
    let resp = post(
        &url,
        winmdm_syncml::encode(&msg).into_bytes(),
        winmdm_syncml::CONTENT_TYPE,
    );
    assert_eq!(resp.status(), 401);
    assert_eq!(endpoint.stored_sessions(), 0);
    let resp = post(&url, vec![0x02, 0x00], winmdm_syncml::CONTENT_TYPE_WBXML);
    assert_eq!(resp.status(), 415);
    let resp = post(&url, b"not syncml".to_vec(), winmdm_syncml::CONTENT_TYPE);
    assert_eq!(resp.status(), 400);
}

/// The soak: Windows' SessionID is an 8-bit counter, so 1,000 sessions wrap it three
/// times, and a reboot halfway abandons a session: every session is served (this example
/// once refused every session from the 257th on).
#[test]
fn session_ids_wrap_without_refusals() {
    let (url, endpoint) = start();
    let mut device = registered(&endpoint, &url, "dev-wrap", "u", "p", 5);
    for n in 1..=1000 {
        if n > 1 {
            endpoint.queue("dev-wrap", &swv()).unwrap();
        }
        if n == 500 {
            // A reboot mid-session: the first message goes out, the device restarts
            // (its SessionID counter starts over, its nonce is kept) before answering.
            let first = device.start_session();
            let resp = post(
                &url,
                winmdm_syncml::encode(&first).into_bytes(),
                winmdm_syncml::CONTENT_TYPE,
            );
            assert_eq!(resp.status(), 200);
            let reply = winmdm_syncml::decode(resp.body()).unwrap();
            let _ = device.respond(&reply);
            let kept = device.nonce().unwrap().clone();
            device = Device::new("dev-wrap", &url).with_digest("u", "p", kept);
            device.set_node("./DevDetail/SwV", "10.0.26100.2605");
        }
        run_session(&mut device, &url);
    }
    // Every session got its result; the one the reboot interrupted was sent again.
    let open: Vec<_> = {
        use winmdm_endpoint::Store as _;
        endpoint
            .store()
            .commands("dev-wrap")
            .unwrap()
            .into_iter()
            .filter(|c| c.state != "done")
            .map(|c| (c.id, c.state))
            .collect()
    };
    assert!(open.is_empty(), "{open:?}");
    assert_eq!(endpoint.results().len(), 1000);
}

/// A stored state that no longer restores (another version of winmdm wrote it) starts a
/// new session instead of locking the device out of that SessionID.
#[test]
fn an_unreadable_stored_state_starts_a_new_session() {
    use winmdm_endpoint::{Commit, SessionWrite, Store as _};
    let (url, endpoint) = start();
    let mut device = registered(&endpoint, &url, "dev-v", "u", "p", 7);
    // The device's first message authenticates (its digest is right) and stores the state.
    let first = device.start_session();
    let resp = post(
        &url,
        winmdm_syncml::encode(&first).into_bytes(),
        winmdm_syncml::CONTENT_TYPE,
    );
    assert_eq!(resp.status(), 200);
    let store = endpoint.store();
    let (session_id, stored) = store.other_sessions("dev-v", "").unwrap().pop().unwrap();
    // Damage it as a newer version would (a state this version does not read).
    let mut damage = Commit::new("dev-v", &session_id, Some(stored.version));
    damage.session = SessionWrite::Put(r#"{"version":999}"#.into());
    store.commit(&damage).unwrap();
    // The device resends: answered with a new session, not a 500 forever.
    let resp = post(
        &url,
        winmdm_syncml::encode(&first).into_bytes(),
        winmdm_syncml::CONTENT_TYPE,
    );
    assert_eq!(resp.status(), 200);
}
