//! `winmdm explain`: what a Windows enrollment error code means.
//!
//! ```
//! use winmdm_cli::explain::{explain, Explanation};
//! let found = explain("0x80180014").unwrap();
//! let Explanation::Documented { entry, .. } = &found[0] else { panic!() };
//! assert_eq!(entry.name, "MENROLL_E_DEVICENOTSUPPORTED");
//! ```

use core::fmt::{self, Write as _};

use winmdm_enroll::hresult::{self, Code, ErrorEntry, HResult};

/// The longest input `explain` looks at; longer input is refused, not truncated.
pub const MAX_INPUT: usize = 256;

/// One answer to an `explain` query.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Explanation {
    /// A documented enrollment error.
    Documented {
        /// The table row.
        entry: &'static ErrorEntry,
    },
    /// A `0x8019xxxx` code: an HTTP status the device received and wrapped.
    Http {
        /// The code as given.
        code: HResult,
        /// The HTTP status it wraps.
        status: u16,
    },
}

/// Why `explain` has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExplainError {
    /// Nothing was given.
    #[error("no code given")]
    Empty,
    /// The input is longer than [`MAX_INPUT`] bytes.
    #[error("input too long ({len} bytes; at most {MAX_INPUT})")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
    },
    /// A well-formed number that is not in the table and is not an HTTP status.
    #[error("{code} is not a documented Windows enrollment error")]
    UnknownCode {
        /// The parsed code.
        code: HResult,
    },
    /// A name (or text) that no entry answers to.
    #[error("no enrollment error is named {name:?}")]
    UnknownName {
        /// The name as given (trimmed).
        name: String,
    },
}

/// Looks `input` up: a number in any of the forms [`HResult`]'s `FromStr` accepts, or a
/// name (see [`hresult::lookup_name`]). A name shared by several codes gives them all.
pub fn explain(input: &str) -> Result<Vec<Explanation>, ExplainError> {
    if input.len() > MAX_INPUT {
        return Err(ExplainError::TooLong { len: input.len() });
    }
    let input = input.trim();
    if input.is_empty() {
        return Err(ExplainError::Empty);
    }
    if let Ok(code) = input.parse::<HResult>() {
        if let Some(entry) = code.entry() {
            return Ok(vec![Explanation::Documented { entry }]);
        }
        if let Some(status) = code.http_status() {
            return Ok(vec![Explanation::Http { code, status }]);
        }
        return Err(ExplainError::UnknownCode { code });
    }
    let found: Vec<_> = hresult::lookup_name(input)
        .map(|entry| Explanation::Documented { entry })
        .collect();
    if found.is_empty() {
        Err(ExplainError::UnknownName {
            name: input.to_owned(),
        })
    } else {
        Ok(found)
    }
}

impl fmt::Display for Explanation {
    /// The human-readable block `winmdm explain` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Documented { entry } => {
                write!(f, "{}  {}", entry.code, entry.name)?;
                if let Some(corrected) = entry.corrected_name {
                    write!(f, " (as documented; correct name {corrected})")?;
                }
                writeln!(f)?;
                if let Code::HResult(h) = entry.code {
                    writeln!(f, "  decimal     {} (as i32: {})", h.0, h.as_i32())?;
                }
                if let Some(id) = entry.message_id {
                    writeln!(f, "  message id  {id}")?;
                }
                writeln!(f, "  message     {}", entry.message)?;
                if let Some(subcode) = entry.fault_subcode {
                    writeln!(f, "  soap fault  subcode {subcode}")?;
                }
                if let Some(errortype) = entry.errortype {
                    writeln!(f, "  errortype   {errortype}")?;
                }
                writeln!(f, "  source      {}", entry.source)
            }
            Self::Http { code, status } => {
                let reason = http::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("non-standard status");
                writeln!(f, "{code}  HTTP {status} {reason}")?;
                writeln!(
                    f,
                    "  meaning     the device received HTTP status {status} from the server and \
                     wrapped it as an HRESULT (FACILITY_HTTP, 0x8019xxxx)"
                )?;
                if *status == 200 {
                    writeln!(
                        f,
                        "  hint        a 200 answer the client could not use: check the SOAP or \
                         SyncML body, its Content-Type, and that it is not chunked"
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// Renders every explanation as `winmdm explain` prints them, separated by blank lines.
pub fn render(found: &[Explanation]) -> String {
    let mut out = String::new();
    for (i, e) in found.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = write!(out, "{e}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(input: &str) -> Vec<&'static str> {
        explain(input)
            .unwrap()
            .into_iter()
            .map(|e| match e {
                Explanation::Documented { entry } => entry.name,
                Explanation::Http { .. } => "http",
            })
            .collect()
    }

    #[test]
    fn by_number_and_name() {
        assert_eq!(names("0x80180014"), ["MENROLL_E_DEVICENOTSUPPORTED"]);
        assert_eq!(names("devicecapreached"), ["MENROLL_E_DEVICECAPREACHED"]);
        assert_eq!(names("DeviceCapReached"), ["MENROLL_E_DEVICECAPREACHED"]);
        assert_eq!(names("rejectedTermsOfUse"), ["rejectedTermsOfUse"]);
        // The bare suffix is shared by the MENROLL and DSREG families.
        assert_eq!(
            names("DEVICE_MESSAGE_FORMAT_ERROR"),
            [
                "MENROLL_E_DEVICE_MESSAGE_FORMAT_ERROR",
                "DSREG_E_DEVICE_MESSAGE_FORMAT_ERROR"
            ]
        );
    }

    #[test]
    fn http_codes() {
        let out = explain("0x801900c8").unwrap();
        assert_eq!(
            out,
            [Explanation::Http {
                code: HResult(0x8019_00C8),
                status: 200
            }]
        );
        assert!(render(&out).contains("HTTP 200 OK"));
        assert!(render(&explain("0x801901f7").unwrap()).contains("HTTP 503 Service Unavailable"));
    }

    #[test]
    fn errors() {
        assert_eq!(explain("  "), Err(ExplainError::Empty));
        assert_eq!(
            explain("0x80180011"),
            Err(ExplainError::UnknownCode {
                code: HResult(0x8018_0011)
            })
        );
        assert!(matches!(
            explain("MENROLL_E_NOPE"),
            Err(ExplainError::UnknownName { .. })
        ));
        assert!(matches!(
            explain(&"x".repeat(MAX_INPUT + 1)),
            Err(ExplainError::TooLong { .. })
        ));
    }
}
