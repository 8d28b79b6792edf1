//! `installed` / `uninstalled` (RS256, signed by Atlassian) and `enabled` / `disabled` (HS256 with the
//! shared secret). A refused call changes nothing.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use url::Url;

use super::auth::verify_request;
use super::error::ConnectError;
use super::jwt::{self, QshRule};
use super::shared_secret_context;
use crate::startup::AppState;
use crate::store::NewConnectInstallation;
use crate::tenants::TenantStatus;
use crate::web::{ErrorFormat, WebError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePayload {
    key: String,
    client_key: String,
    #[serde(default)]
    shared_secret: Option<String>,
    base_url: String,
    #[serde(default)]
    display_url: Option<String>,
    #[serde(default)]
    display_url_servicedesk_help_center: Option<String>,
    #[serde(default)]
    product_type: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    installation_id: Option<String>,
    #[serde(default)]
    cloud_id: Option<String>,
}

fn parse_payload(body: &[u8]) -> Result<LifecyclePayload, ConnectError> {
    serde_json::from_slice(body)
        .map_err(|e| ConnectError::BadRequest(format!("the lifecycle payload is not valid: {e}")))
}

/// The signed-install checks of shared/docs/connect.md §2.3, in order.
async fn verify_signed_install(
    state: &AppState,
    req: &HttpRequest,
    payload: &LifecyclePayload,
    now: DateTime<Utc>,
) -> Result<(), ConnectError> {
    let token = jwt::extract_token(req)?;
    let header = jsonwebtoken::decode_header(&token).map_err(|_| {
        ConnectError::unauthorized("the install token's header is malformed or names an unsupported algorithm")
    })?;
    if header.alg != Algorithm::RS256 {
        return Err(ConnectError::unauthorized("install calls must be signed with RS256 (signed install)"));
    }
    let kid = header.kid.ok_or_else(|| ConnectError::unauthorized("the install token has no key id (kid)"))?;
    let key = state.install_keys.key(&kid).await?;
    let claims = jwt::verify_signature(&token, &key, Algorithm::RS256)?;
    let base = state.settings.base_url.as_str();
    if !claims.aud.as_ref().is_some_and(|a| a.contains(base)) {
        return Err(ConnectError::unauthorized(format!("the install token is not addressed to this service ({base})")));
    }
    jwt::check_qsh(&claims, &jwt::request_qsh(req, state.settings.base_url.path_prefix()), QshRule::Exact)?;
    jwt::check_times(&claims, now, state.settings.jwt_leeway.as_secs() as i64)?;
    if claims.iss != payload.client_key {
        return Err(ConnectError::unauthorized("the install token's issuer does not match the payload's clientKey"));
    }
    if payload.key != state.settings.app_key {
        return Err(ConnectError::unauthorized(format!(
            "the payload is for app `{}`, but this service is `{}`",
            payload.key, state.settings.app_key
        )));
    }
    let product = Url::parse(&payload.base_url)
        .map_err(|_| ConnectError::BadRequest("the payload's baseUrl is not a URL".into()))?;
    if !state.settings.product_url_allowed(&product) {
        return Err(ConnectError::unauthorized(format!(
            "installs from {} are not allowed (JSM_SSO_ALLOWED_PRODUCT_URLS)",
            product.origin().ascii_serialization()
        )));
    }
    Ok(())
}

fn optional_url(raw: Option<&str>, field: &str) -> Result<Option<String>, ConnectError> {
    raw.filter(|s| !s.is_empty())
        .map(|s| {
            Url::parse(s)
                .map(|u| u.as_str().trim_end_matches('/').to_string())
                .map_err(|_| ConnectError::BadRequest(format!("the payload's {field} is not a URL")))
        })
        .transpose()
}

async fn handle_installed(state: &AppState, req: &HttpRequest, body: &[u8]) -> Result<HttpResponse, ConnectError> {
    let now = Utc::now();
    let payload = parse_payload(body)?;
    verify_signed_install(state, req, &payload, now).await?;
    let secret = payload
        .shared_secret
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 512)
        .ok_or_else(|| ConnectError::BadRequest("the install payload has no usable sharedSecret".into()))?;
    let base_url = optional_url(Some(&payload.base_url), "baseUrl")?.expect("checked above");
    let display_url = optional_url(payload.display_url.as_deref(), "displayUrl")?;
    let help_center =
        optional_url(payload.display_url_servicedesk_help_center.as_deref(), "displayUrlServicedeskHelpCenter")?;
    let tenant_id = state
        .store
        .upsert_connect_installation(
            NewConnectInstallation {
                client_key: &payload.client_key,
                shared_secret: state.keyring.seal(secret, &shared_secret_context(&payload.client_key)),
                product_base_url: &base_url,
                display_url: display_url.as_deref(),
                help_center_url: help_center.as_deref(),
                product_type: payload.product_type.as_deref(),
                description: payload.description.as_deref(),
                installation_id: payload.installation_id.as_deref(),
                cloud_id: payload.cloud_id.as_deref(),
            },
            now,
        )
        .await?;
    tracing::info!(tenant = %tenant_id.as_str(), site = %base_url, "installed");
    // The tenant's SAML signing key is made now, so the SP metadata is ready when the admin opens the
    // app. A failure here is not the install's: the key is also created on first use.
    if let Some(tenant) = state.store.find_tenant(&tenant_id).await?
        && let Err(e) = crate::saml::sp::keys(state, &tenant).await
    {
        tracing::warn!(error = %e, "could not create the SP key at install; it will be created on first use");
    }
    Ok(HttpResponse::NoContent().finish())
}

async fn handle_uninstalled(state: &AppState, req: &HttpRequest, body: &[u8]) -> Result<HttpResponse, ConnectError> {
    let now = Utc::now();
    let payload = parse_payload(body)?;
    verify_signed_install(state, req, &payload, now).await?;
    if let Some(installation) = state.store.find_connect_installation(&payload.client_key).await? {
        state.store.set_tenant_status(&installation.tenant.id, TenantStatus::Uninstalled, now).await?;
        tracing::info!(tenant = %installation.tenant.id.as_str(), "uninstalled; data kept for 30 days");
    }
    Ok(HttpResponse::NoContent().finish())
}

async fn handle_status(
    state: &AppState,
    req: &HttpRequest,
    status: TenantStatus,
) -> Result<HttpResponse, ConnectError> {
    let now = Utc::now();
    let verified = verify_request(state, req, QshRule::Exact, now).await?;
    state.store.set_tenant_status(&verified.tenant.id, status, now).await?;
    tracing::info!(tenant = %verified.tenant.id.as_str(), status = status.as_str(), "lifecycle");
    Ok(HttpResponse::NoContent().finish())
}

fn respond(req: &HttpRequest, result: Result<HttpResponse, ConnectError>) -> Result<HttpResponse, WebError> {
    result.map_err(|e| {
        tracing::info!(path = %req.path(), status = e.status().as_u16(), reason = %e, "lifecycle call refused");
        WebError::from_connect(e, ErrorFormat::Json)
    })
}

pub async fn installed(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    respond(&req, handle_installed(&state, &req, &body).await)
}

pub async fn uninstalled(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    respond(&req, handle_uninstalled(&state, &req, &body).await)
}

pub async fn enabled(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, WebError> {
    respond(&req, handle_status(&state, &req, TenantStatus::Enabled).await)
}

pub async fn disabled(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, WebError> {
    respond(&req, handle_status(&state, &req, TenantStatus::Disabled).await)
}
