//! `winmdm syncml decode` and `winmdm syncml check`.

use std::fmt::Write as _;

use winmdm_syncml::alerts::KnownAlert;
use winmdm_syncml::check::{check_document, has_errors};
use winmdm_syncml::{Command, DecodeError, Diagnostic, Fragment, Item, Limits, Severity, SyncMl};

/// Decodes any SyncML document (message, header, body or command; documentation
/// artefacts repaired with a diagnostic) into readable text.
///
/// # Errors
/// When the document cannot be decoded.
pub fn decode_text(input: &[u8]) -> Result<String, DecodeError> {
    let decoded = check_document(input, &Limits::default())?;
    let mut out = String::new();
    match &decoded.value {
        Fragment::Message(m) => message(&mut out, m),
        Fragment::Header(h) => {
            let m = SyncMl {
                header: h.clone(),
                ..SyncMl::default()
            };
            message(&mut out, &m);
        }
        Fragment::Body(b) => {
            for c in &b.commands {
                command(&mut out, c, 1);
            }
            if b.is_final {
                out.push_str("  Final\n");
            }
        }
        Fragment::Command(c) => command(&mut out, c, 1),
    }
    diagnostics(&mut out, &decoded.diagnostics);
    Ok(out)
}

/// Decodes into JSON: `{"document": <model>, "diagnostics": [...]}`.
///
/// # Errors
/// When the document cannot be decoded.
pub fn decode_json(input: &[u8]) -> Result<String, DecodeError> {
    let decoded = check_document(input, &Limits::default())?;
    let doc = serde_json::json!({
        "document": decoded.value,
        "diagnostics": decoded.diagnostics,
    });
    Ok(serde_json::to_string_pretty(&doc).unwrap_or_default())
}

/// Checks a document; returns the report and whether it has errors.
///
/// # Errors
/// When the document cannot be decoded at all.
pub fn check(input: &[u8]) -> Result<(String, bool), DecodeError> {
    let decoded = check_document(input, &Limits::default())?;
    let mut out = String::new();
    if decoded.diagnostics.is_empty() {
        out.push_str("clean: no conformance findings\n");
    }
    diagnostics(&mut out, &decoded.diagnostics);
    Ok((out, has_errors(&decoded.diagnostics)))
}

fn diagnostics(out: &mut String, diags: &[Diagnostic]) {
    for d in diags {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{level}: {}: {}", d.code, d.message);
    }
}

fn message(out: &mut String, m: &SyncMl) {
    let h = &m.header;
    let loc = |l: &Option<winmdm_syncml::Location>| {
        l.as_ref()
            .map_or_else(String::new, |l| l.loc_uri.to_string())
    };
    let _ = writeln!(
        out,
        "SyncML {} session {} message {}  from {}  to {}{}",
        h.ver_proto,
        h.session_id,
        h.msg_id,
        loc(&h.source),
        loc(&h.target),
        if m.body.is_final { "  [final]" } else { "" }
    );
    if let Some(meta) = &h.meta {
        if let Some(size) = &meta.max_msg_size {
            let _ = writeln!(out, "  MaxMsgSize {size}");
        }
        if let Some(size) = &meta.max_obj_size {
            let _ = writeln!(out, "  MaxObjSize {size}");
        }
    }
    if let Some(cred) = &h.cred {
        let ty = cred
            .meta
            .as_ref()
            .and_then(|m| m.r#type.as_deref())
            .unwrap_or("?");
        let _ = writeln!(out, "  Cred {ty} [redacted]");
    }
    for c in &m.body.commands {
        command(out, c, 1);
    }
}

fn item_line(item: &Item) -> String {
    let uri = item
        .target
        .as_ref()
        .or(item.source.as_ref())
        .map_or("", |l| l.loc_uri.as_str());
    let mut s = uri.to_owned();
    if let Some(f) = item.meta_format() {
        let _ = write!(s, " ({f})");
    }
    if let Some(t) = item.meta_type() {
        let _ = write!(s, " type {t}");
    }
    if let Some(d) = &item.data {
        let _ = write!(s, " = {}", d.value);
    }
    if item.more_data {
        s.push_str(" [more data follows]");
    }
    s
}

fn command(out: &mut String, c: &Command, depth: usize) {
    let pad = "  ".repeat(depth);
    let id = c.cmd_id().map_or_else(|| "-".to_owned(), |i| i.to_string());
    match c {
        Command::Alert(a) => {
            let code = a.code().map_or_else(
                || format!("{:?}", a.data.as_deref().unwrap_or("")),
                |c| {
                    format!("{} {}", c.0, c.name().unwrap_or(""))
                        .trim_end()
                        .to_owned()
                },
            );
            let meaning = match KnownAlert::from_alert(a) {
                KnownAlert::AadUserToken(t) => {
                    format!("AADUserToken [token, {} bytes]", t.expose().len())
                }
                KnownAlert::LoginStatus(s) => format!("LoginStatus {}", s.as_str()),
                other => format!("{other:?}"),
            };
            let _ = writeln!(out, "{pad}{id:>3} Alert {code}: {meaning}");
            if !matches!(KnownAlert::from_alert(a), KnownAlert::AadUserToken(_)) {
                for i in &a.items {
                    let _ = writeln!(out, "{pad}      {}", item_line(i));
                }
            }
        }
        Command::Status(s) => {
            let code = s.code().map_or_else(
                || s.data.to_string(),
                |c| {
                    format!("{} {}", c.0, c.name().unwrap_or(""))
                        .trim_end()
                        .to_owned()
                },
            );
            // Which node it is for (Windows answers per target), and the HRESULT behind
            // a failure.
            let mut refs = String::new();
            for t in &s.target_ref {
                let _ = write!(refs, " target {t}");
            }
            for t in &s.source_ref {
                let _ = write!(refs, " source {t}");
            }
            let original = s
                .original_error
                .as_deref()
                .map(|e| format!(" (original error {e})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{pad}{id:>3} Status for {} {} of message {}{refs}: {code}{original}{}",
                s.cmd.as_deref().unwrap_or("?"),
                s.cmd_ref.as_deref().unwrap_or("?"),
                s.msg_ref.as_deref().unwrap_or("?"),
                if s.chal.is_some() { " [challenge]" } else { "" }
            );
        }
        Command::Results(r) => {
            let _ = writeln!(
                out,
                "{pad}{id:>3} Results for {}",
                r.cmd_ref.as_deref().unwrap_or("?")
            );
            for i in &r.items {
                let _ = writeln!(out, "{pad}      {}", item_line(i));
            }
        }
        Command::Atomic(k) | Command::Sequence(k) => {
            let _ = writeln!(out, "{pad}{id:>3} {}", c.name());
            for child in &k.commands {
                command(out, child, depth + 1);
            }
        }
        Command::Unknown(u) => {
            let _ = writeln!(out, "{pad}  - <{}> (not modelled, kept verbatim)", u.name);
        }
        other => {
            let _ = writeln!(out, "{pad}{id:>3} {}", other.name());
            for i in other.items() {
                let _ = writeln!(out, "{pad}      {}", item_line(i));
            }
        }
    }
}
