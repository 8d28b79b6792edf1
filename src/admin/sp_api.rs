//! The admin JSON API for the tenant's service provider: what to enter at the IdP, and the SP
//! certificate rollover.
//!
//! * `GET /api/v1/sp`, `GET /api/v1/sp/metadata`
//! * `POST /api/v1/sp/certificate/next`, `POST /api/v1/sp/certificate/promote`

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::idp_api::ApiError;
use crate::connect::auth::{AdminApi, JiraUser};
use crate::saml::sp::{self, SpEndpoints, SpKeys};
use crate::startup::AppState;
use crate::tenants::Tenant;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/sp", web::get().to(get))
        .route("/api/v1/sp/metadata", web::get().to(metadata))
        .route("/api/v1/sp/certificate/next", web::post().to(create_next))
        .route("/api/v1/sp/certificate/promote", web::post().to(promote));
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Serialize)]
struct SpInfo {
    entity_id: String,
    acs_url: String,
    slo_url: String,
    metadata_url: String,
    login_url: String,
    /// What the IdP must put in the assertion's AudienceRestriction: the entity ID.
    audience: String,
    /// What the IdP must put in SubjectConfirmationData/@Recipient and the Response's Destination.
    recipient: String,
    certificate_pem: String,
    certificate_fingerprint_sha256: String,
    certificate_not_after: String,
    next_certificate_pem: Option<String>,
    next_certificate_fingerprint_sha256: Option<String>,
    next_certificate_not_after: Option<String>,
}

fn info(state: &AppState, tenant: &Tenant, keys: &SpKeys) -> SpInfo {
    let e = SpEndpoints::new(&state.settings.base_url, &tenant.public_id);
    SpInfo {
        audience: e.entity_id.clone(),
        recipient: e.acs_url.clone(),
        entity_id: e.entity_id,
        acs_url: e.acs_url,
        slo_url: e.slo_url,
        metadata_url: e.metadata_url,
        login_url: e.login_url,
        certificate_pem: keys.current.certificate_pem.clone(),
        certificate_fingerprint_sha256: keys.current.fingerprint_sha256.clone(),
        certificate_not_after: rfc3339(keys.current.not_after),
        next_certificate_pem: keys.next.as_ref().map(|k| k.certificate_pem.clone()),
        next_certificate_fingerprint_sha256: keys.next.as_ref().map(|k| k.fingerprint_sha256.clone()),
        next_certificate_not_after: keys.next.as_ref().map(|k| rfc3339(k.not_after)),
    }
}

/// `GET /api/v1/sp`: creates the SP key on first use.
async fn get(user: JiraUser<AdminApi>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let keys = sp::keys(&state, &user.tenant).await.map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(info(&state, &user.tenant, &keys)))
}

/// `GET /api/v1/sp/metadata`: the same document as the public `/t/{tenant}/saml/metadata`.
async fn metadata(user: JiraUser<AdminApi>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let keys = sp::keys(&state, &user.tenant).await.map_err(ApiError::internal)?;
    let endpoints = SpEndpoints::new(&state.settings.base_url, &user.tenant.public_id);
    Ok(HttpResponse::Ok()
        .content_type("application/samlmetadata+xml; charset=utf-8")
        .body(sp::metadata_xml(&endpoints, &keys)))
}

/// `POST /api/v1/sp/certificate/next`: idempotent; an existing next certificate is kept.
async fn create_next(user: JiraUser<AdminApi>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let keys = sp::create_next_key(&state, &user.tenant).await.map_err(ApiError::internal)?;
    tracing::info!(tenant = %user.tenant.id.as_str(), "next SP certificate available");
    Ok(HttpResponse::Ok().json(info(&state, &user.tenant, &keys)))
}

/// `POST /api/v1/sp/certificate/promote`: the next certificate becomes current; the old one is
/// retired.
async fn promote(user: JiraUser<AdminApi>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.store.promote_next_sp_key(&user.tenant.id, Utc::now()).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_next_certificate",
            "There is no next SP certificate to promote. Create one first (POST /api/v1/sp/certificate/next), give the new metadata to the IdP, then promote it.",
        ));
    }
    tracing::info!(tenant = %user.tenant.id.as_str(), "next SP certificate promoted");
    let keys = sp::keys(&state, &user.tenant).await.map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(info(&state, &user.tenant, &keys)))
}
