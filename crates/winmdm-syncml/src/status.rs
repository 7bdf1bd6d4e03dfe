//! The `Status` a server owes, and the client's `Status`/`Results` as typed outcomes.
//!
//! MS-MDM §2.2.7.x: every command gets exactly one `Status` (unless it asked for
//! `NoResp`), in the order of the commands, and the first `Status` of a reply is for the
//! `SyncHdr` (`CmdRef` 0, `Cmd` SyncHdr). `Status` commands themselves get none.
//!
//! ```
//! use winmdm_syncml::{StatusCode, status};
//! let msg = winmdm_syncml::decode(br#"<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr>
//!   <VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>1</MsgID>
//!   <Target><LocURI>https://mdm.example/</LocURI></Target><Source><LocURI>dev</LocURI></Source>
//!   </SyncHdr><SyncBody><Alert><CmdID>1</CmdID><Data>1201</Data></Alert>
//!   <Replace><CmdID>2</CmdID><Item><Source><LocURI>./DevInfo/Man</LocURI></Source>
//!   <Data>Contoso</Data></Item></Replace><Final/></SyncBody></SyncML>"#)?;
//! let owed = status::statuses_for(&msg, |_| StatusCode::OK);
//! let refs: Vec<_> = owed.iter().map(|s| (s.cmd_ref.as_deref().unwrap(), s.cmd.as_deref().unwrap())).collect();
//! assert_eq!(refs, [("0", "SyncHdr"), ("1", "Alert"), ("2", "Replace")]);
//! # Ok::<(), winmdm_syncml::DecodeError>(())
//! ```

use crate::codes::{CmdId, StatusCode};
use crate::model::{Chal, Command, Item, Meta, Status, SyncMl};
use crate::text::Text;

/// The `Status` for a message's `SyncHdr` (`CmdRef` 0, `Cmd` SyncHdr, `TargetRef` and
/// `SourceRef` echo the header's addresses).
pub fn header_status(message: &SyncMl, code: StatusCode) -> Status {
    Status {
        msg_ref: Some(message.header.msg_id.clone()),
        cmd_ref: Some(Text::from("0")),
        cmd: Some(Text::from("SyncHdr")),
        target_ref: message
            .header
            .target
            .iter()
            .map(|t| t.loc_uri.clone())
            .collect(),
        source_ref: message
            .header
            .source
            .iter()
            .map(|s| s.loc_uri.clone())
            .collect(),
        data: Text::from_u32(u32::from(code.0)),
        ..Status::default()
    }
}

/// The `Status` for `command` of message `msg_id` (one `Status` covering all its items).
pub fn command_status(msg_id: &str, command: &Command, code: StatusCode) -> Status {
    Status {
        msg_ref: Some(Text::from(msg_id)),
        cmd_ref: Some(command.cmd_id().map_or_else(Text::default, |c| c.0.clone())),
        cmd: Some(Text::from(command.name())),
        data: Text::from_u32(u32::from(code.0)),
        ..Status::default()
    }
}

/// A header `Status` carrying an authentication challenge (401 invalid or 407 missing
/// credentials) with the next nonce (base64) for MD5 digest.
pub fn challenge_status(message: &SyncMl, code: StatusCode, next_nonce_b64: &str) -> Status {
    let mut s = header_status(message, code);
    s.chal = Some(Box::new(Chal {
        meta: Meta {
            format: Some(Text::from("b64")),
            r#type: Some(Text::from("syncml:auth-md5")),
            next_nonce: Some(Text::from(next_nonce_b64)),
            ..Meta::default()
        },
    }));
    s
}

/// Every `Status` the recipient of `message` owes, in order: the header first, then each
/// command (containers before their children), skipping `Status` commands and commands
/// sent with `NoResp`. `decide` chooses each command's code. `CmdID`s are left unset:
/// the caller allocates them.
pub fn statuses_for(
    message: &SyncMl,
    mut decide: impl FnMut(&Command) -> StatusCode,
) -> Vec<Status> {
    let mut out = vec![header_status(message, StatusCode::OK)];
    fn walk(
        msg_id: &str,
        commands: &[Command],
        decide: &mut dyn FnMut(&Command) -> StatusCode,
        out: &mut Vec<Status>,
    ) {
        for c in commands {
            if matches!(c, Command::Status(_)) || c.no_resp() {
                continue;
            }
            out.push(command_status(msg_id, c, decide(c)));
            walk(msg_id, c.children(), decide, out);
        }
    }
    walk(
        &message.header.msg_id,
        &message.body.commands,
        &mut decide,
        &mut out,
    );
    out
}

/// Numbers the commands' `CmdID`s from `first`, in order (containers before children);
/// returns the next free ID.
pub fn assign_cmd_ids(commands: &mut [Command], first: u32) -> u32 {
    let mut next = first;
    for c in commands {
        c.set_cmd_id(CmdId::from(next));
        next += 1;
        if let Command::Atomic(k) | Command::Sequence(k) = c {
            next = assign_cmd_ids(&mut k.commands, next);
        }
    }
    next
}

/// A client's `Status`, typed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientStatus {
    /// `MsgRef`: the server message the command was in (absent means "1").
    pub msg_ref: Text,
    /// `CmdRef`: the server command.
    pub cmd_ref: Text,
    /// `Cmd`: the command's name.
    pub cmd: Option<Text>,
    /// The status code (`None` if `Data` was not a number).
    pub code: Option<StatusCode>,
    /// `TargetRef`s (per-item statuses).
    pub target_ref: Vec<Text>,
    /// `SourceRef`s.
    pub source_ref: Vec<Text>,
    /// `msft:originalerror`: on the status's own `Data` (as Windows sends it) or on an
    /// item's, when the client gave one.
    pub original_error: Option<Text>,
}

/// A client's `Results`, typed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientResults {
    /// `MsgRef` (absent means "1").
    pub msg_ref: Text,
    /// `CmdRef`: the `Get` answered.
    pub cmd_ref: Text,
    /// The values read, one per item.
    pub values: Vec<ResultValue>,
}

/// One node value from `Results`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResultValue {
    /// The node (`Source/LocURI`).
    pub uri: Text,
    /// `Meta/Format`.
    pub format: Option<Text>,
    /// `Meta/Type`.
    pub r#type: Option<Text>,
    /// The value.
    pub data: Text,
    /// `MoreData`: this is one chunk of a large object.
    pub more_data: bool,
}

/// A client's answer to a server command.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Response {
    /// A `Status`.
    Status(ClientStatus),
    /// A `Results`.
    Results(ClientResults),
}

fn item_value(i: &Item, results_meta: Option<&Meta>) -> ResultValue {
    ResultValue {
        uri: i
            .source
            .as_ref()
            .or(i.target.as_ref())
            .map(|l| l.loc_uri.clone())
            .unwrap_or_default(),
        format: i
            .meta_format()
            .or_else(|| results_meta.and_then(|m| m.format.as_deref()))
            .map(Text::from),
        r#type: i
            .meta_type()
            .or_else(|| results_meta.and_then(|m| m.r#type.as_deref()))
            .map(Text::from),
        data: Text::from(i.data_str()),
        more_data: i.more_data,
    }
}

/// The `Status` and `Results` in `message`, typed, in document order (including those
/// nested in `Atomic`/`Sequence`).
pub fn responses(message: &SyncMl) -> Vec<Response> {
    fn walk(commands: &[Command], out: &mut Vec<Response>) {
        for c in commands {
            match c {
                Command::Status(s) => out.push(Response::Status(ClientStatus {
                    msg_ref: s.msg_ref.clone().unwrap_or_else(|| Text::from("1")),
                    cmd_ref: s.cmd_ref.clone().unwrap_or_default(),
                    cmd: s.cmd.clone(),
                    code: s.code(),
                    target_ref: s.target_ref.clone(),
                    source_ref: s.source_ref.clone(),
                    original_error: s.original_error.clone().or_else(|| {
                        s.items
                            .iter()
                            .find_map(|i| i.data.as_ref().and_then(|d| d.original_error.clone()))
                    }),
                })),
                Command::Results(r) => out.push(Response::Results(ClientResults {
                    msg_ref: r.msg_ref.clone().unwrap_or_else(|| Text::from("1")),
                    cmd_ref: r.cmd_ref.clone().unwrap_or_default(),
                    values: r
                        .items
                        .iter()
                        .map(|i| item_value(i, r.meta.as_deref()))
                        .collect(),
                })),
                other => walk(other.children(), out),
            }
        }
    }
    let mut out = Vec::new();
    walk(&message.body.commands, &mut out);
    out
}
