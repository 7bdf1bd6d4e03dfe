//! A corpus of real Windows traffic, published by others, for replay tests.
//!
//! `testdata/real-windows/` holds messages a real Windows 10 device (builds 19043 and
//! 19045) sent to an open-source MDM server, and the server's answers, as that server's
//! authors published them (MIT). `PROVENANCE.md` there gives each file's source, commit,
//! licence and what it shows. Per message there may be:
//!
//! - `NAME.xml`: the body as published (the server re-indented what it logged);
//! - `NAME.wire.xml`: the body as it went over the wire (compact; its length equals the
//!   logged `Content-Length`), device messages only;
//! - `NAME.headers.txt`: the request line and headers as logged.
//!
//! Kinds are the directories: `discovery-request`, `discovery-response`,
//! `policy-request`, `enroll-request`, `provisioning`, `syncml-device`, `syncml-server`,
//! `other` (XCEP and WSTEP responses).

use std::path::PathBuf;

/// One captured message.
#[derive(Debug, Clone)]
pub struct Capture {
    /// Its kind (directory).
    pub kind: &'static str,
    /// The file name without `.xml` (`fleetpoc-ngrok-08-s1-m1`, `….wire`).
    pub name: String,
    /// The body.
    pub body: Vec<u8>,
    /// The request line and headers, when they were published.
    pub headers: Option<String>,
}

impl Capture {
    /// The body as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("")
    }

    /// Whether this is the wire reconstruction (`NAME.wire.xml`).
    pub fn is_wire(&self) -> bool {
        self.name.ends_with(".wire")
    }

    /// The request line (`POST /path?query HTTP/1.1`), when published.
    pub fn request_line(&self) -> Option<&str> {
        self.headers.as_deref().and_then(|h| h.lines().next())
    }

    /// The path and query of the request line.
    pub fn request_target(&self) -> Option<&str> {
        self.request_line()?.split(' ').nth(1)
    }

    /// A header's value (names compared without case), when published.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.as_deref()?.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// The corpus directory.
pub fn dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/real-windows"
    ))
}

/// The kinds of message in the corpus.
pub const KINDS: &[&str] = &[
    "discovery-request",
    "discovery-response",
    "policy-request",
    "enroll-request",
    "provisioning",
    "syncml-device",
    "syncml-server",
    "other",
];

/// Every message of `kind` (published and wire forms), sorted by name.
///
/// # Errors
/// When the directory cannot be read.
pub fn load(kind: &str) -> std::io::Result<Vec<Capture>> {
    let Some(kind) = KINDS.iter().copied().find(|k| *k == kind) else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no kind {kind}"),
        ));
    };
    let d = dir().join(kind);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&d)? {
        let path = entry?.path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some(name) = file.strip_suffix(".xml") else {
            continue;
        };
        let base = name.strip_suffix(".wire").unwrap_or(name);
        let headers = std::fs::read_to_string(d.join(format!("{base}.headers.txt"))).ok();
        out.push(Capture {
            kind,
            name: name.to_owned(),
            body: std::fs::read(&path)?,
            headers,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
