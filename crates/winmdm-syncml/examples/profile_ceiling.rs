//! The DESIGN.md ceiling (raw quick-xml event scan) in a loop, for instruction counts
//! beside `profile_decode`.
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
    let mut events = 0usize;
    for _ in 0..n {
        let mut reader = quick_xml::Reader::from_reader(std::hint::black_box(&xml[..]));
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) | Err(_) => break,
                Ok(_) => events += 1,
            }
        }
    }
    println!("{events}");
}
