//! Scope rules: Device vs Full enrollment × token present / absent / guest / LoginStatus
//! none (and others), on real commands.

use winmdm_syncml::Command;
use winmdm_syncml::alerts::LoginStatus;
use winmdm_syncml::scope::{
    Decision, EnrollmentType, Hold, Scope, SessionUser, UserContext, may_send, scope_of,
    scope_of_uri,
};

const ALICE: &str = "11111111-0000-4000-8000-0000000a11ce";

fn user(guest: bool) -> Option<SessionUser> {
    Some(SessionUser {
        tenant_id: "72f988bf-0000-4000-8000-00000000c0de".into(),
        object_id: ALICE.into(),
        guest,
    })
}

#[test]
fn uris_and_commands_have_scopes() {
    assert_eq!(
        scope_of_uri("./User/Vendor/MSFT/Policy/Config/Start/HideShutDown"),
        Scope::User
    );
    assert_eq!(scope_of_uri("./user/Vendor/MSFT/x"), Scope::User);
    assert_eq!(
        scope_of_uri("./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera"),
        Scope::Device
    );
    assert_eq!(
        scope_of_uri("./Vendor/MSFT/DMClient/Provider/x"),
        Scope::Device
    );
    assert_eq!(scope_of_uri("./DevDetail/SwV"), Scope::Device);
    assert_eq!(
        scope_of_uri("./Username/odd"),
        Scope::Device,
        "only the ./User/ segment counts"
    );
    let user_cmd = Command::replace(
        1u32,
        "./User/Vendor/MSFT/Policy/Config/Browser/AllowCookies",
        "int",
        "0",
    );
    let device_cmd = Command::get(2u32, ["./DevDetail/SwV"]);
    assert_eq!(scope_of(&user_cmd), Scope::User);
    assert_eq!(scope_of(&device_cmd), Scope::Device);
    assert_eq!(
        scope_of(&Command::atomic(3u32, vec![device_cmd.clone(), user_cmd])),
        Scope::User
    );
    assert_eq!(
        scope_of(&Command::sequence(4u32, vec![device_cmd])),
        Scope::Device
    );
}

#[test]
fn device_versus_full_enrollment_matrix() {
    let contexts = [
        (
            "token, signed in",
            UserContext {
                login_status: Some(LoginStatus::User),
                user: user(false),
            },
        ),
        (
            "no token",
            UserContext {
                login_status: Some(LoginStatus::User),
                user: None,
            },
        ),
        (
            "guest",
            UserContext {
                login_status: Some(LoginStatus::User),
                user: user(true),
            },
        ),
        (
            "LoginStatus none",
            UserContext {
                login_status: Some(LoginStatus::None),
                user: user(false),
            },
        ),
        (
            "LoginStatus others",
            UserContext {
                login_status: Some(LoginStatus::Others),
                user: user(false),
            },
        ),
        (
            "LoginStatus not reported",
            UserContext {
                login_status: None,
                user: user(false),
            },
        ),
    ];
    for (label, ctx) in &contexts {
        // Device-scoped commands always go, whatever the enrollment.
        for enrollment in [EnrollmentType::Device, EnrollmentType::Full] {
            assert_eq!(
                may_send(Scope::Device, enrollment, ctx, None),
                Decision::Send,
                "{label} {enrollment:?}"
            );
        }
        // Added work account: user-scoped commands go too, token or not.
        assert_eq!(
            may_send(Scope::User, EnrollmentType::Full, ctx, None),
            Decision::Send,
            "{label}"
        );
    }
    // Entra-joined device: user-scoped commands only for the signed-in, non-guest token user.
    let d = |ctx: &UserContext| may_send(Scope::User, EnrollmentType::Device, ctx, Some(ALICE));
    assert_eq!(d(&contexts[0].1), Decision::Send);
    assert_eq!(d(&contexts[1].1), Decision::Hold(Hold::NoUserToken));
    assert_eq!(d(&contexts[2].1), Decision::Hold(Hold::GuestUser));
    assert_eq!(
        d(&contexts[3].1),
        Decision::Hold(Hold::NotSignedIn(Some(LoginStatus::None)))
    );
    assert_eq!(
        d(&contexts[4].1),
        Decision::Hold(Hold::NotSignedIn(Some(LoginStatus::Others)))
    );
    assert_eq!(d(&contexts[5].1), Decision::Hold(Hold::NotSignedIn(None)));
    // A user-scoped command queued for someone else waits for that user.
    assert_eq!(
        may_send(
            Scope::User,
            EnrollmentType::Device,
            &contexts[0].1,
            Some("22222222-0000-4000-8000-000000000b0b")
        ),
        Decision::Hold(Hold::OtherUser)
    );
    // Object IDs compare case-insensitively.
    assert_eq!(
        may_send(
            Scope::User,
            EnrollmentType::Device,
            &contexts[0].1,
            Some(&ALICE.to_uppercase())
        ),
        Decision::Send
    );
}
