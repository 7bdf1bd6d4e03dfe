//! The encoder: [`SyncMl`] → XML, in the element order CHECKLIST DM-17a recommends
//! (OMA DTD order; `Status` refs before `Data`; `Results` may carry `Cmd`), with MetInf
//! children in their namespace as Windows writes them.

use crate::model::*;

/// Encodes a message as UTF-8 XML (no XML declaration, no indentation: what goes on the
/// wire).
///
/// ```
/// use winmdm_syncml::{Command, SyncMl, encode, decode};
/// let mut msg = SyncMl::default();
/// msg.header.ver_dtd = "1.2".into();
/// msg.body.commands.push(Command::get(2u32, ["./DevDetail/SwV"]));
/// msg.body.is_final = true;
/// let xml = encode(&msg);
/// assert!(xml.contains("<Get><CmdID>2</CmdID><Item><Target><LocURI>./DevDetail/SwV</LocURI></Target></Item></Get>"));
/// assert_eq!(decode(xml.as_bytes())?, msg);
/// # Ok::<(), winmdm_syncml::DecodeError>(())
/// ```
pub fn encode(message: &SyncMl) -> String {
    let mut w = Writer::with_capacity(1024);
    w.message(message);
    w.out
}

/// Appends the encoding of `message` to `out` (reuse a buffer across messages).
pub fn encode_into(message: &SyncMl, out: &mut String) {
    let mut w = Writer {
        out: std::mem::take(out),
    };
    w.message(message);
    *out = w.out;
}

/// Encodes one command (for building messages by hand or measuring sizes).
pub fn encode_command(command: &Command) -> String {
    let mut w = Writer::with_capacity(256);
    w.command(command);
    w.out
}

/// Encodes a `SyncHdr`.
pub fn encode_header(header: &SyncHdr) -> String {
    let mut w = Writer::with_capacity(256);
    w.header(header);
    w.out
}

/// Encodes a `SyncBody`.
pub fn encode_body(body: &SyncBody) -> String {
    let mut w = Writer::with_capacity(1024);
    w.body(body);
    w.out
}

/// The size in bytes `item` takes when encoded.
pub fn encoded_item_len(item: &Item) -> usize {
    let mut w = Writer::with_capacity(128);
    w.item(item);
    w.out.len()
}

struct Writer {
    out: String,
}

fn escape_into(out: &mut String, text: &str) {
    let mut last = 0;
    for (i, b) in text.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\r' => "&#13;",
            _ => continue,
        };
        out.push_str(&text[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&text[last..]);
}

/// The length of `ch` once escaped as [`escape_into`] writes it.
pub(crate) fn escaped_char_len(ch: char) -> usize {
    match ch {
        '&' | '\r' => 5,
        '<' | '>' => 4,
        '"' => 6,
        c => c.len_utf8(),
    }
}

impl Writer {
    fn with_capacity(n: usize) -> Self {
        Self {
            out: String::with_capacity(n),
        }
    }

    fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    fn empty(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str("/>");
    }

    fn text_el(&mut self, name: &str, value: &str) {
        self.open(name);
        escape_into(&mut self.out, value);
        self.close(name);
    }

    fn opt(&mut self, name: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.text_el(name, v);
        }
    }

    fn metinf(&mut self, name: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.out.push('<');
            self.out.push_str(name);
            self.out.push_str(" xmlns=\"syncml:metinf\">");
            escape_into(&mut self.out, v);
            self.close(name);
        }
    }

    fn message(&mut self, m: &SyncMl) {
        self.out.push_str("<SyncML xmlns=\"SYNCML:SYNCML1.2\">");
        self.header(&m.header);
        self.body(&m.body);
        self.out.push_str("</SyncML>");
    }

    fn header(&mut self, h: &SyncHdr) {
        self.open("SyncHdr");
        self.text_el("VerDTD", &h.ver_dtd);
        self.text_el("VerProto", &h.ver_proto);
        self.text_el("SessionID", &h.session_id);
        self.text_el("MsgID", &h.msg_id);
        if let Some(t) = &h.target {
            self.location("Target", t);
        }
        if let Some(s) = &h.source {
            self.location("Source", s);
        }
        self.opt("RespURI", h.resp_uri.as_deref());
        if h.no_resp {
            self.empty("NoResp");
        }
        if let Some(c) = &h.cred {
            self.cred(c);
        }
        if let Some(m) = &h.meta {
            self.meta(m);
        }
        for u in &h.unknown {
            self.out.push_str(&u.xml);
        }
        self.close("SyncHdr");
    }

    fn location(&mut self, name: &str, l: &Location) {
        self.open(name);
        self.text_el("LocURI", &l.loc_uri);
        self.opt("LocName", l.loc_name.as_deref());
        self.close(name);
    }

    fn cred(&mut self, c: &Cred) {
        self.open("Cred");
        if let Some(m) = &c.meta {
            self.meta(m);
        }
        self.text_el("Data", &c.data);
        self.close("Cred");
    }

    fn meta(&mut self, m: &Meta) {
        self.open("Meta");
        self.meta_children(m);
        self.close("Meta");
    }

    /// MetInf DTD order.
    fn meta_children(&mut self, m: &Meta) {
        self.metinf("Format", m.format.as_deref());
        self.metinf("Type", m.r#type.as_deref());
        self.metinf("Mark", m.mark.as_deref());
        self.metinf("Size", m.size.as_deref());
        self.metinf("Version", m.version.as_deref());
        self.metinf("NextNonce", m.next_nonce.as_deref());
        self.metinf("MaxMsgSize", m.max_msg_size.as_deref());
        self.metinf("MaxObjSize", m.max_obj_size.as_deref());
        for e in &m.emi {
            self.metinf("EMI", Some(e));
        }
        for u in &m.unknown {
            self.out.push_str(&u.xml);
        }
    }

    fn body(&mut self, b: &SyncBody) {
        if b.commands.iter().any(uses_msft) {
            self.out.push_str("<SyncBody xmlns:msft=\"");
            self.out.push_str(MSFT_NS);
            self.out.push_str("\">");
        } else {
            self.open("SyncBody");
        }
        for c in &b.commands {
            self.command(c);
        }
        if b.is_final {
            self.empty("Final");
        }
        self.close("SyncBody");
    }

    fn cmd_id(&mut self, id: Option<&crate::CmdId>) {
        if let Some(id) = id {
            self.text_el("CmdID", id.as_str());
        }
    }

    fn command(&mut self, c: &Command) {
        match c {
            Command::Add(ic) => self.item_command("Add", ic),
            Command::Copy(ic) => self.item_command("Copy", ic),
            Command::Delete(ic) => self.item_command("Delete", ic),
            Command::Exec(ic) => self.item_command("Exec", ic),
            Command::Get(ic) => self.item_command("Get", ic),
            Command::Replace(ic) => self.item_command("Replace", ic),
            Command::Alert(a) => {
                self.open("Alert");
                self.cmd_id(a.cmd_id.as_ref());
                if a.no_resp {
                    self.empty("NoResp");
                }
                if let Some(cr) = &a.cred {
                    self.cred(cr);
                }
                self.opt("Data", a.data.as_deref());
                self.opt("Correlator", a.correlator.as_deref());
                for i in &a.items {
                    self.item(i);
                }
                self.close("Alert");
            }
            Command::Atomic(k) => self.container("Atomic", k),
            Command::Sequence(k) => self.container("Sequence", k),
            Command::Status(s) => {
                self.open("Status");
                self.cmd_id(s.cmd_id.as_ref());
                self.opt("MsgRef", s.msg_ref.as_deref());
                self.opt("CmdRef", s.cmd_ref.as_deref());
                self.opt("Cmd", s.cmd.as_deref());
                for t in &s.target_ref {
                    self.text_el("TargetRef", t);
                }
                for t in &s.source_ref {
                    self.text_el("SourceRef", t);
                }
                if let Some(cr) = &s.cred {
                    self.cred(cr);
                }
                if let Some(ch) = &s.chal {
                    self.open("Chal");
                    self.meta(&ch.meta);
                    self.close("Chal");
                }
                match &s.original_error {
                    Some(e) => {
                        self.out.push_str("<Data msft:originalerror=\"");
                        escape_into(&mut self.out, e);
                        self.out.push_str("\">");
                        escape_into(&mut self.out, &s.data);
                        self.close("Data");
                    }
                    None => self.text_el("Data", &s.data),
                }
                for i in &s.items {
                    self.item(i);
                }
                self.close("Status");
            }
            Command::Results(r) => {
                self.open("Results");
                self.cmd_id(r.cmd_id.as_ref());
                self.opt("MsgRef", r.msg_ref.as_deref());
                self.opt("CmdRef", r.cmd_ref.as_deref());
                self.opt("Cmd", r.cmd.as_deref());
                if let Some(m) = &r.meta {
                    self.meta(m);
                }
                for t in &r.target_ref {
                    self.text_el("TargetRef", t);
                }
                for t in &r.source_ref {
                    self.text_el("SourceRef", t);
                }
                for i in &r.items {
                    self.item(i);
                }
                self.close("Results");
            }
            Command::Map(m) => {
                self.open("Map");
                self.cmd_id(m.cmd_id.as_ref());
                if let Some(t) = &m.target {
                    self.location("Target", t);
                }
                if let Some(s) = &m.source {
                    self.location("Source", s);
                }
                if let Some(cr) = &m.cred {
                    self.cred(cr);
                }
                if let Some(me) = &m.meta {
                    self.meta(me);
                }
                for (t, s) in &m.map_items {
                    self.open("MapItem");
                    if let Some(t) = t {
                        self.location("Target", t);
                    }
                    if let Some(s) = s {
                        self.location("Source", s);
                    }
                    self.close("MapItem");
                }
                self.close("Map");
            }
            Command::Unknown(u) => self.out.push_str(&u.xml),
        }
    }

    fn item_command(&mut self, name: &str, ic: &ItemCommand) {
        self.open(name);
        self.cmd_id(ic.cmd_id.as_ref());
        if ic.no_resp {
            self.empty("NoResp");
        }
        if let Some(c) = &ic.cred {
            self.cred(c);
        }
        if let Some(m) = &ic.meta {
            self.meta(m);
        }
        for i in &ic.items {
            self.item(i);
        }
        self.close(name);
    }

    fn container(&mut self, name: &str, k: &Container) {
        self.open(name);
        self.cmd_id(k.cmd_id.as_ref());
        if k.no_resp {
            self.empty("NoResp");
        }
        if let Some(m) = &k.meta {
            self.meta(m);
        }
        for c in &k.commands {
            self.command(c);
        }
        self.close(name);
    }

    fn item(&mut self, i: &Item) {
        self.open("Item");
        if let Some(t) = &i.target {
            self.location("Target", t);
        }
        if let Some(s) = &i.source {
            self.location("Source", s);
        }
        if let Some(s) = &i.source_parent {
            self.location("SourceParent", s);
        }
        if let Some(t) = &i.target_parent {
            self.location("TargetParent", t);
        }
        if let Some(m) = &i.meta {
            self.meta(m);
        }
        if let Some(d) = &i.data {
            self.data(d);
        }
        if i.more_data {
            self.empty("MoreData");
        }
        self.close("Item");
    }

    fn data(&mut self, d: &Data) {
        match &d.original_error {
            Some(e) => {
                self.out.push_str("<Data msft:originalerror=\"");
                escape_into(&mut self.out, e);
                self.out.push_str("\">");
            }
            None => self.open("Data"),
        }
        match d.kind {
            DataKind::Text => escape_into(&mut self.out, &d.value),
            DataKind::Xml => self.out.push_str(&d.value),
            DataKind::CData => {
                self.out.push_str("<![CDATA[");
                // A literal "]]>" ends the section: split it across two sections.
                self.out
                    .push_str(&d.value.replace("]]>", "]]]]><![CDATA[>"));
                self.out.push_str("]]>");
            }
        }
        self.close("Data");
    }
}

fn uses_msft(c: &Command) -> bool {
    let data_has = |items: &[Item]| {
        items
            .iter()
            .any(|i| i.data.as_ref().is_some_and(|d| d.original_error.is_some()))
    };
    let status_has = matches!(c, Command::Status(s) if s.original_error.is_some());
    status_has || data_has(c.items()) || c.children().iter().any(uses_msft)
}

/// Encodes any decoded document level.
pub fn encode_fragment(fragment: &crate::Fragment) -> String {
    match fragment {
        crate::Fragment::Message(m) => encode(m),
        crate::Fragment::Header(h) => encode_header(h),
        crate::Fragment::Body(b) => encode_body(b),
        crate::Fragment::Command(c) => encode_command(c),
    }
}
