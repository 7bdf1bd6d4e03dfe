//! The published MDE2/XCEP samples parse; our responses and faults read back; the
//! NOT-WELL-FORMED samples and bad input fail with a MessageFormat fault.

use winmdm_enroll::discovery::{self, AuthPolicy, DiscoveryAttributes, DiscoveryConfig, Version};
use winmdm_enroll::fault::{self, EnrollError};
use winmdm_enroll::soap::{self, Limits};
use winmdm_enroll::token::SecurityToken;
use winmdm_enroll::xcep::{self, CertificatePolicy};
use winmdm_testkit::samples;

fn body(n: u32) -> String {
    samples::get(n).unwrap().unwrap().body
}

#[test]
fn every_soap_sample_parses_and_the_broken_ones_fail_cleanly() {
    let mut seen = 0;
    for s in samples::load().unwrap() {
        if !(2..=18).contains(&s.number) || s.file_name.ends_with(".http") {
            continue;
        }
        seen += 1;
        let is_pd = s.file_name.contains("provisioningdoc");
        let r = if is_pd {
            soap::parse(s.body.as_bytes(), &Limits::default()).map(|_| ())
        } else {
            soap::envelope(s.body.as_bytes(), &Limits::default()).map(|_| ())
        };
        if s.not_well_formed {
            let err = r.expect_err(&s.file_name);
            let f = EnrollError::from(err).fault();
            assert_eq!(f.subcode, "s:MessageFormat", "{}", s.file_name);
        } else {
            r.unwrap_or_else(|e| panic!("{}: {e}", s.file_name));
        }
    }
    assert!(seen >= 15, "{seen}");
}

#[test]
fn discovery_get_probe_and_discover_round_trip() {
    let probe = discovery::probe_response();
    assert_eq!(probe.status(), 200);
    assert!(probe.body().is_empty());
    assert_eq!(probe.headers()["content-length"], "0");

    // Learn sample (namespace with a trailing slash) and the MS-MDE2 one.
    for n in [3, 5] {
        let req = discovery::parse_discover(body(n).as_bytes()).unwrap();
        assert!(req.auth_policies.contains(&AuthPolicy::Federated), "{n}");
        assert!(req.message_id.is_some());
    }
    let req = discovery::parse_discover(body(5).as_bytes()).unwrap();
    assert_eq!(req.email_address.as_deref(), Some("user@contoso.com"));
    assert_eq!(req.request_version, Some(Version(5, 0)));
    assert_eq!(req.os_edition, Some(3));
    assert_eq!(req.device_type.as_deref(), Some("WindowsPhone"));
    assert_eq!(
        req.message_id.as_deref(),
        Some("urn:uuid: 748132ec-a575-4329-b01b-6171a9cf8478")
    );

    let mut config =
        DiscoveryConfig::federated("https://mdm.contoso.example/EnrollmentServer/Enrollment.svc");
    config.policy_service_url =
        Some("https://mdm.contoso.example/EnrollmentServer/Policy.svc".into());
    config.max_version = Version(4, 0);
    let xml = discovery::discover_response(&config, &req).unwrap();
    let env = soap::envelope(xml.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(
        env.action.as_deref(),
        Some(discovery::DISCOVER_RESPONSE_ACTION)
    );
    let relates = env.header.child_named("RelatesTo").unwrap();
    assert_eq!(
        relates.text, "urn:uuid: 748132ec-a575-4329-b01b-6171a9cf8478",
        "echoed byte for byte"
    );
    let result = env.body.child_named("DiscoverResult").unwrap();
    assert_eq!(
        result.child_named("AuthPolicy").unwrap().text(),
        "Federated"
    );
    assert_eq!(
        result.child_named("EnrollmentVersion").unwrap().text(),
        "4.0",
        "min(5.0, 4.0)"
    );
    assert!(
        result.child_named("AuthenticationServiceUrl").is_none(),
        "Entra flows skip it"
    );
    let url = result.child_named("EnrollmentServiceUrl").unwrap().text();
    assert!(
        url.starts_with("https://mdm.contoso.example/EnrollmentServer/Enrollment.svc?OSEdition=3&Version=4.0&DeviceType=WindowsPhone"),
        "{url}"
    );
    // The enrollment side reads the attributes back.
    let attrs = DiscoveryAttributes::from_uri(&url.parse().unwrap());
    assert_eq!(attrs.os_edition, Some(3));
    assert_eq!(attrs.version, Some(Version(4, 0)));
    assert_eq!(attrs.application_version.as_deref(), Some("10.0.0.0"));
    // A newer client (Windows 11 25H2 sends 9.0) gets the server's maximum.
    let mut newer = req.clone();
    newer.request_version = Some(Version(9, 0));
    assert!(
        discovery::discover_response(&config, &newer)
            .unwrap()
            .contains("<EnrollmentVersion>4.0</EnrollmentVersion>")
    );
    // An older one than the minimum gets a fault.
    let mut older = req;
    older.request_version = Some(Version(2, 0));
    let err = discovery::discover_response(&config, &older).unwrap_err();
    assert_eq!(err.fault().errortype, Some("NotSupported"));
    // Empty and garbage bodies: MessageFormat with a body, never a bare error.
    for bad in [
        &b""[..],
        b"   ",
        b"not xml",
        b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body/></s:Envelope>",
    ] {
        let err = discovery::parse_discover(bad).unwrap_err();
        let resp = err.fault().to_response(None, "trace-1");
        assert_eq!(resp.status(), 500);
        assert_eq!(
            resp.headers()["content-type"],
            "application/soap+xml; charset=utf-8"
        );
        assert_eq!(
            resp.headers()["content-length"].to_str().unwrap(),
            resp.body().len().to_string()
        );
        let parsed = fault::parse_fault(resp.body()).unwrap();
        assert_eq!(parsed.subcode.as_deref(), Some("s:MessageFormat"));
    }
    // SOAP 1.1 envelopes are read too.
    let soap11 = body(5).replace(
        "http://www.w3.org/2003/05/soap-envelope",
        "http://schemas.xmlsoap.org/soap/envelope/",
    );
    assert!(discovery::parse_discover(soap11.as_bytes()).is_ok());
}

#[test]
fn xcep_get_policies_round_trip() {
    let req = xcep::parse_get_policies(body(7).as_bytes()).unwrap();
    assert_eq!(
        req.message_id.as_deref(),
        Some("urn:uuid:72048B64-0F19-448F-8C2E-B4C661860AA0")
    );
    assert!(
        matches!(req.token, Some(SecurityToken::Binary { .. })),
        "{:?}",
        req.token
    );
    assert_eq!(req.last_update, None);
    let xml = xcep::get_policies_response(&CertificatePolicy::default(), req.message_id.as_deref());
    let env = soap::envelope(xml.as_bytes(), &Limits::default()).unwrap();
    let attrs = env
        .body
        .path(&["response", "policies", "policy", "attributes"])
        .unwrap();
    assert_eq!(attrs.child_named("policySchema").unwrap().text(), "3");
    assert_eq!(
        attrs
            .path(&["privateKeyAttributes", "minimalKeyLength"])
            .unwrap()
            .text(),
        "2048"
    );
    assert_eq!(
        attrs
            .path(&["certificateValidity", "renewalPeriodSeconds"])
            .unwrap()
            .text(),
        (60 * 86_400).to_string()
    );
    // hashAlgorithmOIDReference resolves to an oID.
    let reference = attrs
        .child_named("hashAlgorithmOIDReference")
        .unwrap()
        .text();
    let oid = env.body.path(&["oIDs", "oID"]).unwrap();
    assert_eq!(oid.child_named("oIDReferenceID").unwrap().text(), reference);
    assert_eq!(
        oid.child_named("value").unwrap().text(),
        "2.16.840.1.101.3.4.2.1"
    );
    // A JWT token in the header, base64-wrapped in the URL alphabet without padding and
    // broken across lines.
    use base64::Engine as _;
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ4In0.c2ln";
    let wrapped = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(jwt);
    let user_type = "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentUserToken";
    let with_jwt = body(7)
        .replace(user_type, "urn:ietf:params:oauth:token-type:jwt")
        .replace(
            "B64EncodedSampleBinarySecurityToken",
            &format!("{}\n   {}", &wrapped[..10], &wrapped[10..]),
        );
    let req = xcep::parse_get_policies(with_jwt.as_bytes()).unwrap();
    assert_eq!(req.token.as_ref().and_then(SecurityToken::jwt), Some(jwt));
    assert!(
        !format!("{:?}", req.token).contains("eyJ"),
        "tokens are redacted in Debug"
    );
    // A JWT-typed token that is not one: Authentication.
    let bad = body(7).replace(user_type, "urn:ietf:params:oauth:token-type:jwt");
    let err = xcep::parse_get_policies(bad.as_bytes()).unwrap_err();
    assert_eq!(err.fault().subcode, "s:Authentication");
}

#[test]
fn documented_faults_parse_in_any_casing_and_ours_follow_the_table() {
    let f = fault::parse_fault(body(18).as_bytes()).unwrap();
    assert_eq!(f.code, "s:receiver");
    assert_eq!(f.subcode.as_deref(), Some("s:authorization"));
    assert_eq!(f.errortype.as_deref(), Some("devicecapreached"));
    assert_eq!(
        f.trace_id.as_deref(),
        Some("2493ee37-beeb-4cb9-833c-cadde9067645")
    );
    fault::parse_fault(body(17).as_bytes()).unwrap();
    let rows: Vec<(EnrollError, &str, Option<&str>, u32)> = vec![
        (
            EnrollError::Malformed(soap::SoapError::Empty),
            "s:MessageFormat",
            None,
            0x8018_0001,
        ),
        (
            EnrollError::Authentication("expired".into()),
            "s:Authentication",
            None,
            0x8018_0002,
        ),
        (
            EnrollError::Authorization("tenant".into()),
            "s:Authorization",
            None,
            0x8018_0003,
        ),
        (
            EnrollError::CertificateRequest("weak key".into()),
            "s:CertificateRequest",
            None,
            0x8018_0004,
        ),
        (
            EnrollError::Internal("HSM offline at 10.0.0.7".into()),
            "a:InternalServiceFault",
            None,
            0x8018_0006,
        ),
        (
            EnrollError::NotEligibleToRenew("early".into()),
            "s:Authorization",
            Some("NotEligibleToRenew"),
            0x8018_0016,
        ),
        (
            EnrollError::DeviceCapReached,
            "s:Authorization",
            Some("DeviceCapReached"),
            0x8018_0013,
        ),
        (
            EnrollError::UserLicense,
            "s:Authorization",
            Some("UserLicense"),
            0x8018_0018,
        ),
        (
            EnrollError::InMaintenance,
            "s:EnrollmentServer",
            Some("InMaintenance"),
            0x8018_0017,
        ),
        (
            EnrollError::InvalidEnrollmentData("tampered".into()),
            "s:Authorization",
            Some("InvalidEnrollmentData"),
            0x8018_0019,
        ),
        (
            EnrollError::Custom("Ask IT for an enrollment code.".into()),
            "s:Authorization",
            Some("CustomServerError"),
            0x8018_0032,
        ),
    ];
    for (err, subcode, errortype, hresult) in rows {
        let f = err.fault();
        assert_eq!(
            (f.subcode, f.errortype, f.hresult.0),
            (subcode, errortype, hresult),
            "{err:?}"
        );
        let xml = f.to_xml(Some("urn:uuid:1"), "trace-7");
        let parsed = fault::parse_fault(xml.as_bytes()).unwrap();
        assert_eq!(parsed.code, "s:Receiver");
        assert_eq!(parsed.subcode.as_deref(), Some(subcode));
        assert_eq!(parsed.errortype.as_deref(), errortype);
        assert_eq!(parsed.trace_id.as_deref(), Some("trace-7"));
        assert!(
            !xml.contains("10.0.0.7") && !xml.contains("HSM"),
            "internal detail stays off the wire"
        );
    }
    let custom = EnrollError::Custom("Ask IT for an enrollment code.".into()).fault();
    assert_eq!(
        custom.reason, "Ask IT for an enrollment code.",
        "the vendor's reason is shown"
    );
}

#[test]
fn rst_samples_parse_with_every_context_item_in_order() {
    use winmdm_enroll::wstep::{self, EnrollmentKind, RequestType};
    let r = wstep::parse_rst(body(11).as_bytes()).unwrap();
    assert_eq!(r.request_type, RequestType::Issue);
    assert_eq!(
        r.message_id.as_deref(),
        Some("urn:uuid:0d5a1441-5891-453b-becf-a2e5f6ea3749")
    );
    assert!(r.request_value_type.ends_with("#PKCS10"));
    let c = &r.context;
    assert_eq!(c.get("UXInitiated"), Some("true"));
    assert_eq!(c.ux_initiated(), Some(true));
    assert_eq!(c.os_edition(), Some(4));
    assert_eq!(c.os_version(), Some("10.0.9999.0"));
    assert_eq!(c.device_name(), Some("MY_WINDOWS_DEVICE"));
    assert_eq!(c.macs(), ["FF:FF:FF:FF:FF:FF", "CC:CC:CC:CC:CC:CC"]);
    assert_eq!(c.imeis(), ["49015420323756", "30215420323756"]);
    assert_eq!(c.enrollment_type(), Some(EnrollmentKind::Full));
    assert_eq!(c.device_id(), Some("7BA748C8-703E-4DF2-A74A-92984117346A"));
    assert_eq!(c.targeted_user_logged_in(), Some(true), "True");
    assert_eq!(c.locale(), Some("en-us"));
    assert_eq!(
        c.enrollment_data(),
        Some("3J4KLJ9SDJFAL93JLAKHJSDFJHAO83HAKSHFLAHSKFNHNPA2934342")
    );
    assert_eq!(
        c.get("ExternalMgmtAgentHint"),
        Some("Agent1:Value1"),
        "unknown items are kept"
    );
    // Order kept, duplicates kept.
    let names: Vec<&str> = c.items().map(|(n, _)| n).collect();
    assert_eq!(names.iter().filter(|n| **n == "MAC").count(), 2);
    assert!(
        names.iter().position(|n| *n == "UXInitiated") < names.iter().position(|n| *n == "Locale")
    );
    // The placeholder is not a CSR.
    assert_eq!(
        r.csr_der().unwrap_err().fault().subcode,
        "s:CertificateRequest"
    );
    // The renewal sample.
    let renew = wstep::parse_rst(body(15).as_bytes()).unwrap();
    assert_eq!(renew.request_type, RequestType::Renew);
    assert!(renew.request_value_type.ends_with("#PKCS7"));
    // The NOT-WELL-FORMED Learn sample fails with MessageFormat.
    let err = wstep::parse_rst(body(10).as_bytes()).unwrap_err();
    assert_eq!(err.fault().subcode, "s:MessageFormat");
}

#[test]
fn enrollment_data_is_verified_through_the_trait() {
    use winmdm_enroll::enrollment_data::{
        EnrollmentData, EnrollmentDataError, EnrollmentDataVerifier, TokenIdentity,
    };
    use winmdm_enroll::wstep;
    /// Accepts only the blob "good-blob" for Alice.
    struct Verifier;
    impl EnrollmentDataVerifier for Verifier {
        fn verify(
            &self,
            blob: &str,
            who: &TokenIdentity<'_>,
            now: u64,
        ) -> Result<EnrollmentData, EnrollmentDataError> {
            if blob != "good-blob" {
                return Err(EnrollmentDataError::Tampered);
            }
            if who.object_id != "alice" {
                return Err(EnrollmentDataError::OtherUser);
            }
            Ok(EnrollmentData {
                tenant_id: who.tenant_id.into(),
                object_id: who.object_id.into(),
                client_request_id: "c".into(),
                accepted_at: now,
                organization_owned: true,
                vendor_data: None,
            })
        }
    }
    let with = |blob: &str| {
        let b = body(11).replace(
            "3J4KLJ9SDJFAL93JLAKHJSDFJHAO83HAKSHFLAHSKFNHNPA2934342",
            blob,
        );
        wstep::parse_rst(b.as_bytes()).unwrap()
    };
    let alice = TokenIdentity {
        tenant_id: "t",
        object_id: "alice",
    };
    let data = with("good-blob")
        .verify_enrollment_data(&Verifier, &alice, 5)
        .unwrap();
    assert!(data.organization_owned);
    let err = with("forged")
        .verify_enrollment_data(&Verifier, &alice, 5)
        .unwrap_err();
    assert_eq!(err.fault().errortype, Some("InvalidEnrollmentData"));
    let bob = TokenIdentity {
        tenant_id: "t",
        object_id: "bob",
    };
    assert!(
        with("good-blob")
            .verify_enrollment_data(&Verifier, &bob, 5)
            .is_err()
    );
    // No EnrollmentData item at all: the Terms of Use were not accepted — refused, unless
    // the vendor's flow has no Terms-of-Use page and says so by calling the `_if_present`
    // form (which still refuses a blob that does not verify).
    let none = body(11).replace("Name=\"EnrollmentData\"", "Name=\"Other\"");
    let r = wstep::parse_rst(none.as_bytes()).unwrap();
    let err = r.verify_enrollment_data(&Verifier, &alice, 5).unwrap_err();
    assert_eq!(err.fault().subcode, "s:Authorization");
    assert_eq!(
        r.verify_enrollment_data_if_present(&Verifier, &alice, 5)
            .unwrap(),
        None
    );
    assert!(
        with("forged")
            .verify_enrollment_data_if_present(&Verifier, &alice, 5)
            .is_err()
    );
}
