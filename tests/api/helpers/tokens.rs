//! Tokens as Atlassian makes them: RS256 signed installs, HS256 page loads and context tokens.

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::fake_jira::{ATTACKER_KEY, INSTALL_KEY};
use super::{Site, TestApp};

pub fn install_payload(app: &TestApp, site: &Site) -> Value {
    json!({
        "key": app.settings.app_key,
        "clientKey": site.client_key,
        "sharedSecret": site.shared_secret,
        "baseUrl": site.base_url,
        "displayUrl": site.base_url,
        "displayUrlServicedeskHelpCenter": format!("{}/help", site.base_url),
        "productType": "jira",
        "description": "Atlassian JIRA at test",
        "eventType": "installed"
    })
}

/// Ways to forge or spoil a signed-install token.
#[derive(Default, Clone)]
pub struct InstallTweaks {
    pub sign_with_attacker_key: bool,
    pub kid: Option<Option<String>>,
    pub aud: Option<String>,
    pub qsh: Option<String>,
    pub exp_offset: Option<i64>,
    pub iss: Option<String>,
}

pub fn install_token(app: &TestApp, site: &Site, path: &str, t: InstallTweaks) -> String {
    let now = Utc::now().timestamp();
    let claims = json!({
        "iss": t.iss.unwrap_or_else(|| site.client_key.clone()),
        "aud": [t.aud.unwrap_or_else(|| app.base_url().to_string())],
        "qsh": t.qsh.unwrap_or_else(|| jsm_sso::connect::qsh::qsh("POST", path, "", "")),
        "iat": now,
        "exp": now + t.exp_offset.unwrap_or(180),
        "sub": "557058:installer"
    });
    let key = if t.sign_with_attacker_key { &*ATTACKER_KEY } else { &*INSTALL_KEY };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = t.kid.unwrap_or_else(|| Some(INSTALL_KEY.kid.to_string()));
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(&key.private_pem).unwrap()).unwrap()
}

pub fn hs256(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

/// The claims Jira puts in a page-load token for `method path?query`.
pub fn page_claims(site: &Site, method: &str, path_and_query: &str, sub: Option<&str>) -> Value {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let now = Utc::now().timestamp();
    let mut claims = json!({
        "iss": site.client_key,
        "qsh": jsm_sso::connect::qsh::qsh(method, path, query, ""),
        "iat": now,
        "exp": now + 180,
    });
    if let Some(s) = sub {
        claims["sub"] = json!(s);
    }
    claims
}

pub fn page_token(_app: &TestApp, site: &Site, method: &str, path_and_query: &str, sub: Option<&str>) -> String {
    hs256(&page_claims(site, method, path_and_query, sub), &site.shared_secret)
}

/// What `AP.context.getToken()` returns.
pub fn context_token(site: &Site, sub: &str) -> String {
    let now = Utc::now().timestamp();
    hs256(
        &json!({"iss": site.client_key, "sub": sub, "qsh": "context-qsh", "iat": now, "exp": now + 300}),
        &site.shared_secret,
    )
}
