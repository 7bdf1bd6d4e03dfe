//! A small Terms-of-Use server on axum, for trying the page in a browser and for the
//! real-browser test.
//!
//! ```text
//! cargo run -p winmdm-tou --example tou_server -- 8080
//! ```
//!
//! It trusts the testkit's Entra test keys (tenant Contoso, audience the testkit's MDM app)
//! and, besides `ms-appx-web://`, redirects to `http://127.0.0.1` (where `/done` shows the
//! result). Set `WINMDM_TOU_PIN` to ask for that one-time PIN before the terms. A real
//! server replaces the validator with Microsoft's keys and drops the loopback redirect.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Request, Response};
use axum::routing::get;
use winmdm_entra::{KeyCache, KeySource, Policy, TokenVersion, Validator};
use winmdm_testkit::entra as tk;
use winmdm_tou::{
    FieldKind, Keyring, RedirectPolicy, SealingKey, StepField, StepPage, Submission, SystemEntropy,
    Terms, TermsOfUse, TouConfig, TouContext,
};

/// The server's state.
pub(crate) struct App {
    tou: TermsOfUse,
    pin: Option<String>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn terms(ctx: &TouContext) -> Terms {
    // Choose the terms by ownership (and, in a real server, tenant, user or groups).
    let owner = if ctx.organization_owned() {
        "This device belongs to your organization."
    } else {
        "This is your own device; your organization manages only its work data."
    };
    Terms::text(
        "Contoso device management",
        format!(
            "{owner}\n\nContoso IT can apply security policies, install work apps and \
             wipe work data from this device. Contoso cannot see your personal files, \
             messages or browsing history.\n\nBy accepting you agree to the Contoso \
             acceptable use policy."
        ),
    )
}

fn pin_step(error: Option<&str>) -> StepPage {
    StepPage {
        id: "pin".into(),
        title: "Confirm it is you".into(),
        intro: "Enter the one-time code your IT department gave you.".into(),
        fields: vec![StepField {
            name: "code".into(),
            label: "One-time code".into(),
            kind: FieldKind::OneTimeCode,
        }],
        error: error.map(str::to_owned),
    }
}

fn into_axum(r: http::Response<Vec<u8>>) -> Response<axum::body::Body> {
    r.map(axum::body::Body::from)
}

async fn show(
    State(app): State<Arc<App>>,
    req: Request<axum::body::Body>,
) -> Response<axum::body::Body> {
    let (parts, _) = req.into_parts();
    let rng = &mut SystemEntropy;
    let ctx = match app.tou.begin(&parts, now(), rng) {
        Ok(ctx) => ctx,
        Err(response) => return into_axum(response),
    };
    let page = if app.pin.is_some() {
        app.tou.step_page(&ctx, &pin_step(None), now(), rng)
    } else {
        app.tou.terms_page(&ctx, &terms(&ctx), now(), rng)
    };
    into_axum(page)
}

async fn submit(
    State(app): State<Arc<App>>,
    req: Request<axum::body::Body>,
) -> Response<axum::body::Body> {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, winmdm_tou::MAX_FORM_BYTES + 1)
        .await
        .unwrap_or_default();
    let rng = &mut SystemEntropy;
    let r = match app.tou.resume(&parts, &body, now(), rng) {
        Err(response) => response,
        Ok(Submission::Accept(ctx)) => app.tou.accept(&ctx, now(), rng),
        Ok(Submission::Decline(ctx)) => app.tou.decline(&ctx, rng),
        Ok(Submission::Step {
            mut ctx, fields, ..
        }) => {
            let ok = app
                .pin
                .as_deref()
                .is_some_and(|pin| fields.get("code").map(|c| c.trim()) == Some(pin));
            if ok {
                let _ = ctx.set_progress("pin", "verified");
                let _ = ctx.set_blob_data(Some("{\"pin\":\"verified\"}".into()));
                app.tou.terms_page(&ctx, &terms(&ctx), now(), rng)
            } else {
                app.tou
                    .step_page(&ctx, &pin_step(Some("That code is not valid.")), now(), rng)
            }
        }
    };
    into_axum(r)
}

async fn done(req: Request<axum::body::Body>) -> Response<axum::body::Body> {
    let q = req.uri().query().unwrap_or("").to_owned();
    let rows: String = url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| {
            format!(
                "<li><b>{}</b>: {}</li>",
                winmdm_tou::page::escape(&k),
                winmdm_tou::page::escape(&v)
            )
        })
        .collect();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><title>Back in Windows</title></head><body><main>\
         <h1>Redirected back to Windows</h1><ul>{rows}</ul></main></body></html>"
    );
    Response::builder()
        .header("content-type", "text/html; charset=utf-8")
        .body(axum::body::Body::from(html))
        .unwrap()
}

/// The example's ToU endpoint: testkit keys, loopback redirects allowed.
pub(crate) fn app(pin: Option<String>) -> Arc<App> {
    let jwks = serde_json::to_vec(&tk::jwks(tk::rotation_pool())).unwrap();
    let keys = KeySource::static_jwks(&jwks, tk::V2_ISSUER_TEMPLATE, TokenVersion::V2).unwrap();
    let policy = Policy::builder()
        .allow_tenants([tk::CONTOSO.id])
        .allow_audiences([tk::MDM_APP_ID])
        .build()
        .unwrap();
    let validator = Validator::new(policy, Arc::new(KeyCache::new(vec![keys])));
    let mut secret = [0u8; 32];
    aws_lc_rs::rand::fill(&mut secret).unwrap();
    let keyring = Keyring::new(SealingKey::new("example", &secret).unwrap());
    let config = TouConfig::default()
        .with_redirect_policy(RedirectPolicy::default().allow_host("http", "127.0.0.1"));
    Arc::new(App {
        tou: TermsOfUse::new(config, keyring, validator),
        pin,
    })
}

/// The routes.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/TermsOfUse", get(show).post(submit))
        .route("/done", get(done))
        .with_state(app)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let token = tk::AccessToken::v2(&tk::CONTOSO, &tk::ALICE)
        .issued_at(now())
        .sign();
    println!("Terms of Use on http://{addr}/TermsOfUse");
    println!(
        "open http://{addr}/TermsOfUse?redirect_uri=http://127.0.0.1:{}/done&client-request-id=34be581c-6ebd-49d6-a4e1-150eff4b7213&api-version=1.0",
        addr.port()
    );
    println!("with headers  Authorization: Bearer {token}  and  CXH-HOST: FRX (or MOSET)");
    axum::serve(listener, router(app(std::env::var("WINMDM_TOU_PIN").ok())))
        .await
        .unwrap();
}
