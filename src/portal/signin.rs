//! The customer's way in: a helpdesk page without a session sends the customer to their IdP. One
//! enabled IdP: straight to `/t/{tenant}/login?idp=…&return_to=<the page>`. Several: a page listing
//! them, with an email box that picks the IdP serving the email's domain.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_SECURITY_POLICY, ContentType, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::PortalError;
use super::error::message_page;
use super::pages::{Chrome, Urls};
use crate::saml::idp::Idp;
use crate::saml::login::safe_return_to;
use crate::saml::session::customer_tenant;
use crate::saml::sp::SpEndpoints;
use crate::startup::AppState;
use crate::tenants::Tenant;
use crate::web::WebError;

#[derive(Template)]
#[template(path = "portal/choose_idp.html")]
struct ChooseIdp<'a> {
    chrome: &'a Chrome,
    choices: Vec<(String, String)>,
    email_action: String,
    return_to: &'a str,
    email: &'a str,
    error: Option<String>,
}

/// This page's path and query, as a `return_to` (the help center when it is not an acceptable one).
pub fn return_to_here(state: &AppState, tenant: &Tenant, req: &HttpRequest) -> String {
    let here = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    safe_return_to(state, tenant, Some(here))
        .or_else(|_| safe_return_to(state, tenant, Some(req.path())))
        .unwrap_or_else(|_| Urls::new(state, tenant).help_center())
}

fn login_url(state: &AppState, tenant: &Tenant, idp: &Idp, return_to: &str) -> String {
    let sp = SpEndpoints::new(&state.settings.base_url, &tenant.public_id);
    format!("{}?idp={}&return_to={}", sp.login_url, idp.id, super::jsm::q(return_to))
}

async fn enabled_idps(state: &AppState, tenant: &Tenant) -> Result<Vec<Idp>, PortalError> {
    Ok(state.store.list_idps(&tenant.id).await?.into_iter().filter(|i| i.enabled).collect())
}

fn chooser(
    state: &AppState,
    tenant: &Tenant,
    chrome: &Chrome,
    idps: &[Idp],
    return_to: &str,
    email: &str,
    error: Option<String>,
) -> Result<HttpResponse, PortalError> {
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    // The email form's answer redirects to the IdP; browsers apply `form-action` to that redirect too.
    let mut form_action = vec!["'self'".to_string()];
    for idp in idps {
        if let Ok(url) = url::Url::parse(&idp.sso.location) {
            let origin = url.origin().ascii_serialization();
            if url.origin().is_tuple() && !form_action.contains(&origin) {
                form_action.push(origin);
            }
        }
    }
    let csp = format!(
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action {}",
        form_action.join(" ")
    );
    let page = ChooseIdp {
        chrome,
        choices: idps.iter().map(|i| (i.name.clone(), login_url(state, tenant, i, return_to))).collect(),
        email_action: Urls::new(state, tenant).email_sign_in(),
        return_to,
        email,
        error,
    };
    Ok(HttpResponse::build(status)
        .insert_header((CONTENT_SECURITY_POLICY, csp))
        .content_type(ContentType::html())
        .body(page.render()?))
}

/// The answer to a helpdesk page opened without a session.
pub async fn sign_in(
    state: &AppState,
    tenant: &Tenant,
    chrome: &Chrome,
    return_to: &str,
) -> Result<HttpResponse, PortalError> {
    let idps = enabled_idps(state, tenant).await?;
    match idps.as_slice() {
        [] => Ok(message_page(
            chrome,
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is not available",
            "This helpdesk has no way to sign in yet. Please contact the team that runs it.",
            None,
            None,
        )),
        [only] => {
            Ok(HttpResponse::SeeOther().insert_header((LOCATION, login_url(state, tenant, only, return_to))).finish())
        }
        several => chooser(state, tenant, chrome, several, return_to, "", None),
    }
}

#[derive(Deserialize)]
pub struct EmailQuery {
    email: Option<String>,
    return_to: Option<String>,
}

/// `GET /t/{tenant}/portals/sign-in?email=&return_to=`: the IdP that serves the email's domain.
pub async fn by_email(
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    query: web::Query<EmailQuery>,
) -> Result<HttpResponse, WebError> {
    let tenant = customer_tenant(&state, &tenant).await?;
    let chrome = Chrome::new(&state, &tenant);
    let return_to = safe_return_to(&state, &tenant, query.return_to.as_deref())
        .unwrap_or_else(|_| Urls::new(&state, &tenant).help_center());
    let email = query.email.as_deref().unwrap_or("").trim().to_string();
    let result = async {
        let idps = enabled_idps(&state, &tenant).await?;
        if idps.len() < 2 {
            return sign_in(&state, &tenant, &chrome, &return_to).await;
        }
        if !email.contains('@') {
            let error = Some("Enter your work email address, like name@example.com.".to_string());
            return chooser(&state, &tenant, &chrome, &idps, &return_to, &email, error);
        }
        match idps.iter().find(|i| i.serves_email(&email)) {
            Some(idp) => Ok(HttpResponse::SeeOther()
                .insert_header((LOCATION, login_url(&state, &tenant, idp, &return_to)))
                .finish()),
            None => {
                let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
                let error = Some(format!("No sign-in is set up for {domain}. Choose how you sign in below."));
                chooser(&state, &tenant, &chrome, &idps, &return_to, &email, error)
            }
        }
    }
    .await;
    Ok(result.unwrap_or_else(|e| e.page(&chrome)))
}
