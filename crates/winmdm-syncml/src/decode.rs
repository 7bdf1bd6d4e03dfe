//! The decoder: XML bytes → [`SyncMl`], with limits and diagnostics.
//!
//! Hand-written on quick-xml's pull reader (its serde layer ignores namespaces and cannot
//! keep the order of mixed command lists). Input is accepted in any element order; known
//! documentation and client defects are tolerated and reported as [`Diagnostic`]s:
//! white space inside namespace URIs, the `syncml:metinfo` typo, `Type`/`Format` outside
//! `Meta`, stray text between elements, commands without `CmdID`. DTDs and entity
//! declarations are refused; only the predefined entities and character references are
//! expanded.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::codes::{CmdId, StatusCode};
use crate::model::*;
use crate::text::Text;

/// Budgets for one decode. Exceeding one is an error, never a truncation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest input in bytes (default 4 MiB; Windows' `MaxMsgSize` is typically 512 000).
    pub max_bytes: usize,
    /// Deepest element nesting (default 32; real messages nest about 8 deep).
    pub max_depth: usize,
    /// Most commands, counting those nested in `Atomic`/`Sequence` (default 10 000).
    pub max_commands: usize,
    /// Most `Item`s in the whole message (default 20 000).
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 4 * 1024 * 1024,
            max_depth: 32,
            max_commands: 10_000,
            max_items: 20_000,
        }
    }
}

impl Limits {
    /// Sets [`Limits::max_bytes`].
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }

    /// Sets [`Limits::max_depth`].
    pub fn max_depth(mut self, n: usize) -> Self {
        self.max_depth = n;
        self
    }

    /// Sets [`Limits::max_commands`].
    pub fn max_commands(mut self, n: usize) -> Self {
        self.max_commands = n;
        self
    }

    /// Sets [`Limits::max_items`].
    pub fn max_items(mut self, n: usize) -> Self {
        self.max_items = n;
        self
    }
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is larger than [`Limits::max_bytes`].
    #[error("message is {len} bytes; the limit is {max}")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is WBXML (`application/vnd.syncml.dm+wbxml`), which is not supported.
    #[error("WBXML is not supported; configure the client for application/vnd.syncml.dm+xml")]
    Wbxml,
    /// The input is empty or only white space.
    #[error("empty message")]
    Empty,
    /// The input is not UTF-8.
    #[error("message is not UTF-8")]
    NotUtf8,
    /// The XML is not well-formed.
    #[error("XML error at byte {position}: {message}")]
    Xml {
        /// Byte offset of the error.
        position: u64,
        /// The parser's description.
        message: String,
    },
    /// A character the XML `Char` production does not allow (a control character other
    /// than tab, line feed and carriage return, or U+FFFE/U+FFFF), anywhere in the
    /// document: raw, as `&#0;` is refused as a reference.
    #[error("U+{code_point:04X} at byte {position} is not an XML character")]
    NotXmlChar {
        /// Byte offset of the character.
        position: u64,
        /// The character.
        code_point: u32,
    },
    /// A `<!DOCTYPE …>` was present (DTDs and entity declarations are refused).
    #[error("DTDs are not allowed")]
    DtdNotAllowed,
    /// An entity other than the five predefined ones was referenced.
    #[error("undefined entity &{name};")]
    UnknownEntity {
        /// The entity name.
        name: String,
    },
    /// Nesting deeper than [`Limits::max_depth`].
    #[error("elements nested deeper than {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// More commands than [`Limits::max_commands`].
    #[error("more than {max} commands")]
    TooManyCommands {
        /// The limit.
        max: usize,
    },
    /// More items than [`Limits::max_items`].
    #[error("more than {max} items")]
    TooManyItems {
        /// The limit.
        max: usize,
    },
    /// The document element is not what was expected.
    #[error("unexpected document element <{name}>")]
    UnexpectedRoot {
        /// The element found.
        name: String,
    },
    /// An element the SyncML DTD allows once appears again in the same parent (see
    /// [`SINGLETONS`]): readers that keep the first and readers that keep the last copy
    /// would see different messages, so none is read.
    #[error("<{parent}> has more than one <{name}>")]
    Duplicate {
        /// The repeated element.
        name: &'static str,
        /// Its parent.
        parent: &'static str,
    },
    /// A required element is missing.
    #[error("<{parent}> has no <{name}>")]
    Missing {
        /// The missing element.
        name: &'static str,
        /// Its parent.
        parent: &'static str,
    },
}

/// The elements the SyncML 1.2 representation DTD allows at most once in their parent
/// (no `*`, `+` or repetition in its content model), which the decoder refuses to see
/// twice ([`DecodeError::Duplicate`]): parent, then its singleton children.
pub const SINGLETONS: &[(&str, &[&str])] = &[
    ("SyncML", &["SyncHdr", "SyncBody"]),
    (
        "SyncHdr",
        &[
            "VerDTD",
            "VerProto",
            "SessionID",
            "MsgID",
            "Target",
            "Source",
            "RespURI",
            "NoResp",
            "Cred",
            "Meta",
        ],
    ),
    ("Target/Source", &["LocURI", "LocName"]),
    ("Cred", &["Meta", "Data"]),
    (
        "Status",
        &["CmdID", "MsgRef", "CmdRef", "Cmd", "Cred", "Chal", "Data"],
    ),
];

/// Tracks which singleton children of one parent were seen.
#[derive(Default)]
struct Once(u32);

impl Once {
    fn see(
        &mut self,
        index: u32,
        name: &'static str,
        parent: &'static str,
    ) -> Result<(), DecodeError> {
        let bit = 1u32 << index;
        if self.0 & bit != 0 {
            return Err(DecodeError::Duplicate { name, parent });
        }
        self.0 |= bit;
        Ok(())
    }
}

impl DecodeError {
    /// The SyncML status a server answers for a message it cannot decode (the one wire
    /// mapping of decode errors): 413 for oversized input, 415 for WBXML and non-UTF-8
    /// encodings, 400 for everything else.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::TooLarge { .. } => StatusCode::REQUEST_ENTITY_TOO_LARGE,
            Self::Wbxml | Self::NotUtf8 => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Severity {
    /// Tolerated deviation from the specification.
    Warning,
    /// A conformance error (the message was still decoded).
    Error,
}

/// A finding about a message that was decoded anyway.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// How serious.
    pub severity: Severity,
    /// A stable identifier (`namespace-whitespace`, `duplicate-cmdid`, …).
    pub code: &'static str,
    /// A readable description.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
        }
    }
}

/// A decoded value with the diagnostics found on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<T> {
    /// The value.
    pub value: T,
    /// What was tolerated.
    pub diagnostics: Vec<Diagnostic>,
}

/// A decoded document of any SyncML level (documentation fragments are often not whole
/// messages).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Fragment {
    /// A whole `<SyncML>` message.
    Message(SyncMl),
    /// A `<SyncHdr>`.
    Header(SyncHdr),
    /// A `<SyncBody>`.
    Body(SyncBody),
    /// One command element.
    Command(Command),
}

/// Decodes a whole message with the default [`Limits`].
///
/// ```
/// let msg = winmdm_syncml::decode(br#"<SyncML xmlns="SYNCML:SYNCML1.2">
///   <SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>1</SessionID>
///     <MsgID>1</MsgID><Target><LocURI>https://mdm.example/</LocURI></Target>
///     <Source><LocURI>dev-1</LocURI></Source></SyncHdr>
///   <SyncBody><Alert><CmdID>1</CmdID><Data>1201</Data></Alert><Final/></SyncBody>
/// </SyncML>"#)?;
/// assert_eq!(msg.body.commands[0].name(), "Alert");
/// assert!(msg.body.is_final);
/// # Ok::<(), winmdm_syncml::DecodeError>(())
/// ```
pub fn decode(input: &[u8]) -> Result<SyncMl, DecodeError> {
    decode_with(input, &Limits::default()).map(|d| d.value)
}

/// Decodes a whole message with `limits`, returning diagnostics too.
pub fn decode_with(input: &[u8], limits: &Limits) -> Result<Decoded<SyncMl>, DecodeError> {
    let decoded = decode_fragment(input, limits)?;
    match decoded.value {
        Fragment::Message(m) => Ok(Decoded {
            value: m,
            diagnostics: decoded.diagnostics,
        }),
        other => Err(DecodeError::UnexpectedRoot {
            name: match other {
                Fragment::Header(_) => "SyncHdr".to_owned(),
                Fragment::Body(_) => "SyncBody".to_owned(),
                Fragment::Command(c) => c.name().to_owned(),
                Fragment::Message(_) => "SyncML".to_owned(),
            },
        }),
    }
}

/// Decodes a `SyncML`, `SyncHdr`, `SyncBody` or single command document.
pub fn decode_fragment(input: &[u8], limits: &Limits) -> Result<Decoded<Fragment>, DecodeError> {
    if input.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge {
            len: input.len(),
            max: limits.max_bytes,
        });
    }
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    match input.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(DecodeError::Empty),
        // WBXML starts with its version byte (0x01–0x03), never with '<'.
        Some(&b) if b <= 0x03 => return Err(DecodeError::Wbxml),
        _ => {}
    }
    if let Some((position, code_point)) = first_non_xml_char(input) {
        return Err(DecodeError::NotXmlChar {
            position: position as u64,
            code_point,
        });
    }
    let mut reader = Reader::from_reader(input);
    // White space between elements is never emitted; it is kept inside text elements and
    // `Data` (see `exact_text`).
    reader.config_mut().trim_text(true);
    let mut d = Decoder {
        reader,
        input,
        limits,
        diags: Vec::new(),
        depth: 0,
        commands: 0,
        items: 0,
        scopes: Vec::new(),
        stray_text_reported: false,
        original_error: None,
    };
    let value = d.document()?;
    Ok(Decoded {
        value,
        diagnostics: d.diags,
    })
}

/// The first character XML 1.0's `Char` production excludes, with its byte offset: C0
/// controls but tab, LF and CR, and U+FFFE/U+FFFF (surrogates cannot occur in UTF-8; the
/// decoder refuses input that is not UTF-8 elsewhere). One pass over the whole document
/// covers text, attribute values, CDATA and comments alike.
fn first_non_xml_char(input: &[u8]) -> Option<(usize, u32)> {
    let control = |b: u8| (b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r');
    // Branch-free per chunk so the compiler vectorizes the common case (none found).
    if input
        .chunks(64)
        .any(|c| c.iter().fold(false, |found, &b| found | control(b)))
    {
        let at = input.iter().position(|&b| control(b))?;
        return Some((at, u32::from(input[at])));
    }
    memchr::memmem::find_iter(input, b"\xEF\xBF")
        .find(|&at| matches!(input.get(at + 2), Some(0xBE | 0xBF)))
        .map(|at| (at, 0xFFFE + u32::from(input[at + 2] - 0xBE)))
}

/// `ch`, a character reference's value, if XML's `Char` production allows it (a reference
/// to a character a document may not contain is not well-formed either).
fn xml_char(ch: char, position: usize) -> Result<char, DecodeError> {
    let c = u32::from(ch);
    if (c < 0x20 && !matches!(ch, '\t' | '\n' | '\r')) || matches!(c, 0xFFFE | 0xFFFF) {
        return Err(DecodeError::NotXmlChar {
            position: position as u64,
            code_point: c,
        });
    }
    Ok(ch)
}

/// Namespaces the decoder distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    /// No namespace (documentation fragments).
    None,
    SyncMl,
    MetInf,
    Other,
}

struct Scope<'a> {
    depth: usize,
    prefix: Option<&'a [u8]>,
    ns: Ns,
}

/// A child element whose start tag has just been read.
struct Child<'a> {
    /// The name as written (bytes of the input; validated by the reader).
    qname: &'a [u8],
    /// The name without its prefix.
    local: &'a [u8],
    ns: Ns,
    empty: bool,
    /// Byte offset of its `<`.
    start: usize,
}

struct Decoder<'a> {
    reader: Reader<&'a [u8]>,
    /// The input; the reader validates UTF-8 as it goes, so slices are checked on use.
    input: &'a [u8],
    limits: &'a Limits,
    diags: Vec<Diagnostic>,
    depth: usize,
    commands: usize,
    items: usize,
    scopes: Vec<Scope<'a>>,
    stray_text_reported: bool,
    /// `msft:originalerror` of the last `Data` start tag read.
    original_error: Option<Text>,
}

type R<T> = Result<T, DecodeError>;

fn xml_err(reader_pos: u64, e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Xml {
        position: reader_pos,
        message: e.to_string(),
    }
}

fn predefined_entity(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        _ => return None,
    })
}

impl<'a> Decoder<'a> {
    fn pos(&self) -> usize {
        self.reader.buffer_position() as usize
    }

    fn classify(&mut self, uri: &str) -> Ns {
        let trimmed = uri.trim();
        if trimmed.len() != uri.len() {
            self.diags.push(Diagnostic::warning(
                "namespace-whitespace",
                format!("namespace URI {uri:?} has white space around it (documentation defect)"),
            ));
        }
        if trimmed.is_empty() {
            Ns::None
        } else if trimmed.eq_ignore_ascii_case(SYNCML_NS) {
            Ns::SyncMl
        } else if trimmed.eq_ignore_ascii_case("SYNCML:SYNCML1.1") {
            self.diags.push(Diagnostic::warning(
                "syncml-1.1",
                "SyncML 1.1 namespace; treated as 1.2",
            ));
            Ns::SyncMl
        } else if trimmed.eq_ignore_ascii_case(METINF_NS) {
            Ns::MetInf
        } else if trimmed.eq_ignore_ascii_case("syncml:metinfo") {
            self.diags.push(Diagnostic::warning(
                "metinf-typo",
                "namespace \"syncml:metinfo\" (documentation typo) read as \"syncml:metinf\"",
            ));
            Ns::MetInf
        } else {
            Ns::Other
        }
    }

    fn resolve(&self, prefix: Option<&[u8]>) -> Ns {
        match self.scopes.iter().rev().find(|s| s.prefix == prefix) {
            Some(scope) => scope.ns,
            // No default namespace: a documentation fragment. An undeclared prefix is a
            // namespace error (XML Namespaces §5): treat the element as foreign.
            None if prefix.is_none() => Ns::None,
            None => Ns::Other,
        }
    }

    /// Reads the start tag `e` found at `start`: namespace declarations, the element's
    /// namespace, depth.
    fn open(&mut self, e: &BytesStart<'_>, empty: bool) -> R<Child<'a>> {
        // The tag ends at the reader's position: `<` + content (+ `/`) + `>`.
        let tag_len = e.len() + if empty { 3 } else { 2 };
        let start = self.pos().saturating_sub(tag_len);
        let name_len = e.name().0.len();
        let qname: &'a [u8] = self
            .input
            .get(start + 1..start + 1 + name_len)
            .unwrap_or_default();
        let (prefix, local) = match qname.iter().position(|&b| b == b':') {
            Some(i) => (Some(&qname[..i]), &qname[i + 1..]),
            None => (None, qname),
        };
        let want_attrs = local == b"Data";
        if want_attrs {
            self.original_error = None;
        }
        if !empty {
            self.depth += 1;
            if self.depth > self.limits.max_depth {
                return Err(DecodeError::TooDeep {
                    max: self.limits.max_depth,
                });
            }
        }
        let raw_attrs = e.attributes_raw();
        if !raw_attrs.trim().is_empty() {
            // Declarations are scoped to this element: for an empty element they apply to
            // itself only, so they are popped right away by the caller's close().
            let scope_depth = if empty { self.depth + 1 } else { self.depth };
            for attr in e.attributes().with_checks(false) {
                let attr = attr.map_err(|err| xml_err(start as u64, err))?;
                let key = attr.key.0;
                let value = attr
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|err| xml_err(start as u64, err))?;
                // References in the value are resolved: check what they resolved to.
                for ch in value.chars() {
                    xml_char(ch, start)?;
                }
                if key == "xmlns" || key.starts_with("xmlns:") {
                    let declared_prefix = key.strip_prefix("xmlns:");
                    let declared_prefix: Option<&'a [u8]> = declared_prefix.map(|p| {
                        // Re-borrow the prefix from the input so it lives as long as 'a.
                        let offset =
                            (p.as_ptr() as usize).wrapping_sub(self.input.as_ptr() as usize);
                        self.input
                            .get(offset..offset.saturating_add(p.len()))
                            .unwrap_or_default()
                    });
                    let ns = self.classify(&value);
                    self.scopes.push(Scope {
                        depth: scope_depth,
                        prefix: declared_prefix,
                        ns,
                    });
                } else if want_attrs && attr.key.local_name().into_inner() == "originalerror" {
                    self.original_error = Some(Text::from(value.as_ref()));
                }
            }
        }
        let ns = self.resolve(prefix);
        if empty {
            let d = self.depth + 1;
            self.scopes.retain(|s| s.depth != d);
        }
        Ok(Child {
            qname,
            local,
            ns,
            empty,
            start,
        })
    }

    /// Leaves an element: pops its namespace scopes.
    fn close(&mut self) {
        let d = self.depth;
        while self.scopes.last().is_some_and(|s| s.depth == d) {
            self.scopes.pop();
        }
        self.depth = self.depth.saturating_sub(1);
    }

    fn stray_text(&mut self, what: &str) {
        if !self.stray_text_reported {
            self.stray_text_reported = true;
            self.diags.push(Diagnostic::warning(
                "stray-text",
                format!("{what} between elements was ignored (placeholder or defect)"),
            ));
        }
    }

    /// The next child element of the current element, or `None` at its end tag.
    fn next_child(&mut self) -> R<Option<Child<'a>>> {
        loop {
            // Match the reader's result in place: moving the event out of the returned
            // `Result` costs more than everything else here.
            let result = self.reader.read_event();
            match &result {
                Ok(Event::Start(e)) => return self.open(e, false).map(Some),
                Ok(Event::Empty(e)) => return self.open(e, true).map(Some),
                Ok(Event::End(_)) => {
                    self.close();
                    return Ok(None);
                }
                Ok(Event::Text(t)) => {
                    if !t.bytes().all(|b| b.is_ascii_whitespace()) {
                        self.stray_text("text");
                    }
                }
                Ok(Event::GeneralRef(_) | Event::CData(_)) => self.stray_text("character data"),
                Ok(Event::Comment(_) | Event::PI(_) | Event::Decl(_)) => {}
                Ok(Event::DocType(_)) => return Err(DecodeError::DtdNotAllowed),
                Ok(Event::Eof) => {
                    return Err(DecodeError::Xml {
                        position: self.reader.buffer_position(),
                        message: "unexpected end of document".to_owned(),
                    });
                }
                Err(e) => return Err(xml_err(self.reader.error_position(), e)),
            }
        }
    }

    /// Switches reader-side trimming off while an element's text is read exactly.
    fn exact_text(&mut self, exact: bool) {
        self.reader.config_mut().trim_text(!exact);
    }

    /// Reads the text content of a simple element (white space trimmed).
    fn text_of(&mut self, c: &Child<'a>) -> R<Text> {
        if c.empty {
            return Ok(Text::default());
        }
        self.exact_text(true);
        let result = self.text_of_inner(c);
        self.exact_text(false);
        result
    }

    fn text_of_inner(&mut self, c: &Child<'a>) -> R<Text> {
        // Fast path: one text event, then the end tag (results matched in place).
        let start = self.pos();
        let first = self.reader.read_event();
        let text: &str = match &first {
            Ok(Event::End(_)) => {
                self.close();
                return Ok(Text::default());
            }
            Ok(Event::Text(t)) => t,
            _ => {
                let event = first.map_err(|e| xml_err(self.reader.error_position(), e))?;
                let mut acc = String::new();
                if self.text_event(c, event, start, &mut acc)? {
                    return Ok(finish_text(&acc));
                }
                return self.text_rest(c, acc);
            }
        };
        let after = self.pos();
        let next = self.reader.read_event();
        if let Ok(Event::End(_)) = &next {
            self.close();
            return Ok(finish_text(text));
        }
        let mut acc = String::from(text);
        let next = next.map_err(|e| xml_err(self.reader.error_position(), e))?;
        if self.text_event(c, next, after, &mut acc)? {
            return Ok(finish_text(&acc));
        }
        self.text_rest(c, acc)
    }

    /// The slow path of a simple element's text: references, CDATA, comments, markup.
    fn text_rest(&mut self, c: &Child<'a>, mut acc: String) -> R<Text> {
        loop {
            let at = self.pos();
            let event = self
                .reader
                .read_event()
                .map_err(|e| xml_err(self.reader.error_position(), e))?;
            if self.text_event(c, event, at, &mut acc)? {
                return Ok(finish_text(&acc));
            }
        }
    }

    /// Handles one event inside a simple element; returns true at its end tag.
    fn text_event(
        &mut self,
        c: &Child<'a>,
        event: Event<'_>,
        start: usize,
        acc: &mut String,
    ) -> R<bool> {
        match event {
            Event::Text(t) => acc.push_str(&t),
            Event::CData(t) => acc.push_str(&t.into_inner()),
            Event::GeneralRef(r) => {
                let ch = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| xml_err(start as u64, e))?
                        .map(|ch| xml_char(ch, start))
                        .transpose()?
                } else {
                    predefined_entity(&r)
                };
                match ch {
                    Some(ch) => acc.push(ch),
                    None => {
                        return Err(DecodeError::UnknownEntity {
                            name: r.into_inner().into_owned(),
                        });
                    }
                }
            }
            Event::End(_) => {
                self.close();
                return Ok(true);
            }
            Event::Start(e) => {
                // Markup inside a simple element: skip it, keep going.
                let child = self.open(&e, false)?;
                self.diags.push(Diagnostic::warning(
                    "unexpected-markup",
                    format!(
                        "<{}> inside <{}> was ignored",
                        lossy(child.qname),
                        lossy(c.qname)
                    ),
                ));
                self.skip(&child)?;
            }
            Event::Empty(_) | Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
            Event::DocType(_) => return Err(DecodeError::DtdNotAllowed),
            Event::Eof => {
                return Err(DecodeError::Xml {
                    position: start as u64,
                    message: "unexpected end of document".to_owned(),
                });
            }
        }
        Ok(false)
    }

    /// Skips the rest of an element whose start tag was read.
    fn skip(&mut self, c: &Child<'a>) -> R<()> {
        if c.empty {
            return Ok(());
        }
        self.reader
            .read_to_end(quick_xml::name::QName(
                std::str::from_utf8(c.qname).map_err(|_| DecodeError::NotUtf8)?,
            ))
            .map_err(|e| xml_err(self.reader.error_position(), e))?;
        self.close();
        Ok(())
    }

    /// Captures an element verbatim (for unknown elements).
    fn unknown(&mut self, c: &Child<'a>) -> R<Unknown> {
        self.skip(c)?;
        let end = self.pos();
        let xml = self
            .input
            .get(c.start..end)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default();
        Ok(Unknown {
            name: String::from_utf8_lossy(c.qname).into_owned(),
            xml: xml.to_owned(),
        })
    }

    fn unknown_diag(&mut self, c: &Child<'a>, parent: &str) {
        self.diags.push(Diagnostic::warning(
            "unknown-element",
            format!(
                "<{}> in <{parent}> is not modelled; kept verbatim",
                lossy(c.qname)
            ),
        ));
    }

    fn is_syncml(&self, c: &Child<'a>) -> bool {
        matches!(c.ns, Ns::SyncMl | Ns::None)
    }

    fn document(&mut self) -> R<Fragment> {
        loop {
            let start = self.pos();
            let event = self
                .reader
                .read_event()
                .map_err(|e| xml_err(self.reader.error_position(), e))?;
            let (e, empty) = match event {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::DocType(_) => return Err(DecodeError::DtdNotAllowed),
                Event::Eof => return Err(DecodeError::Empty),
                Event::Text(t) if t.bytes().all(|b| b.is_ascii_whitespace()) => continue,
                Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                    return Err(DecodeError::Xml {
                        position: start as u64,
                        message: "text before the document element".to_owned(),
                    });
                }
                _ => continue,
            };
            let c = self.open(&e, empty)?;
            if c.ns == Ns::Other {
                return Err(DecodeError::UnexpectedRoot {
                    name: String::from_utf8_lossy(c.qname).into_owned(),
                });
            }
            let fragment = match c.local {
                b"SyncML" => {
                    if c.ns == Ns::None {
                        self.diags.push(Diagnostic::warning(
                            "missing-namespace",
                            "<SyncML> does not declare xmlns=\"SYNCML:SYNCML1.2\"",
                        ));
                    }
                    Fragment::Message(self.message(&c)?)
                }
                b"SyncHdr" => Fragment::Header(self.header(&c)?),
                b"SyncBody" => Fragment::Body(self.body(&c)?),
                _ => match self.command(&c)? {
                    Some(cmd) => Fragment::Command(cmd),
                    None => {
                        return Err(DecodeError::UnexpectedRoot {
                            name: String::from_utf8_lossy(c.qname).into_owned(),
                        });
                    }
                },
            };
            self.trailing()?;
            return Ok(fragment);
        }
    }

    /// After the document element: only white space, comments and PIs.
    fn trailing(&mut self) -> R<()> {
        loop {
            let start = self.pos();
            match self
                .reader
                .read_event()
                .map_err(|e| xml_err(self.reader.error_position(), e))?
            {
                Event::Eof => return Ok(()),
                Event::Text(t) if t.bytes().all(|b| b.is_ascii_whitespace()) => {}
                Event::Comment(_) | Event::PI(_) => {}
                _ => {
                    return Err(DecodeError::Xml {
                        position: start as u64,
                        message: "content after the document element".to_owned(),
                    });
                }
            }
        }
    }

    fn message(&mut self, c: &Child<'a>) -> R<SyncMl> {
        let mut header = None;
        let mut body = None;
        let mut once = Once::default();
        if !c.empty {
            while let Some(child) = self.next_child()? {
                match (self.is_syncml(&child), child.local) {
                    (true, b"SyncHdr") => {
                        once.see(0, "SyncHdr", "SyncML")?;
                        header = Some(self.header(&child)?);
                    }
                    (true, b"SyncBody") => {
                        once.see(1, "SyncBody", "SyncML")?;
                        body = Some(self.body(&child)?);
                    }
                    _ => {
                        self.unknown_diag(&child, "SyncML");
                        self.skip(&child)?;
                    }
                }
            }
        }
        Ok(SyncMl {
            header: header.ok_or(DecodeError::Missing {
                name: "SyncHdr",
                parent: "SyncML",
            })?,
            body: body.ok_or(DecodeError::Missing {
                name: "SyncBody",
                parent: "SyncML",
            })?,
        })
    }

    fn header(&mut self, c: &Child<'a>) -> R<SyncHdr> {
        let mut h = SyncHdr::default();
        if c.empty {
            return Ok(h);
        }
        let mut once = Once::default();
        while let Some(child) = self.next_child()? {
            if !self.is_syncml(&child) {
                let u = self.unknown(&child)?;
                h.unknown.push(u);
                continue;
            }
            const P: &str = "SyncHdr";
            match child.local {
                b"VerDTD" => {
                    once.see(0, "VerDTD", P)?;
                    h.ver_dtd = self.text_of(&child)?;
                }
                b"VerProto" => {
                    once.see(1, "VerProto", P)?;
                    h.ver_proto = self.text_of(&child)?;
                }
                b"SessionID" => {
                    once.see(2, "SessionID", P)?;
                    h.session_id = self.text_of(&child)?;
                }
                b"MsgID" => {
                    once.see(3, "MsgID", P)?;
                    h.msg_id = self.text_of(&child)?;
                }
                b"Target" => {
                    once.see(4, "Target", P)?;
                    h.target = Some(self.location(&child)?);
                }
                b"Source" => {
                    once.see(5, "Source", P)?;
                    h.source = Some(self.location(&child)?);
                }
                b"RespURI" => {
                    once.see(6, "RespURI", P)?;
                    h.resp_uri = Some(self.text_of(&child)?);
                }
                b"NoResp" => {
                    once.see(7, "NoResp", P)?;
                    self.skip(&child)?;
                    h.no_resp = true;
                }
                b"Cred" => {
                    once.see(8, "Cred", P)?;
                    h.cred = Some(Box::new(self.cred(&child)?));
                }
                b"Meta" => {
                    once.see(9, "Meta", P)?;
                    h.meta = Some(Box::new(self.meta(&child)?));
                }
                _ => {
                    self.unknown_diag(&child, "SyncHdr");
                    let u = self.unknown(&child)?;
                    h.unknown.push(u);
                }
            }
        }
        Ok(h)
    }

    fn location(&mut self, c: &Child<'a>) -> R<Location> {
        let mut l = Location::default();
        if c.empty {
            return Ok(l);
        }
        let mut once = Once::default();
        while let Some(child) = self.next_child()? {
            match child.local {
                b"LocURI" => {
                    once.see(0, "LocURI", "Target/Source")?;
                    l.loc_uri = self.text_of(&child)?;
                }
                b"LocName" => {
                    once.see(1, "LocName", "Target/Source")?;
                    l.loc_name = Some(self.text_of(&child)?);
                }
                _ => {
                    self.unknown_diag(&child, "Target/Source");
                    self.skip(&child)?;
                }
            }
        }
        Ok(l)
    }

    fn cred(&mut self, c: &Child<'a>) -> R<Cred> {
        let mut cred = Cred::default();
        if c.empty {
            return Ok(cred);
        }
        let mut once = Once::default();
        while let Some(child) = self.next_child()? {
            match child.local {
                b"Meta" => {
                    once.see(0, "Meta", "Cred")?;
                    cred.meta = Some(Box::new(self.meta(&child)?));
                }
                b"Data" => {
                    once.see(1, "Data", "Cred")?;
                    cred.data = self.text_of(&child)?;
                }
                _ => {
                    self.unknown_diag(&child, "Cred");
                    self.skip(&child)?;
                }
            }
        }
        Ok(cred)
    }

    /// Reads one MetInf child into `meta`; returns false if it is not a MetInf element.
    fn meta_child(&mut self, child: &Child<'a>, meta: &mut Meta) -> R<bool> {
        let slot = match child.local {
            b"Format" => &mut meta.format,
            b"Type" => &mut meta.r#type,
            b"Mark" => &mut meta.mark,
            b"Size" => &mut meta.size,
            b"Version" => &mut meta.version,
            b"NextNonce" => &mut meta.next_nonce,
            b"MaxMsgSize" => &mut meta.max_msg_size,
            b"MaxObjSize" => &mut meta.max_obj_size,
            b"EMI" => {
                let v = self.text_of(child)?;
                meta.emi.push(v);
                return Ok(true);
            }
            _ => return Ok(false),
        };
        *slot = Some(self.text_of(child)?);
        if child.ns != Ns::MetInf {
            self.diags.push(Diagnostic::warning(
                "metinf-namespace",
                format!(
                    "<{}> is not in the syncml:metinf namespace",
                    lossy(child.qname)
                ),
            ));
        }
        Ok(true)
    }

    fn meta(&mut self, c: &Child<'a>) -> R<Meta> {
        let mut meta = Meta::default();
        if c.empty {
            return Ok(meta);
        }
        while let Some(child) = self.next_child()? {
            if !self.meta_child(&child, &mut meta)? {
                let u = self.unknown(&child)?;
                meta.unknown.push(u);
            }
        }
        Ok(meta)
    }

    /// Appends the `Item` whose start tag was read to `items`, filling it in place (an
    /// `Item` is large enough that building it elsewhere and moving it shows up in profiles).
    fn item(&mut self, c: &Child<'a>, items: &mut Vec<Item>) -> R<()> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(DecodeError::TooManyItems {
                max: self.limits.max_items,
            });
        }
        items.push(Item::default());
        let Some(item) = items.last_mut() else {
            return Ok(());
        };
        if c.empty {
            return Ok(());
        }
        while let Some(child) = self.next_child()? {
            match child.local {
                b"Target" => item.target = Some(self.location(&child)?),
                b"Source" => item.source = Some(self.location(&child)?),
                b"SourceParent" => item.source_parent = Some(Box::new(self.location(&child)?)),
                b"TargetParent" => item.target_parent = Some(Box::new(self.location(&child)?)),
                b"Meta" => {
                    let m = self.meta(&child)?;
                    item.meta = Some(merge_meta(item.meta.take(), Box::new(m)));
                }
                b"Data" => item.data = Some(self.data(&child)?),
                b"MoreData" => {
                    self.skip(&child)?;
                    item.more_data = true;
                }
                b"Type" | b"Format" | b"Mark" | b"Size" => {
                    // MS-MDM §3.2.5.1.5–6 samples put Type outside Meta.
                    self.diags.push(Diagnostic::warning(
                        "meta-outside-meta",
                        format!(
                            "<{}> directly in <Item>; read as Meta/{}",
                            lossy(child.qname),
                            lossy(child.local)
                        ),
                    ));
                    let mut m = item.meta.take().unwrap_or_default();
                    self.meta_child(&child, &mut m)?;
                    item.meta = Some(m);
                }
                _ => {
                    self.unknown_diag(&child, "Item");
                    self.skip(&child)?;
                }
            }
        }
        Ok(())
    }

    /// `Data`: text, CDATA or embedded XML (kept byte-exact).
    fn data(&mut self, c: &Child<'a>) -> R<Data> {
        self.exact_text(true);
        let result = self.data_inner(c);
        self.exact_text(false);
        result
    }

    fn data_inner(&mut self, c: &Child<'a>) -> R<Data> {
        let original_error = self.original_error.take();
        if c.empty {
            return Ok(Data {
                original_error,
                ..Data::default()
            });
        }
        let content_start = self.pos();
        // Optimistic fast path: plain text (or nothing) up to the end tag.
        let first = self.reader.read_event();
        let mut first_text: Option<Text> = None;
        match &first {
            Ok(Event::End(_)) => {
                self.close();
                return Ok(Data {
                    value: Text::default(),
                    kind: DataKind::Text,
                    original_error,
                });
            }
            Ok(Event::Text(t)) => first_text = Some(normalize_eol(t)),
            Err(e) => return Err(xml_err(self.reader.error_position(), e)),
            Ok(_) => {}
        }
        if let Some(value) = first_text {
            let next = self.reader.read_event();
            match &next {
                Ok(Event::End(_)) => {
                    self.close();
                    return Ok(Data {
                        value,
                        kind: DataKind::Text,
                        original_error,
                    });
                }
                Err(e) => return Err(xml_err(self.reader.error_position(), e)),
                Ok(_) => {}
            }
        }
        // General case (references, CDATA, markup): take the raw content from where it
        // started to the end tag, then classify it. Events already consumed belong to it;
        // a consumed child start tag is closed within read_to_end.
        let span = self
            .reader
            .read_to_end(quick_xml::name::QName(
                std::str::from_utf8(c.qname).map_err(|_| DecodeError::NotUtf8)?,
            ))
            .map_err(|e| xml_err(self.reader.error_position(), e))?;
        self.close();
        let span = (content_start as u64)..span.end;
        let raw = self
            .input
            .get(span.start as usize..span.end as usize)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or(DecodeError::NotUtf8)?;
        let (value, kind) = if has_element(raw) {
            (Text::new(raw), DataKind::Xml)
        } else {
            let (text, kind) = self.character_data(raw)?;
            (Text::from(text), kind)
        };
        Ok(Data {
            value,
            kind,
            original_error,
        })
    }

    /// Text and CDATA content of `Data` (no elements): unescaped; a lone CDATA section
    /// (with only white space around it) keeps its kind.
    fn character_data(&mut self, raw: &str) -> R<(String, DataKind)> {
        let mut reader = Reader::from_str(raw);
        let mut out = String::with_capacity(raw.len());
        let mut cdata_sections = 0;
        let mut cdata_only = String::new();
        let mut text_chars = false;
        loop {
            match reader
                .read_event()
                .map_err(|e| xml_err(reader.error_position(), e))?
            {
                Event::Text(t) => {
                    let s = t.xml10_content();
                    if !s.trim().is_empty() {
                        text_chars = true;
                    }
                    out.push_str(&s);
                }
                Event::CData(t) => {
                    cdata_sections += 1;
                    let content = t.into_inner();
                    out.push_str(&content);
                    cdata_only.push_str(&content);
                }
                Event::GeneralRef(r) => {
                    text_chars = true;
                    let ch = if r.is_char_ref() {
                        let at = reader.error_position();
                        r.resolve_char_ref()
                            .map_err(|e| xml_err(at, e))?
                            .map(|ch| xml_char(ch, at as usize))
                            .transpose()?
                    } else {
                        predefined_entity(&r)
                    };
                    match ch {
                        Some(ch) => out.push(ch),
                        None => {
                            return Err(DecodeError::UnknownEntity {
                                name: r.into_inner().into_owned(),
                            });
                        }
                    }
                }
                Event::Eof => break,
                Event::DocType(_) => return Err(DecodeError::DtdNotAllowed),
                _ => {}
            }
        }
        if cdata_sections > 0 && !text_chars {
            // Only CDATA (a value containing "]]>" is written as adjacent sections):
            // keep the sections' content, drop white space around them.
            return Ok((cdata_only, DataKind::CData));
        }
        Ok((out, DataKind::Text))
    }

    fn count_command(&mut self) -> R<()> {
        self.commands += 1;
        if self.commands > self.limits.max_commands {
            return Err(DecodeError::TooManyCommands {
                max: self.limits.max_commands,
            });
        }
        Ok(())
    }

    fn body(&mut self, c: &Child<'a>) -> R<SyncBody> {
        let mut body = SyncBody::default();
        if c.empty {
            return Ok(body);
        }
        while let Some(child) = self.next_child()? {
            if self.is_syncml(&child) && child.local == b"Final" {
                self.skip(&child)?;
                body.is_final = true;
                continue;
            }
            if body.is_final {
                self.diags.push(Diagnostic::error(
                    "content-after-final",
                    format!("<{}> after <Final/>", lossy(child.qname)),
                ));
            }
            match self.command(&child)? {
                Some(cmd) => body.commands.push(cmd),
                None => {
                    self.diags.push(Diagnostic::error(
                        "unknown-command",
                        format!(
                            "<{}> is not a SyncML command; kept verbatim",
                            lossy(child.qname)
                        ),
                    ));
                    let u = self.unknown(&child)?;
                    body.commands.push(Command::Unknown(u));
                }
            }
        }
        Ok(body)
    }

    /// A command element, or `None` (nothing consumed) if `c` is not a command.
    fn command(&mut self, c: &Child<'a>) -> R<Option<Command>> {
        if !self.is_syncml(c) {
            return Ok(None);
        }
        let cmd = match c.local {
            b"Add" | b"Copy" | b"Delete" | b"Exec" | b"Get" | b"Replace" => {
                self.count_command()?;
                let ic = self.item_command(c)?;
                match c.local {
                    b"Add" => Command::Add(ic),
                    b"Copy" => Command::Copy(ic),
                    b"Delete" => Command::Delete(ic),
                    b"Exec" => Command::Exec(ic),
                    b"Get" => Command::Get(ic),
                    _ => Command::Replace(ic),
                }
            }
            b"Alert" => {
                self.count_command()?;
                Command::Alert(self.alert(c)?)
            }
            b"Atomic" | b"Sequence" => {
                self.count_command()?;
                let container = self.container(c)?;
                if c.local == b"Atomic" {
                    Command::Atomic(container)
                } else {
                    Command::Sequence(container)
                }
            }
            b"Status" => {
                self.count_command()?;
                Command::Status(self.status(c)?)
            }
            b"Results" => {
                self.count_command()?;
                Command::Results(self.results(c)?)
            }
            b"Map" => {
                self.count_command()?;
                Command::Map(self.map(c)?)
            }
            _ => return Ok(None),
        };
        Ok(Some(cmd))
    }

    fn cmd_id(&mut self, c: &Child<'a>) -> R<Option<CmdId>> {
        Ok(Some(CmdId(self.text_of(c)?)))
    }

    fn item_command(&mut self, c: &Child<'a>) -> R<ItemCommand> {
        let mut ic = ItemCommand::default();
        if c.empty {
            return Ok(ic);
        }
        while let Some(child) = self.next_child()? {
            match child.local {
                b"CmdID" => ic.cmd_id = self.cmd_id(&child)?,
                b"NoResp" => {
                    self.skip(&child)?;
                    ic.no_resp = true;
                }
                b"Cred" => ic.cred = Some(Box::new(self.cred(&child)?)),
                b"Meta" => ic.meta = Some(Box::new(self.meta(&child)?)),
                b"Item" => {
                    self.item(&child, &mut ic.items)?;
                }
                _ => {
                    self.unknown_diag(&child, &lossy(c.local));
                    self.skip(&child)?;
                }
            }
        }
        Ok(ic)
    }

    fn alert(&mut self, c: &Child<'a>) -> R<Alert> {
        let mut a = Alert::default();
        if c.empty {
            return Ok(a);
        }
        while let Some(child) = self.next_child()? {
            match child.local {
                b"CmdID" => a.cmd_id = self.cmd_id(&child)?,
                b"NoResp" => {
                    self.skip(&child)?;
                    a.no_resp = true;
                }
                b"Cred" => a.cred = Some(Box::new(self.cred(&child)?)),
                b"Data" => a.data = Some(self.text_of(&child)?),
                b"Correlator" => a.correlator = Some(self.text_of(&child)?),
                b"Item" => {
                    self.item(&child, &mut a.items)?;
                }
                _ => {
                    self.unknown_diag(&child, "Alert");
                    self.skip(&child)?;
                }
            }
        }
        Ok(a)
    }

    fn container(&mut self, c: &Child<'a>) -> R<Container> {
        let mut k = Container::default();
        if c.empty {
            return Ok(k);
        }
        while let Some(child) = self.next_child()? {
            match child.local {
                b"CmdID" => k.cmd_id = self.cmd_id(&child)?,
                b"NoResp" => {
                    self.skip(&child)?;
                    k.no_resp = true;
                }
                b"Meta" => k.meta = Some(Box::new(self.meta(&child)?)),
                _ => match self.command(&child)? {
                    Some(cmd) => k.commands.push(cmd),
                    None => {
                        self.diags.push(Diagnostic::error(
                            "unknown-command",
                            format!(
                                "<{}> in <{}> is not a command; kept verbatim",
                                lossy(child.qname),
                                lossy(c.local)
                            ),
                        ));
                        let u = self.unknown(&child)?;
                        k.commands.push(Command::Unknown(u));
                    }
                },
            }
        }
        Ok(k)
    }

    fn status(&mut self, c: &Child<'a>) -> R<Status> {
        let mut s = Status::default();
        if c.empty {
            return Ok(s);
        }
        let mut once = Once::default();
        while let Some(child) = self.next_child()? {
            const P: &str = "Status";
            match child.local {
                b"CmdID" => {
                    once.see(0, "CmdID", P)?;
                    s.cmd_id = self.cmd_id(&child)?;
                }
                b"MsgRef" => {
                    once.see(1, "MsgRef", P)?;
                    s.msg_ref = Some(self.text_of(&child)?);
                }
                b"CmdRef" => {
                    once.see(2, "CmdRef", P)?;
                    s.cmd_ref = Some(self.text_of(&child)?);
                }
                b"Cmd" => {
                    once.see(3, "Cmd", P)?;
                    s.cmd = Some(self.text_of(&child)?);
                }
                b"TargetRef" => {
                    let v = self.text_of(&child)?;
                    s.target_ref.push(v);
                }
                b"SourceRef" => {
                    let v = self.text_of(&child)?;
                    s.source_ref.push(v);
                }
                b"Cred" => {
                    once.see(4, "Cred", P)?;
                    s.cred = Some(Box::new(self.cred(&child)?));
                }
                b"Chal" => {
                    once.see(5, "Chal", P)?;
                    let mut meta = Meta::default();
                    if !child.empty {
                        while let Some(m) = self.next_child()? {
                            if m.local == b"Meta" {
                                meta = self.meta(&m)?;
                            } else {
                                self.skip(&m)?;
                            }
                        }
                    }
                    s.chal = Some(Box::new(Chal { meta }));
                }
                b"Data" => {
                    once.see(6, "Data", P)?;
                    // The start tag's `msft:originalerror`, read when it was opened.
                    let original_error = self.original_error.take();
                    s.data = self.text_of(&child)?;
                    s.original_error = original_error;
                }
                b"Item" => {
                    self.item(&child, &mut s.items)?;
                }
                _ => {
                    self.unknown_diag(&child, "Status");
                    self.skip(&child)?;
                }
            }
        }
        Ok(s)
    }

    fn results(&mut self, c: &Child<'a>) -> R<Results> {
        let mut r = Results::default();
        if c.empty {
            return Ok(r);
        }
        while let Some(child) = self.next_child()? {
            match child.local {
                b"CmdID" => r.cmd_id = self.cmd_id(&child)?,
                b"MsgRef" => r.msg_ref = Some(self.text_of(&child)?),
                b"CmdRef" => r.cmd_ref = Some(self.text_of(&child)?),
                b"Cmd" => r.cmd = Some(self.text_of(&child)?),
                b"Meta" => r.meta = Some(Box::new(self.meta(&child)?)),
                b"TargetRef" => {
                    let v = self.text_of(&child)?;
                    r.target_ref.push(v);
                }
                b"SourceRef" => {
                    let v = self.text_of(&child)?;
                    r.source_ref.push(v);
                }
                b"Item" => {
                    self.item(&child, &mut r.items)?;
                }
                _ => {
                    self.unknown_diag(&child, "Results");
                    self.skip(&child)?;
                }
            }
        }
        Ok(r)
    }

    fn map(&mut self, c: &Child<'a>) -> R<MapCommand> {
        let mut m = MapCommand::default();
        if c.empty {
            return Ok(m);
        }
        while let Some(child) = self.next_child()? {
            match child.local {
                b"CmdID" => m.cmd_id = self.cmd_id(&child)?,
                b"Target" => m.target = Some(self.location(&child)?),
                b"Source" => m.source = Some(self.location(&child)?),
                b"Cred" => m.cred = Some(Box::new(self.cred(&child)?)),
                b"Meta" => m.meta = Some(Box::new(self.meta(&child)?)),
                b"MapItem" => {
                    let (mut t, mut s) = (None, None);
                    if !child.empty {
                        while let Some(mi) = self.next_child()? {
                            match mi.local {
                                b"Target" => t = Some(self.location(&mi)?),
                                b"Source" => s = Some(self.location(&mi)?),
                                _ => self.skip(&mi)?,
                            }
                        }
                    }
                    m.map_items.push((t, s));
                }
                _ => {
                    self.unknown_diag(&child, "Map");
                    self.skip(&child)?;
                }
            }
        }
        Ok(m)
    }
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Trims a simple element's text and normalizes line ends (XML 1.0 §2.11).
fn finish_text(text: &str) -> Text {
    let bytes = text.as_bytes();
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    normalize_eol(text.get(start..end).unwrap_or_default())
}

fn normalize_eol(text: &str) -> Text {
    if memchr::memchr(b'\r', text.as_bytes()).is_some() {
        Text::from(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Text::new(text)
    }
}

/// Whether raw element content contains an element (not just text, CDATA, comments).
fn has_element(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while let Some(off) = bytes.get(i..).and_then(|b| memchr::memchr(b'<', b)) {
        let at = i + off;
        let rest = &raw[at..];
        // Skip markup that is not an element: CDATA sections, comments, PIs.
        let skip_to = |open: &str, close: &str| {
            rest.starts_with(open).then(|| {
                rest.find(close)
                    .map_or(raw.len(), |end| at + end + close.len())
            })
        };
        if let Some(next) = skip_to("<![CDATA[", "]]>")
            .or_else(|| skip_to("<!--", "-->"))
            .or_else(|| skip_to("<?", "?>"))
        {
            i = next;
            continue;
        }
        return true;
    }
    false
}

fn merge_meta(existing: Option<Box<Meta>>, new: Box<Meta>) -> Box<Meta> {
    let Some(mut m) = existing else { return new };
    macro_rules! take {
        ($($f:ident),*) => {$( if new.$f.is_some() { m.$f = new.$f; } )*};
    }
    take!(
        format,
        r#type,
        mark,
        size,
        version,
        next_nonce,
        max_msg_size,
        max_obj_size
    );
    m.emi.extend(new.emi);
    m.unknown.extend(new.unknown);
    m
}

/// Repairs documentation artefacts that make published samples not well-formed: attribute
/// values quoted with HTML-escaped quotes (`xmlns=&#39;…&#39;`, `=&quot;…&quot;`) or with
/// typographic quotes. Real clients never send these; use this only on text copied from
/// documentation (the `winmdm syncml` commands do, and say so).
///
/// Returns `None` when there was nothing to repair.
///
/// ```
/// let (fixed, diags) = winmdm_syncml::repair_documentation_artifacts(
///     "<SyncML xmlns=&#39;SYNCML:SYNCML1.2&#39;>").unwrap();
/// assert_eq!(fixed, "<SyncML xmlns=\"SYNCML:SYNCML1.2\">");
/// assert_eq!(diags[0].code, "doc-artifact");
/// ```
pub fn repair_documentation_artifacts(input: &str) -> Option<(String, Vec<Diagnostic>)> {
    const QUOTES: [(&str, &str, &str); 3] = [
        ("&#39;", "&#39;", "HTML-escaped apostrophes"),
        ("&quot;", "&quot;", "HTML-escaped quotes"),
        ("\u{201c}", "\u{201d}", "typographic quotes"),
    ];
    let mut out = String::with_capacity(input.len());
    let mut diags = Vec::new();
    let mut rest = input;
    let mut in_tag = false;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            in_tag = !rest.starts_with("<!--");
        } else if c == '>' {
            in_tag = false;
        }
        if in_tag && c == '=' {
            let after = rest[1..].trim_start();
            let repaired = QUOTES.iter().find_map(|(open, close, name)| {
                let body = after.strip_prefix(open)?;
                let end = body.find(close)?;
                Some((&body[..end], &body[end + close.len()..], *name))
            });
            if let Some((value, remaining, name)) = repaired {
                out.push_str("=\"");
                out.push_str(value);
                out.push('"');
                rest = remaining;
                diags.push(Diagnostic::error(
                    "doc-artifact",
                    format!("attribute value quoted with {name} (documentation rendering defect); repaired"),
                ));
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    (!diags.is_empty()).then_some((out, diags))
}
