//! Atlassian Connect: the descriptor, the signed lifecycle calls, and the authentication of every
//! request Jira makes to us. Nothing outside this module knows about client keys or Connect JWTs:
//! handlers receive an [`auth::JiraUser`] (a tenant and an account id).

mod admin;
pub mod auth;
mod descriptor;
mod error;
mod install_keys;
pub mod jwt;
mod lifecycle;
pub mod qsh;

use actix_web::web;
use secrecy::SecretString;

pub use admin::AdminChecker;
pub use error::ConnectError;
pub use install_keys::InstallKeys;

use crate::jira::JiraAuth;
use crate::startup::AppState;
use crate::store::sealing_context;
use crate::tenants::Tenant;

/// Connect's routes (descriptor and lifecycle).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/atlassian-connect.json", web::get().to(descriptor::get))
        .route("/connect/installed", web::post().to(lifecycle::installed))
        .route("/connect/uninstalled", web::post().to(lifecycle::uninstalled))
        .route("/connect/enabled", web::post().to(lifecycle::enabled))
        .route("/connect/disabled", web::post().to(lifecycle::disabled));
}

pub(crate) fn shared_secret_context(client_key: &str) -> String {
    sealing_context("connect_installations", "shared_secret", client_key)
}

/// How the app authenticates its own calls to a tenant's Jira (`None` when the tenant was not installed
/// through Connect).
pub async fn app_auth(state: &AppState, tenant: &Tenant) -> Result<Option<JiraAuth>, ConnectError> {
    let Some((client_key, sealed)) = state.store.connect_secret_of(&tenant.id).await? else {
        return Ok(None);
    };
    let secret: SecretString = state
        .keyring
        .open(&sealed, &shared_secret_context(&client_key))
        .map_err(|e| ConnectError::Unexpected(e.into()))?;
    Ok(Some(JiraAuth::App { app_key: state.settings.app_key.clone(), shared_secret: secret }))
}
