//! The one-pass readers against references: the tree builder on the shared scanner
//! against quick-xml's own namespace reader (the builder this crate used before), and the
//! streaming `RequestSecurityToken` reader against the reading through the tree
//! (`winmdm_enroll::fuzzing::rst_one` asserts the two agree).
//!
//! Documents come from a small grammar biased towards enrollment messages: names in any
//! case, prefixes bound, rebound, unbound and reserved, duplicated headers and tokens,
//! text split by comments, CDATA and references, and broken entities.

use std::borrow::Cow;

use compact_str::CompactString;
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use winmdm_enroll::soap::{self, Attr, Element, Limits, SoapError};

/// The tree builder as it was on quick-xml's `NsReader` (which does not check names,
/// prefixes or what surrounds the root: those refusals are ours alone).
fn reference_tree(xml: &[u8], limits: &Limits) -> Result<Element, SoapError> {
    if xml.iter().all(u8::is_ascii_whitespace) {
        return Err(SoapError::Empty);
    }
    if xml.len() > limits.max_bytes {
        return Err(SoapError::TooLarge("bytes"));
    }
    let err = |m: String| SoapError::Xml {
        position: 0,
        message: m,
    };
    let ns_of = |r: &ResolveResult<'_>| -> Cow<'static, str> {
        match r {
            ResolveResult::Bound(ns) => Cow::Owned(ns.into_inner().trim().to_owned()),
            _ => Cow::Borrowed(""),
        }
    };
    let mut reader = NsReader::from_reader(xml);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut count = 0usize;
    loop {
        let (resolved, event) = reader
            .read_resolved_event()
            .map_err(|e| err(e.to_string()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                count += 1;
                if count > limits.max_elements {
                    return Err(SoapError::TooLarge("elements"));
                }
                if stack.len() >= limits.max_depth {
                    return Err(SoapError::TooLarge("depth"));
                }
                let mut el = Element {
                    ns: ns_of(&resolved),
                    name: CompactString::new(e.local_name().into_inner()),
                    ..Element::default()
                };
                for a in e.attributes() {
                    let a = a.map_err(|e| err(e.to_string()))?;
                    if a.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let (ans, local) = reader.resolver().resolve_attribute(a.key);
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| err(e.to_string()))?;
                    el.attrs.push(Attr {
                        ns: ns_of(&ans),
                        name: CompactString::new(local.into_inner()),
                        value: CompactString::new(value),
                    });
                }
                if matches!(event, Event::Empty(_)) {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => return Ok(el),
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| err("unbalanced".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut()
                    && !t.bytes().all(|b| b.is_ascii_whitespace())
                {
                    top.text.push_str(&t);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.into_inner());
                }
            }
            Event::GeneralRef(r) => {
                let ch = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(|e| err(e.to_string()))?
                } else {
                    match &*r {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "apos" => Some('\''),
                        "quot" => Some('"'),
                        _ => None,
                    }
                };
                let ch = ch.ok_or_else(|| SoapError::UnknownEntity(r.to_string()))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push(ch);
                }
            }
            Event::DocType(_) => return Err(SoapError::Dtd),
            Event::Eof => return Err(err("eof".into())),
            Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
        }
    }
}

const NAMES: &[&str] = &[
    "Envelope",
    "envelope",
    "Header",
    "header",
    "Body",
    "MessageID",
    "To",
    "Action",
    "Security",
    "BinarySecurityToken",
    "UsernameToken",
    "Username",
    "Password",
    "RequestSecurityToken",
    "RequestType",
    "AdditionalContext",
    "ContextItem",
    "Value",
    "Other",
];
// In the lists below, the entries after the first `CLEAN_*` make a document unreadable
// (or oddly bound) more often than not.
const PREFIXES: &[&str] = &["", "", "s", "a", "wst", "wsse", "ac", "x", "xml", "xmlns"];
const CLEAN_PREFIXES: usize = 8;
const URIS: &[&str] = &[
    soap::SOAP12,
    soap::SOAP11,
    "http://docs.oasis-open.org/ws-sx/ws-trust/200512",
    " http://docs.oasis-open.org/ws-sx/ws-trust/200512 ",
    "http://schemas.xmlsoap.org/ws/2006/12/authorization",
    soap::WSSE,
    "urn:other",
    // Undeclaring is for the default namespace only (Namespaces in XML 1.0).
    "",
    "http://www.w3.org/XML/1998/namespace",
    "http://www.w3.org/2000/xmlns/",
];
const CLEAN_URIS: usize = 7;
/// Declarations of every clean prefix, made on the root (an undeclared prefix is not
/// namespace-well-formed); the generated nodes rebind them below.
const ROOT_DECLS: &str = " xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" \
     xmlns:a=\"http://www.w3.org/2005/08/addressing\" \
     xmlns:wst=\"http://docs.oasis-open.org/ws-sx/ws-trust/200512\" \
     xmlns:wsse=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\" \
     xmlns:ac=\"http://schemas.xmlsoap.org/ws/2006/12/authorization\" xmlns:x=\"urn:x\"";
const TEXTS: &[&str] = &[
    "",
    "  \n  ",
    "urn:uuid:0d5a1441-5891-453b-becf-a2e5f6ea3749",
    " http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue ",
    "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Renew",
    "ZXlKaGJHY2lPaUpTVXpJMU5pSjkuZXlKemRXSWlPaUl4SW4wLnNpZw==",
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
    "a &amp; b",
    "&#65;&#x42;",
    "<!-- c -->",
    "<![CDATA[ <x> ]]>",
    "x<!-- c -->  y",
    "<?pi data?>",
    "&bogus;",
];
const CLEAN_TEXTS: usize = 13;
const VALUE_TYPES: &[&str] = &[
    "urn:ietf:params:oauth:token-type:jwt",
    "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentUserToken",
    "http://schemas.microsoft.com/windows/pki/2009/01/enrollment#PKCS10",
    " a&amp;b ",
    "&nope;",
];
const CLEAN_VALUE_TYPES: usize = 4;

#[derive(Debug, Clone)]
struct Node {
    prefix: usize,
    name: usize,
    decls: Vec<(usize, usize)>,
    attrs: Vec<(usize, usize)>,
    text: Vec<usize>,
    children: Vec<Self>,
}

/// Nodes; `clean` ones draw only from the readable part of each list.
fn node(clean: bool) -> impl Strategy<Value = Node> {
    let (prefixes, uris, texts, value_types) = if clean {
        (CLEAN_PREFIXES, CLEAN_URIS, CLEAN_TEXTS, CLEAN_VALUE_TYPES)
    } else {
        (PREFIXES.len(), URIS.len(), TEXTS.len(), VALUE_TYPES.len())
    };
    let leaf = (
        0..prefixes,
        0..NAMES.len(),
        prop::collection::vec((0..prefixes, 0..uris), 0..2),
        prop::collection::vec((0..4usize, 0..value_types), 0..3),
        prop::collection::vec(0..texts, 0..3),
    )
        .prop_map(|(prefix, name, decls, attrs, text)| Node {
            prefix,
            name,
            decls,
            attrs,
            text,
            children: Vec::new(),
        });
    leaf.prop_recursive(6, 64, 6, move |inner| {
        (
            0..prefixes,
            0..NAMES.len(),
            prop::collection::vec((0..prefixes, 0..uris), 0..3),
            prop::collection::vec((0..4usize, 0..value_types), 0..2),
            prop::collection::vec(0..texts, 0..2),
            prop::collection::vec(inner, 0..6),
        )
            .prop_map(|(prefix, name, decls, attrs, text, children)| Node {
                prefix,
                name,
                decls,
                attrs,
                text,
                children,
            })
    })
}

fn render(n: &Node, out: &mut String) {
    let qname = match PREFIXES[n.prefix] {
        "" => NAMES[n.name].to_owned(),
        p => format!("{p}:{}", NAMES[n.name]),
    };
    out.push('<');
    out.push_str(&qname);
    for (p, u) in &n.decls {
        match PREFIXES[*p] {
            "" => out.push_str(&format!(" xmlns=\"{}\"", URIS[*u])),
            p => out.push_str(&format!(" xmlns:{p}=\"{}\"", URIS[*u])),
        }
    }
    for (k, v) in &n.attrs {
        let key = ["ValueType", "Name", "s:mustUnderstand", "valuetype"][*k];
        out.push_str(&format!(" {key}=\"{}\"", VALUE_TYPES[*v]));
    }
    if n.children.is_empty() && n.text.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for (i, t) in n.text.iter().enumerate() {
        out.push_str(TEXTS[*t]);
        if let Some(c) = n.children.get(i) {
            render(c, out);
        }
    }
    for c in n.children.iter().skip(n.text.len()) {
        render(c, out);
    }
    out.push_str("</");
    out.push_str(&qname);
    out.push('>');
}

/// An RST-shaped document: the envelope and its parts bound as Windows binds them, with
/// the generated nodes mixed in where the reader looks.
fn rst_shaped(header: &[Node], request: &[Node], context: &[Node]) -> String {
    let mut out = String::from(
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" \
         xmlns:wsse=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\" \
         xmlns:wst=\"http://docs.oasis-open.org/ws-sx/ws-trust/200512\" \
         xmlns:ac=\"http://schemas.xmlsoap.org/ws/2006/12/authorization\" \
         xmlns:a=\"http://www.w3.org/2005/08/addressing\" xmlns:x=\"urn:x\"><s:Header>",
    );
    for n in header {
        render(n, &mut out);
    }
    out.push_str("</s:Header><s:Body><wst:RequestSecurityToken>");
    // A request type and a token where the generated nodes do not put theirs first.
    for (i, n) in request.iter().enumerate() {
        if i == request.len() / 2 {
            out.push_str(
                "<wst:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue</wst:RequestType>\
                 <wsse:BinarySecurityToken ValueType=\"http://schemas.microsoft.com/windows/pki/2009/01/enrollment#PKCS10\">QUJD</wsse:BinarySecurityToken>",
            );
        }
        render(n, &mut out);
    }
    if request.is_empty() {
        out.push_str("<wst:RequestType>.../Recovery</wst:RequestType><BinarySecurityToken/>");
    }
    out.push_str("<ac:AdditionalContext>");
    for n in context {
        render(n, &mut out);
    }
    out.push_str("</ac:AdditionalContext></wst:RequestSecurityToken></s:Body></s:Envelope>");
    out
}

/// Both tree readers on `xml`; whether it read.
fn same_tree(xml: &[u8]) -> bool {
    let limits = Limits::default();
    match (soap::parse(xml, &limits), reference_tree(xml, &limits)) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "{}", String::from_utf8_lossy(xml));
            true
        }
        (Err(_), Err(_)) => false,
        // Well-formedness quick-xml's reader does not check (names, bound prefixes,
        // content around the root, `Char`): `tests/wellformed.rs` holds these refusals
        // to a conforming parser's.
        (Err(e @ SoapError::Xml { .. }), Ok(_)) => {
            if std::env::var_os("WF_REASONS").is_some() {
                eprintln!("WF {e}");
            }
            false
        }
        (a, b) => panic!(
            "the readers disagree on {}: {a:?} / {b:?}",
            String::from_utf8_lossy(xml)
        ),
    }
}

/// Checks `cases` generated documents; returns how many read as a tree and how many as
/// a `RequestSecurityToken` (so a generator that only makes broken documents fails the
/// test rather than passing it vacuously).
fn run(cases: u32, strategy: impl Strategy<Value = String>) -> (u32, u32) {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut trees, mut requests) = (0, 0);
    for _ in 0..cases {
        let xml = strategy
            .new_tree(&mut runner)
            .expect("a document")
            .current();
        trees += u32::from(same_tree(xml.as_bytes()));
        winmdm_enroll::fuzzing::rst_one(xml.as_bytes());
        requests += u32::from(winmdm_enroll::wstep::parse_rst(xml.as_bytes()).is_ok());
    }
    (trees, requests)
}

#[test]
fn any_document_reads_as_the_namespace_reader_reads_it() {
    let (trees, _) = run(
        2000,
        node(false).prop_map(|root| {
            // A root declaring the clean prefixes, around the generated tree.
            let mut xml = format!("<Doc{ROOT_DECLS}>");
            render(&root, &mut xml);
            xml.push_str("</Doc>");
            xml
        }),
    );
    eprintln!("{trees} of 2000 documents read");
    // About one in eight reads: the whole lists bind reserved names, undeclare prefixes
    // and break entities on purpose.
    assert!(trees >= 200, "only {trees} of 2000 documents read");
}

#[test]
fn rst_shaped_documents_read_the_same_streamed_and_through_the_tree() {
    let (trees, requests) = run(
        2000,
        (
            prop::collection::vec(node(true), 0..4),
            prop::collection::vec(node(true), 0..4),
            prop::collection::vec(node(true), 0..6),
            prop::collection::vec(node(false), 0..2),
        )
            .prop_map(|(h, r, mut c, broken)| {
                // Now and then a node from the whole lists, to fail the same way too.
                c.extend(broken.into_iter().take(usize::from(c.len() % 3 == 0)));
                rst_shaped(&h, &r, &c)
            }),
    );
    eprintln!("{trees} of 2000 documents read, {requests} requests");
    assert!(trees >= 200, "only {trees} of 2000 documents read");
    assert!(requests >= 40, "only {requests} of 2000 requests read");
}

#[test]
fn every_sample_and_seed_reads_the_same() {
    for s in winmdm_testkit::samples::load().unwrap() {
        same_tree(s.body.as_bytes());
        winmdm_enroll::fuzzing::rst_one(s.body.as_bytes());
    }
}

#[test]
fn byte_order_marks_declarations_and_comments_before_the_root_read_the_same() {
    let sample = winmdm_testkit::samples::get(11).unwrap().unwrap().body;
    for prefix in [
        "\u{feff}",
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n",
        "\u{feff}<?xml version=\"1.0\"?><!-- c --><?pi x?>\n",
    ] {
        let xml = format!("{prefix}{sample}");
        assert!(same_tree(xml.as_bytes()), "{prefix:?}");
        winmdm_enroll::fuzzing::rst_one(xml.as_bytes());
        assert!(
            winmdm_enroll::wstep::parse_rst(xml.as_bytes()).is_ok(),
            "{prefix:?}"
        );
    }
}

#[test]
fn a_second_body_is_refused() {
    // Two bodies after a header: refused by both readers (the tree once took the last, then
    // both took the first; a filter reading the other copy saw another request).
    let xml = "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Header/>\
               <s:Body><wst:RequestSecurityToken xmlns:wst=\"http://docs.oasis-open.org/ws-sx/ws-trust/200512\">\
               <wst:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue</wst:RequestType>\
               <wsse:BinarySecurityToken xmlns:wsse=\"urn:x\" ValueType=\"v\">QUJD</wsse:BinarySecurityToken>\
               </wst:RequestSecurityToken></s:Body><s:Body><Other/></s:Body></s:Envelope>";
    assert!(matches!(
        winmdm_enroll::wstep::parse_rst(xml.as_bytes()),
        Err(winmdm_enroll::fault::EnrollError::Malformed(
            SoapError::Duplicate("Body")
        ))
    ));
    winmdm_enroll::fuzzing::rst_one(xml.as_bytes());
}

/// Every element enrollment allows once is refused when repeated, with the same fault by
/// the streaming and the tree reader (an RST in a second `Body` enrolled a device; two
/// `Security` headers: the first won, so a filter reading the last saw another token).
#[test]
fn repeated_singletons_are_refused_by_both_readers() {
    let rst = winmdm_testkit::requests::rst_issue(
        "https://mdm.example/EnrollmentServer/Enrollment.svc",
        "eyJ0eXAiOiJKV1QifQ.e30.c2ln",
        winmdm_testkit::pki::DEVICE_RSA2048_CSR.csr_der,
        &[
            ("DeviceID", "0f3e7c2a-5b64-4a19-9d2e-7c8b1a6f4e33"),
            ("EnrollmentType", "Full"),
        ],
    );
    let read = winmdm_enroll::wstep::parse_rst(rst.as_bytes());
    assert!(read.is_ok(), "{read:?}");
    let dup = |open: &str, close: &str| -> String {
        let start = rst.find(open).unwrap_or_else(|| panic!("{open}"));
        let end = rst[start..].find(close).unwrap() + start + close.len();
        let element = &rst[start..end];
        format!("{}{element}{}", &rst[..end], &rst[end..])
    };
    let cases = [
        dup("<s:Body>", "</s:Body>"),
        dup("<s:Header>", "</s:Header>"),
        dup("<wsse:Security", "</wsse:Security>"),
        dup("<a:MessageID>", "</a:MessageID>"),
        dup("<wst:RequestType>", "</wst:RequestType>"),
        dup("<ac:AdditionalContext", "</ac:AdditionalContext>"),
    ];
    for xml in cases {
        let streamed = winmdm_enroll::wstep::parse_rst(xml.as_bytes());
        let tree = winmdm_enroll::wstep::parse_rst_via_tree(xml.as_bytes());
        for r in [&streamed, &tree] {
            match r {
                Err(winmdm_enroll::fault::EnrollError::Malformed(SoapError::Duplicate(_))) => {}
                other => panic!("{other:?}\n{xml}"),
            }
        }
        winmdm_enroll::fuzzing::rst_one(xml.as_bytes());
    }
    // Discovery and policy read through the same envelope.
    let two_bodies = "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body><a/></s:Body><s:Body><b/></s:Body></s:Envelope>";
    assert_eq!(
        soap::envelope(two_bodies.as_bytes(), &Limits::default()).unwrap_err(),
        SoapError::Duplicate("Body")
    );
    assert!(
        soap::SINGLETONS
            .iter()
            .any(|(p, c)| *p == "Header" && c.contains(&"Security"))
    );
}
