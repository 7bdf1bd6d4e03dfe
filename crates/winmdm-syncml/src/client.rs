//! The device side, for tests and simulators: a builder for client messages
//! ([`MessageBuilder`]) and a small simulated Windows OMA-DM client ([`Device`]) that keeps
//! a node tree and answers server commands as Windows does.
//!
//! [`Device`] sends the first package Windows sends (alert 1201, 1224 LoginStatus, 1224
//! AADUserToken when it has one, `Replace ./DevInfo/*`), authenticates with MD5 digest
//! when configured (retrying after a 401/407 `Chal`), answers `Get` with `Results` (in
//! chunks when a value is larger than its upload chunk size), applies `Add`, `Replace`,
//! `Delete`, `Exec`, `Atomic` (all or nothing: 507, children 216) and `Sequence`,
//! reassembles chunked server objects (213, then 200 or 424), asks for the next message with
//! alert 1222 when the server's package continues, and fails `./User/…` writes with 500
//! while nobody is signed in (as Windows does during OOBE).
//!
//! ```
//! use winmdm_syncml::client::MessageBuilder;
//! use winmdm_syncml::alerts::LoginStatus;
//! let msg = MessageBuilder::new("1", 1, "device-1", "https://mdm.example/omadm")
//!     .alert_1201()
//!     .login_status(LoginStatus::User)
//!     .dev_info(&[("./DevInfo/Man", "Contoso")])
//!     .build();
//! assert_eq!(msg.body.commands.len(), 3);
//! assert!(msg.body.is_final);
//! ```

use std::collections::BTreeMap;

use crate::alerts::{self, LoginStatus};
use crate::auth::{self, Nonce};
use crate::codes::{AlertCode, CmdId, StatusCode};
use crate::model::{
    Command, Cred, Data, Item, ItemCommand, Location, Meta, Results, Status, SyncBody, SyncHdr,
    SyncMl,
};
use crate::text::Text;

/// Builds one client message; `CmdID`s are numbered from 1 in the order commands are added.
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    message: SyncMl,
    next_cmd: u32,
}

impl MessageBuilder {
    /// A message of session `session_id`, numbered `msg_id`, from `device_id` to `server`.
    pub fn new(session_id: &str, msg_id: u32, device_id: &str, server: &str) -> Self {
        Self {
            message: SyncMl {
                header: SyncHdr {
                    ver_dtd: Text::from("1.2"),
                    ver_proto: Text::from("DM/1.2"),
                    session_id: Text::from(session_id),
                    msg_id: Text::from_u32(msg_id),
                    target: Some(Location::new(server)),
                    source: Some(Location::new(device_id)),
                    ..SyncHdr::default()
                },
                body: SyncBody {
                    commands: Vec::new(),
                    is_final: true,
                },
            },
            next_cmd: 1,
        }
    }

    fn next_id(&mut self) -> CmdId {
        let id = CmdId::from(self.next_cmd);
        self.next_cmd += 1;
        id
    }

    /// Adds `SyncHdr/Cred`.
    #[must_use]
    pub fn cred(mut self, cred: Cred) -> Self {
        self.message.header.cred = Some(Box::new(cred));
        self
    }

    /// Advertises `MaxMsgSize` (and optionally `MaxObjSize`) in the header's `Meta`.
    #[must_use]
    pub fn max_sizes(mut self, max_msg_size: u64, max_obj_size: Option<u64>) -> Self {
        let meta = self.message.header.meta.get_or_insert_with(Box::default);
        meta.max_msg_size = Some(Text::from(max_msg_size.to_string().as_str()));
        meta.max_obj_size = max_obj_size.map(|m| Text::from(m.to_string().as_str()));
        self
    }

    /// Adds any command (its `CmdID`s are renumbered).
    #[must_use]
    pub fn command(mut self, mut command: Command) -> Self {
        self.next_cmd =
            crate::status::assign_cmd_ids(std::slice::from_mut(&mut command), self.next_cmd);
        self.message.body.commands.push(command);
        self
    }

    /// Adds an alert with only a code (1201, 1222, 1223, 1225, …).
    #[must_use]
    pub fn alert(self, code: AlertCode) -> Self {
        self.command(Command::alert(0u32, code))
    }

    /// Adds alert 1201 (client-initiated session).
    #[must_use]
    pub fn alert_1201(self) -> Self {
        self.alert(AlertCode::CLIENT_INITIATED_MGMT)
    }

    /// Adds alert 1224 LoginStatus.
    #[must_use]
    pub fn login_status(self, status: LoginStatus) -> Self {
        self.command(alerts::login_status(0u32, status))
    }

    /// Adds alert 1224 AADUserToken.
    #[must_use]
    pub fn aad_user_token(self, token: &str) -> Self {
        self.command(alerts::aad_user_token(0u32, token))
    }

    /// Adds alert 1226 unenrollment request.
    #[must_use]
    pub fn unenroll(self) -> Self {
        self.command(alerts::unenroll_request(0u32))
    }

    /// Adds `Replace` of device information nodes (`Source` items, as Windows sends them).
    #[must_use]
    pub fn dev_info(self, values: &[(&str, &str)]) -> Self {
        let items = values
            .iter()
            .map(|(uri, v)| Item {
                source: Some(Location::new(*uri)),
                data: Some(Data::text(*v)),
                ..Item::default()
            })
            .collect();
        self.command(Command::Replace(ItemCommand {
            items,
            ..ItemCommand::default()
        }))
    }

    /// Adds a `Status` for server command `cmd_ref` (named `cmd`) of server message
    /// `msg_ref`.
    #[must_use]
    pub fn status(mut self, msg_ref: u32, cmd_ref: u32, cmd: &str, code: StatusCode) -> Self {
        let id = self.next_id();
        self.message.body.commands.push(Command::Status(Status {
            cmd_id: Some(id),
            msg_ref: Some(Text::from_u32(msg_ref)),
            cmd_ref: Some(Text::from_u32(cmd_ref)),
            cmd: Some(Text::from(cmd)),
            data: Text::from_u32(u32::from(code.0)),
            ..Status::default()
        }));
        self
    }

    /// Adds a `Status` for one target of a command (`TargetRef`), as Windows answers a
    /// command on several nodes: one status per node.
    #[must_use]
    pub fn status_for_target(
        mut self,
        msg_ref: u32,
        cmd_ref: u32,
        cmd: &str,
        target: &str,
        code: StatusCode,
    ) -> Self {
        self = self.status(msg_ref, cmd_ref, cmd, code);
        if let Some(Command::Status(s)) = self.message.body.commands.last_mut() {
            s.target_ref.push(Text::from(target));
        }
        self
    }

    /// Adds the `Status` for the server's `SyncHdr` (`CmdRef` 0).
    #[must_use]
    pub fn header_status(self, msg_ref: u32, code: StatusCode) -> Self {
        let mut b = self.status(msg_ref, 0, "SyncHdr", code);
        if let Some(Command::Status(s)) = b.message.body.commands.last_mut() {
            s.target_ref = b
                .message
                .header
                .target
                .iter()
                .map(|l| l.loc_uri.clone())
                .collect();
            s.source_ref = b
                .message
                .header
                .source
                .iter()
                .map(|l| l.loc_uri.clone())
                .collect();
        }
        b
    }

    /// Adds `Results` for server `Get` `cmd_ref` of message `msg_ref`.
    #[must_use]
    pub fn results(self, msg_ref: u32, cmd_ref: u32, values: &[(&str, &str)]) -> Self {
        let items = values
            .iter()
            .map(|(uri, v)| Item {
                source: Some(Location::new(*uri)),
                data: Some(Data::text(*v)),
                ..Item::default()
            })
            .collect();
        self.results_items(msg_ref, cmd_ref, items)
    }

    /// Adds `Results` with the given items (for chunks: set `more_data` and `Meta/Size`).
    #[must_use]
    pub fn results_items(mut self, msg_ref: u32, cmd_ref: u32, items: Vec<Item>) -> Self {
        let id = self.next_id();
        self.message.body.commands.push(Command::Results(Results {
            cmd_id: Some(id),
            msg_ref: Some(Text::from_u32(msg_ref)),
            cmd_ref: Some(Text::from_u32(cmd_ref)),
            cmd: Some(Text::from("Get")),
            items,
            ..Results::default()
        }));
        self
    }

    /// Leaves out `Final` (more messages of this package follow).
    #[must_use]
    pub fn not_final(mut self) -> Self {
        self.message.body.is_final = false;
        self
    }

    /// The message.
    pub fn build(self) -> SyncMl {
        self.message
    }
}

/// A chunk of a value: `Item` with `Source`, data, `MoreData` and (first chunk) `Size`.
pub fn chunk_item(uri: &str, piece: &str, total: Option<u64>, more: bool) -> Item {
    Item {
        source: Some(Location::new(uri)),
        meta: total.map(|t| {
            Box::new(Meta {
                size: Some(Text::from(t.to_string().as_str())),
                ..Meta::default()
            })
        }),
        data: Some(Data::text(piece)),
        more_data: more,
        ..Item::default()
    }
}

/// One page of the Enrollment Status Page (device setup, or account setup for the user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EspPage {
    /// Not shown (the skip node is true, its default, or the server never set one).
    Skipped,
    /// Shown, waiting for its turn (the account page until the user signs in and the
    /// device page is done).
    Waiting,
    /// Shown, provisioning.
    InProgress,
    /// The server released it (`ServerHasFinishedProvisioning` true).
    Released,
    /// `TimeOutUntilSyncFailure` passed first: the failure screen.
    Failed,
}

/// The Enrollment Status Page as the simulated device shows it ([`Device::esp`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspView {
    /// Device setup.
    pub device: EspPage,
    /// Account setup.
    pub user: EspPage,
    /// Whether the page keeps the user in (`BlockInStatusPage` not 0).
    pub blocking: bool,
    /// `CustomErrorText`, shown on failure.
    pub error_text: Option<String>,
}

impl EspView {
    /// Whether the page still holds the user: a blocking page in progress or waiting.
    pub fn holds(&self) -> bool {
        self.blocking
            && [self.device, self.user]
                .iter()
                .any(|p| matches!(p, EspPage::InProgress | EspPage::Waiting))
    }
}

/// A mutation the simulated device applied (for "applied exactly once" assertions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The server message it came in.
    pub msg_id: String,
    /// The command's `CmdID` in that message.
    pub cmd_id: String,
    /// The command (`Add`, `Replace`, `Delete`, `Exec`).
    pub command: String,
    /// The node.
    pub uri: String,
    /// The value written (`Add`/`Replace`) or the `Exec` data.
    pub value: Option<String>,
}

#[derive(Debug, Clone)]
struct Upload {
    msg_ref: u32,
    cmd_ref: u32,
    uri: String,
    data: String,
    offset: usize,
}

#[derive(Debug, Clone)]
struct Download {
    uri: String,
    declared: u64,
    data: String,
    command: String,
}

/// A simulated Windows OMA-DM client (see the [module documentation](self)).
#[derive(Debug, Clone)]
pub struct Device {
    device_id: String,
    server: String,
    /// The `RespURI` the server set in this session: where its later messages go.
    resp_uri: Option<String>,
    session: u32,
    msg_id: u32,
    tree: BTreeMap<String, String>,
    digest: Option<(String, String, Nonce)>,
    authenticated: bool,
    max_sizes: Option<(u64, Option<u64>)>,
    upload_chunk: usize,
    login_status: Option<LoginStatus>,
    user_token: Option<String>,
    extra_first: Vec<Command>,
    last_package: Option<SyncMl>,
    upload: Option<Upload>,
    download: Option<Download>,
    applied: Vec<Applied>,
    over: bool,
    /// The server's status for the header when it refused the session.
    refused: Option<StatusCode>,
    /// Answer a `Get` of several nodes with one status per node, as Windows 11 does.
    per_target: bool,
    /// Write the SessionID in hexadecimal (`1A`), as Windows does.
    hex_session_ids: bool,
    /// Abort the session (alert 1223) when a result does not fit the server's
    /// `MaxMsgSize`, instead of sending it in chunks, as Windows 11 does.
    abort_on_oversize: bool,
    /// The server's `MaxMsgSize` from its last message.
    server_max_msg_size: Option<u64>,
    /// The device's clock (seconds), as the driver sets it ([`Device::set_time`]).
    now: u64,
    /// When the server turned the Enrollment Status Page on (`SkipDeviceStatusPage`
    /// false), by the device's clock.
    esp_started: Option<u64>,
    /// The server turned the account-setup page on (`SkipUserStatusPage` false) at some
    /// point: setting it back to true after the release does not hide a page shown.
    user_page_on: bool,
    /// Nodes whose writes fail, and with what ([`Device::fail_writes`]).
    failing: BTreeMap<String, StatusCode>,
    /// Sessions the signed-in user's MDM context takes to come up
    /// ([`Device::with_user_context_delay`]), and sessions started signed in so far.
    user_context: (u32, u32),
}

impl Device {
    /// A device with ID `device_id` managed by the server at `server`.
    pub fn new(device_id: &str, server: &str) -> Self {
        let mut tree = BTreeMap::new();
        for (k, v) in [
            ("./DevInfo/DevId", device_id),
            ("./DevInfo/Man", "Microsoft Corporation"),
            ("./DevInfo/Mod", "Virtual Machine"),
            ("./DevInfo/DmV", "1.3"),
            ("./DevInfo/Lang", "en-US"),
        ] {
            tree.insert(k.to_owned(), v.to_owned());
        }
        Self {
            device_id: device_id.to_owned(),
            server: server.to_owned(),
            resp_uri: None,
            session: 0,
            msg_id: 0,
            tree,
            digest: None,
            authenticated: false,
            max_sizes: None,
            upload_chunk: 64 * 1024,
            login_status: None,
            user_token: None,
            extra_first: Vec::new(),
            last_package: None,
            upload: None,
            download: None,
            applied: Vec::new(),
            over: true,
            refused: None,
            per_target: false,
            hex_session_ids: false,
            abort_on_oversize: false,
            server_max_msg_size: None,
            now: 0,
            esp_started: None,
            user_page_on: false,
            failing: BTreeMap::new(),
            user_context: (0, 0),
        }
    }

    /// Authenticates with OMA-DM MD5 digest (the provisioning document's `AAUTHNAME`,
    /// `AAUTHSECRET` and `AAUTHDATA`).
    #[must_use]
    pub fn with_digest(mut self, username: &str, password: &str, nonce: Nonce) -> Self {
        self.digest = Some((username.to_owned(), password.to_owned(), nonce));
        self
    }

    /// Answers a `Get` of several nodes with one `Status` per node (`TargetRef`; 404 for a
    /// node it does not have) and `Results` for the others, as Windows 11 does; by
    /// default one status for the whole command.
    #[must_use]
    pub fn with_per_target_statuses(mut self) -> Self {
        self.per_target = true;
        self
    }

    /// Behaves as published Windows 11 captures show: one status per target, SessionIDs
    /// in hexadecimal, and alert 1223 (abort) instead of a result in chunks when a result
    /// does not fit the server's `MaxMsgSize`; the user's MDM context comes up one session
    /// after sign-in ([`Device::with_user_context_delay`]).
    #[must_use]
    pub fn like_windows_11(mut self) -> Self {
        self.per_target = true;
        self.hex_session_ids = true;
        self.abort_on_oversize = true;
        // Windows 11 26200 answered the page's user-scope release 405 in the first
        // session after sign-in (a widely used MDM's field report).
        self.user_context.0 = 1;
        self
    }

    /// Starts counting SessionIDs after `last` (modulo 256, as Windows' 8-bit counter
    /// wraps), as a device that has run sessions before.
    #[must_use]
    pub fn with_last_session_id(mut self, last: u32) -> Self {
        self.session = last % 256;
        self
    }

    /// The SessionID of the current (or last) session, as written in its messages.
    pub fn session_id(&self) -> String {
        if self.hex_session_ids {
            format!("{:X}", self.session)
        } else {
            self.session.to_string()
        }
    }

    /// Advertises `MaxMsgSize`/`MaxObjSize` in its first message.
    #[must_use]
    pub fn with_max_sizes(mut self, max_msg_size: u64, max_obj_size: Option<u64>) -> Self {
        self.max_sizes = Some((max_msg_size, max_obj_size));
        self
    }

    /// Sends `Results` values larger than `bytes` in chunks.
    #[must_use]
    pub fn with_upload_chunk(mut self, bytes: usize) -> Self {
        self.upload_chunk = bytes.max(1);
        self
    }

    /// Sets who is signed in (alert 1224 LoginStatus in the first package).
    pub fn set_login_status(&mut self, status: Option<LoginStatus>) {
        self.login_status = status;
    }

    /// Sets the Entra user token sent with alert 1224 AADUserToken.
    pub fn set_user_token(&mut self, token: Option<String>) {
        self.user_token = token;
    }

    /// Adds a command to the next first package (for example a 1226 unenroll alert).
    pub fn push_first_package(&mut self, command: Command) {
        self.extra_first.push(command);
    }

    /// Sets a node's value.
    pub fn set_node(&mut self, uri: &str, value: &str) {
        self.tree.insert(uri.to_owned(), value.to_owned());
    }

    /// A node's value.
    pub fn node(&self, uri: &str) -> Option<&str> {
        self.tree.get(uri).map(String::as_str)
    }

    /// The current digest nonce.
    pub fn nonce(&self) -> Option<&Nonce> {
        self.digest.as_ref().map(|d| &d.2)
    }

    /// Every mutation applied, in order.
    pub fn applied(&self) -> &[Applied] {
        &self.applied
    }

    /// The status the server answered the session's header with when it refused it
    /// (403, or 401/407 without a challenge to retry), if it did.
    pub fn refused(&self) -> Option<StatusCode> {
        self.refused
    }

    /// Whether the current session is over.
    pub fn session_over(&self) -> bool {
        self.over
    }

    /// Where the next message goes: the `RespURI` the server set in this session (Windows
    /// follows it), or the server's URL.
    pub fn url(&self) -> &str {
        self.resp_uri.as_deref().unwrap_or(&self.server)
    }

    fn header(&mut self) -> MessageBuilder {
        self.msg_id += 1;
        let target = self.url().to_owned();
        let mut b = MessageBuilder::new(&self.session_id(), self.msg_id, &self.device_id, &target);
        if let Some((u, p, n)) = &self.digest
            && !self.authenticated
        {
            b = b.cred(auth::md5_cred(u, p, n));
        }
        if let Some((m, o)) = self.max_sizes {
            b = b.max_sizes(m, o);
        }
        b
    }

    /// Starts a new session: the first package.
    pub fn start_session(&mut self) -> SyncMl {
        self.session = (self.session + 1) % 256;
        if self.login_status == Some(LoginStatus::User) {
            self.user_context.1 = self.user_context.1.saturating_add(1);
        }
        self.msg_id = 0;
        self.resp_uri = None;
        self.refused = None;
        self.authenticated = false;
        self.over = false;
        self.upload = None;
        self.download = None;
        let mut b = self.header().alert_1201();
        if let Some(s) = &self.login_status {
            b = b.login_status(s.clone());
        }
        if let Some(t) = &self.user_token {
            b = b.aad_user_token(t);
        }
        let info: Vec<(String, String)> = self
            .tree
            .range("./DevInfo/".to_owned().."./DevInfo0".to_owned())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let info: Vec<(&str, &str)> = info.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        b = b.dev_info(&info);
        for c in std::mem::take(&mut self.extra_first) {
            b = b.command(c);
        }
        let m = b.build();
        self.last_package = Some(m.clone());
        m
    }

    /// What a write to `uri` gets before the user's MDM context exists (during OOBE,
    /// LoginStatus not `user`): 405 for the DMClient's user nodes (the Enrollment Status
    /// Page's, as Windows answers them), 500 for other user nodes; `None` when allowed.
    fn user_write_blocked(&self, uri: &str) -> Option<StatusCode> {
        if crate::scope::scope_of_uri(uri) != crate::scope::Scope::User {
            return None;
        }
        let dmclient = uri.starts_with("./User/Vendor/MSFT/DMClient/");
        if self.login_status != Some(LoginStatus::User) {
            return Some(if dmclient {
                StatusCode::COMMAND_NOT_ALLOWED
            } else {
                StatusCode::COMMAND_FAILED
            });
        }
        // Signed in, the user's MDM context still coming up.
        (dmclient && self.user_context.1 <= self.user_context.0)
            .then_some(StatusCode::COMMAND_NOT_ALLOWED)
    }

    /// The user's MDM context comes up `sessions` sessions after the user signs in: until
    /// then the user's DMClient nodes answer 405 although LoginStatus says `user`, as a
    /// widely used MDM saw Windows 11 do at the Enrollment Status Page's release (0, the
    /// default: ready at sign-in).
    #[must_use]
    pub fn with_user_context_delay(mut self, sessions: u32) -> Self {
        self.user_context.0 = sessions;
        self
    }

    /// Answers `code` to every `Add`/`Replace` of `uri` (a node this device refuses).
    pub fn fail_writes(&mut self, uri: &str, code: StatusCode) {
        self.failing.insert(uri.to_owned(), code);
    }

    /// Sets the device's clock (seconds): the Enrollment Status Page times out by it.
    pub fn set_time(&mut self, now: u64) {
        self.now = now;
    }

    /// The Enrollment Status Page as the device shows it now (see [`EspView`]).
    pub fn esp(&self) -> EspView {
        let node = |scope: &str, name: &str| {
            let suffix = format!("/FirstSyncStatus/{name}");
            self.tree
                .iter()
                .find(|(k, _)| {
                    k.starts_with(&format!("./{scope}/Vendor/MSFT/DMClient/Provider/"))
                        && k.ends_with(&suffix)
                })
                .map(|(_, v)| v.trim().to_owned())
        };
        let timeout = node("Device", "TimeOutUntilSyncFailure")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(60)
            * 60;
        let timed_out = self
            .esp_started
            .is_some_and(|t| self.now >= t.saturating_add(timeout));
        let page = |scope: &str, on: bool, waiting: bool| {
            // Both skip nodes default to true: no page unless the server said false.
            if !on || self.esp_started.is_none() {
                EspPage::Skipped
            } else if node(scope, "ServerHasFinishedProvisioning").as_deref() == Some("true") {
                EspPage::Released
            } else if timed_out {
                EspPage::Failed
            } else if waiting {
                EspPage::Waiting
            } else {
                EspPage::InProgress
            }
        };
        let device = page("Device", true, false);
        let signed_in = self.login_status == Some(LoginStatus::User);
        let user = page(
            "User",
            self.user_page_on,
            !signed_in || device == EspPage::InProgress,
        );
        EspView {
            device,
            user,
            blocking: node("Device", "BlockInStatusPage")
                .and_then(|v| v.parse::<u8>().ok())
                .is_some_and(|b| b & 7 != 0),
            error_text: node("Device", "CustomErrorText"),
        }
    }

    /// Applies one command; returns its status code and, for `Get`, the values read.
    fn apply(
        &mut self,
        msg_id: &str,
        c: &Command,
        in_atomic: bool,
        out: &mut Vec<(Command, StatusCode)>,
        results: &mut Vec<(Command, Vec<(String, String)>)>,
    ) -> StatusCode {
        let cmd_id = c.cmd_id().map_or("", |i| i.as_str()).to_owned();
        let log = |d: &mut Self, name: &str, uri: &str, value: Option<String>| {
            d.applied.push(Applied {
                msg_id: msg_id.to_owned(),
                cmd_id: cmd_id.clone(),
                command: name.to_owned(),
                uri: uri.to_owned(),
                value,
            });
        };
        match c {
            Command::Get(ic) => {
                if in_atomic {
                    return StatusCode::COMMAND_FAILED;
                }
                let mut values = Vec::new();
                for i in &ic.items {
                    let uri = i.target.as_ref().map_or("", |l| l.loc_uri.trim());
                    if let Some(v) = self.tree.get(uri) {
                        values.push((uri.to_owned(), v.clone()));
                    } else {
                        let prefix = format!("{uri}/");
                        let children: Vec<&str> = self
                            .tree
                            .keys()
                            .filter_map(|k| k.strip_prefix(&prefix))
                            .map(|rest| rest.split('/').next().unwrap_or(rest))
                            .collect();
                        if children.is_empty() {
                            return StatusCode::NOT_FOUND;
                        }
                        let mut names = children;
                        names.dedup();
                        values.push((uri.to_owned(), names.join("/")));
                    }
                }
                results.push((c.clone(), values));
                StatusCode::OK
            }
            Command::Add(ic) | Command::Replace(ic) => {
                let add = matches!(c, Command::Add(_));
                for i in &ic.items {
                    let uri = i
                        .target
                        .as_ref()
                        .map_or("", |l| l.loc_uri.trim())
                        .to_owned();
                    if let Some(code) = self.user_write_blocked(&uri) {
                        return code;
                    }
                    if let Some(code) = self.failing.get(&uri) {
                        return *code;
                    }
                    // A user-scope first-sync node exists once its FirstSyncStatus was
                    // added (Windows has none for the user until then).
                    if let Some((parent, _)) = uri.split_once("/FirstSyncStatus/")
                        && uri.starts_with("./User/")
                        && !self.tree.contains_key(&format!("{parent}/FirstSyncStatus"))
                    {
                        return StatusCode::NOT_FOUND;
                    }
                    if i.more_data || self.download.as_ref().is_some_and(|d| d.uri == uri) {
                        return self.download_chunk(msg_id, c, i);
                    }
                    if add && self.tree.contains_key(&uri) {
                        return StatusCode::ALREADY_EXISTS;
                    }
                    let v = i.data_str().to_owned();
                    if uri.starts_with("./Device/Vendor/MSFT/DMClient/Provider/")
                        && uri.ends_with("/FirstSyncStatus/SkipDeviceStatusPage")
                        && v.trim() == "false"
                        && self.esp_started.is_none()
                    {
                        self.esp_started = Some(self.now);
                    }
                    if uri.starts_with("./Device/Vendor/MSFT/DMClient/Provider/")
                        && uri.ends_with("/FirstSyncStatus/SkipUserStatusPage")
                        && v.trim() == "false"
                    {
                        self.user_page_on = true;
                    }
                    // The client's own report: done and provisioned once released.
                    if let Some(base) = uri.strip_suffix("/ServerHasFinishedProvisioning")
                        && v.trim() == "true"
                    {
                        self.tree
                            .insert(format!("{base}/IsSyncDone"), "true".into());
                        self.tree.insert(
                            format!("{base}/WasDeviceSuccessfullyProvisioned"),
                            "1".into(),
                        );
                    }
                    self.tree.insert(uri.clone(), v.clone());
                    log(self, c.name(), &uri, Some(v));
                }
                StatusCode::OK
            }
            Command::Delete(ic) => {
                for i in &ic.items {
                    let uri = i
                        .target
                        .as_ref()
                        .map_or("", |l| l.loc_uri.trim())
                        .to_owned();
                    if self.tree.remove(&uri).is_none() {
                        return StatusCode::NOT_FOUND;
                    }
                    log(self, "Delete", &uri, None);
                }
                StatusCode::OK
            }
            Command::Exec(ic) => {
                for i in &ic.items {
                    let uri = i
                        .target
                        .as_ref()
                        .map_or("", |l| l.loc_uri.trim())
                        .to_owned();
                    log(
                        self,
                        "Exec",
                        &uri,
                        i.data.as_ref().map(|d| d.value.to_string()),
                    );
                }
                StatusCode::OK
            }
            Command::Atomic(k) => {
                if in_atomic {
                    return StatusCode::COMMAND_FAILED;
                }
                let saved_tree = self.tree.clone();
                let saved_log = self.applied.len();
                let mut child_out = Vec::new();
                let mut failed = false;
                for child in &k.commands {
                    let code = self.apply(msg_id, child, true, &mut Vec::new(), results);
                    failed |= !code.is_success();
                    child_out.push((child.clone(), code));
                }
                if failed {
                    self.tree = saved_tree;
                    self.applied.truncate(saved_log);
                    for (_, code) in &mut child_out {
                        if code.is_success() {
                            *code = StatusCode::ATOMIC_ROLLBACK_OK;
                        }
                    }
                }
                out.extend(child_out);
                if failed {
                    StatusCode::ATOMIC_FAILED
                } else {
                    StatusCode::OK
                }
            }
            Command::Sequence(k) => {
                for child in &k.commands {
                    let mut nested = Vec::new();
                    let code = self.apply(msg_id, child, in_atomic, &mut nested, results);
                    out.push((child.clone(), code));
                    out.extend(nested);
                }
                StatusCode::OK
            }
            _ => StatusCode::OPTIONAL_FEATURE_NOT_SUPPORTED,
        }
    }

    fn download_chunk(&mut self, msg_id: &str, c: &Command, i: &Item) -> StatusCode {
        let name = c.name();
        let uri = i
            .target
            .as_ref()
            .map_or("", |l| l.loc_uri.trim())
            .to_owned();
        let mut d = match self.download.take() {
            Some(d) if d.uri == uri => d,
            _ => {
                let Some(declared) = i.meta.as_deref().and_then(Meta::size) else {
                    return StatusCode::SIZE_REQUIRED;
                };
                Download {
                    uri: uri.clone(),
                    declared,
                    data: String::new(),
                    command: name.to_owned(),
                }
            }
        };
        d.data.push_str(i.data_str());
        if i.more_data {
            self.download = Some(d);
            return StatusCode::CHUNKED_ITEM_ACCEPTED;
        }
        if d.data.len() as u64 != d.declared {
            return StatusCode::SIZE_MISMATCH;
        }
        self.tree.insert(uri.clone(), d.data.clone());
        self.applied.push(Applied {
            msg_id: msg_id.to_owned(),
            cmd_id: c.cmd_id().map_or("", |i| i.as_str()).to_owned(),
            command: d.command,
            uri,
            value: Some(d.data),
        });
        StatusCode::OK
    }

    /// Answers a server message; `None` when the session is over (nothing to send).
    pub fn respond(&mut self, server: &SyncMl) -> Option<SyncMl> {
        if self.over {
            return None;
        }
        let server_msg: u32 = server.header.msg_id.trim().parse().unwrap_or(0);
        if let Some(uri) = server.header.resp_uri.as_deref().map(str::trim)
            && !uri.is_empty()
        {
            self.resp_uri = Some(uri.to_owned());
        }
        let msg_id = server.header.msg_id.trim().to_owned();
        if let Some(m) = server
            .header
            .meta
            .as_ref()
            .and_then(|m| m.max_msg_size.as_deref())
            .and_then(|m| m.trim().parse().ok())
        {
            self.server_max_msg_size = Some(m);
        }
        // The server's answer to our header: authentication.
        for c in &server.body.commands {
            if let Command::Status(s) = c
                && s.cmd_ref.as_deref().map(str::trim) == Some("0")
            {
                let code = s.code().unwrap_or(StatusCode::COMMAND_FAILED);
                if let (Some(chal), Some(d)) = (&s.chal, self.digest.as_mut())
                    && let Some(n) = chal.meta.next_nonce.as_deref()
                    && let Ok(n) = Nonce::from_b64(n)
                {
                    d.2 = n;
                }
                match code {
                    StatusCode::AUTHENTICATION_ACCEPTED => self.authenticated = true,
                    StatusCode::INVALID_CREDENTIALS | StatusCode::MISSING_CREDENTIALS
                        if s.chal.is_some() =>
                    {
                        // Retry the whole package with the challenge's nonce.
                        let last = self.last_package.clone()?;
                        let mut b = self.header();
                        b.message.body = last.body;
                        let m = b.build();
                        self.last_package = Some(m.clone());
                        return Some(m);
                    }
                    c if !c.is_success() => {
                        self.over = true;
                        self.refused = Some(c);
                        return None;
                    }
                    _ => {}
                }
            }
        }
        let mut b = self.header().header_status(server_msg, StatusCode::OK);
        for c in &server.body.commands {
            match c {
                // Statuses for our commands (213 for an upload chunk: the next one goes
                // below).
                Command::Status(_) => {}
                Command::Alert(a) => {
                    match a.code() {
                        Some(AlertCode::SESSION_ABORT) => {
                            self.over = true;
                            return None;
                        }
                        Some(AlertCode::NO_END_OF_DATA) => self.download = None,
                        _ => {}
                    }
                    b = b.status(server_msg, cmd_ref(c), "Alert", StatusCode::OK);
                }
                Command::Results(_) => {}
                Command::Get(ic) if self.per_target && ic.items.len() > 1 => {
                    let mut found = Vec::new();
                    for i in &ic.items {
                        let uri = i.target.as_ref().map_or("", |l| l.loc_uri.trim());
                        let code = match self.tree.get(uri) {
                            Some(v) if self.too_large(v) => {
                                return Some(self.abort(server_msg));
                            }
                            Some(v) => {
                                found.push(chunk_item(uri, v, None, false));
                                StatusCode::OK
                            }
                            None => StatusCode::NOT_FOUND,
                        };
                        b = b.status_for_target(server_msg, cmd_ref(c), "Get", uri, code);
                    }
                    if !found.is_empty() {
                        b = b.results_items(server_msg, cmd_ref(c), found);
                    }
                }
                other => {
                    let mut out = Vec::new();
                    let mut results = Vec::new();
                    let code = self.apply(&msg_id, other, false, &mut out, &mut results);
                    b = b.status(server_msg, cmd_ref(other), other.name(), code);
                    for (child, code) in out {
                        b = b.status(server_msg, cmd_ref(&child), child.name(), code);
                    }
                    for (get, values) in results {
                        // One Results per Get, one item per node; a value too large for
                        // one message goes in chunks after the others.
                        let mut items = Vec::new();
                        for (uri, value) in values {
                            if self.too_large(&value) {
                                return Some(self.abort(server_msg));
                            }
                            if value.len() > self.upload_chunk && self.upload.is_none() {
                                self.upload = Some(Upload {
                                    msg_ref: server_msg,
                                    cmd_ref: cmd_ref(&get),
                                    uri,
                                    data: value,
                                    offset: 0,
                                });
                            } else {
                                items.push(chunk_item(&uri, &value, None, false));
                            }
                        }
                        if !items.is_empty() {
                            b = b.results_items(server_msg, cmd_ref(&get), items);
                        }
                    }
                }
            }
        }
        if let Some(mut u) = self.upload.take() {
            let end = (u.offset + self.upload_chunk).min(u.data.len());
            let end = (end..=u.data.len())
                .find(|e| u.data.is_char_boundary(*e))
                .unwrap_or(u.data.len());
            let last = end == u.data.len();
            let total = (u.offset == 0).then_some(u.data.len() as u64);
            let item = chunk_item(&u.uri, &u.data[u.offset..end], total, !last);
            b = b.results_items(u.msg_ref, u.cmd_ref, vec![item]);
            u.offset = end;
            if !last {
                self.upload = Some(u);
                b = b.not_final();
            }
        }
        if !server.body.is_final && b.message.body.commands.len() == 1 {
            // Nothing else to say: ask for the next message of the server's package.
            b = b.alert(AlertCode::NEXT_MESSAGE);
        }
        let m = b.build();
        let only_header_ok = m.body.commands.len() == 1;
        if only_header_ok && server.body.is_final {
            // A message with only a successful header status is never sent: done.
            self.over = true;
            self.msg_id -= 1;
            return None;
        }
        self.last_package = Some(m.clone());
        Some(m)
    }
}

impl Device {
    /// Whether Windows 11 would give up on sending `value` (see
    /// [`Device::like_windows_11`]).
    fn too_large(&self, value: &str) -> bool {
        self.abort_on_oversize
            && self
                .server_max_msg_size
                .is_some_and(|m| value.len() as u64 > m)
    }

    /// Ends the session with alert 1223, as Windows 11 does for a result that does not
    /// fit the server's `MaxMsgSize`.
    fn abort(&mut self, server_msg: u32) -> SyncMl {
        self.over = true;
        let m = self
            .header()
            .header_status(server_msg, StatusCode::OK)
            .alert(AlertCode::SESSION_ABORT)
            .build();
        self.last_package = Some(m.clone());
        m
    }
}

fn cmd_ref(c: &Command) -> u32 {
    c.cmd_id()
        .and_then(|i| i.as_str().parse().ok())
        .unwrap_or(0)
}
