//! Reading the command's inputs: every file (and standard input) under one size cap, so
//! `/dev/zero`, a FIFO or a huge file gives an error instead of exhausting memory.

use std::io::Read;

/// The largest input the command reads: 16 MiB (SyncML messages, SOAP documents, CSRs,
/// PEM files and JWKS are far smaller).
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Reads `arg` — a file path, or `-` for standard input — up to [`MAX_INPUT_BYTES`].
///
/// # Errors
/// A message for a person: the file cannot be read, or it is larger than the cap.
pub fn read(arg: &str) -> Result<Vec<u8>, String> {
    if arg == "-" {
        read_capped(std::io::stdin().lock(), "standard input")
    } else {
        let file = std::fs::File::open(arg).map_err(|e| format!("{arg}: {e}"))?;
        read_capped(file, arg)
    }
}

/// [`read`], as UTF-8 text.
///
/// # Errors
/// As [`read`], and when the input is not UTF-8.
pub fn read_text(arg: &str) -> Result<String, String> {
    String::from_utf8(read(arg)?).map_err(|_| format!("{arg} is not UTF-8"))
}

fn read_capped(source: impl Read, what: &str) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    source
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("reading {what}: {e}"))?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!(
            "{what} is larger than {} MiB",
            MAX_INPUT_BYTES >> 20
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_and_oversized_inputs_are_refused() {
        // /dev/zero never ends: the cap stops it.
        if std::path::Path::new("/dev/zero").exists() {
            let err = read("/dev/zero").unwrap_err();
            assert!(err.contains("larger than 16 MiB"), "{err}");
        }
        let exact = vec![b'x'; usize::try_from(MAX_INPUT_BYTES).unwrap()];
        assert_eq!(read_capped(&exact[..], "x").unwrap().len(), exact.len());
        let over = vec![b'x'; exact.len() + 1];
        assert!(read_capped(&over[..], "x").is_err());
        assert!(
            read("/no/such/file")
                .unwrap_err()
                .starts_with("/no/such/file: ")
        );
    }
}
