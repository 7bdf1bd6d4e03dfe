//! winmdm-endpoint behind actix-web: one handler serves every device route.
//!
//! Everything between the two `GLUE` marker comments (imports included) is what a vendor
//! writes to put the endpoint behind actix (the README counts it); the rest builds an
//! endpoint for the demo.
#![deny(clippy::unwrap_used, clippy::expect_used)]

// GLUE BEGIN
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use rustls_pki_types::UnixTime;
use winmdm_endpoint::{Endpoint, Handled, Input, keys};

/// What the handler shares: the endpoint and an HTTP client for Entra's keys.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The composed endpoint.
    pub endpoint: Arc<Endpoint>,
    /// Fetches Entra's key documents.
    pub http: reqwest::Client,
}

/// actix-web speaks `http` 0.2; the endpoint takes `http` 1 heads.
fn head(req: &HttpRequest) -> Option<http::request::Parts> {
    let mut b = http::Request::builder()
        .method(req.method().as_str())
        .uri(req.uri().to_string());
    for (name, value) in req.headers() {
        b = b.header(name.as_str(), value.as_bytes());
    }
    Some(b.body(()).ok()?.into_parts().0)
}

fn reply(r: http::Response<Vec<u8>>) -> HttpResponse {
    let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = HttpResponse::build(status);
    for (name, value) in r.headers() {
        // actix writes Content-Length itself, from the body.
        if name != http::header::CONTENT_LENGTH {
            out.append_header((name.as_str(), value.as_bytes()));
        }
    }
    out.body(r.into_body())
}

/// Every device route, on actix's blocking pool (the store blocks); Entra keys are
/// fetched here, asynchronously, when the endpoint asks, and the request handled again.
pub async fn device_route(
    shared: web::Data<Shared>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Some(parts) = head(&req) else {
        return HttpResponse::BadRequest().finish();
    };
    let (parts, body) = (Arc::new(parts), Arc::new(body));
    for _ in 0..2 {
        let (endpoint, p, b) = (shared.endpoint.clone(), parts.clone(), body.clone());
        // Behind TLS, add the verified client certificate: `Input::with_client_certificate`.
        let handled = web::block(move || endpoint.handle(&p, &b, Input::now())).await;
        match handled {
            Ok(Handled::Response(r)) => return reply(r),
            Ok(Handled::RefreshKeys) => {
                let http = shared.http.clone();
                keys::refresh_due_async(shared.endpoint.key_cache(), UnixTime::now(), |r| {
                    winmdm_entra::fetch::send(&http, r.map(|()| Vec::new()))
                })
                .await;
            }
            Err(_) => return HttpResponse::InternalServerError().finish(),
        }
    }
    HttpResponse::ServiceUnavailable().finish()
}

/// Keeps Entra's keys fresh in the background (spawn it on the server's runtime).
pub async fn refresh_keys(shared: Shared) {
    loop {
        let cache = shared.endpoint.key_cache();
        keys::refresh_due_async(cache, UnixTime::now(), |r| {
            winmdm_entra::fetch::send(&shared.http, r.map(|()| Vec::new()))
        })
        .await;
        tokio::time::sleep(keys::next_refresh(cache, UnixTime::now())).await;
    }
}

/// The server: every path goes to [`device_route`] (the endpoint answers 404 and 405),
/// bodies capped at 1 MiB.
///
/// # Errors
/// Binding failures.
pub fn server(
    shared: Shared,
    listener: std::net::TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::new(shared);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(1 << 20))
            .default_service(web::to(device_route))
    })
    .listen(listener)?
    .run())
}
// GLUE END

/// An endpoint for the demo and the tests: Contoso's users at the Entra (emulator) at
/// `authority`, devices in memory, certificates from the testkit's development CA.
///
/// # Errors
/// Configuration errors, as text.
pub fn demo_endpoint(public_url: &str, authority: &str) -> Result<Endpoint, String> {
    use winmdm_entra::{KeyCache, KeySource, Policy, TokenVersion, Validator};
    use winmdm_testkit::{entra, pki};
    let policy = Policy::builder()
        .allow_tenants([entra::CONTOSO.id])
        .allow_audiences([entra::MDM_APP_ID, entra::MDM_APP_ID_URI])
        .build()
        .map_err(|e| e.to_string())?;
    let cache = KeyCache::new(vec![
        KeySource::entra(authority, "organizations", TokenVersion::V2),
        KeySource::entra(authority, "organizations", TokenVersion::V1),
    ]);
    let ca = &pki::ROOT_CA;
    let signer = winmdm_enroll::issue::LocalIssuer::new(
        ca.cert_der,
        ca.key_der,
        Vec::new(),
        ca.cert_der.to_vec(),
    )
    .map_err(|e| e.to_string())?;
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| "no randomness".to_owned())?;
    let keyring = winmdm_tou::Keyring::new(
        winmdm_tou::SealingKey::new("k1", &key).map_err(|e| e.to_string())?,
    );
    let mut config = winmdm_endpoint::EndpointConfig::new(public_url);
    // The demo device renews right after enrolling: open the renewal window for the whole
    // lifetime (a production server keeps the default, the last 60 days).
    config.renewal_window = config.certificate_validity;
    config.initial_commands = vec![winmdm_endpoint::CommandSpec::Get {
        targets: vec!["./DevDetail/SwV".into()],
    }];
    Endpoint::new(
        config,
        winmdm_endpoint::Components {
            store: Arc::new(winmdm_endpoint::MemoryStore::new()),
            validator: Validator::new(policy, Arc::new(cache)),
            keyring,
            terms: winmdm_tou::Terms::text("Contoso devices", "Contoso manages this device."),
            signer: Arc::new(signer),
            issuing_ca: ca.cert_der.to_vec(),
        },
    )
    .map_err(|e| e.to_string())
}
