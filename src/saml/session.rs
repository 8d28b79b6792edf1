//! Customer sessions: a random 256-bit token in an HttpOnly cookie scoped to the tenant's path, stored
//! hashed; and the browser handle that binds a pending AuthnRequest to the browser that started it.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, web};
use chrono::Utc;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::crypto::random;
use crate::startup::AppState;
use crate::store::CustomerSession;
use crate::tenants::{PublicTenantId, Tenant};
use crate::web::{ErrorFormat, WebError};

pub const SESSION_COOKIE: &str = "jsm_sso_session";
pub const BROWSER_COOKIE: &str = "jsm_sso_browser";

/// What is stored for a secret token: its SHA-256 (a database leak does not hand out sessions).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn new_token() -> String {
    random::token::<32>()
}

/// The path every customer-facing cookie of a tenant is scoped to.
pub fn tenant_cookie_path(state: &AppState, tenant: &PublicTenantId) -> String {
    format!("{}/t/{tenant}", state.settings.base_url.path_prefix())
}

/// The browser handle travels on the IdP's cross-site POST to the ACS, so with https it must be
/// `SameSite=None; Secure`. On plain http (loopback development) browsers refuse `None` without
/// `Secure`, and an IdP on the same host is same-site anyway, so `Lax` is used.
pub fn browser_cookie(state: &AppState, tenant: &PublicTenantId, value: &str) -> Cookie<'static> {
    let https = state.settings.base_url.is_https();
    Cookie::build(BROWSER_COOKIE, value.to_string())
        .path(tenant_cookie_path(state, tenant))
        .http_only(true)
        .secure(https)
        .same_site(if https { SameSite::None } else { SameSite::Lax })
        .max_age(CookieDuration::days(1))
        .finish()
}

pub fn session_cookie(state: &AppState, tenant: &PublicTenantId, value: &str, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, value.to_string())
        .path(tenant_cookie_path(state, tenant))
        .http_only(true)
        .secure(state.settings.base_url.is_https())
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(max_age_secs.max(0)))
        .finish()
}

pub fn removal_cookie(state: &AppState, tenant: &PublicTenantId, name: &'static str) -> Cookie<'static> {
    let mut c = Cookie::build(name, "").path(tenant_cookie_path(state, tenant)).http_only(true).finish();
    c.make_removal();
    c
}

/// Looks up the tenant of a customer-facing URL; unknown or uninstalled tenants are a plain 404.
pub async fn customer_tenant(state: &AppState, raw: &str) -> Result<Tenant, WebError> {
    let not_found = || {
        WebError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_found",
            "There is no helpdesk at this address.",
            ErrorFormat::Html,
        )
    };
    let id = PublicTenantId::parse(raw).ok_or_else(not_found)?;
    let tenant = state
        .store
        .find_tenant_by_public_id(&id)
        .await
        .map_err(|e| WebError::internal(&e.into(), ErrorFormat::Html))?
        .ok_or_else(not_found)?;
    if !tenant.is_active() {
        return Err(not_found());
    }
    Ok(tenant)
}

/// The signed-in customer of the tenant named in the path (`/t/{tenant}/...`). A session of another
/// tenant is not one: the cookie is path-scoped and the lookup is by tenant.
pub struct Customer {
    pub tenant: Tenant,
    pub session: CustomerSession,
    pub token_hash: String,
}

impl Customer {
    pub async fn find(state: &AppState, req: &HttpRequest, tenant: Tenant) -> Result<Option<Customer>, WebError> {
        let Some(cookie) = req.cookie(SESSION_COOKIE) else { return Ok(None) };
        let hash = token_hash(cookie.value());
        let session = state
            .store
            .find_session(&tenant.id, &hash, Utc::now())
            .await
            .map_err(|e| WebError::internal(&e.into(), ErrorFormat::Html))?;
        Ok(session.map(|session| Customer { tenant, session, token_hash: hash }))
    }
}

fn tenant_segment(req: &HttpRequest) -> String {
    req.match_info().get("tenant").unwrap_or_default().to_string()
}

impl FromRequest for Customer {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req.app_data::<web::Data<AppState>>().expect("AppState is registered").clone();
            let tenant = customer_tenant(&state, &tenant_segment(&req)).await?;
            Customer::find(&state, &req, tenant).await?.ok_or_else(|| {
                WebError::new(
                    actix_web::http::StatusCode::UNAUTHORIZED,
                    "not_signed_in",
                    "You are not signed in.",
                    ErrorFormat::Json,
                )
            })
        })
    }
}

#[derive(Serialize)]
struct SessionInfo<'a> {
    email: Option<&'a str>,
    name_id: &'a str,
    idp_id: &'a str,
    display_name: Option<&'a str>,
    expires_at: String,
}

/// `GET /t/{tenant}/session`: the current customer session, 401 without one.
pub async fn get_session(customer: Customer) -> HttpResponse {
    let s = &customer.session;
    HttpResponse::Ok().json(SessionInfo {
        email: s.email.as_deref(),
        name_id: &s.name_id,
        idp_id: s.idp_id.as_str(),
        display_name: s.display_name.as_deref(),
        expires_at: s.expires_at.to_rfc3339(),
    })
}
