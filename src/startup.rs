//! One `Application::build`, used by `main` and by the tests.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use chrono::Utc;

use crate::config::{MasterKeySource, Settings};
use crate::connect::{AdminChecker, InstallKeys};
use crate::crypto::{Keyring, load_or_create_key_file};
use crate::jira::JiraClient;
use crate::saml::state::PerIdpCache;
use crate::saml::validate::Verifiers;
use crate::store::Store;

/// Everything a request handler may need. Registered once as `web::Data<AppState>`.
pub struct AppState {
    pub settings: Settings,
    pub store: Store,
    pub keyring: Keyring,
    pub jira: JiraClient,
    pub install_keys: InstallKeys,
    pub admin_checker: AdminChecker,
    /// Parsed IdP signing configuration, per IdP version.
    pub saml_verifiers: PerIdpCache<Verifiers>,
}

/// How long an uninstalled tenant's data is kept.
pub const UNINSTALLED_RETENTION: chrono::Duration = chrono::Duration::days(30);

pub struct Application {
    port: u16,
    server: Server,
    background: Vec<tokio::task::JoinHandle<()>>,
}

/// The master key and any previous ones, as configured.
pub fn resolve_keyring(settings: &Settings) -> anyhow::Result<Keyring> {
    let current = match &settings.master_key {
        MasterKeySource::Explicit(key) => key.clone(),
        MasterKeySource::File(path) => load_or_create_key_file(path).map_err(anyhow::Error::msg)?,
    };
    Ok(Keyring::new(current, settings.previous_master_keys.clone()))
}

impl Application {
    /// Connects and migrates the database, binds the listener and assembles the service; nothing is
    /// served until [`Application::run_until_stopped`].
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let listener =
            TcpListener::bind(settings.listen).with_context(|| format!("cannot listen on {}", settings.listen))?;
        Self::build_on(settings, listener).await
    }

    /// Like [`Application::build`], on a listener the caller already bound (tests bind port 0 first,
    /// so the base URL can name the real port).
    pub async fn build_on(settings: Settings, listener: TcpListener) -> anyhow::Result<Application> {
        let store = Store::connect(&settings.database_url)
            .await
            .with_context(|| format!("cannot open the database {}", settings.database_url))?;
        store.migrate().await.context("cannot migrate the database")?;
        let keyring = resolve_keyring(&settings)?;
        let port = listener.local_addr()?.port();

        let state = web::Data::new(AppState {
            jira: JiraClient::new(settings.allow_private_urls),
            install_keys: InstallKeys::new(settings.install_keys_url.clone()),
            admin_checker: AdminChecker::default(),
            saml_verifiers: PerIdpCache::default(),
            keyring,
            store: store.clone(),
            settings,
        });
        let mut background =
            vec![tokio::spawn(purge_uninstalled_tenants(store.clone())), tokio::spawn(purge_expired_saml_state(store))];
        background.push(tokio::spawn(crate::saml::refresh::run(state.clone())));

        // Everything is served under the base URL's path (a reverse proxy forwards `/prefix/...` as is).
        let prefix = state.settings.base_url.path_prefix().to_string();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::JsonConfig::default().limit(64 * 1024))
                .wrap(from_fn(crate::web::security_headers))
                .wrap(from_fn(crate::web::request_log))
                .service(web::scope(&prefix).configure(routes))
        })
        .listen(listener)?
        .shutdown_timeout(10)
        .run();
        Ok(Application { port, server, background })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM/SIGINT (graceful: in-flight requests finish) or the server is stopped.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for task in self.background {
            task.abort();
        }
        result
    }
}

/// The single route table.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(crate::web::health_routes)
        .configure(crate::web::asset_routes)
        .configure(crate::connect::routes)
        .configure(crate::admin::routes)
        .configure(crate::saml::routes::routes)
        .configure(crate::portal::routes);
}

/// Deletes tenants whose uninstall is older than the retention period, hourly.
async fn purge_uninstalled_tenants(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match store.purge_uninstalled_tenants(Utc::now() - UNINSTALLED_RETENTION).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "purged tenants uninstalled more than 30 days ago"),
            Err(e) => tracing::warn!(error = %e, "purging uninstalled tenants failed"),
        }
    }
}

/// Deletes expired pending requests, replay-cache entries and sessions, every ten minutes.
async fn purge_expired_saml_state(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        if let Err(e) = store.purge_expired_saml_state(Utc::now()).await {
            tracing::warn!(error = %e, "purging expired SAML state failed");
        }
    }
}
