//! Customer-facing SAML routes under `/t/{tenant}`.

use actix_web::{HttpRequest, HttpResponse, web};

use super::session::customer_tenant;
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
        .route("/t/{tenant}/", web::get().to(crate::portal::helpdesk::help_center));
}

/// `GET /t/{tenant}/saml/metadata`: public, IdPs fetch it.
async fn metadata(
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    let tenant = customer_tenant(&state, &tenant).await?;
    let keys = keys(&state, &tenant).await.map_err(|e| WebError::internal(&e.into(), ErrorFormat::Html))?;
    let xml = metadata_xml(&SpEndpoints::new(&state.settings.base_url, &tenant.public_id), &keys);
    let mut response = HttpResponse::Ok();
    response.content_type("application/samlmetadata+xml");
    if req.query_string().contains("download") {
        response.insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"jsm-sso-{}-metadata.xml\"", tenant.public_id),
        ));
    }
    Ok(response.body(xml))
}
