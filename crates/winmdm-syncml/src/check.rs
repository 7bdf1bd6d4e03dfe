//! Conformance checks beyond well-formedness (what `winmdm syncml check` reports).

use std::collections::HashSet;

use crate::decode::{
    Decoded, Diagnostic, Fragment, Limits, decode_fragment, repair_documentation_artifacts,
};
use crate::model::{Command, Item, SyncBody, SyncHdr, SyncMl};
use crate::{DecodeError, Severity, Text};

/// Checks a whole message: header fields (MS-MDM §2.2.2–2.2.3), `CmdID` rules (present,
/// unique, not `0`), `Status`/`Results` references, alert codes, item shapes and `LocURI`s.
pub fn check(message: &SyncMl) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    check_header(&message.header, &mut out);
    check_body(&message.body, &mut out);
    out
}

fn check_header(h: &SyncHdr, out: &mut Vec<Diagnostic>) {
    if h.ver_dtd != "1.2" {
        out.push(Diagnostic::error(
            "verdtd",
            format!("VerDTD is {:?}; MUST be \"1.2\"", h.ver_dtd),
        ));
    }
    if h.ver_proto != "DM/1.2" {
        out.push(Diagnostic::error(
            "verproto",
            format!("VerProto is {:?}; MUST be \"DM/1.2\"", h.ver_proto),
        ));
    }
    if h.session_id.is_empty() {
        out.push(Diagnostic::error(
            "missing-sessionid",
            "SyncHdr has no SessionID",
        ));
    }
    if h.msg_id.is_empty() {
        out.push(Diagnostic::error("missing-msgid", "SyncHdr has no MsgID"));
    } else if h.msg_id.parse::<u32>().map_or(true, |n| n == 0) {
        out.push(Diagnostic::warning(
            "msgid-not-positive",
            format!("MsgID {:?} is not a positive integer", h.msg_id),
        ));
    }
    for (name, loc) in [("Target", &h.target), ("Source", &h.source)] {
        if loc.as_ref().is_none_or(|l| l.loc_uri.is_empty()) {
            out.push(Diagnostic::error(
                "missing-address",
                format!("SyncHdr has no {name}/LocURI"),
            ));
        }
    }
}

/// Checks a body (also usable on documentation fragments).
pub fn check_body(body: &SyncBody, out: &mut Vec<Diagnostic>) {
    let mut ids = HashSet::new();
    let mut first_status = true;
    check_commands(&body.commands, &mut ids, &mut first_status, out);
}

/// Checks one command (documentation fragments).
pub fn check_command(command: &Command, out: &mut Vec<Diagnostic>) {
    let mut ids = HashSet::new();
    let mut first_status = false;
    check_commands(
        std::slice::from_ref(command),
        &mut ids,
        &mut first_status,
        out,
    );
}

fn check_commands(
    commands: &[Command],
    ids: &mut HashSet<Text>,
    first_status: &mut bool,
    out: &mut Vec<Diagnostic>,
) {
    for c in commands {
        let name = c.name();
        if matches!(c, Command::Unknown(_)) {
            continue;
        }
        match c.cmd_id() {
            None => out.push(Diagnostic::error(
                "missing-cmdid",
                format!("<{name}> has no CmdID (a client answers 400)"),
            )),
            Some(id) if id.as_str().is_empty() => out.push(Diagnostic::error(
                "missing-cmdid",
                format!("<{name}> has an empty CmdID"),
            )),
            Some(id) if id.is_zero() => out.push(Diagnostic::error(
                "zero-cmdid",
                format!("<{name}> has CmdID \"0\""),
            )),
            Some(id) => {
                if !ids.insert(id.0.clone()) {
                    out.push(Diagnostic::error(
                        "duplicate-cmdid",
                        format!("CmdID {} is used twice", id),
                    ));
                }
            }
        }
        match c {
            Command::Status(s) => {
                if s.cmd_ref.as_deref().is_none_or(str::is_empty) {
                    out.push(Diagnostic::error(
                        "status-without-cmdref",
                        "Status without CmdRef",
                    ));
                }
                if s.msg_ref.is_none() {
                    out.push(Diagnostic::error(
                        "status-without-msgref",
                        "Status without MsgRef",
                    ));
                }
                if s.cmd.is_none() {
                    out.push(Diagnostic::error(
                        "status-without-cmd",
                        "Status without Cmd",
                    ));
                }
                if s.code().is_none() {
                    out.push(Diagnostic::error(
                        "status-code",
                        format!("Status Data {:?} is not a status code", s.data),
                    ));
                }
                if *first_status && s.cmd_ref.as_deref() != Some("0") {
                    out.push(Diagnostic::warning(
                        "header-status-first",
                        "the first Status is not the SyncHdr's (CmdRef 0)",
                    ));
                }
                *first_status = false;
            }
            Command::Results(r) if r.cmd_ref.as_deref().is_none_or(str::is_empty) => {
                out.push(Diagnostic::error(
                    "results-without-cmdref",
                    "Results without CmdRef",
                ));
            }
            Command::Alert(a) if a.code().is_none() => {
                out.push(Diagnostic::error(
                    "alert-code",
                    format!("Alert Data {:?} is not an alert code", a.data),
                ));
            }
            Command::Add(ic)
            | Command::Delete(ic)
            | Command::Get(ic)
            | Command::Replace(ic)
            | Command::Copy(ic)
                if ic.items.is_empty() =>
            {
                out.push(Diagnostic::error(
                    "no-items",
                    format!("<{name}> has no Item"),
                ));
            }
            Command::Exec(ic) if ic.items.len() != 1 => {
                out.push(Diagnostic::error(
                    "exec-items",
                    format!(
                        "<Exec> has {} items; exactly one is allowed",
                        ic.items.len()
                    ),
                ));
            }
            _ => {}
        }
        for item in c.items() {
            check_item(item, out);
        }
        check_commands(c.children(), ids, first_status, out);
    }
}

fn check_item(item: &Item, out: &mut Vec<Diagnostic>) {
    for loc in [&item.target, &item.source].into_iter().flatten() {
        let uri = &loc.loc_uri;
        if uri.starts_with('/') {
            out.push(Diagnostic::error(
                "locuri-absolute",
                format!("LocURI {uri:?} starts with '/'"),
            ));
        }
        if uri.contains(char::is_whitespace) {
            out.push(Diagnostic::warning(
                "locuri-whitespace",
                format!("LocURI {uri:?} contains white space"),
            ));
        }
    }
}

/// Decodes any SyncML document (repairing documentation artefacts if it is otherwise not
/// well-formed, with a diagnostic saying so) and checks it. Decode diagnostics come first.
pub fn check_document(input: &[u8], limits: &Limits) -> Result<Decoded<Fragment>, DecodeError> {
    let mut decoded = match decode_fragment(input, limits) {
        Ok(d) => d,
        Err(err @ DecodeError::Xml { .. }) => {
            let text = std::str::from_utf8(input).map_err(|_| DecodeError::NotUtf8)?;
            let Some((repaired, mut repairs)) = repair_documentation_artifacts(text) else {
                return Err(err);
            };
            let mut d = decode_fragment(repaired.as_bytes(), limits)?;
            repairs.append(&mut d.diagnostics);
            d.diagnostics = repairs;
            d
        }
        Err(e) => return Err(e),
    };
    let mut more = Vec::new();
    match &decoded.value {
        Fragment::Message(m) => more = check(m),
        Fragment::Header(h) => check_header(h, &mut more),
        Fragment::Body(b) => check_body(b, &mut more),
        Fragment::Command(c) => check_command(c, &mut more),
    }
    decoded.diagnostics.extend(more);
    Ok(decoded)
}

/// Whether any diagnostic is an error.
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(|d| d.severity == Severity::Error)
}
