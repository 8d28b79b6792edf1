//! End to end against a real SAML IdP (pysaml2, tests/idp/idp.py) on loopback: the admin imports its
//! metadata through the admin API, a customer signs in SP-initiated, and signs out (SP- and
//! IdP-initiated, including WSO2's back-channel form).

use crate::db_test;
use crate::helpers::real_idp::{BackChannel, RealIdp, RealIdpOptions, SignAlg};
use crate::helpers::saml::browser;
use crate::helpers::*;

const ADMIN: &str = "557058:admin";

struct E2e {
    app: TestApp,
    idp: RealIdp,
    public_id: String,
    idp_id: String,
}

async fn setup(backend: Backend, options: RealIdpOptions, settings: serde_json::Value) -> E2e {
    let app = TestApp::spawn(backend).await;
    app.jira.make_admin(ADMIN);
    let site = app.jira.site("acme");
    app.installed(&site).await;
    let tenant: serde_json::Value = app.api_get(&site, "/api/v1/tenant", ADMIN).await.json().await.unwrap();
    let public_id = tenant["public_id"].as_str().unwrap().to_string();
    let sp_metadata = app.get(&format!("/t/{public_id}/saml/metadata")).await.text().await.unwrap();
    let idp = RealIdp::start(&sp_metadata, options).await;

    // The admin adds the IdP from its metadata, through the admin API.
    let token = context_token(&site, ADMIN);
    let r = app
        .http
        .post(app.url("/api/v1/idps"))
        .header("Authorization", format!("JWT {token}"))
        .json(&serde_json::json!({ "name": "Corporate IdP", "metadata_xml": idp.metadata_xml, "settings": settings }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let created: serde_json::Value = r.json().await.unwrap();
    let idp_id = created["id"].as_str().unwrap().to_string();
    E2e { app, idp, public_id, idp_id }
}

impl E2e {
    fn t(&self, path: &str) -> String {
        self.app.url(&format!("/t/{}{path}", self.public_id))
    }

    /// Signs `user` in through the IdP's login form; returns the ACS answer.
    async fn sign_in(&self, b: &reqwest::Client, user: &str, password: &str) -> reqwest::Response {
        let r = b.get(self.t(&format!("/login?idp={}", self.idp_id))).send().await.unwrap();
        assert_eq!(r.status(), 303);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let (acs, saml_response, relay_state) = self.idp.sso_login_form_submit(&location, user, password).await;
        assert_eq!(acs, format!("{}/t/{}/saml/acs", self.app.base_url(), self.public_id));
        let mut form = vec![("SAMLResponse", saml_response)];
        if let Some(rs) = relay_state {
            form.push(("RelayState", rs));
        }
        b.post(acs).form(&form).send().await.unwrap()
    }

    async fn session(&self, b: &reqwest::Client) -> Option<serde_json::Value> {
        let r = b.get(self.t("/session")).send().await.unwrap();
        if r.status() != 200 {
            return None;
        }
        Some(r.json().await.unwrap())
    }
}

db_test!(sp_initiated_login_and_logout_with_a_real_idp, async |backend| {
    let e = setup(backend, RealIdpOptions::default(), serde_json::json!({})).await;
    let b = browser();
    let r = e.sign_in(&b, "alice", "alice-pw").await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let session = e.session(&b).await.expect("signed in");
    assert_eq!(session["email"], "alice@example.com");
    assert_eq!(session["name_id"], "alice");
    // The IdP verified our signed AuthnRequest (it refuses unsigned ones).
    assert_eq!(e.idp.events("login").await.len(), 1);

    // SP-initiated single logout: our signed LogoutRequest, the IdP's signed LogoutResponse.
    let r = b.get(e.t("/logout")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let to_idp = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to_idp.starts_with(&e.idp.base_url), "{to_idp}");
    assert!(e.session(&b).await.is_none(), "the local session ends at once");
    let back = e.idp.sp_initiated_logout(&to_idp).await.expect("the IdP accepted our LogoutRequest");
    let r = b.get(&back).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
});

db_test!(idp_initiated_back_channel_logout_ends_the_matching_session, async |backend| {
    let e = setup(backend, RealIdpOptions::default(), serde_json::json!({})).await;
    for binding in [BackChannel::Soap, BackChannel::Wso2Form] {
        let alice = browser();
        let bob = browser();
        assert_eq!(e.sign_in(&alice, "alice", "alice-pw").await.status(), 303);
        assert_eq!(e.sign_in(&bob, "bob", "bob-pw").await.status(), 303);
        let (name_id, session_index) = e.idp.last_session("alice").await.unwrap();
        let report = e.idp.idp_initiated_logout(&name_id, Some(&session_index), binding).await;
        assert_eq!(report["status"], 200, "{binding:?}: {report}");
        assert!(e.session(&alice).await.is_none(), "{binding:?}: alice signed out");
        assert!(e.session(&bob).await.is_some(), "{binding:?}: bob still signed in");
    }
    // An unsigned back-channel LogoutRequest is refused and ends nothing.
    let carol = browser();
    assert_eq!(e.sign_in(&carol, "alice", "alice-pw").await.status(), 303);
    let (name_id, session_index) = e.idp.last_session("alice").await.unwrap();
    let report = e.idp.idp_initiated_logout_with(&name_id, Some(&session_index), BackChannel::Soap, false).await;
    assert_ne!(report["status"], 200, "{report}");
    assert!(e.session(&carol).await.is_some());
});

db_test!(a_sha1_idp_is_refused_until_allowed, async |backend: Backend| {
    let options = RealIdpOptions { sign_alg: SignAlg::RsaSha1, ..Default::default() };
    let e = setup(backend.clone(), options.clone(), serde_json::json!({})).await;
    let b = browser();
    let r = e.sign_in(&b, "alice", "alice-pw").await;
    assert_eq!(r.status(), 403);
    let reason = e.app.db.rows("SELECT reason_code FROM login_events ORDER BY seq DESC LIMIT 1").await;
    assert_eq!(reason[0][0], "sha1_not_allowed");

    let allowed = setup(backend, options, serde_json::json!({ "allow_sha1": true })).await;
    assert_eq!(allowed.sign_in(&b, "alice", "alice-pw").await.status(), 303);
});
