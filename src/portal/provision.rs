//! Customer provisioning: after a sign-in, find the JSM customer with the session's email (or create
//! one), remember the account id in the session, and make the customer a customer of each service desk
//! whose portal they use.
//!
//! [`provision`] runs right after the ACS creates the session. The helpdesk runs the same step when it
//! meets a session without an account id (provisioning failed at sign-in, e.g. Jira was busy), so a
//! failure at sign-in never locks a customer out for the whole session.

use chrono::{Duration, Utc};
use serde_json::json;

use super::PortalError;
use super::jsm::{Jsm, User, q, seg};
use crate::saml::idp::Idp;
use crate::startup::AppState;
use crate::store::{CustomerSession, LoginEvent, StoreError};
use crate::tenants::Tenant;

/// A customer added to a desk is not added again for this long.
const DESK_MEMBERSHIP_TTL: Duration = Duration::hours(24);

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("the session carries no email address")]
    NoEmail,
    #[error("no JSM customer has this email address, and creating customers is off for this identity provider")]
    NoCustomer,
    #[error("Jira refused to create the customer, and no account with this email address is visible: {0}")]
    CreateRefused(String),
    #[error(transparent)]
    Portal(#[from] PortalError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ProvisionError> for PortalError {
    fn from(e: ProvisionError) -> Self {
        match e {
            ProvisionError::NoEmail => PortalError::NotACustomer(
                "Your sign-in did not include an email address, which this helpdesk needs to know who you are. \
                 Please contact the helpdesk team."
                    .into(),
            ),
            ProvisionError::NoCustomer => PortalError::NotACustomer(
                "Your account is not registered with this helpdesk. Ask the helpdesk team to add you as a customer."
                    .into(),
            ),
            ProvisionError::CreateRefused(_) => PortalError::NotACustomer(
                "This helpdesk could not set up your account. Its administrators can see why in the login activity."
                    .into(),
            ),
            ProvisionError::Portal(e) => e,
            ProvisionError::Store(e) => e.into(),
        }
    }
}

/// Called after a successful sign-in (the ACS), with the new session: links the session to the JSM
/// customer with the session's email, creating the customer when there is none (and the IdP allows it).
pub async fn provision(
    state: &AppState,
    tenant: &Tenant,
    session_token_hash: &str,
    session: &CustomerSession,
    idp: &Idp,
) -> Result<(), ProvisionError> {
    let jsm = Jsm::connect(state, tenant).await?;
    link_account(state, tenant, &jsm, session_token_hash, session, idp).await.map(|_| ())
}

/// Finds or creates the customer and stores the account id in the session; returns the account id.
pub(super) async fn link_account(
    state: &AppState,
    tenant: &Tenant,
    jsm: &Jsm<'_>,
    token_hash: &str,
    session: &CustomerSession,
    idp: &Idp,
) -> Result<String, ProvisionError> {
    let email = session.email.as_deref().map(str::trim).filter(|e| e.contains('@')).ok_or(ProvisionError::NoEmail)?;
    let user = match find_account(jsm, email).await? {
        Some(user) => user,
        None if !idp.settings.create_customers => {
            record(state, tenant, session, idp, "failure", "customer_not_found",
                "Signed in, but no JSM customer has this email address and creating customers is turned off for this identity provider",
                json!({})).await;
            return Err(ProvisionError::NoCustomer);
        }
        None => match create_customer(jsm, email, session).await {
            Ok(user) => {
                tracing::info!(tenant = %tenant.id.as_str(), account = %user.account_id, "created a JSM customer");
                user
            }
            Err(e) => {
                record(
                    state,
                    tenant,
                    session,
                    idp,
                    "failure",
                    "customer_create_refused",
                    "Signed in, but Jira refused to create a customer for this email address",
                    json!({ "jira": e.to_string() }),
                )
                .await;
                return Err(e);
            }
        },
    };
    if user.account_type.as_deref() == Some("atlassian") {
        record(
            state,
            tenant,
            session,
            idp,
            "warning",
            "atlassian_account",
            "This email address belongs to an Atlassian account, not a portal-only customer; requests are raised for that account (possible duplicate accounts)",
            json!({ "account_id": user.account_id, "account_type": "atlassian" }),
        )
        .await;
    }
    state.store.set_session_account_id(&tenant.id, token_hash, &user.account_id).await?;
    Ok(user.account_id)
}

/// The account with exactly this email (case-insensitive): a portal-only customer if there is one,
/// else an Atlassian account; app accounts never.
async fn find_account(jsm: &Jsm<'_>, email: &str) -> Result<Option<User>, PortalError> {
    let users: Vec<User> = jsm.get(&format!("/rest/api/3/user/search?query={}&maxResults=50", q(email))).await?;
    let mut matches: Vec<User> = users
        .into_iter()
        .filter(|u| u.email_address.as_deref().is_some_and(|e| e.trim().eq_ignore_ascii_case(email)))
        .filter(|u| u.account_type.as_deref() != Some("app"))
        .collect();
    let rank = |u: &User| {
        let kind = match u.account_type.as_deref() {
            Some("customer") => 0,
            Some("atlassian") => 1,
            _ => 2,
        };
        (u.active == Some(false), kind)
    };
    matches.sort_by_key(rank);
    Ok(matches.into_iter().next())
}

async fn create_customer(jsm: &Jsm<'_>, email: &str, session: &CustomerSession) -> Result<User, ProvisionError> {
    let display_name =
        session.display_name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| email.to_string());
    let body = json!({ "email": email, "displayName": display_name });
    match jsm.post::<User>("/rest/servicedeskapi/customer", &body).await {
        Ok(user) => Ok(user),
        // "An account already exists for this email": it exists but search did not show it (a race, or
        // profile privacy hides its email). Look once more.
        Err(PortalError::JiraRejected(message)) => match find_account(jsm, email).await? {
            Some(user) => Ok(user),
            None => Err(ProvisionError::CreateRefused(message)),
        },
        Err(e) => Err(e.into()),
    }
}

/// Makes the customer a customer of the desk (a no-op for members), at most once a day per desk.
pub(super) async fn ensure_desk_customer(
    state: &AppState,
    tenant: &Tenant,
    jsm: &Jsm<'_>,
    account_id: &str,
    service_desk_id: &str,
) -> Result<(), PortalError> {
    let now = Utc::now();
    if let Some(at) = state.store.desk_customer_added_at(&tenant.id, account_id, service_desk_id).await?
        && now - at < DESK_MEMBERSHIP_TTL
    {
        return Ok(());
    }
    jsm.post_empty(
        &format!("/rest/servicedeskapi/servicedesk/{}/customer", seg(service_desk_id)),
        &json!({ "accountIds": [account_id] }),
    )
    .await?;
    state.store.record_desk_customer(&tenant.id, account_id, service_desk_id, now).await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn record(
    state: &AppState,
    tenant: &Tenant,
    session: &CustomerSession,
    idp: &Idp,
    outcome: &str,
    code: &str,
    message: &str,
    details: serde_json::Value,
) {
    let mut event = LoginEvent::new(tenant.id.clone(), Some(idp.id.clone()), outcome, message, Utc::now());
    event.reason_code = Some(code.to_string());
    event.details = details;
    event.name_id = Some(session.name_id.clone());
    event.email = session.email.clone();
    if let Err(e) = state.store.insert_login_event(&event).await {
        tracing::warn!(error = %e, "cannot record a provisioning event");
    }
}
