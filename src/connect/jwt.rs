//! Connect JWTs from Jira: where they are, who they claim to be from, and their verification.

use actix_web::HttpRequest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::error::ConnectError;

/// The literal qsh of context tokens (`AP.context.getToken()`), accepted only where a route says so.
pub const CONTEXT_QSH: &str = "context-qsh";

/// What a route accepts as `qsh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QshRule {
    /// The hash of this very request (page loads, lifecycle calls).
    Exact,
    /// The hash of this request, or `context-qsh` (calls from our own iframe pages).
    ExactOrContext,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, wanted: &str) -> bool {
        let norm = |s: &str| s.trim_end_matches('/').to_string();
        match self {
            Audience::One(a) => norm(a) == norm(wanted),
            Audience::Many(v) => v.iter().any(|a| norm(a) == norm(wanted)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub iss: String,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub qsh: Option<String>,
    pub exp: i64,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub aud: Option<Audience>,
}

/// The token of a request: `?jwt=` or `Authorization: JWT …`, never both.
pub fn extract_token(req: &HttpRequest) -> Result<String, ConnectError> {
    let from_query = url::form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(k, _)| k == "jwt")
        .map(|(_, v)| v.into_owned())
        .collect::<Vec<_>>();
    let from_header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .map(|v| v.to_str().map_err(|_| ConnectError::unauthorized("the Authorization header is not readable")))
        .transpose()?
        .map(|v| {
            v.strip_prefix("JWT ")
                .map(|t| t.trim().to_string())
                .ok_or_else(|| ConnectError::unauthorized("the Authorization header must use the JWT scheme"))
        })
        .transpose()?;
    match (from_query.as_slice(), from_header) {
        ([], None) => Err(ConnectError::unauthorized("this page must be opened from Jira (no Connect token)")),
        ([t], None) => Ok(t.clone()),
        ([], Some(t)) => Ok(t),
        _ => Err(ConnectError::unauthorized("the request carries more than one Connect token")),
    }
}

/// Reads the unverified `iss` claim, only to find whose key verifies the token.
pub fn peek_issuer(token: &str) -> Result<String, ConnectError> {
    #[derive(Deserialize)]
    struct Iss {
        iss: String,
    }
    let malformed = || ConnectError::unauthorized("the Connect token is malformed");
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed());
    };
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).map_err(|_| malformed())?;
    let iss: Iss = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
    Ok(iss.iss)
}

/// Verifies the signature with `alg` pinned; times are checked by [`check_times`], against our clock.
pub fn verify_signature(token: &str, key: &DecodingKey, alg: Algorithm) -> Result<Claims, ConnectError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| {
        ConnectError::unauthorized("the Connect token's header is malformed or names an unsupported algorithm")
    })?;
    if header.alg != alg {
        return Err(ConnectError::unauthorized(format!(
            "the Connect token is signed with {:?}; {alg:?} is required",
            header.alg
        )));
    }
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Claims>(token, key, &validation).map(|d| d.claims).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidSignature => {
            ConnectError::unauthorized("the Connect token's signature does not verify")
        }
        _ => ConnectError::unauthorized("the Connect token is malformed"),
    })
}

/// `exp` not passed and `iat` not in the future, both with `leeway` seconds of clock difference.
pub fn check_times(claims: &Claims, now: DateTime<Utc>, leeway: i64) -> Result<(), ConnectError> {
    let now = now.timestamp();
    if claims.exp + leeway < now {
        return Err(ConnectError::unauthorized(format!(
            "the Connect token expired {} seconds ago (check this server's clock if that looks wrong)",
            now - claims.exp
        )));
    }
    if let Some(iat) = claims.iat
        && iat - leeway > now
    {
        return Err(ConnectError::unauthorized(
            "the Connect token was issued in the future (check this server's clock)",
        ));
    }
    Ok(())
}

pub fn check_qsh(claims: &Claims, expected: &str, rule: QshRule) -> Result<(), ConnectError> {
    match claims.qsh.as_deref() {
        None => Err(ConnectError::unauthorized("the Connect token has no qsh claim")),
        Some(q) if q == expected => Ok(()),
        Some(CONTEXT_QSH) if rule == QshRule::ExactOrContext => Ok(()),
        Some(CONTEXT_QSH) => {
            Err(ConnectError::unauthorized("a context token cannot open this page; Jira must sign this URL"))
        }
        Some(_) => Err(ConnectError::unauthorized("the Connect token does not match this request (qsh)")),
    }
}

/// The qsh of an incoming request, relative to the app's base URL path.
pub fn request_qsh(req: &HttpRequest, context_path: &str) -> String {
    super::qsh::qsh(req.method().as_str(), req.path(), req.query_string(), context_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    fn hs(claims: serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
            .unwrap()
    }

    #[test]
    fn documented_app_token_verifies() {
        // shared/docs/connect.md §3.4
        let token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJjb20uZXhhbXBsZS5qc20tc2FtbC1zc28iLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMDE4MCwicXNoIjoiMTVlM2QxOGQ5Njg3NDA0OGVkMWIyNmEzNDRlNTdiYWJlZmFiMDM4ZmYwN2QyNTAxNTUxZTY2YzNkODc4ZmYwNyJ9.StQOVZ_WTdlZpZOo03CMVzxFurRL9cyjFupallMsyTU";
        let claims =
            verify_signature(token, &DecodingKey::from_secret(b"test-shared-secret"), Algorithm::HS256).unwrap();
        assert_eq!(claims.iss, "com.example.jsm-saml-sso");
        let q = super::super::qsh::qsh("GET", "/rest/servicedeskapi/servicedesk", "start=0&limit=50", "");
        check_qsh(&claims, &q, QshRule::Exact).unwrap();
        assert!(verify_signature(token, &DecodingKey::from_secret(b"other"), Algorithm::HS256).is_err());
    }

    #[test]
    fn times_with_leeway() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let c = |exp: i64, iat: i64| Claims { iss: "x".into(), sub: None, qsh: None, exp, iat: Some(iat), aud: None };
        assert!(check_times(&c(1_700_000_000 - 10, 0), now, 30).is_ok());
        assert!(check_times(&c(1_700_000_000 - 31, 0), now, 30).is_err());
        assert!(check_times(&c(1_700_000_100, 1_700_000_020), now, 30).is_ok());
        assert!(check_times(&c(1_700_000_100, 1_700_000_031), now, 30).is_err());
    }

    #[test]
    fn context_qsh_only_where_allowed() {
        let claims: Claims = serde_json::from_value(json!({"iss":"a","exp":1,"qsh":"context-qsh"})).unwrap();
        assert!(check_qsh(&claims, "abc", QshRule::ExactOrContext).is_ok());
        assert!(check_qsh(&claims, "abc", QshRule::Exact).is_err());
        let none: Claims = serde_json::from_value(json!({"iss":"a","exp":1})).unwrap();
        assert!(check_qsh(&none, "abc", QshRule::ExactOrContext).is_err());
    }

    #[test]
    fn alg_is_pinned() {
        let token = hs(json!({"iss":"a","exp":1}), "k");
        assert!(verify_signature(&token, &DecodingKey::from_secret(b"k"), Algorithm::HS256).is_ok());
        let err = verify_signature(&token, &DecodingKey::from_secret(b"k"), Algorithm::RS256).unwrap_err();
        assert!(err.to_string().contains("RS256"), "{err}");
        // alg: none
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"iss":"a","exp":1}"#)
        );
        assert!(verify_signature(&none, &DecodingKey::from_secret(b"k"), Algorithm::HS256).is_err());
    }

    #[test]
    fn issuer_is_peeked_without_verification() {
        assert_eq!(peek_issuer(&hs(json!({"iss":"client-1","exp":1}), "k")).unwrap(), "client-1");
        assert!(peek_issuer("a.b").is_err());
        assert!(peek_issuer("a.!!.c").is_err());
    }
}
