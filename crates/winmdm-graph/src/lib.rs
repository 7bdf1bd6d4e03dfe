//! The Microsoft Graph calls a Windows MDM needs.
//!
//! After evaluating its policies, an MDM tells Entra whether each device is managed and
//! compliant, so Conditional Access can let it in (Microsoft Learn "Microsoft Entra
//! integration with MDM" § Report device compliance; Graph `device` resource). It may also
//! need a user's groups to choose terms and policies.
//!
//! * [`GraphApi`] builds plain `http::Request`s: `PATCH` a device's `isManaged` /
//!   `isCompliant` by object ID or by the `deviceId` alternate key, `GET` a device, a
//!   user's `getMemberObjects` and `transitiveMemberOf` (with `@odata.nextLink` paging held
//!   to the same endpoint); [`api::legacy`] reproduces the retired Azure AD Graph request
//!   the integration doc shows.
//! * [`response`] types the outcomes: success, 404, 401/403 with Graph's code and message,
//!   `Throttled { retry_after }` for 429/503/504 (`x-ms-retry-after-ms`, `Retry-After` in
//!   seconds or as an HTTP date).
//! * [`RetryPolicy`] decides when to try again (exponential backoff with jitter,
//!   `Retry-After` honoured, attempts and total time capped, non-idempotent calls only
//!   after a 429).
//! * With feature `reqwest`, [`GraphClient`] does all of it with winmdm-entra's app-only
//!   token cache.
//!
//! ```
//! use winmdm_graph::{Compliance, DeviceRef, GraphApi, response};
//!
//! let api = GraphApi::global();
//! let mut req = api.update_device(
//!     DeviceRef::DeviceId("6f1a1b2c-3d4e-5f60-7182-93a4b5c6d7e8"),
//!     &Compliance::managed(true),
//! )?;
//! assert_eq!(req.request.method(), "PATCH");
//! assert_eq!(req.request.uri(), "https://graph.microsoft.com/v1.0/devices(deviceId='6f1a1b2c-3d4e-5f60-7182-93a4b5c6d7e8')");
//! assert_eq!(req.request.body(), br#"{"isManaged":true,"isCompliant":true}"#);
//! assert!(req.idempotent);
//! req.authorize("eyJ0eXAi...")?;
//!
//! // Send it with any HTTP client; then:
//! let answer = http::Response::builder().status(204).body(Vec::new())?;
//! response::parse_update(&answer, 0)?;
//! // Path injection is impossible: IDs must be GUIDs.
//! assert!(api.update_device(DeviceRef::ObjectId("../users/x"), &Compliance::managed(true)).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
// Without the feature the client is not compiled in: link to the published docs instead.
#![cfg_attr(
    not(feature = "reqwest"),
    doc = "[`GraphClient`]: https://docs.rs/winmdm-graph/latest/winmdm_graph/struct.GraphClient.html"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod api;
#[cfg(feature = "reqwest")]
mod client;
pub mod response;
mod retry;

pub use api::{Compliance, DeviceRef, GRAPH_SCOPE, GRAPH_V1, GraphApi, GraphRequest, Operation};
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use client::{GraphClient, MAX_PAGES};
pub use response::{Device, GraphError, IdPage};
pub use retry::RetryPolicy;
