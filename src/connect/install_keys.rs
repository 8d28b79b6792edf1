//! Atlassian's public keys for signed installs, fetched by `kid` and cached (every key rotation gets a
//! new `kid`, so a cached key never goes stale).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use url::Url;

use super::error::ConnectError;

pub struct InstallKeys {
    base: Url,
    http: reqwest::Client,
    cache: Mutex<HashMap<String, DecodingKey>>,
}

impl InstallKeys {
    pub fn new(base: Url) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::limited(2))
            .build()
            .expect("a TLS backend is compiled in");
        InstallKeys { base, http, cache: Mutex::new(HashMap::new()) }
    }

    pub async fn key(&self, kid: &str) -> Result<DecodingKey, ConnectError> {
        // A kid is a path segment on the key server: allow only what real ones contain.
        if kid.is_empty()
            || kid.len() > 200
            || !kid.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            || kid.contains("..")
        {
            return Err(ConnectError::unauthorized("the install token's key id (kid) is not valid"));
        }
        if let Some(key) = self.cache.lock().expect("cache lock").get(kid) {
            return Ok(key.clone());
        }
        let url = format!("{}/{kid}", self.base.as_str().trim_end_matches('/'));
        let unavailable = |why: String| {
            tracing::warn!(%why, "install key server unavailable");
            ConnectError::Unavailable(
                "Atlassian's install key server could not be reached; the install can be retried".into(),
            )
        };
        let response = self.http.get(&url).send().await.map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::FORBIDDEN {
            return Err(ConnectError::unauthorized(
                "the install token's key id (kid) is unknown to Atlassian's key server",
            ));
        }
        if !status.is_success() {
            return Err(unavailable(format!("status {status}")));
        }
        let pem = response.bytes().await.map_err(|e| unavailable(e.to_string()))?;
        let key = DecodingKey::from_rsa_pem(&pem)
            .map_err(|_| unavailable("the key server answered with something that is not an RSA public key".into()))?;
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() > 256 {
            cache.clear();
        }
        cache.insert(kid.to_string(), key.clone());
        Ok(key)
    }
}
