//! Customer-facing SAML routes under `/t/{tenant}`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::pages::{MessagePage, message};
use super::session::{Customer, customer_tenant};
use super::sp::{SpEndpoints, keys, metadata_xml};
use crate::startup::AppState;
use crate::web::{ErrorFormat, WebError};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/t/{tenant}/saml/metadata", web::get().to(metadata))
        .route("/t/{tenant}/login", web::get().to(super::login::login))
        .route("/t/{tenant}/saml/acs", web::post().to(super::acs::acs))
        .route("/t/{tenant}/session", web::get().to(super::session::get_session))
        .route("/t/{tenant}/logout", web::get().to(super::slo::logout))
        .route("/t/{tenant}/saml/slo", web::get().to(super::slo::slo_get))
        .route("/t/{tenant}/saml/slo", web::post().to(super::slo::slo_post))
        .route("/t/{tenant}/", web::get().to(home));
}

/// `GET /t/{tenant}/saml/metadata`: public, IdPs fetch it.
async fn metadata(state: web::Data<AppState>, tenant: web::Path<String>, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let tenant = customer_tenant(&state, &tenant).await?;
    let keys = keys(&state, &tenant).await.map_err(|e| WebError::internal(&e.into(), ErrorFormat::Html))?;
    let xml = metadata_xml(&SpEndpoints::new(&state.settings.base_url, &tenant.public_id), &keys);
    let mut response = HttpResponse::Ok();
    response.content_type("application/samlmetadata+xml");
    if req.query_string().contains("download") {
        response.insert_header(("Content-Disposition", format!("attachment; filename=\"jsm-sso-{}-metadata.xml\"", tenant.public_id)));
    }
    Ok(response.body(xml))
}

/// The tenant's customer home until the helpdesk portal takes this place: who is signed in, or a
/// sign-in link.
async fn home(state: web::Data<AppState>, req: HttpRequest, tenant: web::Path<String>) -> Result<HttpResponse, WebError> {
    let tenant = customer_tenant(&state, &tenant).await?;
    let sp = SpEndpoints::new(&state.settings.base_url, &tenant.public_id);
    let site = tenant.site_name();
    Ok(match Customer::find(&state, &req, tenant).await? {
        Some(c) => {
            let who = c.session.display_name.clone().or(c.session.email.clone()).unwrap_or(c.session.name_id.clone());
            let text = format!("You are signed in to the {site} helpdesk as {who}.");
            message(&state, MessagePage { status: StatusCode::OK, title: "Signed in", message: &text, reference: None, link: None })
        }
        None => {
            let text = format!("Sign in to the {site} helpdesk with your organisation's account.");
            message(&state, MessagePage { status: StatusCode::OK, title: "Sign in", message: &text, reference: None, link: Some((&sp.login_url, "Sign in")) })
        }
    })
}
