//! The page in a real browser: Debian's chromium, driven by playwright-core (npm), with
//! axe-core. For FRX and MOSET: the computed theme colours, zero WCAG 2.x A/AA violations,
//! no CSP violations, no horizontal scrolling on a phone-sized screen, Accept reached and
//! pressed with the keyboard alone, the redirect back, and Back wired to history.
//! Screenshots go to `target/tou-screenshots/`.
//!
//! Needs `node`, `/usr/bin/chromium` and `npm ci` in `tests/browser` (`.ci/run` does all
//! three); skipped without them except under CI.

#[path = "../examples/tou_server.rs"]
mod server;

use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use winmdm_testkit::entra as tk;
use winmdm_testkit::tools;

#[test]
fn real_browser_themes_accessibility_keyboard_and_redirect() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !tools::require("node", &["--version"])
        || !tools::require("/usr/bin/chromium", &["--version"])
    {
        return;
    }
    if !dir.join("node_modules/playwright-core").exists()
        || !dir.join("node_modules/axe-core").exists()
    {
        assert!(
            !tools::in_ci(),
            "run `npm ci` in {} (.ci/run does)",
            dir.display()
        );
        eprintln!("skipping: npm ci has not been run in {}", dir.display());
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(async move {
        axum::serve(listener, server::router(server::app(None)))
            .await
            .unwrap();
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = tk::AccessToken::v2(&tk::CONTOSO, &tk::ALICE)
        .issued_at(now)
        .sign();
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/tou-screenshots");
    let out = Command::new("node")
        .arg(dir.join("tou.mjs"))
        .arg(&base)
        .arg(&token)
        .arg(&shots)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no report ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "browser test failed: {report:#}");
    let expect = [
        ("FRX", "rgb(0, 66, 117)", "rgb(255, 255, 255)"),
        ("MOSET", "rgb(255, 255, 255)", "rgb(27, 27, 27)"),
    ];
    for (host, background, color) in expect {
        let r = &report["scenarios"][host];
        assert_eq!(r["status"], 200, "{host}: {r:#}");
        assert_eq!(r["background"], background, "{host}: {r:#}");
        assert_eq!(r["color"], color, "{host}: {r:#}");
        assert_eq!(r["lang"], "en");
        assert_eq!(r["axeViolations"], serde_json::json!([]), "{host}: {r:#}");
        assert_eq!(r["cspViolations"], serde_json::json!([]), "{host}: {r:#}");
        assert_eq!(r["horizontalOverflow"], false, "{host}");
        assert_eq!(
            r["hasDecline"], true,
            "{host}: a personal device may decline"
        );
        assert_eq!(r["tabsToAccept"], 2, "{host}: terms region, then Accept");
        let redirect = &r["redirect"];
        assert_eq!(redirect["path"], "/done");
        assert_eq!(redirect["isAccepted"], "true");
        assert_eq!(
            redirect["clientRequestId"],
            "34be581c-6ebd-49d6-a4e1-150eff4b7213"
        );
        assert!(
            redirect["opaqueBlob"]
                .as_str()
                .unwrap()
                .starts_with("v1~example~")
        );
        assert_eq!(
            redirect["keys"],
            serde_json::json!(["OpaqueBlob", "IsAccepted", "client-request-id"])
        );
        assert_eq!(
            r["backUrlPath"], "/TermsOfUse",
            "{host}: Back returns to the page"
        );
        for f in [format!("tou-{host}.png"), format!("tou-{host}-narrow.png")] {
            assert!(shots.join(&f).metadata().unwrap().len() > 1000, "{f}");
        }
    }
}
