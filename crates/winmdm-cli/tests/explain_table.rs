//! Every row of the enrollment error table, read back through the `winmdm` binary by
//! number and by name.
//!
//! The expected rows below are typed in independently from the Microsoft Entra
//! integration doc's table (and MS-MDE2 §2.2.10 for 0x80180032), so a mistake in the
//! library's table fails here.

use std::process::Command;

/// (code, name as documented, message id)
const DOC_TABLE: &[(u32, &str, &str)] = &[
    (
        0x80180001,
        "MENROLL_E_DEVICE_MESSAGE_FORMAT_ERROR",
        "idErrorServerConnectivity",
    ),
    (
        0x80180002,
        "MENROLL_E_DEVICE_AUTHENTICATION_ERROR",
        "idErrorAuthenticationFailure",
    ),
    (
        0x80180003,
        "MENROLL_E_DEVICE_AUTHORIZATION_ERROR",
        "idErrorAuthorizationFailure",
    ),
    (
        0x80180004,
        "MENROLL_E_DEVICE_CERTIFCATEREQUEST_ERROR",
        "idErrorMDMCertificateError",
    ),
    (
        0x80180005,
        "MENROLL_E_DEVICE_CONFIGMGRSERVER_ERROR",
        "idErrorServerConnectivity",
    ),
    (
        0x80180006,
        "MENROLL_E_DEVICE_CONFIGMGRSERVER_ERROR",
        "idErrorServerConnectivity",
    ),
    (
        0x80180007,
        "MENROLL_E_DEVICE_INVALIDSECURITY_ERROR",
        "idErrorAuthenticationFailure",
    ),
    (
        0x80180008,
        "MENROLL_E_DEVICE_UNKNOWN_ERROR",
        "idErrorServerConnectivity",
    ),
    (
        0x80180009,
        "MENROLL_E_ENROLLMENT_IN_PROGRESS",
        "idErrorAlreadyInProgress",
    ),
    (
        0x8018000A,
        "MENROLL_E_DEVICE_ALREADY_ENROLLED",
        "idErrorMDMAlreadyEnrolled",
    ),
    (
        0x8018000D,
        "MENROLL_E_DISCOVERY_SEC_CERT_DATE_INVALID",
        "idErrorMDMCertificateError",
    ),
    (
        0x8018000E,
        "MENROLL_E_PASSWORD_NEEDED",
        "idErrorAuthenticationFailure",
    ),
    (
        0x8018000F,
        "MENROLL_E_WAB_ERROR",
        "idErrorAuthenticationFailure",
    ),
    (
        0x80180010,
        "MENROLL_E_CONNECTIVITY",
        "idErrorServerConnectivity",
    ),
    (
        0x80180012,
        "MENROLL_E_INVALIDSSLCERT",
        "idErrorMDMCertificateError",
    ),
    (
        0x80180013,
        "MENROLL_E_DEVICECAPREACHED",
        "idErrorDeviceLimit",
    ),
    (
        0x80180014,
        "MENROLL_E_DEVICENOTSUPPORTED",
        "idErrorMDMNotSupported",
    ),
    (
        0x80180015,
        "MENROLL_E_NOTSUPPORTED",
        "idErrorMDMNotSupported",
    ),
    (
        0x80180016,
        "MENROLL_E_NOTELIGIBLETORENEW",
        "idErrorMDMRenewalRejected",
    ),
    (
        0x80180017,
        "MENROLL_E_INMAINTENANCE",
        "idErrorMDMAccountMaintenance",
    ),
    (
        0x80180018,
        "MENROLL_E_USERLICENSE",
        "idErrorMDMLicenseError",
    ),
    (
        0x80180019,
        "MENROLL_E_ENROLLMENTDATAINVALID",
        "idErrorInvalidServerConfig",
    ),
    (
        0x801c0001,
        "DSREG_E_DEVICE_MESSAGE_FORMAT_ERROR",
        "idErrorServerConnectivity",
    ),
    (
        0x801c0002,
        "DSREG_E_DEVICE_AUTHENTICATION_ERROR",
        "idErrorAuthenticationFailure",
    ),
    (
        0x801c0003,
        "DSREG_E_DEVICE_AUTHORIZATION_ERROR",
        "idErrorAuthorizationFailure",
    ),
    (
        0x801c0006,
        "DSREG_E_DEVICE_INTERNALSERVICE_ERROR",
        "idErrorServerConnectivity",
    ),
    (
        0x801C000B,
        "DSREG_E_DISCOVERY_REDIRECTION_NOT_TRUSTED",
        "idErrorUntrustedServer",
    ),
    (
        0x801C000C,
        "DSREG_E_DISCOVERY_FAILED",
        "idErrorServerConnectivity",
    ),
    (
        0x801C000E,
        "DSREG_E_DEVICE_REGISTRATION_QUOTA_EXCCEEDED",
        "idErrorDeviceLimit",
    ),
    (
        0x801C000F,
        "DSREG_E_DEVICE_REQUIRES_REBOOT",
        "idErrorDeviceRequiresReboot",
    ),
    (
        0x801c0010,
        "DSREG_E_DEVICE_AIK_VALIDATION_ERROR",
        "idErrorInvalidCertificate",
    ),
    (
        0x801c0011,
        "DSREG_E_DEVICE_ATTESTATION_ERROR",
        "idErrorAuthenticationFailure",
    ),
    (
        0x801c0012,
        "DSREG_E_DISCOVERY_BAD_MESSAGE_ERROR",
        "idErrorServerConnectivity",
    ),
    (
        0x801c0013,
        "DSREG_E_TENANTID_NOT_FOUND",
        "idErrorAuthenticationFailure",
    ),
    (
        0x801c0014,
        "DSREG_E_USERSID_NOT_FOUND",
        "idErrorAuthenticationFailure",
    ),
];

fn winmdm(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_winmdm"))
        .args(args)
        .output()
        .expect("run winmdm");
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The blocks of `explain` output, one per explained code.
fn blocks(stdout: &str) -> Vec<&str> {
    stdout
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .collect()
}

#[test]
fn acceptance_example() {
    let (ok, out, _) = winmdm(&["explain", "0x80180014"]);
    assert!(ok);
    assert!(
        out.starts_with("0x80180014  MENROLL_E_DEVICENOTSUPPORTED\n"),
        "{out}"
    );
    assert!(out.contains(
        "This feature isn't supported. Contact your system administrator with the error code {0}."
    ));
}

#[test]
fn every_documented_code_by_number() {
    for &(code, name, id) in DOC_TABLE {
        for form in [
            format!("{code:#010x}"),
            format!("{code:08X}"),
            code.to_string(),
            (code as i32).to_string(),
        ] {
            let (ok, out, err) = winmdm(&["explain", &form]);
            assert!(ok, "{form}: {err}");
            let blocks = blocks(&out);
            assert_eq!(blocks.len(), 1, "{form}");
            assert!(
                blocks[0].starts_with(&format!("{code:#010x}  {name}")),
                "{form}: {out}"
            );
            assert!(
                blocks[0].contains(&format!("message id  {id}\n")),
                "{form}: {out}"
            );
        }
    }
}

#[test]
fn every_documented_code_by_name() {
    for &(code, name, _) in DOC_TABLE {
        for form in [name.to_owned(), name.to_ascii_lowercase()] {
            let (ok, out, err) = winmdm(&["explain", &form]);
            assert!(ok, "{form}: {err}");
            let want = format!("{code:#010x}  {name}");
            assert!(
                blocks(&out).iter().any(|b| b.starts_with(&want)),
                "{form} does not list {code:#010x}: {out}"
            );
        }
    }
}

#[test]
fn shared_name_lists_every_code() {
    let (ok, out, _) = winmdm(&["explain", "MENROLL_E_DEVICE_CONFIGMGRSERVER_ERROR"]);
    assert!(ok);
    let b = blocks(&out);
    assert_eq!(b.len(), 2, "{out}");
    assert!(b[0].starts_with("0x80180005"));
    assert!(b[1].starts_with("0x80180006"));
    assert!(b[1].contains("correct name MENROLL_E_DEVICE_INTERNALSERVICE_ERROR"));
}

#[test]
fn corrected_spellings_are_aliases() {
    for (alias, code) in [
        ("MENROLL_E_DEVICE_CERTIFICATEREQUEST_ERROR", "0x80180004"),
        ("MENROLL_E_DEVICE_INTERNALSERVICE_ERROR", "0x80180006"),
        ("DSREG_E_DEVICE_REGISTRATION_QUOTA_EXCEEDED", "0x801c000e"),
    ] {
        let (ok, out, _) = winmdm(&["explain", alias]);
        assert!(ok, "{alias}");
        assert_eq!(blocks(&out).len(), 1, "{alias}: {out}");
        assert!(out.starts_with(code), "{alias}: {out}");
    }
}

#[test]
fn custom_server_error_and_terms_of_use() {
    let (ok, out, _) = winmdm(&["explain", "0x80180032"]);
    assert!(ok);
    assert!(out.starts_with("0x80180032  MENROLL_E_CUSTOMSERVERERROR"));
    assert!(out.contains("errortype   CustomServerError"));
    assert!(out.contains("[MS-MDE2]"));

    let (ok, out, _) = winmdm(&["explain", "rejectedTermsOfUse"]);
    assert!(ok);
    assert!(out.starts_with("\"rejectedTermsOfUse\"  rejectedTermsOfUse"));
    assert!(out.contains("idErrorRejectedTermsOfUse"));
}

#[test]
fn http_status_codes() {
    let (ok, out, _) = winmdm(&["explain", "0x801900c8"]);
    assert!(ok);
    assert!(out.starts_with("0x801900c8  HTTP 200 OK"), "{out}");
    let (ok, out, _) = winmdm(&["explain", "-2145844801"]); // 0x801901bf = HTTP 447
    assert!(ok);
    assert!(out.contains("HTTP 447"), "{out}");
}

#[test]
fn unknown_inputs_fail_clearly() {
    for input in ["0x80180011", "0x00000000", "NOT_A_CODE", "", "0x1z"] {
        let (ok, out, err) = winmdm(&["explain", input]);
        assert!(!ok, "{input:?} succeeded: {out}");
        assert!(out.is_empty());
        assert!(err.starts_with("winmdm explain: "), "{input:?}: {err}");
    }
    let (_, _, err) = winmdm(&["explain", "0x80180011"]);
    assert!(err.contains("0x80180011 is not a documented Windows enrollment error"));
}
