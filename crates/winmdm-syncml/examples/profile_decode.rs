//! Decodes a file many times (for profilers):
//! `cargo run --release -p winmdm-syncml --example profile_decode -- FILE N`.
fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "../shared/bench/syncml-4k-client.xml".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let xml = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut commands = 0;
    for _ in 0..n {
        commands += winmdm_syncml::decode(std::hint::black_box(&xml))
            .map(|m| m.body.commands.len())
            .unwrap_or(0);
    }
    println!("{commands}");
}
