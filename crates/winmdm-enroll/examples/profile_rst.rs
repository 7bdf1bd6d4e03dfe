//! Parses an RST and checks its CSR many times (for profiling with callgrind).
fn main() {
    let body = std::fs::read_to_string(std::env::args().nth(1).expect("file")).expect("read");
    let policy = winmdm_enroll::issue::IssuancePolicy::default();
    let requester = winmdm_enroll::issue::Requester::default();
    let mut n = 0;
    for _ in 0..2000 {
        let r = winmdm_enroll::wstep::parse_rst(body.as_bytes()).expect("rst");
        let (p, _) = winmdm_enroll::issue::begin(&r, &requester, &policy, 1_780_000_000, [1; 16])
            .expect("begin");
        n += p.template.subject_cn.len();
    }
    println!("{n}");
}
