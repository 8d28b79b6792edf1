use actix_web::http::StatusCode;

/// Why a request from Jira (or claiming to be) was not accepted. Messages are safe to show: they never
/// contain the token or a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    /// Something we depend on (Atlassian's key server, Jira) did not answer; try again later.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Unexpected(#[from] anyhow::Error),
}

impl ConnectError {
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        ConnectError::Unauthorized(msg.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ConnectError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ConnectError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConnectError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConnectError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ConnectError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ConnectError::Unauthorized(_) => "unauthorized",
            ConnectError::Forbidden(_) => "forbidden",
            ConnectError::BadRequest(_) => "bad_request",
            ConnectError::Unavailable(_) => "unavailable",
            ConnectError::Unexpected(_) => "internal",
        }
    }
}

impl From<crate::store::StoreError> for ConnectError {
    fn from(e: crate::store::StoreError) -> Self {
        ConnectError::Unexpected(e.into())
    }
}
