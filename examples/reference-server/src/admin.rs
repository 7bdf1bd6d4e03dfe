//! The admin JSON API (its own listener; every request needs `Authorization: Bearer
//! <admin secret>`):
//!
//! * `GET /devices` — every device: enrollment type, last check-in, login status,
//!   compliance, unenrollment;
//! * `GET /devices/{id}` — one device with its commands;
//! * `POST /devices/{id}/commands[?user=<object id>]` — queue a command (see
//!   [`CommandSpec`]) for the device, or for one user (sent only while that user is
//!   signed in, per the Entra scope rules); `201 {"id": …}`;
//! * `GET /devices/{id}/commands` — its commands: state, status, results;
//! * `PUT /devices/{id}/compliance` — `{"compliant": true}`: reported to Graph
//!   (`isManaged` = true, `isCompliant`), then recorded; `204`, or `502` with Graph's
//!   answer.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use axum::routing::{get, put};
use serde_json::json;
use winmdm_graph::api::{Compliance, DeviceRef};

use crate::app::{App, now, respond};
use crate::commands::CommandSpec;
use crate::config::Secret;

#[derive(Clone)]
struct AdminState {
    app: Arc<App>,
    secret: Secret,
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    respond(
        status,
        Some("application/json"),
        value.to_string().into_bytes(),
    )
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, &json!({ "error": message }))
}

async fn authorize(
    State(state): State<AdminState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response<Body> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // The scheme is case-insensitive (RFC 9110 §11.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
        .map(|(_, token)| token.trim());
    match presented {
        Some(p)
            if aws_lc_rs::constant_time::verify_slices_are_equal(
                p.as_bytes(),
                state.secret.0.as_bytes(),
            )
            .is_ok() =>
        {
            next.run(request).await
        }
        _ => {
            let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
    }
}

/// A device ID as records are kept: a dashed or braced GUID in the claim's spelling
/// (lower case, dashed); anything else as given (32 hex digits have two readings).
fn device_key(id: String) -> String {
    if winmdm_entra::DeviceId::is_unambiguous(&id) {
        winmdm_entra::DeviceId::parse(&id).map_or(id, |d| d.to_string())
    } else {
        id
    }
}

fn storage_error(e: &crate::store::StoreError) -> Response<Body> {
    tracing::error!(error = %e, "storage");
    error(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable")
}

async fn devices(State(s): State<AdminState>) -> Response<Body> {
    match s.app.db(|st| st.devices()).await.and_then(|r| r) {
        Ok(list) => json_response(StatusCode::OK, &json!({ "devices": list })),
        Err(e) => storage_error(&e),
    }
}

async fn device(State(s): State<AdminState>, Path(id): Path<String>) -> Response<Body> {
    let id = device_key(id);
    let found = s
        .app
        .db(move |st| Ok((st.device(&id)?, st.commands(&id)?)))
        .await
        .and_then(|r| r);
    match found {
        Ok((Some(d), commands)) => json_response(
            StatusCode::OK,
            &json!({ "device": d, "commands": commands }),
        ),
        Ok((None, _)) => error(StatusCode::NOT_FOUND, "no such device"),
        Err(e) => storage_error(&e),
    }
}

async fn commands(State(s): State<AdminState>, Path(id): Path<String>) -> Response<Body> {
    let id = device_key(id);
    let found = s
        .app
        .db(move |st| match st.device(&id)? {
            Some(_) => st.commands(&id).map(Some),
            None => Ok(None),
        })
        .await
        .and_then(|r| r);
    match found {
        Ok(Some(list)) => json_response(StatusCode::OK, &json!({ "commands": list })),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such device"),
        Err(e) => storage_error(&e),
    }
}

async fn queue(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let id = device_key(id);
    // `?user=<object id>`: a command for one user of the device.
    let mut for_user = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*k {
            "user" if for_user.is_none() && winmdm_graph::api::is_guid(&v) => {
                for_user = Some(v.into_owned());
            }
            "user" => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "user must be one Entra object ID (a GUID)",
                );
            }
            _ => return error(StatusCode::BAD_REQUEST, "the only parameter is user"),
        }
    }
    if !headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
    {
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send application/json");
    }
    let spec: CommandSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("not a command: {e}")),
    };
    if let Err(why) = spec.check() {
        return error(StatusCode::BAD_REQUEST, &why);
    }
    let queued = s
        .app
        .db(move |st| match st.device(&id)? {
            Some(d) if d.unenrolled_at.is_none() => {
                st.queue(&id, &spec, for_user.as_deref(), now()).map(Some)
            }
            _ => Ok(None),
        })
        .await
        .and_then(|r| r);
    match queued {
        Ok(Some(cmd)) => json_response(StatusCode::CREATED, &json!({ "id": cmd })),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such enrolled device"),
        Err(e) => storage_error(&e),
    }
}

async fn compliance(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response<Body> {
    let id = device_key(id);
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        compliant: bool,
    }
    let Ok(Body { compliant }) = serde_json::from_slice::<Body>(&body) else {
        return error(StatusCode::BAD_REQUEST, r#"send {"compliant": true|false}"#);
    };
    let lookup = id.clone();
    let device = match s.app.db(move |st| st.device(&lookup)).await.and_then(|r| r) {
        Ok(Some(d)) => d,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no such device"),
        Err(e) => return storage_error(&e),
    };
    match s
        .app
        .graph
        .report_compliance(
            &device.tenant_id,
            DeviceRef::DeviceId(&device.device_id),
            Compliance::managed(compliant),
        )
        .await
    {
        Ok(()) => match s
            .app
            .db(move |st| st.set_compliance(&id, compliant))
            .await
            .and_then(|r| r)
        {
            Ok(()) => respond(StatusCode::NO_CONTENT, None, Vec::new()),
            Err(e) => storage_error(&e),
        },
        Err(e) => error(StatusCode::BAD_GATEWAY, &format!("Graph: {e}")),
    }
}

/// A device's Enrollment Status Page: its phase, why it failed, and every tracked
/// command with its outcome and attempts.
async fn esp(State(s): State<AdminState>, Path(id): Path<String>) -> Response<Body> {
    let id = device_key(id);
    let found = s
        .app
        .db(move |st| match st.device(&id)? {
            Some(_) => st.esp(&id).map(Some),
            None => Ok(None),
        })
        .await
        .and_then(|r| r);
    match found {
        Ok(Some(Some(stored))) => {
            match serde_json::from_str::<winmdm_endpoint::EspState>(&stored.state) {
                Ok(state) => json_response(StatusCode::OK, &json!({ "esp": state })),
                Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "unreadable page state"),
            }
        }
        Ok(Some(None)) => error(
            StatusCode::NOT_FOUND,
            "no Enrollment Status Page for this device",
        ),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such device"),
        Err(e) => storage_error(&e),
    }
}

/// The admin routes, all behind the bearer secret.
pub fn router(app: Arc<App>, secret: Secret) -> Router {
    let state = AdminState { app, secret };
    Router::new()
        .route("/devices", get(devices))
        .route("/devices/{id}", get(device))
        .route("/devices/{id}/commands", get(commands).post(queue))
        .route("/devices/{id}/compliance", put(compliance))
        .route("/devices/{id}/esp", get(esp))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authorize,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}
