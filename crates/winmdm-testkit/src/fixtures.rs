//! The token and key-set fixtures committed under `testdata/`, as the code mints them.
//!
//! `regen-testdata.sh` writes these files; a test checks that the committed copies still
//! equal what [`files`] produces, so fixtures and code cannot drift apart.

use serde_json::Value;

use crate::entra::{
    self, ALICE, AccessToken, Broken, CONTOSO, GUEST, KEY_1, KEY_2, KEY_FABRIKAM, TokenVersion,
};

/// Where the committed fixtures point their endpoint URLs (the real Entra host).
pub const FIXTURE_BASE_URL: &str = "https://login.microsoftonline.com";

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// Every fixture file as `(path relative to testdata/, contents)`.
pub fn files() -> Vec<(String, String)> {
    let mut out = vec![
        (
            "entra/jwks-common-v2.json".to_owned(),
            pretty(&entra::jwks([&KEY_1, &KEY_2, &KEY_FABRIKAM])),
        ),
        (
            "entra/openid-configuration-common-v2.json".to_owned(),
            pretty(&entra::openid_configuration(
                FIXTURE_BASE_URL,
                "common",
                TokenVersion::V2,
            )),
        ),
        (
            "entra/openid-configuration-common-v1.json".to_owned(),
            pretty(&entra::openid_configuration(
                FIXTURE_BASE_URL,
                "common",
                TokenVersion::V1,
            )),
        ),
        (
            "entra/openid-configuration-contoso-v2.json".to_owned(),
            pretty(&entra::openid_configuration(
                FIXTURE_BASE_URL,
                CONTOSO.id,
                TokenVersion::V2,
            )),
        ),
    ];
    let tokens = [
        ("v2-contoso-alice", AccessToken::v2(&CONTOSO, &ALICE).sign()),
        ("v1-contoso-alice", AccessToken::v1(&CONTOSO, &ALICE).sign()),
        ("v2-contoso-guest", AccessToken::v2(&CONTOSO, &GUEST).sign()),
        (
            "enrollment-v2-contoso-alice",
            AccessToken::for_enrollment(&CONTOSO, &ALICE).sign(),
        ),
    ];
    for (name, token) in tokens {
        out.push((format!("tokens/{name}.jwt"), format!("{token}\n")));
    }
    for kind in Broken::ALL {
        let name = format!("{kind:?}")
            .chars()
            .flat_map(|c| {
                if c.is_ascii_uppercase() {
                    vec!['-', c.to_ascii_lowercase()]
                } else {
                    vec![c]
                }
            })
            .collect::<String>();
        out.push((
            format!("tokens/broken{name}.jwt"),
            format!("{}\n", entra::broken(kind)),
        ));
    }
    out
}
