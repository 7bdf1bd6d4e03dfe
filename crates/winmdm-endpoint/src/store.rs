//! What an endpoint keeps, behind a trait: devices, certificates, the command queue,
//! results and DM session states. [`MemoryStore`](crate::MemoryStore) keeps it in memory;
//! a database implements [`Store`] and proves it with the exported conformance suite
//! (feature `conformance`).
//!
//! A command moves `queued` → `sent` (handed to a session) → `done` (the device's status
//! arrived, with its results) — or back to `queued` when the session ended before sending
//! it. A command whose status never came stays `sent` and is reported as such: it may or
//! may not have run, and only the vendor can decide whether to queue it again.
//!
//! Everything one management message changes — commands handed out, statuses, results,
//! the check-in, the next nonce, the session state — is one [`Commit`], applied atomically
//! and only if the session is still at the version the message was processed against. A
//! crash before the commit changes nothing (the device resends and the message is
//! processed again); a crash after it is answered from the stored session, which
//! recognises the resent message and replays its reply. Nothing is lost or done twice,
//! and two instances cannot both advance one session.

use serde::Serialize;

use crate::commands::CommandSpec;

/// A storage failure (details are logged, never sent to devices).
#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub struct StoreError(pub String);

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self(e.to_string())
    }
}

/// Unix times written as RFC 3339 UTC timestamps (`2026-12-05T17:59:36Z`) for people
/// reading the admin API; the stores keep seconds.
pub mod rfc3339 {
    use serde::Serializer;
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    /// `secs` as RFC 3339, or `None` past the year 9999.
    pub fn format(secs: u64) -> Option<String> {
        let at = OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
        at.format(&Rfc3339).ok()
    }

    pub(crate) fn serialize<S: Serializer>(secs: &u64, s: S) -> Result<S::Ok, S::Error> {
        match format(*secs) {
            Some(text) => s.serialize_str(&text),
            None => Err(serde::ser::Error::custom("time out of range")),
        }
    }

    pub(crate) fn serialize_option<S: Serializer>(
        secs: &Option<u64>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match secs {
            Some(secs) => serialize(secs, s),
            None => s.serialize_none(),
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn formats_utc_seconds() {
            assert_eq!(super::format(0).as_deref(), Some("1970-01-01T00:00:00Z"));
            assert_eq!(
                super::format(1_796_490_805).as_deref(),
                Some("2026-12-05T17:13:25Z")
            );
            assert_eq!(super::format(u64::MAX), None);
        }
    }
}

/// An enrolled device.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRecord {
    /// The Entra device ID (the OMA-DM `Source` and the certificate's CN).
    pub device_id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// The enrolling user's object ID.
    pub user_oid: String,
    /// The enrolling user's UPN.
    pub upn: Option<String>,
    /// `Device` or `Full`.
    pub enrollment_type: String,
    /// The current certificate (DER).
    #[serde(skip)]
    pub certificate: Vec<u8>,
    /// Its SHA-1 thumbprint (hex).
    pub thumbprint: String,
    /// OMA-DM digest user name.
    #[serde(skip)]
    pub digest_username: String,
    /// OMA-DM digest secret.
    #[serde(skip)]
    pub digest_password: String,
    /// The nonce the device uses next (base64).
    #[serde(skip)]
    pub nonce: String,
    /// When it enrolled (Unix seconds; RFC 3339 in the admin API).
    #[serde(serialize_with = "rfc3339::serialize")]
    pub enrolled_at: u64,
    /// Its last management session.
    #[serde(serialize_with = "rfc3339::serialize_option")]
    pub last_checkin: Option<u64>,
    /// The last LoginStatus it reported.
    pub login_status: Option<String>,
    /// The last compliance reported to Graph.
    pub compliant: Option<bool>,
    /// When it unenrolled, if it did.
    #[serde(serialize_with = "rfc3339::serialize_option")]
    pub unenrolled_at: Option<u64>,
    /// The `./DevInfo` values it sent last.
    pub dev_info: Vec<(String, String)>,
    /// The certificate the last renewal replaced (SHA-1 thumbprint): it may renew again
    /// only until the current one has been used, for a device that lost the response.
    pub previous_thumbprint: Option<String>,
    /// Whether the device has used its current certificate (presented it to the
    /// management endpoint, or renewed with it).
    pub certificate_used: bool,
}

impl std::fmt::Debug for DeviceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRecord")
            .field("device_id", &self.device_id)
            .field("tenant_id", &self.tenant_id)
            .field("enrollment_type", &self.enrollment_type)
            .field("thumbprint", &self.thumbprint)
            .field("digest", &"[redacted]")
            .field("last_checkin", &self.last_checkin)
            .field("unenrolled_at", &self.unenrolled_at)
            .finish_non_exhaustive()
    }
}

/// One status the device sent for a command: Windows answers a command on several nodes
/// with one status per node (`TargetRef`), and puts the HRESULT behind a failure in
/// `msft:originalerror`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusRecord {
    /// The node it is for (`TargetRef`), when the device named one.
    pub target: Option<String>,
    /// The status code.
    pub code: u16,
    /// `msft:originalerror`, when the device gave one (`0x80070057`).
    pub original_error: Option<String>,
}

/// A command's aggregate status: the first failure among its statuses, else the first
/// status (a failed target is never hidden by later successes).
pub fn aggregate(statuses: &[StatusRecord]) -> Option<u16> {
    statuses
        .iter()
        .find(|s| !(200..300).contains(&s.code))
        .or_else(|| statuses.first())
        .map(|s| s.code)
}

/// A queued command with what came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandRecord {
    /// Its ID.
    pub id: i64,
    /// The command.
    pub command: CommandSpec,
    /// `queued`, `sent` or `done`.
    pub state: String,
    /// The aggregate of its statuses ([`aggregate`]; for `Atomic`/`Sequence`, the
    /// container's).
    pub status: Option<u16>,
    /// Every status the device sent for it, in order: one per target when the device
    /// answers per node.
    pub statuses: Vec<StatusRecord>,
    /// Results (`Get`): node and value.
    pub results: Vec<(String, String)>,
    /// When it was queued.
    #[serde(serialize_with = "rfc3339::serialize")]
    pub queued_at: u64,
    /// The user (object ID) it is for; `None` for the device.
    pub for_user: Option<String>,
}

/// A queued command, as a session takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Its ID.
    pub id: i64,
    /// The command.
    pub command: CommandSpec,
    /// The user (Entra object ID) it is for: the session sends it only while that user is
    /// signed in (the integration doc's scope rules); `None` for the device.
    pub for_user: Option<String>,
}

/// A stored DM session state and its version (for optimistic concurrency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The `SessionState` as JSON.
    pub state: String,
    /// Incremented by every commit.
    pub version: i64,
}

/// What happens to the session row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionWrite {
    /// Unchanged (a refused message).
    Keep,
    /// The new state.
    Put(String),
    /// The session ended.
    Delete,
}

/// A check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIn {
    /// When.
    pub at: u64,
    /// The LoginStatus the device reported, if it did.
    pub login_status: Option<String>,
    /// The DevInfo it sent, if it did.
    pub dev_info: Option<Vec<(String, String)>>,
}

/// Everything one management message changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The device.
    pub device_id: String,
    /// The session.
    pub session_id: String,
    /// The version the message was processed against; `None` for a session not stored
    /// yet.
    pub expected_version: Option<i64>,
    /// The session row.
    pub session: SessionWrite,
    /// Commands handed to the session now (they must still be `queued`).
    pub sent: Vec<i64>,
    /// Commands back to the queue (never sent before the session ended).
    pub requeue: Vec<i64>,
    /// Statuses, per command and target, in the order the device sent them; the command
    /// is `done` and its aggregate ([`aggregate`]) is kept — a failure already recorded is
    /// never replaced by a success.
    pub statuses: Vec<(i64, StatusRecord)>,
    /// Results.
    pub results: Vec<(i64, Vec<(String, String)>)>,
    /// The check-in, for an authenticated message.
    pub check_in: Option<CheckIn>,
    /// The nonce the device uses next (base64).
    pub nonce: Option<String>,
    /// The device unenrolled at this time.
    pub unenrolled_at: Option<u64>,
}

impl Commit {
    /// A commit that changes nothing yet.
    pub fn new(device_id: &str, session_id: &str, expected_version: Option<i64>) -> Self {
        Self {
            device_id: device_id.to_owned(),
            session_id: session_id.to_owned(),
            expected_version,
            session: SessionWrite::Keep,
            sent: Vec::new(),
            requeue: Vec::new(),
            statuses: Vec::new(),
            results: Vec::new(),
            check_in: None,
            nonce: None,
            unenrolled_at: None,
        }
    }
}

/// Why a commit was not applied.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The session or a command changed since the message was read: nothing applied.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Storage failed: nothing applied.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<serde_json::Error> for CommitError {
    fn from(e: serde_json::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Whose word lets an enrollment replace an existing record with the same device ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// The device ID is verified (the token's `deviceid` claim, which Entra vouches for):
    /// the device itself re-enrolls, whichever user of its tenant enrolled it before. Never
    /// across tenants: a device registered in another tenant has another ID, so a record of
    /// another tenant is never replaced.
    VerifiedDevice,
    /// The device ID is only the request's word (a work account's `DeviceID`): an
    /// existing record is replaced only by an enrollment of the same tenant and user.
    SameOwner,
}

impl Replace {
    /// Whether an enrollment of `new` may replace a record of `tenant_id` / `user_oid`.
    pub fn allows(self, tenant_id: &str, user_oid: &str, new: &DeviceRecord) -> bool {
        match self {
            Self::VerifiedDevice => tenant_id == new.tenant_id,
            Self::SameOwner => tenant_id == new.tenant_id && user_oid == new.user_oid,
        }
    }
}

/// What an enrollment may do to the records already stored, decided by the endpoint from
/// the enrollment's evidence and the vendor's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Whose word lets it replace a record with the same device ID.
    pub replace: Replace,
    /// The most devices one user (tenant and object ID) may have enrolled at once, this
    /// one included (a re-enrollment of a device the user already has does not count
    /// twice; unenrolled devices do not count). `None`: no limit.
    pub max_devices_per_user: Option<u32>,
}

impl From<Replace> for Admission {
    fn from(replace: Replace) -> Self {
        Self {
            replace,
            max_devices_per_user: None,
        }
    }
}

/// What [`Store::enroll`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Enrolled {
    /// The device is stored (new, or replacing its earlier record).
    Stored,
    /// A record with this device ID belongs to another tenant or user and the
    /// enrollment's evidence does not let it be replaced: nothing changed.
    OwnedByAnother,
    /// The user already has [`Admission::max_devices_per_user`] other enrolled devices:
    /// nothing changed.
    CapReached,
}

/// A stored Enrollment Status Page tracker state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEsp {
    /// [`crate::esp::EspState`] as JSON.
    pub state: String,
    /// Its version (optimistic concurrency).
    pub version: i64,
}

/// What the server keeps.
pub trait Store: Send + Sync + 'static {
    /// Inserts a new device, or replaces a re-enrolling one (its old queue and sessions
    /// are dropped) when `admission.replace` allows it, and only while the user stays
    /// within `admission.max_devices_per_user` — atomically: a refused enrollment changes
    /// nothing.
    ///
    /// # Errors
    /// [`StoreError`].
    fn enroll(
        &self,
        device: &DeviceRecord,
        initial: &[CommandSpec],
        now: u64,
        admission: Admission,
    ) -> Result<Enrolled, StoreError>;
    /// A device.
    ///
    /// # Errors
    /// [`StoreError`].
    fn device(&self, device_id: &str) -> Result<Option<DeviceRecord>, StoreError>;
    /// Every device.
    ///
    /// # Errors
    /// [`StoreError`].
    fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError>;
    /// The device whose current certificate, or whose previous one while the current one
    /// is unused, has this SHA-1 thumbprint: the device a renewal signed with that
    /// certificate is for.
    ///
    /// # Errors
    /// [`StoreError`].
    fn device_by_certificate(&self, thumbprint: &str) -> Result<Option<DeviceRecord>, StoreError>;
    /// Replaces a device's certificate (renewal) if the renewal was signed with its current
    /// certificate, or with the previous one while the current one is unused; atomically.
    /// Returns whether it did.
    ///
    /// # Errors
    /// [`StoreError`].
    fn renew_certificate(
        &self,
        device_id: &str,
        signed_with: &str,
        der: &[u8],
        thumbprint: &str,
    ) -> Result<bool, StoreError>;
    /// Records that the device used its current certificate `thumbprint`: from then on
    /// the previous one renews no more.
    ///
    /// # Errors
    /// [`StoreError`].
    fn certificate_used(&self, device_id: &str, thumbprint: &str) -> Result<(), StoreError>;
    /// Records the compliance reported to Graph.
    ///
    /// # Errors
    /// [`StoreError`].
    fn set_compliance(&self, device_id: &str, compliant: bool) -> Result<(), StoreError>;
    /// Queues a command, for the device or for one user; returns its ID.
    ///
    /// # Errors
    /// [`StoreError`].
    fn queue(
        &self,
        device_id: &str,
        command: &CommandSpec,
        for_user: Option<&str>,
        now: u64,
    ) -> Result<i64, StoreError>;
    /// A device's queued commands, oldest first (nothing changes until a [`Commit`] hands
    /// them to a session).
    ///
    /// # Errors
    /// [`StoreError`].
    fn queued(&self, device_id: &str) -> Result<Vec<Queued>, StoreError>;
    /// A device's commands, newest last.
    ///
    /// # Errors
    /// [`StoreError`].
    fn commands(&self, device_id: &str) -> Result<Vec<CommandRecord>, StoreError>;
    /// A stored DM session.
    ///
    /// # Errors
    /// [`StoreError`].
    fn session(
        &self,
        device_id: &str,
        session_id: &str,
    ) -> Result<Option<StoredSession>, StoreError>;
    /// The device's stored sessions other than `except` (abandoned ones are swept when a
    /// new session starts).
    ///
    /// # Errors
    /// [`StoreError`].
    fn other_sessions(
        &self,
        device_id: &str,
        except: &str,
    ) -> Result<Vec<(String, StoredSession)>, StoreError>;
    /// Applies everything one management message changed, atomically.
    ///
    /// # Errors
    /// [`CommitError::Conflict`] when the session moved on (another instance, or a
    /// concurrent request) or a command was handed out elsewhere: nothing was applied;
    /// [`CommitError::Store`].
    fn commit(&self, commit: &Commit) -> Result<(), CommitError>;
    /// Records a failed authentication of `device_id` (wrong digest credentials) at
    /// `now` and returns how many failures the current window holds, this one included. A
    /// window starts at the first failure after the previous window (`window` seconds
    /// long) ended. Unknown devices: 0, nothing recorded.
    ///
    /// # Errors
    /// [`StoreError`].
    fn auth_failed(&self, device_id: &str, now: u64, window: u64) -> Result<u32, StoreError>;
    /// How many failed authentications of `device_id` the window open at `now` holds (0
    /// once it has ended).
    ///
    /// # Errors
    /// [`StoreError`].
    fn auth_failures(&self, device_id: &str, now: u64, window: u64) -> Result<u32, StoreError>;
    /// Forgets the device's failures (it authenticated).
    ///
    /// # Errors
    /// [`StoreError`].
    fn auth_succeeded(&self, device_id: &str) -> Result<(), StoreError>;
    /// The device's Enrollment Status Page tracker state ([`crate::esp::EspState`] as
    /// JSON) and its version, if it has one.
    ///
    /// # Errors
    /// [`StoreError`].
    fn esp(&self, device_id: &str) -> Result<Option<StoredEsp>, StoreError>;
    /// Writes the device's tracker state if the stored version is still `expected`
    /// (`None`: none stored); returns whether it did (`false`: another request moved it
    /// on, nothing written). The version grows by one with each write; re-enrolling the
    /// device (a new [`Store::enroll`]) drops the old state.
    ///
    /// # Errors
    /// [`StoreError`].
    fn put_esp(
        &self,
        device_id: &str,
        state: &str,
        expected: Option<i64>,
    ) -> Result<bool, StoreError>;
    /// Checks that storage answers, cheaply (constant time: health checks call it). The
    /// default reads one device by key; a database does `SELECT 1`.
    ///
    /// # Errors
    /// [`StoreError`] when storage is unreachable.
    fn ping(&self) -> Result<(), StoreError> {
        self.device("").map(|_| ())
    }
    /// How many rows of any kind mention `device_id` (for "left no trace" checks).
    ///
    /// # Errors
    /// [`StoreError`].
    fn traces_of(&self, device_id: &str) -> Result<u64, StoreError>;
}
