//! Async drivers on reqwest (feature `reqwest`).
//!
//! * [`refresh_due`] performs every fetch the [`KeyCache`] says is due;
//! * [`spawn_refresher`] keeps a cache fresh in a background task;
//! * [`validate_with_refresh`] validates, and on an unknown `kid` or a cold cache drives
//!   the due fetches and tries once more;
//! * [`send`] turns an `http::Request` into a reqwest call and back.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::UnixTime;

use crate::{EntraClaims, Error, KeyCache, Validator, Verified};

/// Largest response body read.
pub const MAX_BODY: usize = 1024 * 1024;

/// A reqwest client with the timeouts this crate expects (10 s connect, 30 s total).
///
/// # Errors
/// [`Error::InvalidConfig`] when the TLS backend cannot be initialised.
pub fn default_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::InvalidConfig {
            reason: format!("HTTP client: {e}"),
        })
}

/// Sends `request` with `client` and reads the whole response (at most [`MAX_BODY`]).
///
/// # Errors
/// [`Error::Fetch`] for transport errors and oversized bodies.
pub async fn send<B: Into<reqwest::Body>>(
    client: &reqwest::Client,
    request: http::Request<B>,
) -> Result<http::Response<Vec<u8>>, Error> {
    let fail = |reason: String| Error::Fetch {
        what: "HTTP request",
        reason,
    };
    let (parts, body) = request.into_parts();
    let url = parts.uri.to_string();
    let mut response = client
        .request(parts.method, &url)
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| fail(e.without_url().to_string()))?;
    let mut builder = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| fail(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(fail("response body too large".to_owned()));
        }
        body.extend_from_slice(&chunk);
    }
    builder.body(body).map_err(|e| fail(e.to_string()))
}

/// Performs every fetch due at `now`, in turn, handing each outcome back to `cache`.
/// Returns how many fetches were made. Bounded: at most two fetches per source.
pub async fn refresh_due(cache: &KeyCache, client: &reqwest::Client, now: UnixTime) -> usize {
    let mut done = 0;
    let budget = 2 * cache.source_count() + 2;
    while done < budget {
        let Some(fetch) = cache.poll_fetch(now) else {
            break;
        };
        done += 1;
        let request = fetch.request.map(|()| Vec::<u8>::new());
        match send(client, request).await {
            Ok(response) => {
                if let Err(e) = cache.handle_response(fetch.id, now, &response) {
                    tracing::warn!(error = %e, "Entra key source answered with an unusable document");
                }
            }
            Err(e) => cache.handle_failure(fetch.id, now, &e.to_string()),
        }
    }
    done
}

/// Keeps `cache` fresh in a background tokio task: fetches what is due, then sleeps until
/// the next fetch is due (between 1 s and 60 s, so unknown-`kid` refreshes start promptly).
/// Abort the returned handle to stop it.
pub fn spawn_refresher(
    cache: Arc<KeyCache>,
    client: reqwest::Client,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let now = UnixTime::now();
            refresh_due(&cache, &client, now).await;
            let wait = cache
                .next_due(UnixTime::now())
                .map_or(60, |at| {
                    at.as_secs().saturating_sub(UnixTime::now().as_secs())
                })
                .clamp(1, 60);
            tokio::time::sleep(Duration::from_secs(wait)).await;
        }
    })
}

/// Validates `token`; if the key is unknown or no keys are loaded yet, performs the due
/// fetches (subject to the cache's rate limits) and validates once more.
///
/// # Errors
/// As [`Validator::validate`].
pub async fn validate_with_refresh(
    validator: &Validator,
    client: &reqwest::Client,
    token: &str,
    now: UnixTime,
) -> Result<Verified<EntraClaims>, Error> {
    match validator.validate(token, now) {
        Err(Error::UnknownKid { .. } | Error::KeysUnavailable { .. }) => {
            refresh_due(validator.cache(), client, now).await;
            validator.validate(token, now)
        }
        other => other,
    }
}
