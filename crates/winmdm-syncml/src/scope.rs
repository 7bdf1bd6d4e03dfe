//! Which commands may be sent now: the user/device scope rules of Entra-integrated
//! management (Microsoft Entra integration with MDM, "Management protocol with Microsoft
//! Entra ID"; OMA DM protocol support, "User targeted vs. Device targeted configuration").
//!
//! * A command is **user-scoped** when it targets a node under `./User/` (any case);
//!   everything else (`./Device/…`, `./Vendor/…`, `./DevDetail/…`) is device-scoped.
//!   `Atomic`/`Sequence` are user-scoped if any command inside is.
//! * **Added work account** (enrollment type `Full`): both scopes are sent, with or without a
//!   user token.
//! * **Entra-joined device** (enrollment type `Device`, multi-user): user-scoped commands go
//!   only to the user the session's Entra token identifies, and wait while there is no
//!   valid token, the signed-in user is a guest, or `LoginStatus` is not `user`. Writes
//!   to `./User/…` during OOBE fail with 500 (507 for the enclosing `Atomic`), which is why
//!   they are held rather than sent.
//!
//! ```
//! use winmdm_syncml::alerts::LoginStatus;
//! use winmdm_syncml::scope::{Decision, EnrollmentType, Hold, Scope, UserContext, may_send};
//! let ctx = UserContext { login_status: Some(LoginStatus::User), user: None };
//! assert_eq!(may_send(Scope::User, EnrollmentType::Device, &ctx, None), Decision::Hold(Hold::NoUserToken));
//! assert_eq!(may_send(Scope::User, EnrollmentType::Full, &ctx, None), Decision::Send);
//! assert_eq!(may_send(Scope::Device, EnrollmentType::Device, &ctx, None), Decision::Send);
//! ```

use crate::alerts::LoginStatus;
use crate::model::Command;

/// The `EnrollmentType` the device enrolled with (MS-MDE2 AdditionalContext).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum EnrollmentType {
    /// Entra join: a device enrollment shared by every user of the device.
    Device,
    /// An added work account (or a traditional user enrollment).
    Full,
}

/// Whose configuration a command touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Scope {
    /// The device (`./Device/…` and every path not under `./User/`).
    Device,
    /// The signed-in user (`./User/…`).
    User,
}

/// The scope of a node URI.
pub fn scope_of_uri(uri: &str) -> Scope {
    let path = uri.trim();
    let path = path.strip_prefix("./").unwrap_or(path);
    let first = path.split('/').next().unwrap_or_default();
    if first.eq_ignore_ascii_case("user") {
        Scope::User
    } else {
        Scope::Device
    }
}

/// The scope of a command: user-scoped if any item (or nested command) targets
/// `./User/…`.
pub fn scope_of(command: &Command) -> Scope {
    let user_item = command.items().iter().any(|i| {
        i.target
            .as_ref()
            .or(i.source.as_ref())
            .is_some_and(|l| scope_of_uri(&l.loc_uri) == Scope::User)
    });
    if user_item
        || command
            .children()
            .iter()
            .any(|c| scope_of(c) == Scope::User)
    {
        Scope::User
    } else {
        Scope::Device
    }
}

/// The user the session's Entra token identifies (validated by `winmdm-entra`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionUser {
    /// Tenant ID (`tid`).
    pub tenant_id: String,
    /// Object ID (`oid`).
    pub object_id: String,
    /// The token says the user is a guest in the tenant.
    pub guest: bool,
}

/// What the session knows about who is signed in.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserContext {
    /// The last alert 1224 `LoginStatus`, if any.
    pub login_status: Option<LoginStatus>,
    /// The user of a valid Entra token (from `Authorization` or alert 1224
    /// `AADUserToken`), if the session has one.
    pub user: Option<SessionUser>,
}

/// Why a command waits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Hold {
    /// No valid Entra user token in this session.
    NoUserToken,
    /// The signed-in user is a guest.
    GuestUser,
    /// `LoginStatus` is not `user` (or was not reported).
    NotSignedIn(Option<LoginStatus>),
    /// The command is for another user than the one signed in.
    OtherUser,
}

/// Whether to send a command now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Decision {
    /// Send it in this session.
    Send,
    /// Keep it queued.
    Hold(Hold),
}

/// Decides whether a command of `scope`, queued for `for_user` (an object ID, for
/// user-scoped commands on shared devices), may be sent now.
pub fn may_send(
    scope: Scope,
    enrollment: EnrollmentType,
    ctx: &UserContext,
    for_user: Option<&str>,
) -> Decision {
    if scope == Scope::Device || enrollment == EnrollmentType::Full {
        return Decision::Send;
    }
    let Some(user) = &ctx.user else {
        return Decision::Hold(Hold::NoUserToken);
    };
    if user.guest {
        return Decision::Hold(Hold::GuestUser);
    }
    if ctx.login_status != Some(LoginStatus::User) {
        return Decision::Hold(Hold::NotSignedIn(ctx.login_status.clone()));
    }
    match for_user {
        Some(oid) if !oid.eq_ignore_ascii_case(&user.object_id) => Decision::Hold(Hold::OtherUser),
        _ => Decision::Send,
    }
}
