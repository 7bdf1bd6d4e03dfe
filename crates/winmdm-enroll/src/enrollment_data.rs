//! The Terms-of-Use `OpaqueBlob`, as it reaches the enrollment endpoint.
//!
//! After the user accepts the MDM's Terms of Use, Windows carries the `OpaqueBlob` the ToU
//! page returned into the enrollment request, unchanged, as the `AdditionalContext` item
//! `EnrollmentData` (Microsoft Learn "Microsoft Entra integration with MDM" § Terms of Use
//! endpoint processing logic; MS-MDE2 §3.4.4.1.1.1.1). The enrollment server must check
//! that the blob is genuine, unexpired, and was issued to the same user in the same tenant
//! as the token of the enrollment request.
//!
//! This crate defines the check as a trait so that it does not depend on the crate that
//! issues blobs (`winmdm-tou` implements it); a vendor with its own ToU page implements
//! it too.
//!
//! ```
//! use winmdm_enroll::enrollment_data::{
//!     EnrollmentData, EnrollmentDataError, EnrollmentDataVerifier, TokenIdentity,
//! };
//!
//! /// A verifier that accepts nothing (a vendor that does not use Terms of Use).
//! struct NoTermsOfUse;
//! impl EnrollmentDataVerifier for NoTermsOfUse {
//!     fn verify(&self, _: &str, _: &TokenIdentity<'_>, _: u64) -> Result<EnrollmentData, EnrollmentDataError> {
//!         Err(EnrollmentDataError::Malformed)
//!     }
//! }
//! let who = TokenIdentity { tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47", object_id: "0b1f9a1e-45c2-4f7a-9a51-3c1f1e7a6b21" };
//! assert_eq!(NoTermsOfUse.verify("blob", &who, 0), Err(EnrollmentDataError::Malformed));
//! ```

use core::fmt;

/// Who the enrollment request's validated Entra token identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenIdentity<'a> {
    /// `tid`.
    pub tenant_id: &'a str,
    /// `oid`.
    pub object_id: &'a str,
}

/// What a genuine blob records.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollmentData {
    /// The tenant the user accepted in.
    pub tenant_id: String,
    /// The user who accepted.
    pub object_id: String,
    /// The `client-request-id` of the ToU request (recorded for log correlation; it is not
    /// compared with anything).
    pub client_request_id: String,
    /// When the user accepted (Unix seconds).
    pub accepted_at: u64,
    /// Whether the device is organization-owned (the ToU request had `mode=azureadjoin`).
    pub organization_owned: bool,
    /// Data the vendor attached on the ToU side (a PIN result, a targeting decision…).
    pub vendor_data: Option<String>,
}

impl fmt::Debug for EnrollmentData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollmentData")
            .field("tenant_id", &self.tenant_id)
            .field("object_id", &self.object_id)
            .field("client_request_id", &self.client_request_id)
            .field("accepted_at", &self.accepted_at)
            .field("organization_owned", &self.organization_owned)
            .field(
                "vendor_data",
                &self
                    .vendor_data
                    .as_ref()
                    .map(|d| format!("[{} bytes]", d.len())),
            )
            .finish()
    }
}

/// Why a blob was refused. The enrollment answer is the same for all of them (a SOAP
/// fault, `MENROLL_E_ENROLLMENTDATAINVALID`); the variants are for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollmentDataError {
    /// Not a blob of the expected format.
    #[error("the enrollment data is not a Terms-of-Use blob")]
    Malformed,
    /// Made with a key the verifier does not hold (rotated out, or never ours).
    #[error("the enrollment data was sealed with unknown key {key_id:?}")]
    UnknownKey {
        /// The key ID the blob names.
        key_id: String,
    },
    /// The seal does not verify: the blob was altered or forged.
    #[error("the enrollment data was tampered with")]
    Tampered,
    /// Past its expiry.
    #[error("the enrollment data expired at {exp} (now {now})")]
    Expired {
        /// Expiry (Unix seconds).
        exp: u64,
        /// The time of the check.
        now: u64,
    },
    /// Issued to another user or tenant than the enrollment token's.
    #[error("the enrollment data belongs to another user or tenant")]
    OtherUser,
}

/// Checks an `EnrollmentData` blob against the enrollment request's token.
pub trait EnrollmentDataVerifier {
    /// Verifies `blob` (the context item's value as sent) for the user `identity` at `now`
    /// (Unix seconds).
    ///
    /// # Errors
    /// See [`EnrollmentDataError`].
    fn verify(
        &self,
        blob: &str,
        identity: &TokenIdentity<'_>,
        now: u64,
    ) -> Result<EnrollmentData, EnrollmentDataError>;
}
