//! The admin pages Jira shows in its iframe. Every page route renders the same single-page admin app
//! (`templates/admin/app.html` + `static/admin.js`) with the tab the route names open first: moving
//! between our own pages inside the iframe would need a new Jira-signed URL, so the sections are tabs
//! of one page instead. The app reads and changes everything through the admin JSON API, with a fresh
//! context token (`AP.context.getToken()`) on every call.
//!
//! The server side stays small: the admin check (`JiraUser<AdminPage>`), the tenant's framing policy
//! (`iframe_csp`), and the facts the page shows before any API call.

use actix_web::http::header::{CONTENT_SECURITY_POLICY, ContentType};
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::connect::auth::{AdminPage, JiraUser};
use crate::startup::AppState;
use crate::web::{ErrorFormat, WebError, iframe_csp};

/// The tabs of the admin app, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    GettingStarted,
    IdentityProviders,
    ServiceProvider,
    LoginActivity,
}

impl Tab {
    /// The id used by the template and the script (`data-initial-tab`, `#tab-<id>`).
    fn id(self) -> &'static str {
        match self {
            Tab::GettingStarted => "start",
            Tab::IdentityProviders => "idps",
            Tab::ServiceProvider => "sp",
            Tab::LoginActivity => "activity",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Tab::GettingStarted => "Get started with SAML single sign-on",
            Tab::IdentityProviders => "Identity providers",
            Tab::ServiceProvider => "Service provider details",
            Tab::LoginActivity => "Login activity",
        }
    }
}

#[derive(Template)]
#[template(path = "admin/app.html")]
struct AdminApp<'a> {
    asset_base: &'a str,
    title: &'a str,
    initial_tab: &'a str,
    site_name: String,
    site_url: String,
    customer_url: String,
    status: &'a str,
}

fn render(state: &AppState, user: &JiraUser<AdminPage>, tab: Tab) -> Result<HttpResponse, WebError> {
    let tenant = &user.tenant;
    let page = AdminApp {
        asset_base: state.settings.base_url.as_str().trim_end_matches('/'),
        title: tab.title(),
        initial_tab: tab.id(),
        site_name: tenant.site_name(),
        site_url: tenant.product_base_url.as_str().trim_end_matches('/').to_string(),
        customer_url: state.settings.base_url.join(&format!("/t/{}", tenant.public_id)),
        status: tenant.status.as_str(),
    };
    let body = page.render().map_err(|e| WebError::internal(&e.into(), ErrorFormat::Html))?;
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_SECURITY_POLICY, iframe_csp(tenant)))
        .content_type(ContentType::html())
        .body(body))
}

/// `GET /admin/get-started` (postInstallPage): the setup checklist.
pub async fn get_started(state: web::Data<AppState>, user: JiraUser<AdminPage>) -> Result<HttpResponse, WebError> {
    render(&state, &user, Tab::GettingStarted)
}

/// `GET /admin/configure` (configurePage): the identity providers, where configuration happens.
pub async fn configure(state: web::Data<AppState>, user: JiraUser<AdminPage>) -> Result<HttpResponse, WebError> {
    render(&state, &user, Tab::IdentityProviders)
}

/// `GET /admin/identity-providers` (adminPage).
pub async fn identity_providers(
    state: web::Data<AppState>,
    user: JiraUser<AdminPage>,
) -> Result<HttpResponse, WebError> {
    render(&state, &user, Tab::IdentityProviders)
}

/// `GET /admin/service-provider` (adminPage): what to enter at the IdP, certificates, setup guides.
pub async fn service_provider(state: web::Data<AppState>, user: JiraUser<AdminPage>) -> Result<HttpResponse, WebError> {
    render(&state, &user, Tab::ServiceProvider)
}

/// `GET /admin/login-activity` (adminPage): recent sign-ins and failures.
pub async fn login_activity(state: web::Data<AppState>, user: JiraUser<AdminPage>) -> Result<HttpResponse, WebError> {
    render(&state, &user, Tab::LoginActivity)
}
