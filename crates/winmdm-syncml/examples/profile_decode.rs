//! Decodes a file many times (for profilers):
//! `cargo run --release -p winmdm-syncml --example profile_decode -- [FILE|-] [N]`.
fn main() {
    let mut args = std::env::args().skip(1);
    // Without FILE (or with "-"), the bench's reference message bundled with the testkit.
    let xml = match args.next().filter(|p| p != "-") {
        Some(path) => std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
        None => winmdm_testkit::samples::SYNCML_4K_CLIENT
            .as_bytes()
            .to_vec(),
    };
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mut commands = 0;
    for _ in 0..n {
        commands += winmdm_syncml::decode(std::hint::black_box(&xml))
            .map(|m| m.body.commands.len())
            .unwrap_or(0);
    }
    println!("{commands}");
}
