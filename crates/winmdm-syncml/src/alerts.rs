//! Microsoft's alerts as typed values (MS-MDM §2.2.7.2, §3.2.5.1; Entra integration doc;
//! unenrollment and app-management docs).
//!
//! ```
//! use winmdm_syncml::alerts::{self, KnownAlert, LoginStatus};
//! let cmd = alerts::login_status(2u32, LoginStatus::Others);
//! let winmdm_syncml::Command::Alert(a) = &cmd else { unreachable!() };
//! assert_eq!(KnownAlert::from_alert(a), KnownAlert::LoginStatus(LoginStatus::Others));
//! ```

use core::fmt;

use crate::codes::{AlertCode, CmdId};
use crate::model::{Alert, Command, Data, Item, Location, Meta};
use crate::text::Text;

/// 1224 `Type` of the login-status alert.
pub const LOGIN_STATUS_TYPE: &str = "com.microsoft/MDM/LoginStatus";
/// 1224 `Type` of the Entra user-token alert.
pub const AAD_USER_TOKEN_TYPE: &str = "com.microsoft/MDM/AADUserToken";
/// 1224 `Type` of the sync-type alert (multi-session hosts: `user`, `device`, `mixed`).
pub const SYNC_TYPE_TYPE: &str = "com.microsoft.mdm.synctype";
/// 1224 `Type` of the device-preparation alert (Windows 11 24H2+).
pub const DEVICE_PREP_SYNC_TYPE: &str = "com.microsoft/MDM/DevicePrepSync";
/// 1224 `Type` of the keep-alive alert (DMClient `EnableOmaDmKeepAliveMessage`).
pub const REQUEST_PENDING_TYPE: &str = "Reversed-Domain-Name:com.microsoft.mdm.requestpending";
/// 1224 `Type` sent during the bootstrap (Autopilot) sync.
pub const BOOTSTRAP_SYNC_TYPE: &str = "com.microsoft/MDM/BootstrapSync";
/// 1224 `Type` sent during offline domain join sync.
pub const ODJ_SYNC_TYPE: &str = "com.microsoft/MDM/OdjSync";
/// 1226 `Type` of the user's unenrollment request.
pub const UNENROLL_REQUEST_TYPE: &str = "com.microsoft:mdm.unenrollment.userrequest";
/// 1226 `Type` of a hosted app installation result.
pub const APP_INSTALL_RESULT_TYPE: &str =
    "Reversed-Domain-Name:com.microsoft.mdm.EnterpriseHostedAppInstall.result";
/// 1226 `Type` of an app uninstallation result.
pub const APP_UNINSTALL_RESULT_TYPE: &str =
    "Reversed-Domain-Name:com.microsoft.mdm.EnterpriseAppUninstall.result";

/// Who is signed in (alert 1224 `LoginStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum LoginStatus {
    /// A user with an Entra account.
    User,
    /// A user without an Entra account.
    Others,
    /// Nobody.
    None,
    /// Any other value, as sent.
    Unknown(String),
}

impl LoginStatus {
    /// Parses the alert data (case-insensitively: the docs write both `user` and `User`).
    pub fn parse(data: &str) -> Self {
        let d = data.trim();
        if d.eq_ignore_ascii_case("user") {
            Self::User
        } else if d.eq_ignore_ascii_case("others") {
            Self::Others
        } else if d.eq_ignore_ascii_case("none") {
            Self::None
        } else {
            Self::Unknown(d.to_owned())
        }
    }

    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::User => "user",
            Self::Others => "others",
            Self::None => "none",
            Self::Unknown(s) => s,
        }
    }
}

/// An Entra user token from alert 1224 `AADUserToken`. Hand it to `winmdm-entra` for
/// validation. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserToken(pub String);

impl UserToken {
    /// The token (a compact JWT). Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UserToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserToken([redacted; {} bytes])", self.0.len())
    }
}

/// One item of a generic alert (1226).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GenericAlert {
    /// `Source/LocURI`: the node the alert is about.
    pub source: Option<String>,
    /// `Meta/Type`: the alert type URN.
    pub r#type: Option<String>,
    /// `Meta/Format`.
    pub format: Option<String>,
    /// `Meta/Mark` (`critical`, `fatal`, `informational`, …).
    pub mark: Option<String>,
    /// `Data`.
    pub data: String,
}

impl GenericAlert {
    /// Whether this is the user's unenrollment request (`Data` 1).
    pub fn is_unenroll_request(&self) -> bool {
        self.r#type.as_deref().map(str::trim) == Some(UNENROLL_REQUEST_TYPE)
    }

    /// For app install/uninstall result alerts: `Some(true)` on success (`Data` 0).
    pub fn app_result_success(&self) -> Option<bool> {
        let t = self.r#type.as_deref()?.trim();
        (t == APP_INSTALL_RESULT_TYPE || t == APP_UNINSTALL_RESULT_TYPE)
            .then(|| self.data.trim() == "0")
    }
}

/// An alert, interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KnownAlert {
    /// 1201: the client starts a session.
    ClientInitiatedSession,
    /// 1200: a session started after a push.
    ServerInitiatedSession,
    /// 1222: send the next message of the package (large objects).
    NextMessage,
    /// 1223: abort the session.
    SessionAbort,
    /// 1224 LoginStatus.
    LoginStatus(LoginStatus),
    /// 1224 AADUserToken.
    AadUserToken(UserToken),
    /// 1224 sync type (`user`, `device`, `mixed`).
    SyncType(String),
    /// 1224 DevicePrepSync (`PendingProvisioning`, `Bootstrapping`, …).
    DevicePrepSync(String),
    /// 1224 keep-alive while a long operation runs.
    RequestPending,
    /// 1224 BootstrapSync (Autopilot bootstrap session), with its data.
    BootstrapSync(String),
    /// 1224 OdjSync (offline domain join session), with its data.
    OdjSync(String),
    /// Any other 1224 client event.
    ClientEvent {
        /// `Meta/Type`.
        r#type: Option<String>,
        /// `Data`.
        data: String,
    },
    /// 1225: a chunked object's end never arrived.
    NoEndOfData,
    /// 1226 generic alerts, one per item.
    Generic(Vec<GenericAlert>),
    /// Any other alert code (or a non-numeric one).
    Other(Option<AlertCode>),
}

impl KnownAlert {
    /// Interprets `alert`.
    pub fn from_alert(alert: &Alert) -> Self {
        let Some(code) = alert.code() else {
            return Self::Other(None);
        };
        let first = alert.items.first();
        let data = first.map_or("", Item::data_str);
        let ty = first.and_then(Item::meta_type).map(str::trim);
        match code {
            AlertCode::CLIENT_INITIATED_MGMT => Self::ClientInitiatedSession,
            AlertCode::SERVER_INITIATED_MGMT => Self::ServerInitiatedSession,
            AlertCode::NEXT_MESSAGE => Self::NextMessage,
            AlertCode::SESSION_ABORT => Self::SessionAbort,
            AlertCode::NO_END_OF_DATA => Self::NoEndOfData,
            AlertCode::CLIENT_EVENT => match ty {
                Some(LOGIN_STATUS_TYPE) => Self::LoginStatus(LoginStatus::parse(data)),
                Some(AAD_USER_TOKEN_TYPE) => Self::AadUserToken(UserToken(data.trim().to_owned())),
                Some(SYNC_TYPE_TYPE) => Self::SyncType(data.trim().to_owned()),
                Some(DEVICE_PREP_SYNC_TYPE) => Self::DevicePrepSync(data.trim().to_owned()),
                Some(REQUEST_PENDING_TYPE) => Self::RequestPending,
                Some(BOOTSTRAP_SYNC_TYPE) => Self::BootstrapSync(data.trim().to_owned()),
                Some(ODJ_SYNC_TYPE) => Self::OdjSync(data.trim().to_owned()),
                _ => Self::ClientEvent {
                    r#type: ty.map(str::to_owned),
                    data: data.to_owned(),
                },
            },
            AlertCode::GENERIC_ALERT => Self::Generic(
                alert
                    .items
                    .iter()
                    .map(|i| GenericAlert {
                        source: i.source.as_ref().map(|s| s.loc_uri.to_string()),
                        r#type: i.meta_type().map(|t| t.trim().to_owned()),
                        format: i.meta_format().map(str::to_owned),
                        mark: i
                            .meta
                            .as_ref()
                            .and_then(|m| m.mark.as_ref())
                            .map(|t| t.to_string()),
                        data: i.data_str().to_owned(),
                    })
                    .collect(),
            ),
            other => Self::Other(Some(other)),
        }
    }
}

fn client_event(cmd_id: impl Into<CmdId>, ty: &str, format: Option<&str>, data: &str) -> Command {
    Command::Alert(Alert {
        cmd_id: Some(cmd_id.into()),
        data: Some(Text::from_u32(u32::from(AlertCode::CLIENT_EVENT.0))),
        items: vec![Item {
            meta: Some(Box::new(Meta::format_type(format, Some(ty)))),
            data: Some(Data::text(data)),
            ..Item::default()
        }],
        ..Alert::default()
    })
}

/// Alert 1224 LoginStatus (as a client sends it; for simulators and tests).
pub fn login_status(cmd_id: impl Into<CmdId>, status: LoginStatus) -> Command {
    client_event(cmd_id, LOGIN_STATUS_TYPE, Some("chr"), status.as_str())
}

/// Alert 1224 AADUserToken.
pub fn aad_user_token(cmd_id: impl Into<CmdId>, token: &str) -> Command {
    client_event(cmd_id, AAD_USER_TOKEN_TYPE, None, token)
}

/// Alert 1201 (client-initiated session).
pub fn client_initiated(cmd_id: impl Into<CmdId>) -> Command {
    Command::alert(cmd_id, AlertCode::CLIENT_INITIATED_MGMT)
}

/// Alert 1226 user unenrollment request.
pub fn unenroll_request(cmd_id: impl Into<CmdId>) -> Command {
    Command::Alert(Alert {
        cmd_id: Some(cmd_id.into()),
        data: Some(Text::from_u32(u32::from(AlertCode::GENERIC_ALERT.0))),
        items: vec![Item {
            meta: Some(Box::new(Meta::format_type(
                Some("int"),
                Some(UNENROLL_REQUEST_TYPE),
            ))),
            data: Some(Data::text("1")),
            ..Item::default()
        }],
        ..Alert::default()
    })
}

/// Alert 1226 app install (or uninstall) result for the app node `source`.
pub fn app_result(cmd_id: impl Into<CmdId>, source: &str, install: bool, hresult: i32) -> Command {
    let ty = if install {
        APP_INSTALL_RESULT_TYPE
    } else {
        APP_UNINSTALL_RESULT_TYPE
    };
    Command::Alert(Alert {
        cmd_id: Some(cmd_id.into()),
        data: Some(Text::from_u32(u32::from(AlertCode::GENERIC_ALERT.0))),
        items: vec![Item {
            source: Some(Location::new(source)),
            meta: Some(Box::new(Meta::format_type(Some("int"), Some(ty)))),
            data: Some(Data::text(hresult.to_string())),
            ..Item::default()
        }],
        ..Alert::default()
    })
}
