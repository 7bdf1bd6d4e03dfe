//! Request builders: plain `http::Request`s for the Graph calls an MDM makes.
//!
//! Every value that goes into a URL path is checked first (device and user IDs must be
//! GUIDs; a UPN is percent-encoded), so no input can change which resource is addressed.
//! Requests carry no `Authorization` header: add the app-only token with
//! [`GraphRequest::authorize`] (or let the client do it).

use http::{Method, Request, header};

use crate::response::GraphError;

/// Microsoft Graph v1.0 in the global cloud.
pub const GRAPH_V1: &str = "https://graph.microsoft.com/v1.0";
/// The scope of app-only tokens for Microsoft Graph (global cloud).
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Which call a request makes (for logs and retry decisions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `PATCH` a device's `isManaged`/`isCompliant`.
    UpdateDevice,
    /// `GET` a device.
    GetDevice,
    /// `POST …/getMemberObjects`.
    MemberObjects,
    /// `GET …/transitiveMemberOf` (a page of it).
    TransitiveGroups,
}

/// A request ready to send.
#[derive(Debug)]
pub struct GraphRequest {
    /// The request (no `Authorization` yet).
    pub request: Request<Vec<u8>>,
    /// Safe to send twice: the `PATCH` sets absolute values, the reads change nothing.
    pub idempotent: bool,
    /// The call.
    pub operation: Operation,
}

impl GraphRequest {
    /// Adds `Authorization: Bearer <token>`.
    ///
    /// # Errors
    /// [`GraphError::InvalidArgument`] when the token is not a valid header value.
    pub fn authorize(&mut self, token: &str) -> Result<(), GraphError> {
        let mut v = header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| GraphError::InvalidArgument("token is not a header value"))?;
        v.set_sensitive(true);
        self.request.headers_mut().insert(header::AUTHORIZATION, v);
        Ok(())
    }
}

/// How to address a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRef<'a> {
    /// The directory object ID (`id`).
    ObjectId(&'a str),
    /// The Entra device ID (`deviceId`, what the MDM sees in tokens and CSRs), through
    /// Graph's alternate key `devices(deviceId='…')`. Any spelling
    /// [`winmdm_entra::DeviceId::parse`] reads (dashed, braced, 32 hex digits in text
    /// order) is sent in Graph's (dashed, lower case). Windows' `DeviceID` context item
    /// spells the GUID's bytes in Windows' order: read it with
    /// [`winmdm_entra::DeviceId::from_windows_hex`] first.
    DeviceId(&'a str),
}

/// The compliance state to report (fields left `None` are not sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Compliance {
    /// `isManaged`.
    pub is_managed: Option<bool>,
    /// `isCompliant`.
    pub is_compliant: Option<bool>,
}

impl Compliance {
    /// Managed, and compliant or not.
    pub fn managed(compliant: bool) -> Self {
        Self {
            is_managed: Some(true),
            is_compliant: Some(compliant),
        }
    }

    /// The JSON body (`isManaged` before `isCompliant`, as the doc writes it).
    pub fn body(&self) -> Vec<u8> {
        let mut parts = Vec::new();
        if let Some(m) = self.is_managed {
            parts.push(format!("\"isManaged\":{m}"));
        }
        if let Some(c) = self.is_compliant {
            parts.push(format!("\"isCompliant\":{c}"));
        }
        format!("{{{}}}", parts.join(",")).into_bytes()
    }
}

/// Whether `s` is a GUID (`8-4-4-4-12` hex digits).
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn guid<'a>(s: &'a str, what: &'static str) -> Result<&'a str, GraphError> {
    if is_guid(s) {
        Ok(s)
    } else {
        Err(GraphError::InvalidArgument(what))
    }
}

/// Percent-encodes a path segment (everything but `A-Z a-z 0-9 - . _ ~ @`).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A Graph endpoint (global cloud by default; national clouds have their own base URL,
/// for example `https://graph.microsoft.us/v1.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphApi {
    base: String,
}

impl Default for GraphApi {
    fn default() -> Self {
        Self {
            base: GRAPH_V1.to_owned(),
        }
    }
}

impl GraphApi {
    /// The global cloud's v1.0 endpoint.
    pub fn global() -> Self {
        Self::default()
    }

    /// An endpoint at `base` (with its version segment, no trailing slash needed).
    ///
    /// # Errors
    /// [`GraphError::InvalidArgument`] unless `base` is an absolute `https` URL (or
    /// `http` on loopback, for emulators).
    pub fn new(base: &str) -> Result<Self, GraphError> {
        let u = url::Url::parse(base).map_err(|_| GraphError::InvalidArgument("base URL"))?;
        let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if !(u.scheme() == "https" || (u.scheme() == "http" && loopback)) || u.query().is_some() {
            return Err(GraphError::InvalidArgument("base URL must be https"));
        }
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn device_path(&self, device: DeviceRef<'_>) -> Result<String, GraphError> {
        Ok(match device {
            DeviceRef::ObjectId(id) => {
                format!("{}/devices/{}", self.base, guid(id, "device object id")?)
            }
            DeviceRef::DeviceId(id) => format!(
                "{}/devices(deviceId='{}')",
                self.base,
                winmdm_entra::DeviceId::parse(id)
                    .map_err(|_| GraphError::InvalidArgument("device id"))?
            ),
        })
    }

    fn build(
        method: Method,
        uri: &str,
        body: Vec<u8>,
        idempotent: bool,
        operation: Operation,
    ) -> Result<GraphRequest, GraphError> {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ACCEPT, "application/json");
        if !body.is_empty() {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        let request = b
            .body(body)
            .map_err(|_| GraphError::InvalidArgument("request URI"))?;
        Ok(GraphRequest {
            request,
            idempotent,
            operation,
        })
    }

    /// `PATCH` a device's `isManaged`/`isCompliant` (success: 204). Idempotent.
    ///
    /// # Errors
    /// [`GraphError::InvalidArgument`] for a non-GUID ID or an empty update.
    pub fn update_device(
        &self,
        device: DeviceRef<'_>,
        compliance: &Compliance,
    ) -> Result<GraphRequest, GraphError> {
        if compliance.is_managed.is_none() && compliance.is_compliant.is_none() {
            return Err(GraphError::InvalidArgument("nothing to update"));
        }
        Self::build(
            Method::PATCH,
            &self.device_path(device)?,
            compliance.body(),
            true,
            Operation::UpdateDevice,
        )
    }

    /// `GET` a device with the properties an MDM uses.
    ///
    /// # Errors
    /// [`GraphError::InvalidArgument`] for a non-GUID ID.
    pub fn get_device(&self, device: DeviceRef<'_>) -> Result<GraphRequest, GraphError> {
        let uri = format!(
            "{}?$select=id,deviceId,displayName,isCompliant,isManaged,operatingSystem,operatingSystemVersion,trustType,accountEnabled",
            self.device_path(device)?
        );
        Self::build(Method::GET, &uri, Vec::new(), true, Operation::GetDevice)
    }

    /// `POST /users/{id}/getMemberObjects` (every group, directory role and
    /// administrative unit the user is a member of, transitively). A read: idempotent.
    ///
    /// # Errors
    /// [`GraphError::InvalidArgument`] for an empty user.
    pub fn member_objects(
        &self,
        user: &str,
        security_enabled_only: bool,
    ) -> Result<GraphRequest, GraphError> {
        if user.is_empty() || user.len() > 256 {
            return Err(GraphError::InvalidArgument("user"));
        }
        let uri = format!("{}/users/{}/getMemberObjects", self.base, segment(user));
        let body = format!("{{\"securityEnabledOnly\":{security_enabled_only}}}").into_bytes();
        Self::build(Method::POST, &uri, body, true, Operation::MemberObjects)
    }

    /// `GET /users/{id}/transitiveMemberOf/microsoft.graph.group?$select=id` (the first
    /// page; follow `@odata.nextLink` with [`GraphApi::next_page`]).
    ///
    /// # Errors
    /// [`GraphError::InvalidArgument`] for an empty user.
    pub fn transitive_groups(
        &self,
        user: &str,
        page_size: u32,
    ) -> Result<GraphRequest, GraphError> {
        if user.is_empty() || user.len() > 256 {
            return Err(GraphError::InvalidArgument("user"));
        }
        let uri = format!(
            "{}/users/{}/transitiveMemberOf/microsoft.graph.group?$select=id&$top={}",
            self.base,
            segment(user),
            page_size.clamp(1, 999)
        );
        Self::build(
            Method::GET,
            &uri,
            Vec::new(),
            true,
            Operation::TransitiveGroups,
        )
    }

    /// The request for an `@odata.nextLink`. The link must point at this endpoint (same
    /// origin and base path): the token is never sent anywhere else.
    ///
    /// # Errors
    /// [`GraphError::InvalidArgument`] for a link elsewhere.
    pub fn next_page(
        &self,
        next_link: &str,
        operation: Operation,
    ) -> Result<GraphRequest, GraphError> {
        let ok = next_link
            .strip_prefix(&self.base)
            .is_some_and(|rest| rest.starts_with('/'))
            && url::Url::parse(next_link).is_ok()
            && !next_link.chars().any(char::is_whitespace);
        if !ok {
            return Err(GraphError::InvalidArgument(
                "nextLink outside the Graph endpoint",
            ));
        }
        Self::build(Method::GET, next_link, Vec::new(), true, operation)
    }
}

/// The retired Azure AD Graph form shown in the Entra integration doc (sample 36):
/// `PATCH https://graph.windows.net/{tenant}/devices/{id}?api-version=…`.
///
/// Azure AD Graph is retired; use [`GraphApi::update_device`]. This exists for servers that
/// must reproduce the documented request exactly.
pub mod legacy {
    use super::*;

    /// The Azure AD Graph base URL.
    pub const AZURE_AD_GRAPH: &str = "https://graph.windows.net";

    /// The documented request. `tenant` is a tenant ID or domain name; `device` the
    /// device's object ID.
    ///
    /// # Errors
    /// [`GraphError::InvalidArgument`] for a tenant or API version outside
    /// `A-Z a-z 0-9 . -`, or a non-GUID device.
    pub fn update_device(
        tenant: &str,
        device: &str,
        api_version: &str,
        compliance: &Compliance,
    ) -> Result<GraphRequest, GraphError> {
        let safe = |s: &str| {
            !s.is_empty()
                && s.len() <= 255
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        };
        if !safe(tenant) {
            return Err(GraphError::InvalidArgument("tenant"));
        }
        if !safe(api_version) {
            return Err(GraphError::InvalidArgument("api-version"));
        }
        let uri = format!(
            "{AZURE_AD_GRAPH}/{tenant}/devices/{}?api-version={api_version}",
            guid(device, "device object id")?
        );
        GraphApi::build(
            Method::PATCH,
            &uri,
            compliance.body(),
            true,
            Operation::UpdateDevice,
        )
    }
}
