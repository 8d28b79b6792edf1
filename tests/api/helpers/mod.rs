//! `TestApp`: the real application on a loopback port, a fresh database, and a fake Jira (which is also
//! Atlassian's install key server) on another loopback port.

pub mod browser;
mod db;
mod fake_jira;
pub mod fake_jsm;
pub mod real_idp;
pub mod saml;
pub mod saml_signer;
mod tokens;

use std::net::TcpListener;

use jsm_sso::config::{BaseUrl, DatabaseUrl, LogFormat, MasterKeySource, Settings, UrlPattern};
use jsm_sso::crypto::MasterKey;
use jsm_sso::startup::Application;
use jsm_sso::store::Store;

pub use db::{Backend, TestDb};
pub use fake_jira::{FakeJira, Site};

/// For tests that need only the fake Jira.
pub mod fake_jira_only {
    pub use super::fake_jira::{FakeJira, Scripted};
}
pub use tokens::*;

/// Declares a test that runs once per backend: `db_test!(name, async |backend| { ... })` becomes
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! db_test {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                ($body)($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(b) = $crate::helpers::Backend::postgres() {
                    ($body)(b).await
                }
            }
        }
    };
}

pub struct TestApp {
    pub address: String,
    pub settings: Settings,
    pub store: Store,
    pub jira: FakeJira,
    pub http: reqwest::Client,
    pub db: TestDb,
}

pub fn test_settings(base_url: &str, db: &DatabaseUrl, jira: &FakeJira) -> Settings {
    Settings {
        base_url: BaseUrl::parse(base_url).unwrap(),
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: db.clone(),
        master_key: MasterKeySource::Explicit(MasterKey::generate()),
        previous_master_keys: vec![],
        app_key: "jsm-sso-test".into(),
        app_name: "SAML SSO (test)".into(),
        install_keys_url: url::Url::parse(&format!("{}/keys", jira.base_url())).unwrap(),
        allowed_product_urls: vec![UrlPattern::parse("http://127.0.0.1:*").unwrap()],
        allow_private_urls: true,
        jwt_leeway: std::time::Duration::from_secs(30),
        log_format: LogFormat::Text,
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns with settings adjusted by `adjust` (the base URL is already set to the real address).
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        init_tracing();
        let db = TestDb::create(backend).await;
        let jira = FakeJira::start().await;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let mut settings = test_settings(&address, &db.url, &jira);
        adjust(&mut settings);
        Self::start(settings, listener, db, jira, address).await
    }

    /// Starts another instance on the same database and fake Jira (several replicas, key rotation).
    pub async fn restart_with(&self, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut settings = self.settings.clone();
        adjust(&mut settings);
        let address = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        // The new instance must answer to the same base URL to keep tokens valid, so only the socket
        // differs; requests go to `address`.
        Self::start(settings, listener, self.db.clone(), self.jira.clone(), address).await
    }

    async fn start(settings: Settings, listener: TcpListener, db: TestDb, jira: FakeJira, address: String) -> TestApp {
        let app = Application::build_on(settings.clone(), listener).await.expect("application builds");
        tokio::spawn(app.run_until_stopped());
        let store = Store::connect(&db.url).await.unwrap();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        TestApp { address, settings, store, jira, http, db }
    }

    /// A `TestApp` that only carries settings (for minting tokens against a service run another way).
    pub async fn probe(settings: Settings, jira: FakeJira, db: TestDb) -> TestApp {
        let address = settings.base_url.as_str().to_string();
        let store = Store::connect(&db.url).await.unwrap();
        TestApp { address, settings, store, jira, http: reqwest::Client::new(), db }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn base_url(&self) -> &str {
        self.settings.base_url.as_str()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// Installs `site` with a genuine signed-install call; returns the response.
    pub async fn install(&self, site: &Site) -> reqwest::Response {
        let token = self.jira.install_token(self, site, "/connect/installed", InstallTweaks::default());
        self.post_lifecycle("/connect/installed", &token, &install_payload(self, site)).await
    }

    pub async fn post_lifecycle(&self, path: &str, token: &str, body: &serde_json::Value) -> reqwest::Response {
        self.http.post(self.url(path)).header("Authorization", format!("JWT {token}")).json(body).send().await.unwrap()
    }

    /// Installs `site` and asserts it worked.
    pub async fn installed(&self, site: &Site) {
        let r = self.install(site).await;
        assert_eq!(r.status(), 204, "install failed: {}", r.text().await.unwrap());
    }

    /// Loads a page the way Jira's iframe does: `GET path?…&jwt=<token signed for this URL>`.
    pub async fn load_page(&self, site: &Site, path_and_query: &str, account: &str) -> reqwest::Response {
        let token = page_token(self, site, "GET", path_and_query, Some(account));
        let sep = if path_and_query.contains('?') { '&' } else { '?' };
        self.get(&format!("{path_and_query}{sep}jwt={token}")).await
    }

    /// Calls the admin API the way our iframe pages do: `Authorization: JWT <context token>`.
    pub async fn api_get(&self, site: &Site, path: &str, account: &str) -> reqwest::Response {
        let token = context_token(site, account);
        self.http.get(self.url(path)).header("Authorization", format!("JWT {token}")).send().await.unwrap()
    }

    pub async fn tenant_count(&self) -> i64 {
        self.db.scalar("SELECT COUNT(*) FROM tenants").await
    }
}

fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            jsm_sso::telemetry::init(LogFormat::Text);
        }
    });
}
