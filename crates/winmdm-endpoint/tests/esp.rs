//! The Enrollment Status Page, scripted end to end through `Endpoint::handle`: a device
//! joins Entra in OOBE (a `Device` enrollment), and the simulated Windows client
//! (`winmdm_syncml::client::Device`) shows the page as Windows does — blocking in device
//! setup, then account setup after sign-in, until the server releases it or
//! `TimeOutUntilSyncFailure` passes, answering 405 for the user's DMClient nodes before
//! the user's MDM context exists. Every scenario ends: released, or failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{NOW, URL, base64_cert, components, endpoint_with, policy, send_at, static_cache};
use winmdm_endpoint::esp::{EspConfig, EspItem, EspPhase, EspState};
use winmdm_endpoint::{
    CommandSpec, Endpoint, EndpointConfig, Input, MemoryStore, Store as _, TermsOfUseBlob,
};
use winmdm_entra::{Principals, Validator};
use winmdm_syncml::alerts::LoginStatus;
use winmdm_syncml::client::{Device, EspPage};
use winmdm_syncml::dmclient::{BlockFlags, Scope, Timeout};
use winmdm_testkit::entra::{ALICE, AccessToken, CONTOSO, KEY_1};
use winmdm_testkit::{pki, requests};

const MGMT: &str = "https://mdm.contoso.example/ManagementServer/MDM.svc";
const POLICY: &str = "./Device/Vendor/MSFT/Policy/Config/Experience/AllowCortana";
const USER_POLICY: &str = "./User/Vendor/MSFT/Policy/Config/Start/HideRecentlyAddedApps";

fn esp_config() -> EspConfig {
    EspConfig {
        items: vec![
            EspItem {
                label: "Cortana off".into(),
                scope: Scope::Device,
                command: CommandSpec::Replace {
                    target: POLICY.into(),
                    format: "int".into(),
                    data: "0".into(),
                },
            },
            EspItem {
                label: "OS version".into(),
                scope: Scope::Device,
                command: CommandSpec::Get {
                    targets: vec!["./DevDetail/SwV".into()],
                },
            },
            EspItem {
                label: "Start menu".into(),
                scope: Scope::User,
                command: CommandSpec::Replace {
                    target: USER_POLICY.into(),
                    format: "int".into(),
                    data: "1".into(),
                },
            },
        ],
        timeout: Timeout::minutes(30).unwrap(),
        block: BlockFlags::RESET_PC | BlockFlags::CONTINUE_ANYWAY,
        error_text: "Call the help desk at 1234.".into(),
        ..EspConfig::default()
    }
}

/// A device in OOBE, enrolled, with its certificate; the clock in seconds.
struct Oobe {
    ep: Endpoint,
    store: Arc<MemoryStore>,
    device: Device,
    cert: Vec<u8>,
    id: String,
    now: u64,
}

fn enroll_in_oobe(configure: impl FnOnce(&mut EndpointConfig)) -> Oobe {
    let (ep, store) = endpoint_with(|c| {
        c.terms_of_use_blob = TermsOfUseBlob::NotRequired;
        c.esp = Some(esp_config());
        configure(c);
    });
    oobe(ep, store)
}

fn oobe(ep: Endpoint, store: Arc<MemoryStore>) -> Oobe {
    let csr = &pki::DEVICE_RSA2048_CSR;
    let id = csr.device_id.to_ascii_lowercase();
    let token = AccessToken::v2(&CONTOSO, &ALICE)
        .claim("deviceid", id.as_str())
        .issued_at(NOW)
        .signed_with(&KEY_1)
        .sign();
    let rst = requests::rst_issue(
        &format!("{URL}/EnrollmentServer/Enrollment.svc"),
        &token,
        csr.csr_der,
        &[
            ("DeviceID", csr.device_id),
            ("EnrollmentType", "Device"),
            ("NotInOobe", "false"),
        ],
    );
    let answer = common::send(
        &ep,
        "POST",
        "/EnrollmentServer/Enrollment.svc",
        &[("content-type", "application/soap+xml")],
        &rst,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let doc = winmdm_enroll::issue::provisioning_doc_of(answer.body.as_bytes()).unwrap();
    // Its user's MDM context comes up one session after sign-in (405 until then).
    let mut device = Device::new(&id, MGMT).with_user_context_delay(1);
    device.set_node("./DevDetail/SwV", "10.0.26100.2605");
    // OOBE: another account than the enrolled user's MDM context (LoginStatus `others`),
    // the Entra user token sent with the session.
    device.set_login_status(Some(LoginStatus::Others));
    device.set_user_token(Some(token));
    device.set_time(NOW);
    Oobe {
        ep,
        store,
        device,
        cert: base64_cert(&doc),
        id,
        now: NOW,
    }
}

impl Oobe {
    /// One management session at `self.now`; the number of messages.
    fn session(&mut self) -> usize {
        self.device.set_time(self.now);
        let mut next = Some(self.device.start_session());
        let mut n = 0;
        while let Some(m) = next {
            n += 1;
            assert!(n < 20, "the session does not end");
            let reply = self.post(&m);
            next = self.device.respond(&reply);
        }
        assert_eq!(self.device.refused(), None);
        n
    }

    /// Sessions every three minutes (Windows polls that often during the page) until
    /// the page is no longer in progress on the device, at most `max`.
    fn poll(&mut self, max: usize) {
        for _ in 0..max {
            self.session();
            let v = self.device.esp();
            let busy = v.device == EspPage::InProgress
                || (v.user == EspPage::InProgress && self.signed_in());
            if !busy {
                return;
            }
            self.now += 180;
        }
    }

    /// Posts one message of the current session; the reply.
    fn post(&mut self, m: &winmdm_syncml::SyncMl) -> winmdm_syncml::SyncMl {
        let url = url::Url::parse(self.device.url()).unwrap();
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let a = send_at(
            &self.ep,
            "POST",
            &target,
            &[("content-type", winmdm_syncml::CONTENT_TYPE)],
            &winmdm_syncml::encode(m),
            Input::new(self.now).with_client_certificate(Some(&self.cert)),
        );
        assert_eq!(a.status, 200, "{}", a.body);
        winmdm_syncml::decode(a.body.as_bytes()).unwrap()
    }

    fn signed_in(&self) -> bool {
        self.device.esp().user != EspPage::Waiting
    }

    fn state(&self) -> EspState {
        serde_json::from_str(&self.store.esp(&self.id).unwrap().unwrap().state).unwrap()
    }

    fn sign_in(&mut self) {
        self.device.set_login_status(Some(LoginStatus::User));
    }
}

#[test]
fn the_page_is_released_device_then_user_once_everything_succeeded() {
    let mut o = enroll_in_oobe(|_| {});
    assert_eq!(o.state().phase, EspPhase::Device);
    o.session();
    // The page is on and blocking; the user's DMClient nodes wait for a signed-in user
    // (LoginStatus `others` in OOBE: the session holds user-scope commands).
    let v = o.device.esp();
    assert!(v.blocking);
    assert!(
        matches!(v.device, EspPage::InProgress | EspPage::Released),
        "{v:?}"
    );
    let commands = o.store.commands(&o.id).unwrap();
    let user_setup: Vec<_> = o
        .state()
        .tracked
        .into_iter()
        .filter(|t| t.scope == Scope::User && t.role == winmdm_endpoint::esp::Role::Setup)
        .collect();
    // The two nodes, then the account page's own logs button and error text.
    assert_eq!(user_setup.len(), 4);
    for t in &user_setup {
        let c = commands.iter().find(|c| c.id == t.command_id).unwrap();
        assert_eq!(c.state, "queued", "{t:?}");
    }
    o.poll(5);
    assert_eq!(o.device.esp().device, EspPage::Released);
    assert_eq!(o.state().phase, EspPhase::User);
    // Account setup waits for the user; nothing fails while the user is away.
    o.now += 600;
    o.session();
    assert_eq!(o.device.esp().user, EspPage::Waiting);
    assert_eq!(o.state().phase, EspPhase::User);
    // The user signs in: the user's nodes go out and get 405 (the user's MDM context is
    // still coming up), go again in the next session, then the user's item and the
    // release, acknowledged with 200.
    o.sign_in();
    o.now += 60;
    o.session();
    let refused: Vec<_> = o
        .state()
        .tracked
        .into_iter()
        .filter(|t| t.outcome == winmdm_endpoint::esp::Outcome::NeedsUser)
        .collect();
    assert!(!refused.is_empty(), "{:#?}", o.state());
    assert_eq!(o.state().phase, EspPhase::User);
    o.poll(6);
    let v = o.device.esp();
    assert_eq!(v.user, EspPage::Released, "{v:?} {:#?}", o.state());
    let state = o.state();
    assert_eq!(state.phase, EspPhase::Released);
    assert!(state.failure.is_none());
    assert_eq!(o.device.node(USER_POLICY), Some("1"));
    assert_eq!(o.device.node(POLICY), Some("0"));
    // Every tracked command succeeded; the user's nodes needed a second attempt.
    assert!(
        state
            .tracked
            .iter()
            .filter(|t| t.role != winmdm_endpoint::esp::Role::Failure)
            .all(|t| matches!(t.outcome, winmdm_endpoint::esp::Outcome::Succeeded(_))),
        "{state:#?}"
    );
    assert!(
        state
            .tracked
            .iter()
            .any(|t| t.scope == Scope::User && t.attempts == 2)
    );
    // Once released, account setup is turned off again for later users (an account page
    // nothing releases would hold another user's first sign-in).
    assert_eq!(
        o.device.node(
            "./Device/Vendor/MSFT/DMClient/Provider/winmdm/FirstSyncStatus/SkipUserStatusPage"
        ),
        Some("true")
    );
    // The account page got its own logs button and error text.
    assert_eq!(
        o.device
            .node("./User/Vendor/MSFT/DMClient/Provider/winmdm/FirstSyncStatus/CustomErrorText"),
        Some("Call the help desk at 1234.")
    );
    // After each release the server read the device's own report: done, provisioned.
    o.now += 60;
    o.session();
    let reports = o.state().reports;
    for scope in [Scope::Device, Scope::User] {
        assert!(
            reports.iter().any(|r| r.scope == scope
                && r.is_sync_done == Some(true)
                && r.provisioned == Some(winmdm_syncml::dmclient::Provisioned::Success)),
            "{scope}: {reports:?}"
        );
    }
    // Later sessions leave the finished page alone.
    let before = o.store.commands(&o.id).unwrap().len();
    o.now += 3600;
    o.session();
    assert_eq!(o.store.commands(&o.id).unwrap().len(), before);
}

#[test]
fn a_failed_item_fails_the_page_with_the_vendors_text_and_never_releases() {
    let mut o = enroll_in_oobe(|c| {
        let esp = c.esp.as_mut().unwrap();
        // A node the device does not have: 404.
        esp.items.push(EspItem {
            label: "inventory".into(),
            scope: Scope::Device,
            command: CommandSpec::Get {
                targets: vec!["./Vendor/MSFT/NotThere".into()],
            },
        });
    });
    o.poll(5);
    let state = o.state();
    assert_eq!(state.phase, EspPhase::Failed);
    assert_eq!(
        state.failure.as_deref(),
        Some("inventory failed with status 404")
    );
    // The failure settings reached the device: its text, blocking with a one-minute
    // time-out; no release was ever sent.
    let release = "./Device/Vendor/MSFT/DMClient/Provider/winmdm/FirstSyncStatus/ServerHasFinishedProvisioning";
    assert_eq!(o.device.node(release), None);
    o.now += 120;
    o.device.set_time(o.now);
    let v = o.device.esp();
    assert_eq!(v.device, EspPage::Failed, "{v:?}");
    assert_eq!(v.error_text.as_deref(), Some("Call the help desk at 1234."));
    assert!(v.blocking);
}

#[test]
fn the_page_fails_when_the_time_out_passes() {
    let mut o = enroll_in_oobe(|c| {
        c.esp.as_mut().unwrap().timeout = Timeout::minutes(5).unwrap();
    });
    // The device goes silent after enrolling (its network drops in OOBE) and calls in
    // again only after the time-out passed: the page fails, and the device, told a
    // one-minute time-out, shows the failure screen.
    o.now += 6 * 60;
    o.poll(3);
    let state = o.state();
    assert_eq!(state.phase, EspPhase::Failed, "{state:#?}");
    assert_eq!(
        state.failure.as_deref(),
        Some("not provisioned within 5 minutes")
    );
    assert_eq!(o.device.esp().device, EspPage::Failed);
}

#[test]
fn a_restart_in_the_middle_of_the_page_loses_nothing() {
    let mut o = enroll_in_oobe(|_| {});
    o.session();
    let mid = o.state();
    assert_eq!(mid.phase, EspPhase::User);
    // The server restarts: a new endpoint over the same store.
    let store = o.store.clone();
    let mut config = EndpointConfig::new(URL);
    config.terms_of_use_blob = TermsOfUseBlob::NotRequired;
    config.esp = Some(esp_config());
    let validator = Validator::new(policy(Principals::Users), Arc::new(static_cache()));
    o.ep = Endpoint::new(config, components(store, validator)).unwrap();
    assert_eq!(o.state(), mid);
    o.sign_in();
    o.now += 180;
    o.poll(6);
    assert_eq!(o.state().phase, EspPhase::Released);
    assert_eq!(o.device.esp().user, EspPage::Released);
}

#[test]
fn no_page_for_devices_outside_oobe_or_without_configuration() {
    let (ep, store) = endpoint_with(|c| c.terms_of_use_blob = TermsOfUseBlob::NotRequired);
    let o = oobe(ep, store);
    assert!(o.store.esp(&o.id).unwrap().is_none());
    // An unusable provider ID is a configuration error, not a page that never releases.
    let mut config = EndpointConfig::new(URL);
    config.provider_id = "a/b".into();
    config.esp = Some(esp_config());
    let validator = Validator::new(policy(Principals::Users), Arc::new(static_cache()));
    let store = Arc::new(MemoryStore::new());
    assert!(Endpoint::new(config, components(store, validator)).is_err());
}

/// An outside tester dropped the session right after the server sent the release: the
/// command stayed "sent" and the page waited for its time-out. An abandoned session's
/// unanswered commands now go again once it expires, and the page is released.
#[test]
fn a_release_lost_with_its_session_is_sent_again() {
    let mut o = enroll_in_oobe(|c| c.esp.as_mut().unwrap().user_phase = false);
    // The session delivers everything but the release; the device answers, gets the
    // release, and its answer is lost (the network drops).
    o.device.set_time(o.now);
    let mut next = Some(o.device.start_session());
    let mut sent_release = false;
    while let Some(m) = next {
        let reply = o.post(&m);
        sent_release = winmdm_syncml::encode(&reply).contains("ServerHasFinishedProvisioning");
        if sent_release {
            break;
        }
        next = o.device.respond(&reply);
    }
    assert!(sent_release);
    assert_eq!(o.state().phase, EspPhase::Device);
    // The device's next session comes after the abandoned one's idle time-out.
    o.now += 11 * 60;
    o.poll(3);
    assert_eq!(o.state().phase, EspPhase::Released, "{:#?}", o.state());
    assert_eq!(o.device.esp().device, EspPage::Released);
}

/// A user-scope item Windows keeps refusing with 405 although the user is signed in (a
/// node the edition does not have) fails the page after three attempts, rather than
/// holding it until the time-out.
#[test]
fn a_user_item_refused_with_405_three_times_fails_the_page() {
    let mut o = enroll_in_oobe(|_| {});
    o.device
        .fail_writes(USER_POLICY, winmdm_syncml::StatusCode::COMMAND_NOT_ALLOWED);
    o.poll(5);
    o.sign_in();
    for _ in 0..8 {
        o.now += 180;
        o.session();
        if o.state().finished() {
            break;
        }
    }
    let state = o.state();
    assert_eq!(state.phase, EspPhase::Failed, "{state:#?}");
    assert_eq!(
        state.failure.as_deref(),
        Some("Start menu failed with status 405")
    );
    let item = state
        .tracked
        .iter()
        .find(|t| t.label == "Start menu")
        .unwrap();
    assert_eq!(item.attempts, 3);
    // The account page got the failure text too.
    assert!(state.tracked.iter().any(|t| t.scope == Scope::User
        && t.label == "user CustomErrorText"
        && t.role == winmdm_endpoint::esp::Role::Failure));
}

/// A page setting the device refuses (here the logs button) does not fail the page:
/// the page goes on with Windows' default for it and is released. The admin view follows
/// every command to its status, after the page ended too.
#[test]
fn a_refused_page_setting_does_not_fail_the_page() {
    let mut o = enroll_in_oobe(|c| c.esp.as_mut().unwrap().user_phase = false);
    o.device.fail_writes(
        "./Device/Vendor/MSFT/DMClient/Provider/winmdm/FirstSyncStatus/AllowCollectLogsButton",
        winmdm_syncml::StatusCode::COMMAND_FAILED,
    );
    o.poll(5);
    o.now += 60;
    o.session();
    let state = o.state();
    assert_eq!(state.phase, EspPhase::Released, "{state:#?}");
    let logs = state
        .tracked
        .iter()
        .find(|t| t.label == "AllowCollectLogsButton")
        .unwrap();
    assert_eq!(logs.outcome, winmdm_endpoint::esp::Outcome::Failed(500));
    assert!(
        state
            .tracked
            .iter()
            .all(|t| t.outcome != winmdm_endpoint::esp::Outcome::Pending),
        "{state:#?}"
    );
}
