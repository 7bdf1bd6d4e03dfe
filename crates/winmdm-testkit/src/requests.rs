//! The enrollment requests Windows sends, as text: WS-Trust `RequestSecurityToken`s
//! (issue and renew), `GetPolicies`, and their pieces. The simulator sends these; tests
//! that drive an endpoint without a network build them here.
//!
//! ```
//! use winmdm_testkit::requests;
//! let rst = requests::rst_issue(
//!     "https://mdm.example/EnrollmentServer/Enrollment.svc",
//!     "eyJ.token.sig",
//!     &[0x30, 0x00],
//!     &[("DeviceID", "0f3e7c2a-5b64-4a19-9d2e-7c8b1a6f4e33"), ("EnrollmentType", "Device")],
//! );
//! assert!(rst.contains("wst:RequestSecurityToken") && rst.contains("PKCS10"));
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// `BinarySecurityToken` value type of a PKCS#10 request (issue).
pub const PKCS10: &str = "http://schemas.microsoft.com/windows/pki/2009/01/enrollment#PKCS10";
/// `BinarySecurityToken` value type of a PKCS#7 request (renew, recover).
pub const PKCS7: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#PKCS7";

/// Escapes text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A random (version 4) GUID, lower-case and dashed.
pub fn random_guid() -> String {
    let mut b = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `ac:ContextItem`s, in order.
pub fn context_items(items: &[(&str, &str)]) -> String {
    items
        .iter()
        .map(|(k, v)| {
            format!(
                "<ac:ContextItem Name=\"{}\"><ac:Value>{}</ac:Value></ac:ContextItem>",
                escape(k),
                escape(v)
            )
        })
        .collect()
}

/// The WS-Security header carrying an Entra token (as Windows sends it: the JWT, base64).
pub fn security_header(token: &str) -> String {
    format!(
        r#"<wsse:Security s:mustUnderstand="1"><wsse:BinarySecurityToken ValueType="urn:ietf:params:oauth:token-type:jwt" EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#base64binary">{}</wsse:BinarySecurityToken></wsse:Security>"#,
        STANDARD.encode(token)
    )
}

/// A `RequestSecurityToken` to `to`: `request_type` `Issue`, `Renew` or `Recover`, the
/// binary token (`value_type` [`PKCS10`] or [`PKCS7`]), a SOAP header fragment (the
/// [`security_header`], or nothing for a renewal) and context items ([`context_items`]).
pub fn rst(
    to: &str,
    request_type: &str,
    value_type: &str,
    token: &[u8],
    header: &str,
    items: &str,
) -> String {
    format!(
        r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing" xmlns:u="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wst="http://docs.oasis-open.org/ws-sx/ws-trust/200512" xmlns:ac="http://schemas.xmlsoap.org/ws/2006/12/authorization"><s:Header><a:Action s:mustUnderstand="1">http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RST/wstep</a:Action><a:MessageID>urn:uuid:{}</a:MessageID><a:ReplyTo><a:Address>http://www.w3.org/2005/08/addressing/anonymous</a:Address></a:ReplyTo><a:To s:mustUnderstand="1">{}</a:To>{header}</s:Header><s:Body><wst:RequestSecurityToken><wst:TokenType>http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentToken</wst:TokenType><wst:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/{request_type}</wst:RequestType><wsse:BinarySecurityToken ValueType="{value_type}" EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#base64binary">{}</wsse:BinarySecurityToken><ac:AdditionalContext xmlns="http://schemas.xmlsoap.org/ws/2006/12/authorization">{items}</ac:AdditionalContext></wst:RequestSecurityToken></s:Body></s:Envelope>"#,
        random_guid(),
        escape(to),
        STANDARD.encode(token),
    )
}

/// An issue request with `token` (the user's Entra token), a PKCS#10 CSR and context
/// items (`DeviceID`, `EnrollmentType`, `EnrollmentData`, …).
pub fn rst_issue(to: &str, token: &str, csr_der: &[u8], items: &[(&str, &str)]) -> String {
    rst(
        to,
        "Issue",
        PKCS10,
        csr_der,
        &security_header(token),
        &context_items(items),
    )
}

/// A `GetPolicies` request to `to` with `token`.
pub fn get_policies(to: &str, token: &str) -> String {
    format!(
        r#"<s:Envelope xmlns:a="http://www.w3.org/2005/08/addressing" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><s:Header><a:Action s:mustUnderstand="1">http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy/IPolicy/GetPolicies</a:Action><a:MessageID>urn:uuid:{}</a:MessageID><a:ReplyTo><a:Address>http://www.w3.org/2005/08/addressing/anonymous</a:Address></a:ReplyTo><a:To s:mustUnderstand="1">{}</a:To>{}</s:Header><s:Body><GetPolicies xmlns="http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy"><client><lastUpdate xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/><preferredLanguage xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/></client><requestFilter xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/></GetPolicies></s:Body></s:Envelope>"#,
        random_guid(),
        escape(to),
        security_header(token)
    )
}
