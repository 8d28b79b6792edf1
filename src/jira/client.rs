use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use url::Url;

use crate::connect::qsh;
use crate::net;

/// How a call authenticates. Debug never shows the secret.
#[derive(Clone)]
pub enum JiraAuth {
    /// As the app: an HS256 JWT with `iss` = app key, signed with the tenant's shared secret.
    App { app_key: String, shared_secret: SecretString },
    /// As a service account: HTTP Basic `email:api_token`.
    ApiToken { email: String, token: SecretString },
}

impl std::fmt::Debug for JiraAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JiraAuth::App { app_key, .. } => write!(f, "JiraAuth::App({app_key})"),
            JiraAuth::ApiToken { email, .. } => write!(f, "JiraAuth::ApiToken({email})"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JiraError {
    #[error("the Jira site's address is refused: {0}")]
    Target(#[from] net::TargetError),
    #[error("Jira did not answer in time")]
    Timeout,
    #[error("Jira could not be reached: {0}")]
    Network(String),
    #[error("Jira is rate-limiting requests; retry after {retry_after:?}")]
    RateLimited { retry_after: Option<Duration> },
    #[error("Jira is temporarily unavailable (status {0})")]
    Unavailable(u16),
    #[error("Jira refused the credentials (401)")]
    Unauthorized,
    #[error("Jira says the account lacks permission (403)")]
    Forbidden,
    #[error("Jira has no such resource (404)")]
    NotFound,
    #[error("Jira answered status {status}: {message}")]
    Status { status: u16, message: String },
    #[error("Jira's answer could not be read: {0}")]
    Decode(String),
}

#[derive(Debug)]
pub struct JiraResponse {
    pub status: StatusCode,
    pub body: bytes_body::Body,
}

pub mod bytes_body {
    /// A response body, at most 4 MiB.
    #[derive(Debug)]
    pub struct Body(pub Vec<u8>);
}

impl JiraResponse {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, JiraError> {
        serde_json::from_slice(&self.body.0).map_err(|e| JiraError::Decode(e.to_string()))
    }
}

#[derive(Clone)]
pub struct JiraClient {
    http: reqwest::Client,
    allow_private: bool,
    /// Longest total time spent waiting for `Retry-After` in one call.
    retry_budget: Duration,
    max_attempts: u32,
}

const MAX_BODY: usize = 4 * 1024 * 1024;

impl JiraClient {
    pub fn new(allow_private: bool) -> Self {
        JiraClient {
            http: net::guarded_client(allow_private, Duration::from_secs(15)),
            allow_private,
            retry_budget: Duration::from_secs(10),
            max_attempts: 3,
        }
    }

    /// Shortens the retry budget (tests).
    pub fn with_retry_budget(mut self, budget: Duration) -> Self {
        self.retry_budget = budget;
        self
    }

    /// Sends a request to `site` + `path_and_query` (which starts with `/`). 429 and 503 are retried after
    /// `Retry-After` while the budget lasts. Other non-2xx statuses become errors.
    pub async fn send(
        &self,
        site: &Url,
        auth: &JiraAuth,
        method: Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<JiraResponse, JiraError> {
        let base = site.as_str().trim_end_matches('/');
        let url = Url::parse(&format!("{base}{path_and_query}")).map_err(|e| JiraError::Network(e.to_string()))?;
        net::check_target(&url, self.allow_private)?;

        let mut waited = Duration::ZERO;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.http.request(method.clone(), url.clone()).header("Accept", "application/json");
            request = match auth {
                JiraAuth::App { app_key, shared_secret } => {
                    let token = app_token(app_key, shared_secret, &method, &url, site.path())?;
                    request.header("Authorization", format!("JWT {token}"))
                }
                JiraAuth::ApiToken { email, token } => {
                    let basic = STANDARD.encode(format!("{email}:{}", token.expose_secret()));
                    request.header("Authorization", format!("Basic {basic}"))
                }
            };
            if let Some(b) = body {
                request = request.json(b);
            }
            let response = request
                .send()
                .await
                .map_err(|e| if e.is_timeout() { JiraError::Timeout } else { JiraError::Network(without_url(&e)) })?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
                let retry_after = retry_after(&response);
                let wait = retry_after.unwrap_or(Duration::from_millis(500 * u64::from(attempt)));
                if attempt < self.max_attempts && waited + wait <= self.retry_budget {
                    tracing::info!(
                        status = status.as_u16(),
                        wait_ms = wait.as_millis() as u64,
                        "Jira asked us to retry"
                    );
                    tokio::time::sleep(wait).await;
                    waited += wait;
                    continue;
                }
                return Err(if status == StatusCode::TOO_MANY_REQUESTS {
                    JiraError::RateLimited { retry_after }
                } else {
                    JiraError::Unavailable(status.as_u16())
                });
            }
            let bytes = read_limited(response).await?;
            return match status {
                s if s.is_success() => Ok(JiraResponse { status: s, body: bytes_body::Body(bytes) }),
                StatusCode::UNAUTHORIZED => Err(JiraError::Unauthorized),
                StatusCode::FORBIDDEN => Err(JiraError::Forbidden),
                StatusCode::NOT_FOUND => Err(JiraError::NotFound),
                s if s.is_server_error() => Err(JiraError::Unavailable(s.as_u16())),
                s => Err(JiraError::Status { status: s.as_u16(), message: error_message(&bytes) }),
            };
        }
    }

    pub async fn get_json<T: DeserializeOwned>(
        &self,
        site: &Url,
        auth: &JiraAuth,
        path_and_query: &str,
    ) -> Result<T, JiraError> {
        self.send(site, auth, Method::GET, path_and_query, None).await?.json()
    }

    pub async fn post_json<T: DeserializeOwned>(
        &self,
        site: &Url,
        auth: &JiraAuth,
        path_and_query: &str,
        body: &serde_json::Value,
    ) -> Result<T, JiraError> {
        self.send(site, auth, Method::POST, path_and_query, Some(body)).await?.json()
    }
}

/// The app's JWT for one call: `iss` = app key, 3 minutes, qsh of this exact request relative to the
/// site's context path.
fn app_token(
    app_key: &str,
    secret: &SecretString,
    method: &Method,
    url: &Url,
    context_path: &str,
) -> Result<String, JiraError> {
    let now = Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": app_key,
        "iat": now,
        "exp": now + 180,
        "qsh": qsh::qsh(method.as_str(), url.path(), url.query().unwrap_or(""), context_path),
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
    .map_err(|e| JiraError::Network(format!("cannot sign the request: {e}")))
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let raw = response.headers().get("Retry-After")?.to_str().ok()?;
    raw.trim().parse::<u64>().ok().map(Duration::from_secs)
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, JiraError> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| JiraError::Network(without_url(&e)))? {
        if out.len() + chunk.len() > MAX_BODY {
            return Err(JiraError::Decode("the answer is larger than 4 MiB".into()));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// reqwest errors print the URL; ours may carry a query, so keep only the cause.
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg.replace(url.as_str(), "<url>");
    }
    msg
}

/// Jira's error bodies: `{"errorMessages": [...], "errors": {...}}`; fall back to a short excerpt.
fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct JiraErrors {
        #[serde(default, rename = "errorMessages")]
        messages: Vec<String>,
        #[serde(default)]
        errors: std::collections::BTreeMap<String, String>,
    }
    if let Ok(e) = serde_json::from_slice::<JiraErrors>(body) {
        let mut parts = e.messages;
        parts.extend(e.errors.into_iter().map(|(k, v)| format!("{k}: {v}")));
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}
