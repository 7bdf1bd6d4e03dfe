//! Building a server message within `MaxMsgSize`: statuses first, then alerts, then the
//! outgoing object's next chunk or queued commands in order.

use super::objects::{self, Outgoing};
use super::{DropReason, Dropped, QueuedCommand, Sent, SessionState};
use crate::codes::AlertCode;
use crate::model::{Command, Location, MSFT_NS, Meta, Status, SyncBody, SyncHdr, SyncMl};
use crate::scope::{self, Decision};
use crate::text::Text;

/// What the packer produced.
pub(super) struct Packed {
    pub message: SyncMl,
    pub dropped: Vec<Dropped>,
    /// Nothing more will be exchanged: the message is final, carries only statuses, and
    /// no object is in transit.
    pub complete: bool,
}

/// The header of the next server message answering `message`.
pub(super) fn reply_header(st: &mut SessionState, message: &SyncMl) -> SyncHdr {
    // A state's first reply continues from the client's MsgID: a challenged first message
    // leaves no state on a stateless server, and the reply to the retry must not repeat
    // the challenge's MsgID (client MsgIDs grow within a session, so these do too).
    let id = if st.last.is_none() {
        message
            .header
            .msg_id
            .trim()
            .parse::<u32>()
            .map_or(st.next_msg_id, |client| client.max(st.next_msg_id))
    } else {
        st.next_msg_id
    };
    st.next_msg_id = id.saturating_add(1);
    let server = st
        .server_uri
        .clone()
        .or_else(|| st.config.server_uri.as_deref().map(Text::from))
        .or_else(|| message.header.target.as_ref().map(|t| t.loc_uri.clone()))
        .unwrap_or_default();
    SyncHdr {
        ver_dtd: Text::from("1.2"),
        ver_proto: Text::from("DM/1.2"),
        session_id: Text::from(message.header.session_id.trim()),
        msg_id: Text::from_u32(id),
        target: message
            .header
            .source
            .as_ref()
            .map(|s| Location::new(s.loc_uri.trim())),
        source: Some(Location::new(server)),
        // The largest message the server reads (OMA DM RepPro §6.1.6): the device must
        // not send more, and Windows 11 ends the session (alert 1223) rather than send a
        // result that does not fit.
        meta: Some(Box::new(Meta {
            max_msg_size: Some(Text::from(st.config.max_msg_size.to_string().as_str())),
            ..Meta::default()
        })),
        // No RespURI here: only the reply to an authenticated message carries the
        // session's binding (`Exchange::reply`); a challenge or refusal must not hand it
        // to whoever sent the message.
        ..SyncHdr::default()
    }
}

/// Whether a queued command may go out now (scope rules).
pub(super) fn decision(st: &SessionState, q: &QueuedCommand) -> Decision {
    scope::may_send(
        scope::scope_of(&q.command),
        st.config.enrollment,
        &st.user,
        q.for_user.as_deref(),
    )
}

/// Records `command` (and its children) as sent in message `msg_id`.
fn record(st: &mut SessionState, msg_id: u32, tag: &str, command: &Command, path: &mut Vec<u32>) {
    if let Some(id) = command.cmd_id().and_then(|c| c.as_str().parse().ok()) {
        st.sent.push(Sent {
            msg_id,
            cmd_id: id,
            tag: tag.to_owned(),
            path: path.clone(),
            chunk: None,
        });
    }
    for (i, child) in command.children().iter().enumerate() {
        path.push(u32::try_from(i).unwrap_or(u32::MAX));
        record(st, msg_id, tag, child, path);
        path.pop();
    }
}

struct Budget {
    max: usize,
    used: usize,
    next_id: u32,
    commands: Vec<Command>,
}

impl Budget {
    fn room(&self) -> usize {
        self.max.saturating_sub(self.used)
    }

    /// Numbers `command` (and its children) from the next free `CmdID`; adds it if it
    /// fits. Returns the command back when it does not fit.
    fn try_push(&mut self, mut command: Command) -> Result<(), Box<(Command, usize)>> {
        let after = number(&mut command, self.next_id);
        let len = crate::encode_command(&command).len();
        if len > self.room() {
            return Err(Box::new((command, len)));
        }
        self.used += len;
        self.next_id = after;
        self.commands.push(command);
        Ok(())
    }

    fn force_push(&mut self, mut command: Command) {
        self.next_id = number(&mut command, self.next_id);
        self.used += crate::encode_command(&command).len();
        self.commands.push(command);
    }
}

fn number(command: &mut Command, first: u32) -> u32 {
    crate::status::assign_cmd_ids(std::slice::from_mut(command), first)
}

/// Packs the reply to the current client message.
pub(super) fn pack(
    st: &mut SessionState,
    header: SyncHdr,
    header_status: Status,
    statuses: Vec<Status>,
) -> Packed {
    let msg_id: u32 = header.msg_id.parse().unwrap_or(0);
    let max = usize::try_from(st.max_msg_size()).unwrap_or(usize::MAX);
    let mut shell = SyncMl {
        header,
        body: SyncBody {
            commands: Vec::new(),
            is_final: true,
        },
    };
    // The body may need `xmlns:msft` (statuses never do; a queued command might).
    let base = crate::encode(&shell).len() + r#" xmlns:msft="""#.len() + MSFT_NS.len();
    let mut b = Budget {
        max,
        used: base,
        next_id: 1,
        commands: Vec::new(),
    };
    let mut dropped = Vec::new();
    // The header's status always goes first, whatever the size.
    let mut header_status = header_status;
    if base + crate::encode_command(&Command::Status(header_status.clone())).len() > max {
        // `TargetRef`/`SourceRef` are optional: drop the echo of over-long client URIs.
        header_status.target_ref.clear();
        header_status.source_ref.clear();
    }
    b.force_push(Command::Status(header_status));
    // The room a later message of this session has for commands: after its header
    // status and the status for the client's alert 1222 asking for it (with the widest
    // numbers), which every such message carries.
    let next_request_status = Status {
        cmd_id: Some(u32::MAX.into()),
        msg_ref: Some(Text::from("4294967295")),
        cmd_ref: Some(Text::from("4294967295")),
        cmd: Some(Text::from("Alert")),
        data: Text::from("200"),
        ..Status::default()
    };
    let fresh_room = max
        .saturating_sub(b.used)
        .saturating_sub(crate::encode_command(&Command::Status(next_request_status)).len());

    let mut more_follows = false;
    let mut owed = std::mem::take(&mut st.pending_statuses);
    owed.extend(statuses);
    while let Some(s) = owed.pop_front() {
        if let Err(back) = b.try_push(Command::Status(s)) {
            if let (Command::Status(s), _) = *back {
                owed.push_front(s);
            }
            break;
        }
    }
    if !owed.is_empty() {
        more_follows = true;
    }
    st.pending_statuses = owed;

    if !more_follows {
        let alerts = std::mem::take(&mut st.pending_alerts);
        for a in alerts {
            if let Err(back) = b.try_push(a) {
                st.pending_alerts.push(back.0);
                more_follows = true;
            }
        }
    }

    if !more_follows {
        let waiting_on_client = st.incoming.is_some()
            || (st.client_package_open && st.outgoing.as_ref().is_none_or(|o| !o.acknowledged));
        if waiting_on_client {
            // The client's package continues: ask for its next message. This message is
            // itself complete (Final): only a sender whose own package continues leaves
            // Final out.
            if b.try_push(Command::alert(0u32, AlertCode::NEXT_MESSAGE))
                .is_err()
            {
                more_follows = true;
            }
        } else {
            if st.outgoing.as_ref().is_some_and(|o| !o.acknowledged) {
                // The client closed its package without accepting the last chunk: the
                // object is abandoned (its command stays unanswered).
                st.outgoing = None;
            }
            let mut stop = false;
            if let Some(mut o) = st.outgoing.take() {
                // Only statuses so far: the rest of the message is the chunk's.
                let fresh = b.commands.iter().all(|c| matches!(c, Command::Status(_)));
                match o.next_chunk(b.next_id, b.room(), fresh) {
                    Some((cmd, last)) => {
                        let id = b.next_id;
                        b.force_push(cmd);
                        st.sent.push(Sent {
                            msg_id,
                            cmd_id: id,
                            tag: o.tag.clone(),
                            path: Vec::new(),
                            chunk: Some(last),
                        });
                        if !last {
                            st.outgoing = Some(o);
                            more_follows = true;
                            stop = true;
                        }
                    }
                    None if fresh => {
                        // Not even one byte of data fits beside the command's markup:
                        // the object can never be sent.
                        st.awaiting.retain(|t| *t != o.tag);
                        if o.offset == 0 {
                            dropped.push(Dropped {
                                tag: o.tag,
                                reason: DropReason::TooLargeForMessage {
                                    size: o.data.len() as u64,
                                    max_msg_size: b.max as u64,
                                },
                            });
                        }
                    }
                    None => {
                        // Statuses took the room: continue in the next message.
                        st.outgoing = Some(o);
                        more_follows = true;
                        stop = true;
                    }
                }
            }
            if !stop && st.outgoing.is_none() {
                more_follows |= pack_queue(st, &mut b, msg_id, fresh_room, &mut dropped);
            }
        }
    }

    shell.body.commands = b.commands;
    shell.body.is_final = !more_follows;
    let only_statuses = shell
        .body
        .commands
        .iter()
        .all(|c| matches!(c, Command::Status(_)));
    let complete = !more_follows
        && only_statuses
        && st.outgoing.is_none()
        && st.incoming.is_none()
        && st.pending_statuses.is_empty();
    Packed {
        message: shell,
        dropped,
        complete,
    }
}

/// Moves queued commands that may be sent and fit into the message, in queue order.
/// Returns whether the message must leave the package open (a chunked object started).
fn pack_queue(
    st: &mut SessionState,
    b: &mut Budget,
    msg_id: u32,
    fresh_room: usize,
    dropped: &mut Vec<Dropped>,
) -> bool {
    let mut i = 0;
    while i < st.queue.len() {
        if let Decision::Hold(_) = decision(st, &st.queue[i]) {
            i += 1;
            continue;
        }
        let Some(q) = st.queue.remove(i) else { break };
        if let (Some(size), Some(limit)) =
            (objects::object_size(&q.command), st.client_max_obj_size)
            && size > limit
        {
            dropped.push(Dropped {
                tag: q.tag,
                reason: DropReason::ObjectTooLarge {
                    size,
                    max_obj_size: limit,
                },
            });
            continue;
        }
        match b.try_push(q.command) {
            Ok(()) => {
                if let Some(cmd) = b.commands.last().cloned() {
                    record(st, msg_id, &q.tag, &cmd, &mut Vec::new());
                }
                st.awaiting.push(q.tag);
            }
            Err(back) if back.1 <= fresh_room => {
                let (command, _) = *back;
                // It fits in the next message: keep the order and stop here, and leave
                // Final out so that the client asks for that message (a Final message of
                // statuses alone would end the session with the command unsent).
                st.queue.insert(i, QueuedCommand { command, ..q });
                return true;
            }
            Err(back) => {
                let (command, len) = *back;
                if !objects::chunkable(&command) {
                    dropped.push(Dropped {
                        tag: q.tag,
                        reason: DropReason::TooLargeForMessage {
                            size: len as u64,
                            max_msg_size: b.max as u64,
                        },
                    });
                    continue;
                }
                let Some(mut o) = Outgoing::new(q.tag.clone(), command) else {
                    continue;
                };
                st.awaiting.push(q.tag);
                let fresh = b.commands.iter().all(|c| matches!(c, Command::Status(_)));
                if let Some((cmd, last)) = o.next_chunk(b.next_id, b.room(), fresh) {
                    let id = b.next_id;
                    b.force_push(cmd);
                    st.sent.push(Sent {
                        msg_id,
                        cmd_id: id,
                        tag: o.tag.clone(),
                        path: Vec::new(),
                        chunk: Some(last),
                    });
                    if last {
                        continue;
                    }
                }
                st.outgoing = Some(o);
                return true;
            }
        }
    }
    false
}

/// Drops the optional `TargetRef`/`SourceRef` echoes from the header status of `message`
/// when the message would otherwise exceed `max` bytes (an over-long client URI).
pub(super) fn fit_refs(message: &mut SyncMl, max: u64) {
    if crate::encode(message).len() as u64 <= max {
        return;
    }
    if let Some(Command::Status(s)) = message.body.commands.first_mut() {
        s.target_ref.clear();
        s.source_ref.clear();
    }
}
