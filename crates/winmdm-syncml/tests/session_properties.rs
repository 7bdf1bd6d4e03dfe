//! Property tests of the DM session over random queues of commands run against the
//! simulated device:
//! * no server message ever exceeds the effective `MaxMsgSize` (the harness checks every
//!   reply), and every queued command ends answered, dropped (never fits) or unsent (held);
//! * persistence: serializing the state to JSON and restoring it into a fresh `Session`
//!   before every message gives exactly the same conversation.

mod common;

use common::*;
use proptest::prelude::*;
use winmdm_syncml::Command;
use winmdm_syncml::alerts::LoginStatus;
use winmdm_syncml::scope::{EnrollmentType, SessionUser};
use winmdm_syncml::session::{Event, SessionConfig};

fn uri() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z]{1,12}".prop_map(|n| format!("./Vendor/MSFT/Test/{n}")),
        1 => "[A-Za-z]{1,12}".prop_map(|n| format!("./User/Vendor/MSFT/Test/{n}")),
        1 => Just("./Vendor/MSFT/Test/Big".to_owned()),
        1 => Just("./DevInfo/Man".to_owned()),
    ]
}

fn value(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "[ -~]{0,40}",
        1 => (0..max).prop_map(|n| "v<&\"é>".chars().cycle().take(n).collect::<String>()),
    ]
}

fn simple() -> impl Strategy<Value = Command> {
    prop_oneof![
        proptest::collection::vec(uri(), 1..4).prop_map(|u| Command::get(1u32, u)),
        (uri(), value(12_000)).prop_map(|(u, v)| Command::replace(1u32, u, "chr", v)),
        (uri(), value(300)).prop_map(|(u, v)| Command::add(1u32, u, "chr", v)),
        uri().prop_map(|u| Command::delete(1u32, [u])),
        (uri(), value(4_000)).prop_map(|(u, v)| Command::exec(1u32, u, Some("chr"), Some(v))),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        6 => simple(),
        1 => proptest::collection::vec(
            (uri(), value(200)).prop_map(|(u, v)| Command::replace(1u32, u, "chr", v)),
            1..4
        )
        .prop_map(|c| Command::atomic(1u32, c)),
        1 => proptest::collection::vec(simple(), 1..4).prop_map(|c| Command::sequence(1u32, c)),
    ]
}

#[derive(Debug, Clone)]
struct Scenario {
    enrollment: EnrollmentType,
    max_msg_size: u64,
    upload_chunk: usize,
    signed_in: bool,
    big_node: usize,
    commands: Vec<Command>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop_oneof![Just(EnrollmentType::Device), Just(EnrollmentType::Full)],
        1_100u64..9_000,
        300usize..5_000,
        any::<bool>(),
        0usize..20_000,
        proptest::collection::vec(command(), 0..14),
    )
        .prop_map(
            |(enrollment, max_msg_size, upload_chunk, signed_in, big_node, commands)| Scenario {
                enrollment,
                max_msg_size,
                upload_chunk,
                signed_in,
                big_node,
                commands,
            },
        )
}

fn harness(s: &Scenario, persist: bool) -> Harness {
    let mut device = device()
        .with_max_sizes(s.max_msg_size, None)
        .with_upload_chunk(s.upload_chunk);
    device.set_node("./Vendor/MSFT/Test/Big", &"b&<".repeat(s.big_node / 3));
    if s.signed_in {
        device.set_login_status(Some(LoginStatus::User));
        device.set_user_token(Some("token-of-alice".into()));
    } else {
        device.set_login_status(Some(LoginStatus::None));
    }
    let mut h = Harness::with_config(SessionConfig::new(s.enrollment), device);
    h.persist = persist;
    h.resolve = Box::new(|t| {
        (t == "token-of-alice").then(|| SessionUser {
            tenant_id: "contoso".into(),
            object_id: "alice".into(),
            guest: false,
        })
    });
    for (i, c) in s.commands.iter().enumerate() {
        h.queue(&format!("q{i}"), c.clone());
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn messages_fit_and_every_command_is_accounted_for(s in scenario()) {
        let mut h = harness(&s, false);
        let end = h.run();
        prop_assert!(end.unanswered.is_empty(), "unanswered: {:?}\n{}", end.unanswered, h.trace(20));
        let dropped: Vec<String> = h.replies.iter().flat_map(|r| r.dropped.iter().map(|d| d.tag.clone())).collect();
        let unsent: Vec<String> = end.unsent.iter().map(|q| q.tag.clone()).collect();
        for i in 0..s.commands.len() {
            let tag = format!("q{i}");
            let answered = h.events.iter().any(|e| matches!(e, Event::Status { tag: t, path, .. } if *t == tag && path.is_empty()));
            let n = usize::from(answered) + usize::from(dropped.contains(&tag)) + usize::from(unsent.contains(&tag));
            prop_assert_eq!(n, 1, "{} answered={} dropped={} unsent={}", tag, answered, dropped.contains(&tag), unsent.contains(&tag));
        }
        // No server command was applied twice.
        let mut seen = std::collections::HashSet::new();
        for a in h.device.applied() {
            prop_assert!(seen.insert((a.msg_id.clone(), a.cmd_id.clone(), a.uri.clone())), "applied twice: {:?}", a);
        }
    }

    #[test]
    fn restoring_the_state_before_every_message_changes_nothing(s in scenario()) {
        let mut straight = harness(&s, false);
        let end_a = straight.run();
        let mut restored = harness(&s, true);
        let end_b = restored.run();
        prop_assert_eq!(end_a, end_b);
        prop_assert_eq!(&straight.server_msgs, &restored.server_msgs);
        prop_assert_eq!(&straight.events, &restored.events);
        prop_assert_eq!(straight.device.applied(), restored.device.applied());
    }
}
