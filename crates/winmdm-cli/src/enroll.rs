//! `winmdm csr inspect` and `winmdm soap decode`: read enrollment traffic.

use core::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use winmdm_enroll::csr::{self, KeyKind};
use winmdm_enroll::soap::{self, Limits};
use winmdm_enroll::{discovery, fault, issue, token, wstep, xcep};

/// PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`), DER, or bare base64 → DER.
///
/// # Errors
/// When it is none of those.
pub fn csr_der(input: &[u8]) -> Result<Vec<u8>, String> {
    if input.first() == Some(&0x30) {
        return Ok(input.to_vec());
    }
    let text = std::str::from_utf8(input).map_err(|_| "not DER, PEM or base64".to_owned())?;
    let body: String = if text.contains("-----BEGIN") {
        text.lines()
            .skip_while(|l| !l.starts_with("-----BEGIN"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect()
    } else {
        text.to_owned()
    };
    token::tolerant_base64(&body).map_err(|_| "not DER, PEM or base64".to_owned())
}

fn algorithm_name(oid: &str) -> &'static str {
    match oid {
        "1.3.14.3.2.29" => "sha1WithRSA (OIW, as Windows 10 sends)",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        _ => "unknown",
    }
}

fn extension_name(oid: &str) -> &'static str {
    match oid {
        csr::DEVICE_ID_EXTENSION_OID => "Windows DeviceID",
        "2.5.29.37" => "extendedKeyUsage",
        "2.5.29.15" => "keyUsage",
        "2.5.29.17" => "subjectAltName",
        "1.3.6.1.4.1.311.21.7" => "Microsoft certificate template",
        _ => "",
    }
}

/// Renders a CSR; the flag says whether its signature verifies.
///
/// # Errors
/// When the input is not a PKCS#10 request.
pub fn csr_inspect(input: &[u8]) -> Result<(String, bool), String> {
    let der = csr_der(input)?;
    let (c, signature) = csr::inspect(&der).map_err(|e| e.to_string())?;
    let mut out = String::new();
    let _ = writeln!(out, "subject:    {}", c.subject);
    if let Some(cn) = &c.common_name {
        let _ = writeln!(out, "CN:         {cn}");
    }
    let key = match c.key {
        KeyKind::Rsa(bits) => format!("RSA {bits} bits"),
        KeyKind::P256 => "ECDSA P-256".into(),
        KeyKind::P384 => "ECDSA P-384".into(),
        KeyKind::Other => "unsupported".into(),
    };
    let _ = writeln!(out, "key:        {key}");
    let _ = writeln!(
        out,
        "signature:  {} ({}) — {}",
        c.signature_algorithm,
        algorithm_name(&c.signature_algorithm),
        match &signature {
            Ok(()) => "verifies".to_owned(),
            Err(e) => format!("DOES NOT VERIFY: {e}"),
        }
    );
    if let Some(d) = &c.device_id {
        let _ = writeln!(out, "device ID:  {d}");
    }
    for (oid, critical, len) in &c.extensions {
        let _ = writeln!(
            out,
            "extension:  {oid} {}{}({len} bytes)",
            extension_name(oid),
            if *critical { " critical " } else { " " }
        );
    }
    Ok((out, signature.is_ok()))
}

/// Renders an enrollment SOAP message (request, response or fault); tokens redacted.
///
/// # Errors
/// When it is not a SOAP envelope.
pub fn soap_decode(input: &[u8]) -> Result<String, String> {
    let env = soap::envelope(input, &Limits::default()).map_err(|e| e.to_string())?;
    let mut out = String::new();
    let _ = writeln!(out, "SOAP {:?}", env.version);
    if let Some(a) = &env.action {
        let _ = writeln!(out, "action:     {a}");
    }
    if let Some(m) = &env.message_id {
        let _ = writeln!(out, "message ID: {m}");
    }
    if let Some(r) = env.header.child_named("RelatesTo") {
        let _ = writeln!(out, "relates to: {}", r.text);
    }
    match token::from_header(&env.header) {
        Ok(Some(t)) => {
            let _ = writeln!(out, "token:      {t:?}");
        }
        Ok(None) => {}
        Err(e) => {
            let _ = writeln!(out, "token:      unreadable ({e})");
        }
    }
    let name = env.body.name.to_ascii_lowercase();
    match name.as_str() {
        "fault" => {
            let f = fault::parse_fault(input).map_err(|e| e.to_string())?;
            let _ = writeln!(
                out,
                "FAULT {} / {}",
                f.code,
                f.subcode.as_deref().unwrap_or("-")
            );
            let _ = writeln!(out, "reason:     {}", f.reason.as_deref().unwrap_or("-"));
            if let Some(t) = &f.errortype {
                let _ = writeln!(out, "errortype:  {t}");
            }
            if let Some(t) = &f.trace_id {
                let _ = writeln!(out, "trace ID:   {t}");
            }
        }
        "discover" => {
            let d = discovery::parse_discover(input).map_err(|e| e.to_string())?;
            let _ = writeln!(
                out,
                "Discover: email {:?}, version {:?}, device {:?}, OS edition {:?}, policies {:?}",
                d.email_address,
                d.request_version.map(|v| v.to_string()),
                d.device_type,
                d.os_edition,
                d.auth_policies
            );
        }
        "getpolicies" => {
            let _ = xcep::parse_get_policies(input).map_err(|e| e.to_string())?;
            let _ = writeln!(out, "GetPolicies");
        }
        "requestsecuritytoken" => {
            let r = wstep::parse_rst(input).map_err(|e| e.to_string())?;
            let _ = writeln!(
                out,
                "RequestSecurityToken {:?} ({})",
                r.request_type, r.request_value_type
            );
            for (k, v) in r.context.items() {
                let shown = if k.eq_ignore_ascii_case("EnrollmentData") {
                    format!("[{} bytes]", v.len())
                } else {
                    v.to_owned()
                };
                let _ = writeln!(out, "  {k} = {shown}");
            }
            if let Ok(der) = r.csr_der()
                && let Ok((text, _)) = csr_inspect(&der)
            {
                let _ = writeln!(out, "CSR:");
                for l in text.lines() {
                    let _ = writeln!(out, "  {l}");
                }
            }
        }
        "requestsecuritytokenresponsecollection" => match issue::provisioning_doc_of(input) {
            Ok(doc) => {
                let _ = writeln!(out, "provisioning document:\n{}", redact_secrets(&doc));
            }
            Err(e) => {
                let _ = writeln!(out, "no provisioning document: {e}");
            }
        },
        other => {
            let _ = writeln!(out, "body: {{{}}}{other}", env.body.ns);
        }
    }
    Ok(out)
}

/// Hides `AAUTHSECRET` values in a provisioning document.
fn redact_secrets(doc: &str) -> String {
    let mut out = String::with_capacity(doc.len());
    let mut rest = doc;
    while let Some(i) = rest.find("name=\"AAUTHSECRET\" value=\"") {
        let start = i + "name=\"AAUTHSECRET\" value=\"".len();
        out.push_str(&rest[..start]);
        out.push_str("[redacted]");
        rest = &rest[start..];
        rest = rest.find('"').map_or("", |j| &rest[j..]);
    }
    out.push_str(rest);
    out
}

/// Base64 of a DER request, for tests.
pub fn b64(der: &[u8]) -> String {
    STANDARD.encode(der)
}
