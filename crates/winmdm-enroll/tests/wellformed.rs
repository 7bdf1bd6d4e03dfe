//! The SOAP reader refuses what is not well-formed XML 1.0 with namespaces, and reads
//! what is: a test per reported defect, then a differential test over generated
//! documents against libxml2 (`xmllint`), a conforming XML parser.
//!
//! The documents are the published samples and hand-made seeds, mutated: markup
//! characters, names, references, characters outside `Char`, comments, declarations
//! and processing instructions inserted; spans deleted or repeated; content added
//! before and after the root. Both parsers must accept and refuse the same documents,
//! except where the reader refuses on purpose what XML allows, each checked by its error:
//! a DTD, the [`Limits`], an encoding other than UTF-8, a reference inside a namespace name.
//! libxml2's URI check on namespace names is not a well-formedness rule and is not counted.

use std::io::Write as _;
use std::path::PathBuf;

use winmdm_enroll::soap::{self, Limits, SoapError};

fn reads(xml: &str) -> Result<(), SoapError> {
    soap::parse(xml.as_bytes(), &Limits::default()).map(drop)
}

fn refused(xml: &str) {
    assert!(
        matches!(reads(xml), Err(SoapError::Xml { .. })),
        "read, or refused for another reason: {xml}: {:?}",
        reads(xml)
    );
}

#[test]
fn element_names_are_checked() {
    // A missing space turned an attribute into part of the name.
    refused(r#"<a><algorithmOIDReferencexsi:nil="true"/></a>"#);
    refused("<a><1b/></a>");
    refused("<a><b:c:d xmlns:b=\"urn:b\"/></a>");
    refused("<a b=\"1\"c=\"2\"/>");
    refused("<a b=1/>");
    refused("<a b/>");
    assert!(reads("<a><b.c-d_é/></a>").is_ok());
}

#[test]
fn undeclared_prefixes_are_refused() {
    refused("<s:Envelope/>");
    refused("<a><wsse:Security/></a>");
    refused("<a p:x=\"1\"/>");
    refused("<a xmlns:p=\"\"/>");
    refused("<xmlns:a/>");
    refused("<a xmlns:p=\"urn:u\" xmlns:q=\"urn:u\" p:x=\"1\" q:x=\"2\"/>");
    assert!(reads("<a xmlns:p=\"urn:u\"><p:b p:x=\"1\" xml:lang=\"en\"/></a>").is_ok());
}

#[test]
fn content_around_the_root_is_checked() {
    refused("<a/><b/>");
    refused("<a/>text");
    refused("<a/>&amp;");
    refused("<a/><![CDATA[x]]>");
    refused("text<a/>");
    refused("<a/><?xml version=\"1.0\"?>");
    refused(" <?xml version=\"1.0\"?><a/>");
    assert!(
        reads(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- c --><?pi x?>\n<a/>\n<!-- after -->\n"
        )
        .is_ok()
    );
    // The envelope reader refuses a second envelope after the first.
    let sample = winmdm_testkit::samples::get(11).unwrap().unwrap().body;
    let doubled = format!("{sample}{sample}");
    assert!(soap::envelope(sample.as_bytes(), &Limits::default()).is_ok());
    assert!(matches!(
        soap::envelope(doubled.as_bytes(), &Limits::default()),
        Err(SoapError::Xml { .. })
    ));
}

#[test]
fn characters_outside_char_are_refused() {
    for bad in [
        "<a>\u{0}</a>",
        "<a>\u{1}</a>",
        "<a>\u{C}</a>",
        "<a>\u{FFFE}</a>",
        "<a b=\"\u{1B}\"/>",
        "<a>&#0;</a>",
        "<a>&#x1;</a>",
        "<a b=\"&#xFFFF;\"/>",
        "<a><!-- \u{1} --></a>",
        "<a><![CDATA[\u{1}]]></a>",
        "<a>]]></a>",
        "<a><!-- a -- b --></a>",
    ] {
        refused(bad);
    }
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// What mutations insert.
const TOKENS: &[&str] = &[
    "<",
    ">",
    "&",
    ";",
    ":",
    "\"",
    "'",
    "=",
    " ",
    "/",
    "!",
    "?",
    "-",
    "]]>",
    "--",
    "x",
    "1",
    "\u{0}",
    "\u{1}",
    "\u{B}",
    "\u{C}",
    "\u{7F}",
    "\u{85}",
    "\u{FFFE}",
    "\u{FFFD}",
    "é",
    "\u{B7}",
    "\u{300}",
    "\t",
    "\r\n",
    "&amp;",
    "&lt;",
    "&#0;",
    "&#x1F;",
    "&#xD800;",
    "&#65;",
    "&#x10FFFF;",
    "&bogus;",
    "&#;",
    "<!-- c -->",
    "<!-- a--b -->",
    "<?pi x?>",
    "<?xml x?>",
    "<?xml version=\"1.0\"?>",
    "<![CDATA[x]]>",
    " xmlns:p=\"\"",
    " xmlns:p=\"urn:p\"",
    " p:a=\"1\"",
    " a=\"1\"",
    " b='2'",
    "<p:x/>",
    "<x/>",
    "</x>",
    "<x>",
    "xmlns:",
    "s:",
    "xml:",
    "a:b:",
    " xmlns=\"\"",
];

/// Seeds besides the samples: small documents exercising the prolog and namespaces.
const SEEDS: &[&str] = &[
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a xmlns=\"urn:a\" xmlns:p=\"urn:p\"><p:b p:c=\"1\" d='2'>t&amp;<![CDATA[<x>]]></p:b><!-- c --></a>\n",
    "<r><x:y xmlns:x=\"urn:x\" x:z=\"&#65;\"/><?pi data?></r>",
    "\u{FEFF}<?xml version='1.0' standalone='yes'?><e a=\"1\" b=\"2\">é · \u{10000}</e>",
];

fn mutate(rng: &mut Rng, doc: &str) -> String {
    let mut s = doc.to_owned();
    for _ in 0..=rng.below(3) {
        let boundaries: Vec<usize> = (0..=s.len()).filter(|i| s.is_char_boundary(*i)).collect();
        let at = boundaries[rng.below(boundaries.len())];
        match rng.below(6) {
            0..=2 => s.insert_str(at, rng.pick(TOKENS)),
            3 => {
                let end = boundaries
                    .iter()
                    .copied()
                    .filter(|b| *b > at)
                    .nth(rng.below(8))
                    .unwrap_or(at);
                s.replace_range(at..end, "");
            }
            4 => {
                let end = boundaries
                    .iter()
                    .copied()
                    .filter(|b| *b > at)
                    .nth(rng.below(24))
                    .unwrap_or(at);
                let span = s[at..end].to_owned();
                s.insert_str(end, &span);
            }
            _ => {
                if rng.below(2) == 0 {
                    s.push_str(rng.pick(&[
                        "x",
                        "<a/>",
                        "<!-- c -->",
                        " \n",
                        "&amp;",
                        "<?pi?>",
                        "<![CDATA[]]>",
                        "</a>",
                    ]));
                } else {
                    s.insert_str(
                        0,
                        rng.pick(&["x", "<a/>", "<!-- c -->", " \n", "<?pi?>", "\u{FEFF}"]),
                    );
                }
            }
        }
    }
    s
}

/// Refusals that are ours alone (XML allows the document); `None` for a verdict on
/// well-formedness.
fn deliberate(e: &SoapError) -> Option<&'static str> {
    match e {
        SoapError::Dtd => Some("DTD"),
        SoapError::TooLarge(_) => Some("limits"),
        SoapError::Xml { message, .. } if message.contains("encoding other than UTF-8") => {
            Some("encoding")
        }
        SoapError::Xml { message, .. } if message.contains("reference in a namespace name") => {
            Some("reference in a namespace name")
        }
        _ => None,
    }
}

#[test]
fn the_reader_and_libxml2_accept_and_refuse_the_same_documents() {
    if !winmdm_testkit::tools::require_xmllint() {
        return;
    }
    let mut docs: Vec<String> = winmdm_testkit::samples::load()
        .unwrap()
        .into_iter()
        .map(|s| s.body)
        .collect();
    docs.extend(SEEDS.iter().map(|s| (*s).to_owned()));
    let mut rng = Rng(0x5eed_0017);
    let seeds = docs.len();
    for i in 0..3000 {
        let seed = docs[i % seeds].clone();
        docs.push(mutate(&mut rng, &seed));
    }
    let dir = std::env::temp_dir().join(format!("winmdm-wf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let paths: Vec<PathBuf> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let p = dir.join(format!("{i}.xml"));
            std::fs::File::create(&p)
                .unwrap()
                .write_all(d.as_bytes())
                .unwrap();
            p
        })
        .collect();
    // One xmllint over every file; an error line names its file.
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .args(&paths)
        .output()
        .expect("xmllint runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut libxml_refuses = vec![false; docs.len()];
    for line in stderr.lines() {
        // libxml2 also checks that namespace names are URIs; Namespaces in XML does not
        // make that a well-formedness rule (expat does not check it), and the reader
        // trims the white space documentation samples carry around them.
        if !line.contains(" error : ") || line.contains("is not a valid URI") {
            continue;
        }
        if let Some(i) = line
            .strip_prefix(dir.to_str().unwrap())
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.split_once(".xml:"))
            .and_then(|(n, _)| n.parse::<usize>().ok())
        {
            libxml_refuses[i] = true;
        }
    }
    let (mut agree_ok, mut agree_err, mut excluded) = (0, 0, 0);
    let mut disagreements = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let ours = reads(doc);
        match (&ours, libxml_refuses[i]) {
            (Ok(()), false) => agree_ok += 1,
            (Err(_), true) => agree_err += 1,
            (Err(e), false) if deliberate(e).is_some() => excluded += 1,
            _ => disagreements.push(format!(
                "{i}: ours {ours:?}, libxml2 refuses: {}\n{doc:?}",
                libxml_refuses[i]
            )),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "{} documents: {agree_ok} read by both, {agree_err} refused by both, {excluded} refused on purpose",
        docs.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements with libxml2:\n{}",
        disagreements.len(),
        disagreements
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    // Neither side of the comparison is vacuous.
    assert!(
        agree_ok > 400 && agree_err > 1500,
        "{agree_ok} / {agree_err}"
    );
}

#[test]
fn the_fuzz_oracle_catches_what_the_readers_must_refuse() {
    let sample = winmdm_testkit::samples::get(11).unwrap().unwrap().body;
    winmdm_enroll::fuzzing::assert_accepted(sample.as_bytes());
    let two_bodies = sample.replacen("<s:Body>", "<s:Body></s:Body><s:Body>", 1);
    let two_tokens = sample.replacen(
        "</wsse:Security>",
        "<wsse:BinarySecurityToken/></wsse:Security>",
        1,
    );
    for bad in [
        two_bodies.as_str(),
        two_tokens.as_str(),
        "<a/>x",
        "<a/><b/>",
        "<p:a/>",
        "<a>\u{1}</a>",
        "<a:b:c xmlns:a=\"urn:a\"/>",
    ] {
        let caught = std::panic::catch_unwind(|| {
            winmdm_enroll::fuzzing::assert_accepted(bad.as_bytes());
        });
        assert!(caught.is_err(), "the oracle passed {bad}");
    }
}
