//! What can go wrong while serving the helpdesk, and the page (or JSON) each problem becomes. Nothing
//! here is ever a bare 500: Jira trouble becomes a page that says what the customer can do.

use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{ContentType, RETRY_AFTER};
use askama::Template;

use super::pages::Chrome;
use crate::jira::JiraError;
use crate::store::StoreError;
use crate::web::{ErrorFormat, WebError};

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// No service-account API token is configured for the tenant.
    #[error("no service account API token is configured")]
    NotConfigured,
    /// Jira is rate-limiting or unavailable, even after the client's retries.
    #[error("Jira is busy or unavailable")]
    Busy { retry_after: Option<Duration> },
    /// Jira refused the service account (401/403); the token was marked failing.
    #[error("the service account's API token is failing: {0}")]
    TokenFailing(String),
    /// Something the customer asked for does not exist (or is not theirs: same answer).
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// A refused form post (CSRF, cross-origin).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The customer's account cannot use this helpdesk.
    #[error("the customer cannot use this helpdesk: {0}")]
    NotACustomer(String),
    /// Jira answered 404 where we expected something.
    #[error("Jira has no such resource")]
    JiraNotFound,
    /// Jira refused a request as invalid (4xx other than 401/403/404/429); the message is Jira's.
    #[error("Jira refused the request: {0}")]
    JiraRejected(String),
    /// Jira answered something we cannot read, or could not be reached at all.
    #[error("Jira gave an unexpected answer: {0}")]
    Jira(JiraError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for PortalError {
    fn from(e: StoreError) -> Self {
        PortalError::Unexpected(e.into())
    }
}

impl From<askama::Error> for PortalError {
    fn from(e: askama::Error) -> Self {
        PortalError::Unexpected(e.into())
    }
}

#[derive(Template)]
#[template(path = "portal/message.html")]
pub(super) struct MessagePage<'a> {
    pub chrome: &'a Chrome,
    pub title: &'a str,
    pub message: &'a str,
    pub failed: bool,
    pub reference: Option<&'a str>,
    pub link: Option<(&'a str, &'a str)>,
}

/// A message page inside the helpdesk's layout.
pub(super) fn message_page(
    chrome: &Chrome,
    status: StatusCode,
    title: &str,
    message: &str,
    reference: Option<&str>,
    link: Option<(&str, &str)>,
) -> HttpResponse {
    let page = MessagePage { chrome, title, message, failed: !status.is_success(), reference, link };
    let body = page.render().unwrap_or_else(|_| message.to_string());
    HttpResponse::build(status).content_type(ContentType::html()).body(body)
}

fn log_reference(error: &PortalError) -> String {
    let reference = crate::crypto::random::token::<6>();
    tracing::error!(%reference, error = ?error, "helpdesk error");
    reference
}

impl PortalError {
    /// The page a customer sees.
    pub(super) fn page(&self, chrome: &Chrome) -> HttpResponse {
        let retry_link = chrome.retry_url.as_deref().map(|u| (u, "Try again"));
        let home = (chrome.home_url.as_str(), "Back to the help center");
        match self {
            PortalError::NotConfigured => message_page(
                chrome,
                StatusCode::SERVICE_UNAVAILABLE,
                "This helpdesk is being set up",
                "The helpdesk is not connected to Jira Service Management yet. Please try again later, or contact the team that runs it.",
                None,
                None,
            ),
            PortalError::Busy { retry_after } => {
                let mut r = message_page(
                    chrome,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The helpdesk is busy",
                    "Jira Service Management is handling a lot of requests right now. Please wait a minute and try again.",
                    None,
                    retry_link,
                );
                let secs = retry_after.map(|d| d.as_secs()).unwrap_or(30).clamp(1, 600);
                if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&secs.to_string()) {
                    r.headers_mut().insert(RETRY_AFTER, v);
                }
                r
            }
            PortalError::TokenFailing(_) => message_page(
                chrome,
                StatusCode::SERVICE_UNAVAILABLE,
                "The helpdesk is being fixed",
                "The helpdesk cannot reach Jira Service Management right now because of a problem with its connection. Its administrators have been told. Please try again later.",
                None,
                None,
            ),
            PortalError::NotFound(what) => {
                message_page(chrome, StatusCode::NOT_FOUND, "Not found", what, None, Some(home))
            }
            PortalError::JiraNotFound => message_page(
                chrome,
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing at this address, or it is not yours to see.",
                None,
                Some(home),
            ),
            PortalError::Forbidden(why) => {
                message_page(chrome, StatusCode::FORBIDDEN, "Not allowed", why, None, Some(home))
            }
            PortalError::NotACustomer(why) => {
                message_page(chrome, StatusCode::FORBIDDEN, "Your account cannot use this helpdesk", why, None, None)
            }
            PortalError::JiraRejected(_) | PortalError::Jira(_) | PortalError::Unexpected(_) => {
                let reference = log_reference(self);
                message_page(
                    chrome,
                    StatusCode::BAD_GATEWAY,
                    "Something went wrong",
                    "The helpdesk could not complete this. Please try again in a moment; if it keeps happening, give the reference below to the team that runs this helpdesk.",
                    Some(&reference),
                    retry_link,
                )
            }
        }
    }

    /// The admin API's JSON error.
    pub(super) fn api(&self) -> WebError {
        let json = |status, code, message: String| WebError::new(status, code, message, ErrorFormat::Json);
        match self {
            PortalError::NotConfigured => json(
                StatusCode::CONFLICT,
                "api_token_not_configured",
                "Configure the service account's API token first (PUT /api/v1/api-token).".into(),
            ),
            PortalError::Busy { .. } => json(
                StatusCode::SERVICE_UNAVAILABLE,
                "jira_busy",
                "Jira is rate-limiting or unavailable right now; try again in a minute.".into(),
            ),
            PortalError::TokenFailing(reason) => json(
                StatusCode::CONFLICT,
                "api_token_failing",
                format!(
                    "Jira refused the service account's API token: {reason}. Replace the token or fix the account's permissions."
                ),
            ),
            PortalError::NotFound(what) => json(StatusCode::NOT_FOUND, "not_found", (*what).to_string()),
            PortalError::JiraNotFound => json(StatusCode::NOT_FOUND, "not_found", "Jira has no such resource.".into()),
            PortalError::Forbidden(why) => json(StatusCode::FORBIDDEN, "forbidden", (*why).to_string()),
            PortalError::NotACustomer(why) => json(StatusCode::FORBIDDEN, "not_a_customer", why.clone()),
            PortalError::JiraRejected(message) => {
                json(StatusCode::BAD_GATEWAY, "jira_refused", format!("Jira refused the request: {message}"))
            }
            PortalError::Jira(JiraError::Network(_) | JiraError::Target(_)) => {
                json(StatusCode::BAD_GATEWAY, "jira_unreachable", "Jira could not be reached.".into())
            }
            PortalError::Jira(_) | PortalError::Unexpected(_) => {
                let reference = log_reference(self);
                json(
                    StatusCode::BAD_GATEWAY,
                    "jira_error",
                    format!("Jira gave an answer this service could not use (reference {reference})."),
                )
            }
        }
    }
}
