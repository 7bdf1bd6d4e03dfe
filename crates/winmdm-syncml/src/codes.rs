//! Open wire-code newtypes: status codes, alert codes, command IDs.

use core::fmt;

macro_rules! named_codes {
    ($ty:ident, $($(#[$doc:meta])* $name:ident = $value:literal, $text:literal;)*) => {
        impl $ty {
            $($(#[$doc])* pub const $name: Self = Self($value);)*

            /// The symbolic name of a known code.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($text),)*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, concat!(stringify!($ty), "({} {})"), self.0, n),
                    None => write!(f, concat!(stringify!($ty), "({})"), self.0),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl core::str::FromStr for $ty {
            type Err = core::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.trim().parse().map(Self)
            }
        }
    };
}

/// A SyncML status code (OMA SyncML RepPro 1.2 §10, as Windows uses them). Any `u16`
/// round-trips; known codes have constants and print their name in `Debug`.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct StatusCode(pub u16);

named_codes! {
    StatusCode,
    /// Completed successfully.
    OK = 200, "OK";
    /// Accepted for processing (asynchronous, for example Exec).
    ACCEPTED = 202, "ACCEPTED";
    /// Authentication accepted; no further authentication this session.
    AUTHENTICATION_ACCEPTED = 212, "AUTHENTICATION_ACCEPTED";
    /// Chunked item accepted and buffered (large objects).
    CHUNKED_ITEM_ACCEPTED = 213, "CHUNKED_ITEM_ACCEPTED";
    /// Operation cancelled; no more commands processed in the session.
    OPERATION_CANCELLED = 214, "OPERATION_CANCELLED";
    /// Not executed (user cancelled).
    NOT_EXECUTED = 215, "NOT_EXECUTED";
    /// Atomic roll back OK.
    ATOMIC_ROLLBACK_OK = 216, "ATOMIC_ROLLBACK_OK";
    /// Bad request / malformed syntax.
    BAD_REQUEST = 400, "BAD_REQUEST";
    /// Invalid credentials.
    INVALID_CREDENTIALS = 401, "INVALID_CREDENTIALS";
    /// Forbidden.
    FORBIDDEN = 403, "FORBIDDEN";
    /// Not found (the node does not exist).
    NOT_FOUND = 404, "NOT_FOUND";
    /// Command not allowed.
    COMMAND_NOT_ALLOWED = 405, "COMMAND_NOT_ALLOWED";
    /// Optional feature not supported.
    OPTIONAL_FEATURE_NOT_SUPPORTED = 406, "OPTIONAL_FEATURE_NOT_SUPPORTED";
    /// Missing credentials: authentication required.
    MISSING_CREDENTIALS = 407, "MISSING_CREDENTIALS";
    /// Size required: the first chunk of a large object carries no `Size`.
    SIZE_REQUIRED = 411, "SIZE_REQUIRED";
    /// Incomplete command.
    INCOMPLETE_COMMAND = 412, "INCOMPLETE_COMMAND";
    /// Request entity too large.
    REQUEST_ENTITY_TOO_LARGE = 413, "REQUEST_ENTITY_TOO_LARGE";
    /// Unsupported media type or format.
    UNSUPPORTED_MEDIA_TYPE = 415, "UNSUPPORTED_MEDIA_TYPE";
    /// Requested size too big.
    REQUESTED_SIZE_TOO_BIG = 416, "REQUESTED_SIZE_TOO_BIG";
    /// Already exists.
    ALREADY_EXISTS = 418, "ALREADY_EXISTS";
    /// Size mismatch of a chunked object.
    SIZE_MISMATCH = 424, "SIZE_MISMATCH";
    /// Partial item not accepted.
    PARTIAL_ITEM_NOT_ACCEPTED = 426, "PARTIAL_ITEM_NOT_ACCEPTED";
    /// Permission denied.
    PERMISSION_DENIED = 425, "PERMISSION_DENIED";
    /// Command failed.
    COMMAND_FAILED = 500, "COMMAND_FAILED";
    /// Atomic failed.
    ATOMIC_FAILED = 507, "ATOMIC_FAILED";
    /// Atomic roll back failed.
    ATOMIC_ROLLBACK_FAILED = 516, "ATOMIC_ROLLBACK_FAILED";
    /// Atomic response too large to fit.
    ATOMIC_RESPONSE_TOO_LARGE = 517, "ATOMIC_RESPONSE_TOO_LARGE";
}

impl StatusCode {
    /// Whether the code is in the 2xx (success) class.
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }
}

/// A SyncML alert code (MS-MDM §2.2.7.2). Any `u16` round-trips.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct AlertCode(pub u16);

named_codes! {
    AlertCode,
    /// Display (user interaction).
    DISPLAY = 1100, "DISPLAY";
    /// Continue or abort (user interaction).
    CONTINUE_OR_ABORT = 1101, "CONTINUE_OR_ABORT";
    /// Text input (user interaction).
    TEXT_INPUT = 1102, "TEXT_INPUT";
    /// Single choice (user interaction).
    SINGLE_CHOICE = 1103, "SINGLE_CHOICE";
    /// Multiple choice (user interaction).
    MULTIPLE_CHOICE = 1104, "MULTIPLE_CHOICE";
    /// Server-initiated management session.
    SERVER_INITIATED_MGMT = 1200, "SERVER_INITIATED_MGMT";
    /// Client-initiated management session.
    CLIENT_INITIATED_MGMT = 1201, "CLIENT_INITIATED_MGMT";
    /// Next message (large-object package continuation).
    NEXT_MESSAGE = 1222, "NEXT_MESSAGE";
    /// Session abort.
    SESSION_ABORT = 1223, "SESSION_ABORT";
    /// Client event (Microsoft: LoginStatus, AADUserToken, …).
    CLIENT_EVENT = 1224, "CLIENT_EVENT";
    /// No end of data (a chunked object's last chunk never arrived).
    NO_END_OF_DATA = 1225, "NO_END_OF_DATA";
    /// Generic alert (unenroll request, app install results, …).
    GENERIC_ALERT = 1226, "GENERIC_ALERT";
}

/// A command ID: an opaque string, unique and not `"0"` within a message (MS-MDM
/// §2.2.3.2). Real clients use small decimal numbers.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CmdId(pub crate::Text);

impl CmdId {
    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the reserved `"0"` (the SyncHdr's CmdRef).
    pub fn is_zero(&self) -> bool {
        self.0 == "0"
    }
}

impl fmt::Debug for CmdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CmdId({})", self.0)
    }
}

impl fmt::Display for CmdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<u32> for CmdId {
    fn from(n: u32) -> Self {
        Self(crate::Text::from_u32(n))
    }
}

impl From<&str> for CmdId {
    fn from(s: &str) -> Self {
        Self(crate::Text::from(s))
    }
}
