//! Large objects (OMA DM Protocol 1.2 §7; MS-MDM §2.2.5.3): chunks in both directions.
//!
//! Outgoing: a single-item `Add`/`Replace` too large for one message is sent in chunks,
//! one per message; every chunk but the last carries `MoreData`, the first carries
//! `Meta/Size` (the byte length of the whole value); the client answers 213 for each
//! buffered chunk. Incoming: the same, mirrored; chunks are answered 213 and the client's
//! package is continued with alert 1222; an object whose next chunk does not come is
//! discarded and alert 1225 sent; a total that differs from `Size` is answered 424.

use serde::{Deserialize, Serialize};

use super::{Event, Exchange};
use crate::codes::{AlertCode, StatusCode};
use crate::model::{Command, Data, Item, ItemCommand, Meta, Results};
use crate::status::{ClientResults, Response, ResultValue};
use crate::text::Text;

/// Why an incoming chunked object was discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DiscardReason {
    /// The client's next message did not continue it (answered with alert 1225).
    Interrupted,
    /// The chunks added up to another size than the declared `Size` (answered 424).
    SizeMismatch {
        /// `Meta/Size` of the first chunk.
        declared: u64,
        /// The bytes received.
        received: u64,
    },
    /// The declared size exceeds the server's limit (answered 416).
    TooLarge {
        /// `Meta/Size` of the first chunk.
        declared: u64,
        /// [`super::SessionConfig::max_object_size`].
        limit: u64,
    },
    /// The first chunk carried no `Meta/Size` (answered 411).
    SizeMissing,
}

/// An object being sent in chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Outgoing {
    pub tag: String,
    /// The command with its single item's data removed.
    pub template: Command,
    /// The whole value.
    pub data: String,
    /// Bytes of `data` already sent.
    pub offset: usize,
    /// The client accepted the last chunk (213) or none was sent yet: the next may go.
    pub acknowledged: bool,
}

/// An object being received in chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Incoming {
    pub uri: Text,
    pub declared: u64,
    pub data: String,
    pub format: Option<Text>,
    pub r#type: Option<Text>,
}

/// What became of one incoming item.
enum Chunk {
    /// A whole value (not chunked, or the last chunk completing an object).
    Complete(ResultValue),
    /// Buffered: answer 213.
    Buffered,
    /// Refused with this status.
    Refused(StatusCode),
}

fn item_uri(item: &Item) -> Text {
    item.source
        .as_ref()
        .or(item.target.as_ref())
        .map(|l| Text::from(l.loc_uri.trim()))
        .unwrap_or_default()
}

fn value_of(item: &Item, cmd_meta: Option<&Meta>) -> ResultValue {
    ResultValue {
        uri: item_uri(item),
        format: item
            .meta_format()
            .or_else(|| cmd_meta.and_then(|m| m.format.as_deref()))
            .map(Text::from),
        r#type: item
            .meta_type()
            .or_else(|| cmd_meta.and_then(|m| m.r#type.as_deref()))
            .map(Text::from),
        data: Text::from(item.data_str()),
        more_data: false,
    }
}

/// Whether `command` can be sent in chunks: a single-item `Add` or `Replace` with data.
pub(super) fn chunkable(command: &Command) -> bool {
    matches!(command, Command::Add(c) | Command::Replace(c)
        if c.items.len() == 1 && c.items[0].data.is_some())
}

/// The size of the object `command` carries (its single item's data), if it carries one.
pub(super) fn object_size(command: &Command) -> Option<u64> {
    match command {
        Command::Add(c) | Command::Replace(c) if c.items.len() == 1 => {
            c.items[0].data.as_ref().map(|d| d.value.len() as u64)
        }
        _ => None,
    }
}

impl Outgoing {
    /// Splits `command` (which must be [`chunkable`]).
    pub(super) fn new(tag: String, mut command: Command) -> Option<Self> {
        let item = match &mut command {
            Command::Add(c) | Command::Replace(c) => c.items.first_mut()?,
            _ => return None,
        };
        let data = item.data.take()?.value.to_string();
        Some(Self {
            tag,
            template: command,
            data,
            offset: 0,
            acknowledged: true,
        })
    }

    /// The next chunk as a command with `cmd_id`, taking at most `room` encoded bytes;
    /// `None` if not even a useful chunk fits. The flag says whether it is the last.
    /// `fresh`: the message carries nothing else yet, so any progress is worth a message;
    /// otherwise chunks smaller than 64 bytes (unless the last) wait for the next one.
    pub(super) fn next_chunk(
        &mut self,
        cmd_id: u32,
        room: usize,
        fresh: bool,
    ) -> Option<(Command, bool)> {
        let min_chunk: usize = if fresh { 1 } else { 64 };
        let mut cmd = self.template.clone();
        cmd.set_cmd_id(cmd_id.into());
        let first = self.offset == 0;
        let total = self.data.len();
        let item = match &mut cmd {
            Command::Add(ItemCommand { items, .. })
            | Command::Replace(ItemCommand { items, .. }) => items.first_mut()?,
            _ => return None,
        };
        if first {
            let meta = item.meta.get_or_insert_with(Box::default);
            meta.size = Some(Text::from(total.to_string().as_str()));
        }
        item.data = Some(Data::text(""));
        item.more_data = true;
        let overhead = crate::encode_command(&cmd).len();
        let avail = room.checked_sub(overhead)?;
        let rest = &self.data[self.offset..];
        let mut take = 0;
        let mut used = 0;
        for (i, ch) in rest.char_indices() {
            let n = crate::encode::escaped_char_len(ch);
            if used + n > avail {
                break;
            }
            used += n;
            take = i + ch.len_utf8();
        }
        let last = take == rest.len();
        if take == 0 && !rest.is_empty() || take < min_chunk && !last {
            return None;
        }
        let item = match &mut cmd {
            Command::Add(ItemCommand { items, .. })
            | Command::Replace(ItemCommand { items, .. }) => items.first_mut()?,
            _ => return None,
        };
        item.data = Some(Data::text(&rest[..take]));
        item.more_data = !last;
        self.offset += take;
        self.acknowledged = false;
        Some((cmd, last))
    }
}

impl Exchange<'_> {
    /// Before processing a message: an incoming object whose next chunk is not in it was
    /// interrupted — discard it and tell the client with alert 1225.
    pub(super) fn check_interrupted_incoming(&mut self) {
        let Some(inc) = &self.work.incoming else {
            return;
        };
        let continued = self.message.body.commands.iter().any(|c| {
            matches!(
                c,
                Command::Results(_) | Command::Replace(_) | Command::Add(_)
            ) && c.items().iter().any(|i| item_uri(i) == inc.uri)
        });
        if !continued {
            self.discard_incoming(super::DiscardReason::Interrupted);
        }
    }

    fn discard_incoming(&mut self, reason: DiscardReason) {
        let Some(inc) = self.work.incoming.take() else {
            return;
        };
        if reason == DiscardReason::Interrupted {
            let mut item = Item::target(inc.uri.clone());
            item.source = item.target.clone();
            self.work
                .pending_alerts
                .push(Command::Alert(crate::model::Alert {
                    cmd_id: None,
                    data: Some(Text::from_u32(u32::from(AlertCode::NO_END_OF_DATA.0))),
                    items: vec![item],
                    ..crate::model::Alert::default()
                }));
        }
        self.events.push_back(Event::IncomingObjectDiscarded {
            uri: inc.uri.to_string(),
            reason,
        });
    }

    /// One incoming item: whole, or a chunk of an object.
    fn take_item(&mut self, item: &Item, cmd_meta: Option<&Meta>) -> Chunk {
        let uri = item_uri(item);
        let piece = item.data_str();
        if let Some(mut inc) = self.work.incoming.take() {
            if inc.uri == uri {
                inc.data.push_str(piece);
                let received = inc.data.len() as u64;
                if received > inc.declared || (!item.more_data && received != inc.declared) {
                    let declared = inc.declared;
                    self.work.incoming = Some(inc);
                    self.discard_incoming(DiscardReason::SizeMismatch { declared, received });
                    return Chunk::Refused(StatusCode::SIZE_MISMATCH);
                }
                if item.more_data {
                    self.work.incoming = Some(inc);
                    return Chunk::Buffered;
                }
                return Chunk::Complete(ResultValue {
                    uri: inc.uri,
                    format: inc.format,
                    r#type: inc.r#type,
                    data: Text::from(inc.data.as_str()),
                    more_data: false,
                });
            }
            // Another object started before this one ended.
            self.work.incoming = Some(inc);
            self.discard_incoming(DiscardReason::Interrupted);
        }
        if !item.more_data {
            return Chunk::Complete(value_of(item, cmd_meta));
        }
        let declared = item
            .meta
            .as_deref()
            .and_then(Meta::size)
            .or_else(|| cmd_meta.and_then(Meta::size));
        let Some(declared) = declared else {
            self.events.push_back(Event::IncomingObjectDiscarded {
                uri: uri.to_string(),
                reason: DiscardReason::SizeMissing,
            });
            return Chunk::Refused(StatusCode::SIZE_REQUIRED);
        };
        let limit = self.work.config.max_object_size;
        if declared > limit {
            self.events.push_back(Event::IncomingObjectDiscarded {
                uri: uri.to_string(),
                reason: DiscardReason::TooLarge { declared, limit },
            });
            return Chunk::Refused(StatusCode::REQUESTED_SIZE_TOO_BIG);
        }
        let received = piece.len() as u64;
        if received > declared {
            self.events.push_back(Event::IncomingObjectDiscarded {
                uri: uri.to_string(),
                reason: DiscardReason::SizeMismatch { declared, received },
            });
            return Chunk::Refused(StatusCode::SIZE_MISMATCH);
        }
        let first = value_of(item, cmd_meta);
        self.work.incoming = Some(Incoming {
            uri,
            declared,
            data: piece.to_owned(),
            format: first.format,
            r#type: first.r#type,
        });
        Chunk::Buffered
    }

    /// A client `Results`: correlated to the `Get` it answers; chunks reassembled.
    pub(super) fn client_results(&mut self, _command: &Command, r: &Results) -> StatusCode {
        let msg_ref = r.msg_ref.clone().unwrap_or_else(|| Text::from("1"));
        let cmd_ref = r.cmd_ref.clone().unwrap_or_default();
        let mut values = Vec::with_capacity(r.items.len());
        let mut code = StatusCode::OK;
        for item in &r.items {
            match self.take_item(item, r.meta.as_deref()) {
                Chunk::Complete(v) => values.push(v),
                Chunk::Buffered => code = StatusCode::CHUNKED_ITEM_ACCEPTED,
                Chunk::Refused(c) => code = c,
            }
        }
        if values.is_empty() {
            return code;
        }
        let results = ClientResults {
            msg_ref: msg_ref.clone(),
            cmd_ref: cmd_ref.clone(),
            values,
        };
        match self.lookup(&msg_ref, &cmd_ref).cloned() {
            Some(sent) => self.events.push_back(Event::Results {
                tag: sent.tag,
                path: sent.path,
                results,
            }),
            None => self
                .events
                .push_back(Event::Uncorrelated(Response::Results(results))),
        }
        code
    }

    /// A client `Replace`/`Add`: device information (usually `./DevInfo/*`).
    pub(super) fn client_data(&mut self, _command: &Command, c: &ItemCommand) -> StatusCode {
        let mut values = Vec::with_capacity(c.items.len());
        let mut code = StatusCode::OK;
        for item in &c.items {
            match self.take_item(item, c.meta.as_deref()) {
                Chunk::Complete(v) => values.push(v),
                Chunk::Buffered => code = StatusCode::CHUNKED_ITEM_ACCEPTED,
                Chunk::Refused(s) => code = s,
            }
        }
        if !values.is_empty() {
            self.events.push_back(Event::DeviceInfo(values));
        }
        code
    }
}
