//! The Enrollment Status Page (ESP): first-sync provisioning of an Entra join in OOBE.
//!
//! When a device joins Entra in OOBE, Windows can hold the user on the Enrollment Status
//! Page until the MDM says the device (then the user's account) is provisioned. The
//! vendor declares what must be delivered first ([`EspConfig::items`]); the tracker
//! ([`EspState`], sans-I/O, persisted by the [`Store`](crate::Store) like a session):
//!
//! 1. at enrollment queues the page's settings (the DMClient `FirstSyncStatus` nodes:
//!    skip nodes false, `BlockInStatusPage`, `TimeOutUntilSyncFailure`, the error text,
//!    the `Expected*` lists), the user scope's `Provider` and `FirstSyncStatus` nodes, and
//!    the tracked commands;
//! 2. follows the tracked commands' statuses (one per target, as Windows answers): a
//!    failure fails the page; a user-scope command answered 405 before the user's MDM
//!    context exists (OOBE) is sent again in the first session where the user is signed in;
//! 3. releases each page (`ServerHasFinishedProvisioning` true, device then user) once
//!    everything of its scope succeeded, and keeps re-sending a user release answered 405
//!    until the device acknowledges it with 200;
//! 4. fails the page on a failed item or when the time-out passes: the error text, the
//!    blocking flags, the logs button and a one-minute time-out (Windows then shows its
//!    failure screen; a server-sent `WasDeviceSuccessfullyProvisioned` does not end the
//!    page on current Windows builds), and never a release.
//!
//! Nothing can hang: every path ends released, failed, or failed by the time-out.

use serde::{Deserialize, Serialize};
use winmdm_syncml::dmclient::{BlockFlags, ExpectedKind, FirstSync, Report, Scope, Timeout};

use crate::commands::CommandSpec;
use crate::store::CommandRecord;

/// The spec of a `dmclient` builder's command (always one `Add`/`Replace`/`Get`).
fn spec(c: &winmdm_syncml::Command) -> CommandSpec {
    CommandSpec::from_command(c).unwrap_or(CommandSpec::Get {
        targets: Vec::new(),
    })
}

/// Attempts of a user-scope command answered 405 before it counts as failed.
const MAX_USER_ATTEMPTS: u32 = 3;

/// What the vendor asks of the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspConfig {
    /// What must succeed before the page releases (each command is queued at enrollment
    /// and tracked).
    pub items: Vec<EspItem>,
    /// `TimeOutUntilSyncFailure`; the tracker fails the page when it passes too.
    pub timeout: Timeout,
    /// `BlockInStatusPage`.
    pub block: BlockFlags,
    /// `AllowCollectLogsButton`.
    pub allow_collect_logs: bool,
    /// `CustomErrorText`, shown on failure.
    pub error_text: String,
    /// Show the account-setup page after the user signs in (`SkipUserStatusPage` false)
    /// and track the user-scope items there.
    pub user_phase: bool,
    /// `Expected*` lists to set, so that Windows tracks those categories on the page.
    pub expected: Vec<(Scope, ExpectedKind, Vec<String>)>,
}

impl Default for EspConfig {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            timeout: Timeout::DEFAULT,
            block: BlockFlags::RESET_PC | BlockFlags::CONTINUE_ANYWAY,
            allow_collect_logs: true,
            error_text: "Setting up this device did not finish. Contact your IT department."
                .to_owned(),
            user_phase: true,
            expected: Vec::new(),
        }
    }
}

/// A tracked delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EspItem {
    /// A name for people (the admin API shows it).
    pub label: String,
    /// Device setup or account setup.
    pub scope: Scope,
    /// The command.
    pub command: CommandSpec,
}

/// Where the page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EspPhase {
    /// Device setup: device items in flight.
    Device,
    /// Account setup: the device page released, user items in flight.
    User,
    /// Released: every page's release acknowledged.
    Released,
    /// Failed (an item failed, or the time-out passed).
    Failed,
}

/// What a tracked command is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// A page setting or node the page needs.
    Setup,
    /// A vendor item.
    Item,
    /// `ServerHasFinishedProvisioning`.
    Release,
    /// The failure settings.
    Failure,
    /// A `Get` of the device's own report (`IsSyncDone`, `WasDeviceSuccessfullyProvisioned`)
    /// after a release; never fails the page.
    Report,
    /// After the account page's release, `SkipUserStatusPage` back to true, so that
    /// another user's first sign-in gets no account page that nothing would release (a
    /// widely used MDM saw such pages hang); never fails the page.
    Cleanup,
}

/// How a tracked command stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Queued or sent, no status yet.
    Pending,
    /// Succeeded with this status.
    Succeeded(u16),
    /// Answered 405 before the user's MDM context existed: sent again once the user is
    /// signed in.
    NeedsUser,
    /// Failed with this status.
    Failed(u16),
}

/// One tracked command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracked {
    /// What it is (an item's label, or the node it sets).
    pub label: String,
    /// Its scope.
    pub scope: Scope,
    /// What it is for.
    pub role: Role,
    /// The command.
    pub command: CommandSpec,
    /// The queued command's ID (the latest, when sent again).
    pub command_id: i64,
    /// How it stands.
    pub outcome: Outcome,
    /// How many times it was queued.
    pub attempts: u32,
    /// The session whose 405 made it [`Outcome::NeedsUser`]: it goes again in a later
    /// one (Windows answers 405 for the rest of that session).
    #[serde(default)]
    pub refused_in: Option<String>,
}

/// The tracker's state: persisted between requests ([`Store::esp`](crate::Store::esp)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EspState {
    /// Where the page is.
    pub phase: EspPhase,
    /// When enrollment started it (seconds).
    pub started_at: u64,
    /// When the current page started (the account page starts when the device page is
    /// released): the time-out counts from here, as Windows counts it per page.
    pub phase_started_at: u64,
    /// When it was released or failed.
    pub finished_at: Option<u64>,
    /// Why it failed.
    pub failure: Option<String>,
    /// Everything tracked, in queueing order.
    pub tracked: Vec<Tracked>,
    /// What the device reported after each release (its `FirstSyncStatus` nodes).
    #[serde(default)]
    pub reports: Vec<DeviceReport>,
}

/// The device's own view of a page, read after its release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReport {
    /// Device setup or account setup.
    pub scope: Scope,
    /// `IsSyncDone`.
    pub is_sync_done: Option<bool>,
    /// `WasDeviceSuccessfullyProvisioned`.
    pub provisioned: Option<winmdm_syncml::dmclient::Provisioned>,
}

/// A command the tracker wants queued: queue it, then give its ID to
/// [`EspState::queued`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToQueue {
    /// Index into [`EspState::tracked`].
    pub index: usize,
    /// The command.
    pub command: CommandSpec,
}

impl EspState {
    /// A page for a device just enrolled at `now`, and what to queue for it (settings,
    /// nodes, items; the user scope's too, which Windows refuses with 405 until the user
    /// signs in).
    pub fn start(config: &EspConfig, esp: &FirstSync, now: u64) -> (Self, Vec<ToQueue>) {
        let mut state = Self {
            phase: EspPhase::Device,
            started_at: now,
            phase_started_at: now,
            finished_at: None,
            failure: None,
            tracked: Vec::new(),
            reports: Vec::new(),
        };
        let setup = |label: &str, scope, c: winmdm_syncml::Command| {
            (label.to_owned(), scope, Role::Setup, spec(&c))
        };
        let mut plan = vec![
            setup(
                "SkipDeviceStatusPage false",
                Scope::Device,
                esp.skip_device_status_page(false),
            ),
            setup(
                &format!("SkipUserStatusPage {}", !config.user_phase),
                Scope::Device,
                esp.skip_user_status_page(!config.user_phase),
            ),
            setup(
                "BlockInStatusPage",
                Scope::Device,
                esp.block_in_status_page(config.block),
            ),
            setup(
                "TimeOutUntilSyncFailure",
                Scope::Device,
                esp.time_out_until_sync_failure(config.timeout),
            ),
            setup(
                "AllowCollectLogsButton",
                Scope::Device,
                esp.allow_collect_logs_button(Scope::Device, config.allow_collect_logs),
            ),
            setup(
                "CustomErrorText",
                Scope::Device,
                esp.custom_error_text(Scope::Device, &config.error_text),
            ),
        ];
        if config.user_phase {
            plan.push(setup(
                "user Provider node",
                Scope::User,
                esp.add_provider(Scope::User),
            ));
            plan.push(setup(
                "user FirstSyncStatus node",
                Scope::User,
                esp.add_first_sync_status(Scope::User),
            ));
            // The account page reads its own (the device nodes apply to device setup).
            plan.push(setup(
                "user AllowCollectLogsButton",
                Scope::User,
                esp.allow_collect_logs_button(Scope::User, config.allow_collect_logs),
            ));
            plan.push(setup(
                "user CustomErrorText",
                Scope::User,
                esp.custom_error_text(Scope::User, &config.error_text),
            ));
        }
        for (scope, kind, entries) in &config.expected {
            if *scope == Scope::User && !config.user_phase {
                continue;
            }
            if let Ok(c) = esp.expected(*scope, *kind, entries) {
                plan.push(setup(kind.node(), *scope, c));
            }
        }
        let mut out = Vec::new();
        for item in &config.items {
            if item.scope == Scope::Device {
                plan.push((
                    item.label.clone(),
                    item.scope,
                    Role::Item,
                    item.command.clone(),
                ));
            }
        }
        for (label, scope, role, command) in plan {
            out.push(state.track(label, scope, role, command));
        }
        // The user's items wait for the account page and a signed-in user (Windows fails
        // user-scope writes before the user's MDM context exists).
        if config.user_phase {
            for item in config.items.iter().filter(|i| i.scope == Scope::User) {
                let _ = state.track(
                    item.label.clone(),
                    item.scope,
                    Role::Item,
                    item.command.clone(),
                );
            }
        }
        (state, out)
    }

    fn track(&mut self, label: String, scope: Scope, role: Role, command: CommandSpec) -> ToQueue {
        self.tracked.push(Tracked {
            label,
            scope,
            role,
            command: command.clone(),
            command_id: 0,
            outcome: Outcome::Pending,
            attempts: 0,
            refused_in: None,
        });
        ToQueue {
            index: self.tracked.len() - 1,
            command,
        }
    }

    /// Records the ID the store gave a command the tracker asked for.
    pub fn queued(&mut self, index: usize, command_id: i64) {
        if let Some(t) = self.tracked.get_mut(index) {
            t.command_id = command_id;
            t.attempts += 1;
            t.outcome = Outcome::Pending;
        }
    }

    /// Whether the page is over (released or failed).
    pub fn finished(&self) -> bool {
        matches!(self.phase, EspPhase::Released | EspPhase::Failed)
    }

    /// Whether [`EspState::step`] has anything left to do: the page is not over, or a
    /// command it sent still has no status (the admin view follows it to the end).
    pub fn active(&self) -> bool {
        !self.finished()
            || self
                .tracked
                .iter()
                .any(|t| t.attempts > 0 && t.outcome == Outcome::Pending)
    }

    /// Moves the page on at `now`, in DM session `session`, given the device's commands
    /// as they stand and whether the user is signed in (LoginStatus `user`); returns what
    /// to queue.
    pub fn step(
        &mut self,
        config: &EspConfig,
        esp: &FirstSync,
        now: u64,
        session: &str,
        user_signed_in: bool,
        commands: &[CommandRecord],
    ) -> Vec<ToQueue> {
        for t in &mut self.tracked {
            if t.outcome != Outcome::Pending {
                continue;
            }
            let Some(c) = commands.iter().find(|c| c.id == t.command_id) else {
                continue;
            };
            if c.state != "done" {
                continue;
            }
            let code = crate::store::aggregate(&c.statuses)
                .or(c.status)
                .unwrap_or(0);
            if t.role == Role::Report {
                let mut report = DeviceReport {
                    scope: t.scope,
                    is_sync_done: None,
                    provisioned: None,
                };
                for (uri, value) in &c.results {
                    match esp.read(uri, value) {
                        Some(Report::IsSyncDone(_, done)) => report.is_sync_done = Some(done),
                        Some(Report::Provisioned(_, p)) => report.provisioned = Some(p),
                        _ => {}
                    }
                }
                self.reports.push(report);
            }
            t.outcome = match code {
                200..=299 => Outcome::Succeeded(code),
                // Adding a node that exists: it is there.
                418 if matches!(t.command, CommandSpec::Add { .. }) => Outcome::Succeeded(code),
                // Before the user's MDM context exists; but a node the edition does not
                // have answers 405 too: after three attempts it is a failure.
                405 if t.scope == Scope::User && t.attempts < MAX_USER_ATTEMPTS => {
                    t.refused_in = Some(session.to_owned());
                    Outcome::NeedsUser
                }
                _ => Outcome::Failed(code),
            };
        }
        if self.finished() {
            return Vec::new();
        }
        let mut out = Vec::new();
        // A failed item or setting fails the page (not the failure settings themselves,
        // nor a report the device could not give).
        // A failed item or release fails the page. A page setting that fails does not (the
        // page goes on with Windows' default for it), nor a report or the clean-up.
        if let Some(t) = self.tracked.iter().find(|t| {
            matches!(t.role, Role::Item | Role::Release) && matches!(t.outcome, Outcome::Failed(_))
        }) {
            let why = match t.outcome {
                Outcome::Failed(code) => format!("{} failed with status {code}", t.label),
                _ => String::new(),
            };
            return self.fail(config, esp, now, why);
        }
        if now
            >= self
                .phase_started_at
                .saturating_add(config.timeout.as_secs())
        {
            let why = format!(
                "not provisioned within {} minutes",
                config.timeout.as_minutes()
            );
            return self.fail(config, esp, now, why);
        }
        // The user's commands refused before the user existed go again once they do; the
        // user's items go out once the account page is on and the user signed in.
        if user_signed_in {
            for i in 0..self.tracked.len() {
                let t = &self.tracked[i];
                let unsent_item = t.role == Role::Item
                    && t.scope == Scope::User
                    && t.attempts == 0
                    && self.phase == EspPhase::User;
                let retry =
                    t.outcome == Outcome::NeedsUser && t.refused_in.as_deref() != Some(session);
                if retry || unsent_item {
                    out.push(ToQueue {
                        index: i,
                        command: t.command.clone(),
                    });
                }
            }
        }
        let done = |scope: Scope, state: &Self| {
            state
                .tracked
                .iter()
                .filter(|t| t.scope == scope && matches!(t.role, Role::Setup | Role::Item))
                .all(|t| match t.role {
                    Role::Item => matches!(t.outcome, Outcome::Succeeded(_)),
                    _ => matches!(t.outcome, Outcome::Succeeded(_) | Outcome::Failed(_)),
                })
        };
        let release = |scope: Scope, state: &Self| {
            state
                .tracked
                .iter()
                .find(|t| t.scope == scope && t.role == Role::Release)
                .cloned()
        };
        if self.phase == EspPhase::Device && done(Scope::Device, self) {
            match release(Scope::Device, self) {
                None => {
                    let c = spec(&esp.server_has_finished_provisioning(Scope::Device));
                    out.push(self.track(
                        "release device setup".into(),
                        Scope::Device,
                        Role::Release,
                        c,
                    ));
                }
                Some(t) if matches!(t.outcome, Outcome::Succeeded(_)) => {
                    self.phase = if config.user_phase {
                        EspPhase::User
                    } else {
                        EspPhase::Released
                    };
                    self.phase_started_at = now;
                    out.push(self.track(
                        "device setup report".into(),
                        Scope::Device,
                        Role::Report,
                        spec(&esp.get_progress(Scope::Device)),
                    ));
                }
                Some(_) => {}
            }
        }
        if self.phase == EspPhase::User && done(Scope::User, self) {
            match release(Scope::User, self) {
                None => {
                    let c = spec(&esp.server_has_finished_provisioning(Scope::User));
                    out.push(self.track(
                        "release account setup".into(),
                        Scope::User,
                        Role::Release,
                        c,
                    ));
                }
                Some(t) if matches!(t.outcome, Outcome::Succeeded(_)) => {
                    self.phase = EspPhase::Released;
                    out.push(self.track(
                        "account setup report".into(),
                        Scope::User,
                        Role::Report,
                        spec(&esp.get_progress(Scope::User)),
                    ));
                    out.push(self.track(
                        "SkipUserStatusPage true".into(),
                        Scope::Device,
                        Role::Cleanup,
                        spec(&esp.skip_user_status_page(true)),
                    ));
                }
                Some(_) => {}
            }
        }
        if self.phase == EspPhase::Released {
            self.finished_at = Some(now);
        }
        out
    }

    fn fail(&mut self, config: &EspConfig, esp: &FirstSync, now: u64, why: String) -> Vec<ToQueue> {
        let account = self.phase == EspPhase::User;
        self.phase = EspPhase::Failed;
        self.finished_at = Some(now);
        self.failure = Some(why);
        let block = if config.block.blocks() {
            config.block
        } else {
            BlockFlags::RESET_PC
        };
        let commands = [
            (
                "CustomErrorText",
                esp.custom_error_text(Scope::Device, &config.error_text),
            ),
            ("BlockInStatusPage", esp.block_in_status_page(block)),
            (
                "AllowCollectLogsButton",
                esp.allow_collect_logs_button(Scope::Device, true),
            ),
            (
                "TimeOutUntilSyncFailure 1",
                esp.time_out_until_sync_failure(Timeout::minutes(1).unwrap_or(Timeout::DEFAULT)),
            ),
        ];
        let mut out: Vec<ToQueue> = commands
            .into_iter()
            .map(|(label, c)| self.track(label.into(), Scope::Device, Role::Failure, spec(&c)))
            .collect();
        if account {
            // The account page shows its own text and button.
            for (label, c) in [
                (
                    "user CustomErrorText",
                    esp.custom_error_text(Scope::User, &config.error_text),
                ),
                (
                    "user AllowCollectLogsButton",
                    esp.allow_collect_logs_button(Scope::User, true),
                ),
            ] {
                out.push(self.track(label.into(), Scope::User, Role::Failure, spec(&c)));
            }
        }
        out
    }
}
