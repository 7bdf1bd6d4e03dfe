//! `winmdm-server --demo`: a fresh server (temporary data directory, ephemeral loopback
//! ports, embedded Entra and Graph emulators, a new development CA) and the testkit's
//! simulated Windows device, through the whole flow over HTTPS, with the admin API
//! exercised between sessions. Prints a transcript; succeeds only if every step did.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;
use winmdm_testkit::entra;
use winmdm_testkit::graph::EmulatedDevice;
use winmdm_testkit::simulator::{self, SimulatorConfig, Step, TokenSource};

use crate::config::Config;
use crate::{Running, start};

struct Admin {
    http: reqwest::Client,
    url: String,
    secret: String,
}

impl Admin {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        with_secret: bool,
    ) -> Result<(u16, Value), String> {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if with_secret {
            req = req.bearer_auth(&self.secret);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }
}

async fn timed<F>(name: &'static str, f: F) -> Step
where
    F: Future<Output = Result<(Option<u16>, String), (Option<u16>, String)>>,
{
    let started = Instant::now();
    let r = f.await;
    let elapsed = started.elapsed();
    match r {
        Ok((status, text)) => Step {
            name,
            status,
            elapsed,
            outcome: Ok(text),
        },
        Err((status, text)) => Step {
            name,
            status,
            elapsed,
            outcome: Err(text),
        },
    }
}

async fn initial_commands_done(
    admin: &Admin,
    device: &str,
) -> Result<(Option<u16>, String), (Option<u16>, String)> {
    let (status, body) = admin
        .call(
            reqwest::Method::GET,
            &format!("/devices/{device}/commands"),
            None,
            true,
        )
        .await
        .map_err(|e| (None, e))?;
    // The configured initial commands (the page's own, which the Enrollment Status Page
    // step checks, are left out: Windows refuses some of them in OOBE by design).
    let initial: Vec<Value> = crate::config::ManagementConfig::default()
        .initial_commands
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok())
        .collect();
    let list: Vec<Value> = body["commands"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| initial.contains(&c["command"]))
        .collect();
    if status != 200 || list.is_empty() {
        return Err((Some(status), "no commands".into()));
    }
    let pending: Vec<_> = list.iter().filter(|c| c["state"] != "done").collect();
    if !pending.is_empty() {
        return Err((Some(status), format!("{} commands not done", pending.len())));
    }
    if !list.iter().all(|c| {
        c["status"]
            .as_u64()
            .is_some_and(|s| (200..300).contains(&s))
    }) {
        return Err((Some(status), format!("a command failed: {body}")));
    }
    let results: Vec<String> = list
        .iter()
        .flat_map(|c| c["results"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| Some(format!("{} = {}", r[0].as_str()?, r[1].as_str()?)))
        .collect();
    let statuses: Vec<String> = list
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["command"]["verb"].as_str().unwrap_or("?"),
                c["status"]
            )
        })
        .collect();
    Ok((
        Some(status),
        format!("{}; results: {}", statuses.join(", "), results.join(", ")),
    ))
}

/// Runs the demo, writing the transcript to `out`; `true` when everything succeeded.
pub async fn run(out: &mut dyn Write) -> bool {
    let started = Instant::now();
    let data_dir = std::env::temp_dir().join(format!(
        "winmdm-demo-{}-{}",
        std::process::id(),
        simulator::random_guid()
    ));
    let mut config = Config {
        data_dir: data_dir.clone(),
        listen: ([127, 0, 0, 1], 0).into(),
        admin_listen: ([127, 0, 0, 1], 0).into(),
        ..Config::default()
    };
    // The demo renews at once: open the renewal window for the whole validity.
    config.enrollment.renewal_window_days = config.enrollment.validity_days;
    // The Enrollment Status Page: a device policy in device setup, a user policy in
    // account setup.
    config.esp.enabled = true;
    config.esp.user = vec![crate::config::EspCommand {
        label: "Start menu".into(),
        command: crate::commands::CommandSpec::Replace {
            target: "./User/Vendor/MSFT/Policy/Config/Start/HideRecentlyAddedApps".into(),
            format: "int".into(),
            data: "1".into(),
        },
    }];
    let _ = writeln!(out, "winmdm reference server — demo\n");
    let ok = match start(config).await {
        Ok(running) => {
            let _ = writeln!(
                out,
                "server   {}  (admin {}, data {})\n",
                running.public_url,
                running.admin_url,
                data_dir.display()
            );
            // The same flow for a device as the specs read, then for one that behaves as
            // published Windows 11 captures show.
            flow(&running, out, false).await && flow(&running, out, true).await
        }
        Err(e) => {
            let _ = writeln!(out, "FAIL server start: {e}");
            false
        }
    };
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = writeln!(
        out,
        "\n{} in {:.1} s",
        if ok { "demo passed" } else { "demo FAILED" },
        started.elapsed().as_secs_f64()
    );
    ok
}

async fn flow(running: &Running, out: &mut dyn Write, windows11: bool) -> bool {
    let (Some(entra_emulator), Some(graph)) = (&running.entra, &running.graph) else {
        let _ = writeln!(out, "FAIL the demo needs the embedded emulators");
        return false;
    };
    let token = TokenSource::emulator(entra_emulator.base_url());
    let mut config = if windows11 {
        SimulatorConfig::windows11(&running.public_url, token)
    } else {
        SimulatorConfig::new(&running.public_url, token)
    };
    let _ = writeln!(
        out,
        "{}",
        if windows11 {
            "\ndevice 2: the Windows 11 profile (32-hex DeviceID, one status per target, hexadecimal SessionIDs, Ms-Cv), joining Entra in OOBE: the Enrollment Status Page\n"
        } else {
            "device 1: as the specs read\n"
        }
    );
    config.ca_pem = Some(running.ca_pem.clone());
    config.oobe = windows11;
    config.device_name = "DEMO-LAPTOP".into();
    let device_id = config.device_id.clone();
    // What the Entra join did: the device exists in the directory.
    let object_id = simulator::random_guid();
    graph.add_device(EmulatedDevice {
        tenant_id: entra::CONTOSO.id.to_owned(),
        object_id: object_id.clone(),
        device_id: device_id.clone(),
        display_name: "DEMO-LAPTOP".into(),
        is_compliant: None,
        is_managed: None,
    });
    let admin = Admin {
        http: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default(),
        url: running.admin_url.clone(),
        secret: running.admin_secret.0.clone(),
    };
    let mut sim = simulator::Simulator::new(config);
    let mut all_ok = true;
    let mut report = |step: &Step, out: &mut dyn Write| {
        let _ = writeln!(out, "{step}");
        all_ok &= step.outcome.is_ok();
        step.outcome.is_ok()
    };
    let mut replace_id = None;
    for name in sim.plan() {
        let step = sim.step(name).await;
        if !report(&step, out) {
            return false;
        }
        if name == "management: session 1" {
            let steps = [
                timed(
                    "admin: first commands",
                    initial_commands_done(&admin, &device_id),
                )
                .await,
                timed("admin: refuses no secret", async {
                    let (s, _) = admin
                        .call(reqwest::Method::GET, "/devices", None, false)
                        .await
                        .map_err(|e| (None, e))?;
                    if s == 401 {
                        Ok((Some(s), "401 without the bearer secret".into()))
                    } else {
                        Err((Some(s), "the admin API answered without the secret".into()))
                    }
                })
                .await,
                timed("admin: queue Replace", async {
                    let (s, body) = admin
                        .call(
                            reqwest::Method::POST,
                            &format!("/devices/{device_id}/commands"),
                            Some(serde_json::json!({
                                "verb": "Replace",
                                "target": "./Vendor/MSFT/Policy/Config/Experience/AllowCortana",
                                "format": "int",
                                "data": "0"
                            })),
                            true,
                        )
                        .await
                        .map_err(|e| (None, e))?;
                    replace_id = body["id"].as_i64();
                    if s == 201 && replace_id.is_some() {
                        Ok((
                            Some(s),
                            format!("command {} queued for the next session", body["id"]),
                        ))
                    } else {
                        Err((Some(s), body.to_string()))
                    }
                })
                .await,
                timed("admin: report compliance", async {
                    let (s, body) = admin
                        .call(
                            reqwest::Method::PUT,
                            &format!("/devices/{device_id}/compliance"),
                            Some(serde_json::json!({ "compliant": true })),
                            true,
                        )
                        .await
                        .map_err(|e| (None, e))?;
                    let seen = graph.device(entra::CONTOSO.id, &object_id);
                    match seen {
                        Some(d)
                            if s == 204
                                && d.is_compliant == Some(true)
                                && d.is_managed == Some(true) =>
                        {
                            Ok((
                                Some(s),
                                "Graph now has isManaged=true, isCompliant=true".into(),
                            ))
                        }
                        _ => Err((Some(s), format!("Graph was not updated: {body}"))),
                    }
                })
                .await,
            ];
            for step in &steps {
                if !report(step, out) {
                    return false;
                }
            }
        }
        if name == "esp: account setup" {
            let step = timed("admin: ESP progress", async {
                let (s, body) = admin
                    .call(
                        reqwest::Method::GET,
                        &format!("/devices/{device_id}/esp"),
                        None,
                        true,
                    )
                    .await
                    .map_err(|e| (None, e))?;
                let esp = &body["esp"];
                let tracked = esp["tracked"].as_array().cloned().unwrap_or_default();
                let succeeded = tracked
                    .iter()
                    .filter(|t| t["outcome"].get("Succeeded").is_some())
                    .count();
                let retried = tracked
                    .iter()
                    .filter(|t| t["attempts"].as_u64().is_some_and(|a| a > 1))
                    .count();
                if esp["phase"] == "Released" && succeeded == tracked.len() {
                    Ok((
                        Some(s),
                        format!(
                            "released; {succeeded} of {} tracked commands succeeded, {retried} after a 405 in OOBE",
                            tracked.len()
                        ),
                    ))
                } else {
                    Err((Some(s), format!("page: {esp}")))
                }
            })
            .await;
            if !report(&step, out) {
                return false;
            }
        }
        if name == "management: session 2" {
            let step = timed("admin: Replace applied", async {
                let (s, body) = admin
                    .call(
                        reqwest::Method::GET,
                        &format!("/devices/{device_id}/commands"),
                        None,
                        true,
                    )
                    .await
                    .map_err(|e| (None, e))?;
                let cmd = body["commands"]
                    .as_array()
                    .and_then(|l| l.iter().find(|c| c["id"].as_i64() == replace_id).cloned())
                    .unwrap_or_default();
                if cmd["state"] == "done" && cmd["status"] == 200 {
                    Ok((Some(s), "the device answered 200".into()))
                } else {
                    Err((Some(s), format!("command: {cmd}")))
                }
            })
            .await;
            if !report(&step, out) {
                return false;
            }
        }
    }
    let step = timed("admin: device unenrolled", async {
        let (s, body) = admin
            .call(
                reqwest::Method::GET,
                &format!("/devices/{device_id}"),
                None,
                true,
            )
            .await
            .map_err(|e| (None, e))?;
        let d = &body["device"];
        if d["unenrolled_at"].is_string() && d["login_status"] == "User" {
            Ok((
                Some(s),
                format!(
                    "recorded; last check-in {}, {} DevInfo values",
                    d["last_checkin"].as_str().unwrap_or("never"),
                    d["dev_info"].as_array().map_or(0, Vec::len)
                ),
            ))
        } else {
            Err((Some(s), format!("device: {d}")))
        }
    })
    .await;
    report(&step, out);
    all_ok
}
