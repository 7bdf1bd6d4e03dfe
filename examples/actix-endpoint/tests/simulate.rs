//! The simulated Windows device goes through the whole flow against the actix server.

use std::sync::Arc;

use winmdm_example_actix::{Shared, demo_endpoint, server};
use winmdm_testkit::emulator::EntraEmulator;
use winmdm_testkit::simulator::{self, SimulatorConfig, TokenSource};

/// The example on a loopback port, with the testkit's Entra emulator: its URL, the
/// endpoint, the server's handle, the emulator (keep it alive) and a runtime for the
/// simulated device.
fn start() -> (
    String,
    Arc<winmdm_endpoint::Endpoint>,
    actix_web::dev::ServerHandle,
    EntraEmulator,
    tokio::runtime::Runtime,
) {
    let entra = EntraEmulator::spawn().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let endpoint = Arc::new(demo_endpoint(&url, entra.base_url()).unwrap());
    let shared = Shared {
        endpoint: endpoint.clone(),
        http: reqwest::Client::new(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let srv = server(shared, listener).unwrap();
            tx.send(srv.handle()).unwrap();
            srv.await.unwrap();
        });
    });
    let handle = rx.recv().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (url, endpoint, handle, entra, rt)
}

/// Both profiles of the simulated device: as the specs read, and as published Windows 11
/// captures show (32-hex DeviceID, one status per target, hexadecimal SessionIDs,
/// Windows' query and headers).
fn profiles(url: &str, entra: &EntraEmulator) -> [SimulatorConfig; 2] {
    [
        SimulatorConfig::new(url, TokenSource::emulator(entra.base_url())),
        SimulatorConfig::windows11(url, TokenSource::emulator(entra.base_url())),
    ]
}

#[test]
fn a_simulated_device_enrolls_is_managed_renews_and_unenrolls() {
    for n in 0..2 {
        device_life(n);
    }
}

fn device_life(profile: usize) {
    let (url, endpoint, handle, entra, rt) = start();
    let [spec, windows11] = profiles(&url, &entra);
    let config = if profile == 0 { spec } else { windows11 };
    let transcript = rt.block_on(simulator::run(config, |step| eprintln!("{step}")));
    assert!(transcript.succeeded(), "{transcript:?}");
    let devices = endpoint.store().devices().unwrap();
    assert_eq!(devices.len(), 1);
    assert!(
        devices[0].unenrolled_at.is_some(),
        "the device unenrolled at the end"
    );
    let commands = endpoint.store().commands(&devices[0].device_id).unwrap();
    assert_eq!(commands[0].state, "done", "{commands:?}");
    rt.block_on(handle.stop(true));
}

/// The soak: an enrolled device runs 1,000 sessions (its SessionID wraps at 256) with a
/// reboot mid-session halfway, digest-authenticated over plain HTTP: not one refused; then
/// a Windows 11 device, 300 sessions (hexadecimal SessionIDs from where a boot left them).
#[test]
fn a_thousand_sessions_with_wraps_and_a_reboot() {
    let (url, _endpoint, handle, entra, rt) = start();
    rt.block_on(async {
        for (config, sessions) in profiles(&url, &entra).into_iter().zip([1000, 300]) {
            let mut config = config;
            config.renew = false;
            config.unenroll = false;
            let mut sim = simulator::Simulator::new(config);
            for step in sim.plan() {
                if step.starts_with("management") {
                    break;
                }
                let s = sim.step(step).await;
                assert!(s.outcome.is_ok(), "{s}");
            }
            sim.soak(sessions)
                .await
                .unwrap_or_else(|step| panic!("{step}"));
        }
        handle.stop(true).await;
    });
}

/// The glue stays within what the README promises.
#[test]
fn the_glue_is_at_most_100_lines() {
    let source = include_str!("../src/lib.rs");
    let glue = source
        .lines()
        .skip_while(|l| *l != "// GLUE BEGIN")
        .skip(1)
        .take_while(|l| *l != "// GLUE END")
        .count();
    assert!(glue > 50 && glue <= 100, "{glue} lines");
    assert!(include_str!("../README.md").contains(&format!("**Glue: {glue} lines**")));
}
