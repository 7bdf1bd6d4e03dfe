//! External tools for interop tests (OpenSSL, Python with PyJWT, xmllint).
//!
//! Interop tests need real peers. On a developer machine a missing tool skips the test
//! with a message; under CI (`CI` set in the environment) it fails the test, so a CI
//! that forgot to install a peer cannot pass silently.

use std::process::Command;

/// Whether we run under CI (the `CI` environment variable is set and not `false`/`0`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Checks that `program` runs with `probe_args` and exits successfully.
///
/// Returns `false` (after printing why) when it does not and we are not under CI.
///
/// # Panics
/// Under CI, when the tool is missing: the interop test must not pass by skipping.
pub fn require(program: &str, probe_args: &[&str]) -> bool {
    let ok = Command::new(program)
        .args(probe_args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !in_ci(),
            "interop peer `{program} {}` is not available under CI; .ci/run must install it",
            probe_args.join(" ")
        );
        eprintln!("skipping: `{program}` is not available on this machine");
    }
    ok
}

/// [`require`] for OpenSSL.
pub fn require_openssl() -> bool {
    require("openssl", &["version"])
}

/// [`require`] for Python 3 with PyJWT and `cryptography`.
pub fn require_pyjwt() -> bool {
    require("python3", &["-c", "import jwt, cryptography"])
}

/// [`require`] for xmllint (libxml2-utils).
pub fn require_xmllint() -> bool {
    require("xmllint", &["--version"])
}

/// Runs `program` with `args`, writes `stdin` to it, and returns its output.
///
/// # Errors
/// When the program cannot be started or its input cannot be written.
pub fn run_with_stdin(
    program: &str,
    args: &[&str],
    stdin: &[u8],
) -> std::io::Result<std::process::Output> {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin)?;
    }
    child.wait_with_output()
}
