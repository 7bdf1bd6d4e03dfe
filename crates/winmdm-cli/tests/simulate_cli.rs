//! `winmdm simulate` against the reference server over loopback HTTPS.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_winmdm"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn simulate_against_the_reference_server() {
    let dir = std::env::temp_dir().join(format!(
        "winmdm-cli-simulate-{}",
        winmdm_testkit::simulator::random_guid()
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut config = winmdm_reference_server::Config {
        data_dir: dir.clone(),
        listen: ([127, 0, 0, 1], 0).into(),
        admin_listen: ([127, 0, 0, 1], 0).into(),
        ..Default::default()
    };
    config.enrollment.renewal_window_days = config.enrollment.validity_days;
    let running = rt.block_on(winmdm_reference_server::start(config)).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &running.ca_pem).unwrap();
    let emulator = running.entra.as_ref().unwrap().base_url().to_owned();
    let device = "0c0ffee0-0000-4000-8000-00000000d0e1";

    let (code, out, err) = run(&[
        "simulate",
        "--server",
        &running.public_url,
        "--ca",
        ca.to_str().unwrap(),
        "--token-from",
        &emulator,
        "--device-id",
        device,
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    for step in [
        "terms of use: accept",
        "enrollment: RST",
        "management: session 1",
        "renewal: RST Renew",
        "management: unenroll 1226",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with("ok") && l.contains(step)),
            "{step}:\n{out}"
        );
    }
    let record = running.app.store.device(device).unwrap().unwrap();
    assert!(record.unenrolled_at.is_some());

    // The Windows 11 profile: the same life, with the device ID spelled as Windows spells
    // it on the wire (the record stays under the GUID).
    let device = "0c0ffee0-0000-4000-8000-00000000d0e2";
    let (code, out, err) = run(&[
        "simulate",
        "--server",
        &running.public_url,
        "--ca",
        ca.to_str().unwrap(),
        "--token-from",
        &emulator,
        "--device-id",
        device,
        "--windows-11",
        "--oobe",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.lines().all(|l| !l.starts_with("FAIL")), "{out}");
    // This server shows no Enrollment Status Page (not configured): the OOBE steps say so.
    assert!(
        out.lines()
            .any(|l| l.contains("esp: device setup") && l.contains("no page")),
        "{out}"
    );
    let record = running.app.store.device(device).unwrap().unwrap();
    assert!(record.unenrolled_at.is_some());

    // Without the server's CA the TLS handshake fails: exit 1 at the first step that
    // reaches the server.
    let (code, out, _) = run(&[
        "simulate",
        "--server",
        &running.public_url,
        "--token-from",
        &emulator,
    ]);
    assert_eq!(code, Some(1), "{out}");
    let fail = out.lines().find(|l| l.starts_with("FAIL")).unwrap();
    assert!(fail.contains("terms of use: page"), "{out}");

    // A user the directory does not know: the sign-in step fails.
    let (code, out, _) = run(&[
        "simulate",
        "--server",
        &running.public_url,
        "--ca",
        ca.to_str().unwrap(),
        "--token-from",
        &emulator,
        "--user",
        "mallory@contoso.example",
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL sign in"), "{out}");
    // Neither option: a usage error.
    let (code, _, err) = run(&["simulate", "--server", &running.public_url]);
    assert_eq!(code, Some(2), "{err}");
    drop(running);
    let _ = std::fs::remove_dir_all(&dir);
}
