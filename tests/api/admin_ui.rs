//! The admin pages in a real headless Chromium, framed by a Jira stand-in exactly as Jira frames them
//! (signed `?jwt=` page loads, the production CSP, `AP` over `postMessage`; see `helpers/browser.rs`).
//!
//! Screenshots go to `target/test-screenshots/`; with `UPDATE_SCREENSHOTS=1` the main one is also
//! copied to `docs/screenshots/`.

use std::path::{Path, PathBuf};

use chrono::Utc;
use jsm_sso::store::LoginEvent;
use jsm_sso::tenants::TenantId;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::browser::{Browser, JiraHost, browser_slot};
use crate::helpers::*;

const ADMIN: &str = "557058:ui-admin";
const OKTA_ENTITY: &str = "http://www.okta.com/exk9u78i8aMSxvkV70h7";

fn fixture_path(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/idp-metadata").join(name);
    std::fs::canonicalize(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap()
}

/// The app, a Jira site hosting it, and a browser.
struct Ui {
    app: TestApp,
    host: JiraHost,
    browser: Browser,
}

impl Ui {
    /// `None` when Chromium is not installed (outside CI: skipped).
    async fn start() -> Option<Ui> {
        let browser = Browser::start().await?;
        let app = TestApp::spawn(Backend::Sqlite).await;
        app.jira.make_admin(ADMIN);
        let host = JiraHost::start(&app.jira, app.base_url(), &app.settings.app_key, "acme", ADMIN).await;
        app.installed(&host.site).await;
        Some(Ui { app, host, browser })
    }

    /// Opens one of our page modules the way an admin does in Jira, and moves into its iframe once the
    /// app has started.
    async fn open(&self, module_key: &str) {
        let b = &self.browser;
        b.leave_frames().await;
        b.goto(&self.host.module_url(module_key)).await;
        let frame = b.wait_for("#app-frame").await;
        b.enter_frame(&frame).await;
        b.wait_for("#app [role=tab][aria-selected=true]").await;
    }

    async fn api(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = self
            .app
            .http
            .request(method, self.app.url(path))
            .header("Authorization", format!("JWT {}", context_token(&self.host.site, ADMIN)));
        if let Some(body) = body {
            req = req.json(body);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null))
    }

    async fn idps(&self) -> Vec<Value> {
        let (status, body) = self.api(Method::GET, "/api/v1/idps", None).await;
        assert_eq!(status, 200, "{body}");
        body["idps"].as_array().unwrap().clone()
    }

    async fn add_okta_by_api(&self, name: &str) -> Value {
        let body = json!({ "name": name, "metadata_xml": fixture("okta-idp-metadata.xml") });
        let (status, idp) = self.api(Method::POST, "/api/v1/idps", Some(&body)).await;
        assert_eq!(status, 201, "{idp}");
        idp
    }

    async fn tenant(&self) -> TenantId {
        self.app.store.find_connect_installation(&self.host.site.client_key).await.unwrap().unwrap().tenant.id
    }

    /// Fails on what a broken page prints: CSP violations and uncaught script errors.
    async fn assert_clean_console(&self) {
        let problems: Vec<(String, String)> = self
            .browser
            .console()
            .await
            .into_iter()
            .filter(|(_, m)| m.contains("Content Security Policy") || m.contains("Uncaught") || m.contains("TypeError"))
            .collect();
        assert!(problems.is_empty(), "the browser console shows problems: {problems:#?}");
    }
}

fn publish_screenshot(shot: &Path, name: &str) {
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(shot, docs.join(name)).unwrap();
    }
}

// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_admin_adds_an_idp_from_a_metadata_file_and_sees_it_listed() {
    let _slot = browser_slot().await;
    let Some(ui) = Ui::start().await else { return };
    let b = &ui.browser;
    ui.open("identity-providers").await;
    b.wait_text("#idp-list", "No identity provider yet").await;

    b.click_on("#idp-list-view .toolbar [data-action=add-idp]").await;
    b.fill("#add-name", "Okta (staff)").await;
    b.click_on("#add-idp-form input[name=source][value=file]").await;
    let file = b.wait_for("#add-metadata-file").await;
    b.send_keys(&file, fixture_path("okta-idp-metadata.xml").to_str().unwrap()).await;
    b.screenshot("add-identity-provider").await;
    let frame = b.wait_for("#app-frame").await;
    b.enter_frame(&frame).await;
    b.click_on("#add-idp-form button[type=submit]").await;

    // Listed, with what the metadata says.
    let card = b.wait_text("#idp-list .idp-card", "Okta (staff)").await;
    assert!(card.contains(OKTA_ENTITY), "the entity ID is shown: {card}");
    assert!(card.contains("ON"), "enabled: {card}");
    assert!(card.contains("Metadata file"), "{card}");
    assert!(card.contains("Never"), "no sign-in yet: {card}");
    assert!(card.contains("Test configuration"), "{card}");
    b.wait_text("#idp-notice", "Okta (staff) was added").await;

    // Saved on the server, as one IdP.
    let idps = ui.idps().await;
    assert_eq!(idps.len(), 1, "{idps:?}");
    assert_eq!(idps[0]["entity_id"], OKTA_ENTITY);
    assert_eq!(idps[0]["name"], "Okta (staff)");
    assert_eq!(idps[0]["source"], "metadata_file");

    // Every API call had its own context token from "Jira".
    assert!(ui.host.tokens_issued() >= 2, "tokens issued: {}", ui.host.tokens_issued());
    ui.assert_clean_console().await;

    let shot = b.screenshot("identity-providers").await;
    publish_screenshot(&shot, "identity-providers.png");
    // The notice's "Test configuration" opens the IdP's test sign-in in a new window, never in Jira's.
    b.enter_frame(&b.wait_for("#app-frame").await).await;
    let before = b.cmd("GET", "/window/handles", None).await.as_array().unwrap().len();
    b.click_on("#idp-list .idp-card [data-idp-action=test]").await;
    b.wait_text("#idp-list .idp-card .idp-status", "new window").await;
    let after = b.cmd("GET", "/window/handles", None).await.as_array().unwrap().len();
    assert_eq!(after, before + 1, "a new window opened");
    assert!(
        b.exec("return location.pathname", vec![]).await.as_str().unwrap().starts_with("/admin/"),
        "the iframe stayed"
    );
    ui.browser_close().await;
}

#[tokio::test]
async fn bad_metadata_shows_the_servers_message_on_the_field_and_saves_nothing() {
    let _slot = browser_slot().await;
    let Some(ui) = Ui::start().await else { return };
    let b = &ui.browser;

    // What the server says about this document (the API refuses it and saves nothing).
    let xml = fixture("sp-only-no-idpssodescriptor.xml");
    let (status, refusal) =
        ui.api(Method::POST, "/api/v1/idps", Some(&json!({ "name": "SP only", "metadata_xml": xml }))).await;
    assert_eq!(status, 422, "{refusal}");
    assert_eq!(refusal["error"]["field"], "metadata_xml");
    let expected = refusal["error"]["message"].as_str().unwrap().to_string();

    ui.open("identity-providers").await;
    b.click_on("#idp-list-view .toolbar [data-action=add-idp]").await;
    b.fill("#add-name", "SP only").await;
    b.click_on("#add-idp-form input[name=source][value=file]").await;
    let file = b.wait_for("#add-metadata-file").await;
    b.send_keys(&file, fixture_path("sp-only-no-idpssodescriptor.xml").to_str().unwrap()).await;
    b.click_on("#add-idp-form button[type=submit]").await;

    // The message is on the file field, the field is marked invalid, nothing else is in the way.
    let shown = b.wait_text("#add-idp-form [data-field=metadata_xml] .field-error", "IDPSSODescriptor").await;
    assert_eq!(shown, expected, "the server's own message");
    let file = b.wait_for("#add-metadata-file").await;
    assert_eq!(b.attribute(&file, "aria-invalid").await.as_deref(), Some("true"));
    let top = b.find("#add-idp-form [data-form-error]").await.unwrap();
    assert!(!b.is_displayed(&top).await, "no general error when the field is known");
    // What the admin typed is still there, and nothing was saved.
    let name = b.wait_for("#add-name").await;
    assert_eq!(b.property(&name, "value").await, "SP only");
    assert!(ui.idps().await.is_empty());
    b.screenshot("add-identity-provider-bad-metadata").await;

    // A bad metadata URL: its message lands on the URL field instead.
    let frame = b.wait_for("#app-frame").await;
    b.enter_frame(&frame).await;
    b.click_on("#add-idp-form input[name=source][value=url]").await;
    b.fill("#add-metadata-url", "ftp://idp.example.com/metadata").await;
    b.click_on("#add-idp-form button[type=submit]").await;
    let url_error = b.wait_for("#add-idp-form [data-field=metadata_url] .field-error").await;
    assert!(!b.text(&url_error).await.is_empty(), "a message on the URL field");
    assert!(ui.idps().await.is_empty());
    assert_eq!(b.open_dialog().await, None, "no alert()");
    ui.assert_clean_console().await;
    ui.browser_close().await;
}

#[tokio::test]
async fn the_service_provider_tab_shows_what_the_api_says_and_rolls_the_certificate_over() {
    let _slot = browser_slot().await;
    let Some(ui) = Ui::start().await else { return };
    let b = &ui.browser;
    ui.open("identity-providers").await;
    b.click_on("#tab-sp").await;
    b.wait_until("the SP values are loaded", "return document.getElementById('sp-entity_id').textContent !== '…';")
        .await;

    let (status, sp) = ui.api(Method::GET, "/api/v1/sp", None).await;
    assert_eq!(status, 200, "{sp}");
    for key in ["entity_id", "acs_url", "audience", "recipient", "slo_url", "metadata_url", "login_url"] {
        let shown = b.text_of(&format!("#sp-{key}")).await;
        assert_eq!(shown, sp[key].as_str().unwrap(), "{key}");
    }
    let cert = b.wait_for("#sp-certificate").await;
    assert_eq!(b.property(&cert, "value").await, sp["certificate_pem"]);
    assert_eq!(b.text_of("[data-slot=cert-fingerprint]").await, sp["certificate_fingerprint_sha256"].as_str().unwrap());
    // The setup guides use the same values (WSO2's Issuer is the entity ID).
    b.click_on("#guide-wso2 summary").await;
    let guide = b.text_of("#guide-wso2").await;
    assert!(guide.contains(&format!("Issuer: {}", sp["entity_id"].as_str().unwrap())), "{guide}");
    assert!(guide.contains("http://wso2.org/claims/emailaddress") && guide.contains("http://wso2.org/claims/nickname"));

    // Copy: either copied, or (clipboard blocked in the iframe) selected with a hint.
    b.click_on("button[data-copy=sp-acs_url]").await;
    let status_text = b
        .wait_until(
            "a copy status",
            "return document.querySelector('button[data-copy=sp-acs_url] + .copy-status').textContent;",
        )
        .await;
    let status_text = status_text.as_str().unwrap();
    if status_text.contains("Ctrl+C") {
        let selected = b.exec("return String(window.getSelection());", vec![]).await;
        assert_eq!(selected, sp["acs_url"], "the value is selected for copying");
    } else {
        assert_eq!(status_text, "Copied");
    }

    // The metadata download is the API's document.
    b.click_on("[data-action=download-metadata]").await;
    let downloaded = b.downloads().join("jsm-sso-sp-metadata.xml");
    let started = std::time::Instant::now();
    while !downloaded.exists() && started.elapsed() < std::time::Duration::from_secs(10) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = ui
        .app
        .http
        .get(ui.app.url("/api/v1/sp/metadata"))
        .header("Authorization", format!("JWT {}", context_token(&ui.host.site, ADMIN)))
        .send()
        .await
        .unwrap();
    let metadata = r.text().await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&downloaded).unwrap_or_default(),
        metadata,
        "downloaded {}",
        downloaded.display()
    );

    // Rollover: create the next certificate, see it, then promote it after the inline confirmation.
    b.click_on("[data-action=create-next-cert]").await;
    b.wait_until("the next certificate is shown", "return document.getElementById('sp-next-certificate').value;").await;
    let (_, sp2) = ui.api(Method::GET, "/api/v1/sp", None).await;
    let next = b.wait_for("#sp-next-certificate").await;
    assert_eq!(b.property(&next, "value").await, sp2["next_certificate_pem"]);
    b.screenshot("service-provider").await;
    b.enter_frame(&b.wait_for("#app-frame").await).await;
    b.click_on("[data-action=promote-cert]").await;
    b.wait_for("[data-promote-confirm]").await;
    assert_eq!(b.open_dialog().await, None, "no confirm()");
    b.click_on("[data-action=promote-confirm]").await;
    b.wait_until(
        "the promoted certificate is current",
        &format!("return document.getElementById('sp-certificate').value === {};", sp2["next_certificate_pem"]),
    )
    .await;
    let (_, sp3) = ui.api(Method::GET, "/api/v1/sp", None).await;
    assert_eq!(sp3["certificate_pem"], sp2["next_certificate_pem"]);
    assert!(sp3["next_certificate_pem"].is_null());
    ui.assert_clean_console().await;
    ui.browser_close().await;
}

#[tokio::test]
async fn deleting_an_idp_asks_inline_and_removes_it() {
    let _slot = browser_slot().await;
    let Some(ui) = Ui::start().await else { return };
    let b = &ui.browser;
    let idp = ui.add_okta_by_api("Okta to delete").await;
    ui.open("identity-providers").await;
    let card = format!("#idp-list .idp-card[data-idp-id='{}']", idp["id"].as_str().unwrap());
    b.wait_text(&card, "Okta to delete").await;

    // Delete asks first, inline (no dialog); Cancel keeps the IdP.
    b.click_on(&format!("{card} [data-idp-action=delete]")).await;
    let question = b.text_of(&format!("{card} .inline-confirm")).await;
    assert!(question.contains("Delete Okta to delete?"), "{question}");
    assert_eq!(b.open_dialog().await, None, "no confirm()");
    b.click_on(&format!("{card} [data-confirm=cancel]")).await;
    b.wait_gone(&format!("{card} .inline-confirm")).await;
    assert_eq!(ui.idps().await.len(), 1, "cancel deletes nothing");

    b.click_on(&format!("{card} [data-idp-action=delete]")).await;
    b.click_on(&format!("{card} [data-confirm=delete]")).await;
    b.wait_text("#idp-notice", "Okta to delete was deleted").await;
    b.wait_gone(&card).await;
    b.wait_text("#idp-list", "No identity provider yet").await;
    assert!(ui.idps().await.is_empty(), "deleted on the server");
    ui.assert_clean_console().await;
    ui.browser_close().await;
}

#[tokio::test]
async fn settings_errors_show_on_the_field_and_unsaved_changes_are_not_dropped_silently() {
    let _slot = browser_slot().await;
    let Some(ui) = Ui::start().await else { return };
    let b = &ui.browser;
    let idp = ui.add_okta_by_api("Okta").await;
    ui.open("configure").await;
    let card = format!("#idp-list .idp-card[data-idp-id='{}']", idp["id"].as_str().unwrap());
    b.click_on(&format!("{card} [data-idp-action=edit]")).await;

    // Out of range: the server's message on that field, nothing saved.
    b.fill("#edit-clock-skew", "900").await;
    b.fill("#edit-email-attribute", "http://wso2.org/claims/emailaddress").await;
    b.click_on("#edit-idp-form button[type=submit]").await;
    let error = b.wait_text("#edit-idp-form [data-field='settings.clock_skew_secs'] .field-error", "600").await;
    assert!(error.contains("between 0 and 600"), "{error}");
    let skew = b.wait_for("#edit-clock-skew").await;
    assert_eq!(b.attribute(&skew, "aria-invalid").await.as_deref(), Some("true"));
    let saved = &ui.idps().await[0];
    assert_eq!(saved["settings"]["clock_skew_secs"], 180, "nothing saved");
    assert!(saved["settings"]["email_attribute"].is_null(), "nothing saved");
    b.screenshot("edit-identity-provider-error").await;
    b.enter_frame(&b.wait_for("#app-frame").await).await;

    // Leaving with unsaved changes asks first (inline); "Keep editing" keeps them.
    b.click_on("#tab-activity").await;
    b.wait_for("#edit-idp-form [data-discard]").await;
    assert_eq!(b.open_dialog().await, None, "no confirm()");
    b.click_on("#edit-idp-form [data-action=keep]").await;
    let skew = b.wait_for("#edit-clock-skew").await;
    assert_eq!(b.property(&skew, "value").await, "900", "the changes are still there");

    // A valid value saves, and the list shows the result.
    b.fill("#edit-clock-skew", "300").await;
    b.click_on("#edit-idp-form [data-field='settings.allow_sha1'] input").await;
    b.wait_for("[data-sha1-warning]").await;
    b.click_on("#edit-idp-form button[type=submit]").await;
    b.wait_text("#idp-notice", "Changes to Okta were saved").await;
    let saved = &ui.idps().await[0];
    assert_eq!(saved["settings"]["clock_skew_secs"], 300);
    assert_eq!(saved["settings"]["allow_sha1"], true);
    assert_eq!(saved["settings"]["email_attribute"], "http://wso2.org/claims/emailaddress");

    // Discarding: edit, change, Cancel → asked → Discard → back to the list, nothing saved.
    b.click_on(&format!("{card} [data-idp-action=edit]")).await;
    b.fill("#edit-name", "Renamed but not saved").await;
    b.click_on("#edit-idp-form .form-actions [data-action=cancel]").await;
    b.click_on("#edit-idp-form [data-action=discard]").await;
    b.wait_text(&card, "Okta").await;
    assert_eq!(ui.idps().await[0]["name"], "Okta");
    ui.assert_clean_console().await;
    ui.browser_close().await;
}

#[tokio::test]
async fn getting_started_shows_live_status_and_login_activity_shows_precise_reasons() {
    let _slot = browser_slot().await;
    let Some(ui) = Ui::start().await else { return };
    let b = &ui.browser;
    ui.open("get-started").await;
    b.wait_text("[data-step=idp] [data-status]", "TO DO").await;
    assert_eq!(b.text_of("[data-step=test] [data-status]").await, "TO DO");
    // The API token endpoint may not exist yet: shown as not configured, not as an error.
    assert_eq!(b.text_of("[data-step=token] [data-status]").await, "NOT CONFIGURED");
    // (The browser console is read: it shows the 404 of that endpoint, and nothing worse.)
    let console = b.console().await;
    assert!(console.iter().any(|(_, m)| m.contains("/api/v1/api-token") && m.contains("404")), "{console:#?}");

    // An IdP and a passed test: the steps turn done after "Check again".
    let idp = ui.add_okta_by_api("Okta").await;
    let tenant = ui.tenant().await;
    let idp_id = jsm_sso::saml::idp::IdpId::parse(idp["id"].as_str().unwrap()).unwrap();
    let t0 = Utc::now() - chrono::Duration::minutes(5);
    let mut ok = LoginEvent::new(tenant.clone(), Some(idp_id.clone()), "test_success", "test sign-in succeeded", t0);
    ok.email = Some("jane@example.com".into());
    ui.app.store.insert_login_event(&ok).await.unwrap();
    let mut failed = LoginEvent::new(
        tenant.clone(),
        Some(idp_id.clone()),
        "failure",
        "The assertion is not yet valid: NotBefore is 240 s in the future; 180 s of clock difference are allowed.",
        t0 + chrono::Duration::minutes(1),
    );
    failed.reason_code = Some("assertion_not_yet_valid".into());
    failed.details = json!({ "clock_difference_secs": 240, "allowed_secs": 180 });
    ui.app.store.insert_login_event(&failed).await.unwrap();

    b.click_on("[data-action=reload-checklist]").await;
    b.wait_text("[data-step=idp] [data-status]", "DONE").await;
    b.wait_text("[data-step=test] [data-status]", "DONE").await;
    assert!(b.text_of("[data-step=test] [data-detail]").await.contains("jane@example.com"));
    // Substitute links wait only for the service account now.
    b.wait_text("[data-step=links] [data-status]", "NOT YET").await;
    assert_eq!(b.text_of("[data-step=links] [data-detail]").await, "Waiting for the service account.");
    b.screenshot("getting-started").await;
    b.enter_frame(&b.wait_for("#app-frame").await).await;

    // Login activity: the precise reason, filterable.
    b.click_on("#tab-activity").await;
    let table = b.wait_text("#activity-table", "NotBefore is 240 s in the future").await;
    assert!(table.contains("assertion_not_yet_valid"), "{table}");
    assert!(table.contains("Okta"), "the IdP's name: {table}");
    b.click_on("#activity-table details summary").await;
    b.wait_text("#activity-table details", "clock_difference_secs").await;
    b.screenshot("login-activity").await;
    b.enter_frame(&b.wait_for("#app-frame").await).await;
    let outcome = b.wait_for("#activity-outcome").await;
    b.exec(
        "arguments[0].value = 'test_success'; arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
        vec![Browser::arg(&outcome)],
    )
    .await;
    b.wait_until("only the test remains", &format!(
        "return document.querySelectorAll('#activity-table tbody tr').length === 1 && !!document.querySelector(\"#activity-table tr[data-event-id='{}']\");",
        ok.id
    ))
    .await;
    let more = b.find("[data-action=more-activity]").await.unwrap();
    assert!(!b.is_displayed(&more).await, "no older events to show");

    // Paging: 55 warnings are more than a page (50); "Show older events" brings the rest.
    for i in 0..55 {
        let message = if i == 0 { "=HYPERLINK(\"https://evil.example\")".to_string() } else { format!("warning {i}") };
        let w = LoginEvent::new(tenant.clone(), None, "warning", message, t0 - chrono::Duration::minutes(i + 10));
        ui.app.store.insert_login_event(&w).await.unwrap();
    }
    let outcome = b.wait_for("#activity-outcome").await;
    b.exec(
        "arguments[0].value = 'warning'; arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
        vec![Browser::arg(&outcome)],
    )
    .await;
    b.wait_until(
        "a first page of warnings",
        "return document.querySelectorAll('#activity-table tbody tr').length === 50;",
    )
    .await;
    b.click_on("[data-action=more-activity]").await;
    b.wait_until("all warnings", "return document.querySelectorAll('#activity-table tbody tr').length === 55;").await;
    b.wait_gone("[data-action=more-activity]").await;

    // CSV export of everything matching the filter, built in the browser; formulas are defused.
    b.click_on("[data-action=export-csv]").await;
    b.wait_text("[data-slot=activity-status]", "Exported 55 events").await;
    let started = std::time::Instant::now();
    let csv = loop {
        let found = std::fs::read_dir(b.downloads())
            .ok()
            .and_then(|d| d.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "csv")));
        if let Some(path) = found {
            break std::fs::read_to_string(path).unwrap();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "no CSV downloaded");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 56, "header + 55 events");
    assert!(
        lines[0].trim_start_matches('\u{feff}').starts_with("occurred_at,outcome,identity_provider"),
        "{}",
        lines[0]
    );
    assert!(csv.contains("\"'=HYPERLINK(\"\"https://evil.example\"\")\""), "a formula is not left live: {csv}");
    ui.assert_clean_console().await;

    // The service account is configured on another page of the app: Jira is asked to open it.
    b.click_on("#tab-start").await;
    b.click_on("[data-module=api-token]").await;
    b.leave_frames().await;
    let navigations = b
        .wait_until(
            "Jira was asked to navigate",
            "return window.__host.navigations.length && window.__host.navigations;",
        )
        .await;
    assert_eq!(navigations, json!([["addonmodule", { "moduleKey": "api-token" }]]));
    ui.browser_close().await;
}

#[tokio::test]
async fn aggregate_metadata_asks_which_idp_and_an_idp_can_be_turned_off() {
    let _slot = browser_slot().await;
    let Some(ui) = Ui::start().await else { return };
    let b = &ui.browser;
    ui.open("identity-providers").await;
    b.click_on("#idp-list-view .toolbar [data-action=add-idp]").await;
    b.fill("#add-name", "Partner IdP").await;
    b.click_on("#add-idp-form input[name=source][value=file]").await;
    let file = b.wait_for("#add-metadata-file").await;
    b.send_keys(&file, fixture_path("simplesamlphp-aggregate-three-idps.xml").to_str().unwrap()).await;
    b.click_on("#add-idp-form button[type=submit]").await;

    // The candidates from the server, to choose from; nothing saved yet.
    b.wait_for("#add-idp-form [data-field=entity] input[type=radio]").await;
    let choices = b
        .exec(
            "return [...document.querySelectorAll('#add-idp-form [data-field=entity] input')].map(i => i.value);",
            vec![],
        )
        .await;
    let idp2 = "https://idp2.example.com/simplesaml/saml2/idp/metadata.php";
    assert_eq!(choices.as_array().unwrap().len(), 3, "{choices}");
    assert!(choices.as_array().unwrap().contains(&json!(idp2)), "{choices}");
    assert!(ui.idps().await.is_empty());
    b.click_on(&format!("#add-idp-form [data-field=entity] input[value='{idp2}']")).await;
    b.click_on("#add-idp-form button[type=submit]").await;
    b.wait_text("#idp-list .idp-card", idp2).await;
    let idps = ui.idps().await;
    assert_eq!(idps.len(), 1);
    assert_eq!(idps[0]["entity_id"], idp2);

    // Turn off, then on again.
    b.click_on("#idp-list .idp-card [data-idp-action=toggle]").await;
    b.wait_text("#idp-list .idp-card .idp-status", "is off").await;
    assert_eq!(ui.idps().await[0]["enabled"], false);
    assert_eq!(b.text_of("#idp-list .idp-card [data-idp-action=toggle]").await, "Turn on");
    b.click_on("#idp-list .idp-card [data-idp-action=toggle]").await;
    b.wait_text("#idp-list .idp-card .idp-status", "is on").await;
    assert_eq!(ui.idps().await[0]["enabled"], true);
    ui.assert_clean_console().await;
    ui.browser_close().await;
}

impl Ui {
    async fn browser_close(self) {
        self.browser.close().await;
    }
}

#[tokio::test]
async fn every_admin_page_route_is_admin_checked_and_opens_its_tab() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.jira.make_admin(ADMIN);
    let site = app.jira.site("acme");
    app.installed(&site).await;
    for (path, tab) in [
        ("/admin/get-started", "start"),
        ("/admin/configure", "idps"),
        ("/admin/identity-providers", "idps"),
        ("/admin/service-provider", "sp"),
        ("/admin/login-activity", "activity"),
    ] {
        let r = app.load_page(&site, path, ADMIN).await;
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("script-src 'self' https://connect-cdn.atl-paas.net;"), "{path}: {csp}");
        let body = r.text().await.unwrap();
        assert!(body.contains(&format!("data-initial-tab=\"{tab}\"")), "{path}");
        assert!(
            body.contains(&format!("id=\"tab-{tab}\" aria-controls=\"panel-{tab}\" aria-selected=\"true\"")),
            "{path}"
        );
        assert!(
            !body.contains("<script>") && !body.contains(" style=\"") && !body.contains(" onclick="),
            "{path}: nothing inline"
        );
        assert_eq!(app.load_page(&site, path, "557058:agent").await.status(), 403, "{path}: not an admin");
        assert_eq!(app.get(path).await.status(), 401, "{path}: no token");
    }
}
