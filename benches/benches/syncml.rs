//! SyncML benches on `shared/bench/syncml-4k-client.xml`, beside the DESIGN.md ceiling:
//! a raw `quick_xml::Reader` event scan of the same bytes.
//!
//! * `winmdm_syncml/decode` — bytes → typed model (namespaces, limits, diagnostics);
//! * `winmdm_syncml/encode` — typed model → bytes (into a reused buffer).

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
    group.finish();
}

criterion_group!(benches, syncml);
criterion_main!(benches);
