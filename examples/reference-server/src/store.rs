//! Storage behind a trait: devices, certificates, the command queue, results and DM session
//! states. [`SqliteStore`] is the default; another database implements [`Store`].
//!
//! A command moves `queued` → `sent` (handed to a session) → `done` (the device's status
//! arrived, with its results) — or back to `queued` when the session ended before sending
//! it. A command whose status never came stays `sent` and is reported as such: it may or
//! may not have run, and only the vendor can decide whether to queue it again.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;

use crate::commands::CommandSpec;

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
    /// When it enrolled (Unix seconds).
    pub enrolled_at: u64,
    /// Its last management session.
    pub last_checkin: Option<u64>,
    /// The last LoginStatus it reported.
    pub login_status: Option<String>,
    /// The last compliance reported to Graph.
    pub compliant: Option<bool>,
    /// When it unenrolled, if it did.
    pub unenrolled_at: Option<u64>,
    /// The `./DevInfo` values it sent last.
    pub dev_info: Vec<(String, String)>,
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
    pub queued_at: u64,
}

/// What the server keeps.
pub trait Store: Send + Sync + 'static {
    /// Inserts a new device or replaces a re-enrolling one (its old queue and sessions
    /// are dropped).
    ///
    /// # Errors
    /// [`StoreError`].
    fn enroll(
        &self,
        device: &DeviceRecord,
        initial: &[CommandSpec],
        now: u64,
    ) -> Result<(), StoreError>;
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
    /// Replaces a device's certificate (renewal).
    ///
    /// # Errors
    /// [`StoreError`].
    fn set_certificate(
        &self,
        device_id: &str,
        der: &[u8],
        thumbprint: &str,
    ) -> Result<(), StoreError>;
    /// Records a check-in and what the device said about itself.
    ///
    /// # Errors
    /// [`StoreError`].
    fn check_in(
        &self,
        device_id: &str,
        now: u64,
        login_status: Option<&str>,
        dev_info: Option<&[(String, String)]>,
    ) -> Result<(), StoreError>;
    /// Stores the nonce the device uses next.
    ///
    /// # Errors
    /// [`StoreError`].
    fn set_nonce(&self, device_id: &str, nonce_b64: &str) -> Result<(), StoreError>;
    /// Records the compliance reported to Graph.
    ///
    /// # Errors
    /// [`StoreError`].
    fn set_compliance(&self, device_id: &str, compliant: bool) -> Result<(), StoreError>;
    /// Marks a device unenrolled (it gets no more sessions).
    ///
    /// # Errors
    /// [`StoreError`].
    fn unenroll(&self, device_id: &str, now: u64) -> Result<(), StoreError>;
    /// Queues a command; returns its ID.
    ///
    /// # Errors
    /// [`StoreError`].
    fn queue(&self, device_id: &str, command: &CommandSpec, now: u64) -> Result<i64, StoreError>;
    /// Takes every queued command of a device for a session (they become `sent`).
    ///
    /// # Errors
    /// [`StoreError`].
    fn take_queued(&self, device_id: &str) -> Result<Vec<(i64, CommandSpec)>, StoreError>;
    /// Puts commands a session did not send back in the queue.
    ///
    /// # Errors
    /// [`StoreError`].
    fn requeue(&self, ids: &[i64]) -> Result<(), StoreError>;
    /// Records a command's status (`done`).
    ///
    /// # Errors
    /// [`StoreError`].
    fn complete(&self, id: i64, status: u16) -> Result<(), StoreError>;
    /// Records results of a command.
    ///
    /// # Errors
    /// [`StoreError`].
    fn add_results(&self, id: i64, values: &[(String, String)]) -> Result<(), StoreError>;
    /// A device's commands, newest last.
    ///
    /// # Errors
    /// [`StoreError`].
    fn commands(&self, device_id: &str) -> Result<Vec<CommandRecord>, StoreError>;
    /// A stored DM session state (JSON).
    ///
    /// # Errors
    /// [`StoreError`].
    fn session(&self, device_id: &str, session_id: &str) -> Result<Option<String>, StoreError>;
    /// Stores a DM session state.
    ///
    /// # Errors
    /// [`StoreError`].
    fn put_session(
        &self,
        device_id: &str,
        session_id: &str,
        state: &str,
        now: u64,
    ) -> Result<(), StoreError>;
    /// Forgets a DM session.
    ///
    /// # Errors
    /// [`StoreError`].
    fn end_session(&self, device_id: &str, session_id: &str) -> Result<(), StoreError>;
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
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, session_id)
);
";

const SCHEMA_VERSION: i64 = 1;

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
        match version {
            None => {
                conn.execute("INSERT INTO schema_version VALUES (?1)", [SCHEMA_VERSION])?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError(format!(
                    "the database has schema version {v}; this server knows {SCHEMA_VERSION}"
                )));
            }
            Some(_) => {}
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
    })
}

const DEVICE_COLUMNS: &str = "device_id, tenant_id, user_oid, upn, enrollment_type, certificate, thumbprint, digest_username, digest_password, nonce, enrolled_at, last_checkin, login_status, compliant, unenrolled_at, dev_info";

impl Store for SqliteStore {
    fn enroll(
        &self,
        d: &DeviceRecord,
        initial: &[CommandSpec],
        now: u64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM devices WHERE device_id = ?1", [&d.device_id])?;
            tx.execute(
                &format!("INSERT INTO devices ({DEVICE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL, NULL, NULL, NULL, '[]')"),
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
            Ok(())
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

    fn set_certificate(
        &self,
        device_id: &str,
        der: &[u8],
        thumbprint: &str,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE devices SET certificate = ?2, thumbprint = ?3 WHERE device_id = ?1",
                params![device_id, der, thumbprint],
            )?;
            Ok(())
        })
    }

    fn check_in(
        &self,
        device_id: &str,
        now: u64,
        login_status: Option<&str>,
        dev_info: Option<&[(String, String)]>,
    ) -> Result<(), StoreError> {
        let dev_info = dev_info.map(serde_json::to_string).transpose()?;
        self.with(|c| {
            c.execute(
                "UPDATE devices SET last_checkin = ?2, login_status = COALESCE(?3, login_status), dev_info = COALESCE(?4, dev_info) WHERE device_id = ?1",
                params![device_id, to_i64(now), login_status, dev_info],
            )?;
            Ok(())
        })
    }

    fn set_nonce(&self, device_id: &str, nonce_b64: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE devices SET nonce = ?2 WHERE device_id = ?1",
                params![device_id, nonce_b64],
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

    fn unenroll(&self, device_id: &str, now: u64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE devices SET unenrolled_at = ?2 WHERE device_id = ?1",
                params![device_id, to_i64(now)],
            )?;
            Ok(())
        })
    }

    fn queue(&self, device_id: &str, command: &CommandSpec, now: u64) -> Result<i64, StoreError> {
        let json = serde_json::to_string(command)?;
        self.with(|c| {
            c.execute(
                "INSERT INTO commands (device_id, command, state, queued_at) VALUES (?1, ?2, 'queued', ?3)",
                params![device_id, json, to_i64(now)],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    fn take_queued(&self, device_id: &str) -> Result<Vec<(i64, CommandSpec)>, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let taken = {
                let mut st = tx.prepare(
                    "SELECT id, command FROM commands WHERE device_id = ?1 AND state = 'queued' ORDER BY id",
                )?;
                let rows = st.query_map([device_id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            let mut out = Vec::with_capacity(taken.len());
            for (id, json) in taken {
                tx.execute("UPDATE commands SET state = 'sent' WHERE id = ?1", [id])?;
                out.push((id, serde_json::from_str(&json)?));
            }
            tx.commit()?;
            Ok(out)
        })
    }

    fn requeue(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            for id in ids {
                tx.execute(
                    "UPDATE commands SET state = 'queued' WHERE id = ?1 AND state = 'sent'",
                    [id],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn complete(&self, id: i64, status: u16) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE commands SET state = 'done', status = ?2 WHERE id = ?1",
                params![id, status],
            )?;
            Ok(())
        })
    }

    fn add_results(&self, id: i64, values: &[(String, String)]) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let base: i64 = tx.query_row(
                "SELECT COUNT(*) FROM results WHERE command_id = ?1",
                [id],
                |r| r.get(0),
            )?;
            for (i, (uri, data)) in values.iter().enumerate() {
                tx.execute(
                    "INSERT INTO results (command_id, seq, uri, data) VALUES (?1, ?2, ?3, ?4)",
                    params![id, base + i64::try_from(i).unwrap_or(0), uri, data],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn commands(&self, device_id: &str) -> Result<Vec<CommandRecord>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, command, state, status, queued_at FROM commands WHERE device_id = ?1 ORDER BY id",
            )?;
            let rows = st
                .query_map([device_id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<u16>>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut res = c.prepare("SELECT uri, data FROM results WHERE command_id = ?1 ORDER BY seq")?;
            let mut out = Vec::with_capacity(rows.len());
            for (id, json, state, status, queued_at) in rows {
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
                });
            }
            Ok(out)
        })
    }

    fn session(&self, device_id: &str, session_id: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT state FROM sessions WHERE device_id = ?1 AND session_id = ?2",
                [device_id, session_id],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn put_session(
        &self,
        device_id: &str,
        session_id: &str,
        state: &str,
        now: u64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO sessions (device_id, session_id, state, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (device_id, session_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                params![device_id, session_id, state, to_i64(now)],
            )?;
            Ok(())
        })
    }

    fn end_session(&self, device_id: &str, session_id: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM sessions WHERE device_id = ?1 AND session_id = ?2",
                [device_id, session_id],
            )?;
            Ok(())
        })
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

    fn device(id: &str) -> DeviceRecord {
        DeviceRecord {
            device_id: id.into(),
            tenant_id: "t".into(),
            user_oid: "u".into(),
            upn: Some("a@b".into()),
            enrollment_type: "Device".into(),
            certificate: vec![1, 2, 3],
            thumbprint: "ab".into(),
            digest_username: "n".into(),
            digest_password: "p".into(),
            nonce: "AAAA".into(),
            enrolled_at: 10,
            last_checkin: None,
            login_status: None,
            compliant: None,
            unenrolled_at: None,
            dev_info: Vec::new(),
        }
    }

    #[test]
    fn queue_lifecycle_and_reenrollment() {
        let s = SqliteStore::in_memory().unwrap();
        let get = CommandSpec::Get {
            targets: vec!["./A".into()],
        };
        s.enroll(&device("d1"), std::slice::from_ref(&get), 10)
            .unwrap();
        let b = s.queue("d1", &get, 11).unwrap();
        let taken = s.take_queued("d1").unwrap();
        assert_eq!(taken.len(), 2);
        assert!(s.take_queued("d1").unwrap().is_empty(), "taken once");
        s.complete(taken[0].0, 200).unwrap();
        s.add_results(taken[0].0, &[("./A".into(), "1".into())])
            .unwrap();
        s.requeue(&[b]).unwrap();
        let cmds = s.commands("d1").unwrap();
        assert_eq!(cmds[0].state, "done");
        assert_eq!(cmds[0].results, [("./A".to_owned(), "1".to_owned())]);
        assert_eq!(cmds[1].state, "queued");
        // A done command is never re-queued.
        s.requeue(&[taken[0].0]).unwrap();
        assert_eq!(s.commands("d1").unwrap()[0].state, "done");
        s.put_session("d1", "1", "{}", 12).unwrap();
        assert_eq!(s.traces_of("d1").unwrap(), 4);
        // Re-enrolling starts over.
        s.enroll(&device("d1"), &[], 20).unwrap();
        assert_eq!(s.traces_of("d1").unwrap(), 1);
        assert_eq!(s.traces_of("nobody").unwrap(), 0);
    }
}
