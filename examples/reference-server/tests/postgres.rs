//! PostgreSQL storage: the store conformance suite, concurrent migrations, and two
//! `winmdm-server` processes on one database behind a round-robin proxy, each device's
//! requests alternating between them.
//!
//! Needs `WINMDM_TEST_POSTGRES` (a URL whose role may create databases; `.ci/run` starts a
//! private cluster and sets it). Without it the tests are skipped, except under CI, where
//! they fail.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use winmdm_endpoint::conformance;
use winmdm_reference_server::store::Store as _;
use winmdm_reference_server::store::postgres::PostgresStore;
use winmdm_testkit::emulator::EntraEmulator;
use winmdm_testkit::entra;
use winmdm_testkit::graph::{EmulatedDevice, GraphEmulator};
use winmdm_testkit::simulator::{self, Simulator, SimulatorConfig, TokenSource};

fn server_url() -> Option<String> {
    match std::env::var("WINMDM_TEST_POSTGRES") {
        Ok(u) => Some(u),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("WINMDM_TEST_POSTGRES is not set (.ci/run starts PostgreSQL and sets it)")
        }
        Err(_) => {
            eprintln!("skipped: WINMDM_TEST_POSTGRES is not set");
            None
        }
    }
}

/// A database of its own for one test, dropped at the end.
struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

impl TestDatabase {
    fn new(admin: &str) -> Self {
        let name = format!("winmdm_t_{}", simulator::random_guid().replace('-', ""));
        let mut c = postgres::Client::connect(admin, postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let base = admin.rsplit_once('/').unwrap().0;
        Self {
            admin: admin.to_owned(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

#[test]
fn the_postgres_store_conforms() {
    let Some(admin) = server_url() else { return };
    let db = TestDatabase::new(&admin);
    let store = PostgresStore::connect(&db.url, 4).unwrap();
    conformance::all(&store);
    // Reconnecting migrates nothing twice.
    let again = PostgresStore::connect(&db.url, 1).unwrap();
    assert!(again.device("d1").unwrap().is_some());
}

#[test]
fn instances_starting_together_migrate_once() {
    let Some(admin) = server_url() else { return };
    let db = TestDatabase::new(&admin);
    let url = Arc::new(db.url.clone());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PostgresStore::connect(&url, 1).map(|_| ()))
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    let mut c = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let row = c
        .query_one("SELECT COUNT(*), MAX(version) FROM schema_version", &[])
        .unwrap();
    let (rows, newest): (i64, i32) = (row.get(0), row.get(1));
    assert_eq!((rows, newest), (5, 5), "each migration applied once");
    // A database from a newer server is refused, not damaged.
    c.batch_execute("INSERT INTO schema_version VALUES (999)")
        .unwrap();
    let err = PostgresStore::connect(&db.url, 1).unwrap_err();
    assert!(err.to_string().contains("999"), "{err}");
}

/// A TCP proxy sending each new connection to the next backend in turn.
async fn round_robin(backends: Vec<u16>, served: Arc<Vec<AtomicUsize>>) -> u16 {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let next = AtomicUsize::new(0);
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            let i = next.fetch_add(1, Ordering::SeqCst) % backends.len();
            served[i].fetch_add(1, Ordering::SeqCst);
            let backend = backends[i];
            tokio::spawn(async move {
                if let Ok(mut outbound) =
                    tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    port
}

struct Instance(Child);

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port for a server process told its address in a configuration file (see
/// [`winmdm_testkit::loopback::unused_port`] for why not port 0).
fn free_port() -> u16 {
    winmdm_testkit::loopback::unused_port().unwrap()
}

fn start_instance(config: &std::path::Path, database_url: &str) -> Instance {
    let mut child = Command::new(env!("CARGO_BIN_EXE_winmdm-server"))
        .args(["--config", config.to_str().unwrap()])
        .env("TEST_DATABASE_URL", database_url)
        .env("WINMDM_DATABASE_URL_ENV", "TEST_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = out.next().unwrap().unwrap();
    assert!(first.starts_with("devices:"), "{first}");
    std::thread::spawn(move || for _ in out {});
    Instance(child)
}

async fn admin(url: &str, method: reqwest::Method, path: &str, body: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .request(method, format!("{url}{path}"))
        .bearer_auth("two-instances");
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or(Value::Null),
    )
}

#[test]
fn two_instances_on_one_database_serve_every_flow() {
    let Some(admin_url) = server_url() else {
        return;
    };
    let db = TestDatabase::new(&admin_url);
    let entra_emulator = EntraEmulator::spawn().unwrap();
    let graph = GraphEmulator::spawn().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("winmdm-two-{}", simulator::random_guid()));
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let ports = [free_port(), free_port()];
    let admins = [free_port(), free_port()];
    let served = Arc::new(vec![AtomicUsize::new(0), AtomicUsize::new(0)]);
    let proxy = rt.block_on(round_robin(ports.to_vec(), served.clone()));
    let public = format!("https://127.0.0.1:{proxy}");
    let configs: Vec<_> = (0..2)
        .map(|i| {
            let path = dir.join(format!("instance-{i}.json"));
            std::fs::write(
                &path,
                serde_json::json!({
                    // One data directory: the CA and the Terms-of-Use keys are shared.
                    "data_dir": data,
                    "listen": format!("127.0.0.1:{}", ports[i]),
                    "admin_listen": format!("127.0.0.1:{}", admins[i]),
                    "public_url": public,
                    "admin_secret": "two-instances",
                    "entra": { "authority": entra_emulator.base_url() },
                    "graph": { "url": graph.base_url(), "client_secret": entra::APP_SECRET_1 },
                    "enrollment": { "renewal_window_days": 365 },
                })
                .to_string(),
            )
            .unwrap();
            path
        })
        .collect();
    // The first instance creates the shared CA and keys; then the second starts.
    let first = start_instance(&configs[0], &db.url);
    let second = start_instance(&configs[1], &db.url);
    let ca = std::fs::read_to_string(data.join("dev-ca.crt.pem")).unwrap();
    let admin_urls: Vec<String> = admins
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();

    rt.block_on(async {
        let mut tasks = Vec::new();
        for n in 0..3 {
            let mut config =
                SimulatorConfig::new(&public, TokenSource::emulator(entra_emulator.base_url()));
            config.ca_pem = Some(ca.clone());
            config.reuse_connections = false;
            config.unenroll = false;
            config.retry_for = Duration::from_secs(20);
            let object_id = simulator::random_guid();
            graph.add_device(EmulatedDevice {
                tenant_id: entra::CONTOSO.id.into(),
                object_id,
                device_id: config.device_id.clone(),
                display_name: format!("TWO-{n}"),
                is_compliant: None,
                is_managed: None,
            });
            let admin_urls = admin_urls.clone();
            tasks.push(tokio::spawn(async move {
                let mut sim = Simulator::new(config);
                let id = sim.device_id().to_owned();
                for name in sim.plan() {
                    let step = sim.step(name).await;
                    assert!(step.outcome.is_ok(), "{id}: {step}");
                    if name == "management: session 1" {
                        // Queue through one instance, report compliance through the other.
                        let (s, _) = admin(
                            &admin_urls[n % 2],
                            reqwest::Method::POST,
                            &format!("/devices/{id}/commands"),
                            Some(r#"{"verb":"Get","targets":["./DevDetail/SwV"]}"#),
                        )
                        .await;
                        assert_eq!(s, 201);
                        let (s, body) = admin(
                            &admin_urls[(n + 1) % 2],
                            reqwest::Method::PUT,
                            &format!("/devices/{id}/compliance"),
                            Some(r#"{"compliant":true}"#),
                        )
                        .await;
                        assert_eq!(s, 204, "{body}");
                    }
                }
                (id, sim.applied().to_vec())
            }));
        }
        for t in tasks {
            let (id, applied) = t.await.unwrap();
            // Seen the same from either instance.
            let (_, a) = admin(
                &admin_urls[0],
                reqwest::Method::GET,
                &format!("/devices/{id}"),
                None,
            )
            .await;
            let (_, b) = admin(
                &admin_urls[1],
                reqwest::Method::GET,
                &format!("/devices/{id}"),
                None,
            )
            .await;
            assert_eq!(a, b);
            let commands = a["commands"].as_array().unwrap();
            assert_eq!(commands.len(), 4, "{a}");
            for c in commands {
                assert_eq!(
                    (c["state"].as_str(), c["status"].as_u64()),
                    (Some("done"), Some(200)),
                    "{c}"
                );
            }
            assert_eq!(commands[3]["results"].as_array().unwrap().len(), 1);
            assert_eq!(a["device"]["compliant"], true);
            assert_eq!(applied.len(), 2, "each mutation once: {applied:?}");
        }
    });
    let served: Vec<usize> = served.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert!(
        served.iter().all(|n| *n >= 10),
        "both instances served: {served:?}"
    );
    drop((first, second));
    let _ = std::fs::remove_dir_all(&dir);
}
