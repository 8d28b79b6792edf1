use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_SECURITY_POLICY, ContentType};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::headers::IFRAME_ERROR_CSP;
use crate::connect::ConnectError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    /// An HTML page that may be shown inside Jira's iframe.
    Html,
    /// `{"error": {"code", "message", "field"?}}`.
    Json,
}

/// An error answered to a client: a status, a stable code and a message that is safe to show. The
/// cause of a 5xx is logged, never sent.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub format: ErrorFormat,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    reference: &'a str,
}

impl WebError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>, format: ErrorFormat) -> Self {
        WebError { status, code, message: message.into(), field: None, format }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn from_connect(e: ConnectError, format: ErrorFormat) -> Self {
        if let ConnectError::Unexpected(cause) = &e {
            return Self::internal(cause, format);
        }
        WebError::new(e.status(), e.code(), e.to_string(), format)
    }

    /// A 500 whose body carries only a reference; the cause goes to the log under that reference.
    pub fn internal(cause: &anyhow::Error, format: ErrorFormat) -> Self {
        let reference = crate::crypto::random::token::<6>();
        tracing::error!(%reference, error = ?cause, "internal error");
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("Something went wrong on our side (reference {reference})."),
            format,
        )
    }
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status);
        match self.format {
            ErrorFormat::Json => {
                let mut error = serde_json::json!({ "code": self.code, "message": self.message });
                if let Some(field) = &self.field {
                    error["field"] = serde_json::Value::String(field.clone());
                }
                builder.json(serde_json::json!({ "error": error }))
            }
            ErrorFormat::Html => {
                let title = match self.status {
                    StatusCode::UNAUTHORIZED => "Not signed in",
                    StatusCode::FORBIDDEN => "Not allowed",
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable",
                    s if s.is_client_error() => "Something is wrong with this request",
                    _ => "Something went wrong",
                };
                let page = ErrorPage { title, message: &self.message, reference: self.code };
                builder
                    .insert_header((CONTENT_SECURITY_POLICY, IFRAME_ERROR_CSP))
                    .content_type(ContentType::html())
                    .body(page.render().unwrap_or_else(|_| self.message.clone()))
            }
        }
    }
}
