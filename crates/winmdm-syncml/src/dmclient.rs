//! The DMClient CSP's first-sync nodes (`Provider/{ProviderID}/FirstSyncStatus`): what
//! drives the Enrollment Status Page (ESP) Windows shows after an Entra join in OOBE.
//!
//! Typed builders produce the SyncML commands with the node's path, scope and format as
//! the DMClient CSP reference defines them; readers take what the device reports back.
//!
//! | node | format | scopes | values |
//! |---|---|---|---|
//! | `ExpectedPolicies`, `ExpectedNetworkProfiles`, `ExpectedMSIAppPackages`, `ExpectedModernAppPackages`, `ExpectedPFXCerts`, `ExpectedSCEPCerts` | `chr` | device, user | LocURIs joined by U+F000 ([`LIST_DELIMITER`]) |
//! | `TimeOutUntilSyncFailure` | `int` | device | minutes, 1–1440 (default 60) |
//! | `BlockInStatusPage` | `int` | device | flags: 1 Reset PC, 2 Try again, 4 Continue anyway on failure; 0 lets the user leave |
//! | `AllowCollectLogsButton` | `bool` | device, user | default false |
//! | `CustomErrorText` | `chr` | device, user | shown on failure |
//! | `SkipDeviceStatusPage`, `SkipUserStatusPage` | `bool` | device | **default true**: a server that wants a page sets false |
//! | `ServerHasFinishedProvisioning` | `bool` | device, user | set by the server to release the page; cannot go back to false |
//! | `IsSyncDone` | `bool` | device, user | the client's "first syncs are done" |
//! | `WasDeviceSuccessfullyProvisioned` | `int` | device, user | 0 failure, 1 success, 2 in progress |
//!
//! The user-scope `Provider/{ProviderID}` and `FirstSyncStatus` nodes do not exist until
//! added ([`FirstSync::add_provider`], [`FirstSync::add_first_sync_status`]); before the
//! user's MDM context exists (during OOBE) Windows answers user-scope writes with 405.
//!
//! ```
//! use winmdm_syncml::dmclient::{BlockFlags, ExpectedKind, FirstSync, Scope, Timeout};
//!
//! let esp = FirstSync::new("Contoso MDM")?;
//! let hold = [
//!     esp.skip_device_status_page(false),
//!     esp.skip_user_status_page(false),
//!     esp.block_in_status_page(BlockFlags::RESET_PC | BlockFlags::CONTINUE_ANYWAY),
//!     esp.time_out_until_sync_failure(Timeout::minutes(90)?),
//!     esp.expected(Scope::Device, ExpectedKind::MsiAppPackages, &[
//!         "./Device/Vendor/MSFT/EnterpriseDesktopAppManagement/MSI/%7B23170F69-40C1-2702-1900-000001000000%7D/Status;1",
//!     ])?,
//! ];
//! let release = esp.server_has_finished_provisioning(Scope::Device);
//! let xml = winmdm_syncml::encode_command(&release);
//! assert!(xml.contains("./Device/Vendor/MSFT/DMClient/Provider/Contoso MDM/FirstSyncStatus/ServerHasFinishedProvisioning"));
//! assert!(xml.contains("<Format xmlns=\"syncml:metinf\">bool</Format>"));
//! assert!(xml.contains("<Data>true</Data>"));
//! # let _ = hold;
//! # Ok::<(), winmdm_syncml::dmclient::FirstSyncError>(())
//! ```

use std::fmt;
use std::ops::BitOr;

use crate::model::{Command, Item, ItemCommand, Location, Meta};
use crate::text::Text;

/// The delimiter of the `Expected*` lists (the CSP's `CSP_LIST_DELIMITER`, U+F000).
pub const LIST_DELIMITER: char = '\u{F000}';

/// Whose node: the device's, or the signed-in user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Scope {
    /// `./Device/Vendor/MSFT/…`.
    Device,
    /// `./User/Vendor/MSFT/…`.
    User,
}

impl Scope {
    fn root(self) -> &'static str {
        match self {
            Self::Device => "./Device",
            Self::User => "./User",
        }
    }
}

/// Why a first-sync command cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FirstSyncError {
    /// The provider ID is empty, too long, or has characters that need URI escaping
    /// (the CSP asks for one that does not).
    #[error(
        "unusable provider ID {0:?}: 1 to 64 characters, no `/`, `?`, `#`, `%`, `&`, `<`, `>` or controls"
    )]
    ProviderId(String),
    /// `TimeOutUntilSyncFailure` outside 1–1440 minutes.
    #[error("time-out of {0} minutes: the CSP allows 1 to 1440")]
    Timeout(u32),
    /// An `Expected*` entry that is empty or contains the list delimiter.
    #[error("unusable list entry {0:?}")]
    ListEntry(String),
}

/// `TimeOutUntilSyncFailure`: minutes, 1–1440.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Timeout(u16);

impl Timeout {
    /// The CSP's default, 60 minutes.
    pub const DEFAULT: Self = Self(60);

    /// `minutes`, if within 1–1440.
    ///
    /// # Errors
    /// [`FirstSyncError::Timeout`].
    pub fn minutes(minutes: u32) -> Result<Self, FirstSyncError> {
        match u16::try_from(minutes) {
            Ok(m @ 1..=1440) => Ok(Self(m)),
            _ => Err(FirstSyncError::Timeout(minutes)),
        }
    }

    /// The minutes.
    pub fn as_minutes(self) -> u32 {
        u32::from(self.0)
    }

    /// The seconds.
    pub fn as_secs(self) -> u64 {
        u64::from(self.0) * 60
    }
}

impl TryFrom<u32> for Timeout {
    type Error = FirstSyncError;
    fn try_from(m: u32) -> Result<Self, FirstSyncError> {
        Self::minutes(m)
    }
}

impl From<Timeout> for u32 {
    fn from(t: Timeout) -> Self {
        t.as_minutes()
    }
}

/// `BlockInStatusPage` flags: whether the page blocks, and the buttons it shows on failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct BlockFlags(pub u8);

impl BlockFlags {
    /// 0: the user may leave the page before provisioning completes.
    pub const ALLOW_EXIT: Self = Self(0);
    /// 1: block; on failure show "Reset PC".
    pub const RESET_PC: Self = Self(1);
    /// 2: block; on failure show "Try again".
    pub const TRY_AGAIN: Self = Self(2);
    /// 4: block; on failure show "Continue anyway".
    pub const CONTINUE_ANYWAY: Self = Self(4);

    /// Whether the page keeps the user in.
    pub fn blocks(self) -> bool {
        self.0 & 7 != 0
    }
}

impl BitOr for BlockFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// `WasDeviceSuccessfullyProvisioned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Provisioned {
    /// 0.
    Failure,
    /// 1.
    Success,
    /// 2.
    InProgress,
}

impl Provisioned {
    /// The node's value.
    pub fn value(self) -> u8 {
        match self {
            Self::Failure => 0,
            Self::Success => 1,
            Self::InProgress => 2,
        }
    }

    /// Reads the node's value.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "0" => Some(Self::Failure),
            "1" => Some(Self::Success),
            "2" => Some(Self::InProgress),
            _ => None,
        }
    }
}

/// The `Expected*` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ExpectedKind {
    /// `ExpectedPolicies`: policy LocURIs.
    Policies,
    /// `ExpectedNetworkProfiles`: Wi-Fi and VPN profile LocURIs.
    NetworkProfiles,
    /// `ExpectedMSIAppPackages`: `…/EnterpriseDesktopAppManagement/MSI/{ProductID}/Status;count`.
    MsiAppPackages,
    /// `ExpectedModernAppPackages`: `…/AppManagement/AppStore/{PFN}/{PackageFullName}/Name;count`.
    ModernAppPackages,
    /// `ExpectedPFXCerts`: ClientCertificateInstall PFX LocURIs.
    PfxCerts,
    /// `ExpectedSCEPCerts`: ClientCertificateInstall SCEP LocURIs.
    ScepCerts,
}

impl ExpectedKind {
    /// The node's name.
    pub fn node(self) -> &'static str {
        match self {
            Self::Policies => "ExpectedPolicies",
            Self::NetworkProfiles => "ExpectedNetworkProfiles",
            Self::MsiAppPackages => "ExpectedMSIAppPackages",
            Self::ModernAppPackages => "ExpectedModernAppPackages",
            Self::PfxCerts => "ExpectedPFXCerts",
            Self::ScepCerts => "ExpectedSCEPCerts",
        }
    }
}

/// Joins `entries` into an `Expected*` value.
///
/// # Errors
/// [`FirstSyncError::ListEntry`] for an empty entry or one containing the delimiter.
pub fn join_list<S: AsRef<str>>(entries: &[S]) -> Result<String, FirstSyncError> {
    let mut out = String::new();
    for (i, e) in entries.iter().enumerate() {
        let e = e.as_ref();
        if e.trim().is_empty() || e.contains(LIST_DELIMITER) {
            return Err(FirstSyncError::ListEntry(e.to_owned()));
        }
        if i > 0 {
            out.push(LIST_DELIMITER);
        }
        out.push_str(e);
    }
    Ok(out)
}

/// Splits an `Expected*` value into its entries.
pub fn split_list(value: &str) -> Vec<&str> {
    value
        .split(LIST_DELIMITER)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// What a device reports about its first sync (a `Get` of the status nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// `IsSyncDone`.
    IsSyncDone(Scope, bool),
    /// `WasDeviceSuccessfullyProvisioned`.
    Provisioned(Scope, Provisioned),
    /// `ServerHasFinishedProvisioning`.
    ServerHasFinished(Scope, bool),
}

/// Builds first-sync commands for one provider (`PROVIDER-ID` of the enrollment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstSync {
    provider: String,
}

impl FirstSync {
    /// The commands of provider `provider_id`.
    ///
    /// # Errors
    /// [`FirstSyncError::ProviderId`] for an ID that would need URI escaping.
    pub fn new(provider_id: &str) -> Result<Self, FirstSyncError> {
        let ok = (1..=64).contains(&provider_id.chars().count())
            && provider_id.trim() == provider_id
            && !provider_id
                .chars()
                .any(|c| c.is_control() || matches!(c, '/' | '?' | '#' | '%' | '&' | '<' | '>'));
        if !ok {
            return Err(FirstSyncError::ProviderId(provider_id.to_owned()));
        }
        Ok(Self {
            provider: provider_id.to_owned(),
        })
    }

    /// The provider ID.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// `./{Device|User}/Vendor/MSFT/DMClient/Provider/{ProviderID}`.
    pub fn provider_path(&self, scope: Scope) -> String {
        format!(
            "{}/Vendor/MSFT/DMClient/Provider/{}",
            scope.root(),
            self.provider
        )
    }

    /// The path of first-sync node `node` in `scope`.
    pub fn path(&self, scope: Scope, node: &str) -> String {
        format!("{}/FirstSyncStatus/{node}", self.provider_path(scope))
    }

    /// `Add` of the provider node (the user scope does not have it until added; in the
    /// device scope enrollment made it, and Windows answers 418 to a second Add).
    pub fn add_provider(&self, scope: Scope) -> Command {
        add_node(self.provider_path(scope))
    }

    /// `Add` of the `FirstSyncStatus` node.
    pub fn add_first_sync_status(&self, scope: Scope) -> Command {
        add_node(format!("{}/FirstSyncStatus", self.provider_path(scope)))
    }

    /// `Replace` of an `Expected*` list.
    ///
    /// # Errors
    /// [`FirstSyncError::ListEntry`].
    pub fn expected<S: AsRef<str>>(
        &self,
        scope: Scope,
        kind: ExpectedKind,
        entries: &[S],
    ) -> Result<Command, FirstSyncError> {
        Ok(Command::replace(
            1u32,
            self.path(scope, kind.node()),
            "chr",
            join_list(entries)?,
        ))
    }

    /// `Replace …/TimeOutUntilSyncFailure` (device only).
    pub fn time_out_until_sync_failure(&self, timeout: Timeout) -> Command {
        Command::replace(
            1u32,
            self.path(Scope::Device, "TimeOutUntilSyncFailure"),
            "int",
            timeout.as_minutes().to_string(),
        )
    }

    /// `Replace …/BlockInStatusPage` (device only).
    pub fn block_in_status_page(&self, flags: BlockFlags) -> Command {
        Command::replace(
            1u32,
            self.path(Scope::Device, "BlockInStatusPage"),
            "int",
            flags.0.to_string(),
        )
    }

    /// `Replace …/AllowCollectLogsButton`.
    pub fn allow_collect_logs_button(&self, scope: Scope, allow: bool) -> Command {
        replace_bool(self.path(scope, "AllowCollectLogsButton"), allow)
    }

    /// `Replace …/CustomErrorText`.
    pub fn custom_error_text(&self, scope: Scope, text: &str) -> Command {
        Command::replace(1u32, self.path(scope, "CustomErrorText"), "chr", text)
    }

    /// `Replace …/SkipDeviceStatusPage` (device only; the CSP's default is true).
    pub fn skip_device_status_page(&self, skip: bool) -> Command {
        replace_bool(self.path(Scope::Device, "SkipDeviceStatusPage"), skip)
    }

    /// `Replace …/SkipUserStatusPage` (device only; the CSP's default is true).
    pub fn skip_user_status_page(&self, skip: bool) -> Command {
        replace_bool(self.path(Scope::Device, "SkipUserStatusPage"), skip)
    }

    /// `Replace …/ServerHasFinishedProvisioning` true: releases the page of `scope`.
    pub fn server_has_finished_provisioning(&self, scope: Scope) -> Command {
        replace_bool(self.path(scope, "ServerHasFinishedProvisioning"), true)
    }

    /// `Get` of `IsSyncDone` and `WasDeviceSuccessfullyProvisioned` in `scope`.
    pub fn get_progress(&self, scope: Scope) -> Command {
        Command::get(
            1u32,
            [
                self.path(scope, "IsSyncDone"),
                self.path(scope, "WasDeviceSuccessfullyProvisioned"),
            ],
        )
    }

    /// Reads a result the device returned for one of this provider's first-sync nodes.
    pub fn read(&self, uri: &str, value: &str) -> Option<Report> {
        let scope = [Scope::Device, Scope::User]
            .into_iter()
            .find(|s| uri.starts_with(&format!("{}/FirstSyncStatus/", self.provider_path(*s))))?;
        let node = uri.rsplit('/').next()?;
        let flag = |v: &str| match v.trim() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        };
        match node {
            "IsSyncDone" => flag(value).map(|b| Report::IsSyncDone(scope, b)),
            "ServerHasFinishedProvisioning" => {
                flag(value).map(|b| Report::ServerHasFinished(scope, b))
            }
            "WasDeviceSuccessfullyProvisioned" => {
                Provisioned::parse(value).map(|p| Report::Provisioned(scope, p))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Device => "device",
            Self::User => "user",
        })
    }
}

fn replace_bool(uri: String, value: bool) -> Command {
    Command::replace(1u32, uri, "bool", if value { "true" } else { "false" })
}

/// `Add` of an interior node: `Format` `node`, no `Data`.
fn add_node(uri: String) -> Command {
    Command::Add(ItemCommand::one(
        1u32,
        Item {
            target: Some(Location::new(Text::from(uri.as_str()))),
            meta: Some(Box::new(Meta::format_type(Some("node"), None))),
            ..Item::default()
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_scopes_and_formats() {
        let esp = FirstSync::new("winmdm").unwrap();
        let xml = crate::encode_command(&esp.add_provider(Scope::User));
        assert!(xml.contains("<LocURI>./User/Vendor/MSFT/DMClient/Provider/winmdm</LocURI>"));
        assert!(
            xml.contains(">node</Format>") && !xml.contains("<Data"),
            "{xml}"
        );
        let t =
            crate::encode_command(&esp.time_out_until_sync_failure(Timeout::minutes(1).unwrap()));
        assert!(t.contains(
            "./Device/Vendor/MSFT/DMClient/Provider/winmdm/FirstSyncStatus/TimeOutUntilSyncFailure"
        ));
        assert!(t.contains(">int</Format>") && t.contains("<Data>1</Data>"));
        let b = crate::encode_command(
            &esp.block_in_status_page(BlockFlags::RESET_PC | BlockFlags::CONTINUE_ANYWAY),
        );
        assert!(
            b.contains("<Data>5</Data>") && b.contains(">int</Format>"),
            "{b}"
        );
        assert!(Timeout::minutes(0).is_err() && Timeout::minutes(1441).is_err());
        assert_eq!(Timeout::minutes(1440).unwrap().as_secs(), 86_400);
        for bad in ["", "a/b", "a%20", " x", "x\n"] {
            assert!(FirstSync::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lists_join_with_u_f000_and_split_back() {
        let v = join_list(&["./A;1", "./B;2"]).unwrap();
        assert_eq!(v, "./A;1\u{F000}./B;2");
        assert_eq!(split_list(&v), ["./A;1", "./B;2"]);
        assert!(join_list(&["a\u{F000}b"]).is_err());
        assert!(join_list(&[" "]).is_err());
        // The delimiter survives the XML codec both ways.
        let esp = FirstSync::new("p").unwrap();
        let c = esp
            .expected(Scope::Device, ExpectedKind::Policies, &["./A", "./B"])
            .unwrap();
        let xml = crate::encode_command(&c);
        let back = crate::decode_fragment(xml.as_bytes(), &crate::Limits::default()).unwrap();
        assert_eq!(crate::encode_fragment(&back.value), xml);
    }

    #[test]
    fn reports_read_back() {
        let esp = FirstSync::new("p").unwrap();
        assert_eq!(
            esp.read(
                "./User/Vendor/MSFT/DMClient/Provider/p/FirstSyncStatus/IsSyncDone",
                "true"
            ),
            Some(Report::IsSyncDone(Scope::User, true))
        );
        assert_eq!(
            esp.read("./Device/Vendor/MSFT/DMClient/Provider/p/FirstSyncStatus/WasDeviceSuccessfullyProvisioned", "2"),
            Some(Report::Provisioned(Scope::Device, Provisioned::InProgress))
        );
        assert_eq!(
            esp.read(
                "./Device/Vendor/MSFT/DMClient/Provider/q/FirstSyncStatus/IsSyncDone",
                "true"
            ),
            None
        );
    }
}
