//! The sans-I/O builders: the legacy request reproduces sample 36, the v1.0 forms, and no
//! input can steer a request to another resource or host.

use proptest::prelude::*;
use winmdm_graph::*;
use winmdm_testkit::samples;

#[test]
fn legacy_request_reproduces_sample_36() {
    let s = samples::get(36).unwrap().unwrap();
    let mut lines = s.body.lines().skip_while(|l| !l.starts_with("PATCH "));
    let request_line = lines.next().unwrap();
    let mut parts = request_line.split(' ');
    let (method, url) = (parts.next().unwrap(), parts.next().unwrap());
    let mut headers = Vec::new();
    let mut body = String::new();
    for l in lines.by_ref() {
        if let Some((k, v)) = l.split_once(": ") {
            headers.push((k.to_owned(), v.to_owned()));
        } else {
            body.push_str(l);
            break;
        }
    }
    for l in lines {
        body.push_str(l);
    }
    let req = api::legacy::update_device(
        "contoso.com",
        "db7ab579-3759-4492-a03f-655ca7f52ae1",
        "beta",
        &Compliance::managed(true),
    )
    .unwrap();
    assert_eq!(req.request.method().as_str(), method);
    assert_eq!(req.request.uri().to_string(), url);
    assert_eq!(
        req.request.uri().path(),
        "/contoso.com/devices/db7ab579-3759-4492-a03f-655ca7f52ae1"
    );
    assert_eq!(req.request.uri().query(), Some("api-version=beta"));
    for (k, v) in headers.iter().filter(|(k, _)| k != "Authorization") {
        assert_eq!(req.request.headers()[k.as_str()], v.as_str(), "{k}");
    }
    let ours: serde_json::Value = serde_json::from_slice(req.request.body()).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ours, theirs);
    assert!(req.idempotent);
    // Bad tenants and IDs are refused.
    assert!(
        api::legacy::update_device(
            "contoso.com/../x",
            "db7ab579-3759-4492-a03f-655ca7f52ae1",
            "beta",
            &Compliance::managed(true)
        )
        .is_err()
    );
    assert!(
        api::legacy::update_device("contoso.com", "x", "beta", &Compliance::managed(true)).is_err()
    );
    assert!(
        api::legacy::update_device(
            "contoso.com",
            "db7ab579-3759-4492-a03f-655ca7f52ae1",
            "beta&x=1",
            &Compliance::managed(true)
        )
        .is_err()
    );
}

/// Windows writes device IDs without dashes; Graph's alternate key takes the dashed GUID.
#[test]
fn device_ids_in_every_spelling_address_the_same_device() {
    let api = GraphApi::global();
    let expected =
        "https://graph.microsoft.com/v1.0/devices(deviceId='3a7c25db-7708-4f8f-b61e-2749066c1f27')";
    for spelling in [
        "3a7c25db-7708-4f8f-b61e-2749066c1f27",
        "3A7C25DB-7708-4F8F-B61E-2749066C1F27",
        "{3A7C25DB-7708-4F8F-B61E-2749066C1F27}",
        "3A7C25DB77084F8FB61E2749066C1F27",
    ] {
        let r = api
            .update_device(DeviceRef::DeviceId(spelling), &Compliance::managed(true))
            .unwrap();
        assert_eq!(r.request.uri().to_string(), expected, "{spelling}");
    }
    // Windows' byte-order spelling (a published Windows 10 capture), read as such.
    let id = winmdm_entra::DeviceId::from_windows_hex("DB257C3A08778F4FB61E2749066C1F27")
        .unwrap()
        .to_string();
    let r = api
        .update_device(DeviceRef::DeviceId(&id), &Compliance::managed(true))
        .unwrap();
    assert_eq!(r.request.uri().to_string(), expected);
    for bad in ["3A7C25DB77084F8FB61E2749066C1F2", "x')/../users", "", "{}"] {
        assert!(
            api.update_device(DeviceRef::DeviceId(bad), &Compliance::managed(true))
                .is_err(),
            "{bad}"
        );
    }
}

#[test]
fn v1_requests_and_national_clouds() {
    let api = GraphApi::new("https://graph.microsoft.us/v1.0/").unwrap();
    let r = api
        .get_device(DeviceRef::ObjectId("db7ab579-3759-4492-a03f-655ca7f52ae1"))
        .unwrap();
    assert_eq!(r.request.method(), "GET");
    assert!(r.request.uri().to_string().starts_with("https://graph.microsoft.us/v1.0/devices/db7ab579-3759-4492-a03f-655ca7f52ae1?$select=id,deviceId"));
    let r = api.member_objects("alice@contoso.example", true).unwrap();
    assert_eq!(r.request.method(), "POST");
    assert_eq!(
        r.request.uri(),
        "https://graph.microsoft.us/v1.0/users/alice@contoso.example/getMemberObjects"
    );
    assert_eq!(r.request.body(), br#"{"securityEnabledOnly":true}"#);
    assert!(r.idempotent);
    let r = api
        .transitive_groups("11111111-0000-4000-8000-0000000a11ce", 5000)
        .unwrap();
    assert!(
        r.request
            .uri()
            .to_string()
            .ends_with("transitiveMemberOf/microsoft.graph.group?$select=id&$top=999")
    );
    assert!(
        GraphApi::new("http://graph.example/v1.0").is_err(),
        "https only (but loopback)"
    );
    assert!(GraphApi::new("http://127.0.0.1:8080/v1.0").is_ok());
    assert!(GraphApi::new("not a url").is_err());
    assert!(
        api.update_device(
            DeviceRef::ObjectId("db7ab579-3759-4492-a03f-655ca7f52ae1"),
            &Compliance::default()
        )
        .is_err()
    );
    // nextLink must stay on the endpoint.
    assert!(
        api.next_page(
            "https://graph.microsoft.us/v1.0/users/x/transitiveMemberOf?$skiptoken=2",
            Operation::TransitiveGroups
        )
        .is_ok()
    );
    for evil in [
        "https://evil.example/v1.0/users/x",
        "https://graph.microsoft.us.evil.example/v1.0/x",
        "https://graph.microsoft.us/v1.0evil/x",
        "https://graph.microsoft.us/beta/x",
    ] {
        assert!(
            api.next_page(evil, Operation::TransitiveGroups).is_err(),
            "{evil}"
        );
    }
}

proptest! {
    /// Whatever the IDs, a request addresses the device collection of the configured
    /// host, or is refused.
    #[test]
    fn ids_cannot_steer_requests(id in "\\PC{0,40}", user in "\\PC{1,40}") {
        let api = GraphApi::global();
        for device in [DeviceRef::ObjectId(&id), DeviceRef::DeviceId(&id)] {
            if let Ok(r) = api.update_device(device, &Compliance::managed(true)) {
                let uri = r.request.uri().to_string();
                prop_assert!(uri.starts_with("https://graph.microsoft.com/v1.0/devices"));
                prop_assert!(api::is_guid(&id));
            }
        }
        if let Ok(r) = api.member_objects(&user, false) {
            let uri = r.request.uri();
            prop_assert_eq!(uri.host(), Some("graph.microsoft.com"));
            let path = uri.path();
            prop_assert!(path.starts_with("/v1.0/users/") && path.ends_with("/getMemberObjects"));
            prop_assert_eq!(path.matches('/').count(), 4, "one segment for the user: {}", path);
        }
    }
}
