//! The published sample corpus, bundled with this crate.
//!
//! Verbatim copies of the sample messages in Microsoft's public documentation (Microsoft
//! Learn and the \[MS-MDE2\]/\[MS-MDM\] Open Specifications) live in this crate's `samples/`
//! directory (its `README.md` gives each file's source) and are compiled into it, so
//! [`load`] and [`get`] need no file system and work the same from a checkout, from the
//! published crate, or from a test binary copied elsewhere.
//!
//! Every sample file starts with a one-line provenance comment that is not part of the
//! message; [`Sample::body`] is the file without it. File names carry the sample's number,
//! its protocol, and markers for documentation defects: `NOT-WELL-FORMED` (the XML is
//! broken on purpose: a negative case) and `FRAGMENT` (prose or `...` placeholders around
//! the message).
//!
//! ```
//! use winmdm_testkit::samples;
//!
//! let rst = samples::get(11)?.expect("sample 11 is bundled");
//! assert!(rst.body.contains("RequestSecurityToken"));
//! assert_eq!(samples::load()?.len(), samples::BUNDLED.len());
//! # Ok::<(), samples::SamplesError>(())
//! ```
//!
//! [`load_from`] reads a corpus of the same layout from a directory of your own.

use std::path::{Path, PathBuf};

/// The reference SyncML client message the codec benches measure (about 4 KiB: a first
/// package with its session alerts and a `Replace` of a dozen DevInfo nodes).
pub const SYNCML_4K_CLIENT: &str = include_str!("../bench/syncml-4k-client.xml");

macro_rules! bundled {
    ($($name:literal),* $(,)?) => {
        /// Every bundled sample file as `(file name, full text)`, in file-name order.
        pub const BUNDLED: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../samples/", $name))),)*
        ];
    };
}

bundled!(
    "01-mde2-discovery-get-request.http",
    "02-mde2-discovery-get-response.http",
    "03-mde2-discover-request-learn.xml",
    "04-mde2-discover-response-federated-learn.xml",
    "05-mde2-discover-request-federated-msmde2.xml",
    "06-mde2-discover-response-federated-msmde2.xml",
    "07-xcep-getpolicies-request-federated-learn.xml",
    "08-xcep-getpoliciesresponse-learn.xml",
    "09-xcep-getpoliciesresponse-msmde2.xml",
    "10-wstep-rst-request-federated-learn.NOT-WELL-FORMED.xml",
    "11-wstep-rst-request-federated-msmde2.xml",
    "12-wstep-rstrc-response-learn.xml",
    "13-provisioningdoc-user-learn.NOT-WELL-FORMED.xml",
    "14-provisioningdoc-device-msmde2.xml",
    "15-wstep-rst-renew-request-learn.xml",
    "16-provisioningdoc-renewal-learn.xml",
    "17-mde2-soap-fault-authorization-learn.xml",
    "18-mde2-soap-fault-devicecapreached-learn.xml",
    "19-entra-tou-request.http",
    "20-entra-tou-accept-redirect-uri.txt",
    "21-entra-tou-error-redirect.http",
    "22-syncml-alert1224-aadusertoken-entra.FRAGMENT.txt",
    "23-syncml-alert1224-loginstatus-entra.FRAGMENT.txt",
    "24-syncml-alert1224-loginstatus-omadm.xml",
    "25-syncml-pkg1-alert1226-unenroll-learn.NOT-WELL-FORMED.xml",
    "26-syncml-alert1226-unenroll-server-initiated-learn.xml",
    "27-syncml-alert1226-app-install-result-learn.xml",
    "28-syncml-alert1226-app-uninstall-result-learn.xml",
    "29-syncml-msmdm-example-client-pkg1.xml",
    "30-syncml-msmdm-example-server-pkg2.xml",
    "31-syncml-msmdm-example-client-pkg3.xml",
    "32-syncml-alert1201-snippet-msmdm.FRAGMENT.txt",
    "33-syncml-alert1224-requestpending-msmde2.xml",
    "34-syncml-alert1224-synctype-msmdm.FRAGMENT.txt",
    "35-syncml-alert1224-deviceprepsync-msmdm.FRAGMENT.txt",
    "36-aadgraph-device-compliance-patch-entra.http",
);

/// Largest sample file [`load_from`] reads (the corpus files are a few KiB).
pub const MAX_SAMPLE_BYTES: u64 = 1 << 20;

/// Why the corpus could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SamplesError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A sample file is larger than [`MAX_SAMPLE_BYTES`].
    #[error("{path} is larger than {MAX_SAMPLE_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A sample file is not UTF-8.
    #[error("{path} is not UTF-8")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// A sample file name does not start with its two-digit number.
    #[error("{name} does not start with a sample number")]
    BadName {
        /// The file name.
        name: String,
    },
}

/// The kind of content a sample holds, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SampleFormat {
    /// An XML document (`.xml`).
    Xml,
    /// An HTTP request or response (`.http`).
    Http,
    /// Text: a URL, or a fragment with prose (`.txt`).
    Text,
}

/// One sample message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The sample number (the file name's first two digits).
    pub number: u32,
    /// The file name.
    pub file_name: String,
    /// The provenance comment (line 1 of the file).
    pub provenance: String,
    /// The message: the file without its provenance line.
    pub body: String,
    /// The content kind.
    pub format: SampleFormat,
    /// The file reproduces a documentation defect that makes the XML not well-formed.
    pub not_well_formed: bool,
    /// The file is a fragment with prose or placeholders around the message.
    pub fragment: bool,
}

impl Sample {
    /// Parses a sample from its file name and full text.
    pub fn from_file_text(file_name: &str, text: &str) -> Result<Self, SamplesError> {
        let number = file_name
            .get(..2)
            .and_then(|d| d.parse::<u32>().ok())
            .ok_or_else(|| SamplesError::BadName {
                name: file_name.to_owned(),
            })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let (provenance, body) = match text.split_once('\n') {
            Some((first, rest)) => (first.trim_end_matches('\r'), rest),
            None => (text, ""),
        };
        let format = if file_name.ends_with(".xml") {
            SampleFormat::Xml
        } else if file_name.ends_with(".http") {
            SampleFormat::Http
        } else {
            SampleFormat::Text
        };
        Ok(Self {
            number,
            file_name: file_name.to_owned(),
            provenance: provenance.to_owned(),
            body: body.to_owned(),
            format,
            not_well_formed: file_name.contains("NOT-WELL-FORMED"),
            fragment: file_name.contains("FRAGMENT"),
        })
    }

    /// The XML parts of the body: for an XML file the whole body; for a fragment, each run
    /// of lines from one starting with `<` to the line that closes the first element
    /// (prose outside it and `...` placeholder lines inside it are dropped).
    pub fn xml_parts(&self) -> Vec<String> {
        if self.format == SampleFormat::Xml {
            return vec![self.body.clone()];
        }
        let mut parts = Vec::new();
        let mut current: Vec<&str> = Vec::new();
        let mut root: Option<String> = None;
        for line in self.body.lines() {
            let trimmed = line.trim();
            if root.is_none() {
                if let Some(rest) = trimmed.strip_prefix('<') {
                    let name: String = rest
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
                        .collect();
                    if name.is_empty() || name.starts_with('!') || name.starts_with('?') {
                        continue;
                    }
                    current.push(line);
                    if trimmed.ends_with("/>") || trimmed.contains(&format!("</{name}>")) {
                        parts.push(current.join("\n"));
                        current.clear();
                    } else {
                        root = Some(name);
                    }
                }
                continue;
            }
            if trimmed.starts_with("...") {
                continue;
            }
            current.push(line);
            if let Some(name) = &root
                && trimmed.contains(&format!("</{name}>"))
            {
                parts.push(current.join("\n"));
                current.clear();
                root = None;
            }
        }
        parts
    }
}

/// Loads every sample from `dir`, sorted by number (the README and other non-sample files
/// are skipped).
pub fn load_from(dir: &Path) -> Result<Vec<Sample>, SamplesError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| SamplesError::Io { path, source }
    };
    let mut samples = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            continue;
        }
        let path = entry.path();
        let len = entry.metadata().map_err(io(&path))?.len();
        if len > MAX_SAMPLE_BYTES {
            return Err(SamplesError::TooLarge { path });
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let text = String::from_utf8(bytes).map_err(|_| SamplesError::NotUtf8 { path })?;
        samples.push(Sample::from_file_text(&name, &text)?);
    }
    samples.sort_by_key(|s| s.number);
    Ok(samples)
}

/// Every bundled sample, sorted by number.
pub fn load() -> Result<Vec<Sample>, SamplesError> {
    let mut samples = BUNDLED
        .iter()
        .map(|(name, text)| Sample::from_file_text(name, text))
        .collect::<Result<Vec<_>, _>>()?;
    samples.sort_by_key(|s| s.number);
    Ok(samples)
}

/// One bundled sample by number.
pub fn get(number: u32) -> Result<Option<Sample>, SamplesError> {
    for (name, text) in BUNDLED {
        let sample = Sample::from_file_text(name, text)?;
        if sample.number == number {
            return Ok(Some(sample));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_provenance_line() {
        let s = Sample::from_file_text(
            "24-syncml-x.xml",
            "<!-- from somewhere -->\r\n<?xml version=\"1.0\"?>\n<SyncML/>\n",
        )
        .unwrap();
        assert_eq!(s.number, 24);
        assert_eq!(s.provenance, "<!-- from somewhere -->");
        assert!(s.body.starts_with("<?xml"));
        assert!(!s.not_well_formed && !s.fragment);
    }

    #[test]
    fn fragment_xml_parts_skip_prose() {
        let s = Sample::from_file_text(
            "22-x.FRAGMENT.txt",
            "# prov\nSome prose.\n<Alert>\n  <CmdID>1</CmdID>\n  ...\n</Alert>\nmore prose\n",
        )
        .unwrap();
        assert_eq!(s.xml_parts(), ["<Alert>\n  <CmdID>1</CmdID>\n</Alert>"]);
    }

    /// The bundled list is exactly the `samples/` directory: a file added there without a
    /// line in [`bundled!`] (or the reverse) fails here.
    #[test]
    fn bundled_list_matches_the_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        let on_disk = load_from(&dir).unwrap();
        let bundled = load().unwrap();
        assert_eq!(on_disk, bundled);
        assert_eq!(bundled.len(), 36);
        let numbers: Vec<u32> = bundled.iter().map(|s| s.number).collect();
        assert_eq!(numbers, (1..=36).collect::<Vec<_>>());
    }

    #[test]
    fn bench_message_is_a_syncml_document() {
        assert!(SYNCML_4K_CLIENT.starts_with("<?xml"));
        assert!(SYNCML_4K_CLIENT.contains("<SyncML"));
        assert!((3_000..6_000).contains(&SYNCML_4K_CLIENT.len()));
    }

    #[test]
    fn bad_name() {
        assert!(matches!(
            Sample::from_file_text("README.md", "x"),
            Err(SamplesError::BadName { .. })
        ));
    }
}
