//! The outgoing Jira client against the fake Jira: retries, errors, the private-address guard.

use std::time::Duration;

use jsm_sso::jira::{JiraAuth, JiraClient, JiraError};
use secrecy::SecretString;

use crate::helpers::fake_jira_only::*;

fn token_auth() -> JiraAuth {
    JiraAuth::ApiToken { email: "svc@example.com".into(), token: SecretString::from("api-token-123") }
}

fn ok(body: &str) -> Scripted {
    Scripted { status: 200, headers: vec![], body: body.into() }
}

fn status(code: u16, retry_after: Option<&str>) -> Scripted {
    Scripted {
        status: code,
        headers: retry_after.map(|r| vec![("Retry-After", r.to_string())]).unwrap_or_default(),
        body: "{}".into(),
    }
}

#[tokio::test]
async fn retries_429_and_503_after_retry_after() {
    let jira = FakeJira::start().await;
    let site = url::Url::parse(&jira.base_url()).unwrap();
    jira.script("/rest/x", vec![status(429, Some("1")), status(503, Some("0")), ok(r#"{"ok":true}"#)]);
    let client = JiraClient::new(true);
    let v: serde_json::Value = client.get_json(&site, &token_auth(), "/rest/x").await.unwrap();
    assert_eq!(v["ok"], true);
    let calls = jira.calls_to("/rest/x");
    assert_eq!(calls.len(), 3);
    // Basic auth with the service account, never the token in clear anywhere else.
    assert!(calls[0].authorization.as_deref().unwrap().starts_with("Basic "));
}

#[tokio::test]
async fn gives_up_when_retry_after_exceeds_the_budget() {
    let jira = FakeJira::start().await;
    let site = url::Url::parse(&jira.base_url()).unwrap();
    jira.script("/rest/slow", vec![status(429, Some("120")), ok("{}")]);
    let client = JiraClient::new(true).with_retry_budget(Duration::from_secs(2));
    let err = client.get_json::<serde_json::Value>(&site, &token_auth(), "/rest/slow").await.unwrap_err();
    assert!(matches!(err, JiraError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(120)), "{err:?}");
    assert_eq!(jira.calls_to("/rest/slow").len(), 1, "did not wait two minutes");
}

#[tokio::test]
async fn maps_statuses_to_specific_errors() {
    let jira = FakeJira::start().await;
    let site = url::Url::parse(&jira.base_url()).unwrap();
    jira.script("/rest/a", vec![status(401, None)]);
    jira.script("/rest/b", vec![status(403, None)]);
    jira.script(
        "/rest/c",
        vec![Scripted {
            status: 400,
            headers: vec![],
            body: r#"{"errorMessages":["Field 'summary' is required"],"errors":{}}"#.into(),
        }],
    );
    let client = JiraClient::new(true);
    let auth = token_auth();
    assert!(matches!(
        client.get_json::<serde_json::Value>(&site, &auth, "/rest/a").await,
        Err(JiraError::Unauthorized)
    ));
    assert!(matches!(client.get_json::<serde_json::Value>(&site, &auth, "/rest/b").await, Err(JiraError::Forbidden)));
    let err = client.get_json::<serde_json::Value>(&site, &auth, "/rest/c").await.unwrap_err();
    assert!(err.to_string().contains("Field 'summary' is required"), "{err}");
    assert!(matches!(client.get_json::<serde_json::Value>(&site, &auth, "/rest/none").await, Err(JiraError::NotFound)));
}

#[tokio::test]
async fn refuses_private_targets_unless_allowed() {
    let jira = FakeJira::start().await;
    let site = url::Url::parse(&jira.base_url()).unwrap();
    jira.script("/rest/x", vec![ok("{}")]);
    let err = JiraClient::new(false).get_json::<serde_json::Value>(&site, &token_auth(), "/rest/x").await.unwrap_err();
    assert!(matches!(err, JiraError::Target(_)), "{err:?}");
    assert!(jira.calls_to("/rest/x").is_empty(), "no request reached the loopback listener");
    // localhost by name goes through the resolver's check.
    let by_name = url::Url::parse(&jira.base_url().replace("127.0.0.1", "localhost")).unwrap();
    assert!(JiraClient::new(false).get_json::<serde_json::Value>(&by_name, &token_auth(), "/rest/x").await.is_err());
    assert!(jira.calls_to("/rest/x").is_empty());
}

#[tokio::test]
async fn app_auth_signs_a_jwt_with_the_app_key_and_the_request_qsh() {
    let jira = FakeJira::start().await;
    let site = url::Url::parse(&format!("{}/ctx", jira.base_url())).unwrap();
    jira.script("/ctx/rest/api/3/myself", vec![ok("{}")]);
    let auth = JiraAuth::App { app_key: "jsm-sso-test".into(), shared_secret: SecretString::from("s3cret") };
    JiraClient::new(true)
        .get_json::<serde_json::Value>(&site, &auth, "/rest/api/3/myself?expand=groups")
        .await
        .unwrap();
    let call = &jira.calls_to("/ctx/rest/api/3/myself")[0];
    let token = call.authorization.as_deref().unwrap().strip_prefix("JWT ").unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.required_spec_claims.clear();
    let claims =
        jsonwebtoken::decode::<serde_json::Value>(token, &jsonwebtoken::DecodingKey::from_secret(b"s3cret"), &v)
            .unwrap()
            .claims;
    assert_eq!(claims["iss"], "jsm-sso-test");
    // Context path `/ctx` stripped, query included.
    use sha2::Digest;
    let expected = hex::encode(sha2::Sha256::digest(b"GET&/rest/api/3/myself&expand=groups"));
    assert_eq!(claims["qsh"], expected);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 180);
}
