//! The DESIGN.md ceiling (raw quick-xml event scan) in a loop, for instruction counts
//! beside `profile_decode`.
fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "../shared/bench/syncml-4k-client.xml".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let xml = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
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
