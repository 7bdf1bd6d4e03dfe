//! The OMA-DM management session: a sans-I/O state machine a server drives from its HTTP
//! handler (MS-MDM §3; OMA DM Protocol 1.2; Microsoft Learn "OMA DM protocol support").
//!
//! A management session spans several HTTP POSTs, possibly served by different server
//! instances. [`Session`] never reads the clock, opens sockets or draws random numbers:
//! time is the `now` argument (Unix seconds), nonces come from the caller, and its whole
//! state is an owned, versioned serde value ([`SessionState`]) the vendor stores between
//! requests. Restoring it on any instance continues the session.
//!
//! # One HTTP request
//!
//! 1. [`Session::receive`] takes the decoded client message. A message after the idle
//!    timeout gets [`Inbound::Expired`]; otherwise [`Inbound::Authenticate`].
//! 2. [`AuthStep::claim`] says who the device claims to be (`SyncHdr/Source`) and which
//!    credentials it sent. The vendor decides with a [`Verdict`]: the TLS client
//!    certificate its TLS layer verified for that device, the device's OMA-DM MD5 digest
//!    secret (the session checks `Cred` against the current nonce and answers 401/407 with
//!    a `Chal` carrying that nonce when it does not match), the session's binding
//!    ([`Verdict::Continue`], see below), or deny. The Entra user token
//!    never authenticates the device. An unauthenticated device gets no commands and its
//!    message is not processed. A repeat of the last message (the client did not get the
//!    reply) that authenticates as it did the first time gets [`Authenticated::Repeat`]:
//!    the same reply again, nothing processed twice.
//! 3. [`Exchange`] holds the processed message: drain its [`Event`]s (session start,
//!    alerts, LoginStatus, the user token to validate, device info, statuses and results
//!    correlated to the commands the vendor queued, unenroll requests, …), tell it who the
//!    user is ([`Exchange::set_user`], after validating the token with `winmdm-entra`), queue
//!    commands, then [`Exchange::reply`].
//! 4. [`Reply`] carries the message to send (always within the client's `MaxMsgSize`), the
//!    nonce to store with the device, the commands that can never be sent, and — when the
//!    session is over — a [`SessionEnd`] listing what was not sent or not answered.
//!    Store [`Session::state`] (or drop it when the session ended).
//!
//! # Security: who vouches for a message
//!
//! `SyncHdr/Source`, `SessionID` and `MsgID` are written by the client: anyone can copy
//! them. A message is processed only on evidence the device alone has:
//!
//! | evidence | verdict | notes |
//! |---|---|---|
//! | the client certificate the TLS layer verified, issued to this device | [`Verdict::Certificate`] | a certificate session must present it with every message |
//! | `Cred`: the MD5 digest of the device's OMA-DM secret over its current nonce | [`Verdict::Digest`] | a message without `Cred` is challenged, even mid-session |
//! | the session's binding: the unguessable token in the `RespURI` the server gave the session after it authenticated ([`Exchange::bind`]) | [`Verdict::Continue`] | Windows sends a session's later messages to its `RespURI`, without `Cred` |
//!
//! A message with none of these changes nothing: it is challenged with the device's
//! *current* nonce (a fresh one would have to be stored, and then one forged message would
//! make the real device's next digest fail), and a stateless server stores nothing for it.
//! Count failed digests per device outside the session (winmdm-endpoint keeps them in its
//! store, with a window, and never locks out certificate authentication). Server `MsgID`s
//! continue from the client's in a state's first reply, so they stay unique even when a
//! challenged first message left no state. When a stored state is restored for a device
//! whose nonce other sessions rotated since, give it the current one
//! ([`Session::set_device_nonce`]).
//!
//! # SessionIDs are reused
//!
//! Windows' `SessionID` is a small counter: it wraps (8 bits are allowed) and restarts
//! after a reboot, and other clients send `1` every time. So a stored state may meet the
//! first message (`MsgID` 1) of a new session under its own SessionID. Unless that message
//! repeats the last one, it starts a new session on the same state — whether the old one
//! ended, expired or was interrupted — from the device's current nonce, and it must
//! authenticate like any first message (the failure count carries over: restarting is no
//! way around the lockout). For an old session that had not ended,
//! [`AuthStep::restarted`] hands back what it left (queue its commands again). Queue a new
//! session's work when [`Event::SessionStarted`] arrives, not when a state is created.
//!
//! If the exchange is dropped before [`Exchange::reply`], the session is unchanged: a
//! retried request is processed afresh (events are therefore delivered at least once;
//! [`Event`]s that carry client data name the message they came from).
//!
//! # What the session does for the vendor
//!
//! * `Status` for the `SyncHdr` first, then for every client command in order (statuses
//!   that do not fit continue in the next message, still after that message's header
//!   status), `CmdID` allocation, `MsgID`/`MsgRef`/`CmdRef`, `Final`, `MaxMsgSize`.
//! * Queued commands go out in queue order; user-scoped ones (`./User/…`) only when
//!   [`crate::scope::may_send`] allows (Entra-joined devices: a valid, non-guest user
//!   token and LoginStatus `user`; added work accounts: always). Held commands stay queued.
//! * Large objects both ways: an `Add`/`Replace` too large for one message is split into
//!   chunks (`MoreData`, `Size` on the first), continued after each 213; incoming chunks are
//!   answered 213 and reassembled, a client package left open is continued with alert 1222,
//!   an interrupted incoming object is discarded with alert 1225, a client 1225 aborts the
//!   outgoing object, and a size mismatch is answered 424.
//! * Alert 1223 from the client ends the session; [`Exchange::abort`] sends one.
//!
//! # Example
//!
//! ```
//! use winmdm_syncml::auth::Nonce;
//! use winmdm_syncml::client::Device;
//! use winmdm_syncml::scope::EnrollmentType;
//! use winmdm_syncml::session::{Event, Inbound, QueuedCommand, Session, SessionConfig, Verdict, Authenticated};
//! use winmdm_syncml::Command;
//!
//! let nonce = Nonce::from_bytes(vec![7; 16]);
//! // A simulated Windows device with digest credentials (for the example).
//! let mut device = Device::new("device-1", "https://mdm.example/ManagementServer/MDM.svc")
//!     .with_digest("device-1", "s3cret", nonce.clone());
//! device.set_node("./DevDetail/SwV", "10.0.26100.1");
//!
//! let mut session = Session::new(SessionConfig::new(EnrollmentType::Device), nonce);
//! session.queue(QueuedCommand::new("q1", Command::get(1u32, ["./DevDetail/SwV"])))?;
//!
//! let mut message = device.start_session();
//! let mut seen = Vec::new();
//! let mut now = 1_780_000_000;
//! loop {
//!     // The URL the message came to (your HTTP layer knows it): a later message of the
//!     // session arrives on the bound RespURI, with its token, and without credentials.
//!     let url = device.url().to_owned();
//!     let bound = session.state().resp_uri() == Some(url.as_str());
//!     let verdict = if bound && message.header.cred.is_none() {
//!         Verdict::Continue
//!     } else {
//!         Verdict::Digest { username: "device-1", password: "s3cret" }
//!     };
//!     let reply = match session.receive(message, now)? {
//!         Inbound::Authenticate(step) => {
//!             match step.decide(verdict, Nonce::from_bytes(vec![now as u8; 16])) {
//!                 Authenticated::Yes(mut exchange) => {
//!                     while let Some(event) = exchange.poll_event() {
//!                         seen.push(event);
//!                     }
//!                     if exchange.state().resp_uri().is_none() {
//!                         // Use 16 random bytes for the token.
//!                         exchange.bind("https://mdm.example/ManagementServer/MDM.svc?s=6b1f0e2a");
//!                     }
//!                     exchange.reply()
//!                 }
//!                 Authenticated::Challenged(reply)
//!                 | Authenticated::Refused(reply)
//!                 | Authenticated::Repeat(reply) => reply,
//!             }
//!         }
//!         Inbound::Expired(reply) => reply,
//!     };
//!     let done = reply.end.is_some();
//!     match device.respond(&reply.message) {
//!         Some(next) if !done => message = next,
//!         _ => break,
//!     }
//!     now += 1;
//! }
//! assert!(seen.iter().any(|e| matches!(e, Event::Results { tag, results, .. }
//!     if tag == "q1" && results.values[0].data == "10.0.26100.1")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod objects;
mod pack;

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::alerts::{GenericAlert, KnownAlert, LoginStatus, UserToken};
use crate::auth::{self, Nonce};
use crate::codes::{AlertCode, StatusCode};
use crate::model::{Command, Cred, Status, SyncMl};
use crate::scope::{EnrollmentType, Hold, SessionUser, UserContext};
use crate::status::{self, ClientResults, ClientStatus, Response, ResultValue};
use crate::text::Text;

pub use objects::DiscardReason;

/// The version of [`SessionState`]'s serialized form.
pub const STATE_VERSION: u32 = 1;

/// The smallest message size the session plans for: a client `MaxMsgSize` below this is
/// raised to it (no useful reply fits in less).
pub const MIN_MSG_SIZE: u64 = 1024;

/// Server policy for a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionConfig {
    /// How the device enrolled (decides the scope rules).
    pub enrollment: EnrollmentType,
    /// The largest message the server sends, in bytes; the client's `MaxMsgSize` lowers
    /// it. Default 524 288.
    pub max_msg_size: u64,
    /// The largest object (reassembled from chunks) the server accepts from the client.
    /// Default 16 MiB.
    pub max_object_size: u64,
    /// A session idle longer than this (seconds between messages) has expired. Default 600.
    pub idle_timeout_secs: u64,
    /// Failed authentications after which the session ends. Default 3.
    pub max_auth_failures: u32,
    /// The server address written as `SyncHdr/Source`. Set it: by default the client's
    /// first `SyncHdr/Target` is echoed, so a client-chosen (possibly very long) URI would
    /// appear in every header.
    pub server_uri: Option<String>,
}

impl SessionConfig {
    /// The defaults for a device enrolled as `enrollment`.
    pub fn new(enrollment: EnrollmentType) -> Self {
        Self {
            enrollment,
            max_msg_size: 524_288,
            max_object_size: 16 * 1024 * 1024,
            idle_timeout_secs: 600,
            max_auth_failures: 3,
            server_uri: None,
        }
    }

    /// Sets [`SessionConfig::max_msg_size`].
    #[must_use]
    pub fn with_max_msg_size(mut self, bytes: u64) -> Self {
        self.max_msg_size = bytes;
        self
    }

    /// Sets [`SessionConfig::max_object_size`].
    #[must_use]
    pub fn with_max_object_size(mut self, bytes: u64) -> Self {
        self.max_object_size = bytes;
        self
    }

    /// Sets [`SessionConfig::idle_timeout_secs`].
    #[must_use]
    pub fn with_idle_timeout(mut self, secs: u64) -> Self {
        self.idle_timeout_secs = secs;
        self
    }

    /// Sets [`SessionConfig::server_uri`].
    #[must_use]
    pub fn with_server_uri(mut self, uri: impl Into<String>) -> Self {
        self.server_uri = Some(uri.into());
        self
    }
}

/// A command the vendor wants sent, with its own identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedCommand {
    /// The vendor's identifier (for example its database row); events about this command
    /// carry it. Unique within the session.
    pub tag: String,
    /// The command (`Get`, `Add`, `Replace`, `Delete`, `Exec`, `Atomic`, `Sequence`,
    /// `Alert`). Its `CmdID`s are assigned when it is sent.
    pub command: Command,
    /// For user-scoped commands on a shared (Entra-joined) device: the object ID of the
    /// user they are for. `None`: whichever user is signed in.
    pub for_user: Option<String>,
}

impl QueuedCommand {
    /// A command for the device (or for any signed-in user).
    pub fn new(tag: impl Into<String>, command: Command) -> Self {
        Self {
            tag: tag.into(),
            command,
            for_user: None,
        }
    }

    /// Restricts a user-scoped command to the user with this object ID.
    #[must_use]
    pub fn for_user(mut self, object_id: impl Into<String>) -> Self {
        self.for_user = Some(object_id.into());
        self
    }
}

/// How the device was authenticated in this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthMethod {
    /// A TLS client certificate the vendor's TLS layer verified.
    Certificate,
    /// OMA-DM MD5 digest credentials.
    Digest,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EndReason {
    /// The server had nothing more to send and the client nothing more to answer.
    Completed,
    /// The client sent alert 1223.
    ClientAborted,
    /// The server sent alert 1223 ([`Exchange::abort`]).
    ServerAborted,
    /// No message within the idle timeout.
    Expired,
    /// Too many failed authentications.
    AuthenticationFailed,
    /// The vendor denied the device ([`Verdict::Deny`]).
    Denied,
    /// The device started a new session with this one's `SessionID` before it ended (it
    /// restarted its counters, as Windows does after a reboot or when its 8-bit SessionID
    /// wraps): see [`AuthStep::restarted`].
    Restarted,
}

/// What was left when a session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEnd {
    /// Why it ended.
    pub reason: EndReason,
    /// Commands never sent (held by scope rules, or no time left): queue them again next
    /// session.
    pub unsent: Vec<QueuedCommand>,
    /// Tags of commands sent without a final `Status` coming back: they may or may not
    /// have been applied. Prefer idempotent commands (`Replace`) when re-sending.
    pub unanswered: Vec<String>,
}

/// A queued command that can never be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// The command's tag.
    pub tag: String,
    /// Why.
    pub reason: DropReason,
}

/// Why a command can never be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DropReason {
    /// It does not fit in a message and cannot be chunked (only single-item `Add` and
    /// `Replace` can).
    TooLargeForMessage {
        /// Its encoded size.
        size: u64,
        /// The message size limit.
        max_msg_size: u64,
    },
    /// Its data exceeds the client's `MaxObjSize`.
    ObjectTooLarge {
        /// The object's size.
        size: u64,
        /// The client's limit.
        max_obj_size: u64,
    },
}

/// The server's answer to one client message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Reply {
    /// The message to send (encode with [`crate::encode`] or [`Reply::to_xml`]).
    pub message: SyncMl,
    /// A nonce the device will use next: store it with the device's digest credentials
    /// (it was sent in a `Chal`).
    pub next_nonce: Option<Nonce>,
    /// Queued commands that can never be sent (removed from the queue).
    pub dropped: Vec<Dropped>,
    /// Set when the session is over after this reply.
    pub end: Option<SessionEnd>,
}

impl Reply {
    /// The message as XML.
    pub fn to_xml(&self) -> String {
        crate::encode(&self.message)
    }
}

/// Who started the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// Alert 1201: the client (schedule, user, enrollment).
    Client,
    /// Alert 1200: the server (after a push).
    Server,
    /// Neither alert was present.
    Unknown,
}

/// Something the vendor should know or act on, from one client message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The first message of the session was accepted.
    SessionStarted {
        /// `SessionID`.
        session_id: String,
        /// The device ID (`SyncHdr/Source`).
        device_id: String,
        /// Alert 1201 or 1200.
        initiator: Initiator,
    },
    /// Alert 1224 LoginStatus (already applied to the scope rules).
    LoginStatus(LoginStatus),
    /// Alert 1224 AADUserToken: validate it with `winmdm-entra`, then call
    /// [`Exchange::set_user`]. Identifies the user, never the device.
    UserToken(UserToken),
    /// `Replace` (or `Add`) of device information, usually `./DevInfo/*` in the first
    /// package.
    DeviceInfo(Vec<ResultValue>),
    /// Alert 1226 `com.microsoft:mdm.unenrollment.userrequest`: the user unenrolled.
    UnenrollRequested,
    /// Other 1226 generic alerts (app install results, health attestation, …).
    GenericAlerts(Vec<GenericAlert>),
    /// Any other client alert (1224 sync type, DevicePrepSync, BootstrapSync, keep-alive…).
    ClientAlert(KnownAlert),
    /// The client's `Status` for a queued command (for `Atomic`/`Sequence`, one for the
    /// container and one per child, `path` locating the child).
    Status {
        /// The queued command's tag.
        tag: String,
        /// The index path of the command inside the queued one (empty: the command
        /// itself).
        path: Vec<u32>,
        /// The status.
        status: ClientStatus,
    },
    /// The client's `Results` for a queued `Get` (reassembled if it came in chunks).
    Results {
        /// The queued command's tag.
        tag: String,
        /// The index path of the `Get` inside the queued command.
        path: Vec<u32>,
        /// The results.
        results: ClientResults,
    },
    /// A `Status` or `Results` for no command this session sent.
    Uncorrelated(Response),
    /// The client refused the server's `SyncHdr` (non-2xx `Status` for `CmdRef` 0).
    HeaderRefused(StatusCode),
    /// The client sent alert 1223: the session ends with this reply.
    ClientAborted,
    /// The client sent alert 1225 for the object being sent in chunks: it is abandoned.
    OutgoingObjectAborted {
        /// The queued command's tag.
        tag: String,
    },
    /// An incoming chunked object was discarded.
    IncomingObjectDiscarded {
        /// The node (`LocURI`).
        uri: String,
        /// Why.
        reason: DiscardReason,
    },
    /// The client sent a command a server does not accept from a client (answered 405).
    UnsupportedCommand {
        /// The command's name.
        name: String,
    },
}

/// Misuse or a message that cannot belong to this session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The stored state is of another version.
    #[error("session state version {found} is not supported (expected {STATE_VERSION})")]
    UnsupportedStateVersion {
        /// The stored version.
        found: u32,
    },
    /// The message's header lacks a field the session needs.
    #[error("the message has no {0}")]
    MissingHeaderField(&'static str),
    /// The message belongs to another session (start a new [`Session`] for it).
    #[error("message is for session {found:?}, this is session {expected:?}")]
    OtherSession {
        /// This session's `SessionID`.
        expected: String,
        /// The message's.
        found: String,
    },
    /// The message comes from another device than the one this session is with.
    #[error("message is from device {found:?}, the session is with {expected:?}")]
    DeviceMismatch {
        /// The session's device.
        expected: String,
        /// The message's `SyncHdr/Source`.
        found: String,
    },
    /// The session has ended; a new message starts a new session.
    #[error("the session has ended ({0:?})")]
    Ended(EndReason),
    /// A message older than the last one handled.
    #[error("message {found} is older than the last handled message {last}")]
    StaleMessage {
        /// The last handled `MsgID`.
        last: String,
        /// The message's.
        found: String,
    },
    /// The last handled `MsgID` again, with different content.
    #[error("message {0} was already handled with different content")]
    MsgIdReused(String),
}

/// A problem with a command given to [`Session::queue`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// Another command in this session has the same tag.
    #[error("tag {0:?} is already used in this session")]
    DuplicateTag(String),
    /// Servers do not send this command (`Status`, `Results`, `Map`, `Copy`, unknown).
    #[error("a server does not send {0}")]
    NotAServerCommand(String),
    /// An `Add`/`Delete`/`Get`/`Replace`/`Exec` without items, or an empty container.
    #[error("{0} has nothing to do (no items or commands)")]
    Empty(String),
    /// The session has ended.
    #[error("the session has ended")]
    Ended,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    New,
    Active,
    Ended(EndReason),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AuthState {
    nonce: Nonce,
    method: Option<AuthMethod>,
    failures: u32,
}

/// A command sent in this session, to correlate the client's answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Sent {
    msg_id: u32,
    cmd_id: u32,
    tag: String,
    path: Vec<u32>,
    /// For chunks of a large object: whether this is the last chunk.
    chunk: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LastExchange {
    msg_id: Text,
    fingerprint: String,
    reply: SyncMl,
    next_nonce: Option<Nonce>,
    /// The digest nonce the message was checked against (a repeat must verify with it).
    nonce: Nonce,
}

/// The whole state of a session: store it between requests (serde), restore it with
/// [`Session::restore`] on any instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    version: u32,
    config: SessionConfig,
    phase: Phase,
    session_id: Option<Text>,
    device_id: Option<Text>,
    server_uri: Option<Text>,
    /// The `RespURI` the session is bound to ([`Exchange::bind`]).
    #[serde(default)]
    resp_uri: Option<Text>,
    auth: AuthState,
    user: UserContext,
    client_max_msg_size: Option<u64>,
    client_max_obj_size: Option<u64>,
    next_msg_id: u32,
    last_activity: Option<u64>,
    last: Option<LastExchange>,
    /// The client's package is not complete (its last message had no `Final`).
    client_package_open: bool,
    /// Statuses owed that did not fit in the last reply.
    pending_statuses: VecDeque<Status>,
    /// Alerts to send with the next reply (1225).
    pending_alerts: Vec<Command>,
    queue: VecDeque<QueuedCommand>,
    sent: Vec<Sent>,
    /// Tags of sent commands awaiting their final status.
    awaiting: Vec<String>,
    /// Every tag used in this session (queued, sent or answered).
    tags: Vec<String>,
    outgoing: Option<objects::Outgoing>,
    incoming: Option<objects::Incoming>,
}

impl SessionState {
    /// The session's `SessionID`, once the first message arrived.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// The `RespURI` the session is bound to, if it is ([`Exchange::bind`]).
    pub fn resp_uri(&self) -> Option<&str> {
        self.resp_uri.as_deref()
    }

    /// The device's ID (`SyncHdr/Source` of its messages), once the first message arrived.
    pub fn device_id(&self) -> Option<&str> {
        self.device_id.as_deref()
    }

    /// Why the session ended, if it did.
    pub fn ended(&self) -> Option<EndReason> {
        match self.phase {
            Phase::Ended(r) => Some(r),
            _ => None,
        }
    }

    /// The user context the scope rules use.
    pub fn user_context(&self) -> &UserContext {
        &self.user
    }

    /// How the device authenticated, once it did.
    pub fn authenticated(&self) -> Option<AuthMethod> {
        self.auth.method
    }

    /// The device's current digest nonce.
    pub fn nonce(&self) -> &Nonce {
        &self.auth.nonce
    }

    /// Commands queued and not yet sent, in order.
    pub fn queued(&self) -> impl Iterator<Item = &QueuedCommand> {
        self.queue.iter()
    }

    /// Tags of sent commands still awaiting their final status.
    pub fn awaiting(&self) -> &[String] {
        &self.awaiting
    }

    /// The last `Unix` time a message was handled.
    pub fn last_activity(&self) -> Option<u64> {
        self.last_activity
    }

    /// The effective message size limit for server messages.
    pub fn max_msg_size(&self) -> u64 {
        let client = self.client_max_msg_size.unwrap_or(u64::MAX);
        self.config.max_msg_size.min(client).max(MIN_MSG_SIZE)
    }
}

/// A management session with one device. See the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    state: SessionState,
}

/// What to do with a received message.
#[derive(Debug)]
#[must_use]
pub enum Inbound<'s> {
    /// Authenticate the device, then process the message (or, for a repeat of the last
    /// message, replay its reply: [`Authenticated::Repeat`]).
    Authenticate(AuthStep<'s>),
    /// The session had been idle past its timeout: it has ended; send this reply (alert
    /// 1223); [`Reply::end`] lists what was left.
    Expired(Reply),
}

/// Who the device claims to be, for the vendor to decide.
#[derive(Debug, Clone, Copy)]
pub struct DeviceClaim<'a> {
    /// The device ID it claims (`SyncHdr/Source/LocURI`).
    pub device_id: &'a str,
    /// The `SyncHdr/Cred` it sent, if any.
    pub credentials: Option<&'a Cred>,
    /// `Meta/Type` of those credentials (`syncml:auth-md5`, `syncml:auth-basic`).
    pub credential_type: Option<&'a str>,
    /// How it authenticated earlier in this session, if it did (OMA-DM: after 212 no
    /// further authentication is needed in the session).
    pub authenticated: Option<AuthMethod>,
}

/// The vendor's decision about the device.
#[derive(Debug, Clone, Copy)]
pub enum Verdict<'a> {
    /// The vendor's TLS layer verified a client certificate issued to this device.
    Certificate,
    /// Check the device's OMA-DM MD5 digest credentials (issued in the provisioning
    /// document) against the current nonce. A message without `Cred` is challenged, even
    /// in a session that authenticated earlier: anyone can write a `Source` and a
    /// `SessionID`. Vouch for such a message with [`Verdict::Continue`] when it arrived
    /// on the session's bound `RespURI` ([`Exchange::bind`]).
    Digest {
        /// `AAUTHNAME`.
        username: &'a str,
        /// `AAUTHSECRET`.
        password: &'a str,
    },
    /// The vendor vouches that the message belongs to this session — it arrived on the
    /// session's bound `RespURI` ([`Exchange::bind`]), whose token only the device that
    /// authenticated has — so it is accepted on the strength of the session's earlier
    /// authentication; a session that has not authenticated is challenged (407).
    Continue,
    /// Unknown or blocked device: the session ends with a 403 for the header.
    Deny,
}

/// The outcome of [`AuthStep::decide`].
#[derive(Debug)]
#[must_use]
pub enum Authenticated<'s> {
    /// The device is authenticated: the message is processed.
    Yes(Exchange<'s>),
    /// Credentials missing or wrong: send this challenge (401/407 with the device's current
    /// nonce); the client retries with credentials.
    Challenged(Reply),
    /// Denied, or too many failures: send this reply (or answer HTTP 401/403 instead).
    /// A session not yet authenticated has ended ([`Reply::end`]); an authenticated one
    /// is left as it was, so a forged message cannot end or lock it.
    Refused(Reply),
    /// The client repeated its last message (it did not get the reply) and authenticated
    /// as it did then: send this reply again. Nothing was processed twice.
    Repeat(Reply),
}

/// A received message waiting for the vendor's authentication decision.
#[derive(Debug)]
pub struct AuthStep<'s> {
    session: &'s mut Session,
    message: SyncMl,
    now: u64,
    fingerprint: String,
    repeat: bool,
    restarted: Option<SessionEnd>,
}

/// A processed client message: events to drain, commands to queue, then the reply.
#[derive(Debug)]
pub struct Exchange<'s> {
    session: &'s mut Session,
    work: Box<SessionState>,
    message: Box<SyncMl>,
    now: u64,
    fingerprint: String,
    header_status: Status,
    next_nonce: Option<Nonce>,
    nonce_used: Nonce,
    statuses: Vec<Status>,
    events: VecDeque<Event>,
    client_aborted: bool,
}

/// Tells a repeated message from another message reusing its `MsgID`: a 64-bit
/// multiply-xorshift hash of the encoded message, eight bytes at a time (fixed here, so
/// stable across builds and instances). Not a security boundary: a repeat is only
/// replayed after the sender authenticates as it did the first time.
fn fingerprint(message: &SyncMl) -> String {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let xml = crate::encode(message);
    let bytes = xml.as_bytes();
    let mut h: u64 = (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K);
        h ^= h >> 29;
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(K);
        h ^= h >> 29;
    }
    format!("{h:016x}")
}

fn msg_number(id: &str) -> Option<u64> {
    id.trim().parse().ok()
}

impl Session {
    /// A new session with a device whose current digest nonce is `nonce` (the last
    /// `NextNonce` sent to it, or the provisioning document's `AAUTHDATA`; any value when
    /// the vendor authenticates devices by certificate only).
    pub fn new(config: SessionConfig, nonce: Nonce) -> Self {
        Self {
            state: SessionState {
                version: STATE_VERSION,
                config,
                phase: Phase::New,
                session_id: None,
                device_id: None,
                server_uri: None,
                resp_uri: None,
                auth: AuthState {
                    nonce,
                    method: None,
                    failures: 0,
                },
                user: UserContext::default(),
                client_max_msg_size: None,
                client_max_obj_size: None,
                next_msg_id: 1,
                last_activity: None,
                last: None,
                client_package_open: false,
                pending_statuses: VecDeque::new(),
                pending_alerts: Vec::new(),
                queue: VecDeque::new(),
                sent: Vec::new(),
                awaiting: Vec::new(),
                tags: Vec::new(),
                outgoing: None,
                incoming: None,
            },
        }
    }

    /// Continues a session from its stored state.
    ///
    /// # Errors
    /// [`SessionError::UnsupportedStateVersion`] for state written by an incompatible
    /// version of this crate.
    pub fn restore(state: SessionState) -> Result<Self, SessionError> {
        if state.version != STATE_VERSION {
            return Err(SessionError::UnsupportedStateVersion {
                found: state.version,
            });
        }
        Ok(Self { state })
    }

    /// Sets the device's current digest nonce, as the server stores it per device: other
    /// sessions of the device may have rotated it since this state was stored (a session
    /// the device abandoned, restored when it reuses the SessionID). A repeated message is
    /// still checked against the nonce it was made for.
    pub fn set_device_nonce(&mut self, nonce: Nonce) {
        self.state.auth.nonce = nonce;
    }

    /// The state to store.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// The state to store, by value.
    pub fn into_state(self) -> SessionState {
        self.state
    }

    /// Whether `message` belongs to this session (same `SessionID` and device, and the
    /// session is still open or this repeats its last message). When it does not, start
    /// a new [`Session`] for it.
    pub fn accepts(&self, message: &SyncMl) -> bool {
        let h = &message.header;
        let same_device = match (&self.state.device_id, &h.source) {
            (Some(d), Some(s)) => d.as_str() == s.loc_uri.trim(),
            (None, _) => true,
            _ => false,
        };
        let same_session = self
            .state
            .session_id
            .as_ref()
            .is_none_or(|s| s.as_str() == h.session_id.trim());
        let repeat = self
            .state
            .last
            .as_ref()
            .is_some_and(|l| l.msg_id.as_str() == h.msg_id.trim());
        same_device && same_session && (self.state.ended().is_none() || repeat)
    }

    /// Queues a command (see [`QueuedCommand`]); it goes out when the scope rules allow,
    /// in queue order.
    ///
    /// # Errors
    /// See [`QueueError`].
    pub fn queue(&mut self, command: QueuedCommand) -> Result<(), QueueError> {
        queue_into(&mut self.state, command)
    }

    /// Ends the session if it has been idle past its timeout at `now`, returning what was
    /// left (for a sweeper job; [`Session::receive`] checks too).
    pub fn poll_timeout(&mut self, now: u64) -> Option<SessionEnd> {
        if idle_expired(&self.state, now) {
            Some(end_session(&mut self.state, EndReason::Expired))
        } else {
            None
        }
    }

    /// Takes a client message (decoded with [`crate::decode`]).
    ///
    /// # Errors
    /// See [`SessionError`]; none of them changes the session.
    pub fn receive(&mut self, message: SyncMl, now: u64) -> Result<Inbound<'_>, SessionError> {
        let h = &message.header;
        if h.msg_id.trim().is_empty() {
            return Err(SessionError::MissingHeaderField("MsgID"));
        }
        let Some(source) = h.source.as_ref().filter(|s| !s.loc_uri.trim().is_empty()) else {
            return Err(SessionError::MissingHeaderField("Source/LocURI"));
        };
        let st = &self.state;
        if let Some(d) = &st.device_id
            && d.as_str() != source.loc_uri.trim()
        {
            return Err(SessionError::DeviceMismatch {
                expected: d.to_string(),
                found: source.loc_uri.trim().to_owned(),
            });
        }
        if let Some(s) = &st.session_id
            && s.as_str() != h.session_id.trim()
        {
            return Err(SessionError::OtherSession {
                expected: s.to_string(),
                found: h.session_id.trim().to_owned(),
            });
        }
        let fp = fingerprint(&message);
        let repeat = st
            .last
            .as_ref()
            .is_some_and(|l| l.msg_id.as_str() == h.msg_id.trim() && l.fingerprint == fp);
        if repeat {
            return Ok(Inbound::Authenticate(AuthStep {
                session: self,
                message,
                now,
                fingerprint: fp,
                repeat: true,
                restarted: None,
            }));
        }
        // A first message (MsgID 1) that is not a repeat, on a state that has seen messages:
        // the device started a new session with the same SessionID (a small counter that
        // restarts after a reboot and wraps). The old session ends here; the new one starts
        // from the device's current nonce and must authenticate like any other.
        if st.last.is_some() && msg_number(&h.msg_id) == Some(1) {
            let restarted =
                (st.ended().is_none()).then(|| end_session(&mut self.state, EndReason::Restarted));
            let failures = self.state.auth.failures;
            let fresh = Self::new(self.state.config.clone(), self.state.auth.nonce.clone());
            self.state = fresh.state;
            // Restarting is no way around the lockout.
            self.state.auth.failures = failures;
            return Ok(Inbound::Authenticate(AuthStep {
                session: self,
                message,
                now,
                fingerprint: fp,
                repeat: false,
                restarted,
            }));
        }
        if let Some(last) = &st.last {
            if last.msg_id.as_str() == h.msg_id.trim() {
                return Err(SessionError::MsgIdReused(last.msg_id.to_string()));
            }
            if let (Some(prev), Some(cur)) = (msg_number(&last.msg_id), msg_number(&h.msg_id))
                && cur < prev
            {
                return Err(SessionError::StaleMessage {
                    last: last.msg_id.to_string(),
                    found: h.msg_id.trim().to_owned(),
                });
            }
        }
        if let Phase::Ended(r) = st.phase {
            return Err(SessionError::Ended(r));
        }
        if idle_expired(st, now) {
            let end = end_session(&mut self.state, EndReason::Expired);
            let mut header = status::header_status(&message, StatusCode::OK);
            header.cmd_id = Some(1u32.into());
            let mut body = vec![Command::Status(header)];
            body.push(Command::alert(2u32, AlertCode::SESSION_ABORT));
            let reply = self.finish_reply(&message, body, true, fp, None);
            return Ok(Inbound::Expired(Reply {
                end: Some(end),
                ..reply
            }));
        }
        Ok(Inbound::Authenticate(AuthStep {
            session: self,
            message,
            now,
            fingerprint: fp,
            repeat: false,
            restarted: None,
        }))
    }

    /// Ends the session and answers `message` with only a header status of `code`.
    fn refuse<'s>(
        &'s mut self,
        message: &SyncMl,
        code: StatusCode,
        reason: EndReason,
        fingerprint: String,
    ) -> Authenticated<'s> {
        let end = end_session(&mut self.state, reason);
        let mut header = status::header_status(message, code);
        header.cmd_id = Some(1u32.into());
        let reply = self.finish_reply(
            message,
            vec![Command::Status(header)],
            true,
            fingerprint,
            None,
        );
        Authenticated::Refused(Reply {
            end: Some(end),
            ..reply
        })
    }

    /// Builds a reply message from `body`, records it as the answer to `message`.
    fn finish_reply(
        &mut self,
        message: &SyncMl,
        commands: Vec<Command>,
        is_final: bool,
        fingerprint: String,
        next_nonce: Option<Nonce>,
    ) -> Reply {
        let header = pack::reply_header(&mut self.state, message);
        let mut reply = SyncMl {
            header,
            body: crate::model::SyncBody { commands, is_final },
        };
        pack::fit_refs(&mut reply, self.state.max_msg_size());
        self.state.last = Some(LastExchange {
            msg_id: Text::from(message.header.msg_id.trim()),
            fingerprint,
            reply: reply.clone(),
            next_nonce: next_nonce.clone(),
            nonce: self.state.auth.nonce.clone(),
        });
        Reply {
            message: reply,
            next_nonce,
            dropped: Vec::new(),
            end: None,
        }
    }
}

fn idle_expired(st: &SessionState, now: u64) -> bool {
    matches!(st.phase, Phase::Active)
        && st
            .last_activity
            .is_some_and(|t| now.saturating_sub(t) > st.config.idle_timeout_secs)
}

fn end_session(st: &mut SessionState, reason: EndReason) -> SessionEnd {
    st.phase = Phase::Ended(reason);
    let mut unanswered = std::mem::take(&mut st.awaiting);
    if let Some(o) = st.outgoing.take()
        && !unanswered.contains(&o.tag)
    {
        unanswered.push(o.tag);
    }
    st.incoming = None;
    st.pending_statuses.clear();
    st.pending_alerts.clear();
    SessionEnd {
        reason,
        unsent: st.queue.drain(..).collect(),
        unanswered,
    }
}

fn queue_into(st: &mut SessionState, q: QueuedCommand) -> Result<(), QueueError> {
    if st.ended().is_some() {
        return Err(QueueError::Ended);
    }
    if st.tags.contains(&q.tag) {
        return Err(QueueError::DuplicateTag(q.tag));
    }
    fn check(c: &Command) -> Result<(), QueueError> {
        match c {
            Command::Add(_)
            | Command::Delete(_)
            | Command::Exec(_)
            | Command::Get(_)
            | Command::Replace(_) => {
                if c.items().is_empty() {
                    return Err(QueueError::Empty(c.name().to_owned()));
                }
                Ok(())
            }
            Command::Atomic(k) | Command::Sequence(k) => {
                if k.commands.is_empty() {
                    return Err(QueueError::Empty(c.name().to_owned()));
                }
                k.commands.iter().try_for_each(check)
            }
            Command::Alert(_) => Ok(()),
            other => Err(QueueError::NotAServerCommand(other.name().to_owned())),
        }
    }
    check(&q.command)?;
    st.tags.push(q.tag.clone());
    st.queue.push_back(q);
    Ok(())
}

impl<'s> AuthStep<'s> {
    /// Who the device claims to be.
    pub fn claim(&self) -> DeviceClaim<'_> {
        let cred = self.message.header.cred.as_deref();
        DeviceClaim {
            device_id: self
                .message
                .header
                .source
                .as_ref()
                .map_or("", |s| s.loc_uri.trim()),
            credentials: cred,
            credential_type: cred
                .and_then(|c| c.meta.as_deref())
                .and_then(|m| m.r#type.as_deref())
                .map(str::trim),
            authenticated: self.session.state.auth.method,
        }
    }

    /// The message, as received.
    pub fn message(&self) -> &SyncMl {
        &self.message
    }

    /// When this message started a new session with the `SessionID` of one that had not
    /// ended (the device restarted its counters: a reboot mid-session, or its 8-bit
    /// SessionID wrapped onto an interrupted session), what the old session left: queue
    /// its `unsent` commands again. The restart is part of this message: like everything
    /// else it counts only if the message authenticates (store nothing otherwise).
    pub fn restarted(&self) -> Option<&SessionEnd> {
        self.restarted.as_ref()
    }

    /// Applies the vendor's decision. `fresh_nonce` (16 random bytes from a CSPRNG) becomes
    /// the device's next digest nonce after a successful digest authentication
    /// (`NextNonce`); it is unused otherwise (a challenge repeats the current nonce).
    pub fn decide(self, verdict: Verdict<'_>, fresh_nonce: Nonce) -> Authenticated<'s> {
        let AuthStep {
            session,
            message,
            now,
            fingerprint,
            repeat,
            restarted: _,
        } = self;
        let prior = session.state.auth.method;
        let cred = message.header.cred.as_deref();
        if repeat {
            // The same message again: it must authenticate as it did the first time (its
            // digest was made for the nonce in effect then).
            let then = session.state.last.as_ref().map(|l| &l.nonce);
            let ok = match verdict {
                Verdict::Deny => false,
                Verdict::Certificate => true,
                Verdict::Continue => prior.is_some(),
                Verdict::Digest { username, password } => match (cred, then) {
                    (None, _) => false,
                    (Some(c), Some(n)) => auth::verify(c, username, password, n, false).is_ok(),
                    (Some(_), None) => false,
                },
            };
            let last = session.state.last.as_ref();
            return match (ok, last) {
                (true, Some(last)) => Authenticated::Repeat(Reply {
                    message: last.reply.clone(),
                    next_nonce: last.next_nonce.clone(),
                    dropped: Vec::new(),
                    end: None,
                }),
                _ => Authenticated::Refused(detached_reply(
                    &session.state,
                    &message,
                    StatusCode::FORBIDDEN,
                    None,
                )),
            };
        }
        let outcome: Result<(AuthMethod, StatusCode, bool), auth::AuthError> = match verdict {
            Verdict::Deny if prior.is_some() => {
                return Authenticated::Refused(detached_reply(
                    &session.state,
                    &message,
                    StatusCode::FORBIDDEN,
                    None,
                ));
            }
            Verdict::Deny => {
                return session.refuse(
                    &message,
                    StatusCode::FORBIDDEN,
                    EndReason::Denied,
                    fingerprint,
                );
            }
            Verdict::Certificate => Ok((AuthMethod::Certificate, StatusCode::OK, false)),
            Verdict::Continue => match prior {
                Some(m) => Ok((m, StatusCode::OK, false)),
                None => Err(auth::AuthError::Missing),
            },
            Verdict::Digest { username, password } => match (cred, prior) {
                // Without credentials only a bound message continues ([`Verdict::Continue`]).
                (None, _) => Err(auth::AuthError::Missing),
                (Some(cred), _) => {
                    auth::verify(cred, username, password, &session.state.auth.nonce, false).map(
                        |()| {
                            (
                                AuthMethod::Digest,
                                StatusCode::AUTHENTICATION_ACCEPTED,
                                true,
                            )
                        },
                    )
                }
            },
        };
        match outcome {
            Ok((method, code, rotate)) => {
                let next_nonce = rotate.then_some(fresh_nonce);
                let header_status = match &next_nonce {
                    Some(n) => status::challenge_status(&message, code, &n.to_b64()),
                    None => status::header_status(&message, code),
                };
                // Nothing changes until the reply is built (a dropped exchange leaves the
                // session as it was, nonce included).
                let nonce_used = session.state.auth.nonce.clone();
                let mut work = Box::new(session.state.clone());
                work.auth.method = Some(method);
                work.auth.failures = 0;
                if let Some(n) = &next_nonce {
                    work.auth.nonce = n.clone();
                }
                let mut ex = Exchange {
                    session,
                    work,
                    message: Box::new(message),
                    now,
                    fingerprint,
                    header_status,
                    next_nonce,
                    nonce_used,
                    statuses: Vec::new(),
                    events: VecDeque::new(),
                    client_aborted: false,
                };
                ex.process();
                Authenticated::Yes(ex)
            }
            Err(err) if prior.is_some() => {
                // An authenticated session is not changed by a message that fails: challenge
                // with the current nonce, count nothing, end nothing.
                let nonce = session.state.auth.nonce.clone();
                let reply =
                    detached_reply(&session.state, &message, err.status_code(), Some(&nonce));
                Authenticated::Challenged(reply)
            }
            Err(err) => {
                let st = &mut session.state;
                st.auth.failures = st.auth.failures.saturating_add(u32::from(cred.is_some()));
                if st.auth.failures >= st.config.max_auth_failures {
                    return session.refuse(
                        &message,
                        err.status_code(),
                        EndReason::AuthenticationFailed,
                        fingerprint,
                    );
                }
                // The challenge carries the device's current nonce: a message that did not
                // authenticate changes nothing a stateless server keeps (a fresh nonce
                // would have to be stored, and a forged message would then break the real
                // device's next attempt). The nonce rotates after a success.
                let nonce_used = st.auth.nonce.clone();
                let challenge = nonce_used.clone();
                if st.phase == Phase::New {
                    // The session exists from its first message on, authenticated or not.
                    st.session_id = Some(Text::from(message.header.session_id.trim()));
                }
                st.last_activity = Some(now);
                let mut header =
                    status::challenge_status(&message, err.status_code(), &challenge.to_b64());
                header.cmd_id = Some(1u32.into());
                let mut reply = session.finish_reply(
                    &message,
                    vec![Command::Status(header)],
                    true,
                    fingerprint,
                    Some(challenge),
                );
                if let Some(last) = &mut session.state.last {
                    last.nonce = nonce_used;
                }
                reply.end = None;
                Authenticated::Challenged(reply)
            }
        }
    }
}

/// A reply that changes nothing in the session (refusals and challenges of messages
/// that failed to authenticate on an authenticated session, refused repeats).
fn detached_reply(
    st: &SessionState,
    message: &SyncMl,
    code: StatusCode,
    challenge: Option<&Nonce>,
) -> Reply {
    let mut scratch = st.clone();
    let header = pack::reply_header(&mut scratch, message);
    let mut status = match challenge {
        Some(n) => status::challenge_status(message, code, &n.to_b64()),
        None => status::header_status(message, code),
    };
    status.cmd_id = Some(1u32.into());
    let mut message = SyncMl {
        header,
        body: crate::model::SyncBody {
            commands: vec![Command::Status(status)],
            is_final: true,
        },
    };
    pack::fit_refs(&mut message, st.max_msg_size());
    Reply {
        message,
        next_nonce: challenge.cloned(),
        dropped: Vec::new(),
        end: None,
    }
}

impl Exchange<'_> {
    /// The next event, in the order of the message's commands.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Binds the session to `resp_uri`: every reply from now on carries it as
    /// `SyncHdr/RespURI`, and the client sends the session's later messages there
    /// (OMA-DM lets the server choose; Windows follows it). Put an unguessable token for
    /// this session in it (16 random bytes, say, in the query) and vouch only for messages
    /// that arrive with that token ([`Verdict::Continue`]): messages without credentials
    /// are otherwise challenged, since anyone can write a device's `Source` and
    /// `SessionID`.
    pub fn bind(&mut self, resp_uri: impl Into<String>) {
        self.work.resp_uri = Some(Text::from(resp_uri.into().as_str()));
    }

    /// Tells the session who the user is: the user of a valid Entra token (from the
    /// `Authorization` header or alert 1224 AADUserToken), or `None` when there is none
    /// or it failed validation. Decides which user-scoped commands may go out.
    pub fn set_user(&mut self, user: Option<SessionUser>) {
        self.work.user.user = user;
    }

    /// The user context as it stands.
    pub fn user_context(&self) -> &UserContext {
        &self.work.user
    }

    /// Queues a command (see [`Session::queue`]).
    ///
    /// # Errors
    /// See [`QueueError`].
    pub fn queue(&mut self, command: QueuedCommand) -> Result<(), QueueError> {
        queue_into(&mut self.work, command)
    }

    /// The state as it will be stored after the reply.
    pub fn state(&self) -> &SessionState {
        &self.work
    }

    /// Why each queued command would be held if the reply were built now (commands not
    /// listed may be sent).
    pub fn holds(&self) -> Vec<(String, Hold)> {
        self.work
            .queue
            .iter()
            .filter_map(|q| match pack::decision(&self.work, q) {
                crate::scope::Decision::Hold(h) => Some((q.tag.clone(), h)),
                crate::scope::Decision::Send => None,
            })
            .collect()
    }

    /// Ends the session with alert 1223 (after the statuses owed for this message).
    pub fn abort(self) -> Reply {
        let Exchange {
            session,
            mut work,
            message,
            now,
            fingerprint,
            header_status,
            next_nonce,
            nonce_used,
            statuses,
            ..
        } = self;
        let mut commands = vec![Command::Status(header_status)];
        commands.extend(statuses.into_iter().map(Command::Status));
        let mut id = 1u32;
        for c in &mut commands {
            c.set_cmd_id(id.into());
            id += 1;
        }
        commands.push(Command::alert(id, AlertCode::SESSION_ABORT));
        work.last_activity = Some(now);
        let end = end_session(&mut work, EndReason::ServerAborted);
        session.state = *work;
        let reply = session.finish_reply(&message, commands, true, fingerprint, next_nonce);
        if let Some(last) = &mut session.state.last {
            last.nonce = nonce_used;
        }
        Reply {
            end: Some(end),
            ..reply
        }
    }

    /// Builds the reply: statuses, then alerts, then queued commands that may be sent and
    /// fit; commits the session state.
    pub fn reply(self) -> Reply {
        let Exchange {
            session,
            mut work,
            message,
            now,
            fingerprint,
            header_status,
            next_nonce,
            nonce_used,
            statuses,
            client_aborted,
            ..
        } = self;
        work.last_activity = Some(now);
        if client_aborted {
            let mut header = header_status;
            header.cmd_id = Some(1u32.into());
            let end = end_session(&mut work, EndReason::ClientAborted);
            session.state = *work;
            let reply = session.finish_reply(
                &message,
                vec![Command::Status(header)],
                true,
                fingerprint,
                next_nonce,
            );
            if let Some(last) = &mut session.state.last {
                last.nonce = nonce_used;
            }
            return Reply {
                end: Some(end),
                ..reply
            };
        }
        let mut header = pack::reply_header(&mut work, &message);
        // The message authenticated: the reply may carry the session's binding.
        header.resp_uri.clone_from(&work.resp_uri);
        let packed = pack::pack(&mut work, header, header_status, statuses);
        let end = packed
            .complete
            .then(|| end_session(&mut work, EndReason::Completed));
        work.last = Some(LastExchange {
            msg_id: Text::from(message.header.msg_id.trim()),
            fingerprint,
            reply: packed.message.clone(),
            next_nonce: next_nonce.clone(),
            nonce: nonce_used,
        });
        session.state = *work;
        Reply {
            message: packed.message,
            next_nonce,
            dropped: packed.dropped,
            end,
        }
    }

    fn push_status(&mut self, command: &Command, code: StatusCode) {
        if command.no_resp() {
            return;
        }
        self.statuses.push(status::command_status(
            self.message.header.msg_id.trim(),
            command,
            code,
        ));
    }

    /// Processes the client message into events and owed statuses.
    fn process(&mut self) {
        let h = &self.message.header;
        let w = &mut self.work;
        if w.phase == Phase::New {
            w.phase = Phase::Active;
            w.session_id = Some(Text::from(h.session_id.trim()));
            let device = h.source.as_ref().map_or("", |s| s.loc_uri.trim());
            w.device_id = Some(Text::from(device));
            w.server_uri = w
                .config
                .server_uri
                .as_deref()
                .map(Text::from)
                .or_else(|| h.target.as_ref().map(|t| t.loc_uri.clone()));
            let initiator = self
                .message
                .body
                .commands
                .iter()
                .find_map(|c| match c {
                    Command::Alert(a) => match a.code() {
                        Some(AlertCode::CLIENT_INITIATED_MGMT) => Some(Initiator::Client),
                        Some(AlertCode::SERVER_INITIATED_MGMT) => Some(Initiator::Server),
                        _ => None,
                    },
                    _ => None,
                })
                .unwrap_or(Initiator::Unknown);
            self.events.push_back(Event::SessionStarted {
                session_id: h.session_id.trim().to_owned(),
                device_id: device.to_owned(),
                initiator,
            });
        }
        if let Some(meta) = h.meta.as_deref() {
            if let Some(m) = meta.max_msg_size() {
                w.client_max_msg_size = Some(m);
            }
            if let Some(m) = meta.max_obj_size() {
                w.client_max_obj_size = Some(m);
            }
        }
        w.client_package_open = !self.message.body.is_final;
        self.check_interrupted_incoming();
        let commands = std::mem::take(&mut self.message.body.commands);
        for c in &commands {
            self.command(c);
        }
        self.message.body.commands = commands;
    }

    fn command(&mut self, c: &Command) {
        if !matches!(c, Command::Status(_))
            && c.cmd_id()
                .is_none_or(|id| id.as_str().trim().is_empty() || id.is_zero())
        {
            // Windows answers a command without a usable CmdID with 400 and a blank CmdRef.
            self.push_status(c, StatusCode::BAD_REQUEST);
            return;
        }
        match c {
            Command::Status(s) => self.client_status(s),
            Command::Results(r) => {
                let code = self.client_results(c, r);
                self.push_status(c, code);
            }
            Command::Alert(a) => {
                let code = self.client_alert(a);
                self.push_status(c, code);
            }
            Command::Replace(ic) | Command::Add(ic) => {
                let code = self.client_data(c, ic);
                self.push_status(c, code);
            }
            other => {
                self.events.push_back(Event::UnsupportedCommand {
                    name: other.name().to_owned(),
                });
                self.push_status(other, StatusCode::COMMAND_NOT_ALLOWED);
                fn children(ex: &mut Exchange<'_>, c: &Command) {
                    for k in c.children() {
                        ex.push_status(k, StatusCode::COMMAND_NOT_ALLOWED);
                        children(ex, k);
                    }
                }
                children(self, other);
            }
        }
    }

    fn client_alert(&mut self, a: &crate::model::Alert) -> StatusCode {
        let Some(_) = a.code() else {
            return StatusCode::BAD_REQUEST;
        };
        match KnownAlert::from_alert(a) {
            KnownAlert::ClientInitiatedSession
            | KnownAlert::ServerInitiatedSession
            | KnownAlert::NextMessage => {}
            KnownAlert::SessionAbort => {
                self.client_aborted = true;
                self.events.push_back(Event::ClientAborted);
            }
            KnownAlert::LoginStatus(s) => {
                self.work.user.login_status = Some(s.clone());
                self.events.push_back(Event::LoginStatus(s));
            }
            KnownAlert::AadUserToken(t) => self.events.push_back(Event::UserToken(t)),
            KnownAlert::NoEndOfData => {
                if let Some(o) = self.work.outgoing.take() {
                    self.work.awaiting.retain(|t| *t != o.tag);
                    self.events
                        .push_back(Event::OutgoingObjectAborted { tag: o.tag });
                }
            }
            KnownAlert::Generic(items) => {
                let (unenroll, other): (Vec<_>, Vec<_>) = items
                    .into_iter()
                    .partition(GenericAlert::is_unenroll_request);
                if !unenroll.is_empty() {
                    self.events.push_back(Event::UnenrollRequested);
                }
                if !other.is_empty() {
                    self.events.push_back(Event::GenericAlerts(other));
                }
            }
            other => self.events.push_back(Event::ClientAlert(other)),
        }
        StatusCode::OK
    }

    fn client_status(&mut self, s: &Status) {
        let typed = ClientStatus {
            msg_ref: s.msg_ref.clone().unwrap_or_else(|| Text::from("1")),
            cmd_ref: s.cmd_ref.clone().unwrap_or_default(),
            cmd: s.cmd.clone(),
            code: s.code(),
            target_ref: s.target_ref.clone(),
            source_ref: s.source_ref.clone(),
            original_error: s.original_error.clone().or_else(|| {
                s.items
                    .iter()
                    .find_map(|i| i.data.as_ref().and_then(|d| d.original_error.clone()))
            }),
        };
        if typed.cmd_ref.trim() == "0" {
            if let Some(code) = typed.code
                && !code.is_success()
            {
                self.events.push_back(Event::HeaderRefused(code));
            }
            return;
        }
        let Some(sent) = self.lookup(&typed.msg_ref, &typed.cmd_ref).cloned() else {
            self.events
                .push_back(Event::Uncorrelated(Response::Status(typed)));
            return;
        };
        let code = typed.code.unwrap_or(StatusCode::COMMAND_FAILED);
        let current_object = self
            .work
            .outgoing
            .as_ref()
            .is_some_and(|o| o.tag == sent.tag);
        if sent.chunk == Some(false) && code == StatusCode::CHUNKED_ITEM_ACCEPTED {
            // A middle chunk was buffered: the next one goes in the next message.
            if let (true, Some(o)) = (current_object, &mut self.work.outgoing) {
                o.acknowledged = true;
            }
            return;
        }
        if sent.chunk.is_some() && current_object {
            // The last chunk answered, or a chunk refused: the object is done.
            self.work.outgoing = None;
        }
        if sent.path.is_empty() {
            self.work.awaiting.retain(|t| *t != sent.tag);
        }
        self.events.push_back(Event::Status {
            tag: sent.tag,
            path: sent.path,
            status: typed,
        });
    }

    fn lookup(&self, msg_ref: &str, cmd_ref: &str) -> Option<&Sent> {
        let (Some(m), Some(c)) = (msg_number(msg_ref), msg_number(cmd_ref)) else {
            return None;
        };
        self.work
            .sent
            .iter()
            .rev()
            .find(|s| u64::from(s.msg_id) == m && u64::from(s.cmd_id) == c)
    }
}
