//! Loader for the published sample corpus (`shared/protocol/samples`).
//!
//! Every sample file starts with a one-line provenance comment that is not part of the
//! message; [`Sample::body`] is the file without it. File names carry the sample's number,
//! its protocol, and markers for documentation defects: `NOT-WELL-FORMED` (the XML is
//! broken on purpose: a negative case) and `FRAGMENT` (prose or `...` placeholders around
//! the message).
//!
//! The directory is found from `WINMDM_SAMPLES_DIR`, else by walking up from the current
//! directory and from this crate's manifest directory looking for
//! `shared/protocol/samples`.

use std::path::{Path, PathBuf};

/// Environment variable naming the samples directory explicitly.
pub const SAMPLES_DIR_ENV: &str = "WINMDM_SAMPLES_DIR";

/// Largest sample file the loader reads (the corpus files are a few KiB).
pub const MAX_SAMPLE_BYTES: u64 = 1 << 20;

/// Why the corpus could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SamplesError {
    /// No samples directory was found.
    #[error(
        "samples directory not found (set {SAMPLES_DIR_ENV} or keep shared/ beside the repository)"
    )]
    NotFound,
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

/// Finds the samples directory (see the module docs).
pub fn samples_dir() -> Result<PathBuf, SamplesError> {
    if let Some(dir) = std::env::var_os(SAMPLES_DIR_ENV) {
        let dir = PathBuf::from(dir);
        return if dir.is_dir() {
            Ok(dir)
        } else {
            Err(SamplesError::NotFound)
        };
    }
    let starts = [
        std::env::current_dir().ok(),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
    ];
    for start in starts.into_iter().flatten() {
        for ancestor in start.ancestors() {
            let candidate = ancestor.join("shared").join("protocol").join("samples");
            if candidate.is_dir() {
                return Ok(candidate);
            }
        }
    }
    Err(SamplesError::NotFound)
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

/// Loads every sample from [`samples_dir`].
pub fn load() -> Result<Vec<Sample>, SamplesError> {
    load_from(&samples_dir()?)
}

/// Loads one sample by number.
pub fn get(number: u32) -> Result<Option<Sample>, SamplesError> {
    Ok(load()?.into_iter().find(|s| s.number == number))
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

    #[test]
    fn bad_name() {
        assert!(matches!(
            Sample::from_file_text("README.md", "x"),
            Err(SamplesError::BadName { .. })
        ));
    }
}
