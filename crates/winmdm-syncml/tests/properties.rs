//! Property tests: encode → decode is the identity over generated messages, and no byte
//! string panics the decoder.

use proptest::prelude::*;
use winmdm_syncml::*;

fn word() -> impl Strategy<Value = Text> {
    // Simple-element text: trimmed (the decoder trims), any XML character, no CR.
    "[A-Za-z0-9./:_{}#%&<>\"'-]([A-Za-z0-9./:_ &<>-]{0,30}[A-Za-z0-9./_&<>])?".prop_map(Text::from)
}

fn data() -> impl Strategy<Value = Data> {
    prop_oneof![
        "[ -~\n\t]{0,60}".prop_map(Data::text),
        "[ -~]{0,40}".prop_map(|s| Data {
            value: s.into(),
            kind: DataKind::CData,
            original_error: None
        }),
        ("[a-z]{1,8}", "[A-Za-z0-9 ]{0,20}")
            .prop_map(|(n, t)| Data::xml(format!("<{n} a=\"1\">{t}<i/></{n}>"))),
        ("[ -~]{0,20}", "0x8[0-9A-F]{7}").prop_map(|(s, e)| Data {
            value: s.into(),
            kind: DataKind::Text,
            original_error: Some(e.into())
        }),
    ]
}

fn meta() -> impl Strategy<Value = Meta> {
    (
        proptest::option::of(word()),
        proptest::option::of(word()),
        proptest::option::of("[0-9]{1,7}"),
        proptest::option::of(word()),
    )
        .prop_map(|(format, r#type, size, nonce)| Meta {
            format,
            r#type,
            size: size.map(Text::from),
            next_nonce: nonce,
            ..Meta::default()
        })
}

fn location() -> impl Strategy<Value = Location> {
    (word(), proptest::option::of(word()))
        .prop_map(|(loc_uri, loc_name)| Location { loc_uri, loc_name })
}

fn item() -> impl Strategy<Value = Item> {
    (
        proptest::option::of(location()),
        proptest::option::of(location()),
        proptest::option::of(meta().prop_map(Box::new)),
        proptest::option::of(data()),
        any::<bool>(),
    )
        .prop_map(|(target, source, meta, data, more_data)| Item {
            target,
            source,
            meta,
            data,
            more_data,
            ..Item::default()
        })
}

fn cmd_id() -> impl Strategy<Value = Option<CmdId>> {
    proptest::option::weighted(0.9, (1u32..500).prop_map(CmdId::from))
}

fn leaf() -> impl Strategy<Value = Command> {
    prop_oneof![
        (
            cmd_id(),
            any::<bool>(),
            proptest::collection::vec(item(), 0..3),
            proptest::option::of(meta().prop_map(Box::new)),
            0u8..6
        )
            .prop_map(|(cmd_id, no_resp, items, meta, k)| {
                let ic = ItemCommand {
                    cmd_id,
                    no_resp,
                    items,
                    meta,
                    ..ItemCommand::default()
                };
                match k {
                    0 => Command::Get(ic),
                    1 => Command::Add(ic),
                    2 => Command::Replace(ic),
                    3 => Command::Delete(ic),
                    4 => Command::Exec(ic),
                    _ => Command::Copy(ic),
                }
            }),
        (
            cmd_id(),
            1100u16..1300,
            proptest::collection::vec(item(), 0..3)
        )
            .prop_map(|(cmd_id, code, items)| Command::Alert(Alert {
                cmd_id,
                data: Some(Text::from_u32(u32::from(code))),
                items,
                ..Alert::default()
            })),
        (
            cmd_id(),
            word(),
            word(),
            proptest::option::of(word()),
            100u16..600,
            proptest::collection::vec(word(), 0..2),
            proptest::option::of(meta())
        )
            .prop_map(|(cmd_id, msg_ref, cmd_ref, cmd, code, target_ref, chal)| {
                Command::Status(Status {
                    cmd_id,
                    msg_ref: Some(msg_ref),
                    cmd_ref: Some(cmd_ref),
                    cmd,
                    target_ref,
                    chal: chal.map(|meta| Box::new(Chal { meta })),
                    data: Text::from_u32(u32::from(code)),
                    ..Status::default()
                })
            }),
        (
            cmd_id(),
            proptest::option::of(word()),
            word(),
            proptest::option::of(word()),
            proptest::collection::vec(item(), 0..3)
        )
            .prop_map(
                |(cmd_id, msg_ref, cmd_ref, cmd, items)| Command::Results(Results {
                    cmd_id,
                    msg_ref,
                    cmd_ref: Some(cmd_ref),
                    cmd,
                    items,
                    ..Results::default()
                })
            ),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    leaf().prop_recursive(2, 12, 4, |inner| {
        (
            cmd_id(),
            any::<bool>(),
            proptest::collection::vec(inner, 0..4),
        )
            .prop_map(|(cmd_id, atomic, commands)| {
                let k = Container {
                    cmd_id,
                    commands,
                    ..Container::default()
                };
                if atomic {
                    Command::Atomic(k)
                } else {
                    Command::Sequence(k)
                }
            })
    })
}

fn message() -> impl Strategy<Value = SyncMl> {
    (
        word(),
        word(),
        location(),
        location(),
        proptest::option::of("[0-9]{3,7}"),
        proptest::collection::vec(command(), 0..8),
        any::<bool>(),
    )
        .prop_map(
            |(session_id, msg_id, target, source, max_msg, commands, is_final)| SyncMl {
                header: SyncHdr {
                    ver_dtd: "1.2".into(),
                    ver_proto: "DM/1.2".into(),
                    session_id,
                    msg_id,
                    target: Some(target),
                    source: Some(source),
                    meta: max_msg.map(|m| {
                        Box::new(Meta {
                            max_msg_size: Some(m.into()),
                            ..Meta::default()
                        })
                    }),
                    ..SyncHdr::default()
                },
                body: SyncBody { commands, is_final },
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_is_identity(m in message()) {
        let xml = encode(&m);
        let back = decode(xml.as_bytes());
        prop_assert_eq!(back.as_ref(), Ok(&m), "{}", xml);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_fragment(&bytes, &Limits::default());
        let _ = winmdm_syncml::check::check_document(&bytes, &Limits::default());
    }

    #[test]
    fn mutated_messages_never_panic(m in message(), cut in 0usize..4000, flip in 0usize..4000, bit in 0u8..8) {
        let mut xml = encode(&m).into_bytes();
        if !xml.is_empty() {
            let i = flip % xml.len();
            xml[i] ^= 1 << bit;
            xml.truncate(cut % (xml.len() + 1));
        }
        if let Ok(d) = decode_fragment(&xml, &Limits::default()) {
            // Whatever decodes must encode and decode again.
            let again = encode_fragment(&d.value);
            prop_assert!(decode_fragment(again.as_bytes(), &Limits::default()).is_ok(), "{}", again);
        }
    }
}
