use crate::db_test;
use crate::helpers::TestApp;

db_test!(descriptor_has_the_required_shape, async |backend| {
    let app = TestApp::spawn(backend).await;
    let r = app.get("/atlassian-connect.json").await;
    assert_eq!(r.status(), 200);
    let d: serde_json::Value = r.json().await.unwrap();
    assert_eq!(d["key"], "jsm-sso-test");
    assert_eq!(d["baseUrl"], app.base_url());
    assert_eq!(d["links"]["self"], format!("{}/atlassian-connect.json", app.base_url()));
    assert_eq!(d["authentication"]["type"], "jwt");
    for m in ["signed-install", "context-qsh", "gdpr"] {
        assert_eq!(d["apiMigrations"][m], true, "{m}");
    }
    for (event, path) in [
        ("installed", "/connect/installed"),
        ("uninstalled", "/connect/uninstalled"),
        ("enabled", "/connect/enabled"),
        ("disabled", "/connect/disabled"),
    ] {
        assert_eq!(d["lifecycle"][event], path);
    }
    assert_eq!(d["scopes"], serde_json::json!(["READ"]));

    let modules = &d["modules"];
    assert!(modules["postInstallPage"].is_object(), "postInstallPage is a single object");
    assert!(modules["configurePage"].is_object(), "configurePage is a single object");
    let section = &modules["webSections"][0];
    assert_eq!(section["location"], "admin_plugins_menu");
    let admin_pages = modules["adminPages"].as_array().unwrap();
    assert!(!admin_pages.is_empty());
    let mut pages = vec![&modules["postInstallPage"], &modules["configurePage"]];
    pages.extend(admin_pages);
    for page in &admin_pages[..] {
        assert_eq!(page["location"], format!("admin_plugins_menu/{}", section["key"].as_str().unwrap()));
    }
    for page in pages {
        let key = page["key"].as_str().unwrap();
        assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{key}");
        assert_eq!(page["conditions"][0]["condition"], "user_is_admin", "{key}");
        // Every page URL is served (and refuses a request without a token).
        let url = page["url"].as_str().unwrap();
        assert!(url.starts_with('/'), "{url}");
        assert_eq!(app.get(url).await.status(), 401, "{url}");
    }
});

db_test!(descriptor_follows_the_configured_base_url, async |backend| {
    let app = TestApp::spawn_with(backend, |s| {
        s.base_url = jsm_sso::config::BaseUrl::parse("https://sso.example.com/jsm").unwrap();
        s.app_key = "com.example.sso".into();
    })
    .await;
    // Served under the base URL's path.
    assert_eq!(app.get("/atlassian-connect.json").await.status(), 404);
    let d: serde_json::Value = app.get("/jsm/atlassian-connect.json").await.json().await.unwrap();
    assert_eq!(d["baseUrl"], "https://sso.example.com/jsm");
    assert_eq!(d["key"], "com.example.sso");
    assert!(!d.to_string().contains("{{"), "no placeholder left: {d}");
});
