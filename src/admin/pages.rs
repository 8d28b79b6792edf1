use actix_web::http::header::{CONTENT_SECURITY_POLICY, ContentType};
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::connect::auth::{AdminPage, JiraUser};
use crate::startup::AppState;
use crate::web::{ErrorFormat, WebError, iframe_csp};

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct Overview<'a> {
    asset_base: &'a str,
    heading: &'a str,
    site_name: String,
    site_url: String,
    tenant_url: String,
    status: &'a str,
}

fn render(state: &AppState, user: &JiraUser<AdminPage>, heading: &str) -> Result<HttpResponse, WebError> {
    let tenant = &user.tenant;
    let page = Overview {
        asset_base: state.settings.base_url.as_str(),
        heading,
        site_name: tenant.site_name(),
        site_url: tenant.product_base_url.as_str().trim_end_matches('/').to_string(),
        tenant_url: state.settings.base_url.join(&format!("/t/{}", tenant.public_id)),
        status: tenant.status.as_str(),
    };
    let body = page.render().map_err(|e| WebError::internal(&e.into(), ErrorFormat::Html))?;
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_SECURITY_POLICY, iframe_csp(tenant)))
        .content_type(ContentType::html())
        .body(body))
}

pub async fn get_started(state: web::Data<AppState>, user: JiraUser<AdminPage>) -> Result<HttpResponse, WebError> {
    render(&state, &user, "Get started with SAML single sign-on")
}

pub async fn configure(state: web::Data<AppState>, user: JiraUser<AdminPage>) -> Result<HttpResponse, WebError> {
    render(&state, &user, "Configure SAML single sign-on")
}

pub async fn identity_providers(
    state: web::Data<AppState>,
    user: JiraUser<AdminPage>,
) -> Result<HttpResponse, WebError> {
    render(&state, &user, "Identity providers")
}
