//! Typed calls to Jira Service Management as the tenant's service account (shapes of
//! shared/docs/jsm-api.md). Every failure of the token itself (401/403) marks the token failing, once,
//! with an admin-visible event; 429/503 are retried by the client and then become `Busy`.

use std::collections::HashMap;

use chrono::Utc;
use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::PortalError;
use crate::crypto::Sealed;
use crate::jira::{JiraAuth, JiraError};
use crate::startup::AppState;
use crate::store::LoginEvent;
use crate::store::portal::StoredApiToken;
use crate::store::sealing_context;
use crate::tenants::{Tenant, TenantId};

/// Longest paged walk (pages), so a misbehaving server cannot keep us looping.
const MAX_PAGES: usize = 40;

/// The sealing context of a tenant's API token.
pub fn token_context(tenant: &TenantId) -> String {
    sealing_context("portal_api_tokens", "api_token", tenant.as_str())
}

/// Percent-encodes a query value.
pub fn q(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// What must be escaped in a path segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Percent-encodes a path segment (ids come from Jira or from our own validated paths, but still).
pub fn seg(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, SEGMENT).to_string()
}

// -------------------------------------------------------------------------------------------------
// Shapes

/// The servicedeskapi paged envelope.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Paged<T> {
    #[serde(default = "Vec::new")]
    pub values: Vec<T>,
    #[serde(default = "yes")]
    pub is_last_page: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDesk {
    pub id: String,
    #[serde(default)]
    pub project_id: String,
    #[serde(default)]
    pub project_name: String,
    #[serde(default)]
    pub project_key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestType {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub help_text: String,
    #[serde(default)]
    pub portal_id: Option<String>,
    #[serde(default)]
    pub group_ids: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RequestTypeGroup {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestTypeFields {
    #[serde(default)]
    pub request_type_fields: Vec<RequestTypeField>,
    #[serde(default)]
    pub can_raise_on_behalf_of: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestTypeField {
    pub field_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default_values: Vec<FieldValue>,
    #[serde(default)]
    pub valid_values: Vec<FieldValue>,
    #[serde(default)]
    pub jira_schema: JiraSchema,
    #[serde(default)]
    pub visible: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FieldValue {
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub label: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct JiraSchema {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub items: Option<String>,
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub custom: Option<String>,
}

/// A user as `/rest/api/3/user/search`, `/myself` and the servicedeskapi return them.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub account_id: String,
    #[serde(default)]
    pub account_type: Option<String>,
    #[serde(default)]
    pub email_address: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JiraDate {
    #[serde(default)]
    pub iso8601: Option<String>,
    #[serde(default)]
    pub friendly: Option<String>,
    #[serde(default)]
    pub epoch_millis: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerRequest {
    #[serde(default)]
    pub issue_id: String,
    pub issue_key: String,
    #[serde(default)]
    pub request_type_id: String,
    #[serde(default)]
    pub service_desk_id: String,
    #[serde(default)]
    pub created_date: Option<JiraDate>,
    #[serde(default)]
    pub reporter: Option<User>,
    #[serde(default)]
    pub request_field_values: Vec<RequestFieldValue>,
    #[serde(default)]
    pub current_status: Option<CurrentStatus>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestFieldValue {
    #[serde(default)]
    pub field_id: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentStatus {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub status_category: Option<String>,
    #[serde(default)]
    pub status_date: Option<JiraDate>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub author: Option<User>,
    #[serde(default)]
    pub created: Option<JiraDate>,
}

/// `GET /rest/api/3/search/jql` (enhanced search: `nextPageToken`, absent on the last page).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResults {
    #[serde(default)]
    pub issues: Vec<Issue>,
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub is_last: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    #[serde(default)]
    pub id: String,
    pub key: String,
    #[serde(default)]
    pub fields: IssueFields,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct IssueFields {
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub status: Option<IssueStatus>,
    #[serde(default)]
    pub updated: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status_category: Option<StatusCategory>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatusCategory {
    #[serde(default)]
    pub key: String,
}

/// `GET /rest/api/3/mypermissions?permissions=ADMINISTER`.
#[derive(Debug, Deserialize)]
pub struct MyPermissions {
    #[serde(default)]
    pub permissions: HashMap<String, Permission>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    #[serde(default)]
    pub have_permission: bool,
}

// -------------------------------------------------------------------------------------------------
// The client

/// The tenant's JSM, as its service account.
pub struct Jsm<'a> {
    state: &'a AppState,
    tenant: &'a Tenant,
    auth: JiraAuth,
    sealed: Sealed,
    email: String,
}

impl<'a> Jsm<'a> {
    /// The service account of this tenant; `NotConfigured` when there is none.
    pub async fn connect(state: &'a AppState, tenant: &'a Tenant) -> Result<Jsm<'a>, PortalError> {
        let stored = state.store.portal_api_token(&tenant.id).await?.ok_or(PortalError::NotConfigured)?;
        Self::from_stored(state, tenant, stored)
    }

    pub fn from_stored(
        state: &'a AppState,
        tenant: &'a Tenant,
        stored: StoredApiToken,
    ) -> Result<Jsm<'a>, PortalError> {
        let token: SecretString = state
            .keyring
            .open(&stored.api_token, &token_context(&tenant.id))
            .map_err(|e| PortalError::Unexpected(e.into()))?;
        Ok(Jsm {
            state,
            tenant,
            auth: JiraAuth::ApiToken { email: stored.email.clone(), token },
            sealed: stored.api_token,
            email: stored.email,
        })
    }

    pub fn sealed(&self) -> &Sealed {
        &self.sealed
    }

    async fn send(&self, method: Method, path: &str, body: Option<&serde_json::Value>) -> Result<Vec<u8>, PortalError> {
        match self.state.jira.send(&self.tenant.product_base_url, &self.auth, method.clone(), path, body).await {
            Ok(r) => Ok(r.body.0),
            Err(e) => Err(self.failed(&method, path, e).await),
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, PortalError> {
        let body = self.send(Method::GET, path, None).await?;
        decode(&body)
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &serde_json::Value) -> Result<T, PortalError> {
        let body = self.send(Method::POST, path, Some(body)).await?;
        decode(&body)
    }

    /// A POST whose answer has no body worth reading (204).
    pub async fn post_empty(&self, path: &str, body: &serde_json::Value) -> Result<(), PortalError> {
        self.send(Method::POST, path, Some(body)).await.map(|_| ())
    }

    /// Every page of a servicedeskapi list (`path` has a query already or not).
    pub async fn get_all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, PortalError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: Paged<T> = self.get(&format!("{path}{sep}start={}&limit=50", out.len())).await?;
            let empty = page.values.is_empty();
            out.extend(page.values);
            if page.is_last_page || empty {
                return Ok(out);
            }
        }
        tracing::warn!(path = %path_only(path), "stopped following a paged list after {MAX_PAGES} pages");
        Ok(out)
    }

    /// Maps a failed call; a refused token is marked failing (and an event recorded) once.
    async fn failed(&self, method: &Method, path: &str, e: JiraError) -> PortalError {
        match e {
            JiraError::RateLimited { retry_after } => PortalError::Busy { retry_after },
            JiraError::Unavailable(_) | JiraError::Timeout | JiraError::Network(_) => {
                tracing::warn!(error = %e, "Jira unavailable");
                PortalError::Busy { retry_after: None }
            }
            JiraError::Unauthorized | JiraError::Forbidden => {
                let reason = if matches!(e, JiraError::Unauthorized) {
                    "Jira refused the API token (401): it is invalid, expired or revoked".to_string()
                } else {
                    format!("the service account lacks a permission (403 on {method} {})", path_only(path))
                };
                token_failing(self.state, self.tenant, &self.sealed, &self.email, &reason).await;
                PortalError::TokenFailing(reason)
            }
            JiraError::NotFound => PortalError::JiraNotFound,
            JiraError::Status { status, message } if (400..500).contains(&status) => PortalError::JiraRejected(message),
            other => PortalError::Jira(other),
        }
    }
}

/// Marks a token failing and, when that is news, records a warning event for the tenant's admins.
pub async fn token_failing(state: &AppState, tenant: &Tenant, sealed: &Sealed, email: &str, reason: &str) {
    let now = Utc::now();
    match state.store.mark_portal_api_token_failing(&tenant.id, sealed, reason, now).await {
        Ok(true) => {
            tracing::warn!(tenant = %tenant.id.as_str(), %reason, "the service account's API token is failing");
            let mut event = LoginEvent::new(
                tenant.id.clone(),
                None,
                "warning",
                format!(
                    "The service account's API token is failing: {reason}. Customers cannot use the helpdesk until it is fixed."
                ),
                now,
            );
            event.reason_code = Some("api_token_failing".into());
            event.details = serde_json::json!({ "service_account": email, "reason": reason });
            if let Err(e) = state.store.insert_login_event(&event).await {
                tracing::warn!(error = %e, "cannot record the API token failure");
            }
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "cannot mark the API token failing"),
    }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, PortalError> {
    // 204 and friends: read an empty body as JSON null.
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"null" } else { body };
    serde_json::from_slice(body).map_err(|e| PortalError::Jira(JiraError::Decode(e.to_string())))
}

/// A path without its query (queries carry emails and JQL; logs and events get the path only).
pub fn path_only(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

// -------------------------------------------------------------------------------------------------
// Checks of a candidate token (not stored yet: nothing is marked on failure)

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Myself {
    pub account_id: String,
    #[serde(default)]
    pub email_address: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenCheckError {
    #[error("token invalid or expired")]
    Invalid,
    #[error("Jira refused the account (403)")]
    Refused,
    #[error("this account is not a Jira administrator")]
    NotAdmin,
    #[error(transparent)]
    Jira(JiraError),
}

/// `GET /rest/api/3/myself`, then `GET /rest/api/3/mypermissions?permissions=ADMINISTER`.
pub async fn check_token(state: &AppState, tenant: &Tenant, auth: &JiraAuth) -> Result<Myself, TokenCheckError> {
    let site = &tenant.product_base_url;
    let myself: Myself = state.jira.get_json(site, auth, "/rest/api/3/myself").await.map_err(|e| match e {
        JiraError::Unauthorized => TokenCheckError::Invalid,
        JiraError::Forbidden => TokenCheckError::Refused,
        other => TokenCheckError::Jira(other),
    })?;
    let perms: MyPermissions =
        state.jira.get_json(site, auth, "/rest/api/3/mypermissions?permissions=ADMINISTER").await.map_err(
            |e| match e {
                JiraError::Unauthorized => TokenCheckError::Invalid,
                JiraError::Forbidden => TokenCheckError::NotAdmin,
                other => TokenCheckError::Jira(other),
            },
        )?;
    if !perms.permissions.get("ADMINISTER").is_some_and(|p| p.have_permission) {
        return Err(TokenCheckError::NotAdmin);
    }
    Ok(myself)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_shapes() {
        let page: Paged<RequestType> = serde_json::from_str(
            r#"{"_expands":[],"size":1,"start":0,"limit":50,"isLastPage":false,"_links":{},
                "values":[{"_expands":[],"id":"11001","name":"Get IT Help","description":"Get IT Help",
                "helpText":"Please tell us","issueTypeId":"12345","serviceDeskId":"28","portalId":"2",
                "groupIds":["12"],"icon":{"id":"12345","_links":{"iconUrls":{"48x48":"x"}}},"_links":{"self":"s"}}]}"#,
        )
        .unwrap();
        assert!(!page.is_last_page);
        assert_eq!(page.values[0].portal_id.as_deref(), Some("2"));
        assert_eq!(page.values[0].group_ids, vec!["12"]);

        let perms: MyPermissions = serde_json::from_str(
            r#"{"permissions":{"ADMINISTER":{"id":"0","key":"ADMINISTER","name":"Administer Jira","type":"GLOBAL",
                "description":"d","havePermission":true}}}"#,
        )
        .unwrap();
        assert!(perms.permissions["ADMINISTER"].have_permission);

        let search: SearchResults = serde_json::from_str(
            r#"{"issues":[{"expand":"","id":"10002","self":"s","key":"ITH-1","fields":{"summary":"Printer",
                "status":{"name":"Waiting for support","statusCategory":{"id":2,"key":"new","name":"To Do"}},
                "updated":"2024-05-01T10:00:00.000+0000"}}],"isLast":true}"#,
        )
        .unwrap();
        assert_eq!(search.issues[0].fields.status.as_ref().unwrap().status_category.as_ref().unwrap().key, "new");
        assert!(search.next_page_token.is_none());
    }

    #[test]
    fn empty_bodies_decode_as_unit() {
        let v: () = decode(b"").unwrap();
        assert_eq!(v, ());
    }

    #[test]
    fn queries_are_encoded() {
        assert_eq!(q("a+b@example.com"), "a%2Bb%40example.com");
        assert_eq!(path_only("/rest/api/3/user/search?query=x"), "/rest/api/3/user/search");
        assert_eq!(seg("ITH-12"), "ITH-12");
        assert_eq!(seg("a/b?c"), "a%2Fb%3Fc");
    }
}
