//! The behaviour every [`Store`] must have, as functions that panic on a violation: run
//! them against your own implementation (winmdm runs them against its in-memory store,
//! and the reference server against SQLite and PostgreSQL).
//!
//! ```
//! // In your store's tests (enable this crate's `conformance` feature as a dev-dependency):
//! winmdm_endpoint::conformance::all(&winmdm_endpoint::MemoryStore::new());
//! ```
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use crate::commands::CommandSpec;
use crate::store::{
    Admission, CheckIn, Commit, CommitError, DeviceRecord, Enrolled, Replace, SessionWrite,
    StatusRecord, Store,
};

/// A device record for tests.
pub fn device(id: &str) -> DeviceRecord {
    DeviceRecord {
        device_id: id.into(),
        tenant_id: "t".into(),
        user_oid: "u".into(),
        upn: Some("a@b".into()),
        enrollment_type: "Device".into(),
        certificate: vec![1, 2, 3],
        thumbprint: "ab".into(),
        digest_username: "n".into(),
        digest_password: "p".into(),
        nonce: "AAAA".into(),
        enrolled_at: 10,
        last_checkin: None,
        login_status: None,
        compliant: None,
        unenrolled_at: None,
        dev_info: Vec::new(),
        previous_thumbprint: None,
        certificate_used: false,
    }
}

fn ok(target: Option<&str>) -> StatusRecord {
    StatusRecord {
        target: target.map(str::to_owned),
        code: 200,
        original_error: None,
    }
}

fn get(uri: &str) -> CommandSpec {
    CommandSpec::Get {
        targets: vec![uri.into()],
    }
}

/// Enrollment, queueing, re-enrollment, traces. `store` must not know device `d1`.
pub fn queue_lifecycle(store: &dyn Store) {
    let s = store;
    assert_eq!(
        s.enroll(&device("d1"), &[get("./A")], 10, Replace::SameOwner.into())
            .unwrap(),
        Enrolled::Stored
    );
    let b = s.queue("d1", &get("./B"), Some("oid-1"), 11).unwrap();
    let queued = s.queued("d1").unwrap();
    assert_eq!(queued.len(), 2);
    assert_eq!(
        queued[1],
        crate::store::Queued {
            id: b,
            command: get("./B"),
            for_user: Some("oid-1".into())
        },
        "oldest first, with its user"
    );
    assert_eq!(queued[0].for_user, None);
    assert_eq!(
        s.commands("d1").unwrap()[1].for_user.as_deref(),
        Some("oid-1")
    );
    assert_eq!(s.queued("d1").unwrap().len(), 2, "reading takes nothing");
    let d = s.device("d1").unwrap().unwrap();
    assert_eq!(d, device("d1"));
    assert!(s.devices().unwrap().iter().any(|x| x.device_id == "d1"));
    assert!(s.renew_certificate("d1", "ab", &[9, 9], "99").unwrap());
    s.set_compliance("d1", true).unwrap();
    let d = s.device("d1").unwrap().unwrap();
    assert_eq!(
        (d.certificate, d.thumbprint, d.compliant),
        (vec![9, 9], "99".to_owned(), Some(true))
    );
    let mut c = Commit::new("d1", "1", None);
    c.session = SessionWrite::Put("{}".into());
    s.commit(&c).unwrap();
    assert_eq!(
        s.traces_of("d1").unwrap(),
        4,
        "device, two commands, a session"
    );
    // Re-enrolling starts over.
    assert_eq!(
        s.enroll(&device("d1"), &[], 20, Replace::SameOwner.into())
            .unwrap(),
        Enrolled::Stored,
        "the same tenant and user re-enroll"
    );
    assert_eq!(s.traces_of("d1").unwrap(), 1);
    assert!(s.queued("d1").unwrap().is_empty());
    assert_eq!(s.traces_of("nobody").unwrap(), 0);
    assert!(s.device("nobody").unwrap().is_none());
}

/// Only evidence of its owner replaces a device record: an enrollment whose device ID is
/// only the request's word replaces a record of the same tenant and user, never another's,
/// and a refused one changes nothing (record, queue, sessions). `store` must not know
/// device `d3`.
pub fn replacement_needs_the_owner(store: &dyn Store) {
    let s = store;
    let victim = device("d3");
    assert_eq!(
        s.enroll(&victim, &[get("./A")], 10, Replace::SameOwner.into())
            .unwrap(),
        Enrolled::Stored
    );
    s.queue("d3", &get("./B"), None, 11).unwrap();
    let mut c = Commit::new("d3", "1", None);
    c.session = SessionWrite::Put("{}".into());
    s.commit(&c).unwrap();
    let before = (
        s.device("d3").unwrap(),
        s.commands("d3").unwrap(),
        s.traces_of("d3").unwrap(),
    );
    let other_user = DeviceRecord {
        user_oid: "u2".into(),
        certificate: vec![6, 6, 6],
        thumbprint: "66".into(),
        digest_password: "attacker".into(),
        ..device("d3")
    };
    let other_tenant = DeviceRecord {
        tenant_id: "t2".into(),
        ..other_user.clone()
    };
    for attacker in [&other_user, &other_tenant] {
        assert_eq!(
            s.enroll(attacker, &[get("./Evil")], 12, Replace::SameOwner.into())
                .unwrap(),
            Enrolled::OwnedByAnother,
            "{}/{}",
            attacker.tenant_id,
            attacker.user_oid
        );
        let after = (
            s.device("d3").unwrap(),
            s.commands("d3").unwrap(),
            s.traces_of("d3").unwrap(),
        );
        assert_eq!(after, before, "a refused enrollment changes nothing");
    }
    // A verified device ID never replaces another tenant's record either.
    assert_eq!(
        s.enroll(&other_tenant, &[], 13, Replace::VerifiedDevice.into())
            .unwrap(),
        Enrolled::OwnedByAnother
    );
    let after = (
        s.device("d3").unwrap(),
        s.commands("d3").unwrap(),
        s.traces_of("d3").unwrap(),
    );
    assert_eq!(after, before);
    // The device itself, proven by a verified device ID, re-enrolls whichever user of its
    // tenant enrolled it.
    assert_eq!(
        s.enroll(&other_user, &[], 13, Replace::VerifiedDevice.into())
            .unwrap(),
        Enrolled::Stored
    );
    assert_eq!(s.device("d3").unwrap().unwrap().user_oid, "u2");
    assert_eq!(
        s.traces_of("d3").unwrap(),
        1,
        "its old queue and sessions are gone"
    );
}

/// Renewal follows the certificate: the current one renews; after a renewal the previous
/// one renews again only until the new one is used (a device that lost the response);
/// never after. `store` must not know device `d4`.
pub fn renewal_follows_the_certificate(store: &dyn Store) {
    let s = store;
    let d = DeviceRecord {
        thumbprint: "c1".into(),
        ..device("d4")
    };
    assert_eq!(
        s.enroll(&d, &[], 10, Replace::SameOwner.into()).unwrap(),
        Enrolled::Stored
    );
    let found = |t: &str| s.device_by_certificate(t).unwrap().map(|d| d.device_id);
    assert_eq!(found("c1").as_deref(), Some("d4"));
    assert_eq!(found("zz"), None);
    // c1 → c2; the response is lost, so the device retries with c1: c1 → c3.
    assert!(s.renew_certificate("d4", "c1", &[2], "c2").unwrap());
    assert_eq!(
        found("c1").as_deref(),
        Some("d4"),
        "the previous one, c2 unused"
    );
    assert!(s.renew_certificate("d4", "c1", &[3], "c3").unwrap());
    assert_eq!(found("c2"), None, "c2 was never delivered");
    assert!(!s.renew_certificate("d4", "c2", &[4], "c4").unwrap());
    let r = s.device("d4").unwrap().unwrap();
    assert_eq!(
        (
            r.thumbprint.as_str(),
            r.previous_thumbprint.as_deref(),
            r.certificate_used
        ),
        ("c3", Some("c1"), false)
    );
    // The device uses c3 (another certificate's use changes nothing): c1 is superseded.
    s.certificate_used("d4", "c1").unwrap();
    assert_eq!(found("c1").as_deref(), Some("d4"));
    s.certificate_used("d4", "c3").unwrap();
    assert_eq!(found("c1"), None);
    assert!(!s.renew_certificate("d4", "c1", &[5], "c5").unwrap());
    assert_eq!(s.device("d4").unwrap().unwrap().thumbprint, "c3");
    // The current one renews, and so on.
    assert!(s.renew_certificate("d4", "c3", &[6], "c6").unwrap());
    assert_eq!(found("c6").as_deref(), Some("d4"));
    assert_eq!(s.device("d4").unwrap().unwrap().certificate, vec![6]);
}

/// Commits: all or nothing, versioned sessions, commands handed out once. `store` must not
/// know device `d2`.
pub fn commits(store: &dyn Store) {
    let s = store;
    let stored = s
        .enroll(
            &device("d2"),
            &[get("./A"), get("./B"), get("./C")],
            10,
            Replace::SameOwner.into(),
        )
        .unwrap();
    assert_eq!(stored, Enrolled::Stored);
    let ids: Vec<i64> = s.queued("d2").unwrap().into_iter().map(|q| q.id).collect();

    // The first message of session 7 hands out A and B.
    let mut first = Commit::new("d2", "7", None);
    first.session = SessionWrite::Put("state-1".into());
    first.sent = vec![ids[0], ids[1]];
    first.nonce = Some("Tk9OQ0U=".into());
    first.check_in = Some(CheckIn {
        at: 100,
        login_status: Some("User".into()),
        dev_info: Some(vec![("./DevInfo/Man".into(), "Contoso".into())]),
    });
    s.commit(&first).unwrap();
    let stored = s.session("d2", "7").unwrap().unwrap();
    assert_eq!(stored.state, "state-1");
    let v1 = stored.version;
    let d = s.device("d2").unwrap().unwrap();
    assert_eq!(d.nonce, "Tk9OQ0U=");
    assert_eq!(d.last_checkin, Some(100));
    assert_eq!(d.login_status.as_deref(), Some("User"));
    assert_eq!(
        d.dev_info,
        [("./DevInfo/Man".to_owned(), "Contoso".to_owned())]
    );
    assert_eq!(s.queued("d2").unwrap().len(), 1, "C still queued");

    // The same first message again (a retry after a crash): a conflict, nothing applied.
    assert!(matches!(s.commit(&first), Err(CommitError::Conflict(_))));

    // A commit against an old version: refused as a whole, results included.
    let mut stale = Commit::new("d2", "7", Some(v1 - 1));
    stale.session = SessionWrite::Put("stale".into());
    stale.results = vec![(ids[0], vec![("./A".into(), "1".into())])];
    stale.statuses = vec![(ids[0], ok(None))];
    assert!(matches!(s.commit(&stale), Err(CommitError::Conflict(_))));
    let cmds = s.commands("d2").unwrap();
    assert!(cmds[0].results.is_empty() && cmds[0].state == "sent");
    assert_eq!(s.session("d2", "7").unwrap().unwrap().state, "state-1");

    // Another session cannot take what this one took.
    let mut other = Commit::new("d2", "8", None);
    other.session = SessionWrite::Put("other".into());
    other.sent = vec![ids[2], ids[1]];
    assert!(matches!(s.commit(&other), Err(CommitError::Conflict(_))));
    assert_eq!(
        s.queued("d2").unwrap().len(),
        1,
        "C not taken by the failed commit"
    );
    assert!(s.session("d2", "8").unwrap().is_none());

    // The second message: results and statuses, B back to the queue, the session ends.
    let mut second = Commit::new("d2", "7", Some(v1));
    second.session = SessionWrite::Delete;
    second.results = vec![(
        ids[0],
        vec![("./A".into(), "1".into()), ("./A/x".into(), "2".into())],
    )];
    second.statuses = vec![(ids[0], ok(None))];
    second.requeue = vec![ids[1]];
    second.unenrolled_at = Some(200);
    s.commit(&second).unwrap();
    let cmds = s.commands("d2").unwrap();
    assert_eq!(cmds[0].state, "done");
    assert_eq!(cmds[0].status, Some(200));
    assert_eq!(cmds[0].results.len(), 2);
    assert_eq!(cmds[1].state, "queued");
    assert!(s.session("d2", "7").unwrap().is_none());
    assert_eq!(s.device("d2").unwrap().unwrap().unenrolled_at, Some(200));
    // A done command is not re-queued.
    let mut late = Commit::new("d2", "9", None);
    late.requeue = vec![ids[0]];
    s.commit(&late).unwrap();
    assert_eq!(s.commands("d2").unwrap()[0].state, "done");

    // Sessions other than one.
    let mut a = Commit::new("d2", "10", None);
    a.session = SessionWrite::Put("ten".into());
    s.commit(&a).unwrap();
    let others = s.other_sessions("d2", "11").unwrap();
    assert_eq!(others.len(), 1);
    assert_eq!(others[0].0, "10");
    assert!(s.other_sessions("d2", "10").unwrap().is_empty());
}

/// The per-user device cap: a user with `cap` enrolled devices enrolls no other (nothing
/// changes), but re-enrolls one of them, and enrolls again once one unenrolled; other
/// users are not counted. `store` must not know devices `d5-*`.
pub fn device_cap(store: &dyn Store) {
    let s = store;
    let capped = |replace| Admission {
        replace,
        max_devices_per_user: Some(2),
    };
    let mine = |id: &str| DeviceRecord {
        user_oid: "cap-user".into(),
        ..device(id)
    };
    for id in ["d5-a", "d5-b"] {
        assert_eq!(
            s.enroll(&mine(id), &[], 10, capped(Replace::SameOwner))
                .unwrap(),
            Enrolled::Stored
        );
    }
    assert_eq!(
        s.enroll(&mine("d5-c"), &[get("./A")], 10, capped(Replace::SameOwner))
            .unwrap(),
        Enrolled::CapReached
    );
    assert_eq!(
        s.traces_of("d5-c").unwrap(),
        0,
        "a refused enrollment leaves nothing"
    );
    // Re-enrolling a device the user has is not a new device.
    assert_eq!(
        s.enroll(&mine("d5-b"), &[], 11, capped(Replace::SameOwner))
            .unwrap(),
        Enrolled::Stored
    );
    // Another user of the tenant, and the same object ID in another tenant, are not capped
    // by this user's devices.
    let other_user = DeviceRecord {
        user_oid: "someone-else".into(),
        ..device("d5-d")
    };
    let other_tenant = DeviceRecord {
        tenant_id: "t-other".into(),
        ..mine("d5-e")
    };
    for d in [&other_user, &other_tenant] {
        assert_eq!(
            s.enroll(d, &[], 12, capped(Replace::SameOwner)).unwrap(),
            Enrolled::Stored
        );
    }
    // An unenrolled device frees its place.
    let mut bye = Commit::new("d5-a", "1", None);
    bye.unenrolled_at = Some(13);
    s.commit(&bye).unwrap();
    assert_eq!(
        s.enroll(&mine("d5-c"), &[], 14, capped(Replace::SameOwner))
            .unwrap(),
        Enrolled::Stored
    );
    // No cap, no limit.
    assert_eq!(
        s.enroll(&mine("d5-f"), &[], 15, Replace::SameOwner.into())
            .unwrap(),
        Enrolled::Stored
    );
}

/// Failed authentications are counted per device in a window; success forgets them;
/// re-enrollment starts over; unknown devices record nothing. `store` must not know
/// devices `d6`, `d6-other`.
pub fn auth_failures(store: &dyn Store) {
    let s = store;
    assert_eq!(s.auth_failed("d6", 100, 60).unwrap(), 0, "unknown device");
    for id in ["d6", "d6-other"] {
        assert_eq!(
            s.enroll(&device(id), &[], 10, Replace::SameOwner.into())
                .unwrap(),
            Enrolled::Stored
        );
    }
    assert_eq!(s.auth_failures("d6", 100, 60).unwrap(), 0);
    assert_eq!(s.auth_failed("d6", 100, 60).unwrap(), 1);
    assert_eq!(s.auth_failed("d6", 120, 60).unwrap(), 2);
    assert_eq!(s.auth_failures("d6", 159, 60).unwrap(), 2);
    assert_eq!(
        s.auth_failures("d6-other", 159, 60).unwrap(),
        0,
        "per device"
    );
    // The window ended: a new one starts.
    assert_eq!(s.auth_failures("d6", 160, 60).unwrap(), 0);
    assert_eq!(s.auth_failed("d6", 161, 60).unwrap(), 1);
    s.auth_succeeded("d6").unwrap();
    assert_eq!(s.auth_failures("d6", 162, 60).unwrap(), 0);
    assert_eq!(s.auth_failed("d6", 163, 60).unwrap(), 1);
    // Re-enrolling starts over.
    assert_eq!(
        s.enroll(&device("d6"), &[], 164, Replace::SameOwner.into())
            .unwrap(),
        Enrolled::Stored
    );
    assert_eq!(s.auth_failures("d6", 165, 60).unwrap(), 0);
}

/// Statuses per target: every one kept in order with its original error; the aggregate is
/// the first failure, and a failure is not replaced by a later success. `store` must not
/// know device `d7`.
pub fn per_target_statuses(store: &dyn Store) {
    let s = store;
    let many = CommandSpec::Get {
        targets: vec!["./A".into(), "./B".into(), "./C".into()],
    };
    assert_eq!(
        s.enroll(
            &device("d7"),
            &[many.clone(), many],
            10,
            Replace::SameOwner.into()
        )
        .unwrap(),
        Enrolled::Stored
    );
    let ids: Vec<i64> = s.queued("d7").unwrap().into_iter().map(|q| q.id).collect();
    let failed = StatusRecord {
        target: Some("./B".into()),
        code: 404,
        original_error: Some("0x80070002".into()),
    };
    let mut c = Commit::new("d7", "1", None);
    c.sent = ids.clone();
    c.session = SessionWrite::Put("s".into());
    s.commit(&c).unwrap();
    let mut c = Commit::new(
        "d7",
        "1",
        Some(s.session("d7", "1").unwrap().unwrap().version),
    );
    c.statuses = vec![
        (ids[0], ok(Some("./A"))),
        (ids[0], failed.clone()),
        (ids[0], ok(Some("./C"))),
        (ids[1], ok(Some("./A"))),
    ];
    s.commit(&c).unwrap();
    let cmds = s.commands("d7").unwrap();
    assert_eq!(
        cmds[0].statuses,
        [ok(Some("./A")), failed.clone(), ok(Some("./C"))]
    );
    assert_eq!(cmds[0].status, Some(404), "a failed target is not hidden");
    assert_eq!(
        (cmds[0].state.as_str(), cmds[1].status),
        ("done", Some(200))
    );
    // More statuses in a later message: kept after the others; a success does not
    // replace the recorded failure, a failure replaces a success.
    let mut c = Commit::new(
        "d7",
        "1",
        Some(s.session("d7", "1").unwrap().unwrap().version),
    );
    c.statuses = vec![(ids[0], ok(Some("./D"))), (ids[1], failed)];
    s.commit(&c).unwrap();
    let cmds = s.commands("d7").unwrap();
    assert_eq!(cmds[0].statuses.len(), 4);
    assert_eq!(cmds[0].status, Some(404));
    assert_eq!(cmds[1].status, Some(404));
}

/// The Enrollment Status Page tracker state: written only for a known device, only over
/// the version read (a racing writer loses and changes nothing), dropped when the device
/// re-enrolls, counted as a trace. `store` must not know devices `d8`, `d8-unknown`.
pub fn esp_state(store: &dyn Store) {
    let s = store;
    assert!(
        !s.put_esp("d8-unknown", "{}", None).unwrap(),
        "unknown device"
    );
    assert_eq!(s.esp("d8-unknown").unwrap(), None);
    assert_eq!(
        s.enroll(&device("d8"), &[], 10, Replace::SameOwner.into())
            .unwrap(),
        Enrolled::Stored
    );
    assert_eq!(s.esp("d8").unwrap(), None);
    let traces = s.traces_of("d8").unwrap();
    assert!(s.put_esp("d8", "{\"a\":1}", None).unwrap());
    assert_eq!(s.traces_of("d8").unwrap(), traces + 1);
    assert!(
        !s.put_esp("d8", "{\"a\":9}", None).unwrap(),
        "already there"
    );
    let first = s.esp("d8").unwrap().unwrap();
    assert_eq!(first.state, "{\"a\":1}");
    assert!(s.put_esp("d8", "{\"a\":2}", Some(first.version)).unwrap());
    // A writer that read the first version loses.
    assert!(!s.put_esp("d8", "{\"a\":3}", Some(first.version)).unwrap());
    let second = s.esp("d8").unwrap().unwrap();
    assert_eq!(second.state, "{\"a\":2}");
    assert!(second.version > first.version);
    // Re-enrolling drops it.
    assert_eq!(
        s.enroll(&device("d8"), &[], 20, Replace::SameOwner.into())
            .unwrap(),
        Enrolled::Stored
    );
    assert_eq!(s.esp("d8").unwrap(), None);
}

/// Every check above, in turn, on one store that knows none of their devices.
pub fn all(store: &dyn Store) {
    esp_state(store);
    queue_lifecycle(store);
    commits(store);
    replacement_needs_the_owner(store);
    renewal_follows_the_certificate(store);
    device_cap(store);
    auth_failures(store);
    per_target_statuses(store);
}
