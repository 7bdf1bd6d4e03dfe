//! `cargo run -p winmdm-example-tou-enrollment -- 8080`: serves the example on loopback.
#![allow(clippy::unwrap_used)]

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    println!("Terms of Use and enrollment on {base} (trusting the testkit's Entra keys)");
    let app = winmdm_example_tou_enrollment::Example::new(&base);
    axum::serve(listener, winmdm_example_tou_enrollment::router(app))
        .await
        .unwrap();
}
