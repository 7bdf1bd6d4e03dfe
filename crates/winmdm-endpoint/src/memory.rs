//! A [`Store`] in memory: for tests, demos and single-process deployments that can afford
//! to forget every device on restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::commands::CommandSpec;
use crate::store::{
    Admission, CommandRecord, Commit, CommitError, DeviceRecord, Enrolled, Queued, SessionWrite,
    Store, StoreError, StoredEsp, StoredSession,
};

#[derive(Debug, Default)]
struct Tables {
    devices: BTreeMap<String, DeviceRecord>,
    /// By ID (IDs grow, so the map is in queueing order).
    commands: BTreeMap<i64, (String, CommandRecord)>,
    sessions: HashMap<(String, String), StoredSession>,
    /// Failed authentications: (count, window start).
    failures: HashMap<String, (u32, u64)>,
    /// Enrollment Status Page trackers.
    esp: HashMap<String, StoredEsp>,
    next_id: i64,
}

impl Tables {
    fn drop_device(&mut self, device_id: &str) {
        self.devices.remove(device_id);
        self.commands.retain(|_, (d, _)| d != device_id);
        self.sessions.retain(|(d, _), _| d != device_id);
        self.failures.remove(device_id);
        self.esp.remove(device_id);
    }

    fn add_command(
        &mut self,
        device_id: &str,
        command: &CommandSpec,
        for_user: Option<&str>,
        now: u64,
    ) -> i64 {
        self.next_id += 1;
        let id = self.next_id;
        self.commands.insert(
            id,
            (
                device_id.to_owned(),
                CommandRecord {
                    id,
                    command: command.clone(),
                    state: "queued".to_owned(),
                    status: None,
                    statuses: Vec::new(),
                    results: Vec::new(),
                    queued_at: now,
                    for_user: for_user.map(str::to_owned),
                },
            ),
        );
        id
    }
}

/// Every table in one mutex: each operation is atomic, as [`Store`] requires.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tables stay consistent even if a thread panicked holding them: every operation
    /// checks before it writes.
    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    fn enroll(
        &self,
        device: &DeviceRecord,
        initial: &[CommandSpec],
        now: u64,
        admission: Admission,
    ) -> Result<Enrolled, StoreError> {
        let mut t = self.lock();
        if let Some(existing) = t.devices.get(&device.device_id)
            && !admission
                .replace
                .allows(&existing.tenant_id, &existing.user_oid, device)
        {
            return Ok(Enrolled::OwnedByAnother);
        }
        if let Some(cap) = admission.max_devices_per_user {
            let others = t
                .devices
                .values()
                .filter(|d| {
                    d.device_id != device.device_id
                        && d.unenrolled_at.is_none()
                        && d.tenant_id == device.tenant_id
                        && d.user_oid == device.user_oid
                })
                .count();
            if others >= cap as usize {
                return Ok(Enrolled::CapReached);
            }
        }
        t.drop_device(&device.device_id);
        let fresh = DeviceRecord {
            last_checkin: None,
            login_status: None,
            compliant: None,
            unenrolled_at: None,
            dev_info: Vec::new(),
            previous_thumbprint: None,
            certificate_used: false,
            ..device.clone()
        };
        t.devices.insert(device.device_id.clone(), fresh);
        for spec in initial {
            t.add_command(&device.device_id, spec, None, now);
        }
        Ok(Enrolled::Stored)
    }

    fn device(&self, device_id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(self.lock().devices.get(device_id).cloned())
    }

    fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        let mut all: Vec<DeviceRecord> = self.lock().devices.values().cloned().collect();
        all.sort_by(|a, b| (a.enrolled_at, &a.device_id).cmp(&(b.enrolled_at, &b.device_id)));
        Ok(all)
    }

    fn device_by_certificate(&self, thumbprint: &str) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(self
            .lock()
            .devices
            .values()
            .find(|d| {
                d.thumbprint == thumbprint
                    || (d.previous_thumbprint.as_deref() == Some(thumbprint) && !d.certificate_used)
            })
            .cloned())
    }

    fn renew_certificate(
        &self,
        device_id: &str,
        signed_with: &str,
        der: &[u8],
        thumbprint: &str,
    ) -> Result<bool, StoreError> {
        let mut t = self.lock();
        let Some(d) = t.devices.get_mut(device_id) else {
            return Ok(false);
        };
        if d.thumbprint == signed_with {
            d.previous_thumbprint = Some(d.thumbprint.clone());
        } else if d.previous_thumbprint.as_deref() != Some(signed_with) || d.certificate_used {
            return Ok(false);
        }
        d.certificate = der.to_vec();
        d.thumbprint = thumbprint.to_owned();
        d.certificate_used = false;
        Ok(true)
    }

    fn certificate_used(&self, device_id: &str, thumbprint: &str) -> Result<(), StoreError> {
        if let Some(d) = self.lock().devices.get_mut(device_id)
            && d.thumbprint == thumbprint
            && !d.certificate_used
        {
            d.certificate_used = true;
            d.previous_thumbprint = None;
        }
        Ok(())
    }

    fn set_compliance(&self, device_id: &str, compliant: bool) -> Result<(), StoreError> {
        if let Some(d) = self.lock().devices.get_mut(device_id) {
            d.compliant = Some(compliant);
        }
        Ok(())
    }

    fn queue(
        &self,
        device_id: &str,
        command: &CommandSpec,
        for_user: Option<&str>,
        now: u64,
    ) -> Result<i64, StoreError> {
        let mut t = self.lock();
        if !t.devices.contains_key(device_id) {
            return Err(StoreError(format!("no device {device_id}")));
        }
        Ok(t.add_command(device_id, command, for_user, now))
    }

    fn queued(&self, device_id: &str) -> Result<Vec<Queued>, StoreError> {
        Ok(self
            .lock()
            .commands
            .values()
            .filter(|(d, c)| d == device_id && c.state == "queued")
            .map(|(_, c)| Queued {
                id: c.id,
                command: c.command.clone(),
                for_user: c.for_user.clone(),
            })
            .collect())
    }

    fn commands(&self, device_id: &str) -> Result<Vec<CommandRecord>, StoreError> {
        Ok(self
            .lock()
            .commands
            .values()
            .filter(|(d, _)| d == device_id)
            .map(|(_, c)| c.clone())
            .collect())
    }

    fn session(
        &self,
        device_id: &str,
        session_id: &str,
    ) -> Result<Option<StoredSession>, StoreError> {
        Ok(self
            .lock()
            .sessions
            .get(&(device_id.to_owned(), session_id.to_owned()))
            .cloned())
    }

    fn other_sessions(
        &self,
        device_id: &str,
        except: &str,
    ) -> Result<Vec<(String, StoredSession)>, StoreError> {
        Ok(self
            .lock()
            .sessions
            .iter()
            .filter(|((d, s), _)| d == device_id && s != except)
            .map(|((_, s), v)| (s.clone(), v.clone()))
            .collect())
    }

    fn commit(&self, m: &Commit) -> Result<(), CommitError> {
        let mut t = self.lock();
        let key = (m.device_id.clone(), m.session_id.clone());
        let version = t.sessions.get(&key).map(|s| s.version);
        if version != m.expected_version {
            return Err(CommitError::Conflict(format!(
                "session {} is at version {version:?}, not {:?}",
                m.session_id, m.expected_version
            )));
        }
        // Check everything before changing anything: a refused commit applies nothing.
        for id in &m.sent {
            let handed_out = t
                .commands
                .get(id)
                .is_some_and(|(d, c)| *d == m.device_id && c.state == "queued");
            if !handed_out {
                return Err(CommitError::Conflict(format!(
                    "command {id} was handed out elsewhere"
                )));
            }
        }
        let device_id = m.device_id.as_str();
        for id in &m.sent {
            if let Some((_, c)) = t.commands.get_mut(id) {
                c.state = "sent".to_owned();
            }
        }
        for id in &m.requeue {
            if let Some((d, c)) = t.commands.get_mut(id)
                && d == device_id
                && c.state == "sent"
            {
                c.state = "queued".to_owned();
            }
        }
        for (id, values) in &m.results {
            if let Some((d, c)) = t.commands.get_mut(id)
                && d == device_id
            {
                c.results.extend(values.iter().cloned());
            }
        }
        for (id, status) in &m.statuses {
            if let Some((d, c)) = t.commands.get_mut(id)
                && d == device_id
            {
                c.state = "done".to_owned();
                c.statuses.push(status.clone());
                c.status = crate::store::aggregate(&c.statuses);
            }
        }
        if let Some(d) = t.devices.get_mut(device_id) {
            if let Some(ci) = &m.check_in {
                d.last_checkin = Some(ci.at);
                if let Some(ls) = &ci.login_status {
                    d.login_status = Some(ls.clone());
                }
                if let Some(info) = &ci.dev_info {
                    d.dev_info.clone_from(info);
                }
            }
            if let Some(n) = &m.nonce {
                d.nonce.clone_from(n);
            }
            if let Some(at) = m.unenrolled_at {
                d.unenrolled_at = Some(at);
            }
        }
        match &m.session {
            SessionWrite::Keep => {}
            SessionWrite::Delete => {
                t.sessions.remove(&key);
            }
            SessionWrite::Put(state) => {
                let version = version.map_or(1, |v| v + 1);
                t.sessions.insert(
                    key,
                    StoredSession {
                        state: state.clone(),
                        version,
                    },
                );
            }
        }
        Ok(())
    }

    fn auth_failed(&self, device_id: &str, now: u64, window: u64) -> Result<u32, StoreError> {
        let mut t = self.lock();
        if !t.devices.contains_key(device_id) {
            return Ok(0);
        }
        let entry = t.failures.entry(device_id.to_owned()).or_insert((0, now));
        if now.saturating_sub(entry.1) >= window || entry.0 == 0 {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
        Ok(entry.0)
    }

    fn auth_failures(&self, device_id: &str, now: u64, window: u64) -> Result<u32, StoreError> {
        Ok(self
            .lock()
            .failures
            .get(device_id)
            .filter(|(_, since)| now.saturating_sub(*since) < window)
            .map_or(0, |(n, _)| *n))
    }

    fn auth_succeeded(&self, device_id: &str) -> Result<(), StoreError> {
        self.lock().failures.remove(device_id);
        Ok(())
    }

    fn esp(&self, device_id: &str) -> Result<Option<StoredEsp>, StoreError> {
        Ok(self.lock().esp.get(device_id).cloned())
    }

    fn put_esp(
        &self,
        device_id: &str,
        state: &str,
        expected: Option<i64>,
    ) -> Result<bool, StoreError> {
        let mut t = self.lock();
        if !t.devices.contains_key(device_id) {
            return Ok(false);
        }
        let current = t.esp.get(device_id).map(|e| e.version);
        if current != expected {
            return Ok(false);
        }
        t.esp.insert(
            device_id.to_owned(),
            StoredEsp {
                state: state.to_owned(),
                version: current.unwrap_or(0) + 1,
            },
        );
        Ok(true)
    }

    fn traces_of(&self, device_id: &str) -> Result<u64, StoreError> {
        let t = self.lock();
        let n = usize::from(t.devices.contains_key(device_id))
            + t.commands.values().filter(|(d, _)| d == device_id).count()
            + t.sessions.keys().filter(|(d, _)| d == device_id).count()
            + usize::from(t.esp.contains_key(device_id));
        Ok(n as u64)
    }
}
