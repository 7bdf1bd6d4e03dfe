//! Keeping Entra's signing keys fresh with whatever HTTP client you have.
//!
//! [`winmdm_entra::KeyCache`] is sans-I/O: it says which document to fetch and when. These
//! drivers perform the fetches with a closure you pass — a blocking one ([`refresh_due`])
//! or an async one ([`refresh_due_async`]) — so a server without reqwest (ureq, hyper,
//! awc, …) keeps keys fresh the same way. Call one at start-up, then again when
//! [`next_refresh`] says, and whenever the endpoint answers
//! [`Handled::RefreshKeys`](crate::Handled::RefreshKeys).
//!
//! ```
//! use std::time::Duration;
//! use rustls_pki_types::UnixTime;
//! use winmdm_entra::{KeyCache, KeySource, TokenVersion};
//!
//! let cache = KeyCache::new(vec![KeySource::entra(
//!     "https://login.microsoftonline.com", "organizations", TokenVersion::V2)]);
//! // Your HTTP client here; this one is offline.
//! let fetched = winmdm_endpoint::keys::refresh_due(&cache, UnixTime::now(), |request| {
//!     Err::<http::Response<Vec<u8>>, _>(format!("offline: GET {}", request.uri()))
//! });
//! assert_eq!(fetched, 1); // the metadata fetch was attempted (and will be retried)
//! let wait = winmdm_endpoint::keys::next_refresh(&cache, UnixTime::now());
//! assert!(wait >= Duration::from_secs(1));
//! ```

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use rustls_pki_types::UnixTime;
use winmdm_entra::KeyCache;

/// The largest key document accepted (Entra's are a few KiB).
pub const MAX_DOCUMENT: usize = 1 << 20;

fn hand_back<E: Display>(
    cache: &KeyCache,
    id: winmdm_entra::FetchId,
    now: UnixTime,
    outcome: Result<http::Response<Vec<u8>>, E>,
) {
    match outcome {
        Ok(response) if response.body().len() > MAX_DOCUMENT => {
            cache.handle_failure(id, now, "key document too large");
        }
        Ok(response) => {
            if let Err(e) = cache.handle_response(id, now, &response) {
                tracing::warn!(error = %e, "Entra key source answered with an unusable document");
            }
        }
        Err(e) => cache.handle_failure(id, now, &e.to_string()),
    }
}

fn budget(cache: &KeyCache) -> usize {
    2 * cache.source_count() + 2
}

/// Performs every fetch due at `now` with `fetch` (a blocking HTTP GET), handing each
/// outcome back to `cache`. Returns how many fetches were made; bounded (at most two per
/// source), so a misbehaving key source cannot keep it looping.
pub fn refresh_due<E: Display>(
    cache: &KeyCache,
    now: UnixTime,
    mut fetch: impl FnMut(http::Request<()>) -> Result<http::Response<Vec<u8>>, E>,
) -> usize {
    let mut done = 0;
    while done < budget(cache) {
        let Some(due) = cache.poll_fetch(now) else {
            break;
        };
        done += 1;
        let outcome = fetch(due.request);
        hand_back(cache, due.id, now, outcome);
    }
    done
}

/// [`refresh_due`] with an async fetch.
pub async fn refresh_due_async<E, F, Fut>(cache: &KeyCache, now: UnixTime, mut fetch: F) -> usize
where
    E: Display,
    F: FnMut(http::Request<()>) -> Fut,
    Fut: Future<Output = Result<http::Response<Vec<u8>>, E>>,
{
    let mut done = 0;
    while done < budget(cache) {
        let Some(due) = cache.poll_fetch(now) else {
            break;
        };
        done += 1;
        let outcome = fetch(due.request).await;
        hand_back(cache, due.id, now, outcome);
    }
    done
}

/// How long to wait before the next [`refresh_due`]: until the next fetch is due, between
/// 1 s and 60 s (so a refresh an unknown `kid` asked for starts promptly).
pub fn next_refresh(cache: &KeyCache, now: UnixTime) -> Duration {
    let secs = cache
        .next_due(now)
        .map_or(60, |at| at.as_secs().saturating_sub(now.as_secs()))
        .clamp(1, 60);
    Duration::from_secs(secs)
}

/// Whether a fetch is due at `now` (an unknown `kid` asked for one, or the keys are old).
pub fn is_due(cache: &KeyCache, now: UnixTime) -> bool {
    cache
        .next_due(now)
        .is_some_and(|at| at.as_secs() <= now.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use winmdm_entra::{KeySource, TokenVersion};
    use winmdm_testkit::entra::{self, KEY_1};

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    /// A key source served by a closure: metadata, then the JWKS it names.
    fn serve(request: &http::Request<()>) -> Result<http::Response<Vec<u8>>, String> {
        let uri = request.uri().to_string();
        let body = if uri.ends_with("openid-configuration") {
            entra::openid_configuration(
                "https://login.example",
                "organizations",
                entra::TokenVersion::V2,
            )
        } else if uri.contains("keys") {
            entra::jwks([&KEY_1])
        } else {
            return Err(format!("unexpected {uri}"));
        };
        Ok(http::Response::new(body.to_string().into_bytes()))
    }

    #[test]
    fn fetches_metadata_then_keys_with_a_closure() {
        let cache = KeyCache::new(vec![KeySource::entra(
            "https://login.example",
            "organizations",
            TokenVersion::V2,
        )]);
        let mut seen = Vec::new();
        let n = refresh_due(&cache, at(entra::NOW), |r| {
            seen.push(r.uri().to_string());
            serve(&r)
        });
        assert_eq!(n, 2, "{seen:?}");
        assert!(cache.status()[0].kids.contains(&KEY_1.kid().to_owned()));
        assert!(!is_due(&cache, at(entra::NOW)));
        assert_eq!(
            refresh_due(&cache, at(entra::NOW), |r| serve(&r)),
            0,
            "nothing due"
        );
        assert!(next_refresh(&cache, at(entra::NOW)) >= Duration::from_secs(1));
    }

    #[test]
    fn failures_back_off_and_oversized_documents_are_refused() {
        let cache = KeyCache::new(vec![KeySource::entra(
            "https://login.example",
            "organizations",
            TokenVersion::V2,
        )]);
        let n = refresh_due(&cache, at(entra::NOW), |_| {
            Ok::<_, String>(http::Response::new(vec![b' '; MAX_DOCUMENT + 1]))
        });
        assert_eq!(n, 1, "a failed fetch is not retried at once");
        assert!(!is_due(&cache, at(entra::NOW)));
        assert!(cache.status()[0].kids.is_empty());
    }
}
