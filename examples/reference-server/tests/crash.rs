//! Crash safety: the `winmdm-server` process is killed (SIGKILL) at chosen points of
//! enrollment and of management sessions, then restarted; the simulated device, which
//! resends what went unanswered as Windows does, carries on. No queued command and no
//! result is lost or applied twice.
#![cfg(all(unix, feature = "fault-injection"))]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use winmdm_testkit::emulator::EntraEmulator;
use winmdm_testkit::entra;
use winmdm_testkit::graph::GraphEmulator;
use winmdm_testkit::simulator::{self, Simulator, SimulatorConfig, TokenSource};

const ADMIN: &str = "crash-test-admin";

/// A port for a server process told its address in a configuration file (see
/// [`winmdm_testkit::loopback::unused_port`] for why not port 0).
fn free_port() -> u16 {
    winmdm_testkit::loopback::unused_port().unwrap()
}

/// One server process; its standard error lines arrive on `lines`.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start(config: &Path, crash_point: Option<&str>) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_winmdm-server"));
        cmd.args(["--config", config.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match crash_point {
            Some(p) => cmd.env("WINMDM_CRASH_POINT", p),
            None => cmd.env_remove("WINMDM_CRASH_POINT"),
        };
        let mut child = cmd.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = out.next().unwrap().unwrap();
        assert!(first.starts_with("devices:"), "{first}");
        std::thread::spawn(move || for _ in out {});
        let (tx, lines) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, lines }
    }

    /// Waits until the server reports reaching its crash point, then kills it (SIGKILL).
    fn kill_at_crash_point(mut self, point: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(&format!("CRASH-POINT {point}")) => break,
                Ok(_) => {}
                Err(e) => panic!("the server never reached {point}: {e}"),
            }
        }
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "killed");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn admin_get(admin: &str, path: &str) -> Value {
    let resp = winmdm_testkit::loopback::send(
        http::Request::get(format!("{admin}{path}"))
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Vec::new())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(resp.status(), 200);
    serde_json::from_slice(resp.body()).unwrap()
}

/// The device's commands, as the admin API lists them.
fn commands_of(admin: &str, device: &str) -> Vec<Value> {
    admin_get(admin, &format!("/devices/{device}/commands"))["commands"]
        .as_array()
        .unwrap()
        .clone()
}

fn admin_queue(admin: &str, device: &str, body: &str) {
    let resp = winmdm_testkit::loopback::send(
        http::Request::post(format!("{admin}/devices/{device}/commands"))
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(resp.status(), 201);
}

/// Runs `steps` of the simulator on `rt` in the background; the handle gives it back.
fn run_steps(
    rt: &tokio::runtime::Runtime,
    mut sim: Simulator,
    steps: &'static [&'static str],
) -> tokio::task::JoinHandle<Simulator> {
    rt.spawn(async move {
        for name in steps {
            let step = sim.step(name).await;
            assert!(step.outcome.is_ok(), "{step}");
        }
        sim
    })
}

#[test]
fn killed_at_each_point_the_device_continues_and_nothing_is_lost_or_repeated() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let entra_emulator = EntraEmulator::spawn().unwrap();
    let graph = GraphEmulator::spawn().unwrap();
    let dir: PathBuf =
        std::env::temp_dir().join(format!("winmdm-crash-{}", simulator::random_guid()));
    std::fs::create_dir_all(&dir).unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let admin = format!("http://127.0.0.1:{admin_port}");
    let config = dir.join("winmdm.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "data_dir": dir.join("data"),
            "listen": format!("127.0.0.1:{port}"),
            "admin_listen": format!("127.0.0.1:{admin_port}"),
            "admin_secret": ADMIN,
            "entra": { "authority": entra_emulator.base_url() },
            "graph": { "url": graph.base_url(), "client_secret": entra::APP_SECRET_1 },
            "enrollment": { "renewal_window_days": 365 },
        })
        .to_string(),
    )
    .unwrap();

    // First start (no crash point) creates the CA the device will trust.
    let server = Server::start(&config, None);
    let ca = std::fs::read_to_string(dir.join("data/dev-ca.crt.pem")).unwrap();
    drop(server);
    let mut device = SimulatorConfig::new(
        &format!("https://127.0.0.1:{port}"),
        TokenSource::emulator(entra_emulator.base_url()),
    );
    device.ca_pem = Some(ca);
    device.retry_for = Duration::from_secs(60);
    let id = device.device_id.clone();
    let sim = Simulator::new(device);

    // Enrollment: killed after the device was stored, before it got its certificate; the
    // device resends the same request and is enrolled afresh (one device, one queue).
    let server = Server::start(&config, Some("enroll:after-store"));
    let task = run_steps(
        &rt,
        sim,
        &[
            "sign in",
            "terms of use: page",
            "terms of use: accept",
            "discovery: probe",
            "discovery: Discover",
            "policy: GetPolicies",
            "enrollment: RST",
        ],
    );
    server.kill_at_crash_point("enroll:after-store");
    // Killed again before storing, on the resent request.
    let server = Server::start(&config, Some("enroll:before-store"));
    server.kill_at_crash_point("enroll:before-store");
    let server = Server::start(&config, None);
    let sim = rt.block_on(task).unwrap();
    let commands = commands_of(&admin, &id);
    assert_eq!(
        commands.len(),
        3,
        "the initial commands, once: {commands:?}"
    );
    drop(server);

    // Session 1: killed before its first commit, then right after it (the reply is lost);
    // the resent message is recognised and its reply replayed.
    let server = Server::start(&config, Some("manage:before-commit"));
    let task = run_steps(&rt, sim, &["management: session 1"]);
    server.kill_at_crash_point("manage:before-commit");
    let server = Server::start(&config, Some("manage:after-commit"));
    server.kill_at_crash_point("manage:after-commit");
    let server = Server::start(&config, None);
    let sim = rt.block_on(task).unwrap();
    let commands = commands_of(&admin, &id);
    for c in &commands {
        assert_eq!(c["state"], "done", "{c}");
        assert_eq!(c["status"], 200, "{c}");
    }
    assert_eq!(
        commands[0]["results"].as_array().unwrap().len(),
        2,
        "two Get targets, two results, once: {}",
        commands[0]
    );
    let applied =
        |sim: &Simulator, what: &str| sim.applied().iter().filter(|a| a.contains(what)).count();
    assert_eq!(applied(&sim, "ActiveHoursStart"), 1);
    assert_eq!(applied(&sim, "QuickScan"), 1);

    // Session 2 with a command queued by the admin: killed after committing the message
    // that carries the device's statuses and results.
    admin_queue(
        &admin,
        &id,
        r#"{"verb":"Sequence","commands":[{"verb":"Replace","target":"./Vendor/MSFT/Policy/Config/Experience/AllowCortana","format":"int","data":"0"},{"verb":"Get","targets":["./DevDetail/SwV"]}]}"#,
    );
    drop(server);
    let server = Server::start(&config, Some("manage:after-commit#2"));
    let task = run_steps(&rt, sim, &["management: session 2"]);
    server.kill_at_crash_point("manage:after-commit#2");
    let server = Server::start(&config, None);
    let sim = rt.block_on(task).unwrap();
    let commands = commands_of(&admin, &id);
    let sequence = commands.last().unwrap();
    assert_eq!(sequence["state"], "done", "{sequence}");
    assert_eq!(sequence["status"], 200, "{sequence}");
    assert_eq!(
        sequence["results"].as_array().unwrap().len(),
        1,
        "{sequence}"
    );
    assert_eq!(applied(&sim, "AllowCortana"), 1);

    // And the device carries on: renewal and unenrollment on the restarted server.
    let task = run_steps(
        &rt,
        sim,
        &["renewal: RST Renew", "management: unenroll 1226"],
    );
    let sim = rt.block_on(task).unwrap();
    let device = admin_get(&admin, &format!("/devices/{id}"));
    assert!(device["device"]["unenrolled_at"].is_string(), "{device}");
    assert_eq!(
        applied(&sim, "ActiveHoursStart"),
        1,
        "nothing replayed later"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
