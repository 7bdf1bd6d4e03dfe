//! The `winmdm-server` binary: configuration from a file, environment variables and
//! flags, and the errors an operator sees.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

fn server() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_winmdm-server"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

fn temp_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "winmdm-bin-{}",
        winmdm_testkit::simulator::random_guid()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn configuration_errors_exit_2_with_the_reason() {
    let dir = temp_dir();
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"listen": "127.0.0.1:0", "entra": {"tenant": []}}"#,
    )
    .unwrap();
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            vec!["--config".into(), bad.display().to_string()],
            vec![],
            "unknown field `tenant`",
        ),
        (
            vec![
                "--config".into(),
                dir.join("missing.json").display().to_string(),
            ],
            vec![],
            "missing.json",
        ),
        (
            vec![
                "--entra-authority".into(),
                "https://login.microsoftonline.com".into(),
                "--graph-url".into(),
                "https://graph.microsoft.com/v1.0".into(),
            ],
            vec![],
            "graph.client_secret is required",
        ),
        (
            vec![],
            vec![("WINMDM_GRAPH_CLIENT_SECRET_ENV", "NOT_SET_ANYWHERE")],
            "NOT_SET_ANYWHERE is not set",
        ),
        (
            vec!["--ca-cert".into(), "ca.pem".into()],
            vec![],
            "ca.cert and ca.key go together",
        ),
    ];
    for (args, env, expected) in cases {
        let out = server().args(&args).envs(env).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serves_from_a_configuration_file_with_environment_overrides() {
    let dir = temp_dir();
    let config = dir.join("winmdm.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"data_dir": {:?}, "listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:1",
                "terms": {{"title": "Contoso terms", "text": "Be nice."}}}}"#,
            dir.join("data")
        ),
    )
    .unwrap();
    let mut child = server()
        .args(["--config", config.to_str().unwrap()])
        // The environment overrides the file's (unusable) admin listener.
        .env("WINMDM_ADMIN_LISTEN", "127.0.0.1:0")
        .env("ADMIN_TOKEN", "from-the-environment")
        .env("WINMDM_ADMIN_SECRET_ENV", "ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let devices = lines.next().unwrap().unwrap();
    let admin = lines.next().unwrap().unwrap();
    let admin_url = admin.strip_prefix("admin:").unwrap().trim().to_owned();
    assert!(
        devices.starts_with("devices: https://127.0.0.1:"),
        "{devices}"
    );
    let ok = winmdm_testkit::loopback::send(
        http::Request::get(format!("{admin_url}/devices"))
            .header("authorization", "Bearer from-the-environment")
            .body(Vec::new())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(ok.status(), 200);
    child.kill().unwrap();
    let _ = child.wait();
    assert!(dir.join("data/dev-ca.crt.pem").exists());
    assert!(dir.join("data/winmdm.sqlite3").exists());
    assert!(
        !dir.join("data/admin-secret").exists(),
        "a configured secret is not replaced by a generated one"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
