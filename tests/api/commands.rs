//! The command line: master-key rotation, bad configuration, and the binary's own behaviour.

use std::process::Command;

use jsm_sso::commands::rotate_master_key;
use jsm_sso::config::MasterKeySource;
use jsm_sso::crypto::MasterKey;

use crate::db_test;
use crate::helpers::*;

const ADMIN: &str = "557058:admin";

db_test!(master_key_rotation_reseals_every_secret, async |backend| {
    let app = TestApp::spawn(backend).await;
    app.jira.make_admin(ADMIN);
    let a = app.jira.site("acme");
    let b = app.jira.site("globex");
    app.installed(&a).await;
    app.installed(&b).await;
    let MasterKeySource::Explicit(old_key) = app.settings.master_key.clone() else { unreachable!() };
    let before = app.db.rows("SELECT shared_secret FROM connect_installations ORDER BY client_key").await;

    let new_key = MasterKey::generate();
    let rotation = rotate_master_key(&app.settings, Some(new_key.clone())).await.unwrap();
    // Two shared secrets and the two tenants' SAML signing keys.
    assert_eq!(rotation.report.resealed, 4);
    for row in app.db.rows("SELECT private_key FROM sp_keys").await {
        assert!(row[0].starts_with(&format!("v1.{}.", new_key.id())), "{}", row[0]);
    }
    assert!(rotation.written_to.is_none());

    let after = app.db.rows("SELECT shared_secret FROM connect_installations ORDER BY client_key").await;
    for (old, new) in before.iter().zip(&after) {
        assert_ne!(old, new);
        assert!(new[0].starts_with(&format!("v1.{}.", new_key.id())), "{}", new[0]);
    }

    // An instance with only the new key serves both tenants...
    let rotated = app.restart_with(|s| s.master_key = MasterKeySource::Explicit(new_key.clone())).await;
    assert_eq!(rotated.load_page(&a, "/admin/get-started", ADMIN).await.status(), 200);
    assert_eq!(rotated.load_page(&b, "/admin/get-started", ADMIN).await.status(), 200);
    // ...and one with only the old key no longer can (its secrets are gone, not silently readable).
    let stale = app.restart_with(|s| s.master_key = MasterKeySource::Explicit(old_key.clone())).await;
    assert_eq!(stale.load_page(&a, "/admin/get-started", ADMIN).await.status(), 500);

    // Running it again with the same key is refused; with another key it re-seals again.
    assert!(rotate_master_key(&rotated.settings, Some(new_key.clone())).await.is_err());
});

#[tokio::test]
async fn key_file_rotation_replaces_the_file_and_keeps_the_previous_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(Backend::Sqlite).await;
    let jira = FakeJira::start().await;
    let mut settings = test_settings("http://127.0.0.1:1", &db.url, &jira);
    let key_path = dir.path().join("master.key");
    settings.master_key = MasterKeySource::File(key_path.clone());
    let first = jsm_sso::crypto::load_or_create_key_file(&key_path).unwrap();

    let rotation = rotate_master_key(&settings, None).await.unwrap();
    assert_eq!(rotation.written_to.as_deref(), Some(key_path.as_path()));
    let now_in_file = jsm_sso::crypto::load_or_create_key_file(&key_path).unwrap();
    assert_eq!(now_in_file.id(), rotation.new_key.id());
    assert_ne!(now_in_file.id(), first.id());
    let previous = std::fs::read_to_string(key_path.with_extension("key.previous")).unwrap();
    assert_eq!(MasterKey::from_base64(&previous).unwrap().id(), first.id());
    assert!(!key_path.with_extension("key.new").exists());
}

fn binary() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jsm-sso"));
    for (k, _) in std::env::vars() {
        if k.starts_with("JSM_SSO_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn a_bad_configuration_is_refused_with_the_variable_named() {
    let out = binary().arg("check-config").env("JSM_SSO_BASE_URL", "http://sso.example.com").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("JSM_SSO_BASE_URL"), "{err}");
    assert!(err.contains("https"), "{err}");

    let out = binary().arg("serve").env("JSM_SSO_DATABASE_URL", "postgres://localhost/x").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JSM_SSO_MASTER_KEY"));
}

#[test]
fn check_config_and_migrate_work_on_a_fresh_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sub/jsm.db");
    let run = |cmd: &str| {
        binary().arg(cmd).env("JSM_SSO_DATABASE_URL", format!("sqlite://{}", db.display())).output().unwrap()
    };
    let out = run("migrate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(db.exists());
    let out = run("check-config");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration is valid"));
    // The master key was generated beside the database, private.
    let key = dir.path().join("sub/master.key");
    assert!(key.exists());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
}

/// Jira puts JWTs in page URLs; the service must not write them (or secrets) to its log.
#[tokio::test]
async fn tokens_and_secrets_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let jira = FakeJira::start().await;
    jira.make_admin(ADMIN);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let child = binary()
        .env("JSM_SSO_BASE_URL", &base)
        .env("JSM_SSO_LISTEN", format!("127.0.0.1:{port}"))
        .env("JSM_SSO_DATABASE_URL", format!("sqlite://{}", dir.path().join("db.sqlite").display()))
        .env("JSM_SSO_APP_KEY", "jsm-sso-test")
        .env("JSM_SSO_INSTALL_KEYS_URL", format!("{}/keys", jira.base_url()))
        .env("JSM_SSO_ALLOWED_PRODUCT_URLS", "http://127.0.0.1:*")
        .env("JSM_SSO_ALLOW_PRIVATE_URLS", "true")
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(std::fs::File::create(dir.path().join("log")).unwrap()))
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);

    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "the service started");

    let site = jira.site("acme");
    let db = TestDb::create(Backend::Sqlite).await;
    let mut settings = test_settings(&base, &db.url, &jira);
    settings.app_key = "jsm-sso-test".into();
    let probe = TestApp::probe(settings, jira.clone(), db).await;
    let install = install_token(&probe, &site, "/connect/installed", InstallTweaks::default());
    let r = http
        .post(format!("{base}/connect/installed"))
        .header("Authorization", format!("JWT {install}"))
        .json(&install_payload(&probe, &site))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let page = page_token(&probe, &site, "GET", "/admin/get-started", Some(ADMIN));
    let r = http.get(format!("{base}/admin/get-started?jwt={page}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let bad = format!("{page}x");
    assert_eq!(http.get(format!("{base}/admin/get-started?jwt={bad}")).send().await.unwrap().status(), 401);

    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(log.contains("/admin/get-started"), "the log has the requests: {log}");
    for secret in [install.as_str(), page.as_str(), site.shared_secret.as_str()] {
        assert!(!log.contains(secret), "the log leaks a token or secret");
    }
    // Not even a recognisable piece of one.
    assert!(!log.contains(&page[..40]));
    assert!(!log.contains("jwt="));
}

/// Stops the service even when an assertion fails first.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
