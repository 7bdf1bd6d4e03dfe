//! `winmdm graph report-compliance` against the testkit's Entra and Graph emulators.

use std::process::Command;

use winmdm_testkit::emulator::EntraEmulator;
use winmdm_testkit::entra::{self as tk, CONTOSO};
use winmdm_testkit::graph::{EmulatedDevice, GraphEmulator};

const OBJECT_ID: &str = "d0d0d0d0-0000-4000-8000-000000000001";

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_winmdm"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn report_compliance_with_a_secret_and_with_a_certificate() {
    let entra = EntraEmulator::spawn().unwrap();
    let graph = GraphEmulator::spawn().unwrap();
    graph.add_device(EmulatedDevice {
        tenant_id: CONTOSO.id.into(),
        object_id: OBJECT_ID.into(),
        device_id: tk::ENROLLMENT_DEVICE_ID.into(),
        display_name: "DESKTOP-1".into(),
        is_compliant: None,
        is_managed: None,
    });
    let graph_url = graph.base_url();
    let base = [
        "graph",
        "report-compliance",
        "--tenant",
        CONTOSO.id,
        "--client-id",
        tk::MDM_APP_ID,
        "--authority",
        entra.base_url(),
        "--graph-url",
        &graph_url,
    ];
    // By deviceId (tried first), with the secret from the environment.
    let mut args = base.to_vec();
    args.extend([
        "--device",
        tk::ENROLLMENT_DEVICE_ID,
        "--compliant",
        "false",
        "--client-secret-env",
        "MDM_SECRET",
    ]);
    let (ok, out, err) = run(&args, &[("MDM_SECRET", tk::APP_SECRET_1)]);
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with("204 No Content") && out.contains("by deviceId"),
        "{out}"
    );
    assert!(!out.contains(tk::APP_SECRET_1) && !err.contains(tk::APP_SECRET_1));
    let d = graph.device(CONTOSO.id, OBJECT_ID).unwrap();
    assert_eq!((d.is_managed, d.is_compliant), (Some(true), Some(false)));
    // By object ID (the deviceId lookup 404s first), with a certificate.
    let dir = std::env::temp_dir().join(format!("winmdm-graph-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, tk::APP_CREDENTIAL_1.cert_pem).unwrap();
    std::fs::write(&key, tk::APP_CREDENTIAL_1.key_pem).unwrap();
    let mut args = base.to_vec();
    args.extend([
        "--device",
        OBJECT_ID,
        "--compliant",
        "true",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let (ok, out, err) = run(&args, &[]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("by object id"), "{out}");
    assert_eq!(
        graph.device(CONTOSO.id, OBJECT_ID).unwrap().is_compliant,
        Some(true)
    );
    // A wrong secret: the token endpoint's refusal, exit 1.
    let mut args = base.to_vec();
    args.extend([
        "--device",
        OBJECT_ID,
        "--compliant",
        "true",
        "--client-secret-env",
        "MDM_SECRET",
    ]);
    let (ok, out, _) = run(&args, &[("MDM_SECRET", "wrong")]);
    assert!(!ok);
    assert!(out.starts_with("failed: no token"), "{out}");
    // An unknown device: 404, exit 1.
    let mut args = base.to_vec();
    args.extend([
        "--device",
        "d0d0d0d0-0000-4000-8000-0000000000ff",
        "--compliant",
        "true",
        "--client-secret-env",
        "MDM_SECRET",
    ]);
    let (ok, out, _) = run(&args, &[("MDM_SECRET", tk::APP_SECRET_1)]);
    assert!(!ok);
    assert!(out.starts_with("failed: 404 Not Found"), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}
