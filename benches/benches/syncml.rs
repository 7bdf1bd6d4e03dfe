//! SyncML benches on the reference message (`winmdm_testkit::samples::SYNCML_4K_CLIENT`), beside the DESIGN.md ceiling:
//! a raw `quick_xml::Reader` event scan of the same bytes.
//!
//! * `winmdm_syncml/decode` — bytes → typed model (namespaces, limits, diagnostics);
//! * `winmdm_syncml/encode` — typed model → bytes (into a reused buffer);
//! * `winmdm_syncml/session_exchange` — what a server does per request: bytes → model →
//!   session (authenticate, events, statuses, queued commands) → reply bytes.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn syncml(c: &mut Criterion) {
    let xml = winmdm_benches::syncml_4k_client();
    let model = winmdm_syncml::decode(&xml).unwrap();
    let mut buf = String::with_capacity(8192);
    winmdm_syncml::encode_into(&model, &mut buf);
    assert_eq!(winmdm_syncml::decode(buf.as_bytes()).unwrap(), model);

    let mut group = c.benchmark_group("syncml-4k-client");
    group.throughput(Throughput::Bytes(xml.len() as u64));
    group.bench_function("ceiling/quick_xml_event_scan", |b| {
        b.iter(|| winmdm_benches::ceiling_xml_event_scan(black_box(&xml)))
    });
    group.bench_function("winmdm_syncml/decode", |b| {
        b.iter(|| winmdm_syncml::decode(black_box(&xml)).unwrap())
    });
    group.bench_function("winmdm_syncml/encode", |b| {
        b.iter(|| {
            buf.clear();
            winmdm_syncml::encode_into(black_box(&model), &mut buf);
            buf.len()
        })
    });
    // A session with a few queued commands, restored fresh for every request.
    let mut fresh = winmdm_syncml::session::Session::new(
        winmdm_syncml::session::SessionConfig::new(winmdm_syncml::scope::EnrollmentType::Device),
        winmdm_syncml::auth::Nonce::from_bytes(vec![7; 16]),
    );
    for (i, c) in [
        winmdm_syncml::Command::get(
            1u32,
            ["./DevDetail/SwV", "./DevDetail/Ext/Microsoft/DeviceName"],
        ),
        winmdm_syncml::Command::replace(
            1u32,
            "./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera",
            "int",
            "0",
        ),
        winmdm_syncml::Command::exec(
            1u32,
            "./Vendor/MSFT/DMClient/Provider/MDM/Push/PFN",
            None,
            None,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        fresh
            .queue(winmdm_syncml::session::QueuedCommand::new(
                format!("q{i}"),
                c,
            ))
            .unwrap();
    }
    group.bench_function("winmdm_syncml/session_exchange", |b| {
        b.iter(|| {
            let mut session = fresh.clone();
            let msg = winmdm_syncml::decode(black_box(&xml)).unwrap();
            let winmdm_syncml::session::Inbound::Authenticate(step) =
                session.receive(msg, 1_000).unwrap()
            else {
                unreachable!()
            };
            let winmdm_syncml::session::Authenticated::Yes(mut ex) = step.decide(
                winmdm_syncml::session::Verdict::Certificate,
                winmdm_syncml::auth::Nonce::from_bytes(vec![8; 16]),
            ) else {
                unreachable!()
            };
            while let Some(e) = ex.poll_event() {
                black_box(e);
            }
            buf.clear();
            winmdm_syncml::encode_into(&ex.reply().message, &mut buf);
            buf.len()
        })
    });
    group.finish();
}

criterion_group!(benches, syncml);
criterion_main!(benches);
