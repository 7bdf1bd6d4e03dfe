//! The simulated device's Terms-of-Use steps against pages that are not winmdm-tou's: a
//! vendor's own form (other field names, a button labelled "I agree", a redirect chain
//! after the POST), and a page that sends the user straight back.
#![cfg(feature = "simulator")]

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use winmdm_testkit::simulator::{Simulator, SimulatorConfig, TokenSource};

const BACK: &str =
    "ms-appx-web://Microsoft.AAD.BrokerPlugin/tou?IsAccepted=true&OpaqueBlob=vendor-blob-1";

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn terms(server: &str) -> Vec<String> {
    let mut config = SimulatorConfig::new(server, TokenSource::Fixed("a.b.c".into()));
    config.retry_for = std::time::Duration::ZERO;
    let mut sim = Simulator::new(config);
    let mut outcomes = Vec::new();
    for step in ["terms of use: page", "terms of use: accept"] {
        let s = sim.step(step).await;
        assert!(s.outcome.is_ok(), "{s}");
        outcomes.push(s.outcome.unwrap());
    }
    outcomes
}

#[tokio::test]
async fn a_vendors_own_form_is_followed_to_the_redirect() {
    let page = r#"<!doctype html><html><body><h1>Contoso terms</h1>
        <FORM action="/tou/decide" METHOD=post><input type=hidden name=ctx value="k&amp;1">
        <label><input type=checkbox name=read value=yes checked> I read them</label>
        <button type=submit name=choice value=no>No thanks</button>
        <button type=submit name=choice value=yes>I agree</button></FORM></body></html>"#;
    let app = Router::new()
        .route(
            "/TermsOfUse",
            get(move || async move { ([(header::CONTENT_TYPE, "text/html")], page) }),
        )
        .route(
            "/tou/decide",
            post(|body: String| async move {
                if body == "ctx=k%261&read=yes&choice=yes" {
                    (StatusCode::SEE_OTHER, [(header::LOCATION, "/tou/done")]).into_response()
                } else {
                    (StatusCode::BAD_REQUEST, body).into_response()
                }
            }),
        )
        .route(
            "/tou/done",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, BACK)]) }),
        );
    let server = serve(app).await;
    let outcomes = terms(&server).await;
    assert!(
        outcomes[1].contains("OpaqueBlob of 13 bytes"),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn a_page_that_redirects_at_once_is_accepted() {
    let app = Router::new().route(
        "/TermsOfUse",
        get(|| async { (StatusCode::FOUND, [(header::LOCATION, BACK)]) }),
    );
    let server = serve(app).await;
    let outcomes = terms(&server).await;
    assert!(outcomes[0].contains("at once"), "{outcomes:?}");
    assert!(
        outcomes[1].contains("OpaqueBlob of 13 bytes"),
        "{outcomes:?}"
    );
}
