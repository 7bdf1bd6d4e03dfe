//! The server's edge under a slow-client attack: the `winmdm-server` process runs with
//! 1,024 file descriptors while 1,000 connections stall (half never finish their TLS
//! handshake, half send headers announcing a 100,000-byte body, 11 bytes of it, then
//! nothing), and every connection the server closes is opened again half a second later. `/healthz`
//! and a whole enrollment must still succeed. (Before, stalled bodies were never reclaimed:
//! 230 of them made `/healthz` time out for minutes at 256 descriptors.)
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use winmdm_testkit::emulator::EntraEmulator;
use winmdm_testkit::simulator::{Simulator, SimulatorConfig, TokenSource};

const STALLED: usize = 1000;

/// One attacker slot: connect, stall, and when the server closes the connection, again.
async fn stall_forever(
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    stop: Arc<AtomicBool>,
    held: Arc<AtomicUsize>,
) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        held.fetch_add(1, Ordering::Relaxed);
        match &tls {
            // A TLS handshake that never finishes: the start of a ClientHello, then nothing.
            None => {
                let mut tcp = tcp;
                let _ = tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await;
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(Ok(0) | Err(_)) =
                        tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buf)).await
                    {
                        break;
                    }
                }
            }
            // A request whose body never finishes.
            Some(config) => {
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
                if let Ok(Ok(mut tls)) =
                    tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp)).await
                {
                    let _ = tls
                        .write_all(
                            b"POST /EnrollmentServer/Enrollment.svc HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                              Content-Type: application/soap+xml\r\nContent-Length: 100000\r\n\r\n\
                              <s:Envelope",
                        )
                        .await;
                    let _ = tls.flush().await;
                    let mut buf = [0u8; 256];
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(Ok(0) | Err(_)) =
                            tokio::time::timeout(Duration::from_millis(200), tls.read(&mut buf))
                                .await
                        {
                            break;
                        }
                    }
                }
            }
        }
        held.fetch_sub(1, Ordering::Relaxed);
        // Closed by the server: connect again a moment later (as a patient attacker does;
        // a tight loop would only measure this machine's two cores doing TLS for both
        // sides).
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[test]
fn stalled_clients_do_not_take_the_server_down() {
    // The attacker needs more descriptors than the server gets.
    let _ = rlimit::increase_nofile_limit(8192);
    let entra = EntraEmulator::spawn().unwrap();
    let dir = std::env::temp_dir().join(format!(
        "winmdm-edge-{}",
        winmdm_testkit::simulator::random_guid()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let port = winmdm_testkit::loopback::unused_port().unwrap();
    let config = serde_json::json!({
        "data_dir": dir.join("data"),
        "listen": format!("127.0.0.1:{port}"),
        "admin_listen": "127.0.0.1:0",
        "entra": { "authority": entra.base_url() },
        "enrollment": { "allow_ecdsa": true },
    });
    let config_path = dir.join("winmdm.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    // The server gets the usual soft limit of 1,024 descriptors.
    let mut server = Command::new("sh")
        .args([
            "-c",
            "ulimit -n 1024 && exec \"$0\" --config \"$1\"",
            env!("CARGO_BIN_EXE_winmdm-server"),
            config_path.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();
    assert!(ready.starts_with("devices:"), "{ready}");
    std::thread::spawn(move || for _ in lines {});
    let ca_pem = std::fs::read_to_string(dir.join("data/dev-ca.crt.pem")).unwrap();
    let url = format!("https://127.0.0.1:{port}");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let held = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        for n in 0..STALLED {
            let tls = (n % 2 == 1).then(|| tls.clone());
            rt.spawn(stall_forever(port, tls, stop.clone(), held.clone()));
        }
        // Let the attack build up (every slot connected at least once).
        let t = Instant::now();
        while held.load(Ordering::Relaxed) < STALLED * 9 / 10 && t.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("stalled connections held: {}", held.load(Ordering::Relaxed));

        // The health check.
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let t = Instant::now();
        let health = client.get(format!("{url}/healthz")).send().await.unwrap();
        let healthz = t.elapsed();
        assert_eq!(health.status(), 200);
        assert_eq!(
            health.text().await.unwrap(),
            r#"{"status":"ok","storage":"ok"}"#
        );

        // A whole enrollment (P-256 key made before the clock starts).
        let mut config = SimulatorConfig::new(&url, TokenSource::emulator(entra.base_url()));
        config.ca_pem = Some(ca_pem.clone());
        config.key_pkcs8 = Some(rcgen::KeyPair::generate().unwrap().serialize_der());
        config.renew = false;
        config.unenroll = false;
        let mut sim = Simulator::new(config);
        let t = Instant::now();
        let mut enrollment = Duration::ZERO;
        for step in sim.plan() {
            let s = sim.step(step).await;
            assert!(s.outcome.is_ok(), "{s}");
            if step == "enrollment: RST" {
                enrollment = t.elapsed();
            }
        }
        let with_session = t.elapsed();
        println!(
            "under {} stalled connections: /healthz {} ms, enrollment (sign-in to certificate, 7 requests on new connections) {} ms, with the first session {} ms",
            held.load(Ordering::Relaxed),
            healthz.as_millis(),
            enrollment.as_millis(),
            with_session.as_millis()
        );
        // A generous ceiling: the failure this guards against is minutes, not seconds.
        assert!(healthz < Duration::from_secs(10), "{healthz:?}");
        assert!(enrollment < Duration::from_secs(20), "{enrollment:?}");
        stop.store(true, Ordering::Relaxed);
    });
    let _ = server.kill();
    let _ = server.wait();
}
