//! Storage behind a trait: devices, certificates, the command queue, results and DM session
//! states. [`SqliteStore`] is the default; another database implements [`Store`].
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

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;

use crate::commands::CommandSpec;

pub mod conformance;
pub mod postgres;

/// A storage failure (details are logged, never sent to devices).
#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub struct StoreError(pub String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self(e.to_string())
    }
}

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

    pub(super) fn serialize<S: Serializer>(secs: &u64, s: S) -> Result<S::Ok, S::Error> {
        match format(*secs) {
            Some(text) => s.serialize_str(&text),
            None => Err(serde::ser::Error::custom("time out of range")),
        }
    }

    pub(super) fn serialize_option<S: Serializer>(
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

/// A queued command with what came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandRecord {
    /// Its ID.
    pub id: i64,
    /// The command.
    pub command: CommandSpec,
    /// `queued`, `sent` or `done`.
    pub state: String,
    /// The device's status code for it (for `Atomic`/`Sequence`, the container's).
    pub status: Option<u16>,
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
    /// Final statuses.
    pub completed: Vec<(i64, u16)>,
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
            completed: Vec::new(),
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

impl From<rusqlite::Error> for CommitError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
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

/// What [`Store::enroll`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Enrolled {
    /// The device is stored (new, or replacing its earlier record).
    Stored,
    /// A record with this device ID belongs to another tenant or user and the
    /// enrollment's evidence does not let it be replaced: nothing changed.
    OwnedByAnother,
}

/// What the server keeps.
pub trait Store: Send + Sync + 'static {
    /// Inserts a new device, or replaces a re-enrolling one (its old queue and sessions
    /// are dropped) when `replace` allows it, atomically: a refused enrollment changes
    /// nothing.
    ///
    /// # Errors
    /// [`StoreError`].
    fn enroll(
        &self,
        device: &DeviceRecord,
        initial: &[CommandSpec],
        now: u64,
        replace: Replace,
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
    /// How many rows of any kind mention `device_id` (for "left no trace" checks).
    ///
    /// # Errors
    /// [`StoreError`].
    fn traces_of(&self, device_id: &str) -> Result<u64, StoreError>;
}

/// SQLite storage (one file, WAL journal).
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    user_oid TEXT NOT NULL,
    upn TEXT,
    enrollment_type TEXT NOT NULL,
    certificate BLOB NOT NULL,
    thumbprint TEXT NOT NULL,
    digest_username TEXT NOT NULL,
    digest_password TEXT NOT NULL,
    nonce TEXT NOT NULL,
    enrolled_at INTEGER NOT NULL,
    last_checkin INTEGER,
    login_status TEXT,
    compliant INTEGER,
    unenrolled_at INTEGER,
    dev_info TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
    command TEXT NOT NULL,
    state TEXT NOT NULL,
    status INTEGER,
    queued_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS commands_by_device ON commands(device_id, state);
CREATE TABLE IF NOT EXISTS results (
    command_id INTEGER NOT NULL REFERENCES commands(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    uri TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    device_id TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, session_id)
);
";

/// Migrations after the first schema, in order; each runs once, in a transaction.
const MIGRATIONS: &[(i64, &str)] = &[
    (2, "ALTER TABLE commands ADD COLUMN for_user TEXT;"),
    (3, MIGRATION_3),
];

/// Renewal by certificate: the certificate a renewal replaced, and whether the current one
/// has been used (a device's existing certificate counts as used).
const MIGRATION_3: &str = "ALTER TABLE devices ADD COLUMN previous_thumbprint TEXT;
ALTER TABLE devices ADD COLUMN certificate_used INTEGER NOT NULL DEFAULT 1;
CREATE INDEX IF NOT EXISTS devices_by_thumbprint ON devices(thumbprint);
CREATE INDEX IF NOT EXISTS devices_by_previous_thumbprint ON devices(previous_thumbprint);";

const SCHEMA_VERSION: i64 = 3;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl SqliteStore {
    /// Opens (creating and migrating) the database at `path`.
    ///
    /// # Errors
    /// [`StoreError`], also for a database of a newer schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::init(Connection::open(path)?)
    }

    /// An in-memory database (tests).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let version: Option<i64> = conn
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .optional()?
            .flatten();
        let version = match version {
            None => {
                conn.execute("INSERT INTO schema_version VALUES (1)", [])?;
                1
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError(format!(
                    "the database has schema version {v}; this server knows {SCHEMA_VERSION}"
                )));
            }
            Some(v) => v,
        };
        let mut conn = conn;
        for (v, sql) in MIGRATIONS.iter().filter(|m| m.0 > version) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.execute("INSERT INTO schema_version VALUES (?1)", [v])?;
            tx.commit()?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut conn)
    }
}

fn device_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRecord> {
    let dev_info: String = r.get(15)?;
    Ok(DeviceRecord {
        device_id: r.get(0)?,
        tenant_id: r.get(1)?,
        user_oid: r.get(2)?,
        upn: r.get(3)?,
        enrollment_type: r.get(4)?,
        certificate: r.get(5)?,
        thumbprint: r.get(6)?,
        digest_username: r.get(7)?,
        digest_password: r.get(8)?,
        nonce: r.get(9)?,
        enrolled_at: to_u64(r.get(10)?),
        last_checkin: r.get::<_, Option<i64>>(11)?.map(to_u64),
        login_status: r.get(12)?,
        compliant: r.get(13)?,
        unenrolled_at: r.get::<_, Option<i64>>(14)?.map(to_u64),
        dev_info: serde_json::from_str(&dev_info).unwrap_or_default(),
        previous_thumbprint: r.get(16)?,
        certificate_used: r.get(17)?,
    })
}

const DEVICE_COLUMNS: &str = "device_id, tenant_id, user_oid, upn, enrollment_type, certificate, thumbprint, digest_username, digest_password, nonce, enrolled_at, last_checkin, login_status, compliant, unenrolled_at, dev_info, previous_thumbprint, certificate_used";

impl Store for SqliteStore {
    fn enroll(
        &self,
        d: &DeviceRecord,
        initial: &[CommandSpec],
        now: u64,
        replace: Replace,
    ) -> Result<Enrolled, StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let owner: Option<(String, String)> = tx
                .query_row(
                    "SELECT tenant_id, user_oid FROM devices WHERE device_id = ?1",
                    [&d.device_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((tenant, user)) = owner
                && !replace.allows(&tenant, &user, d)
            {
                return Ok(Enrolled::OwnedByAnother);
            }
            tx.execute("DELETE FROM devices WHERE device_id = ?1", [&d.device_id])?;
            tx.execute(
                &format!("INSERT INTO devices ({DEVICE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL, NULL, NULL, NULL, '[]', NULL, 0)"),
                params![
                    d.device_id,
                    d.tenant_id,
                    d.user_oid,
                    d.upn,
                    d.enrollment_type,
                    d.certificate,
                    d.thumbprint,
                    d.digest_username,
                    d.digest_password,
                    d.nonce,
                    to_i64(d.enrolled_at)
                ],
            )?;
            for spec in initial {
                tx.execute(
                    "INSERT INTO commands (device_id, command, state, queued_at) VALUES (?1, ?2, 'queued', ?3)",
                    params![d.device_id, serde_json::to_string(spec)?, to_i64(now)],
                )?;
            }
            tx.commit()?;
            Ok(Enrolled::Stored)
        })
    }

    fn device(&self, device_id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE device_id = ?1"),
                [device_id],
                device_from_row,
            )
            .optional()?)
        })
    }

    fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices ORDER BY enrolled_at, device_id"
            ))?;
            let rows = st.query_map([], device_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn device_by_certificate(&self, thumbprint: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {DEVICE_COLUMNS} FROM devices WHERE thumbprint = ?1 \
                     OR (previous_thumbprint = ?1 AND certificate_used = 0) LIMIT 1"
                ),
                [thumbprint],
                device_from_row,
            )
            .optional()?)
        })
    }

    fn renew_certificate(
        &self,
        device_id: &str,
        signed_with: &str,
        der: &[u8],
        thumbprint: &str,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            // Signed with the current certificate: it becomes the previous one. Signed with
            // the previous one (the response was lost): it stays the previous one.
            let n = c.execute(
                "UPDATE devices SET \
                   previous_thumbprint = CASE WHEN thumbprint = ?2 THEN thumbprint ELSE previous_thumbprint END, \
                   certificate = ?3, thumbprint = ?4, certificate_used = 0 \
                 WHERE device_id = ?1 AND (thumbprint = ?2 OR (previous_thumbprint = ?2 AND certificate_used = 0))",
                params![device_id, signed_with, der, thumbprint],
            )?;
            Ok(n == 1)
        })
    }

    fn certificate_used(&self, device_id: &str, thumbprint: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE devices SET certificate_used = 1, previous_thumbprint = NULL \
                 WHERE device_id = ?1 AND thumbprint = ?2 AND certificate_used = 0",
                params![device_id, thumbprint],
            )?;
            Ok(())
        })
    }

    fn set_compliance(&self, device_id: &str, compliant: bool) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE devices SET compliant = ?2 WHERE device_id = ?1",
                params![device_id, compliant],
            )?;
            Ok(())
        })
    }

    fn queue(
        &self,
        device_id: &str,
        command: &CommandSpec,
        for_user: Option<&str>,
        now: u64,
    ) -> Result<i64, StoreError> {
        let json = serde_json::to_string(command)?;
        self.with(|c| {
            c.execute(
                "INSERT INTO commands (device_id, command, state, queued_at, for_user) VALUES (?1, ?2, 'queued', ?3, ?4)",
                params![device_id, json, to_i64(now), for_user],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    fn queued(&self, device_id: &str) -> Result<Vec<Queued>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, command, for_user FROM commands WHERE device_id = ?1 AND state = 'queued' ORDER BY id",
            )?;
            let rows = st
                .query_map([device_id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(id, json, for_user)| {
                    Ok(Queued {
                        id,
                        command: serde_json::from_str(&json)?,
                        for_user,
                    })
                })
                .collect()
        })
    }

    fn commands(&self, device_id: &str) -> Result<Vec<CommandRecord>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, command, state, status, queued_at, for_user FROM commands WHERE device_id = ?1 ORDER BY id",
            )?;
            let rows = st
                .query_map([device_id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<u16>>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut res = c.prepare("SELECT uri, data FROM results WHERE command_id = ?1 ORDER BY seq")?;
            let mut out = Vec::with_capacity(rows.len());
            for (id, json, state, status, queued_at, for_user) in rows {
                let results = res
                    .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(CommandRecord {
                    id,
                    command: serde_json::from_str(&json)?,
                    state,
                    status,
                    results,
                    queued_at: to_u64(queued_at),
                    for_user,
                });
            }
            Ok(out)
        })
    }

    fn session(
        &self,
        device_id: &str,
        session_id: &str,
    ) -> Result<Option<StoredSession>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT state, version FROM sessions WHERE device_id = ?1 AND session_id = ?2",
                [device_id, session_id],
                |r| {
                    Ok(StoredSession {
                        state: r.get(0)?,
                        version: r.get(1)?,
                    })
                },
            )
            .optional()?)
        })
    }

    fn other_sessions(
        &self,
        device_id: &str,
        except: &str,
    ) -> Result<Vec<(String, StoredSession)>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT session_id, state, version FROM sessions WHERE device_id = ?1 AND session_id <> ?2",
            )?;
            let rows = st.query_map([device_id, except], |r| {
                Ok((
                    r.get(0)?,
                    StoredSession {
                        state: r.get(1)?,
                        version: r.get(2)?,
                    },
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn commit(&self, m: &Commit) -> Result<(), CommitError> {
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = conn.transaction()?;
        let version: Option<i64> = tx
            .query_row(
                "SELECT version FROM sessions WHERE device_id = ?1 AND session_id = ?2",
                [&m.device_id, &m.session_id],
                |r| r.get(0),
            )
            .optional()?;
        if version != m.expected_version {
            return Err(CommitError::Conflict(format!(
                "session {} is at version {version:?}, not {:?}",
                m.session_id, m.expected_version
            )));
        }
        for id in &m.sent {
            let n = tx.execute(
                "UPDATE commands SET state = 'sent' WHERE id = ?1 AND device_id = ?2 AND state = 'queued'",
                params![id, m.device_id],
            )?;
            if n != 1 {
                return Err(CommitError::Conflict(format!(
                    "command {id} was handed out elsewhere"
                )));
            }
        }
        for id in &m.requeue {
            tx.execute(
                "UPDATE commands SET state = 'queued' WHERE id = ?1 AND device_id = ?2 AND state = 'sent'",
                params![id, m.device_id],
            )?;
        }
        for (id, values) in &m.results {
            let base: i64 = tx.query_row(
                "SELECT COUNT(*) FROM results WHERE command_id = ?1",
                [id],
                |r| r.get(0),
            )?;
            for (i, (uri, data)) in values.iter().enumerate() {
                tx.execute(
                    "INSERT INTO results (command_id, seq, uri, data) SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM commands WHERE id = ?1 AND device_id = ?5)",
                    params![id, base + i64::try_from(i).unwrap_or(0), uri, data, m.device_id],
                )?;
            }
        }
        for (id, status) in &m.completed {
            tx.execute(
                "UPDATE commands SET state = 'done', status = ?2 WHERE id = ?1 AND device_id = ?3",
                params![id, status, m.device_id],
            )?;
        }
        if let Some(ci) = &m.check_in {
            let dev_info = ci
                .dev_info
                .as_ref()
                .map(serde_json::to_string)
                .transpose()?;
            tx.execute(
                "UPDATE devices SET last_checkin = ?2, login_status = COALESCE(?3, login_status), dev_info = COALESCE(?4, dev_info) WHERE device_id = ?1",
                params![m.device_id, to_i64(ci.at), ci.login_status, dev_info],
            )?;
        }
        if let Some(n) = &m.nonce {
            tx.execute(
                "UPDATE devices SET nonce = ?2 WHERE device_id = ?1",
                params![m.device_id, n],
            )?;
        }
        if let Some(at) = m.unenrolled_at {
            tx.execute(
                "UPDATE devices SET unenrolled_at = ?2 WHERE device_id = ?1",
                params![m.device_id, to_i64(at)],
            )?;
        }
        match &m.session {
            SessionWrite::Keep => {}
            SessionWrite::Delete => {
                tx.execute(
                    "DELETE FROM sessions WHERE device_id = ?1 AND session_id = ?2",
                    [&m.device_id, &m.session_id],
                )?;
            }
            SessionWrite::Put(state) => {
                tx.execute(
                    "INSERT INTO sessions (device_id, session_id, state, version, updated_at) VALUES (?1, ?2, ?3, 1, ?4)
                     ON CONFLICT (device_id, session_id) DO UPDATE SET state = excluded.state, version = sessions.version + 1, updated_at = excluded.updated_at",
                    params![m.device_id, m.session_id, state, to_i64(now_secs())],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn traces_of(&self, device_id: &str) -> Result<u64, StoreError> {
        self.with(|c| {
            let n: i64 = c.query_row(
                "SELECT (SELECT COUNT(*) FROM devices WHERE device_id = ?1)
                      + (SELECT COUNT(*) FROM commands WHERE device_id = ?1)
                      + (SELECT COUNT(*) FROM sessions WHERE device_id = ?1)",
                [device_id],
                |r| r.get(0),
            )?;
            Ok(to_u64(n))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_lifecycle_and_reenrollment() {
        conformance::queue_lifecycle(&SqliteStore::in_memory().unwrap());
    }

    #[test]
    fn commits_are_atomic_and_versioned() {
        conformance::commits(&SqliteStore::in_memory().unwrap());
    }

    #[test]
    fn renewal_follows_the_certificate() {
        conformance::renewal_follows_the_certificate(&SqliteStore::in_memory().unwrap());
    }

    #[test]
    fn replacement_needs_the_owner() {
        conformance::replacement_needs_the_owner(&SqliteStore::in_memory().unwrap());
    }
}
