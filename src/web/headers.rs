//! Security headers on every response (Atlassian's security scanner checks these).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;

use crate::startup::AppState;
use crate::tenants::Tenant;

/// Routes that are not meant to be framed and set nothing themselves get this.
const DEFAULT_CSP: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'";

/// Error pages of iframe routes, when the tenant is not known (the token did not verify).
pub(super) const IFRAME_ERROR_CSP: &str = "default-src 'self'; frame-ancestors https://*.atlassian.net https://*.jira.com; \
     base-uri 'none'; object-src 'none'; form-action 'none'";

/// The policy of a page shown inside this tenant's Jira: framed only by the tenant's site (and
/// Atlassian's domain, where Jira also serves pages), scripts only from us and Atlassian's CDN.
pub fn iframe_csp(tenant: &Tenant) -> String {
    format!(
        "default-src 'self'; script-src 'self' https://connect-cdn.atl-paas.net; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; frame-ancestors {} https://*.atlassian.net; base-uri 'none'; object-src 'none'; form-action 'self'",
        tenant.site_origins().join(" ")
    )
}

pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let is_static = req.path().starts_with("/static/");
    let https = req.app_data::<web::Data<AppState>>().is_some_and(|s| s.settings.base_url.is_https());
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    if !is_static {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if https {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DEFAULT_CSP));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    Ok(res)
}
