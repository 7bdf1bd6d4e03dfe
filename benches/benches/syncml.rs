//! SyncML benches on `shared/bench/syncml-4k-client.xml`.
//!
//! `ceiling/quick_xml_event_scan` is the DESIGN.md ceiling every SyncML codec figure is
//! reported against (decode/encode ratios are added beside it as the codec lands).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn syncml(c: &mut Criterion) {
    let xml = winmdm_benches::syncml_4k_client();
    let mut group = c.benchmark_group("syncml-4k-client");
    group.throughput(Throughput::Bytes(xml.len() as u64));
    group.bench_function("ceiling/quick_xml_event_scan", |b| {
        b.iter(|| winmdm_benches::ceiling_xml_event_scan(black_box(&xml)))
    });
    group.finish();
}

criterion_group!(benches, syncml);
criterion_main!(benches);
