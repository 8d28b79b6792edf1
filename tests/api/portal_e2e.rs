//! The acceptance test, end to end in a real headless Chromium: a customer opens a substitute
//! link, signs in at a real SAML IdP on loopback (pysaml2, `tests/idp/idp.py`), lands on the portal
//! home, raises a request, finds it in My requests, opens it, comments, and logs out through the IdP's
//! single logout. Jira is the stateful fake JSM; its recorded calls are checked too.
//!
//! The IdP (127.0.0.1:<port A>) and the app (127.0.0.1:<port B>) are the same site over http, so the
//! app's `SameSite=Lax` cookies go along with the IdP page's auto-submitted POST to the ACS.
//!
//! Screenshots: `target/test-screenshots/portal-*.png` (the last backend to run wins).

use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::browser::{Browser, browser_slot};
use crate::helpers::fake_jsm::*;
use crate::helpers::real_idp::{RealIdp, RealIdpOptions};
use crate::helpers::*;

const ADMIN: &str = "557058:admin";
const SUMMARY: &str = "My laptop will not start";
const COMMENT: &str = "It beeps three times\nwhen I press the power button.";

/// Calls the admin API as Jira's iframe does (a context token of an admin of `site`).
async fn admin_api(app: &TestApp, site: &Site, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req =
        app.http.request(method, app.url(path)).header("Authorization", format!("JWT {}", context_token(site, ADMIN)));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null))
}

/// The current page's URL.
async fn location(b: &Browser) -> String {
    b.exec("return location.href;", vec![]).await.as_str().unwrap_or_default().to_string()
}

/// Waits until the browser is on a page whose URL starts with `prefix` and has finished loading.
async fn wait_url(b: &Browser, what: &str, prefix: &str) -> String {
    let script = format!(
        "return document.readyState === 'complete' && location.href.startsWith({}) && location.href;",
        json!(prefix)
    );
    b.wait_until(what, &script).await.as_str().unwrap().to_string()
}

/// The fake JSM keeps a raised request's option fields as they were sent (`{"id": "10101"}`), where
/// Jira answers with the option's label too (`{"self": …, "value": "Oslo", "id": "10101"}`). This
/// makes request `key` look like Jira's answer.
fn label_options_like_jira(jsm: &FakeJsm, key: &str) {
    let mut s = jsm.state.lock().unwrap();
    let s = &mut *s;
    let request = s.requests.iter_mut().find(|r| r.key == key).unwrap();
    let rt = s.request_types.iter().find(|t| t.id == request.request_type_id).unwrap();
    for (field_id, value) in request.values.iter_mut() {
        let Some(field) = rt.fields.iter().find(|f| f["fieldId"] == *field_id) else { continue };
        let label = |option: &mut Value| {
            let id = option["id"].clone();
            if let Some(valid) = field["validValues"].as_array().unwrap().iter().find(|v| v["value"] == id) {
                option["value"] = valid["label"].clone();
            }
        };
        match value {
            Value::Object(_) => label(value),
            Value::Array(options) => options.iter_mut().for_each(label),
            _ => {}
        }
    }
}

/// The `textContent` of the first element matching `css` (WebDriver's text is as rendered: the
/// stylesheet upper-cases section titles and status lozenges).
async fn content(b: &Browser, css: &str) -> String {
    b.wait_for(css).await;
    let v = b.exec("return document.querySelector(arguments[0]).textContent;", vec![json!(css)]).await;
    v.as_str().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The request page's details, label → value, in order.
async fn details(b: &Browser) -> Vec<(String, String)> {
    b.wait_for(".hd-details").await;
    let v = b
        .exec(
            "return [...document.querySelectorAll('.hd-details dt')]\
               .map(dt => [dt.textContent.trim(), dt.nextElementSibling.textContent.trim()]);",
            vec![],
        )
        .await;
    serde_json::from_value(v).unwrap()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Fails on what a broken page prints: CSP violations and uncaught script errors.
async fn assert_clean_console(b: &Browser, when: &str) {
    let problems: Vec<(String, String)> = b
        .console()
        .await
        .into_iter()
        .filter(|(_, m)| m.contains("Content Security Policy") || m.contains("Uncaught") || m.contains("TypeError"))
        .collect();
    assert!(problems.is_empty(), "{when}: the browser console shows problems: {problems:#?}");
}

db_test!(a_customer_signs_in_raises_a_request_comments_and_logs_out_in_a_real_browser, async |backend| {
    let _slot = browser_slot().await;
    let Some(b) = Browser::start().await else { return };
    let started = Instant::now();

    // ---- Set-up, as an admin does it: install, add the IdP from its metadata, the service account.
    let app = TestApp::spawn(backend).await;
    let jsm = FakeJsm::start().await;
    jsm.make_app_admin(ADMIN);
    let site = jsm.site("acme");
    app.installed(&site).await;
    let (status, tenant) = admin_api(&app, &site, Method::GET, "/api/v1/tenant", None).await;
    assert_eq!(status, 200, "{tenant}");
    let public_id = tenant["public_id"].as_str().unwrap().to_string();
    let t = |rest: &str| format!("{}/t/{public_id}{rest}", app.base_url());
    let sp_metadata = app.get(&format!("/t/{public_id}/saml/metadata")).await.text().await.unwrap();
    let idp = RealIdp::start(&sp_metadata, RealIdpOptions::default()).await;
    let (status, created) = admin_api(
        &app,
        &site,
        Method::POST,
        "/api/v1/idps",
        Some(json!({ "name": "Corporate IdP", "metadata_xml": idp.metadata_xml })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, token) = admin_api(
        &app,
        &site,
        Method::PUT,
        "/api/v1/api-token",
        Some(json!({ "email": SERVICE_EMAIL, "api_token": SERVICE_TOKEN })),
    )
    .await;
    assert_eq!(status, 200, "{token}");
    let (status, portals) = admin_api(&app, &site, Method::GET, "/api/v1/portals", None).await;
    assert_eq!(status, 200, "{portals}");
    let it = portals.as_array().unwrap().iter().find(|p| p["project_key"] == "ITH").expect("the IT desk").clone();
    let link = it["substitute_link"].as_str().expect("a substitute link").to_string();
    assert_eq!(link, t("/portal/3"));
    jsm.clear_calls();
    let setup_done = started.elapsed();

    // ---- The substitute link goes to the IdP's login page (the only IdP: no choice to make).
    b.goto(&link).await;
    let at_idp = wait_url(&b, "the IdP's login page", &format!("{}/sso?", idp.base_url)).await;
    assert!(at_idp.contains("SAMLRequest="), "{at_idp}");
    b.wait_text("h1", "Test IdP").await;
    assert!(jsm.calls().is_empty(), "nothing is asked of Jira before sign-in: {:?}", jsm.calls());
    b.fill("input[name=username]", "alice").await;
    b.fill("input[name=password]", "alice-pw").await;
    b.click_on("form button[type=submit]").await;

    // ---- The IdP's page auto-posts the SAMLResponse to the ACS; the ACS lands on the portal home.
    wait_url(&b, "the portal home", &link).await;
    b.wait_text(".hd-hero h1", "IT Help Desk").await;
    let who = b.text_of(".hd-nav .hd-who").await;
    assert!(who.contains("Alice"), "who is signed in: {who}");
    let home = content(&b, "main").await;
    for needle in ["Common requests", "Get IT help", "Hardware", "Request new hardware"] {
        assert!(home.contains(needle), "{needle:?} on the portal home: {home}");
    }
    assert_eq!(idp.events("login").await.len(), 1, "one login at the IdP");
    assert_clean_console(&b, "portal home").await;
    b.screenshot("portal-home").await;

    // ---- Raise a request: the hardware type, with its required fields and a few optional ones.
    b.click_on("a.hd-type[href$='/portal/3/create/12']").await;
    b.wait_text(".hd-card h1", "Request new hardware").await;
    let urgency = b.wait_for("input[name='field.customfield_10012'][value='10301']").await;
    assert_eq!(b.property(&urgency, "checked").await, true, "the default radio choice");
    b.fill("#f-summary", SUMMARY).await;
    b.click_on("#f-customfield_10010 option[value='10101']").await;
    b.click_on("input[name='field.customfield_10013'][value='10400']").await;
    b.fill("#f-customfield_10014", "2").await;
    b.fill("#f-description", "Since this morning.\nIt was fine yesterday.").await;
    b.screenshot("portal-create").await;
    b.click_on(".hd-form button[type=submit]").await;

    // ---- The new request's page.
    let key = "ITH-2";
    let request_url = wait_url(&b, "the new request", &t(&format!("/portal/3/requests/{key}"))).await;
    assert!(request_url.ends_with("?created=1"), "{request_url}");
    b.wait_text(".hd-notice-ok", &format!("Your request {key} was raised")).await;
    b.screenshot("portal-request-created").await;
    assert_eq!(b.text_of(".hd-request-main h1").await, SUMMARY);
    let side = content(&b, ".hd-request-side").await;
    assert!(side.contains("Waiting for support") && side.contains("Request new hardware"), "{side}");
    // (Option fields show no value here: see `label_options_like_jira`.)
    assert_eq!(
        details(&b).await,
        pairs(&[("Quantity", "2"), ("Description", "Since this morning.\nIt was fine yesterday.")])
    );
    label_options_like_jira(&jsm, key);
    assert_clean_console(&b, "new request").await;

    // ---- My requests lists it; it opens from there.
    b.click_on(".hd-nav a[href$='/portal/3/requests']").await;
    let path = format!("/t/{public_id}/portal/3/requests");
    b.wait_until(
        "My requests",
        &format!("return document.readyState === 'complete' && location.pathname === {};", json!(path)),
    )
    .await;
    b.wait_text(".hd-table", key).await;
    let table = content(&b, ".hd-table").await;
    assert!(table.contains(SUMMARY) && table.contains("Waiting for support"), "{table}");
    assert!(!table.contains("ITH-1"), "Bob's request is not listed: {table}");
    b.screenshot("portal-my-requests").await;
    b.click_on(&format!(".hd-table a[href$='/portal/3/requests/{key}']")).await;
    wait_url(&b, "the request", &t(&format!("/portal/3/requests/{key}"))).await;
    b.wait_text(".hd-request-main h1", SUMMARY).await;
    assert!(b.find(".hd-notice-ok").await.is_none(), "no 'was raised' banner the second time");
    b.wait_text(".hd-request-main", "No comments yet.").await;
    assert_eq!(
        details(&b).await,
        pairs(&[
            ("Office", "Oslo"),
            ("Urgency", "Normal"),
            ("Operating systems", "Linux"),
            ("Quantity", "2"),
            ("Description", "Since this morning.\nIt was fine yesterday."),
        ])
    );

    // ---- Comment.
    b.fill("#comment-body", COMMENT).await;
    b.click_on(".hd-request-main .hd-form button[type=submit]").await;
    let comment = b.wait_text(".hd-comments .hd-comment-body", "power button").await;
    assert_eq!(comment, format!("On behalf of Alice Liddell (alice@example.com):\n\n{COMMENT}"));
    let meta = b.text_of(".hd-comments .hd-comment-meta").await;
    assert!(meta.contains("Helpdesk service"), "posted by the service account: {meta}");
    assert!(location(&b).await.ends_with(&format!("/portal/3/requests/{key}#comments")));
    let value = b.property(&b.wait_for("#comment-body").await, "value").await;
    assert_eq!(value, "", "the comment box is empty again");
    assert_clean_console(&b, "request with comment").await;
    b.screenshot("portal-request").await;

    // ---- Log out: our LogoutRequest to the IdP, its LogoutResponse back, a signed-out page.
    b.click_on(".hd-nav a[href$='/logout']").await;
    wait_url(&b, "the signed-out page", &t("/saml/slo?")).await;
    let signed_out = b.wait_text("main", "You are signed out").await;
    assert!(signed_out.contains("and of your organisation's account"), "the IdP ended its session: {signed_out}");
    assert!(b.find(".hd-nav a[href$='/logout']").await.is_none(), "no Log out link any more");
    assert_eq!(idp.events("logout").await.len(), 1, "the IdP processed our LogoutRequest: {}", idp.log().await);
    assert_clean_console(&b, "signed out").await;
    b.screenshot("portal-signed-out").await;
    // "Go to the helpdesk": signing in again is needed.
    b.click_on(&format!("main a[href='/t/{public_id}/']")).await;
    wait_url(&b, "the IdP's login page again", &format!("{}/sso?", idp.base_url)).await;

    // ---- The same browser has no session any more.
    b.goto(&t("/session")).await;
    let status = b
        .wait_until(
            "the session endpoint answered",
            "return document.readyState === 'complete' && performance.getEntriesByType('navigation')[0].responseStatus;",
        )
        .await;
    assert_eq!(status, 401, "GET /session after logout");
    let body = b.exec("return document.body.innerText;", vec![]).await;
    let body: Value = serde_json::from_str(body.as_str().unwrap()).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(body["error"]["code"], "not_signed_in", "{body}");
    let cookies = b.cmd("GET", "/cookie", None).await;
    assert!(
        !cookies.as_array().unwrap().iter().any(|c| c["name"] == "jsm_sso_session"),
        "the session cookie is gone: {cookies}"
    );
    // The substitute link too.
    b.goto(&link).await;
    wait_url(&b, "the IdP's login page from the link", &format!("{}/sso?", idp.base_url)).await;
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM customer_sessions").await, 0);

    // ---- What Jira saw: all as the service account.
    let calls = jsm.calls();
    let basic =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{SERVICE_EMAIL}:{SERVICE_TOKEN}"));
    assert!(calls.iter().all(|c| c.authorization.as_deref() == Some(format!("Basic {basic}").as_str())), "{calls:#?}");
    let alice = jsm.user_by_email("alice@example.com").expect("alice is a customer now");
    assert_eq!(alice.account_type, "customer");
    let customers = jsm.calls_to("POST", "/rest/servicedeskapi/customer");
    assert_eq!(customers.len(), 1, "the customer was created once");
    assert_eq!(customers[0].json(), json!({ "email": "alice@example.com", "displayName": "Alice Liddell" }));
    assert_eq!(jsm.desk_customers("1"), vec![alice.account_id.clone()]);
    // Browsers send a textarea's line breaks as CRLF (HTML's form submission rules), and they reach Jira
    // as sent; compared here with LF.
    let lf = |v: Value| serde_json::from_str::<Value>(&v.to_string().replace("\\r\\n", "\\n")).unwrap();
    let raised = jsm.calls_to("POST", "/rest/servicedeskapi/request");
    assert_eq!(raised.len(), 1, "one request raised");
    assert_eq!(
        lf(raised[0].json()),
        json!({
            "serviceDeskId": "1",
            "requestTypeId": "12",
            "raiseOnBehalfOf": alice.account_id,
            "requestFieldValues": {
                "summary": SUMMARY,
                "customfield_10010": { "id": "10101" },
                "customfield_10012": { "id": "10301" },
                "customfield_10013": [{ "id": "10400" }],
                "customfield_10014": 2,
                "description": "Since this morning.\nIt was fine yesterday."
            }
        })
    );
    assert_eq!(jsm.request(key).unwrap().reporter, alice.account_id);
    let commented = jsm.calls_to("POST", &format!("/rest/servicedeskapi/request/{key}/comment"));
    assert_eq!(commented.len(), 1, "one comment posted");
    assert_eq!(
        lf(commented[0].json()),
        json!({ "body": format!("On behalf of Alice Liddell (alice@example.com):\n\n{COMMENT}"), "public": true })
    );
    assert_eq!(jsm.request(key).unwrap().comments.len(), 1);

    b.close().await;
    eprintln!("portal e2e: set-up {setup_done:?}, whole test {:?}", started.elapsed());
});
