//! The service account's API token (the admin API):
//!
//! * `PUT /api/v1/api-token` `{email, api_token}`: checked at once against Jira (valid, and a Jira
//!   administrator), then stored sealed.
//! * `GET /api/v1/api-token`: `{email, status, status_reason, last_checked_at, ...}`, never the token.
//! * `POST /api/v1/api-token/test`: checks the stored token again.
//! * `DELETE /api/v1/api-token`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::StreamExt;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::jsm::{self, TokenCheckError, token_context};
use crate::connect::auth::{AdminApi, JiraUser};
use crate::jira::{JiraAuth, JiraError};
use crate::startup::AppState;
use crate::store::portal::{NewApiToken, StoredApiToken};
use crate::tenants::Tenant;
use crate::web::{ErrorFormat, WebError};

const MAX_BODY: usize = 16 * 1024;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn api_error(status: StatusCode, code: &'static str, message: impl Into<String>) -> WebError {
    WebError::new(status, code, message, ErrorFormat::Json)
}

fn internal(e: impl Into<anyhow::Error>) -> WebError {
    WebError::internal(&e.into(), ErrorFormat::Json)
}

/// What the API tells about the token (never the token).
#[derive(Debug, Serialize)]
pub struct TokenInfo {
    pub email: String,
    /// `ok` or `failing`.
    pub status: String,
    pub status_reason: Option<String>,
    pub failing_since: Option<String>,
    pub last_checked_at: String,
    pub account_id: Option<String>,
    pub display_name: Option<String>,
    pub updated_at: String,
}

impl From<&StoredApiToken> for TokenInfo {
    fn from(t: &StoredApiToken) -> Self {
        TokenInfo {
            email: t.email.clone(),
            status: t.status.clone(),
            status_reason: t.status_reason.clone(),
            failing_since: t.failing_since.map(rfc3339),
            last_checked_at: rfc3339(t.last_checked_at),
            account_id: t.account_id.clone(),
            display_name: t.display_name.clone(),
            updated_at: rfc3339(t.updated_at),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutToken {
    email: String,
    api_token: String,
}

async fn json_body<T: serde::de::DeserializeOwned>(mut payload: web::Payload) -> Result<T, WebError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| api_error(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(api_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "The request body is too large."));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map_err(|e| api_error(StatusCode::BAD_REQUEST, "invalid_json", format!("The request body is not valid: {e}.")))
}

fn check_error(e: TokenCheckError) -> WebError {
    match e {
        TokenCheckError::Invalid => api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "api_token_invalid",
            "Jira refused this email and API token: token invalid or expired. Create a classic API token at \
             id.atlassian.com (scoped tokens only work through api.atlassian.com, which this service does not use).",
        )
        .with_field("api_token"),
        TokenCheckError::Refused => api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "api_token_refused",
            "Jira refused this account (403): it may have no access to this site, or need to sign in once in a \
             browser to clear a CAPTCHA.",
        )
        .with_field("email"),
        TokenCheckError::NotAdmin => api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_jira_admin",
            "This account is not a Jira administrator. The helpdesk needs an administrator's token to create \
             customers and raise requests on their behalf.",
        )
        .with_field("email"),
        TokenCheckError::Jira(JiraError::RateLimited { .. } | JiraError::Unavailable(_) | JiraError::Timeout) => {
            api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "jira_busy",
                "Jira is busy or unavailable; try again in a minute.",
            )
        }
        TokenCheckError::Jira(JiraError::Network(_) | JiraError::Target(_)) => {
            api_error(StatusCode::BAD_GATEWAY, "jira_unreachable", "Jira could not be reached.")
        }
        TokenCheckError::Jira(other) => api_error(
            StatusCode::BAD_GATEWAY,
            "jira_error",
            format!("Jira gave an unexpected answer while checking the token: {other}."),
        ),
    }
}

fn validate(req: &PutToken) -> Result<(), WebError> {
    let email = req.email.trim();
    let ok_email = email.len() <= 254
        && email.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok_email {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "email must be the service account's email address.",
        )
        .with_field("email"));
    }
    let token = req.api_token.trim();
    if token.is_empty() || token.len() > 2048 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "api_token must be the API token, without spaces.",
        )
        .with_field("api_token"));
    }
    Ok(())
}

async fn stored(state: &AppState, tenant: &Tenant) -> Result<Option<StoredApiToken>, WebError> {
    state.store.portal_api_token(&tenant.id).await.map_err(internal)
}

fn not_configured() -> WebError {
    api_error(StatusCode::NOT_FOUND, "api_token_not_configured", "No service account API token is configured.")
}

/// `GET /api/v1/api-token`
pub async fn get(user: JiraUser<AdminApi>, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let token = stored(&state, &user.tenant).await?.ok_or_else(not_configured)?;
    Ok(HttpResponse::Ok().json(TokenInfo::from(&token)))
}

/// `PUT /api/v1/api-token`
pub async fn put(
    user: JiraUser<AdminApi>,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, WebError> {
    let req: PutToken = json_body(payload).await?;
    validate(&req)?;
    let tenant = &user.tenant;
    let email = req.email.trim().to_string();
    let token = req.api_token.trim().to_string();
    let auth = JiraAuth::ApiToken { email: email.clone(), token: SecretString::from(token.clone()) };
    let myself = jsm::check_token(&state, tenant, &auth).await.map_err(check_error)?;
    let now = Utc::now();
    let sealed = state.keyring.seal(&token, &token_context(&tenant.id));
    let new = NewApiToken {
        email: &email,
        api_token: sealed,
        account_id: Some(&myself.account_id),
        display_name: myself.display_name.as_deref(),
    };
    state.store.save_portal_api_token(&tenant.id, &new, now).await.map_err(internal)?;
    // Another account may see other desks.
    state.store.delete_portal_directory(&tenant.id).await.map_err(internal)?;
    tracing::info!(tenant = %tenant.id.as_str(), "service account API token configured");
    let saved = stored(&state, tenant).await?.ok_or_else(not_configured)?;
    Ok(HttpResponse::Ok().json(TokenInfo::from(&saved)))
}

/// `POST /api/v1/api-token/test`: checks the stored token. Token problems are answered 200 with the
/// new status (`failing` and why); Jira being busy is a 503 and changes nothing.
pub async fn test(user: JiraUser<AdminApi>, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let tenant = &user.tenant;
    let token = stored(&state, tenant).await?.ok_or_else(not_configured)?;
    let secret = state.keyring.open(&token.api_token, &token_context(&tenant.id)).map_err(internal)?;
    let auth = JiraAuth::ApiToken { email: token.email.clone(), token: secret };
    match jsm::check_token(&state, tenant, &auth).await {
        Ok(_) => {
            state.store.mark_portal_api_token_ok(&tenant.id, &token.api_token, Utc::now()).await.map_err(internal)?;
        }
        Err(e @ (TokenCheckError::Invalid | TokenCheckError::Refused | TokenCheckError::NotAdmin)) => {
            let reason = match e {
                TokenCheckError::Invalid => "token invalid or expired (401)",
                TokenCheckError::Refused => "Jira refused the account (403)",
                _ => "this account is not a Jira administrator",
            };
            jsm::token_failing(&state, tenant, &token.api_token, &token.email, reason).await;
        }
        Err(e) => return Err(check_error(e)),
    }
    let saved = stored(&state, tenant).await?.ok_or_else(not_configured)?;
    Ok(HttpResponse::Ok().json(TokenInfo::from(&saved)))
}

/// `DELETE /api/v1/api-token`
pub async fn delete(user: JiraUser<AdminApi>, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let tenant = &user.tenant;
    if !state.store.delete_portal_api_token(&tenant.id).await.map_err(internal)? {
        return Err(not_configured());
    }
    state.store.delete_portal_directory(&tenant.id).await.map_err(internal)?;
    tracing::info!(tenant = %tenant.id.as_str(), "service account API token removed");
    Ok(HttpResponse::NoContent().finish())
}
