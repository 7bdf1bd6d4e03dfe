//! A small namespace-aware XML tree for SOAP requests, with limits.
//!
//! Enrollment requests are small, fixed-shape documents; a tree is the simplest faithful
//! reading. The tree is built on a scanner (quick-xml's raw reader, the limits below, and
//! the namespace declarations in scope kept as slices of the document) that the
//! `RequestSecurityToken` reader also uses directly, reading the same things in one pass
//! without a tree. Names are resolved to (namespace URI, local name); namespace URIs are trimmed
//! (documentation samples carry stray white space). DTDs and unknown entities are refused.
//! Both SOAP 1.1 and SOAP 1.2 envelopes are read.

use std::borrow::Cow;

use compact_str::CompactString;

use quick_xml::events::attributes::Attributes;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use crate::xmlwf;

/// SOAP 1.2 envelope namespace.
pub const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
/// SOAP 1.1 envelope namespace.
pub const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// WS-Addressing.
pub const WSA: &str = "http://www.w3.org/2005/08/addressing";
/// WS-Security extension.
pub const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// WS-Security utility.
pub const WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";

/// Size budget for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes. Default 512 KiB.
    pub max_bytes: usize,
    /// Element nesting. Default 32.
    pub max_depth: usize,
    /// Elements in all. Default 4096.
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 512 * 1024,
            max_depth: 32,
            max_elements: 4096,
        }
    }
}

/// Why a request could not be read (all answered with an `s:MessageFormat` fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SoapError {
    /// No body.
    #[error("empty request")]
    Empty,
    /// Over [`Limits`].
    #[error("request over the limit: {0}")]
    TooLarge(&'static str),
    /// A DTD.
    #[error("DTDs are not allowed")]
    Dtd,
    /// An entity other than the five predefined ones.
    #[error("unknown entity &{0};")]
    UnknownEntity(String),
    /// Not well-formed.
    #[error("not well-formed XML at byte {position}: {message}")]
    Xml {
        /// Byte offset.
        position: u64,
        /// The parser's message.
        message: String,
    },
    /// Not a SOAP envelope, or no `Body`.
    #[error("not a SOAP envelope: {0}")]
    NotSoap(&'static str),
    /// A required element is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// An element the protocol allows once appears twice (see [`SINGLETONS`]): readers
    /// keeping the first and readers keeping the last copy would see different requests.
    #[error("more than one {0}")]
    Duplicate(&'static str),
}

/// The SOAP elements enrollment allows once, which every reader refuses to see twice
/// ([`SoapError::Duplicate`]): parent, then its singleton children (SOAP 1.2 Part 1 §5:
/// one `Header`, one `Body`; WS-Addressing's message headers; WS-Security's one
/// `Security` header for the recipient with one token; one request element in the body;
/// WS-Trust's `RequestSecurityToken` children as MS-WSTEP profiles them).
pub const SINGLETONS: &[(&str, &[&str])] = &[
    ("Envelope", &["Header", "Body"]),
    ("Header", &["Action", "MessageID", "To", "Security"]),
    ("Security", &["BinarySecurityToken", "UsernameToken"]),
    ("Body", &["(its one element)"]),
    (
        "RequestSecurityToken",
        &[
            "TokenType",
            "RequestType",
            "BinarySecurityToken",
            "AdditionalContext",
        ],
    ),
];

/// Refuses a second `name` child of `parent` ([`SoapError::Duplicate`]).
///
/// # Errors
/// [`SoapError::Duplicate`].
pub fn single(parent: &Element, name: &'static str) -> Result<(), SoapError> {
    if parent
        .children
        .iter()
        .filter(|c| c.name.eq_ignore_ascii_case(name))
        .nth(1)
        .is_some()
    {
        return Err(SoapError::Duplicate(name));
    }
    Ok(())
}

/// An attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Namespace URI (empty for unprefixed attributes).
    pub ns: Cow<'static, str>,
    /// Local name.
    pub name: CompactString,
    /// Unescaped value.
    pub value: CompactString,
}

/// An element.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Namespace URI (trimmed; empty when unbound). The namespaces of enrollment
    /// messages are shared constants, so reading a document does not allocate for them.
    pub ns: Cow<'static, str>,
    /// Local name.
    pub name: CompactString,
    /// Attributes, namespace declarations excluded.
    pub attrs: Vec<Attr>,
    /// Child elements in order.
    pub children: Vec<Self>,
    /// Text content (concatenated, unescaped).
    pub text: String,
}

impl Element {
    /// The first child `ns:name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Self> {
        self.children.iter().find(|c| c.ns == ns && c.name == name)
    }

    /// The first child whose local name is `name`, in any namespace, ignoring ASCII case
    /// (documentation samples lower-case SOAP elements).
    pub fn child_named(&self, name: &str) -> Option<&Self> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// Every child whose local name is `name` (any namespace, any case).
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Self> + 'a {
        self.children
            .iter()
            .filter(move |c| c.name.eq_ignore_ascii_case(name))
    }

    /// Descends through local names (any namespace, any case).
    pub fn path(&self, names: &[&str]) -> Option<&Self> {
        names.iter().try_fold(self, |e, n| e.child_named(n))
    }

    /// The trimmed text.
    pub fn text(&self) -> &str {
        self.text.trim()
    }

    /// An attribute by local name (any namespace; documentation samples prefix some).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map(|a| a.value.trim())
    }
}

fn predefined(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => None,
    }
}

/// Namespaces enrollment messages use, shared rather than allocated per element.
const KNOWN_NS: &[&str] = &[
    SOAP12,
    SOAP11,
    WSA,
    WSSE,
    WSU,
    "http://docs.oasis-open.org/ws-sx/ws-trust/200512",
    "http://schemas.xmlsoap.org/ws/2006/12/authorization",
    "http://schemas.microsoft.com/windows/pki/2009/01/enrollment",
    "http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy",
    "http://schemas.microsoft.com/windows/management/2012/01/enrollment",
    "http://schemas.microsoft.com/windows/management/2012/01/enrollment/",
    "http://www.w3.org/2001/XMLSchema-instance",
    "http://www.w3.org/XML/1998/namespace",
    "http://schemas.microsoft.com/2004/09/ServiceModel/Diagnostics",
];

/// The namespace URI as a shared constant when it is a known one.
fn intern(ns: &str) -> Cow<'static, str> {
    if ns.is_empty() {
        return Cow::Borrowed("");
    }
    match KNOWN_NS.iter().find(|k| **k == ns) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(ns.to_owned()),
    }
}

/// The XML namespace (bound to the `xml` prefix by definition).
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// The namespace-declaration namespace (never bindable).
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";
/// Most `xmlns` declarations in scope at once.
const MAX_BINDINGS: usize = 128;
/// Most attributes on one element.
const MAX_ATTRIBUTES: usize = 256;

/// A start tag, borrowed from the document, with its name's namespace resolved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tag<'a> {
    /// The text between `<` and `>` (or `/>`).
    raw: &'a str,
    /// Length of the qualified name at the start of `raw`.
    name_len: usize,
    /// The element's namespace URI, trimmed (empty when unbound).
    pub(crate) ns: &'a str,
    /// `<x/>`: no `Close` follows.
    pub(crate) empty: bool,
}

impl<'a> Tag<'a> {
    /// The local name.
    pub(crate) fn local_name(&self) -> &'a str {
        let q = &self.raw[..self.name_len];
        q.find(':').map_or(q, |i| &q[i + 1..])
    }

    fn attributes(&self) -> Attributes<'a> {
        Attributes::new(self.raw, self.name_len)
    }

    /// The first attribute whose local name is `name` (any namespace, any case), its
    /// value normalized and trimmed, as [`Element::attr`] reads it. (The scanner has
    /// checked every attribute already.)
    pub(crate) fn attr(&self, name: &str) -> Result<Option<Cow<'a, str>>, SoapError> {
        for a in self.attributes().with_checks(false) {
            let a = a.map_err(|e| xml_error(0, &e))?;
            if a.key.as_namespace_binding().is_some()
                || !a.key.local_name().into_inner().eq_ignore_ascii_case(name)
            {
                continue;
            }
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| xml_error(0, &e))?;
            return Ok(Some(match value {
                Cow::Borrowed(v) => Cow::Borrowed(v.trim()),
                Cow::Owned(v) => Cow::Owned(v.trim().to_owned()),
            }));
        }
        Ok(None)
    }
}

/// One step through a document.
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// An element opens (and, when [`Tag::empty`], closes at once).
    Open(Tag<'a>),
    /// The innermost open element closes.
    Close,
    /// Character data that is not only white space (white space between elements
    /// carries nothing in these messages), or a CDATA section.
    Text(Cow<'a, str>),
    /// A character or predefined entity reference, resolved.
    Char(char),
}

/// The tokenizer under both the tree and the streaming readers: quick-xml's raw reader,
/// the [`Limits`], refusal of DTDs and unknown entities, and namespace resolution (a
/// stack of the `xmlns` declarations in scope, kept as slices of the document).
///
/// Every token is checked for well-formedness ([`crate::xmlwf`]); after the root
/// element closes, the rest of the document is read (only comments, processing
/// instructions and white space may follow) before the scanner reports the end.
pub(crate) struct Scanner<'a> {
    xml: &'a [u8],
    reader: Reader<&'a [u8]>,
    limits: Limits,
    /// Elements open now.
    open: usize,
    /// Elements seen.
    seen: usize,
    /// `(prefix, namespace, level)`; the default namespace has the empty prefix.
    bindings: Vec<(&'a str, &'a str, usize)>,
    /// Bindings of an empty element, dropped at the next step.
    pop_after_empty: bool,
    /// Tokens read (an XML declaration must be the first).
    tokens: usize,
    /// The document was read to its end.
    finished: bool,
}

fn xml_error(position: u64, e: &dyn std::fmt::Display) -> SoapError {
    SoapError::Xml {
        position,
        message: e.to_string(),
    }
}

impl<'a> Scanner<'a> {
    /// A scanner over `xml`, after the size checks.
    pub(crate) fn new(xml: &'a [u8], limits: &Limits) -> Result<Self, SoapError> {
        if xml.iter().all(u8::is_ascii_whitespace) {
            return Err(SoapError::Empty);
        }
        if xml.len() > limits.max_bytes {
            return Err(SoapError::TooLarge("bytes"));
        }
        // The reader skips a byte order mark without counting it in its positions, which
        // the tags' slices are taken by: take it off first.
        let xml = xml.strip_prefix(b"\xef\xbb\xbf").unwrap_or(xml);
        let mut reader = Reader::from_reader(xml);
        reader.config_mut().trim_text(false);
        Ok(Self {
            xml,
            reader,
            limits: *limits,
            open: 0,
            seen: 0,
            bindings: Vec::new(),
            pop_after_empty: false,
            tokens: 0,
            finished: false,
        })
    }

    fn err(&self, e: &dyn std::fmt::Display) -> SoapError {
        xml_error(self.reader.error_position(), e)
    }

    fn drop_bindings_above(&mut self, level: usize) {
        while self.bindings.last().is_some_and(|b| b.2 > level) {
            self.bindings.pop();
        }
    }

    /// The namespace bound to `prefix` (`""`: the default namespace) now.
    fn lookup(&self, prefix: &str) -> &'a str {
        if prefix == "xml" {
            return XML_NS;
        }
        self.bindings
            .iter()
            .rev()
            .find(|b| b.0 == prefix)
            .map_or("", |b| b.1)
    }

    fn malformed(&self, message: &'static str) -> SoapError {
        SoapError::Xml {
            position: self.reader.buffer_position(),
            message: message.into(),
        }
    }

    /// The next event, with the checks every token gets wherever it stands.
    fn event(&mut self) -> Result<Event<'a>, SoapError> {
        let start = self.reader.buffer_position();
        let event = self.reader.read_event().map_err(|e| self.err(&e))?;
        self.tokens += 1;
        let checked = match &event {
            Event::Text(t) => xmlwf::char_data(t),
            Event::CData(t) => xmlwf::chars(t),
            Event::Comment(t) => xmlwf::comment(t),
            Event::PI(t) => xmlwf::processing_instruction(t),
            Event::Decl(_) => {
                // Only as the very first thing (after a byte order mark).
                if start != 0 || self.tokens != 1 {
                    Err("an XML declaration that is not at the start")
                } else {
                    let end = usize::try_from(self.reader.buffer_position()).unwrap_or(0);
                    match self.xml.get(2..end.saturating_sub(2)) {
                        Some(raw) => std::str::from_utf8(raw)
                            .map_err(|_| "a malformed XML declaration")
                            .and_then(xmlwf::declaration),
                        None => Err("a malformed XML declaration"),
                    }
                }
            }
            Event::DocType(_) => return Err(SoapError::Dtd),
            _ => Ok(()),
        };
        checked.map_err(|m| self.malformed(m))?;
        Ok(event)
    }

    /// Reads what follows the root element: comments, processing instructions and white
    /// space, then the end of the document.
    pub(crate) fn finish(&mut self) -> Result<(), SoapError> {
        while !self.finished {
            match self.event()? {
                Event::Eof => self.finished = true,
                Event::Text(t) if xmlwf::all_space(&t) => {}
                Event::Comment(_) | Event::PI(_) => {}
                _ => return Err(self.malformed("content after the root element")),
            }
        }
        Ok(())
    }

    /// The next step; `Ok(None)` once the root element has closed and the rest of the
    /// document has been read.
    pub(crate) fn next(&mut self) -> Result<Option<Step<'a>>, SoapError> {
        if self.pop_after_empty {
            self.pop_after_empty = false;
            self.drop_bindings_above(self.open);
        }
        if self.seen > 0 && self.open == 0 {
            self.finish()?;
            return Ok(None);
        }
        loop {
            let prolog = self.seen == 0;
            match self.event()? {
                Event::Start(e) => return self.open_tag(e, false).map(Some),
                Event::Empty(e) => return self.open_tag(e, true).map(Some),
                Event::End(_) => {
                    if self.open == 0 {
                        return Err(self.malformed("unbalanced end tag"));
                    }
                    self.open -= 1;
                    self.drop_bindings_above(self.open);
                    return Ok(Some(Step::Close));
                }
                Event::Text(t) => {
                    if !xmlwf::all_space(&t) {
                        if prolog {
                            return Err(self.malformed("text before the root element"));
                        }
                        return Ok(Some(Step::Text(t.into_inner())));
                    }
                }
                Event::CData(t) => {
                    if prolog {
                        return Err(self.malformed("CDATA before the root element"));
                    }
                    return Ok(Some(Step::Text(t.into_inner())));
                }
                Event::GeneralRef(r) => {
                    if prolog {
                        return Err(self.malformed("a reference before the root element"));
                    }
                    let ch = if r.is_char_ref() {
                        r.resolve_char_ref().map_err(|e| self.err(&e))?
                    } else {
                        predefined(&r)
                    };
                    let Some(ch) = ch else {
                        return Err(SoapError::UnknownEntity(r.chars().take(32).collect()));
                    };
                    if !xmlwf::is_char(ch) {
                        return Err(self.malformed("a reference to a character XML does not allow"));
                    }
                    return Ok(Some(Step::Char(ch)));
                }
                Event::Eof => return Err(self.malformed("unexpected end of document")),
                // Checked in `event`; a declaration only first.
                Event::DocType(_) => return Err(SoapError::Dtd),
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
            }
        }
    }

    /// The tag just read, as a slice of the document (a slice reader's tags are).
    fn borrowed(&self, e: &BytesStart<'_>, empty: bool) -> Option<&'a str> {
        let end = usize::try_from(self.reader.buffer_position())
            .ok()?
            .checked_sub(if empty { 2 } else { 1 })?;
        let bytes = self.xml.get(end.checked_sub(e.len())?..end)?;
        if bytes != e.as_bytes() {
            return None;
        }
        std::str::from_utf8(bytes).ok()
    }

    fn open_tag(&mut self, e: BytesStart<'_>, empty: bool) -> Result<Step<'a>, SoapError> {
        self.seen += 1;
        if self.seen > self.limits.max_elements {
            return Err(SoapError::TooLarge("elements"));
        }
        if self.open >= self.limits.max_depth {
            return Err(SoapError::TooLarge("depth"));
        }
        let Some(raw) = self.borrowed(&e, empty) else {
            return Err(self.err(&"tag not found where the reader read it"));
        };
        drop(e);
        // Every attribute is read once, by the grammar check: names, values, references,
        // white space; then repeats, namespace declarations and prefixes.
        let mut attrs: Vec<(&'a str, &'a str)> = Vec::new();
        let name_len = xmlwf::start_tag(raw, |name, value| {
            attrs.push((name, value));
            Ok(())
        })
        .map_err(|m| self.malformed(m))?;
        if attrs.len() > MAX_ATTRIBUTES {
            return Err(SoapError::TooLarge("attributes"));
        }
        let level = self.open + 1;
        // Prefixed attributes, resolved once this element's declarations are all read.
        let mut prefixed: Vec<(&'a str, &'a str)> = Vec::new();
        for (i, &(name, value)) in attrs.iter().enumerate() {
            if attrs[..i].iter().any(|(n, _)| *n == name) {
                return Err(self.malformed("a repeated attribute"));
            }
            let prefix = match name.split_once(':') {
                None if name == "xmlns" => "",
                None => continue,
                Some(("xmlns", p)) => p,
                Some((p, local)) => {
                    prefixed.push((p, local));
                    continue;
                }
            };
            if value.contains('&') {
                // Namespace names are compared as written; one spelled with references
                // would name another namespace than it reads as.
                return Err(self.malformed("a reference in a namespace name"));
            }
            match prefix {
                "" if value == XML_NS || value == XMLNS_NS => {
                    return Err(self.malformed("the default namespace bound to a reserved one"));
                }
                "xml" if value == XML_NS => continue,
                "xml" | "xmlns" => {
                    return Err(self.malformed("the xml and xmlns prefixes cannot be bound here"));
                }
                _ if value == XML_NS || value == XMLNS_NS => {
                    return Err(self.malformed("a prefix bound to a reserved namespace"));
                }
                // Namespaces in XML 1.0 cannot undeclare a prefix.
                p if !p.is_empty() && value.is_empty() => {
                    return Err(self.malformed("a prefix bound to no namespace"));
                }
                _ => {}
            }
            if self.bindings.len() >= MAX_BINDINGS {
                return Err(SoapError::TooLarge("namespace declarations"));
            }
            self.bindings.push((prefix, value.trim(), level));
        }
        self.check_prefixed_attributes(&prefixed)?;
        self.open = level;
        let qname = &raw[..name_len];
        let ns = match qname.find(':') {
            Some(i) if &qname[..i] == "xmlns" => {
                return Err(self.malformed("an element named with the xmlns prefix"));
            }
            Some(i) => {
                let ns = self.lookup(&qname[..i]);
                if ns.is_empty() {
                    return Err(self.malformed("an element named with an undeclared prefix"));
                }
                ns
            }
            None => self.lookup(""),
        };
        if empty {
            self.open -= 1;
            self.pop_after_empty = true;
        }
        Ok(Step::Open(Tag {
            raw,
            name_len,
            ns,
            empty,
        }))
    }

    /// Prefixed attributes (prefix, local name): each prefix declared, and no two
    /// attributes with the same namespace and local name (Namespaces in XML 1.0,
    /// "Attributes Unique").
    fn check_prefixed_attributes(&self, prefixed: &[(&'a str, &'a str)]) -> Result<(), SoapError> {
        for (i, (prefix, local)) in prefixed.iter().enumerate() {
            let ns = self.lookup(prefix);
            if ns.is_empty() {
                return Err(self.malformed("an attribute named with an undeclared prefix"));
            }
            if prefixed[..i]
                .iter()
                .any(|(p, l)| l == local && self.lookup(p) == ns)
            {
                return Err(self.malformed("two attributes with the same namespace and name"));
            }
        }
        Ok(())
    }

    /// The attributes of `tag` (the element just opened), namespace declarations
    /// excluded, with namespaces resolved and values normalized.
    pub(crate) fn attributes(&self, tag: &Tag<'a>) -> Result<Vec<Attr>, SoapError> {
        let mut out = Vec::new();
        for a in tag.attributes() {
            let a = a.map_err(|err| self.err(&err))?;
            if a.key.as_namespace_binding().is_some() {
                continue;
            }
            let (local, prefix) = a.key.decompose();
            let ns = match prefix {
                Some(p) => intern(self.lookup(p.into_inner())),
                None => Cow::Borrowed(""),
            };
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|err| self.err(&err))?;
            out.push(Attr {
                ns,
                name: CompactString::new(local.into_inner()),
                value: CompactString::new(value),
            });
        }
        Ok(out)
    }
}

/// Parses a document into its root element.
///
/// # Errors
/// See [`SoapError`].
pub fn parse(xml: &[u8], limits: &Limits) -> Result<Element, SoapError> {
    let mut scanner = Scanner::new(xml, limits)?;
    let mut stack: Vec<Element> = Vec::new();
    loop {
        let Some(step) = scanner.next()? else {
            // The root closed (returned below) before anything else could follow.
            return Err(SoapError::Xml {
                position: 0,
                message: "no root element".into(),
            });
        };
        match step {
            Step::Open(tag) => {
                let el = Element {
                    name: CompactString::new(tag.local_name()),
                    attrs: scanner.attributes(&tag)?,
                    ns: intern(tag.ns),
                    ..Element::default()
                };
                if tag.empty {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => {
                            scanner.finish()?;
                            return Ok(el);
                        }
                    }
                } else {
                    stack.push(el);
                }
            }
            Step::Close => {
                let Some(el) = stack.pop() else {
                    return Err(SoapError::Xml {
                        position: 0,
                        message: "unbalanced end tag".into(),
                    });
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => {
                        scanner.finish()?;
                        return Ok(el);
                    }
                }
            }
            Step::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t);
                }
            }
            Step::Char(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push(c);
                }
            }
        }
    }
}

/// The SOAP version of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoapVersion {
    /// SOAP 1.1.
    Soap11,
    /// SOAP 1.2.
    Soap12,
}

/// A SOAP request: its addressing headers and the body's first element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// 1.1 or 1.2.
    pub version: SoapVersion,
    /// `a:Action`, trimmed.
    pub action: Option<String>,
    /// `a:MessageID`, as sent (echo it in `a:RelatesTo`).
    pub message_id: Option<String>,
    /// `a:To`, trimmed.
    pub to: Option<String>,
    /// `s:Header` (empty when absent).
    pub header: Element,
    /// The first element of `s:Body`.
    pub body: Element,
}

/// Parses a SOAP envelope.
///
/// # Errors
/// See [`SoapError`].
pub fn envelope(xml: &[u8], limits: &Limits) -> Result<Envelope, SoapError> {
    let mut root = parse(xml, limits)?;
    if !root.name.eq_ignore_ascii_case("Envelope") {
        return Err(SoapError::NotSoap("root is not Envelope"));
    }
    let version = match &*root.ns {
        SOAP12 => SoapVersion::Soap12,
        SOAP11 => SoapVersion::Soap11,
        _ => return Err(SoapError::NotSoap("unknown envelope namespace")),
    };
    single(&root, "Header")?;
    single(&root, "Body")?;
    if let Some(header) = root
        .children
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case("Header"))
    {
        for name in ["Action", "MessageID", "To", "Security"] {
            single(header, name)?;
        }
        if let Some(security) = header.child_named("Security") {
            single(security, "BinarySecurityToken")?;
            single(security, "UsernameToken")?;
        }
    }
    // Move the parts out rather than copy them.
    let take = |root: &mut Element, name: &str| {
        root.children
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
            .map(|i| root.children.remove(i))
    };
    let header = take(&mut root, "Header").unwrap_or_default();
    let mut body = take(&mut root, "Body").ok_or(SoapError::NotSoap("no Body"))?;
    if body.children.is_empty() {
        return Err(SoapError::NotSoap("empty Body"));
    }
    if body.children.len() > 1 {
        return Err(SoapError::Duplicate("Body content"));
    }
    let body = body.children.swap_remove(0);
    let text = |n: &str| header.child_named(n).map(|e| e.text().to_owned());
    Ok(Envelope {
        version,
        action: text("Action"),
        message_id: header.child_named("MessageID").map(|e| e.text.clone()),
        to: text("To"),
        body,
        header,
    })
}

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// Appends `text`, escaped, to `out` (no allocation when nothing needs escaping).
pub fn escape_into(out: &mut String, text: &str) {
    let mut last = 0;
    for (i, b) in text.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&apos;",
            _ => continue,
        };
        out.push_str(&text[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&text[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_soap_and_refuses_hostile_input() {
        let e = envelope(
            br#"<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header><a:Action s:mustUnderstand="1"> urn:x </a:Action><a:MessageID>urn:uuid: 1</a:MessageID></s:Header><s:Body><X xmlns="urn:y" k="a&amp;b">t&lt;&#65;<![CDATA[<c>]]></X></s:Body></s:Envelope>"#,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(e.version, SoapVersion::Soap12);
        assert_eq!(e.action.as_deref(), Some("urn:x"));
        assert_eq!(e.message_id.as_deref(), Some("urn:uuid: 1"));
        assert_eq!(
            (&*e.body.ns, e.body.name.as_str(), e.body.text.as_str()),
            ("urn:y", "X", "t<A<c>")
        );
        assert_eq!(e.body.attr("k"), Some("a&b"));
        assert_eq!(envelope(b"", &Limits::default()), Err(SoapError::Empty));
        assert_eq!(envelope(b"  \n", &Limits::default()), Err(SoapError::Empty));
        assert!(matches!(
            envelope(b"<a><b></a>", &Limits::default()),
            Err(SoapError::Xml { .. })
        ));
        assert_eq!(
            envelope(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>", &Limits::default()),
            Err(SoapError::Dtd)
        );
        assert!(matches!(
            envelope(b"<x>&ent;</x>", &Limits::default()),
            Err(SoapError::UnknownEntity(_))
        ));
        assert!(matches!(
            envelope(b"<x/>", &Limits::default()),
            Err(SoapError::NotSoap(_))
        ));
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(
            parse(deep.as_bytes(), &Limits::default()),
            Err(SoapError::TooLarge("depth"))
        );
        let wide = format!("<a>{}</a>", "<b/>".repeat(5000));
        assert_eq!(
            parse(wide.as_bytes(), &Limits::default()),
            Err(SoapError::TooLarge("elements"))
        );
        let big = vec![b' '; 600 * 1024];
        let mut doc = b"<a>".to_vec();
        doc.extend(big);
        doc.extend(b"</a>");
        assert_eq!(
            parse(&doc, &Limits::default()),
            Err(SoapError::TooLarge("bytes"))
        );
    }
}
