//! Parses the RST sample many times (for profiling with callgrind).
fn main() {
    let body = std::fs::read_to_string(std::env::args().nth(1).expect("file")).expect("read");
    let mut n = 0;
    for _ in 0..2000 {
        n +=
            winmdm_enroll::wstep::parse_rst(body.as_bytes()).map_or(0, |r| r.context.items().len());
    }
    println!("{n}");
}
