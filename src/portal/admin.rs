//! The helpdesk's admin pages, shown in Jira's iframe (administrators only, checked on the server):
//!
//! * `GET /admin/api-token`: the service account: configure, test, replace, remove.
//! * `GET /admin/substitute-links`: every service desk's substitute link, with copy buttons.
//!
//! The pages are rendered with the current state; their buttons call the admin API with the Connect
//! context token (`/static/portal/admin.js`).

use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, ContentType};
use actix_web::{HttpResponse, web};
use askama::Template;

use super::api_token::TokenInfo;
use super::jsm::Jsm;
use super::portals::{Freshness, PortalLink, directory, links};
use crate::connect::auth::{AdminPage, JiraUser};
use crate::startup::AppState;
use crate::tenants::Tenant;
use crate::web::{ErrorFormat, WebError, iframe_csp};

const ADMIN_JS: &str = include_str!("admin.js");

/// The Jira URL of one of this app's admin pages (module keys as in the descriptor).
fn jira_admin_page(state: &AppState, tenant: &Tenant, module_key: &str) -> String {
    format!(
        "{}/plugins/servlet/ac/{}/{module_key}",
        tenant.display_url.as_ref().unwrap_or(&tenant.product_base_url).as_str().trim_end_matches('/'),
        state.settings.app_key
    )
}

fn page(tenant: &Tenant, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_SECURITY_POLICY, iframe_csp(tenant)))
        .content_type(ContentType::html())
        .body(body)
}

#[derive(Template)]
#[template(path = "portal/admin_api_token.html")]
struct ApiTokenPage<'a> {
    asset_base: &'a str,
    site_name: String,
    token: Option<TokenInfo>,
    links_page: String,
}

/// `GET /admin/api-token`
pub async fn api_token(state: web::Data<AppState>, user: JiraUser<AdminPage>) -> Result<HttpResponse, WebError> {
    let tenant = &user.tenant;
    let token =
        state.store.portal_api_token(&tenant.id).await.map_err(|e| WebError::internal(&e.into(), ErrorFormat::Html))?;
    let body = ApiTokenPage {
        asset_base: state.settings.base_url.as_str(),
        site_name: tenant.site_name(),
        token: token.as_ref().map(TokenInfo::from),
        links_page: jira_admin_page(&state, tenant, "substitute-links"),
    }
    .render()
    .map_err(|e| WebError::internal(&e.into(), ErrorFormat::Html))?;
    Ok(page(tenant, body))
}

#[derive(Template)]
#[template(path = "portal/admin_substitute_links.html")]
struct LinksPage<'a> {
    asset_base: &'a str,
    site_name: String,
    links: Vec<PortalLink>,
    fetched_at: Option<String>,
    problem: Option<String>,
    token_page: String,
}

/// `GET /admin/substitute-links`
pub async fn substitute_links(state: web::Data<AppState>, user: JiraUser<AdminPage>) -> Result<HttpResponse, WebError> {
    let tenant = &user.tenant;
    let result = async {
        let jsm = Jsm::connect(&state, tenant).await?;
        directory(&state, tenant, &jsm, Freshness::Cached).await
    }
    .await;
    let (links, fetched_at, problem) = match result {
        Ok((dir, at)) => (links(&state, tenant, &dir), Some(at.format("%Y-%m-%d %H:%M UTC").to_string()), None),
        Err(e) => (vec![], None, Some(e.api().message)),
    };
    let body = LinksPage {
        asset_base: state.settings.base_url.as_str(),
        site_name: tenant.site_name(),
        links,
        fetched_at,
        problem,
        token_page: jira_admin_page(&state, tenant, "api-token"),
    }
    .render()
    .map_err(|e| WebError::internal(&e.into(), ErrorFormat::Html))?;
    Ok(page(tenant, body))
}

/// `GET /static/portal/admin.js`
pub async fn admin_js() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ContentType("text/javascript; charset=utf-8".parse().expect("valid mime")))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(ADMIN_JS)
}
