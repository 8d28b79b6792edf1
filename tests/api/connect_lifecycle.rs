//! Signed install, re-install, forged installs, uninstall, enabled/disabled.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::db_test;
use crate::helpers::*;

const ADMIN: &str = "557058:admin";

db_test!(genuine_install_stores_the_tenant_with_its_secret_sealed, async |backend| {
    let app = TestApp::spawn(backend).await;
    let site = app.jira.site("acme");
    app.installed(&site).await;

    let rows = app
        .db
        .rows(
            "SELECT t.status, t.product_base_url, t.help_center_url, c.client_key, c.shared_secret, t.public_id \
               FROM tenants t JOIN connect_installations c ON c.tenant_id = t.id",
        )
        .await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row[0], "installed");
    assert_eq!(row[1], site.base_url);
    assert_eq!(row[2], format!("{}/help", site.base_url));
    assert_eq!(row[3], site.client_key);
    assert!(!row[4].contains(&site.shared_secret), "the shared secret is stored sealed");
    assert!(row[4].starts_with("v1."));
    assert_eq!(row[5].len(), 16);
    // The tenant's SAML signing key exists from the install on, sealed.
    let keys = app.db.rows("SELECT state, private_key FROM sp_keys").await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0][0], "current");
    assert!(keys[0][1].starts_with("v1.") && !keys[0][1].contains("PRIVATE KEY"));

    // ...and it works: Jira can now load an admin page.
    app.jira.make_admin(ADMIN);
    assert_eq!(app.load_page(&site, "/admin/get-started", ADMIN).await.status(), 200);
});

db_test!(reinstall_rotates_the_shared_secret, async |backend| {
    let app = TestApp::spawn(backend).await;
    app.jira.make_admin(ADMIN);
    let old = app.jira.site("acme");
    app.installed(&old).await;
    let public_id = app.db.rows("SELECT public_id FROM tenants").await[0][0].clone();

    let new = Site { shared_secret: "rotated-secret".into(), ..old.clone() };
    app.jira.trust(&new);
    app.installed(&new).await;

    assert_eq!(app.tenant_count().await, 1, "a re-install updates the tenant");
    assert_eq!(app.db.rows("SELECT public_id FROM tenants").await[0][0], public_id);
    assert_eq!(app.load_page(&old, "/admin/get-started", ADMIN).await.status(), 401, "old secret refused");
    assert_eq!(app.load_page(&new, "/admin/get-started", ADMIN).await.status(), 200, "new secret accepted");
});

db_test!(site_import_with_a_new_client_key_is_a_new_tenant, async |backend| {
    let app = TestApp::spawn(backend).await;
    let original = app.jira.site("acme");
    app.installed(&original).await;
    let imported = Site { client_key: format!("{}-imported", original.client_key), ..original.clone() };
    app.installed(&imported).await;
    assert_eq!(app.tenant_count().await, 2);
});

/// Each forged install is refused with 401 (or 503 when the key server is down) and changes nothing:
/// neither a new tenant nor an overwritten secret.
async fn assert_forged(
    app: &TestApp,
    victim: &Site,
    tweaks: InstallTweaks,
    payload_edit: impl Fn(&mut serde_json::Value),
    expected: u16,
) {
    let attacker = Site { shared_secret: "attacker-secret".into(), ..victim.clone() };
    let mut payload = install_payload(app, &attacker);
    payload_edit(&mut payload);
    let token = install_token(app, &attacker, "/connect/installed", tweaks);
    let before = app
        .db
        .rows("SELECT c.shared_secret, t.status FROM connect_installations c JOIN tenants t ON t.id = c.tenant_id")
        .await;
    let r = app.post_lifecycle("/connect/installed", &token, &payload).await;
    assert_eq!(r.status().as_u16(), expected, "{}", r.text().await.unwrap());
    let after = app
        .db
        .rows("SELECT c.shared_secret, t.status FROM connect_installations c JOIN tenants t ON t.id = c.tenant_id")
        .await;
    assert_eq!(before, after, "a refused install changed stored state");
    // The attacker's secret does not open anything.
    assert_eq!(app.load_page(&attacker, "/admin/get-started", ADMIN).await.status(), 401);
}

db_test!(forged_installs_are_refused_without_any_change, async |backend| {
    let app = TestApp::spawn(backend).await;
    app.jira.make_admin(ADMIN);
    let victim = app.jira.site("victim");
    app.installed(&victim).await;
    let none = |_: &mut serde_json::Value| {};

    // Signed by a key the key server does not know under that kid.
    assert_forged(&app, &victim, InstallTweaks { sign_with_attacker_key: true, ..Default::default() }, none, 401).await;
    // Unknown kid.
    assert_forged(
        &app,
        &victim,
        InstallTweaks { kid: Some(Some("unknown-kid".into())), ..Default::default() },
        none,
        401,
    )
    .await;
    // Path tricks in the kid never reach the key server.
    assert_forged(
        &app,
        &victim,
        InstallTweaks { kid: Some(Some("../keys/x".into())), ..Default::default() },
        none,
        401,
    )
    .await;
    // No kid.
    assert_forged(&app, &victim, InstallTweaks { kid: Some(None), ..Default::default() }, none, 401).await;
    // Wrong audience.
    assert_forged(
        &app,
        &victim,
        InstallTweaks { aud: Some("https://evil.example.com".into()), ..Default::default() },
        none,
        401,
    )
    .await;
    // qsh of another request.
    let other_qsh = jsm_sso::connect::qsh::qsh("POST", "/connect/uninstalled", "", "");
    assert_forged(&app, &victim, InstallTweaks { qsh: Some(other_qsh), ..Default::default() }, none, 401).await;
    // Expired (beyond the 30 s leeway).
    assert_forged(&app, &victim, InstallTweaks { exp_offset: Some(-120), ..Default::default() }, none, 401).await;
    // iss differs from the body's clientKey.
    assert_forged(&app, &victim, InstallTweaks { iss: Some("someone-else".into()), ..Default::default() }, none, 401)
        .await;
    // Product URL not allowed.
    assert_forged(&app, &victim, InstallTweaks::default(), |p| p["baseUrl"] = json!("https://evil.example.com"), 401)
        .await;
    // Another app's payload.
    assert_forged(&app, &victim, InstallTweaks::default(), |p| p["key"] = json!("other-app"), 401).await;

    // Key server down: 503, never 500, and nothing changes.
    app.jira.set_key_server_down(true);
    assert_forged(
        &app,
        &victim,
        InstallTweaks { kid: Some(Some("fresh-kid-not-cached".into())), ..Default::default() },
        none,
        503,
    )
    .await;
    app.jira.set_key_server_down(false);

    // The victim still works with its genuine secret.
    assert_eq!(app.load_page(&victim, "/admin/get-started", ADMIN).await.status(), 200);
});

db_test!(install_tokens_with_other_algorithms_are_refused, async |backend| {
    let app = TestApp::spawn(backend).await;
    let site = app.jira.site("acme");
    let payload = install_payload(&app, &site);
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": site.client_key, "aud": [app.base_url()], "qsh": jsm_sso::connect::qsh::qsh("POST", "/connect/installed", "", ""), "iat": now, "exp": now + 180});

    // HS256 signed with the secret in the body (the pre-2021 hole).
    let hs = hs256(&claims, &site.shared_secret);
    assert_eq!(app.post_lifecycle("/connect/installed", &hs, &payload).await.status(), 401);

    // alg: none.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    assert_eq!(app.post_lifecycle("/connect/installed", &none, &payload).await.status(), 401);

    // No token at all.
    let r = app.http.post(app.url("/connect/installed")).json(&payload).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // Not JSON.
    let token = install_token(&app, &site, "/connect/installed", InstallTweaks::default());
    let r = app
        .http
        .post(app.url("/connect/installed"))
        .header("Authorization", format!("JWT {token}"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(app.tenant_count().await, 0);
});

db_test!(uninstall_refuses_every_later_request_and_data_is_purged_after_30_days, async |backend| {
    let app = TestApp::spawn(backend).await;
    app.jira.make_admin(ADMIN);
    let site = app.jira.site("acme");
    app.installed(&site).await;

    // A forged uninstall changes nothing.
    let forged = install_token(
        &app,
        &site,
        "/connect/uninstalled",
        InstallTweaks { sign_with_attacker_key: true, ..Default::default() },
    );
    assert_eq!(app.post_lifecycle("/connect/uninstalled", &forged, &install_payload(&app, &site)).await.status(), 401);
    assert_eq!(app.db.rows("SELECT status FROM tenants").await[0][0], "installed");

    let token = install_token(&app, &site, "/connect/uninstalled", InstallTweaks::default());
    let r = app.post_lifecycle("/connect/uninstalled", &token, &install_payload(&app, &site)).await;
    assert_eq!(r.status(), 204);
    assert_eq!(app.db.rows("SELECT status FROM tenants").await[0][0], "uninstalled");
    assert_eq!(app.load_page(&site, "/admin/get-started", ADMIN).await.status(), 401);
    assert_eq!(app.api_get(&site, "/api/v1/tenant", ADMIN).await.status(), 401);

    // Kept for 30 days, then purged with everything that belongs to it.
    let now = chrono::Utc::now();
    assert_eq!(app.store.purge_uninstalled_tenants(now - chrono::Duration::days(30)).await.unwrap(), 0);
    assert_eq!(app.tenant_count().await, 1);
    assert_eq!(app.store.purge_uninstalled_tenants(now + chrono::Duration::days(1)).await.unwrap(), 1);
    assert_eq!(app.tenant_count().await, 0);
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM connect_installations").await, 0);
});

db_test!(reinstall_after_uninstall_restores_the_tenant, async |backend| {
    let app = TestApp::spawn(backend).await;
    app.jira.make_admin(ADMIN);
    let site = app.jira.site("acme");
    app.installed(&site).await;
    let token = install_token(&app, &site, "/connect/uninstalled", InstallTweaks::default());
    app.post_lifecycle("/connect/uninstalled", &token, &install_payload(&app, &site)).await;
    app.installed(&site).await;
    assert_eq!(
        app.db.rows("SELECT status, uninstalled_at FROM tenants").await[0],
        vec!["installed".to_string(), String::new()]
    );
    assert_eq!(app.load_page(&site, "/admin/get-started", ADMIN).await.status(), 200);
});

db_test!(enabled_and_disabled_need_the_shared_secret, async |backend| {
    let app = TestApp::spawn(backend).await;
    let site = app.jira.site("acme");
    app.installed(&site).await;
    let call = |path: &'static str, secret: String| {
        let claims = page_claims(&site, "POST", path, None);
        let token = hs256(&claims, &secret);
        let app = &app;
        async move { app.http.post(app.url(path)).header("Authorization", format!("JWT {token}")).send().await.unwrap() }
    };
    assert_eq!(call("/connect/disabled", "wrong".into()).await.status(), 401);
    assert_eq!(app.db.rows("SELECT status FROM tenants").await[0][0], "installed");
    assert_eq!(call("/connect/disabled", site.shared_secret.clone()).await.status(), 204);
    assert_eq!(app.db.rows("SELECT status FROM tenants").await[0][0], "disabled");
    assert_eq!(call("/connect/enabled", site.shared_secret.clone()).await.status(), 204);
    assert_eq!(app.db.rows("SELECT status FROM tenants").await[0][0], "enabled");
});
