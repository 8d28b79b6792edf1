//! A tenant with one IdP whose key the test holds, and a browser that signs in through it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use jsm_sso::saml::idp::{Binding, Endpoint, Idp, IdpCertificate, IdpId, IdpSettings, IdpSource};
use jsm_sso::saml::redirect::decode_redirect_query;
use jsm_sso::tenants::TenantId;

use super::saml_signer::{ResponseParams, SigAlg, TestKey, build_response, make_test_key, sign_element};
use super::{Backend, Site, TestApp};

pub const IDP_ENTITY: &str = "https://idp.example.test/idp";
pub const IDP_SSO: &str = "https://idp.example.test/sso";

pub fn idp_key() -> &'static TestKey {
    static KEY: std::sync::OnceLock<TestKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| make_test_key("idp.example.test"))
}

pub fn attacker_key() -> &'static TestKey {
    static KEY: std::sync::OnceLock<TestKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| make_test_key("idp.example.test"))
}

pub fn certificate_of(key: &TestKey) -> IdpCertificate {
    let parsed = jsm_sso::saml::metadata::parse_certificate(&key.cert_pem, Utc::now()).unwrap().0;
    IdpCertificate::from(&parsed)
}

pub fn new_idp(tenant: &TenantId, entity_id: &str, keys: &[&TestKey], settings: IdpSettings) -> Idp {
    let now = Utc::now();
    Idp {
        id: IdpId::generate(),
        tenant_id: tenant.clone(),
        name: "Test IdP".into(),
        enabled: true,
        entity_id: entity_id.into(),
        sso: Endpoint { binding: Binding::HttpRedirect, location: IDP_SSO.into() },
        slo: None,
        source: IdpSource::Manual,
        metadata_url: None,
        settings,
        warnings: vec![],
        certificates: keys.iter().map(|k| certificate_of(k)).collect(),
        metadata_valid_until: None,
        next_refresh_at: None,
        last_refresh_at: None,
        last_refresh_status: None,
        last_refresh_error: None,
        last_login_at: None,
        created_at: now,
        updated_at: now,
    }
}

pub struct SamlSetup {
    pub app: TestApp,
    /// The Jira site (for admin-API calls about this tenant).
    #[allow(dead_code)]
    pub site: Site,
    pub tenant_id: TenantId,
    pub public_id: String,
    pub idp: Idp,
}

/// A browser: its own cookie jar, no automatic redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A started sign-in: the AuthnRequest's ID as the IdP received it.
pub struct Started {
    pub request_id: String,
    pub request_xml: String,
    pub location: String,
}

impl SamlSetup {
    pub async fn new(backend: Backend) -> SamlSetup {
        Self::with_settings(backend, IdpSettings::default()).await
    }

    pub async fn with_settings(backend: Backend, settings: IdpSettings) -> SamlSetup {
        Self::build(TestApp::spawn(backend).await, settings).await
    }

    /// With the service's settings adjusted (e.g. an https base URL).
    pub async fn with_service(backend: Backend, adjust: impl FnOnce(&mut jsm_sso::config::Settings)) -> SamlSetup {
        Self::build(TestApp::spawn_with(backend, adjust).await, IdpSettings::default()).await
    }

    async fn build(app: TestApp, settings: IdpSettings) -> SamlSetup {
        let site = app.jira.site("acme");
        app.installed(&site).await;
        let row = app.db.rows(&format!("SELECT t.id, t.public_id FROM tenants t JOIN connect_installations c ON c.tenant_id = t.id WHERE c.client_key = '{}'", site.client_key)).await;
        let tenant_id = TenantId::from_stored(row[0][0].clone());
        let idp = new_idp(&tenant_id, IDP_ENTITY, &[idp_key()], settings);
        app.store.save_idp(&idp, Utc::now()).await.unwrap();
        SamlSetup { app, site, tenant_id, public_id: row[0][1].clone(), idp }
    }

    pub fn t(&self, path: &str) -> String {
        self.app.url(&format!("/t/{}{path}", self.public_id))
    }

    pub fn acs_url(&self) -> String {
        format!("{}/t/{}/saml/acs", self.app.base_url(), self.public_id)
    }

    pub fn entity_id(&self) -> String {
        format!("{}/t/{}/saml/metadata", self.app.base_url(), self.public_id)
    }

    /// Starts a sign-in in `browser` and decodes the AuthnRequest, verifying its signature with the
    /// SP certificate the metadata publishes.
    pub async fn start(&self, browser: &reqwest::Client, query: &str) -> Started {
        let r = browser.get(self.t(&format!("/login?idp={}{query}", self.idp.id))).send().await.unwrap();
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let raw_query = location.split_once('?').unwrap().1;
        let sp_key = self.sp_public_key().await;
        let message =
            decode_redirect_query(raw_query, &[sp_key], true, false).expect("AuthnRequest is signed by the SP");
        let doc = roxmltree::Document::parse(&message.xml).unwrap();
        Started {
            request_id: doc.root_element().attribute("ID").unwrap().to_string(),
            request_xml: message.xml.clone(),
            location,
        }
    }

    pub async fn sp_public_key(&self) -> openssl::pkey::PKey<openssl::pkey::Public> {
        let md = self.app.http.get(self.t("/saml/metadata")).send().await.unwrap().text().await.unwrap();
        let b64 = md.split("<ds:X509Certificate>").nth(1).unwrap().split('<').next().unwrap();
        let der = STANDARD.decode(b64).unwrap();
        openssl::x509::X509::from_der(&der).unwrap().public_key().unwrap()
    }

    /// A genuine response to `request_id` (None: unsolicited), unsigned.
    pub fn params(&self, request_id: Option<&str>, now: DateTime<Utc>) -> ResponseParams {
        let mut p = ResponseParams::sample(now);
        p.issuer = IDP_ENTITY.into();
        p.destination = self.acs_url();
        p.recipient = self.acs_url();
        p.audience = self.entity_id();
        p.in_response_to = request_id.map(str::to_string);
        p.name_id = "alice".into();
        p.attributes = vec![
            ("http://wso2.org/claims/emailaddress".into(), vec!["Alice@Example.com".into()]),
            ("http://wso2.org/claims/givenname".into(), vec!["Alice".into()]),
            ("http://wso2.org/claims/lastname".into(), vec!["Liddell".into()]),
        ];
        p.response_id = format!("_r{}", uuid::Uuid::new_v4().simple());
        p.assertion_id = format!("_a{}", uuid::Uuid::new_v4().simple());
        p
    }

    /// Response and Assertion both signed with the IdP key (WSO2's usual shape).
    pub fn signed(&self, p: &ResponseParams) -> String {
        sign_both(&build_response(p), p, idp_key(), SigAlg::RsaSha256)
    }

    pub async fn post_acs(&self, browser: &reqwest::Client, xml: &str) -> reqwest::Response {
        self.post_acs_raw(browser, &STANDARD.encode(xml)).await
    }

    pub async fn post_acs_raw(&self, browser: &reqwest::Client, saml_response: &str) -> reqwest::Response {
        browser
            .post(self.t("/saml/acs"))
            .form(&[("SAMLResponse", saml_response), ("RelayState", "opaque")])
            .send()
            .await
            .unwrap()
    }

    /// The reason code of the newest login event.
    pub async fn last_event(&self) -> (String, String, String) {
        let rows = self
            .app
            .db
            .rows("SELECT outcome, COALESCE(reason_code, ''), details FROM login_events ORDER BY seq DESC LIMIT 1")
            .await;
        let r = rows.first().expect("a login event was recorded");
        (r[0].clone(), r[1].clone(), r[2].clone())
    }

    /// Signs in `browser` end to end (start, genuine response, ACS).
    pub async fn sign_in(&self, browser: &reqwest::Client) -> reqwest::Response {
        let started = self.start(browser, "").await;
        let p = self.params(Some(&started.request_id), Utc::now());
        self.post_acs(browser, &self.signed(&p)).await
    }
}

pub fn sign_both(xml: &str, p: &ResponseParams, key: &TestKey, alg: SigAlg) -> String {
    let xml = sign_element(xml, &p.assertion_id, key, alg);
    sign_element(&xml, &p.response_id, key, alg)
}
