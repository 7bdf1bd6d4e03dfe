//! `cargo run -p winmdm-example-omadm -- 8081`: serves the endpoint on loopback with one
//! demo device (`demo-device`, user `demo`, password `demo-secret`).

use winmdm_example_omadm::{DeviceCredentials, Example, router};
use winmdm_syncml::auth::Nonce;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8081);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let example = Example::new(&base).map_err(std::io::Error::other)?;
    example
        .add_device(
            "demo-device",
            DeviceCredentials {
                username: "demo".into(),
                password: "demo-secret".into(),
                nonce: Nonce::from_bytes(vec![1; 16]),
            },
        )
        .map_err(std::io::Error::other)?;
    println!(
        "OMA-DM on http://{}/ManagementServer/MDM.svc",
        listener.local_addr()?
    );
    axum::serve(listener, router(example)).await
}
