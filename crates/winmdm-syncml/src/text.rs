//! [`Text`]: the string type of the SyncML model.

use core::borrow::Borrow;
use core::fmt;
use core::ops::Deref;

use compact_str::{CompactString, ToCompactString};

/// A string value of a SyncML message.
///
/// Values up to 24 bytes — command IDs, status and alert codes, formats, most node URIs —
/// are stored inline without a heap allocation, which keeps decoding close to the speed of
/// the XML scan. It dereferences to `str` and compares with `str`/`String` directly.
///
/// ```
/// use winmdm_syncml::Text;
/// let t = Text::from("./DevInfo/Man");
/// assert_eq!(t, "./DevInfo/Man");
/// assert!(t.starts_with("./DevInfo"));
/// assert_eq!(String::from(t), "./DevInfo/Man");
/// ```
#[derive(
    Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Text(CompactString);

impl Text {
    /// A copy of `s`.
    pub fn new(s: &str) -> Self {
        Self(CompactString::new(s))
    }

    /// The text of a number (no allocation).
    pub fn from_u32(n: u32) -> Self {
        Self(n.to_compact_string())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Self {
        Self::new(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self(CompactString::from(s))
    }
}

impl From<Text> for String {
    fn from(t: Text) -> Self {
        t.0.into_string()
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.0.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.0.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.0.as_str() == other.as_str()
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.0.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.0.as_str()
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.0.as_str()
    }
}
