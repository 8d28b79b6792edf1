//! The ACS against genuine responses of every shape and every published attack. Responses are signed
//! for real (libxmlsec1) with keys made in the tests.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{Duration, Utc};
use jsm_sso::saml::idp::IdpSettings;

use crate::db_test;
use crate::helpers::saml::*;
use crate::helpers::saml_signer::*;
use crate::helpers::*;

async fn assert_refused(s: &SamlSetup, r: reqwest::Response, status: u16, code: &str) {
    let got = r.status().as_u16();
    let has_cookie =
        r.headers().get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with("jsm_sso_session="));
    let body = r.text().await.unwrap();
    assert_eq!(got, status, "expected {status} for {code}: {body}");
    assert!(!has_cookie, "no session for a refused response ({code})");
    assert!(body.contains("Reference"), "the page gives a reference: {body}");
    let (outcome, reason, details) = s.last_event().await;
    assert_eq!((outcome.as_str(), reason.as_str()), ("failure", code), "event details: {details}");
}

async fn session_email(s: &SamlSetup, browser: &reqwest::Client) -> Option<String> {
    let r = browser.get(s.t("/session")).send().await.unwrap();
    if r.status() != 200 {
        return None;
    }
    let v: serde_json::Value = r.json().await.unwrap();
    v["email"].as_str().map(str::to_string)
}

db_test!(genuine_response_signs_the_customer_in, async |backend| {
    let s = SamlSetup::new(backend).await;
    let b = browser();
    assert_eq!(b.get(s.t("/session")).send().await.unwrap().status(), 401);
    let started = s.start(&b, "").await;
    // The AuthnRequest names our ACS and issuer, and its ID carries ≥128 random bits.
    assert!(started.request_xml.contains(&format!("AssertionConsumerServiceURL=\"{}\"", s.acs_url())));
    assert!(started.request_xml.contains(&s.entity_id()));
    assert!(started.request_id.len() >= 33);
    assert!(started.location.starts_with(&format!("{IDP_SSO}?SAMLRequest=")));

    let p = s.params(Some(&started.request_id), Utc::now());
    let r = s.post_acs(&b, &s.signed(&p)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/t/{}/", s.public_id));
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains(&format!("Path=/t/{}", s.public_id)), "{cookie}");

    let v: serde_json::Value = b.get(s.t("/session")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["email"], "alice@example.com");
    assert_eq!(v["name_id"], "alice");
    assert_eq!(v["display_name"], "Alice Liddell");
    assert_eq!(v["idp_id"], s.idp.id.as_str());
    let (outcome, _, details) = s.last_event().await;
    assert_eq!(outcome, "success");
    assert!(details.contains(&certificate_of(idp_key()).fingerprint_sha256), "{details}");
    // The session token is stored hashed.
    let token = cookie.split(';').next().unwrap().trim_start_matches("jsm_sso_session=").to_string();
    assert_eq!(
        s.app.db.scalar(&format!("SELECT COUNT(*) FROM customer_sessions WHERE token_hash = '{token}'")).await,
        0
    );
    assert_eq!(s.app.db.scalar("SELECT COUNT(*) FROM customer_sessions").await, 1);
});

db_test!(every_valid_signature_shape_is_accepted, async |backend| {
    let s = SamlSetup::new(backend).await;
    type Shape = fn(&SamlSetup, &ResponseParams) -> String;
    let shapes: Vec<(&str, Shape)> = vec![
        ("assertion only", |_, p| sign_element(&build_response(p), &p.assertion_id, idp_key(), SigAlg::RsaSha256)),
        ("response only", |_, p| sign_element(&build_response(p), &p.response_id, idp_key(), SigAlg::RsaSha256)),
        ("both", |s, p| s.signed(p)),
        ("exclusive c14n with InclusiveNamespaces", |_, p| {
            let opts = SignOptions { alg: SigAlg::RsaSha256, inclusive_namespaces: Some("xs".into()) };
            let xml = sign_element_with(&build_response(p), &p.assertion_id, idp_key(), &opts);
            sign_element_with(&xml, &p.response_id, idp_key(), &opts)
        }),
        ("other prefixes", |_, p| {
            let xml = build_response(p)
                .replace("saml2p:", "samlp:")
                .replace("xmlns:saml2p=", "xmlns:samlp=")
                .replace("saml2:", "saml:")
                .replace("xmlns:saml2=", "xmlns:saml=");
            sign_both(&xml, p, idp_key(), SigAlg::RsaSha256)
        }),
        ("pretty-printed", |_, p| {
            let xml = build_response(p)
                .replace("><saml2:", ">\n    <saml2:")
                .replace("><saml2p:", ">\n  <saml2p:")
                .replace("></saml2", ">\n</saml2");
            sign_both(&xml, p, idp_key(), SigAlg::RsaSha256)
        }),
    ];
    for (name, shape) in shapes {
        let b = browser();
        let started = s.start(&b, "").await;
        let p = s.params(Some(&started.request_id), Utc::now());
        let r = s.post_acs(&b, &shape(&s, &p)).await;
        assert_eq!(r.status(), 303, "{name}: {}", r.text().await.unwrap());
        assert_eq!(session_email(&s, &b).await.as_deref(), Some("alice@example.com"), "{name}");
    }
    // Line-wrapped base64, as some IdPs post it.
    let b = browser();
    let started = s.start(&b, "").await;
    let p = s.params(Some(&started.request_id), Utc::now());
    let encoded = STANDARD.encode(s.signed(&p));
    let wrapped: String =
        encoded.as_bytes().chunks(76).map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap())).collect();
    assert_eq!(s.post_acs_raw(&b, &wrapped).await.status(), 303);
});

db_test!(attribute_shapes_of_common_idps_yield_the_email, async |backend| {
    let s = SamlSetup::new(backend).await;
    let shapes = [
        ("Entra ID", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"),
        ("Okta", "email"),
        ("LDAP / Shibboleth", "urn:oid:0.9.2342.19200300.100.1.3"),
        ("plain", "mail"),
    ];
    for (name, attr) in shapes {
        let b = browser();
        let started = s.start(&b, "").await;
        let mut p = s.params(Some(&started.request_id), Utc::now());
        p.attributes = vec![(attr.into(), vec![format!("bob@{}.example", name.len())])];
        assert_eq!(s.post_acs(&b, &s.signed(&p)).await.status(), 303, "{name}");
        assert_eq!(session_email(&s, &b).await, Some(format!("bob@{}.example", name.len())), "{name}");
    }
    // ADFS-style: no email attribute, an emailAddress NameID.
    let b = browser();
    let started = s.start(&b, "").await;
    let mut p = s.params(Some(&started.request_id), Utc::now());
    p.attributes = vec![];
    p.name_id = "carol@example.com".into();
    p.name_id_format = NAMEID_EMAIL.into();
    assert_eq!(s.post_acs(&b, &s.signed(&p)).await.status(), 303);
    assert_eq!(session_email(&s, &b).await.as_deref(), Some("carol@example.com"));
});

db_test!(forged_and_tampered_signatures_are_refused, async |backend| {
    let s = SamlSetup::new(backend).await;
    let now = Utc::now();

    // Unsigned.
    let b = browser();
    let st = s.start(&b, "").await;
    let p = s.params(Some(&st.request_id), now);
    assert_refused(&s, s.post_acs(&b, &build_response(&p)).await, 403, "unsigned").await;

    // Signed by another key (whose certificate rides along in KeyInfo: it must be ignored).
    let st = s.start(&b, "").await;
    let p = s.params(Some(&st.request_id), now);
    let forged = sign_both(&build_response(&p), &p, attacker_key(), SigAlg::RsaSha256);
    assert_refused(&s, s.post_acs(&b, &forged).await, 403, "signature_invalid").await;

    // Tampered after signing: NameID and email changed.
    let st = s.start(&b, "").await;
    let p = s.params(Some(&st.request_id), now);
    let tampered = s.signed(&p).replace(">alice<", ">admin<").replace("Alice@Example.com", "admin@example.com");
    assert_refused(&s, s.post_acs(&b, &tampered).await, 403, "signature_invalid").await;

    // Signature stripped from a response whose only signature was on the Assertion.
    let st = s.start(&b, "").await;
    let p = s.params(Some(&st.request_id), now);
    let signed = sign_element(&build_response(&p), &p.assertion_id, idp_key(), SigAlg::RsaSha256);
    let start = signed.find("<ds:Signature").unwrap();
    let end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let stripped = format!("{}{}", &signed[..start], &signed[end..]);
    assert_refused(&s, s.post_acs(&b, &stripped).await, 403, "unsigned").await;

    // Comment injection in the NameID (signed as such): fail closed, never "alice@example.com".
    let st = s.start(&b, "").await;
    let mut p = s.params(Some(&st.request_id), now);
    p.name_id = "alice@example.com.evil.test".into();
    let with_comment = s.signed(&p).replace("alice@example.com.evil.test", "alice@example.com<!---->.evil.test");
    let r = s.post_acs(&b, &with_comment).await;
    assert_eq!(r.status(), 403);
    assert_eq!(session_email(&s, &b).await, None);

    // HMAC "signed" with the public certificate as the key.
    let st = s.start(&b, "").await;
    let p = s.params(Some(&st.request_id), now);
    let hmac = s.signed(&p).replace(
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256",
    );
    assert_refused(&s, s.post_acs(&b, &hmac).await, 403, "hmac_not_allowed").await;
    assert_eq!(session_email(&s, &b).await, None);
});

db_test!(signature_wrapping_attacks_are_refused, async |backend| {
    let s = SamlSetup::new(backend).await;
    let now = Utc::now();
    let b = browser();
    let evil_assertion = |p: &ResponseParams| {
        let mut evil = p.clone();
        evil.assertion_id = "_evil".into();
        evil.name_id = "admin".into();
        evil.attributes = vec![("http://wso2.org/claims/emailaddress".into(), vec!["admin@example.com".into()])];
        let xml = build_response(&evil);
        let a = xml.find("<saml2:Assertion").unwrap();
        let z = xml.find("</saml2:Assertion>").unwrap() + "</saml2:Assertion>".len();
        xml[a..z].to_string()
    };
    let signed_assertion = |xml: &str| {
        let a = xml.find("<saml2:Assertion").unwrap();
        let z = xml.find("</saml2:Assertion>").unwrap() + "</saml2:Assertion>".len();
        (a, z, xml[a..z].to_string())
    };

    // XSW: the signed assertion moved into Extensions, an evil one in its place.
    let st = s.start(&b, "").await;
    let p = s.params(Some(&st.request_id), now);
    let signed = sign_element(&build_response(&p), &p.assertion_id, idp_key(), SigAlg::RsaSha256);
    let (a, z, genuine) = signed_assertion(&signed);
    let xsw = format!(
        "{}<saml2p:Extensions>{genuine}</saml2p:Extensions>{}{}",
        &signed[..a],
        evil_assertion(&p),
        &signed[z..]
    );
    let r = s.post_acs(&b, &xsw).await;
    assert!(r.status() == 403 || r.status() == 400);
    assert_eq!(session_email(&s, &b).await, None);
    let (_, reason, _) = s.last_event().await;
    assert!(reason.starts_with("assertion_"), "{reason}");

    // Evil assertion as a sibling before / after the signed one.
    for before in [true, false] {
        let st = s.start(&b, "").await;
        let p = s.params(Some(&st.request_id), now);
        let signed = sign_element(&build_response(&p), &p.assertion_id, idp_key(), SigAlg::RsaSha256);
        let (a, z, genuine) = signed_assertion(&signed);
        let both = if before {
            format!("{}{genuine}", evil_assertion(&p))
        } else {
            format!("{genuine}{}", evil_assertion(&p))
        };
        let xml = format!("{}{both}{}", &signed[..a], &signed[z..]);
        assert_refused(&s, s.post_acs(&b, &xml).await, 403, "assertion_count").await;
    }

    // Evil assertion wrapping the signed one in Advice.
    let st = s.start(&b, "").await;
    let p = s.params(Some(&st.request_id), now);
    let signed = sign_element(&build_response(&p), &p.assertion_id, idp_key(), SigAlg::RsaSha256);
    let (a, z, genuine) = signed_assertion(&signed);
    let evil = evil_assertion(&p)
        .replace("</saml2:Assertion>", &format!("<saml2:Advice>{genuine}</saml2:Advice></saml2:Assertion>"));
    let xml = format!("{}{evil}{}", &signed[..a], &signed[z..]);
    let r = s.post_acs(&b, &xml).await;
    assert_eq!(r.status(), 403);
    assert_eq!(session_email(&s, &b).await, None);

    // Evil assertion reusing the signed one's ID (duplicate IDs).
    let st = s.start(&b, "").await;
    let p = s.params(Some(&st.request_id), now);
    let signed = sign_element(&build_response(&p), &p.assertion_id, idp_key(), SigAlg::RsaSha256);
    let (a, _, _) = signed_assertion(&signed);
    let dup = evil_assertion(&p).replace("_evil", &p.assertion_id);
    let xml = format!("{}<saml2p:Extensions>{dup}</saml2p:Extensions>{}", &signed[..a], &signed[a..]);
    let r = s.post_acs(&b, &xml).await;
    assert_eq!(r.status(), 403);
    assert_eq!(session_email(&s, &b).await, None);

    // A signed Response wrapped by an evil one.
    let st = s.start(&b, "").await;
    let p = s.params(Some(&st.request_id), now);
    let signed = s.signed(&p);
    let inner =
        signed.trim_start_matches(|c| c != '<').split_once("?>").map(|(_, r)| r.trim()).unwrap_or(&signed).to_string();
    let mut evil = p.clone();
    evil.response_id = "_evil_response".into();
    let outer = build_response(&evil);
    let r_end = outer.find("<saml2:Issuer").unwrap();
    let wrapped = format!(
        "{}<saml2p:Extensions>{inner}</saml2p:Extensions>{}{}",
        &outer[..r_end],
        evil_assertion(&p),
        &outer[r_end..].split_once("<saml2:Assertion").map(|(h, _)| h).unwrap()
    );
    let r = s.post_acs(&b, &format!("{wrapped}</saml2p:Response>")).await;
    assert!(r.status() == 403 || r.status() == 400, "{}", r.status());
    assert_eq!(session_email(&s, &b).await, None);
});

db_test!(conditions_are_enforced, async |backend| {
    let s = SamlSetup::new(backend).await;
    let now = Utc::now();
    let b = browser();
    type Edit = fn(&mut ResponseParams, &SamlSetup);
    let cases: Vec<(Edit, &str)> = vec![
        (|p, _| p.audience = "https://other-sp.example.com/metadata".into(), "audience_mismatch"),
        (|p, _| p.recipient = "https://evil.example.com/acs".into(), "recipient_mismatch"),
        (|p, _| p.destination = "https://evil.example.com/acs".into(), "destination_mismatch"),
        (|p, _| p.issuer = "https://other-idp.example.com".into(), "issuer_mismatch"),
        (
            |p, _| {
                p.not_on_or_after = Utc::now() - Duration::minutes(10);
            },
            "expired",
        ),
        (
            |p, _| {
                p.issue_instant = Utc::now() + Duration::minutes(30);
                p.not_before = Utc::now() + Duration::minutes(30);
                p.not_on_or_after = Utc::now() + Duration::minutes(40);
            },
            "not_yet_valid",
        ),
        (|p, _| p.issue_instant = Utc::now() - Duration::minutes(20), "expired"),
        (|p, _| p.status_code = "urn:oasis:names:tc:SAML:2.0:status:Responder".into(), "status_not_success"),
        (
            |p, _| p.attributes = vec![("http://wso2.org/claims/givenname".into(), vec!["Alice".into()])],
            "email_missing",
        ),
    ];
    for (edit, code) in cases {
        let st = s.start(&b, "").await;
        let mut p = s.params(Some(&st.request_id), now);
        edit(&mut p, &s);
        assert_refused(&s, s.post_acs(&b, &s.signed(&p)).await, 403, code).await;
    }

    // A missing AudienceRestriction (samael would accept it).
    let st = s.start(&b, "").await;
    let p = s.params(Some(&st.request_id), now);
    let xml = build_response(&p);
    let a = xml.find("<saml2:AudienceRestriction>").unwrap();
    let z = xml.find("</saml2:AudienceRestriction>").unwrap() + "</saml2:AudienceRestriction>".len();
    let no_audience = format!("{}{}", &xml[..a], &xml[z..]);
    assert_refused(
        &s,
        s.post_acs(&b, &sign_both(&no_audience, &p, idp_key(), SigAlg::RsaSha256)).await,
        403,
        "audience_missing",
    )
    .await;

    // The email-missing event names the attribute it expected and those the IdP sent.
    let st = s.start(&b, "").await;
    let mut p = s.params(Some(&st.request_id), now);
    p.attributes = vec![("http://wso2.org/claims/givenname".into(), vec!["Alice".into()])];
    assert_refused(&s, s.post_acs(&b, &s.signed(&p)).await, 403, "email_missing").await;
    let (_, _, details) = s.last_event().await;
    let details: serde_json::Value = serde_json::from_str(&details).unwrap();
    assert!(
        details["expected_attribute"].as_str().unwrap().contains("http://wso2.org/claims/emailaddress"),
        "{details}"
    );
    assert_eq!(details["attributes"], serde_json::json!(["http://wso2.org/claims/givenname"]));
});

db_test!(in_response_to_and_replay_are_enforced, async |backend| {
    let s = SamlSetup::new(backend).await;
    let now = Utc::now();

    // A response to a request nobody made.
    let b = browser();
    s.start(&b, "").await;
    let p = s.params(Some("_0123456789abcdef0123456789abcdef01234567"), now);
    assert_refused(&s, s.post_acs(&b, &s.signed(&p)).await, 403, "in_response_to_mismatch").await;

    // A response to a request started in another browser (login CSRF / session fixation).
    let victim = browser();
    let attacker = browser();
    let st = s.start(&attacker, "").await;
    s.start(&victim, "").await;
    let p = s.params(Some(&st.request_id), now);
    assert_refused(&s, s.post_acs(&victim, &s.signed(&p)).await, 403, "in_response_to_mismatch").await;

    // Replay of a used response in the same browser.
    let b = browser();
    let st = s.start(&b, "").await;
    let p = s.params(Some(&st.request_id), now);
    let xml = s.signed(&p);
    assert_eq!(s.post_acs(&b, &xml).await.status(), 303);
    let again = s.post_acs(&b, &xml).await;
    assert_eq!(again.status(), 403);
});

db_test!(unsolicited_responses_follow_the_idp_setting_and_replays_fail_across_instances, async |backend: Backend| {
    let s = SamlSetup::new(backend.clone()).await;
    let b = browser();
    let p = s.params(None, Utc::now());
    assert_refused(&s, s.post_acs(&b, &s.signed(&p)).await, 403, "unsolicited_not_allowed").await;

    let mut idp = s.idp.clone();
    idp.settings.allow_idp_initiated = true;
    s.app.store.save_idp(&idp, Utc::now() + Duration::seconds(1)).await.unwrap();
    let idp = s.app.store.find_idp(&s.tenant_id, &idp.id).await.unwrap().unwrap();
    assert!(idp.settings.allow_idp_initiated);
    let p = s.params(None, Utc::now());
    let xml = s.signed(&p);
    let r = s.post_acs(&b, &xml).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());

    // The same assertion through a second instance sharing the database: a replay.
    let second = s.app.restart_with(|_| {}).await;
    let r = browser()
        .post(second.url(&format!("/t/{}/saml/acs", s.public_id)))
        .form(&[("SAMLResponse", STANDARD.encode(&xml))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (_, reason, _) = s.last_event().await;
    assert_eq!(reason, "replay");
});

db_test!(hostile_xml_is_refused_before_libxmlsec1, async |backend| {
    let s = SamlSetup::new(backend).await;
    let now = Utc::now();
    let b = browser();

    // DOCTYPE with an external entity, and billion laughs.
    let st = s.start(&b, "").await;
    let p = s.params(Some(&st.request_id), now);
    let xxe = s.signed(&p).replacen(
        "<saml2p:Response",
        "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><saml2p:Response",
        1,
    );
    assert_refused(&s, s.post_acs(&b, &xxe).await, 403, "doctype").await;
    let laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]><samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">&lol2;</samlp:Response>";
    assert_refused(&s, s.post_acs(&b, laughs).await, 403, "doctype").await;

    // An external Reference URI must never be fetched (pre-auth SSRF through libxmlsec1).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let st = s.start(&b, "").await;
    let p = s.params(Some(&st.request_id), now);
    let ssrf = build_response(&p).replacen(
        "<saml2p:Status>",
        &format!("<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/><ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/><ds:Reference URI=\"http://127.0.0.1:{port}/steal\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature><saml2p:Status>"),
        1,
    );
    assert_refused(&s, s.post_acs(&b, &ssrf).await, 403, "reference_uri").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(listener.accept().is_err(), "nothing connected to the loopback listener");

    // XPath and XSLT transforms.
    for transform in ["http://www.w3.org/TR/1999/REC-xpath-19991116", "http://www.w3.org/TR/1999/REC-xslt-19991116"] {
        let st = s.start(&b, "").await;
        let p = s.params(Some(&st.request_id), now);
        let xml = s.signed(&p).replacen(
            "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>",
            &format!("<ds:Transform Algorithm=\"{transform}\"/>"),
            1,
        );
        assert_refused(&s, s.post_acs(&b, &xml).await, 403, "transform_not_allowed").await;
    }

    // Encrypted assertions are refused with a message saying what to change.
    let st = s.start(&b, "").await;
    let p = s.params(Some(&st.request_id), now);
    let xml = build_response(&p);
    let a = xml.find("<saml2:Assertion").unwrap();
    let z = xml.find("</saml2:Assertion>").unwrap() + "</saml2:Assertion>".len();
    let encrypted = format!(
        "{}<saml2:EncryptedAssertion xmlns:saml2=\"urn:oasis:names:tc:SAML:2.0:assertion\"><xenc:EncryptedData xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\"/></saml2:EncryptedAssertion>{}",
        &xml[..a],
        &xml[z..]
    );
    let r = s.post_acs(&b, &encrypted).await;
    assert_eq!(r.status(), 403);
    let (_, reason, _) = s.last_event().await;
    assert_eq!(reason, "encrypted_assertion");
    let msg = s.app.db.rows("SELECT message FROM login_events ORDER BY seq DESC LIMIT 1").await;
    assert!(msg[0][0].to_lowercase().contains("encryption"), "{}", msg[0][0]);
});

db_test!(malformed_posts_get_a_clear_400, async |backend| {
    let s = SamlSetup::new(backend).await;
    let b = browser();
    assert_refused(&s, s.post_acs_raw(&b, "").await, 400, "empty").await;
    assert_refused(&s, s.post_acs_raw(&b, "%%%not base64%%%").await, 400, "bad_base64").await;
    assert_refused(&s, s.post_acs_raw(&b, &STANDARD.encode("<not xml")).await, 400, "malformed_xml").await;
    let r = b
        .post(s.t("/saml/acs"))
        .body("RelayState=x")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Oversize.
    let big = "A".repeat(600 * 1024);
    let r = b.post(s.t("/saml/acs")).form(&[("SAMLResponse", big.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let (_, reason, _) = s.last_event().await;
    assert_eq!(reason, "too_large");
    // Deeply nested XML does not crash the process.
    let deep = format!("{}{}", "<a>".repeat(20_000), "</a>".repeat(20_000));
    assert_refused(&s, s.post_acs(&b, &deep).await, 400, "too_deep").await;
    assert_eq!(b.get(s.app.url("/healthz")).send().await.unwrap().status(), 200);
});

db_test!(sha1_follows_the_idp_setting, async |backend: Backend| {
    let s = SamlSetup::new(backend.clone()).await;
    let b = browser();
    let st = s.start(&b, "").await;
    let p = s.params(Some(&st.request_id), Utc::now());
    let sha1 = sign_both(&build_response(&p), &p, idp_key(), SigAlg::RsaSha1);
    assert_refused(&s, s.post_acs(&b, &sha1).await, 403, "sha1_not_allowed").await;
    let msg = s.app.db.rows("SELECT message FROM login_events ORDER BY seq DESC LIMIT 1").await;
    assert!(msg[0][0].contains("SHA-1"), "{}", msg[0][0]);

    let allowed = SamlSetup::with_settings(backend, IdpSettings { allow_sha1: true, ..Default::default() }).await;
    let st = allowed.start(&b, "").await;
    let p = allowed.params(Some(&st.request_id), Utc::now());
    let sha1 = sign_both(&build_response(&p), &p, idp_key(), SigAlg::RsaSha1);
    assert_eq!(allowed.post_acs(&b, &sha1).await.status(), 303);
});

db_test!(return_targets_must_stay_on_the_tenant, async |backend| {
    let s = SamlSetup::new(backend).await;
    let b = browser();
    for bad in [
        "https://evil.example.com/",
        "//evil.example.com/",
        "/t/other-tenant-id00/",
        "/\\evil.example.com",
        "/admin/get-started",
    ] {
        let q: String = url::form_urlencoded::byte_serialize(bad.as_bytes()).collect();
        let r = b.get(s.t(&format!("/login?idp={}&return_to={q}", s.idp.id))).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    // A good one is where the customer lands after signing in.
    let target = format!("/t/{}/requests?x=1", s.public_id);
    let q: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
    let st = s.start(&b, &format!("&return_to={q}")).await;
    let p = s.params(Some(&st.request_id), Utc::now());
    let r = s.post_acs(&b, &s.signed(&p)).await;
    assert_eq!(r.headers()["location"], target.as_str());
});

db_test!(test_mode_reports_without_creating_a_session, async |backend| {
    let s = SamlSetup::new(backend).await;
    let b = browser();
    let st = s.start(&b, "&test=1").await;
    assert!(st.request_xml.contains("ForceAuthn=\"true\""));
    let p = s.params(Some(&st.request_id), Utc::now());
    let r = s.post_acs(&b, &s.signed(&p)).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("set-cookie").is_none());
    let body = r.text().await.unwrap();
    for expected in [
        "it works",
        "alice",
        "http://wso2.org/claims/givenname",
        "Liddell",
        "rsa-sha256",
        &certificate_of(idp_key()).fingerprint_sha256,
    ] {
        assert!(body.contains(expected), "{expected} in {body}");
    }
    assert_eq!(s.last_event().await.0, "test_success");
    assert_eq!(b.get(s.t("/session")).send().await.unwrap().status(), 401);

    // A failing test shows the precise reason.
    let st = s.start(&b, "&test=1").await;
    let mut p = s.params(Some(&st.request_id), Utc::now());
    p.audience = "https://wrong.example.com".into();
    let r = s.post_acs(&b, &s.signed(&p)).await;
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(body.contains("audience_mismatch") && body.contains("https://wrong.example.com"), "{body}");
    assert_eq!(s.last_event().await.0, "test_failure");
});

db_test!(sessions_and_responses_stay_within_their_tenant, async |backend| {
    let s = SamlSetup::new(backend).await;
    let b = browser();
    let r = s.sign_in(&b).await;
    assert_eq!(r.status(), 303);
    let session_cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    assert!(session_cookie.starts_with("jsm_sso_session="));
    // A second tenant on the same service.
    let other_site = s.app.jira.site("globex");
    s.app.installed(&other_site).await;
    let other = s.app.db.rows(&format!("SELECT t.public_id FROM tenants t JOIN connect_installations c ON c.tenant_id = t.id WHERE c.client_key = '{}'", other_site.client_key)).await[0][0].clone();
    // The session cookie is path-scoped; sent explicitly to the other tenant, it is still refused there
    // while it works at its own tenant.
    assert_eq!(b.get(s.t("/session")).send().await.unwrap().status(), 200);
    let r = reqwest::Client::new()
        .get(s.app.url(&format!("/t/{other}/session")))
        .header("Cookie", session_cookie.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A response for tenant A posted to tenant B's ACS is refused (B has no such IdP or request).
    let st = s.start(&b, "").await;
    let p = s.params(Some(&st.request_id), Utc::now());
    let r = b
        .post(s.app.url(&format!("/t/{other}/saml/acs")))
        .form(&[("SAMLResponse", STANDARD.encode(s.signed(&p)))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Unknown tenants are a plain 404.
    assert_eq!(b.get(s.app.url("/t/AAAAAAAAAAAAAAAA/login")).send().await.unwrap().status(), 404);
});

db_test!(sp_metadata_is_published, async |backend| {
    let s = SamlSetup::new(backend).await;
    let r = s.app.http.get(s.t("/saml/metadata")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/samlmetadata+xml");
    let xml = r.text().await.unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.attribute("entityID"), Some(s.entity_id().as_str()));
    assert!(root.attribute("validUntil").is_none(), "no short validUntil");
    let sp = root.children().find(|n| n.has_tag_name("SPSSODescriptor")).unwrap();
    assert_eq!(sp.attribute("AuthnRequestsSigned"), Some("true"));
    assert_eq!(sp.attribute("WantAssertionsSigned"), Some("true"));
    let acs = sp.children().find(|n| n.has_tag_name("AssertionConsumerService")).unwrap();
    assert_eq!(acs.attribute("Location"), Some(s.acs_url().as_str()));
    assert!(acs.attribute("Binding").unwrap().ends_with("HTTP-POST"));
    assert_eq!(sp.children().filter(|n| n.has_tag_name("KeyDescriptor")).count(), 1);
    assert!(sp.children().any(|n| n.has_tag_name("NameIDFormat")));
    let slo: Vec<_> = sp
        .children()
        .filter(|n| n.has_tag_name("SingleLogoutService"))
        .filter_map(|n| n.attribute("Binding"))
        .collect();
    assert!(slo.iter().any(|b| b.ends_with("HTTP-Redirect")) && slo.iter().any(|b| b.ends_with("HTTP-POST")));
    // The same key is served every time (created once).
    let again = s.app.http.get(s.t("/saml/metadata")).send().await.unwrap().text().await.unwrap();
    assert_eq!(xml, again);
});

db_test!(an_idp_with_only_http_post_gets_a_signed_authn_request_form, async |backend| {
    let s = SamlSetup::new(backend).await;
    let mut idp = s.idp.clone();
    idp.sso = jsm_sso::saml::idp::Endpoint {
        binding: jsm_sso::saml::idp::Binding::HttpPost,
        location: "https://idp.example.test/saml/post?tenant=a&b=1".into(),
    };
    s.app.store.save_idp(&idp, Utc::now() + Duration::seconds(1)).await.unwrap();
    let b = browser();
    let r = b.get(s.t(&format!("/login?idp={}", idp.id))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("form-action https://idp.example.test"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains("action=\"https://idp.example.test/saml/post?tenant=a&#38;b=1\""), "{html}");
    let value = html.split("name=\"SAMLRequest\" value=\"").nth(1).unwrap().split('"').next().unwrap();
    let xml = String::from_utf8(STANDARD.decode(value).unwrap()).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "AuthnRequest");
    assert_eq!(root.attribute("Destination"), Some("https://idp.example.test/saml/post?tenant=a&b=1"));
    // Enveloped signature right after Issuer, verifiable with the certificate the SP metadata publishes.
    let children: Vec<_> = root.children().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
    assert_eq!(&children[..2], &["Issuer", "Signature"]);
    let md = s.app.http.get(s.t("/saml/metadata")).send().await.unwrap().text().await.unwrap();
    let cert_b64 = md.split("<ds:X509Certificate>").nth(1).unwrap().split('<').next().unwrap();
    let cert = samael::crypto::CertificateDer::from(STANDARD.decode(cert_b64).unwrap());
    use samael::crypto::CryptoProvider;
    assert!(samael::crypto::XmlSec::verify_signed_xml(xml.as_bytes(), &cert, Some("ID")).is_ok());
    let tampered = xml.replace(&s.acs_url(), "https://evil.example.com/acs");
    assert!(samael::crypto::XmlSec::verify_signed_xml(tampered.as_bytes(), &cert, Some("ID")).is_err());
});

db_test!(cookies_are_secure_and_cross_site_capable_behind_https, async |backend| {
    let s = SamlSetup::with_service(backend, |c| {
        c.base_url = jsm_sso::config::BaseUrl::parse("https://sso.example.com").unwrap();
    })
    .await;
    let b = browser();
    let r = b.get(s.t(&format!("/login?idp={}", s.idp.id))).send().await.unwrap();
    assert_eq!(r.status(), 303);
    // The browser handle travels on the IdP's cross-site POST to the ACS: SameSite=None, so Secure too.
    let handle = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(handle.starts_with("jsm_sso_browser="), "{handle}");
    for flag in ["HttpOnly", "Secure", "SameSite=None", &format!("Path=/t/{}", s.public_id)] {
        assert!(handle.contains(flag), "{flag} in {handle}");
    }
    // The session cookie is Secure and SameSite=Lax.
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let raw_query = location.split_once('?').unwrap().1;
    let request =
        jsm_sso::saml::redirect::decode_redirect_query(raw_query, &[s.sp_public_key().await], true, false).unwrap();
    let request_id =
        roxmltree::Document::parse(&request.xml).unwrap().root_element().attribute("ID").unwrap().to_string();
    let p = s.params(Some(&request_id), Utc::now());
    let r = b
        .post(s.t("/saml/acs"))
        .header("Cookie", handle.split(';').next().unwrap())
        .form(&[("SAMLResponse", STANDARD.encode(s.signed(&p)))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let session = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["jsm_sso_session=", "HttpOnly", "Secure", "SameSite=Lax"] {
        assert!(session.contains(flag), "{flag} in {session}");
    }
    assert!(r.headers()["strict-transport-security"].to_str().unwrap().contains("max-age=31536000"));
});
