//! Storage: the [`Store`] trait and its records come from winmdm-endpoint (re-exported
//! here); [`SqliteStore`] is the default, [`postgres::PostgresStore`] serves several
//! instances, and both pass winmdm-endpoint's conformance suite.
//!
//! A command moves `queued` → `sent` (handed to a session) → `done` (the device's status
//! arrived, with its results) — or back to `queued` when the session ended before sending
//! it. A command whose status never came stays `sent` and is reported as such: it may or
//! may not have run, and only the vendor can decide whether to queue it again.
//!
//! Everything one management message changes is one [`Commit`], applied atomically and
//! only if the session is still at the version the message was processed against.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::commands::CommandSpec;

pub mod postgres;

pub use winmdm_endpoint::store::{
    Admission, CheckIn, CommandRecord, Commit, CommitError, DeviceRecord, Enrolled, Queued,
    Replace, SessionWrite, StatusRecord, Store, StoreError, StoredEsp, StoredSession, rfc3339,
};

/// A failure inside a store implementation; converted to [`StoreError`] or
/// [`CommitError`] at the trait boundary.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Storage failed.
    Store(String),
    /// A commit's precondition did not hold.
    Conflict(String),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.to_string())
    }
}

impl From<serde_json::Error> for Fail {
    fn from(e: serde_json::Error) -> Self {
        Self::Store(e.to_string())
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Self::Store(e.0)
    }
}

impl From<Fail> for StoreError {
    fn from(e: Fail) -> Self {
        match e {
            Fail::Store(s) | Fail::Conflict(s) => Self(s),
        }
    }
}

impl From<Fail> for CommitError {
    fn from(e: Fail) -> Self {
        match e {
            Fail::Store(s) => Self::Store(StoreError(s)),
            Fail::Conflict(s) => Self::Conflict(s),
        }
    }
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
    (4, MIGRATION_4),
    (5, MIGRATION_5),
];

/// The Enrollment Status Page tracker per device.
const MIGRATION_5: &str = "CREATE TABLE IF NOT EXISTS esp (
    device_id TEXT PRIMARY KEY REFERENCES devices(device_id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    version INTEGER NOT NULL
);";

/// Failed authentications per device, counted in a window (digest lockout).
/// And every status a device sent, per command and target.
const MIGRATION_4: &str = "ALTER TABLE devices ADD COLUMN auth_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN auth_failures_since INTEGER;
CREATE TABLE IF NOT EXISTS command_statuses (
    command_id INTEGER NOT NULL REFERENCES commands(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    target TEXT,
    code INTEGER NOT NULL,
    original_error TEXT
);
CREATE INDEX IF NOT EXISTS command_statuses_by_command ON command_statuses(command_id);";

/// Renewal by certificate: the certificate a renewal replaced, and whether the current one
/// has been used (a device's existing certificate counts as used).
const MIGRATION_3: &str = "ALTER TABLE devices ADD COLUMN previous_thumbprint TEXT;
ALTER TABLE devices ADD COLUMN certificate_used INTEGER NOT NULL DEFAULT 1;
CREATE INDEX IF NOT EXISTS devices_by_thumbprint ON devices(thumbprint);
CREATE INDEX IF NOT EXISTS devices_by_previous_thumbprint ON devices(previous_thumbprint);";

const SCHEMA_VERSION: i64 = 5;

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
        Ok(Self::init(Connection::open(path).map_err(Fail::from)?)?)
    }

    /// An in-memory database (tests).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn in_memory() -> Result<Self, StoreError> {
        Ok(Self::init(
            Connection::open_in_memory().map_err(Fail::from)?,
        )?)
    }

    fn init(conn: Connection) -> Result<Self, Fail> {
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
                return Err(Fail::Store(format!(
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

    fn apply(&self, m: &Commit) -> Result<(), Fail> {
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
            return Err(Fail::Conflict(format!(
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
                return Err(Fail::Conflict(format!(
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
        for (id, status) in &m.statuses {
            let n = tx.execute(
                "UPDATE commands SET state = 'done', status = CASE \
                   WHEN status IS NULL THEN ?2 \
                   WHEN status BETWEEN 200 AND 299 AND (?2 < 200 OR ?2 > 299) THEN ?2 \
                   ELSE status END \
                 WHERE id = ?1 AND device_id = ?3",
                params![id, status.code, m.device_id],
            )?;
            if n == 1 {
                tx.execute(
                    "INSERT INTO command_statuses (command_id, seq, target, code, original_error) \
                     SELECT ?1, COUNT(*), ?2, ?3, ?4 FROM command_statuses WHERE command_id = ?1",
                    params![id, status.target, status.code, status.original_error],
                )?;
            }
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

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, Fail>) -> Result<T, StoreError> {
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut conn).map_err(StoreError::from)
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
        admission: Admission,
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
                && !admission.replace.allows(&tenant, &user, d)
            {
                return Ok(Enrolled::OwnedByAnother);
            }
            if let Some(cap) = admission.max_devices_per_user {
                let others: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM devices WHERE tenant_id = ?1 AND user_oid = ?2 \
                     AND device_id <> ?3 AND unenrolled_at IS NULL",
                    params![d.tenant_id, d.user_oid, d.device_id],
                    |r| r.get(0),
                )?;
                if others >= i64::from(cap) {
                    return Ok(Enrolled::CapReached);
                }
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
            let mut sts = c.prepare(
                "SELECT target, code, original_error FROM command_statuses WHERE command_id = ?1 ORDER BY seq",
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for (id, json, state, status, queued_at, for_user) in rows {
                let results = res
                    .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                let statuses = sts
                    .query_map([id], |r| {
                        Ok(StatusRecord {
                            target: r.get(0)?,
                            code: r.get(1)?,
                            original_error: r.get(2)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(CommandRecord {
                    id,
                    command: serde_json::from_str(&json)?,
                    state,
                    status,
                    statuses,
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
        self.apply(m).map_err(CommitError::from)
    }

    fn auth_failed(&self, device_id: &str, now: u64, window: u64) -> Result<u32, StoreError> {
        self.with(|c| {
            let n: Option<i64> = c
                .query_row(
                    "UPDATE devices SET \
                       auth_failures = CASE WHEN auth_failures = 0 OR auth_failures_since IS NULL \
                         OR ?2 - auth_failures_since >= ?3 THEN 1 ELSE auth_failures + 1 END, \
                       auth_failures_since = CASE WHEN auth_failures = 0 OR auth_failures_since IS NULL \
                         OR ?2 - auth_failures_since >= ?3 THEN ?2 ELSE auth_failures_since END \
                     WHERE device_id = ?1 RETURNING auth_failures",
                    params![device_id, to_i64(now), to_i64(window)],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
        })
    }

    fn auth_failures(&self, device_id: &str, now: u64, window: u64) -> Result<u32, StoreError> {
        self.with(|c| {
            let n: Option<i64> = c
                .query_row(
                    "SELECT CASE WHEN auth_failures_since IS NOT NULL \
                       AND ?2 - auth_failures_since < ?3 THEN auth_failures ELSE 0 END \
                     FROM devices WHERE device_id = ?1",
                    params![device_id, to_i64(now), to_i64(window)],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
        })
    }

    fn auth_succeeded(&self, device_id: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE devices SET auth_failures = 0, auth_failures_since = NULL \
                 WHERE device_id = ?1 AND auth_failures <> 0",
                [device_id],
            )?;
            Ok(())
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| {
            Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())?)
        })
    }

    fn esp(&self, device_id: &str) -> Result<Option<StoredEsp>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT state, version FROM esp WHERE device_id = ?1",
                [device_id],
                |r| {
                    Ok(StoredEsp {
                        state: r.get(0)?,
                        version: r.get(1)?,
                    })
                },
            )
            .optional()?)
        })
    }

    fn put_esp(
        &self,
        device_id: &str,
        state: &str,
        expected: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            let n = match expected {
                // The device must exist (the foreign key); a row already there loses.
                None => c.execute(
                    "INSERT INTO esp (device_id, state, version)                      SELECT ?1, ?2, 1 WHERE EXISTS (SELECT 1 FROM devices WHERE device_id = ?1)                      ON CONFLICT (device_id) DO NOTHING",
                    params![device_id, state],
                )?,
                Some(v) => c.execute(
                    "UPDATE esp SET state = ?2, version = version + 1                      WHERE device_id = ?1 AND version = ?3",
                    params![device_id, state, v],
                )?,
            };
            Ok(n == 1)
        })
    }

    fn traces_of(&self, device_id: &str) -> Result<u64, StoreError> {
        self.with(|c| {
            let n: i64 = c.query_row(
                "SELECT (SELECT COUNT(*) FROM devices WHERE device_id = ?1)
                      + (SELECT COUNT(*) FROM commands WHERE device_id = ?1)
                      + (SELECT COUNT(*) FROM sessions WHERE device_id = ?1)
                      + (SELECT COUNT(*) FROM esp WHERE device_id = ?1)",
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
    fn passes_the_endpoint_conformance_suite() {
        winmdm_endpoint::conformance::all(&SqliteStore::in_memory().unwrap());
    }
}
