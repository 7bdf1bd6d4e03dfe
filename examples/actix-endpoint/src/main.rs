//! `actix-endpoint [ADDR]`: the endpoint behind actix-web over plain HTTP on ADDR
//! (default 127.0.0.1:8080), with the testkit's Entra emulator for tokens. Try it with
//! `winmdm simulate http://ADDR --authority <the emulator URL it prints>`.

use winmdm_example_actix::{Shared, demo_endpoint, refresh_keys, server};

fn main() -> std::io::Result<()> {
    actix_web::rt::System::new().block_on(run())
}

async fn run() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = std::net::TcpListener::bind(&addr)?;
    let url = format!("http://{}", listener.local_addr()?);
    let entra = winmdm_testkit::emulator::EntraEmulator::spawn()?;
    let endpoint = demo_endpoint(&url, entra.base_url()).map_err(std::io::Error::other)?;
    let shared = Shared {
        endpoint: std::sync::Arc::new(endpoint),
        http: reqwest::Client::new(),
    };
    actix_web::rt::spawn(refresh_keys(shared.clone()));
    println!(
        "MDM endpoint on {url}; Entra emulator on {}",
        entra.base_url()
    );
    server(shared, listener)?.await
}
