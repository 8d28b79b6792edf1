//! The admin JSON API for identity providers and login events:
//!
//! * `GET /api/v1/idps`, `POST /api/v1/idps`
//! * `GET`/`PUT`/`DELETE /api/v1/idps/{id}`, `POST /api/v1/idps/{id}/refresh`
//! * `GET /api/v1/login-events`
//!
//! Every handler takes `JiraUser<AdminApi>` first (verified tenant, admin-checked), and every query is
//! scoped to that tenant: another tenant's id is simply not found. Bodies are read after
//! authentication, so an unauthenticated caller never learns anything about its body. The format is
//! documented in `docs/admin-api.md`.

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::connect::auth::{AdminApi, JiraUser};
use crate::saml::idp::{Idp, IdpCertificate, IdpId, IdpSettings, IdpSource, Warning, binding_name};
use crate::saml::idp_import::{self, CreateIdp, FetchPolicy, ImportError, RefreshChanges, UpdateIdp};
use crate::saml::refresh::{self, RefreshError};
use crate::saml::sp::SpEndpoints;
use crate::startup::AppState;
use crate::store::{LoginEvent, LoginEventFilter, SaveIdpError};
use crate::tenants::Tenant;
use crate::web::{ErrorFormat, WebError};

/// Largest request body: metadata XML (1 MiB) JSON-escaped, with room to spare. Larger documents
/// are refused with `body_too_large` before they are parsed.
const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// Login events per page: default and maximum.
const DEFAULT_EVENT_LIMIT: u32 = 50;
const MAX_EVENT_LIMIT: u32 = 200;
/// Known login event outcomes (the `outcome` filter).
const OUTCOMES: &[&str] = &["success", "failure", "test_success", "test_failure", "logout", "warning"];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/idps", web::get().to(list))
        .route("/api/v1/idps", web::post().to(create))
        .route("/api/v1/idps/{id}", web::get().to(get))
        .route("/api/v1/idps/{id}", web::put().to(update))
        .route("/api/v1/idps/{id}", web::delete().to(delete))
        .route("/api/v1/idps/{id}/refresh", web::post().to(refresh))
        .route("/api/v1/login-events", web::get().to(login_events));
}

// -------------------------------------------------------------------------------------------------
// Errors

/// An admin API error: `{"error": {"code", "message", "field"?, "candidates"?}}`.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    candidates: Option<Vec<String>>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None, candidates: None }
    }

    fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "There is no such identity provider on this site.")
    }

    /// A 500 whose body carries only a reference; the cause is logged under it.
    pub(super) fn internal(cause: impl Into<anyhow::Error>) -> Self {
        WebError::internal(&cause.into(), ErrorFormat::Json).into()
    }

    fn bad_parameter(name: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", message).with_field(name)
    }
}

impl From<WebError> for ApiError {
    fn from(e: WebError) -> Self {
        ApiError { status: e.status, code: e.code, message: e.message, field: e.field, candidates: None }
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: e.code,
            message: e.message,
            field: e.field,
            candidates: e.candidates,
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if let Some(field) = &self.field {
            error["field"] = field.as_str().into();
        }
        if let Some(candidates) = &self.candidates {
            error["candidates"] = candidates.clone().into();
        }
        HttpResponse::build(self.status).json(serde_json::json!({ "error": error }))
    }
}

/// Reads a JSON body (after authentication), with our own limit and error format.
pub(super) async fn json_body<T: DeserializeOwned>(mut payload: web::Payload) -> Result<T, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("The request body is larger than {} MiB.", MAX_BODY_BYTES / (1024 * 1024)),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", "The request body must be a JSON object."));
    }
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("The request body is not valid: {e}."))
    })
}

// -------------------------------------------------------------------------------------------------
// JSON shapes

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Serialize)]
pub(super) struct CertificateJson {
    fingerprint_sha256: String,
    subject: String,
    not_after: String,
    key_bits: u32,
}

impl From<&IdpCertificate> for CertificateJson {
    fn from(c: &IdpCertificate) -> Self {
        CertificateJson {
            fingerprint_sha256: c.fingerprint_sha256.clone(),
            subject: c.subject.clone(),
            not_after: rfc3339(c.not_after),
            key_bits: c.key_bits,
        }
    }
}

#[derive(Serialize)]
struct LastRefreshJson {
    at: Option<String>,
    status: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct IdpJson<'a> {
    id: &'a str,
    name: &'a str,
    enabled: bool,
    entity_id: &'a str,
    sso_url: &'a str,
    sso_binding: &'static str,
    slo_url: Option<&'a str>,
    slo_binding: Option<&'static str>,
    certificates: Vec<CertificateJson>,
    source: &'static str,
    metadata_url: Option<&'a str>,
    metadata_valid_until: Option<String>,
    next_refresh_at: Option<String>,
    settings: &'a IdpSettings,
    warnings: &'a [Warning],
    login_url: String,
    test_url: String,
    last_login_at: Option<String>,
    last_refresh: Option<LastRefreshJson>,
    created_at: String,
    updated_at: String,
}

fn idp_json<'a>(state: &AppState, tenant: &Tenant, idp: &'a Idp) -> IdpJson<'a> {
    let login_url =
        format!("{}?idp={}", SpEndpoints::new(&state.settings.base_url, &tenant.public_id).login_url, idp.id);
    IdpJson {
        id: idp.id.as_str(),
        name: &idp.name,
        enabled: idp.enabled,
        entity_id: &idp.entity_id,
        sso_url: &idp.sso.location,
        sso_binding: binding_name(idp.sso.binding),
        slo_url: idp.slo.as_ref().map(|e| e.location.as_str()),
        slo_binding: idp.slo.as_ref().map(|e| binding_name(e.binding)),
        certificates: idp.certificates.iter().map(CertificateJson::from).collect(),
        source: idp.source.as_str(),
        metadata_url: idp.metadata_url.as_deref(),
        metadata_valid_until: idp.metadata_valid_until.map(rfc3339),
        next_refresh_at: idp.next_refresh_at.map(rfc3339),
        settings: &idp.settings,
        warnings: &idp.warnings,
        test_url: format!("{login_url}&test=1"),
        login_url,
        last_login_at: idp.last_login_at.map(rfc3339),
        last_refresh: (idp.last_refresh_at.is_some() || idp.last_refresh_status.is_some()).then(|| LastRefreshJson {
            at: idp.last_refresh_at.map(rfc3339),
            status: idp.last_refresh_status.clone(),
            error: idp.last_refresh_error.clone(),
        }),
        created_at: rfc3339(idp.created_at),
        updated_at: rfc3339(idp.updated_at),
    }
}

#[derive(Serialize)]
struct ChangesJson {
    certificates_added: Vec<CertificateJson>,
    certificates_removed: Vec<CertificateJson>,
    sso_url_changed: bool,
    slo_url_changed: bool,
}

impl From<&RefreshChanges> for ChangesJson {
    fn from(c: &RefreshChanges) -> Self {
        ChangesJson {
            certificates_added: c.certificates_added.iter().map(CertificateJson::from).collect(),
            certificates_removed: c.certificates_removed.iter().map(CertificateJson::from).collect(),
            sso_url_changed: c.sso_url_changed,
            slo_url_changed: c.slo_url_changed,
        }
    }
}

#[derive(Serialize)]
struct EventJson<'a> {
    id: &'a str,
    seq: i64,
    occurred_at: String,
    idp_id: Option<&'a str>,
    outcome: &'a str,
    reason_code: Option<&'a str>,
    message: &'a str,
    details: &'a serde_json::Value,
    name_id: Option<&'a str>,
    email: Option<&'a str>,
}

impl<'a> From<&'a LoginEvent> for EventJson<'a> {
    fn from(e: &'a LoginEvent) -> Self {
        EventJson {
            id: &e.id,
            seq: e.seq,
            occurred_at: rfc3339(e.occurred_at),
            idp_id: e.idp_id.as_ref().map(IdpId::as_str),
            outcome: &e.outcome,
            reason_code: e.reason_code.as_deref(),
            message: &e.message,
            details: &e.details,
            name_id: e.name_id.as_deref(),
            email: e.email.as_deref(),
        }
    }
}

// -------------------------------------------------------------------------------------------------
// Handlers

fn policy(state: &AppState) -> FetchPolicy {
    FetchPolicy { allow_private: state.settings.allow_private_urls }
}

/// The tenant's IdP with this path id; malformed ids and other tenants' ids are not found.
async fn find(state: &AppState, tenant: &Tenant, raw_id: &str) -> Result<Idp, ApiError> {
    let id = IdpId::parse(raw_id).ok_or_else(ApiError::not_found)?;
    state.store.find_idp(&tenant.id, &id).await?.ok_or_else(ApiError::not_found)
}

fn save_error(e: SaveIdpError) -> ApiError {
    match e {
        SaveIdpError::DuplicateEntityId(entity_id) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "entity_id_in_use",
            format!(
                "This site already has an identity provider with the entity ID {entity_id:?}. Edit that one instead, or delete it first."
            ),
        )
        .with_field("entity_id"),
        SaveIdpError::NoCertificate => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_signing_certificate",
            "An identity provider needs at least one signing certificate.",
        )
        .with_field("certificate_pem"),
        SaveIdpError::Store(e) => e.into(),
    }
}

/// `GET /api/v1/idps`
async fn list(user: JiraUser<AdminApi>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let idps = state.store.list_idps(&user.tenant.id).await?;
    let idps: Vec<IdpJson> = idps.iter().map(|i| idp_json(&state, &user.tenant, i)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "idps": idps })))
}

/// `POST /api/v1/idps`
async fn create(
    user: JiraUser<AdminApi>,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let req: CreateIdp = json_body(payload).await?;
    let now = Utc::now();
    let idp = idp_import::create_idp(&user.tenant.id, req, policy(&state), now).await?;
    state.store.save_idp(&idp, now).await.map_err(save_error)?;
    if idp.last_refresh_status.is_some()
        && let Err(e) = state.store.record_idp_refresh(&idp.id, "ok", "Imported from the metadata URL.", now).await
    {
        tracing::warn!(idp = %idp.id, error = %e, "cannot record the first metadata download");
    }
    let saved = state.store.find_idp(&user.tenant.id, &idp.id).await?.ok_or_else(ApiError::not_found)?;
    tracing::info!(tenant = %user.tenant.id.as_str(), idp = %saved.id, source = saved.source.as_str(), "identity provider added");
    let location = state.settings.base_url.join(&format!("/api/v1/idps/{}", saved.id));
    Ok(HttpResponse::Created().insert_header((LOCATION, location)).json(idp_json(&state, &user.tenant, &saved)))
}

/// `GET /api/v1/idps/{id}`
async fn get(
    user: JiraUser<AdminApi>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let idp = find(&state, &user.tenant, &path).await?;
    Ok(HttpResponse::Ok().json(idp_json(&state, &user.tenant, &idp)))
}

/// `PUT /api/v1/idps/{id}`
async fn update(
    user: JiraUser<AdminApi>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let current = find(&state, &user.tenant, &path).await?;
    let req: UpdateIdp = json_body(payload).await?;
    let now = Utc::now();
    let updated = idp_import::update_idp(&current, req, policy(&state), now).await?;
    // Deleted meanwhile: saving would bring it back.
    if state.store.find_idp(&user.tenant.id, &current.id).await?.is_none() {
        return Err(ApiError::not_found());
    }
    state.store.save_idp(&updated, now).await.map_err(save_error)?;
    if updated.source == IdpSource::MetadataUrl
        && updated.last_refresh_at != current.last_refresh_at
        && let Err(e) =
            state.store.record_idp_refresh(&updated.id, "ok", "Imported from a new metadata URL.", now).await
    {
        tracing::warn!(idp = %updated.id, error = %e, "cannot record the metadata download");
    }
    let saved = state.store.find_idp(&user.tenant.id, &current.id).await?.ok_or_else(ApiError::not_found)?;
    Ok(HttpResponse::Ok().json(idp_json(&state, &user.tenant, &saved)))
}

/// `DELETE /api/v1/idps/{id}`
async fn delete(
    user: JiraUser<AdminApi>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = IdpId::parse(&path).ok_or_else(ApiError::not_found)?;
    if !state.store.delete_idp(&user.tenant.id, &id).await? {
        return Err(ApiError::not_found());
    }
    tracing::info!(tenant = %user.tenant.id.as_str(), idp = %id, "identity provider deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/idps/{id}/refresh`
async fn refresh(
    user: JiraUser<AdminApi>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let idp = find(&state, &user.tenant, &path).await?;
    match refresh::refresh_idp(&state, &idp, Utc::now()).await {
        Ok(done) => Ok(HttpResponse::Ok().json(serde_json::json!({
            "idp": idp_json(&state, &user.tenant, &done.idp),
            "changes": ChangesJson::from(&done.changes),
        }))),
        Err(RefreshError::NotRefreshable) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_refreshable",
            "Only identity providers imported from a metadata URL can be refreshed; replace metadata_xml to update this one.",
        )),
        Err(RefreshError::Superseded) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "changed_concurrently",
            "The identity provider was changed or deleted while its metadata was being refreshed; reload it.",
        )),
        Err(RefreshError::Failed(e)) => Err(e.into()),
        Err(RefreshError::Store(e)) => Err(e.into()),
    }
}

/// `GET /api/v1/login-events?limit=&before=&idp=&outcome=`
async fn login_events(
    user: JiraUser<AdminApi>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut filter = LoginEventFilter { limit: DEFAULT_EVENT_LIMIT, ..Default::default() };
    for (key, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match key.as_ref() {
            "limit" => {
                filter.limit =
                    value.parse::<u32>().ok().filter(|l| (1..=MAX_EVENT_LIMIT).contains(l)).ok_or_else(|| {
                        ApiError::bad_parameter("limit", format!("limit must be 1 to {MAX_EVENT_LIMIT}."))
                    })?;
            }
            "before" => {
                filter.before = Some(value.parse::<i64>().map_err(|_| {
                    ApiError::bad_parameter("before", "before must be the next_before value of a previous page.")
                })?);
            }
            "idp" => {
                filter.idp_id = Some(
                    IdpId::parse(&value)
                        .ok_or_else(|| ApiError::bad_parameter("idp", "idp must be an identity provider id."))?,
                );
            }
            "outcome" => {
                if !OUTCOMES.contains(&value.as_ref()) {
                    return Err(ApiError::bad_parameter(
                        "outcome",
                        format!("outcome must be one of: {}.", OUTCOMES.join(", ")),
                    ));
                }
                filter.outcome = Some(value.into_owned());
            }
            _ => {}
        }
    }
    let page = filter.limit as usize;
    // One more than asked, to know whether there is a next page.
    let fetch = LoginEventFilter { limit: filter.limit + 1, ..filter };
    let mut events = state.store.list_login_events(&user.tenant.id, &fetch).await?;
    let next_before = if events.len() > page {
        events.truncate(page);
        events.last().map(|e| e.seq)
    } else {
        None
    };
    let events: Vec<EventJson> = events.iter().map(EventJson::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "events": events, "next_before": next_before })))
}
