//! The customer helpdesk against a stateful fake JSM: the service account's API token, the portal
//! directory and substitute links, the customer's way in, provisioning, raising and following
//! requests, CSRF and origin checks, tenant isolation, and Jira trouble (429, 503, 401).

use chrono::Utc;
use jsm_sso::saml::idp::IdpSettings;
use jsm_sso::tenants::TenantId;
use reqwest::Method;
use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::fake_jsm::*;
use crate::helpers::saml::*;
use crate::helpers::*;

const ADMIN: &str = "557058:admin";
const AGENT: &str = "557058:agent-not-admin";

// ---------------------------------------------------------------------------------------------------
// Helpers

struct Hd {
    s: SamlSetup,
    jsm: FakeJsm,
}

/// Installs a site served by `jsm` into `app`, with one enabled IdP.
async fn add_tenant(
    app: &TestApp,
    jsm: &FakeJsm,
    name: &str,
    settings: IdpSettings,
) -> (Site, TenantId, String, jsm_sso::saml::idp::Idp) {
    let site = jsm.site(name);
    app.installed(&site).await;
    let row = app
        .db
        .rows(&format!(
            "SELECT t.id, t.public_id FROM tenants t JOIN connect_installations c ON c.tenant_id = t.id WHERE c.client_key = '{}'",
            site.client_key
        ))
        .await;
    let tenant_id = TenantId::from_stored(row[0][0].clone());
    let idp = new_idp(&tenant_id, IDP_ENTITY, &[idp_key()], settings);
    app.store.save_idp(&idp, Utc::now()).await.unwrap();
    (site, tenant_id, row[0][1].clone(), idp)
}

fn same_app(app: &TestApp) -> TestApp {
    TestApp {
        address: app.address.clone(),
        settings: app.settings.clone(),
        store: app.store.clone(),
        jira: app.jira.clone(),
        http: app.http.clone(),
        db: app.db.clone(),
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// How a form post presents its origin.
#[derive(Clone, Copy)]
enum Via {
    Origin,
    Referer,
    FetchMetadata,
    CrossSite,
    OtherOrigin,
    Nothing,
}

impl Hd {
    async fn new(backend: Backend) -> Hd {
        Self::build(backend, IdpSettings::default(), true).await
    }

    async fn build(backend: Backend, settings: IdpSettings, with_token: bool) -> Hd {
        let app = TestApp::spawn(backend).await;
        let jsm = FakeJsm::start().await;
        jsm.make_app_admin(ADMIN);
        let (site, tenant_id, public_id, idp) = add_tenant(&app, &jsm, "acme", settings).await;
        let hd = Hd { s: SamlSetup { app, site, tenant_id, public_id, idp }, jsm };
        if with_token {
            let (status, body) = hd.put_token(SERVICE_EMAIL, SERVICE_TOKEN).await;
            assert_eq!(status, 200, "{body}");
            hd.jsm.clear_calls();
        }
        hd
    }

    fn app(&self) -> &TestApp {
        &self.s.app
    }

    /// A customer-facing path of this tenant (no host).
    fn path(&self, rest: &str) -> String {
        format!("/t/{}{rest}", self.s.public_id)
    }

    fn url(&self, rest: &str) -> String {
        self.s.t(rest)
    }

    async fn api_as(&self, account: &str, method: Method, path: &str, body: Option<&Value>) -> (u16, Value, String) {
        let mut req = self.app().http.request(method, self.app().url(path));
        req = req.header("Authorization", format!("JWT {}", context_token(&self.s.site, account)));
        if let Some(body) = body {
            req = req.json(body);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
    }

    async fn api(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let (s, v, _) = self.api_as(ADMIN, method, path, body).await;
        (s, v)
    }

    async fn put_token(&self, email: &str, token: &str) -> (u16, Value) {
        self.api(Method::PUT, "/api/v1/api-token", Some(&json!({"email": email, "api_token": token}))).await
    }

    /// Signs `browser` in as `email` (given and family name) and lands on `return_to`.
    async fn sign_in_as(
        &self,
        browser: &reqwest::Client,
        email: &str,
        given: &str,
        family: &str,
        return_to: &str,
    ) -> String {
        let started = self.s.start(browser, &format!("&return_to={}", enc(return_to))).await;
        let mut p = self.s.params(Some(&started.request_id), Utc::now());
        p.name_id = email.split('@').next().unwrap().to_string();
        p.attributes = vec![
            ("http://wso2.org/claims/emailaddress".into(), vec![email.into()]),
            ("http://wso2.org/claims/givenname".into(), vec![given.into()]),
            ("http://wso2.org/claims/lastname".into(), vec![family.into()]),
        ];
        let r = self.s.post_acs(browser, &self.s.signed(&p)).await;
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
        assert_eq!(r.headers()["location"], return_to);
        let cookie = r.headers()["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().trim_start_matches("jsm_sso_session=").to_string()
    }

    async fn alice(&self, browser: &reqwest::Client) -> String {
        self.sign_in_as(browser, "Alice@Example.com", "Alice", "Liddell", &self.path("/portal/3")).await
    }

    async fn get(&self, browser: &reqwest::Client, rest: &str) -> (u16, String) {
        let r = browser.get(self.url(rest)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    async fn post(&self, browser: &reqwest::Client, rest: &str, form: &[(&str, &str)], from: Via) -> reqwest::Response {
        let base = self.app().base_url().to_string();
        let mut req = browser.post(self.url(rest)).form(form);
        req = match from {
            Via::Origin => req.header("Origin", base),
            Via::Referer => req.header("Referer", format!("{base}{}", self.path("/portal/3"))),
            Via::FetchMetadata => req.header("Sec-Fetch-Site", "same-origin"),
            Via::CrossSite => req.header("Sec-Fetch-Site", "cross-site").header("Origin", "https://evil.example"),
            Via::OtherOrigin => req.header("Origin", "https://evil.example"),
            Via::Nothing => req,
        };
        req.send().await.unwrap()
    }

    async fn account_of_session(&self) -> Vec<String> {
        self.app()
            .db
            .rows("SELECT COALESCE(account_id, '') FROM customer_sessions ORDER BY created_at")
            .await
            .into_iter()
            .map(|r| r[0].clone())
            .collect()
    }

    async fn events(&self, reason: &str) -> Vec<(String, String)> {
        self.app()
            .db
            .rows(&format!("SELECT outcome, message FROM login_events WHERE reason_code = '{reason}' ORDER BY seq"))
            .await
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect()
    }
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf_token\" value=\"").expect("the form carries a CSRF token") + 25;
    html[at..].split('"').next().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------------
// The service account's API token

db_test!(api_token_is_checked_and_stored_sealed, async |backend| {
    let hd = Hd::build(backend, IdpSettings::default(), false).await;
    let (status, body) = hd.api(Method::GET, "/api/v1/api-token", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("api_token_not_configured")));

    let (status, body) = hd.put_token(SERVICE_EMAIL, SERVICE_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], SERVICE_EMAIL);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["account_id"], SERVICE_ACCOUNT);
    assert!(body["last_checked_at"].as_str().unwrap().ends_with('Z'));
    assert!(!body.to_string().contains(SERVICE_TOKEN));

    // Checked at once, with the new token: who it is, and that it administers Jira.
    let myself = hd.jsm.calls_to("GET", "/rest/api/3/myself");
    assert_eq!(myself.len(), 1);
    let basic =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{SERVICE_EMAIL}:{SERVICE_TOKEN}"));
    assert_eq!(myself[0].authorization.as_deref(), Some(format!("Basic {basic}").as_str()));
    let perms = hd.jsm.calls_to("GET", "/rest/api/3/mypermissions");
    assert_eq!(perms.len(), 1);
    assert_eq!(perms[0].query_param("permissions").as_deref(), Some("ADMINISTER"));

    // GET never returns the token.
    let (status, body, raw) = hd.api_as(ADMIN, Method::GET, "/api/v1/api-token", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["email"], SERVICE_EMAIL);
    assert_eq!(body["status"], "ok");
    assert!(body.get("api_token").is_none() && !raw.contains(SERVICE_TOKEN), "{raw}");

    // Sealed at rest, bound to its row.
    let rows = hd.app().db.rows("SELECT api_token, tenant_id FROM portal_api_tokens").await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0][0].starts_with("v1.") && !rows[0][0].contains(SERVICE_TOKEN), "{}", rows[0][0]);
    assert_eq!(rows[0][1], hd.s.tenant_id.as_str());

    // Master-key rotation re-seals it, and the new instance still uses it.
    let old = match &hd.app().settings.master_key {
        jsm_sso::config::MasterKeySource::Explicit(k) => k.clone(),
        _ => unreachable!(),
    };
    let new = jsm_sso::crypto::MasterKey::generate();
    let report = hd.app().store.rotate_secrets(&jsm_sso::crypto::Keyring::new(new.clone(), vec![old])).await.unwrap();
    assert!(report.resealed >= 1, "{report:?}");
    let resealed = hd.app().db.rows("SELECT api_token FROM portal_api_tokens").await;
    assert_ne!(resealed[0][0], rows[0][0]);
    let restarted = hd.app().restart_with(|s| s.master_key = jsm_sso::config::MasterKeySource::Explicit(new)).await;
    let token = context_token(&hd.s.site, ADMIN);
    let r = restarted
        .http
        .get(restarted.url("/api/v1/portals"))
        .header("Authorization", format!("JWT {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
});

db_test!(api_token_refuses_an_invalid_or_expired_token, async |backend| {
    let hd = Hd::build(backend, IdpSettings::default(), false).await;
    let (status, body) = hd.put_token(SERVICE_EMAIL, "not-the-token").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "api_token_invalid");
    assert!(body["error"]["message"].as_str().unwrap().contains("token invalid or expired"), "{body}");
    assert_eq!(body["error"]["field"], "api_token");
    assert_eq!(hd.jsm.calls_to("GET", "/rest/api/3/myself").len(), 1);
    assert_eq!(hd.app().db.scalar("SELECT COUNT(*) FROM portal_api_tokens").await, 0);
    // Malformed bodies never reach Jira.
    let (status, body) = hd.put_token("not-an-email", SERVICE_TOKEN).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("email")));
    let (status, _) = hd.api(Method::PUT, "/api/v1/api-token", Some(&json!({"email": SERVICE_EMAIL}))).await;
    assert_eq!(status, 400);
    assert_eq!(hd.jsm.calls_to("GET", "/rest/api/3/myself").len(), 1);
});

db_test!(api_token_refuses_an_account_that_is_not_a_jira_admin, async |backend| {
    let hd = Hd::build(backend, IdpSettings::default(), false).await;
    let (status, body) = hd.put_token(AGENT_EMAIL, AGENT_TOKEN).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "not_jira_admin");
    assert!(body["error"]["message"].as_str().unwrap().contains("not a Jira administrator"), "{body}");
    assert_eq!(hd.app().db.scalar("SELECT COUNT(*) FROM portal_api_tokens").await, 0);
    // A good one replaces nothing and is stored; then replacing it with a bad one keeps the good one.
    assert_eq!(hd.put_token(SERVICE_EMAIL, SERVICE_TOKEN).await.0, 200);
    assert_eq!(hd.put_token(AGENT_EMAIL, AGENT_TOKEN).await.0, 422);
    let (_, body) = hd.api(Method::GET, "/api/v1/api-token", None).await;
    assert_eq!(body["email"], SERVICE_EMAIL);
});

db_test!(api_token_can_be_removed_and_is_admin_only, async |backend| {
    let hd = Hd::new(backend).await;
    // Only Jira administrators (checked with Jira on the server).
    let (status, _, raw) = hd.api_as(AGENT, Method::GET, "/api/v1/api-token", None).await;
    assert_eq!(status, 403, "{raw}");
    let (status, _, _) = hd
        .api_as(AGENT, Method::PUT, "/api/v1/api-token", Some(&json!({"email": "x@example.com", "api_token": "t"})))
        .await;
    assert_eq!(status, 403);
    let r = hd.app().http.get(hd.app().url("/api/v1/api-token")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let (status, body) = hd.api(Method::POST, "/api/v1/api-token/test", None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")), "{body}");
    assert_eq!(hd.api(Method::DELETE, "/api/v1/api-token", None).await.0, 204);
    assert_eq!(hd.api(Method::GET, "/api/v1/api-token", None).await.0, 404);
    assert_eq!(hd.api(Method::DELETE, "/api/v1/api-token", None).await.0, 404);
    assert_eq!(hd.app().db.scalar("SELECT COUNT(*) FROM portal_api_tokens").await, 0);
});

// ---------------------------------------------------------------------------------------------------
// Portals and substitute links

db_test!(portals_come_from_request_types_not_desk_ids, async |backend| {
    let hd = Hd::new(backend).await;
    let (status, body) = hd.api(Method::GET, "/api/v1/portals", None).await;
    assert_eq!(status, 200, "{body}");
    let list = body.as_array().unwrap();
    assert_eq!(list.len(), 4, "every page of the desk list: {body}");
    let it = list.iter().find(|d| d["project_key"] == "ITH").unwrap();
    assert_eq!(it["service_desk_id"], "1");
    assert_eq!(it["portal_id"], "3", "the portal id comes from the request types");
    assert_eq!(it["project_name"], "IT Help Desk");
    assert_eq!(it["substitute_link"], format!("{}/t/{}/portal/3", hd.app().base_url(), hd.s.public_id));
    assert_eq!(it["native_portal_url"], format!("{}/help/servicedesk/customer/portal/3", hd.s.site.base_url));
    let fac = list.iter().find(|d| d["project_key"] == "FAC").unwrap();
    assert_eq!((fac["service_desk_id"].as_str(), fac["portal_id"].as_str()), (Some("5"), Some("4")));
    let empty = list.iter().find(|d| d["project_key"] == "EMPTY").unwrap();
    assert!(empty["portal_id"].is_null() && empty["substitute_link"].is_null());

    // isLastPage was followed (page size 2).
    let desk_pages = hd.jsm.calls_to("GET", "/rest/servicedeskapi/servicedesk");
    let starts: Vec<String> = desk_pages.iter().map(|c| c.query_param("start").unwrap()).collect();
    assert_eq!(starts, ["0", "2"]);
    assert_eq!(hd.jsm.calls_to("GET", "/servicedesk/1/requesttype").len(), 2);

    // Cached…
    assert_eq!(hd.api(Method::GET, "/api/v1/portals", None).await.0, 200);
    assert_eq!(hd.jsm.calls_to("GET", "/rest/servicedeskapi/servicedesk").len(), 2);
    // …and refreshable.
    assert_eq!(hd.api(Method::GET, "/api/v1/portals?refresh=1", None).await.0, 200);
    assert_eq!(hd.jsm.calls_to("GET", "/rest/servicedeskapi/servicedesk").len(), 4);
    // All as the service account.
    assert!(hd.jsm.calls().iter().all(|c| c.authorization.as_deref().is_some_and(|a| a.starts_with("Basic "))));
});

db_test!(portals_need_the_service_account, async |backend| {
    let hd = Hd::build(backend, IdpSettings::default(), false).await;
    let (status, body) = hd.api(Method::GET, "/api/v1/portals", None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "api_token_not_configured");
    assert!(hd.jsm.calls_to("GET", "/rest/servicedeskapi/servicedesk").is_empty());
    let r = hd.app().load_page(&hd.s.site, "/admin/substitute-links", ADMIN).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Configure the service account"), "{html}");
});

db_test!(admin_pages_show_the_token_state_and_the_links, async |backend| {
    let hd = Hd::new(backend).await;
    let r = hd.app().load_page(&hd.s.site, "/admin/api-token", ADMIN).await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors http://127.0.0.1:"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains(SERVICE_EMAIL) && html.contains("Working"), "{html}");
    assert!(!html.contains(SERVICE_TOKEN));
    assert!(html.contains("/static/portal/admin.js"));

    let r = hd.app().load_page(&hd.s.site, "/admin/substitute-links", ADMIN).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("/t/{}/portal/3", hd.s.public_id)), "{html}");
    assert!(html.contains("data-copy="), "copy buttons");

    // Not for agents.
    assert_eq!(hd.app().load_page(&hd.s.site, "/admin/api-token", AGENT).await.status(), 403);
    // The script and the stylesheet are served.
    assert_eq!(hd.app().get("/static/portal/admin.js").await.status(), 200);
    assert_eq!(hd.app().get("/static/portal.css").await.status(), 200);
});

// ---------------------------------------------------------------------------------------------------
// The customer's way in

db_test!(a_portal_without_session_goes_to_the_only_idp, async |backend| {
    let hd = Hd::new(backend).await;
    let b = browser();
    let r = b.get(hd.url("/portal/3")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        format!(
            "{}/t/{}/login?idp={}&return_to={}",
            hd.app().base_url(),
            hd.s.public_id,
            hd.s.idp.id,
            enc(&hd.path("/portal/3"))
        )
    );
    // Nothing was asked of Jira for an anonymous visitor.
    assert!(hd.jsm.calls().is_empty());
    // Signing in lands on the portal.
    hd.alice(&b).await;
    let (status, html) = hd.get(&b, "/portal/3").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("IT Help Desk"));
    assert!(html.contains(&format!("/t/{}/logout", hd.s.public_id)), "a logout link");
});

db_test!(several_idps_offer_a_choice_and_route_by_email, async |backend| {
    let hd = Hd::new(backend).await;
    let settings = IdpSettings { email_domains: vec!["globex.test".into()], ..Default::default() };
    let mut other = new_idp(&hd.s.tenant_id, "https://idp.globex.test/", &[idp_key()], settings);
    other.name = "Globex SSO".into();
    hd.app().store.save_idp(&other, Utc::now()).await.unwrap();

    let b = browser();
    let r = b.get(hd.url("/portal/3")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The email form's answer redirects to an IdP: the page's form-action allows the IdPs.
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("form-action 'self' https://idp.example.test"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains("Test IdP") && html.contains("Globex SSO"), "{html}");
    assert!(html.contains("name=\"email\""), "an email box");

    let return_to = enc(&hd.path("/portal/3"));
    let r = b
        .get(hd.url(&format!("/portals/sign-in?email=Jane%40Globex.test&return_to={return_to}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(
        location.contains(&format!("idp={}", other.id)) && location.ends_with(&format!("return_to={return_to}")),
        "{location}"
    );

    let r = b
        .get(hd.url(&format!("/portals/sign-in?email=jane%40unknown.test&return_to={return_to}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("No sign-in is set up for unknown.test"));

    // A foreign return_to is not followed.
    let r = b
        .get(hd.url("/portals/sign-in?email=jane%40globex.test&return_to=https%3A%2F%2Fevil.example%2F"))
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap();
    assert!(location.ends_with(&format!("return_to={}", enc(&hd.path("/portals")))), "{location}");
});

// ---------------------------------------------------------------------------------------------------
// Provisioning

db_test!(first_visit_creates_the_customer_once_and_adds_them_to_the_desk, async |backend| {
    let hd = Hd::new(backend).await;
    let b = browser();
    hd.alice(&b).await;
    let (status, html) = hd.get(&b, "/portal/3").await;
    assert_eq!(status, 200, "{html}");

    // Exact, case-insensitive match among the search results (alice@example.com.au is not her).
    let search = hd.jsm.calls_to("GET", "/rest/api/3/user/search");
    assert_eq!(search[0].query_param("query").as_deref(), Some("alice@example.com"));
    let created = hd.jsm.calls_to("POST", "/rest/servicedeskapi/customer");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].json(), json!({"email": "alice@example.com", "displayName": "Alice Liddell"}));
    let alice = hd.jsm.user_by_email("alice@example.com").unwrap();
    assert_eq!(alice.account_type, "customer");
    let added = hd.jsm.calls_to("POST", "/rest/servicedeskapi/servicedesk/1/customer");
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].json(), json!({"accountIds": [alice.account_id]}));
    assert_eq!(hd.jsm.desk_customers("1"), vec![alice.account_id.clone()]);
    assert_eq!(hd.account_of_session().await, vec![alice.account_id.clone()]);

    // More pages, a new sign-in in another browser: never created again, not re-added today.
    hd.get(&b, "/portal/3").await;
    let b2 = browser();
    hd.alice(&b2).await;
    assert_eq!(hd.get(&b2, "/portal/3").await.0, 200);
    assert_eq!(hd.jsm.calls_to("POST", "/rest/servicedeskapi/customer").len(), 1);
    assert_eq!(hd.jsm.calls_to("POST", "/rest/servicedeskapi/servicedesk/1/customer").len(), 1);
    assert_eq!(hd.account_of_session().await, vec![alice.account_id.clone(), alice.account_id.clone()]);
    // Another portal: added to that desk too.
    assert_eq!(hd.get(&b2, "/portal/7").await.0, 200);
    assert_eq!(hd.jsm.desk_customers("2"), vec![alice.account_id]);
});

db_test!(an_existing_customer_is_found_not_created, async |backend| {
    let hd = Hd::new(backend).await;
    let b = browser();
    hd.sign_in_as(&b, "BOB@example.com", "Bob", "Customer", &hd.path("/portal/3")).await;
    assert_eq!(hd.get(&b, "/portal/3").await.0, 200);
    assert!(hd.jsm.calls_to("POST", "/rest/servicedeskapi/customer").is_empty());
    assert_eq!(hd.account_of_session().await, vec![BOB.to_string()]);
    assert!(hd.events("atlassian_account").await.is_empty());
});

db_test!(an_atlassian_account_is_used_and_flagged, async |backend| {
    let hd = Hd::new(backend).await;
    let b = browser();
    hd.sign_in_as(&b, "carol@example.com", "Carol", "Staff", &hd.path("/portal/3")).await;
    assert_eq!(hd.get(&b, "/portal/3").await.0, 200);
    assert!(hd.jsm.calls_to("POST", "/rest/servicedeskapi/customer").is_empty());
    assert_eq!(hd.account_of_session().await, vec![CAROL.to_string()]);
    let events = hd.events("atlassian_account").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "warning");
    let row = hd.app().db.rows("SELECT email, idp_id FROM login_events WHERE reason_code = 'atlassian_account'").await;
    assert_eq!(row[0], vec!["carol@example.com".to_string(), hd.s.idp.id.to_string()]);
});

db_test!(customer_creation_can_be_turned_off, async |backend| {
    let settings = IdpSettings { create_customers: false, ..Default::default() };
    let hd = Hd::build(backend, settings, true).await;
    let b = browser();
    hd.alice(&b).await;
    let (status, html) = hd.get(&b, "/portal/3").await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("not registered with this helpdesk"), "{html}");
    assert!(hd.jsm.calls_to("POST", "/rest/servicedeskapi/customer").is_empty());
    // At least once (once more if the ACS already tried at sign-in), and as a failure.
    let events = hd.events("customer_not_found").await;
    assert!(!events.is_empty() && events.iter().all(|(outcome, _)| outcome == "failure"), "{events:?}");
    // Existing customers still get in.
    let b2 = browser();
    hd.sign_in_as(&b2, "bob@example.com", "Bob", "Customer", &hd.path("/portal/3")).await;
    assert_eq!(hd.get(&b2, "/portal/3").await.0, 200);
});

db_test!(a_hidden_existing_account_is_found_after_create_refuses, async |backend| {
    let hd = Hd::new(backend).await;
    // Carol's profile hides her email: search finds nothing, create says she exists.
    hd.jsm.hide_email("carol@example.com");
    let b = browser();
    hd.sign_in_as(&b, "carol@example.com", "Carol", "Staff", &hd.path("/portal/3")).await;
    let (status, html) = hd.get(&b, "/portal/3").await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("could not set up your account"), "{html}");
    let events = hd.events("customer_create_refused").await;
    assert!(!events.is_empty() && events.iter().all(|(outcome, _)| outcome == "failure"), "{events:?}");
});

// ---------------------------------------------------------------------------------------------------
// The helpdesk

db_test!(portal_home_groups_request_types_and_filters, async |backend| {
    let hd = Hd::new(backend).await;
    let b = browser();
    hd.alice(&b).await;
    let (status, html) = hd.get(&b, "/portal/3").await;
    assert_eq!(status, 200);
    let common = html.find("Common requests").expect("group heading");
    let hardware = html.find("Hardware</h2>").expect("group heading");
    let get_help = html.find("Get IT help").unwrap();
    let new_hw = html.find("Request new hardware").unwrap();
    assert!(common < get_help && get_help < hardware && hardware < new_hw, "grouped in the portal's order");
    assert!(html.contains("Get IT help: tell us what you need"), "descriptions");
    assert!(html.contains(&format!("/t/{}/portal/3/create/12", hd.s.public_id)));

    let (_, html) = hd.get(&b, "/portal/3?q=HARDWARE").await;
    assert!(html.contains("Request new hardware") && !html.contains("Get IT help"), "{html}");
    let (_, html) = hd.get(&b, "/portal/3?q=nothing-like-this").await;
    assert!(html.contains("No request type matches"));

    // Unknown portals and junk ids are plain "not found" pages.
    assert_eq!(hd.get(&b, "/portal/99").await.0, 404);
    assert_eq!(hd.get(&b, "/portal/1").await.0, 404, "a service desk id is not a portal id");
    assert_eq!(hd.get(&b, "/portal/abc").await.0, 404);
    // The help center lists the portals.
    let (status, html) = hd.get(&b, "/portals").await;
    assert_eq!(status, 200);
    assert!(html.contains("IT Help Desk") && html.contains("Human Resources") && !html.contains("Not set up yet"));
});

db_test!(raising_a_request_validates_inline_and_raises_on_behalf, async |backend| {
    let hd = Hd::new(backend).await;
    let b = browser();
    hd.alice(&b).await;
    let (status, html) = hd.get(&b, "/portal/3/create/12").await;
    assert_eq!(status, 200, "{html}");
    for (what, needle) in [
        ("text", "type=\"text\""),
        ("select", "<select id=\"f-customfield_10010\""),
        ("multi-select", "multiple"),
        ("radio", "type=\"radio\""),
        ("checkbox", "type=\"checkbox\""),
        ("date", "type=\"date\""),
        ("number", "type=\"number\""),
        ("paragraph", "<textarea"),
        ("required mark", "hd-required"),
    ] {
        assert!(html.contains(needle), "{what}: {html}");
    }
    assert!(html.contains("value=\"10301\" checked"), "the default radio value");
    let csrf = csrf_of(&html);

    // Invalid: errors next to the fields, values kept, nothing sent to Jira.
    let r = hd
        .post(
            &b,
            "/portal/3/create/12",
            &[
                ("csrf_token", &csrf),
                ("field.summary", "Need a laptop"),
                ("field.customfield_10010", ""),
                ("field.duedate", "tomorrow"),
            ],
            Via::Origin,
        )
        .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("This field is required.") && html.contains("YYYY-MM-DD"), "{html}");
    assert!(html.contains("value=\"Need a laptop\""), "values are kept");
    assert!(hd.jsm.calls_to("POST", "/rest/servicedeskapi/request").is_empty());

    // Valid: raised on behalf of the customer, then shown.
    let r = hd
        .post(
            &b,
            "/portal/3/create/12",
            &[
                ("csrf_token", &csrf),
                ("field.summary", "Need a laptop"),
                ("field.customfield_10010", "10101"),
                ("field.customfield_10011", "10200"),
                ("field.customfield_10011", "10201"),
                ("field.customfield_10012", "10300"),
                ("field.customfield_10013", "10400"),
                ("field.duedate", "2030-02-01"),
                ("field.customfield_10014", "2"),
                ("field.description", "For the new hire"),
            ],
            Via::Origin,
        )
        .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, format!("{}?created=1", hd.path("/portal/3/requests/ITH-2")));
    let raised = hd.jsm.calls_to("POST", "/rest/servicedeskapi/request");
    assert_eq!(raised.len(), 1);
    let alice = hd.jsm.user_by_email("alice@example.com").unwrap();
    assert_eq!(
        raised[0].json(),
        json!({
            "serviceDeskId": "1",
            "requestTypeId": "12",
            "raiseOnBehalfOf": alice.account_id,
            "requestFieldValues": {
                "summary": "Need a laptop",
                "customfield_10010": {"id": "10101"},
                "customfield_10011": [{"id": "10200"}, {"id": "10201"}],
                "customfield_10012": {"id": "10300"},
                "customfield_10013": [{"id": "10400"}],
                "duedate": "2030-02-01",
                "customfield_10014": 2,
                "description": "For the new hire"
            }
        })
    );
    assert_eq!(hd.jsm.request("ITH-2").unwrap().reporter, alice.account_id);
    let (status, html) = hd.get(&b, &location.replacen(&format!("/t/{}", hd.s.public_id), "", 1)).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("Need a laptop") && html.contains("was raised") && html.contains("Waiting for support"),
        "{html}"
    );
});

db_test!(a_request_jira_refuses_is_shown_on_the_form, async |backend| {
    let hd = Hd::new(backend).await;
    let b = browser();
    hd.alice(&b).await;
    let (_, html) = hd.get(&b, "/portal/3/create/11").await;
    let csrf = csrf_of(&html);
    let r = hd
        .post(
            &b,
            "/portal/3/create/11",
            &[("csrf_token", &csrf), ("field.summary", "REJECT ME"), ("field.description", "x")],
            Via::Origin,
        )
        .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("did not accept the request") && html.contains("value=\"REJECT ME\""), "{html}");
    // An unknown request type of this portal.
    assert_eq!(hd.get(&b, "/portal/3/create/31").await.0, 404);
});

db_test!(my_requests_lists_only_mine_with_filters_and_paging, async |backend| {
    let hd = Hd::new(backend).await;
    let b = browser();
    hd.alice(&b).await;
    hd.get(&b, "/portal/3").await;
    let alice = hd.jsm.user_by_email("alice@example.com").unwrap().account_id;
    let k1 = hd.jsm.add_request("1", &alice, "Open one", "new");
    let k2 = hd.jsm.add_request("1", &alice, "Open two", "indeterminate");
    let k3 = hd.jsm.add_request("1", &alice, "Open three", "new");
    let done = hd.jsm.add_request("1", &alice, "Closed one", "done");
    let hr = hd.jsm.add_request("2", &alice, "Another desk", "new");

    let (status, html) = hd.get(&b, "/portal/3/requests").await;
    assert_eq!(status, 200, "{html}");
    let search = hd.jsm.calls_to("GET", "/rest/api/3/search/jql");
    let jql = search[0].query_param("jql").unwrap();
    assert_eq!(
        jql,
        format!("project = \"ITH\" AND reporter = \"{alice}\" AND statusCategory != Done ORDER BY updated DESC")
    );
    // Newest first, two per page (the fake's page size).
    assert!(html.contains(&k3) && html.contains(&k2) && !html.contains(&k1), "{html}");
    assert!(!html.contains("ITH-1\""), "Bob's request is not listed");
    assert!(!html.contains(&done) && !html.contains(&hr));
    let next = html
        .split("href=\"")
        .find(|h| h.contains("next="))
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let (_, page2) = hd.get(&b, &next.replacen(&format!("/t/{}", hd.s.public_id), "", 1)).await;
    assert!(page2.contains(&k1) && !page2.contains(&k3), "{page2}");
    assert_eq!(
        hd.jsm.calls_to("GET", "/rest/api/3/search/jql")[1].query_param("nextPageToken").as_deref(),
        Some("tok-2")
    );

    let (_, closed) = hd.get(&b, "/portal/3/requests?status=closed").await;
    assert!(closed.contains(&done) && !closed.contains(&k1), "{closed}");
    assert!(closed.contains("Resolved"));
});

db_test!(another_customers_request_is_not_found, async |backend| {
    let hd = Hd::new(backend).await;
    let b = browser();
    hd.alice(&b).await;
    // Bob's request: Jira would show it to the service account, the helpdesk does not.
    let (status, html) = hd.get(&b, "/portal/3/requests/ITH-1").await;
    assert_eq!(status, 404, "{html}");
    assert!(!html.contains("printer is on fire"));
    // Commenting on it is refused too, and nothing is posted.
    let (_, form) = hd.get(&b, "/portal/3/create/11").await;
    let csrf = csrf_of(&form);
    let r =
        hd.post(&b, "/portal/3/requests/ITH-1/comment", &[("csrf_token", &csrf), ("body", "hi")], Via::Origin).await;
    assert_eq!(r.status(), 404);
    assert!(hd.jsm.calls_to("POST", "/comment").is_empty());
    // Her own request seen through another desk's portal, and keys that do not exist.
    let alice = hd.jsm.user_by_email("alice@example.com").unwrap().account_id;
    let hr = hd.jsm.add_request("2", &alice, "HR thing", "new");
    assert_eq!(hd.get(&b, &format!("/portal/3/requests/{hr}")).await.0, 404);
    assert_eq!(hd.get(&b, &format!("/portal/7/requests/{hr}")).await.0, 200);
    assert_eq!(hd.get(&b, "/portal/3/requests/ITH-999").await.0, 404);
    assert_eq!(hd.get(&b, "/portal/3/requests/..%2Fx").await.0, 404);
});

db_test!(a_participant_sees_public_comments_only_and_comments_on_behalf, async |backend| {
    let hd = Hd::new(backend).await;
    let b = browser();
    hd.alice(&b).await;
    hd.get(&b, "/portal/3").await;
    let alice = hd.jsm.user_by_email("alice@example.com").unwrap().account_id;
    hd.jsm.add_participant("ITH-1", &alice);
    let (status, html) = hd.get(&b, "/portal/3/requests/ITH-1").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("printer is on fire") && html.contains("We are on it"), "{html}");
    assert!(!html.contains("INTERNAL"), "internal comments are never shown");
    let comments = hd.jsm.calls_to("GET", "/rest/servicedeskapi/request/ITH-1/comment");
    assert_eq!(comments[0].query_param("public").as_deref(), Some("true"));
    assert_eq!(comments[0].query_param("internal").as_deref(), Some("false"));

    let csrf = csrf_of(&html);
    let r =
        hd.post(&b, "/portal/3/requests/ITH-1/comment", &[("csrf_token", &csrf), ("body", "   ")], Via::Referer).await;
    assert_eq!(r.status(), 422);
    let r = hd
        .post(&b, "/portal/3/requests/ITH-1/comment", &[("csrf_token", &csrf), ("body", "Still burning")], Via::Referer)
        .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let posted = hd.jsm.calls_to("POST", "/rest/servicedeskapi/request/ITH-1/comment");
    assert_eq!(posted.len(), 1);
    assert_eq!(
        posted[0].json(),
        json!({"body": "On behalf of Alice Liddell (alice@example.com):\n\nStill burning", "public": true})
    );
    let (_, html) = hd.get(&b, "/portal/3/requests/ITH-1").await;
    assert!(html.contains("Still burning"));
});

// ---------------------------------------------------------------------------------------------------
// Forms: CSRF and origin

db_test!(a_missing_or_wrong_csrf_token_is_refused, async |backend| {
    let hd = Hd::new(backend).await;
    let b = browser();
    hd.alice(&b).await;
    let (_, html) = hd.get(&b, "/portal/3/create/11").await;
    let csrf = csrf_of(&html);
    let fields = [("field.summary", "x"), ("field.description", "y")];
    let r = hd.post(&b, "/portal/3/create/11", &fields, Via::Origin).await;
    assert_eq!(r.status(), 403, "missing token");
    let wrong = format!("{}x", &csrf[..csrf.len() - 1]);
    let r =
        hd.post(&b, "/portal/3/create/11", &[("csrf_token", wrong.as_str()), fields[0], fields[1]], Via::Origin).await;
    assert_eq!(r.status(), 403, "wrong token");
    // Another session's token is just as wrong.
    let b2 = browser();
    hd.alice(&b2).await;
    let (_, html2) = hd.get(&b2, "/portal/3/create/11").await;
    let other = csrf_of(&html2);
    assert_ne!(other, csrf);
    let r =
        hd.post(&b, "/portal/3/create/11", &[("csrf_token", other.as_str()), fields[0], fields[1]], Via::Origin).await;
    assert_eq!(r.status(), 403, "another session's token");
    let r = hd.post(&b, "/portal/3/requests/ITH-1/comment", &[("body", "x")], Via::Origin).await;
    assert_eq!(r.status(), 403);
    assert!(hd.jsm.calls_to("POST", "/rest/servicedeskapi/request").is_empty());
    assert!(hd.jsm.calls_to("POST", "/comment").is_empty());
    // The right token works.
    let r = hd
        .post(&b, "/portal/3/create/11", &[("csrf_token", csrf.as_str()), fields[0], fields[1]], Via::FetchMetadata)
        .await;
    assert_eq!(r.status(), 303);
});

db_test!(cross_origin_posts_are_refused, async |backend| {
    let hd = Hd::new(backend).await;
    let b = browser();
    hd.alice(&b).await;
    let (_, html) = hd.get(&b, "/portal/3/create/11").await;
    let csrf = csrf_of(&html);
    let form = [("csrf_token", csrf.as_str()), ("field.summary", "x"), ("field.description", "y")];
    for (from, what) in
        [(Via::CrossSite, "cross-site"), (Via::OtherOrigin, "another origin"), (Via::Nothing, "no origin at all")]
    {
        let r = hd.post(&b, "/portal/3/create/11", &form, from).await;
        assert_eq!(r.status(), 403, "{what}");
        assert!(r.text().await.unwrap().contains("Not allowed"));
    }
    assert!(hd.jsm.calls_to("POST", "/rest/servicedeskapi/request").is_empty());
    let r = hd.post(&b, "/portal/3/create/11", &form, Via::Referer).await;
    assert_eq!(r.status(), 303);
});

db_test!(another_tenants_session_is_refused, async |backend| {
    let hd = Hd::new(backend).await;
    let app_b = same_app(hd.app());
    let (site_b, tenant_b, public_b, idp_b) = add_tenant(&app_b, &hd.jsm, "globex", IdpSettings::default()).await;
    let other =
        SamlSetup { app: app_b, site: site_b, tenant_id: tenant_b, public_id: public_b.clone(), idp: idp_b.clone() };
    let token_b = context_token(&other.site, ADMIN);
    let r = other
        .app
        .http
        .put(other.app.url("/api/v1/api-token"))
        .header("Authorization", format!("JWT {token_b}"))
        .json(&json!({"email": SERVICE_EMAIL, "api_token": SERVICE_TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let b = browser();
    let session = hd.alice(&b).await;
    let (_, html) = hd.get(&b, "/portal/3/create/11").await;
    let csrf = csrf_of(&html);
    hd.jsm.clear_calls();

    // Tenant A's session cookie sent to tenant B's helpdesk: not signed in there.
    let plain = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r =
        plain.get(other.t("/portal/3")).header("Cookie", format!("jsm_sso_session={session}")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"].to_str().unwrap().contains(&format!("/t/{public_b}/login?idp={}", idp_b.id)));
    let r = plain
        .post(other.t("/portal/3/create/11"))
        .header("Cookie", format!("jsm_sso_session={session}"))
        .header("Origin", hd.app().base_url())
        .form(&[("csrf_token", csrf.as_str()), ("field.summary", "x"), ("field.description", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(hd.jsm.calls().is_empty(), "nothing reached Jira for tenant B");
    // Still fine at home.
    let r = plain.get(hd.url("/portal/3")).header("Cookie", format!("jsm_sso_session={session}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
});

// ---------------------------------------------------------------------------------------------------
// Jira trouble

db_test!(rate_limits_and_outages_show_a_busy_page, async |backend| {
    let hd = Hd::new(backend).await;
    let b = browser();
    hd.alice(&b).await;
    assert_eq!(hd.get(&b, "/portal/3").await.0, 200);

    // One 429 with a short Retry-After: the client retries and the page works.
    hd.jsm.fail(Some("GET"), "/rest/api/3/search/jql", 429, Some("0"), 1);
    assert_eq!(hd.get(&b, "/portal/3/requests").await.0, 200);
    assert_eq!(hd.jsm.calls_to("GET", "/rest/api/3/search/jql").len(), 2);

    // Still 429 after the retries (Retry-After beyond the budget): a friendly busy page.
    hd.jsm.fail(Some("GET"), "/rest/api/3/search/jql", 429, Some("120"), 5);
    let r = b.get(hd.url("/portal/3/requests")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let html = r.text().await.unwrap();
    assert!(html.contains("The helpdesk is busy") && html.contains("Try again"), "{html}");

    // 503 from Jira: the same page.
    hd.jsm.fail(Some("GET"), "/rest/servicedeskapi/request/ITH-1", 503, Some("120"), 5);
    let (status, html) = hd.get(&b, "/portal/3/requests/ITH-1").await;
    assert_eq!(status, 503);
    assert!(html.contains("The helpdesk is busy"), "{html}");

    // Busy while raising: the form comes back with its values.
    let (_, form) = hd.get(&b, "/portal/3/create/11").await;
    let csrf = csrf_of(&form);
    hd.jsm.fail(Some("POST"), "/rest/servicedeskapi/request", 429, Some("120"), 5);
    let r = hd
        .post(
            &b,
            "/portal/3/create/11",
            &[("csrf_token", &csrf), ("field.summary", "Keep me"), ("field.description", "d")],
            Via::Origin,
        )
        .await;
    assert_eq!(r.status(), 503);
    let html = r.text().await.unwrap();
    assert!(html.contains("busy") && html.contains("value=\"Keep me\""), "{html}");
    // None of this is the token's fault.
    let (_, token) = hd.api(Method::GET, "/api/v1/api-token", None).await;
    assert_eq!(token["status"], "ok");
    assert!(hd.events("api_token_failing").await.is_empty());
});

db_test!(a_refused_token_shows_a_fixing_page_and_tells_the_admins, async |backend| {
    let hd = Hd::new(backend).await;
    let b = browser();
    hd.alice(&b).await;
    assert_eq!(hd.get(&b, "/portal/3").await.0, 200);

    hd.jsm.fail(None, "/rest/api/3/search/jql", 401, None, 2);
    let (status, html) = hd.get(&b, "/portal/3/requests").await;
    assert_eq!(status, 503, "{html}");
    assert!(html.contains("being fixed"), "{html}");
    let (_, token) = hd.api(Method::GET, "/api/v1/api-token", None).await;
    assert_eq!(token["status"], "failing", "{token}");
    assert!(token["status_reason"].as_str().unwrap().contains("401"), "{token}");
    assert!(token["failing_since"].is_string());
    let events = hd.events("api_token_failing").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "warning");
    // Failing again does not flood the activity log.
    assert_eq!(hd.get(&b, "/portal/3/requests").await.0, 503);
    assert_eq!(hd.events("api_token_failing").await.len(), 1);
    // The admin page shows it.
    let html = hd.app().load_page(&hd.s.site, "/admin/api-token", ADMIN).await.text().await.unwrap();
    assert!(html.contains("Failing"), "{html}");
    // A 403 is a token problem too (another reason: recorded again).
    hd.jsm.fail(None, "/rest/servicedeskapi/request/ITH-1", 403, None, 1);
    assert_eq!(hd.get(&b, "/portal/3/requests/ITH-1").await.0, 503);
    assert_eq!(hd.events("api_token_failing").await.len(), 2);
    // Test from the admin page: it works again.
    let (status, token) = hd.api(Method::POST, "/api/v1/api-token/test", None).await;
    assert_eq!((status, token["status"].as_str()), (200, Some("ok")), "{token}");
    assert!(token["status_reason"].is_null());

    // A revoked token: Test says so.
    hd.jsm.revoke_token(SERVICE_TOKEN);
    let (status, token) = hd.api(Method::POST, "/api/v1/api-token/test", None).await;
    assert_eq!((status, token["status"].as_str()), (200, Some("failing")), "{token}");
    assert_eq!(hd.events("api_token_failing").await.len(), 3);
});

db_test!(a_helpdesk_without_service_account_says_it_is_being_set_up, async |backend| {
    let hd = Hd::build(backend, IdpSettings::default(), false).await;
    let b = browser();
    hd.alice(&b).await;
    let (status, html) = hd.get(&b, "/portal/3").await;
    assert_eq!(status, 503);
    assert!(html.contains("being set up"), "{html}");
    assert!(hd.jsm.calls().is_empty());
});
