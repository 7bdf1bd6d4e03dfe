//! PostgreSQL storage, for more than one server instance on one database.
//!
//! The synchronous `postgres` client (on `tokio-postgres`), a small connection pool, and
//! versioned migrations applied under an advisory lock so instances starting together do
//! not race. Connections are plain TCP (keep the database on loopback or a private
//! network). Call it from blocking threads only, as [`App::db`](crate::App::db) does.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, NoTls, Transaction};

use super::{
    Admission, CommandRecord, Commit, CommitError, DeviceRecord, Enrolled, Fail, Queued,
    SessionWrite, StatusRecord, Store, StoreError, StoredEsp, StoredSession, to_i64, to_u64,
};
use crate::commands::CommandSpec;

/// Schema migrations, in order; each runs once, in a transaction.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        user_oid TEXT NOT NULL,
        upn TEXT,
        enrollment_type TEXT NOT NULL,
        certificate BYTEA NOT NULL,
        thumbprint TEXT NOT NULL,
        digest_username TEXT NOT NULL,
        digest_password TEXT NOT NULL,
        nonce TEXT NOT NULL,
        enrolled_at BIGINT NOT NULL,
        last_checkin BIGINT,
        login_status TEXT,
        compliant BOOLEAN,
        unenrolled_at BIGINT,
        dev_info TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE commands (
        id BIGSERIAL PRIMARY KEY,
        device_id TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
        command TEXT NOT NULL,
        state TEXT NOT NULL,
        status INTEGER,
        queued_at BIGINT NOT NULL
    );
    CREATE INDEX commands_by_device ON commands(device_id, state);
    CREATE TABLE results (
        command_id BIGINT NOT NULL REFERENCES commands(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        uri TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX results_by_command ON results(command_id);
    CREATE TABLE sessions (
        device_id TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
        session_id TEXT NOT NULL,
        state TEXT NOT NULL,
        version BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (device_id, session_id)
    );",
    ),
    (2, "ALTER TABLE commands ADD COLUMN for_user TEXT"),
    (
        3,
        "ALTER TABLE devices ADD COLUMN previous_thumbprint TEXT;
        ALTER TABLE devices ADD COLUMN certificate_used BOOLEAN NOT NULL DEFAULT TRUE;
        CREATE INDEX devices_by_thumbprint ON devices(thumbprint);
        CREATE INDEX devices_by_previous_thumbprint ON devices(previous_thumbprint);",
    ),
    (
        4,
        "ALTER TABLE devices ADD COLUMN auth_failures INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE devices ADD COLUMN auth_failures_since BIGINT;
        CREATE TABLE command_statuses (
            command_id BIGINT NOT NULL REFERENCES commands(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            target TEXT,
            code INTEGER NOT NULL,
            original_error TEXT
        );
        CREATE INDEX command_statuses_by_command ON command_statuses(command_id);",
    ),
    (
        5,
        "CREATE TABLE esp (
            device_id TEXT PRIMARY KEY REFERENCES devices(device_id) ON DELETE CASCADE,
            state TEXT NOT NULL,
            version BIGINT NOT NULL
        );",
    ),
];

/// An arbitrary constant: the advisory lock that serialises migrations.
const MIGRATION_LOCK: i64 = 0x7769_6e6d_646d;

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        match e.code() {
            Some(c)
                if *c == SqlState::UNIQUE_VIOLATION
                    || *c == SqlState::T_R_SERIALIZATION_FAILURE =>
            {
                Self::Conflict(e.to_string())
            }
            _ => Self::Store(e.to_string()),
        }
    }
}

/// PostgreSQL storage with a pool of up to `size` connections.
pub struct PostgresStore {
    config: postgres::Config,
    idle: Mutex<Vec<Client>>,
    open: Mutex<usize>,
    returned: Condvar,
    size: usize,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A pooled connection, returned on drop.
struct Pooled<'a> {
    store: &'a PostgresStore,
    client: Option<Client>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client
            .as_ref()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            if c.is_closed() {
                *self
                    .store
                    .open
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) -= 1;
            } else {
                self.store
                    .idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(c);
            }
            self.store.returned.notify_one();
        }
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`), applies pending
    /// migrations, and keeps up to `size` connections.
    ///
    /// # Errors
    /// [`StoreError`]: unreachable database, refused credentials, failed migration.
    pub fn connect(url: &str, size: usize) -> Result<Self, StoreError> {
        Ok(Self::connect_inner(url, size)?)
    }

    fn connect_inner(url: &str, size: usize) -> Result<Self, Fail> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| Fail::Store(format!("database URL: {e}")))?;
        config.connect_timeout(Duration::from_secs(10));
        config.application_name("winmdm-server");
        let store = Self {
            config,
            idle: Mutex::new(Vec::new()),
            open: Mutex::new(0),
            returned: Condvar::new(),
            size: size.max(1),
        };
        store.migrate()?;
        Ok(store)
    }

    fn client(&self) -> Result<Pooled<'_>, Fail> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if let Some(c) = self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop()
            {
                return Ok(Pooled {
                    store: self,
                    client: Some(c),
                });
            }
            if *open < self.size {
                *open += 1;
                drop(open);
                return match self.config.connect(NoTls) {
                    Ok(c) => Ok(Pooled {
                        store: self,
                        client: Some(c),
                    }),
                    Err(e) => {
                        *self
                            .open
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) -= 1;
                        Err(e.into())
                    }
                };
            }
            let (guard, _) = self
                .returned
                .wait_timeout(open, Duration::from_secs(5))
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            open = guard;
        }
    }

    fn migrate(&self) -> Result<(), Fail> {
        let mut c = self.client()?;
        let mut tx = c.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
        let current: i32 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?
            .get(0);
        let newest = MIGRATIONS.last().map_or(0, |m| m.0);
        if current > newest {
            return Err(Fail::Store(format!(
                "the database has schema version {current}; this server knows {newest}"
            )));
        }
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
            tx.batch_execute(sql)?;
            tx.execute("INSERT INTO schema_version VALUES ($1)", &[version])?;
            tracing::info!(version, "database migrated");
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes every row (tests).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn truncate_all(&self) -> Result<(), StoreError> {
        let run = || -> Result<(), Fail> {
            self.client()?
                .batch_execute("TRUNCATE results, sessions, commands, devices")?;
            Ok(())
        };
        Ok(run()?)
    }
}

fn device_from_row(r: &postgres::Row) -> DeviceRecord {
    let dev_info: String = r.get(15);
    DeviceRecord {
        device_id: r.get(0),
        tenant_id: r.get(1),
        user_oid: r.get(2),
        upn: r.get(3),
        enrollment_type: r.get(4),
        certificate: r.get(5),
        thumbprint: r.get(6),
        digest_username: r.get(7),
        digest_password: r.get(8),
        nonce: r.get(9),
        enrolled_at: to_u64(r.get(10)),
        last_checkin: r.get::<_, Option<i64>>(11).map(to_u64),
        login_status: r.get(12),
        compliant: r.get(13),
        unenrolled_at: r.get::<_, Option<i64>>(14).map(to_u64),
        dev_info: serde_json::from_str(&dev_info).unwrap_or_default(),
        previous_thumbprint: r.get(16),
        certificate_used: r.get(17),
    }
}

const COLUMNS: &str = super::DEVICE_COLUMNS;

fn apply(tx: &mut Transaction<'_>, m: &Commit) -> Result<(), Fail> {
    let version: Option<i64> = tx
        .query_opt(
            "SELECT version FROM sessions WHERE device_id = $1 AND session_id = $2 FOR UPDATE",
            &[&m.device_id, &m.session_id],
        )?
        .map(|r| r.get(0));
    if version != m.expected_version {
        return Err(Fail::Conflict(format!(
            "session {} is at version {version:?}, not {:?}",
            m.session_id, m.expected_version
        )));
    }
    for id in &m.sent {
        let n = tx.execute(
            "UPDATE commands SET state = 'sent' WHERE id = $1 AND device_id = $2 AND state = 'queued'",
            &[id, &m.device_id],
        )?;
        if n != 1 {
            return Err(Fail::Conflict(format!(
                "command {id} was handed out elsewhere"
            )));
        }
    }
    for id in &m.requeue {
        tx.execute(
            "UPDATE commands SET state = 'queued' WHERE id = $1 AND device_id = $2 AND state = 'sent'",
            &[id, &m.device_id],
        )?;
    }
    for (id, values) in &m.results {
        let owned = tx.query_opt(
            "SELECT 1 FROM commands WHERE id = $1 AND device_id = $2",
            &[id, &m.device_id],
        )?;
        if owned.is_none() {
            continue;
        }
        let base: i64 = tx
            .query_one("SELECT COUNT(*) FROM results WHERE command_id = $1", &[id])?
            .get(0);
        for (i, (uri, data)) in values.iter().enumerate() {
            let seq = i32::try_from(base + i64::try_from(i).unwrap_or(0)).unwrap_or(i32::MAX);
            tx.execute(
                "INSERT INTO results (command_id, seq, uri, data) VALUES ($1, $2, $3, $4)",
                &[id, &seq, uri, data],
            )?;
        }
    }
    for (id, status) in &m.statuses {
        let code = i32::from(status.code);
        let n = tx.execute(
            "UPDATE commands SET state = 'done', status = CASE \
               WHEN status IS NULL THEN $2 \
               WHEN status BETWEEN 200 AND 299 AND ($2 < 200 OR $2 > 299) THEN $2 \
               ELSE status END \
             WHERE id = $1 AND device_id = $3",
            &[id, &code, &m.device_id],
        )?;
        if n == 1 {
            tx.execute(
                "INSERT INTO command_statuses (command_id, seq, target, code, original_error) \
                 SELECT $1, COUNT(*)::INTEGER, $2, $3, $4 FROM command_statuses WHERE command_id = $1",
                &[id, &status.target, &code, &status.original_error],
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
            "UPDATE devices SET last_checkin = $2, login_status = COALESCE($3, login_status), dev_info = COALESCE($4, dev_info) WHERE device_id = $1",
            &[&m.device_id, &to_i64(ci.at), &ci.login_status, &dev_info],
        )?;
    }
    if let Some(n) = &m.nonce {
        tx.execute(
            "UPDATE devices SET nonce = $2 WHERE device_id = $1",
            &[&m.device_id, n],
        )?;
    }
    if let Some(at) = m.unenrolled_at {
        tx.execute(
            "UPDATE devices SET unenrolled_at = $2 WHERE device_id = $1",
            &[&m.device_id, &to_i64(at)],
        )?;
    }
    let now = to_i64(super::now_secs());
    match (&m.session, version) {
        (SessionWrite::Keep, _) => {}
        (SessionWrite::Delete, _) => {
            tx.execute(
                "DELETE FROM sessions WHERE device_id = $1 AND session_id = $2",
                &[&m.device_id, &m.session_id],
            )?;
        }
        (SessionWrite::Put(state), None) => {
            tx.execute(
                "INSERT INTO sessions (device_id, session_id, state, version, updated_at) VALUES ($1, $2, $3, 1, $4)",
                &[&m.device_id, &m.session_id, state, &now],
            )?;
        }
        (SessionWrite::Put(state), Some(v)) => {
            tx.execute(
                "UPDATE sessions SET state = $3, version = $4, updated_at = $5 WHERE device_id = $1 AND session_id = $2",
                &[&m.device_id, &m.session_id, state, &(v + 1), &now],
            )?;
        }
    }
    Ok(())
}

/// [`Store`]'s methods with this module's error type (so `?` works on `postgres` errors);
/// the [`Store`] impl below converts at the boundary.
trait Inner {
    fn enroll(
        &self,
        d: &DeviceRecord,
        initial: &[CommandSpec],
        now: u64,
        admission: Admission,
    ) -> Result<Enrolled, Fail>;
    fn device(&self, device_id: &str) -> Result<Option<DeviceRecord>, Fail>;
    fn devices(&self) -> Result<Vec<DeviceRecord>, Fail>;
    fn device_by_certificate(&self, thumbprint: &str) -> Result<Option<DeviceRecord>, Fail>;
    fn renew_certificate(
        &self,
        device_id: &str,
        signed_with: &str,
        der: &[u8],
        thumbprint: &str,
    ) -> Result<bool, Fail>;
    fn certificate_used(&self, device_id: &str, thumbprint: &str) -> Result<(), Fail>;
    fn set_compliance(&self, device_id: &str, compliant: bool) -> Result<(), Fail>;
    fn queue(
        &self,
        device_id: &str,
        command: &CommandSpec,
        for_user: Option<&str>,
        now: u64,
    ) -> Result<i64, Fail>;
    fn queued(&self, device_id: &str) -> Result<Vec<Queued>, Fail>;
    fn commands(&self, device_id: &str) -> Result<Vec<CommandRecord>, Fail>;
    fn session(&self, device_id: &str, session_id: &str) -> Result<Option<StoredSession>, Fail>;
    fn other_sessions(
        &self,
        device_id: &str,
        except: &str,
    ) -> Result<Vec<(String, StoredSession)>, Fail>;
    fn commit(&self, m: &Commit) -> Result<(), Fail>;
    fn auth_failed(&self, device_id: &str, now: u64, window: u64) -> Result<u32, Fail>;
    fn auth_failures(&self, device_id: &str, now: u64, window: u64) -> Result<u32, Fail>;
    fn auth_succeeded(&self, device_id: &str) -> Result<(), Fail>;
    fn traces_of(&self, device_id: &str) -> Result<u64, Fail>;
    fn esp(&self, device_id: &str) -> Result<Option<StoredEsp>, Fail>;
    fn put_esp(&self, device_id: &str, state: &str, expected: Option<i64>) -> Result<bool, Fail>;
}
impl Inner for PostgresStore {
    fn enroll(
        &self,
        d: &DeviceRecord,
        initial: &[CommandSpec],
        now: u64,
        admission: Admission,
    ) -> Result<Enrolled, Fail> {
        let mut c = self.client()?;
        let mut tx = c.transaction()?;
        // The row lock keeps a concurrent enrollment of the same ID from slipping between
        // the owner check and the replacement.
        let owner = tx.query_opt(
            "SELECT tenant_id, user_oid FROM devices WHERE device_id = $1 FOR UPDATE",
            &[&d.device_id],
        )?;
        if let Some(row) = owner {
            let (tenant, user): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            if !admission.replace.allows(&tenant, &user, d) {
                return Ok(Enrolled::OwnedByAnother);
            }
        }
        if let Some(cap) = admission.max_devices_per_user {
            // Serialise enrollments of one user, so two at once cannot both pass the cap.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))",
                &[&d.tenant_id, &d.user_oid],
            )?;
            let others: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM devices WHERE tenant_id = $1 AND user_oid = $2 \
                     AND device_id <> $3 AND unenrolled_at IS NULL",
                    &[&d.tenant_id, &d.user_oid, &d.device_id],
                )?
                .get(0);
            if others >= i64::from(cap) {
                return Ok(Enrolled::CapReached);
            }
        }
        tx.execute("DELETE FROM devices WHERE device_id = $1", &[&d.device_id])?;
        tx.execute(
            &format!("INSERT INTO devices ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL, NULL, NULL, '[]', NULL, FALSE)"),
            &[
                &d.device_id,
                &d.tenant_id,
                &d.user_oid,
                &d.upn,
                &d.enrollment_type,
                &d.certificate,
                &d.thumbprint,
                &d.digest_username,
                &d.digest_password,
                &d.nonce,
                &to_i64(d.enrolled_at),
            ],
        )?;
        for spec in initial {
            tx.execute(
                "INSERT INTO commands (device_id, command, state, queued_at) VALUES ($1, $2, 'queued', $3)",
                &[&d.device_id, &serde_json::to_string(spec)?, &to_i64(now)],
            )?;
        }
        tx.commit()?;
        Ok(Enrolled::Stored)
    }

    fn device(&self, device_id: &str) -> Result<Option<DeviceRecord>, Fail> {
        Ok(self
            .client()?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM devices WHERE device_id = $1"),
                &[&device_id],
            )?
            .as_ref()
            .map(device_from_row))
    }

    fn devices(&self) -> Result<Vec<DeviceRecord>, Fail> {
        Ok(self
            .client()?
            .query(
                &format!("SELECT {COLUMNS} FROM devices ORDER BY enrolled_at, device_id"),
                &[],
            )?
            .iter()
            .map(device_from_row)
            .collect())
    }

    fn device_by_certificate(&self, thumbprint: &str) -> Result<Option<DeviceRecord>, Fail> {
        Ok(self
            .client()?
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM devices WHERE thumbprint = $1 \
                     OR (previous_thumbprint = $1 AND NOT certificate_used) LIMIT 1"
                ),
                &[&thumbprint],
            )?
            .as_ref()
            .map(device_from_row))
    }

    fn renew_certificate(
        &self,
        device_id: &str,
        signed_with: &str,
        der: &[u8],
        thumbprint: &str,
    ) -> Result<bool, Fail> {
        let n = self.client()?.execute(
            "UPDATE devices SET \
               previous_thumbprint = CASE WHEN thumbprint = $2 THEN thumbprint ELSE previous_thumbprint END, \
               certificate = $3, thumbprint = $4, certificate_used = FALSE \
             WHERE device_id = $1 AND (thumbprint = $2 OR (previous_thumbprint = $2 AND NOT certificate_used))",
            &[&device_id, &signed_with, &der, &thumbprint],
        )?;
        Ok(n == 1)
    }

    fn certificate_used(&self, device_id: &str, thumbprint: &str) -> Result<(), Fail> {
        self.client()?.execute(
            "UPDATE devices SET certificate_used = TRUE, previous_thumbprint = NULL \
             WHERE device_id = $1 AND thumbprint = $2 AND NOT certificate_used",
            &[&device_id, &thumbprint],
        )?;
        Ok(())
    }

    fn set_compliance(&self, device_id: &str, compliant: bool) -> Result<(), Fail> {
        self.client()?.execute(
            "UPDATE devices SET compliant = $2 WHERE device_id = $1",
            &[&device_id, &compliant],
        )?;
        Ok(())
    }

    fn queue(
        &self,
        device_id: &str,
        command: &CommandSpec,
        for_user: Option<&str>,
        now: u64,
    ) -> Result<i64, Fail> {
        let json = serde_json::to_string(command)?;
        Ok(self
            .client()?
            .query_one(
                "INSERT INTO commands (device_id, command, state, queued_at, for_user) VALUES ($1, $2, 'queued', $3, $4) RETURNING id",
                &[&device_id, &json, &to_i64(now), &for_user],
            )?
            .get(0))
    }

    fn queued(&self, device_id: &str) -> Result<Vec<Queued>, Fail> {
        self.client()?
            .query(
                "SELECT id, command, for_user FROM commands WHERE device_id = $1 AND state = 'queued' ORDER BY id",
                &[&device_id],
            )?
            .iter()
            .map(|r| {
                Ok(Queued {
                    id: r.get(0),
                    command: serde_json::from_str(r.get::<_, &str>(1))?,
                    for_user: r.get(2),
                })
            })
            .collect()
    }

    fn commands(&self, device_id: &str) -> Result<Vec<CommandRecord>, Fail> {
        let mut c = self.client()?;
        let rows = c.query(
            "SELECT id, command, state, status, queued_at, for_user FROM commands WHERE device_id = $1 ORDER BY id",
            &[&device_id],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.get(0);
            let results = c
                .query(
                    "SELECT uri, data FROM results WHERE command_id = $1 ORDER BY seq",
                    &[&id],
                )?
                .iter()
                .map(|x| (x.get(0), x.get(1)))
                .collect();
            let statuses = c
                .query(
                    "SELECT target, code, original_error FROM command_statuses WHERE command_id = $1 ORDER BY seq",
                    &[&id],
                )?
                .iter()
                .map(|x| StatusRecord {
                    target: x.get(0),
                    code: u16::try_from(x.get::<_, i32>(1)).unwrap_or(0),
                    original_error: x.get(2),
                })
                .collect();
            out.push(CommandRecord {
                id,
                command: serde_json::from_str(r.get::<_, &str>(1))?,
                state: r.get(2),
                status: r
                    .get::<_, Option<i32>>(3)
                    .and_then(|s| u16::try_from(s).ok()),
                statuses,
                results,
                queued_at: to_u64(r.get(4)),
                for_user: r.get(5),
            });
        }
        Ok(out)
    }

    fn session(&self, device_id: &str, session_id: &str) -> Result<Option<StoredSession>, Fail> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT state, version FROM sessions WHERE device_id = $1 AND session_id = $2",
                &[&device_id, &session_id],
            )?
            .map(|r| StoredSession {
                state: r.get(0),
                version: r.get(1),
            }))
    }

    fn other_sessions(
        &self,
        device_id: &str,
        except: &str,
    ) -> Result<Vec<(String, StoredSession)>, Fail> {
        Ok(self
            .client()?
            .query(
                "SELECT session_id, state, version FROM sessions WHERE device_id = $1 AND session_id <> $2",
                &[&device_id, &except],
            )?
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    StoredSession {
                        state: r.get(1),
                        version: r.get(2),
                    },
                )
            })
            .collect())
    }

    fn commit(&self, m: &Commit) -> Result<(), Fail> {
        let mut c = self.client()?;
        let mut tx = c.transaction()?;
        apply(&mut tx, m)?;
        tx.commit()?;
        Ok(())
    }

    fn auth_failed(&self, device_id: &str, now: u64, window: u64) -> Result<u32, Fail> {
        let (now, window) = (to_i64(now), to_i64(window));
        let row = self.client()?.query_opt(
            "UPDATE devices SET \
               auth_failures = CASE WHEN auth_failures = 0 OR auth_failures_since IS NULL \
                 OR $2 - auth_failures_since >= $3 THEN 1 ELSE auth_failures + 1 END, \
               auth_failures_since = CASE WHEN auth_failures = 0 OR auth_failures_since IS NULL \
                 OR $2 - auth_failures_since >= $3 THEN $2 ELSE auth_failures_since END \
             WHERE device_id = $1 RETURNING auth_failures",
            &[&device_id, &now, &window],
        )?;
        Ok(row.map_or(0, |r| u32::try_from(r.get::<_, i32>(0)).unwrap_or(0)))
    }

    fn auth_failures(&self, device_id: &str, now: u64, window: u64) -> Result<u32, Fail> {
        let (now, window) = (to_i64(now), to_i64(window));
        let row = self.client()?.query_opt(
            "SELECT CASE WHEN auth_failures_since IS NOT NULL \
               AND $2 - auth_failures_since < $3 THEN auth_failures ELSE 0 END \
             FROM devices WHERE device_id = $1",
            &[&device_id, &now, &window],
        )?;
        Ok(row.map_or(0, |r| u32::try_from(r.get::<_, i32>(0)).unwrap_or(0)))
    }

    fn auth_succeeded(&self, device_id: &str) -> Result<(), Fail> {
        self.client()?.execute(
            "UPDATE devices SET auth_failures = 0, auth_failures_since = NULL \
             WHERE device_id = $1 AND auth_failures <> 0",
            &[&device_id],
        )?;
        Ok(())
    }

    fn esp(&self, device_id: &str) -> Result<Option<StoredEsp>, Fail> {
        let row = self.client()?.query_opt(
            "SELECT state, version FROM esp WHERE device_id = $1",
            &[&device_id],
        )?;
        Ok(row.map(|r| StoredEsp {
            state: r.get(0),
            version: r.get(1),
        }))
    }

    fn put_esp(&self, device_id: &str, state: &str, expected: Option<i64>) -> Result<bool, Fail> {
        let n = match expected {
            None => self.client()?.execute(
                "INSERT INTO esp (device_id, state, version)                  SELECT $1, $2, 1 WHERE EXISTS (SELECT 1 FROM devices WHERE device_id = $1)                  ON CONFLICT (device_id) DO NOTHING",
                &[&device_id, &state],
            )?,
            Some(v) => self.client()?.execute(
                "UPDATE esp SET state = $2, version = version + 1                  WHERE device_id = $1 AND version = $3",
                &[&device_id, &state, &v],
            )?,
        };
        Ok(n == 1)
    }

    fn traces_of(&self, device_id: &str) -> Result<u64, Fail> {
        let n: i64 = self
            .client()?
            .query_one(
                "SELECT (SELECT COUNT(*) FROM devices WHERE device_id = $1)
                      + (SELECT COUNT(*) FROM commands WHERE device_id = $1)
                      + (SELECT COUNT(*) FROM sessions WHERE device_id = $1)
                      + (SELECT COUNT(*) FROM esp WHERE device_id = $1)",
                &[&device_id],
            )?
            .get(0);
        Ok(to_u64(n))
    }
}

impl Store for PostgresStore {
    fn enroll(
        &self,
        d: &DeviceRecord,
        initial: &[CommandSpec],
        now: u64,
        admission: Admission,
    ) -> Result<Enrolled, StoreError> {
        Ok(Inner::enroll(self, d, initial, now, admission)?)
    }
    fn device(&self, device_id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(Inner::device(self, device_id)?)
    }
    fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        Ok(Inner::devices(self)?)
    }
    fn device_by_certificate(&self, thumbprint: &str) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(Inner::device_by_certificate(self, thumbprint)?)
    }
    fn renew_certificate(
        &self,
        device_id: &str,
        signed_with: &str,
        der: &[u8],
        thumbprint: &str,
    ) -> Result<bool, StoreError> {
        Ok(Inner::renew_certificate(
            self,
            device_id,
            signed_with,
            der,
            thumbprint,
        )?)
    }
    fn certificate_used(&self, device_id: &str, thumbprint: &str) -> Result<(), StoreError> {
        Ok(Inner::certificate_used(self, device_id, thumbprint)?)
    }
    fn set_compliance(&self, device_id: &str, compliant: bool) -> Result<(), StoreError> {
        Ok(Inner::set_compliance(self, device_id, compliant)?)
    }
    fn queue(
        &self,
        device_id: &str,
        command: &CommandSpec,
        for_user: Option<&str>,
        now: u64,
    ) -> Result<i64, StoreError> {
        Ok(Inner::queue(self, device_id, command, for_user, now)?)
    }
    fn queued(&self, device_id: &str) -> Result<Vec<Queued>, StoreError> {
        Ok(Inner::queued(self, device_id)?)
    }
    fn commands(&self, device_id: &str) -> Result<Vec<CommandRecord>, StoreError> {
        Ok(Inner::commands(self, device_id)?)
    }
    fn session(
        &self,
        device_id: &str,
        session_id: &str,
    ) -> Result<Option<StoredSession>, StoreError> {
        Ok(Inner::session(self, device_id, session_id)?)
    }
    fn other_sessions(
        &self,
        device_id: &str,
        except: &str,
    ) -> Result<Vec<(String, StoredSession)>, StoreError> {
        Ok(Inner::other_sessions(self, device_id, except)?)
    }
    fn commit(&self, m: &Commit) -> Result<(), CommitError> {
        Ok(Inner::commit(self, m)?)
    }
    fn auth_failed(&self, device_id: &str, now: u64, window: u64) -> Result<u32, StoreError> {
        Ok(Inner::auth_failed(self, device_id, now, window)?)
    }
    fn auth_failures(&self, device_id: &str, now: u64, window: u64) -> Result<u32, StoreError> {
        Ok(Inner::auth_failures(self, device_id, now, window)?)
    }
    fn auth_succeeded(&self, device_id: &str) -> Result<(), StoreError> {
        Ok(Inner::auth_succeeded(self, device_id)?)
    }
    fn traces_of(&self, device_id: &str) -> Result<u64, StoreError> {
        Ok(Inner::traces_of(self, device_id)?)
    }
    fn esp(&self, device_id: &str) -> Result<Option<StoredEsp>, StoreError> {
        Ok(Inner::esp(self, device_id)?)
    }
    fn put_esp(
        &self,
        device_id: &str,
        state: &str,
        expected: Option<i64>,
    ) -> Result<bool, StoreError> {
        Ok(Inner::put_esp(self, device_id, state, expected)?)
    }
    fn ping(&self) -> Result<(), StoreError> {
        let run = || -> Result<(), Fail> {
            self.client()?.query_one("SELECT 1", &[])?;
            Ok(())
        };
        Ok(run()?)
    }
}
