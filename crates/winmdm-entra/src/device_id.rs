//! Entra device IDs, compared as GUIDs whatever their spelling (see [`DeviceId`]).

use std::fmt;

/// An Entra device ID: a GUID (16 bytes in text order), compared as one whatever its spelling.
///
/// One device ID reaches an MDM in several spellings:
///
/// | where | spelling | example |
/// |---|---|---|
/// | the token's `deviceid` claim, Graph's `deviceId` | dashed, lower case | `3a7c25db-7708-4f8f-b61e-2749066c1f27` |
/// | registry values, `StringFromGUID2` | braced, upper case | `{3A7C25DB-7708-4F8F-B61E-2749066C1F27}` |
/// | tools that drop the dashes (.NET's `"N"` format) | 32 hex digits, text order | `3A7C25DB77084F8FB61E2749066C1F27` |
/// | Windows' `DeviceID` context item and CSR extension, as published Windows 10/11 captures read | 32 hex digits of the GUID's bytes as Windows stores them: the first three fields little-endian | `DB257C3A08778F4FB61E2749066C1F27` |
///
/// All four name the same GUID. The last one is why this type exists: read in text order,
/// the published capture's `DB257C3A08778F4FB61E2749066C1F27` would be a GUID of version 8;
/// read as Windows' in-memory bytes it is `3a7c25db-7708-4f8f-b61e-2749066c1f27`, a random
/// (version 4, RFC 4122 variant) GUID like every Entra device ID.
///
/// So the rules are:
///
/// * [`DeviceId::parse`] reads the dashed and braced spellings, and 32 hex digits **in
///   text order**: a string on its own is read the way it is written.
/// * [`DeviceId::from_windows_hex`] reads 32 hex digits as Windows' in-memory bytes.
/// * [`DeviceId::is_named_by`] answers whether a spelling a request carries names a device
///   ID already known from verified evidence (the token's claim): dashed, braced, or 32 hex
///   digits in either order. The comparison cannot be steered: both readings are derived
///   from the verified ID, so no string names two different verified devices unless their
///   IDs are each other's byte swap, which [`DeviceId::is_named_by`] then accepts for both
///   (documented and tested).
/// * [`Display`](std::fmt::Display) writes the claim's spelling (dashed, lower case), which
///   is also what Graph's `devices(deviceId='…')` key takes.
///
/// ```
/// use winmdm_entra::DeviceId;
///
/// let claim = DeviceId::parse("3a7c25db-7708-4f8f-b61e-2749066c1f27")?;
/// assert!(claim.is_named_by("DB257C3A08778F4FB61E2749066C1F27")); // Windows' CSR extension
/// assert!(claim.is_named_by("{3A7C25DB-7708-4F8F-B61E-2749066C1F27}"));
/// assert!(!claim.is_named_by("0f3e7c2a-5b64-4a19-9d2e-7c8b1a6f4e33"));
/// assert_eq!(claim, DeviceId::from_windows_hex("DB257C3A08778F4FB61E2749066C1F27")?);
/// assert_eq!(claim.to_string(), "3a7c25db-7708-4f8f-b61e-2749066c1f27");
/// # Ok::<(), winmdm_entra::DeviceIdError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId([u8; 16]);

/// Why a string is not a device ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceIdError {
    /// Not one of the accepted spellings (see [`DeviceId`]).
    #[error("not a GUID (8-4-4-4-12 hex digits, braced or not, or 32 hex digits)")]
    NotAGuid,
}

impl DeviceId {
    /// The 16 bytes in text order (the order the dashed spelling writes them).
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes in text order.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Reads the dashed spelling (`8-4-4-4-12`), the braced one (`{…}`), or 32 hex digits
    /// in text order; any case.
    ///
    /// # Errors
    /// [`DeviceIdError::NotAGuid`] for anything else (whitespace included).
    pub fn parse(s: &str) -> Result<Self, DeviceIdError> {
        let s = s
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'))
            .unwrap_or(s);
        let digits: Vec<u8> = match s.len() {
            32 => s.bytes().collect(),
            36 => {
                let b = s.as_bytes();
                if [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
                    return Err(DeviceIdError::NotAGuid);
                }
                s.bytes().filter(|&c| c != b'-').collect()
            }
            _ => return Err(DeviceIdError::NotAGuid),
        };
        hex16(&digits).map(Self)
    }

    /// Reads 32 hex digits as the GUID's bytes as Windows stores them (the first three
    /// fields little-endian), the spelling of Windows' `DeviceID` context item and CSR
    /// extension.
    ///
    /// # Errors
    /// [`DeviceIdError::NotAGuid`] unless `s` is exactly 32 hex digits.
    pub fn from_windows_hex(s: &str) -> Result<Self, DeviceIdError> {
        if s.len() != 32 {
            return Err(DeviceIdError::NotAGuid);
        }
        hex16(s.as_bytes()).map(|b| Self(swap_fields(b)))
    }

    /// Whether `spelling` names this device ID: the dashed or braced spelling, or 32 hex
    /// digits in text order or in Windows' in-memory order (see [`DeviceId`]).
    pub fn is_named_by(&self, spelling: &str) -> bool {
        Self::readings(spelling).any(|id| id == *self)
    }

    /// Every GUID `spelling` can name: one for the dashed and braced spellings, two for 32
    /// hex digits (text order first, then Windows' in-memory order; the same one when the
    /// swap changes nothing), none for anything else.
    pub fn readings(spelling: &str) -> impl Iterator<Item = Self> {
        let text = Self::parse(spelling).ok();
        let windows = Self::from_windows_hex(spelling)
            .ok()
            .filter(|w| Some(*w) != text);
        text.into_iter().chain(windows)
    }

    /// Whether `spelling` names exactly one GUID (dashed or braced): 32 hex digits are
    /// ambiguous between text order and Windows' order.
    pub fn is_unambiguous(spelling: &str) -> bool {
        Self::readings(spelling).count() == 1 && Self::from_windows_hex(spelling).is_err()
    }

    /// 32 upper-case hex digits in Windows' in-memory order: how Windows writes the
    /// `DeviceID` context item (for simulators and tests).
    pub fn to_windows_hex(&self) -> String {
        swap_fields(self.0)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }
}

/// Text order ↔ Windows' in-memory order: the first three fields (4, 2 and 2 bytes) are
/// byte-reversed; the last 8 bytes stay. Its own inverse.
fn swap_fields(mut b: [u8; 16]) -> [u8; 16] {
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b
}

fn hex16(digits: &[u8]) -> Result<[u8; 16], DeviceIdError> {
    fn nibble(c: u8) -> Result<u8, DeviceIdError> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(DeviceIdError::NotAGuid),
        }
    }
    if digits.len() != 32 {
        return Err(DeviceIdError::NotAGuid);
    }
    let mut out = [0u8; 16];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Ok(out)
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

impl std::str::FromStr for DeviceId {
    type Err = DeviceIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for DeviceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The DeviceID of a published Windows 10 capture.
    const CAPTURE: &str = "DB257C3A08778F4FB61E2749066C1F27";

    fn version(id: &DeviceId) -> u8 {
        id.0[6] >> 4
    }

    fn rfc4122_variant(id: &DeviceId) -> bool {
        id.0[8] & 0xC0 == 0x80
    }

    #[test]
    fn the_capture_is_a_random_guid_only_in_windows_byte_order() {
        let text = DeviceId::parse(CAPTURE).unwrap();
        let windows = DeviceId::from_windows_hex(CAPTURE).unwrap();
        assert_eq!(
            version(&text),
            8,
            "read in text order: not an Entra-style GUID"
        );
        assert_eq!(version(&windows), 4);
        assert!(rfc4122_variant(&windows));
        assert_eq!(windows.to_string(), "3a7c25db-7708-4f8f-b61e-2749066c1f27");
        assert_eq!(windows.to_windows_hex(), CAPTURE);
    }

    #[test]
    fn every_spelling_of_one_id_is_the_same_id() {
        let id = DeviceId::parse("3a7c25db-7708-4f8f-b61e-2749066c1f27").unwrap();
        for s in [
            "3A7C25DB-7708-4F8F-B61E-2749066C1F27",
            "{3a7c25db-7708-4f8f-b61e-2749066c1f27}",
            "{3A7C25DB-7708-4F8F-B61E-2749066C1F27}",
            "3a7c25db77084f8fb61e2749066c1f27",
        ] {
            assert_eq!(DeviceId::parse(s), Ok(id), "{s}");
            assert!(id.is_named_by(s), "{s}");
        }
        assert!(id.is_named_by(CAPTURE));
        assert!(id.is_named_by(&CAPTURE.to_ascii_lowercase()));
        assert_eq!("3A7C25DB-7708-4F8F-B61E-2749066C1F27".parse(), Ok(id));
    }

    #[test]
    fn other_devices_and_malformed_spellings_are_not_named() {
        let id = DeviceId::parse("3a7c25db-7708-4f8f-b61e-2749066c1f27").unwrap();
        for s in [
            "0f3e7c2a-5b64-4a19-9d2e-7c8b1a6f4e33",
            "3a7c25db-7708-4f8f-b61e-2749066c1f28",
            "3a7c25db-7708-4f8f-b61e2749066c1f27-",
            "3a7c25db77084f8f-b61e-2749066c1f27",
            " 3a7c25db-7708-4f8f-b61e-2749066c1f27",
            "{3a7c25db-7708-4f8f-b61e-2749066c1f27",
            "3a7c25db-7708-4f8f-b61e-2749066c1f2g",
            "+a7c25db-7708-4f8f-b61e-2749066c1f27",
            "",
            "DB257C3A08778F4FB61E2749066C1F2",
            "DB257C3A08778F4FB61E2749066C1F27\0",
            "ＤB257C3A08778F4FB61E2749066C1F2",
        ] {
            assert!(!id.is_named_by(s), "{s:?}");
        }
        assert_eq!(DeviceId::parse("x"), Err(DeviceIdError::NotAGuid));
        assert_eq!(
            DeviceId::from_windows_hex("3a7c25db-7708-4f8f-b61e-2749066c1f27"),
            Err(DeviceIdError::NotAGuid)
        );
    }

    #[test]
    fn a_byte_swapped_pair_is_the_one_documented_ambiguity() {
        // Two IDs that are each other's field swap are both named by each undashed string.
        let a = DeviceId::from_windows_hex(CAPTURE).unwrap();
        let b = DeviceId::parse(CAPTURE).unwrap();
        assert_ne!(a, b);
        assert!(a.is_named_by(CAPTURE) && b.is_named_by(CAPTURE));
        // The dashed and braced spellings are never ambiguous.
        assert!(!a.is_named_by(&b.to_string()) && !b.is_named_by(&a.to_string()));
    }

    #[test]
    fn readings_of_each_spelling() {
        let text = DeviceId::parse(CAPTURE).unwrap();
        let windows = DeviceId::from_windows_hex(CAPTURE).unwrap();
        assert_eq!(
            DeviceId::readings(CAPTURE).collect::<Vec<_>>(),
            [text, windows]
        );
        let dashed = windows.to_string();
        assert_eq!(DeviceId::readings(&dashed).collect::<Vec<_>>(), [windows]);
        assert!(DeviceId::is_unambiguous(&dashed));
        assert!(!DeviceId::is_unambiguous(CAPTURE));
        assert_eq!(DeviceId::readings("urn:uuid:x").count(), 0);
        // A GUID its own byte swap (symmetric fields) has one reading.
        let same = "00000000000000000123456789abcdef";
        assert_eq!(DeviceId::readings(same).count(), 1);
    }

    #[test]
    fn serde_writes_the_claim_spelling_and_reads_any() {
        let id = DeviceId::from_windows_hex(CAPTURE).unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"3a7c25db-7708-4f8f-b61e-2749066c1f27\"");
        let back: DeviceId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<DeviceId>("\"nope\"").is_err());
        assert_eq!(
            format!("{id:?}"),
            "DeviceId(3a7c25db-7708-4f8f-b61e-2749066c1f27)"
        );
    }
}
