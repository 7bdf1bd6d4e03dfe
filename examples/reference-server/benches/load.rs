//! Load test (a bench binary, bounded in time): simulated devices enroll with a
//! `winmdm-server` process over loopback HTTPS, then each completes its first management
//! session, with many sessions in flight at once. Zero errors and zero lost commands, or it
//! fails.
//!
//! ```sh
//! cargo bench -p winmdm-reference-server --bench load                      # SQLite
//! WINMDM_TEST_POSTGRES=postgres://… cargo bench -p winmdm-reference-server --bench load -- --postgres
//! cargo bench -p winmdm-reference-server --bench load -- --devices 2000 --concurrency 300
//! ```
//!
//! Device keys (P-256) are generated before the clock starts; the file-descriptor limit is
//! raised first. Reports enrollments/s, sessions/s, p50/p99 latencies and the server's peak
//! memory (VmHWM).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use winmdm_testkit::emulator::EntraEmulator;
use winmdm_testkit::entra;
use winmdm_testkit::graph::GraphEmulator;
use winmdm_testkit::simulator::{self, Simulator, SimulatorConfig, TokenSource};

/// The whole run must finish within this.
const BUDGET: Duration = Duration::from_secs(10 * 60);

const ENROLL: &[&str] = &[
    "sign in",
    "terms of use: page",
    "terms of use: accept",
    "discovery: probe",
    "discovery: Discover",
    "policy: GetPolicies",
    "enrollment: RST",
];

struct Options {
    devices: usize,
    concurrency: usize,
    postgres: bool,
}

fn options() -> Options {
    let mut o = Options {
        devices: 1000,
        concurrency: 200,
        postgres: false,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--devices" => {
                i += 1;
                o.devices = args[i].parse().expect("--devices N");
            }
            "--concurrency" => {
                i += 1;
                o.concurrency = args[i].parse().expect("--concurrency N");
            }
            "--postgres" => o.postgres = true,
            // cargo bench passes --bench; other harness flags are ignored.
            _ => {}
        }
        i += 1;
    }
    o
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn peak_memory_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() {
    let opts = options();
    let started = Instant::now();
    let soft = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    let store_name = if opts.postgres {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "load: {} devices, {} at once, {store_name}; file descriptors: {soft}",
        opts.devices, opts.concurrency
    );

    // Pre-generated P-256 device keys (not timed).
    let keys: Vec<Vec<u8>> = (0..opts.devices)
        .map(|_| rcgen::KeyPair::generate().unwrap().serialize_der())
        .collect();

    let entra_emulator = EntraEmulator::spawn().unwrap();
    let graph = GraphEmulator::spawn().unwrap();
    let dir = std::env::temp_dir().join(format!("winmdm-load-{}", simulator::random_guid()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = serde_json::json!({
        "data_dir": dir.join("data"),
        "listen": format!("127.0.0.1:{port}"),
        "admin_listen": "127.0.0.1:0",
        "admin_secret": "load",
        "entra": { "authority": entra_emulator.base_url() },
        "graph": { "url": graph.base_url(), "client_secret": entra::APP_SECRET_1 },
        "enrollment": { "allow_ecdsa": true },
        "management": { "max_in_flight": opts.concurrency * 2 },
    });
    let mut database = None;
    if opts.postgres {
        let admin = std::env::var("WINMDM_TEST_POSTGRES")
            .expect("--postgres needs WINMDM_TEST_POSTGRES (a role that may create databases)");
        let name = format!("winmdm_load_{}", simulator::random_guid().replace('-', ""));
        postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        config["database_url"] = serde_json::json!(url);
        config["database_pool"] = serde_json::json!(32);
        database = Some((admin, name));
    }
    let config_path = dir.join("winmdm.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_winmdm-server"))
        .args(["--config", config_path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();
    assert!(ready.starts_with("devices:"), "{ready}");
    std::thread::spawn(move || for _ in lines {});
    let ca = std::fs::read_to_string(dir.join("data/dev-ca.crt.pem")).unwrap();
    let server_url = format!("https://127.0.0.1:{port}");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = rt.block_on(async {
        let gate = Arc::new(tokio::sync::Semaphore::new(opts.concurrency));
        // Phase 1: enrollment.
        let phase1 = Instant::now();
        let mut tasks = Vec::with_capacity(opts.devices);
        for key in keys {
            let mut config = SimulatorConfig::new(
                &server_url,
                TokenSource::emulator(entra_emulator.base_url()),
            );
            config.ca_pem = Some(ca.clone());
            config.key_pkcs8 = Some(key);
            config.renew = false;
            config.unenroll = false;
            config.timeout = Duration::from_secs(120);
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.unwrap();
                let mut sim = Simulator::new(config);
                let mut rst = Duration::ZERO;
                let t = Instant::now();
                for name in ENROLL {
                    let step = sim.step(name).await;
                    if let Err(e) = &step.outcome {
                        return Err(format!("{}: {name}: {e}", sim.device_id()));
                    }
                    if *name == "enrollment: RST" {
                        rst = step.elapsed;
                    }
                }
                Ok((sim, t.elapsed(), rst))
            }));
        }
        let mut sims = Vec::with_capacity(tasks.len());
        let mut enroll_latency = Vec::new();
        let mut rst_latency = Vec::new();
        let mut errors = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok((sim, whole, rst)) => {
                    sims.push(sim);
                    enroll_latency.push(whole);
                    rst_latency.push(rst);
                }
                Err(e) => errors.push(e),
            }
        }
        let phase1 = phase1.elapsed();

        // Phase 2: every device's first session, `concurrency` at once.
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(tokio::sync::Barrier::new(opts.concurrency.min(sims.len())));
        let phase2 = Instant::now();
        let mut tasks = Vec::with_capacity(sims.len());
        for (n, mut sim) in sims.into_iter().enumerate() {
            let (gate, in_flight, peak, barrier) = (
                gate.clone(),
                in_flight.clone(),
                peak.clone(),
                barrier.clone(),
            );
            let first_wave = n < opts.concurrency;
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.unwrap();
                if first_wave {
                    // The first wave starts together: that many sessions in flight at once.
                    barrier.wait().await;
                }
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                let step = sim.step("management: session 1").await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                match step.outcome {
                    Ok(_) => Ok((
                        sim.device_id().to_owned(),
                        step.elapsed,
                        sim.applied().len(),
                    )),
                    Err(e) => Err(format!("{}: session: {e}", sim.device_id())),
                }
            }));
        }
        let mut session_latency = Vec::new();
        let mut devices = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok((id, d, applied)) => {
                    session_latency.push(d);
                    devices.push((id, applied));
                }
                Err(e) => errors.push(e),
            }
        }
        let phase2 = phase2.elapsed();
        (
            phase1,
            phase2,
            enroll_latency,
            rst_latency,
            session_latency,
            devices,
            errors,
            peak.load(Ordering::SeqCst),
        )
    });
    let (phase1, phase2, mut enroll, mut rst, mut session, devices, errors, peak) = outcome;
    let memory = peak_memory_kib(server.id());

    // Zero lost commands: every initial command of every device is done with 200.
    let mut lost = 0usize;
    let store: Box<dyn winmdm_reference_server::store::Store> = match &database {
        Some((admin, name)) => Box::new(
            winmdm_reference_server::store::postgres::PostgresStore::connect(
                &format!("{}/{name}", admin.rsplit_once('/').unwrap().0),
                2,
            )
            .unwrap(),
        ),
        None => Box::new(
            winmdm_reference_server::store::SqliteStore::open(&dir.join("data/winmdm.sqlite3"))
                .unwrap(),
        ),
    };
    for (id, applied) in &devices {
        let commands = store.commands(id).unwrap();
        let done = commands
            .iter()
            .filter(|c| c.state == "done" && c.status == Some(200))
            .count();
        if commands.len() != 3 || done != 3 || *applied != 2 {
            lost += 1;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    drop(store);
    if let Some((admin, name)) = database
        && let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls)
    {
        let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
    let _ = std::fs::remove_dir_all(&dir);

    enroll.sort();
    rst.sort();
    session.sort();
    println!();
    println!("store                      {store_name}");
    println!(
        "devices enrolled           {} / {}",
        enroll.len(),
        opts.devices
    );
    println!(
        "enrollments/s              {:.1}  ({:.1} s)",
        enroll.len() as f64 / phase1.as_secs_f64(),
        phase1.as_secs_f64()
    );
    println!(
        "sessions/s                 {:.1}  ({:.1} s)",
        session.len() as f64 / phase2.as_secs_f64(),
        phase2.as_secs_f64()
    );
    println!("sessions in flight (peak)  {peak}");
    println!(
        "enrollment p50 / p99       {:.0} / {:.0} ms (7 steps, ToU to certificate)",
        ms(percentile(&enroll, 50.0)),
        ms(percentile(&enroll, 99.0))
    );
    println!(
        "  RST p50 / p99            {:.0} / {:.0} ms",
        ms(percentile(&rst, 50.0)),
        ms(percentile(&rst, 99.0))
    );
    println!(
        "session p50 / p99          {:.0} / {:.0} ms",
        ms(percentile(&session, 50.0)),
        ms(percentile(&session, 99.0))
    );
    println!(
        "server peak memory         {}",
        memory.map_or_else(
            || "unknown".to_owned(),
            |k| format!("{:.1} MiB", k as f64 / 1024.0)
        )
    );
    println!("errors                     {}", errors.len());
    println!("devices with lost or repeated commands  {lost}");
    println!(
        "total                      {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for e in errors.iter().take(10) {
        println!("  error: {e}");
    }
    let ok = errors.is_empty()
        && lost == 0
        && devices.len() == opts.devices
        && peak >= opts.concurrency.min(opts.devices)
        && started.elapsed() < BUDGET;
    if !ok {
        println!("LOAD TEST FAILED");
        std::process::exit(1);
    }
}
